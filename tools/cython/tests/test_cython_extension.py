"""cython_extension builds an importable module from deterministic C."""

import array
import os
import sys

import pytest

from tools.cython.tests import _demo

GENERATED_C = "tools/cython/tests/_demo.c"


def test_extension_imports_and_computes():
    left = array.array("d", [1.0, 2.0, 3.0])
    right = array.array("d", [4.0, 5.0, 6.0])
    assert _demo.dot(left, right) == 32.0


def test_extension_errors_are_python_exceptions():
    with pytest.raises(ValueError, match="lengths differ: 2 and 1"):
        _demo.dot(array.array("d", [1.0, 2.0]), array.array("d", [1.0]))


def test_extension_is_built_for_this_interpreter():
    assert os.path.basename(_demo.__file__) == "_demo.so"
    assert sys.version_info[:2] == (3, 11)


def test_generated_c_names_only_workspace_relative_paths():
    with open(GENERATED_C, encoding="utf-8") as generated:
        text = generated.read()
    assert '"tools/cython/tests/_demo.pyx"' in text
    for marker in ("/execroot/", "/sandbox/", os.path.expanduser("~"), "/tmp/"):
        assert marker not in text, f"generated C names a machine path: {marker}"
