"""Every repository module the image's own steps import is copied into the image."""

import ast
import os

import pytest

from tools.image import build

# The scripts the Dockerfile runs inside the image, from the copied sources.
IMAGE_SCRIPTS = ("tools/image/finalize.py", "tools/image/check.py", "tools/trust/sbom.py")


def _shipped(rel):
    return rel in build.SOURCE_FILES or any(
        rel.startswith(folder + "/") for folder in build.SOURCE_DIRS)


def _repository_imports(script):
    """The files of `tools.*` modules a script imports, with their packages' __init__.py."""
    with open(script, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    files = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tools"):
            names = [node.module + "." + alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("tools")]
        else:
            continue
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts)):
                files.add("/".join(parts[:i]) + "/__init__.py")
            module = "/".join(parts)
            files.add(module + "/__init__.py" if os.path.isdir(module) else module + ".py")
    return sorted(files)


@pytest.mark.parametrize("script", IMAGE_SCRIPTS)
def test_modules_image_scripts_import_are_copied_into_the_image(script):
    imports = _repository_imports(script)
    missing = [rel for rel in imports if not _shipped(rel)]
    assert not missing, (f"{script} imports {missing}, which tools/image/build.py does not "
                         f"copy into the image: add them to SOURCE_FILES")


def test_finalize_imports_the_flags_mirror():
    assert "tools/cython/flags.py" in _repository_imports("tools/image/finalize.py")
