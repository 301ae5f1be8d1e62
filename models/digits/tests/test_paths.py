"""Built files are found through rules_python's runfiles library, by folder or manifest,
and without it in the tree the module sits in (the image's test stage)."""

import os
import sys

import pytest

from models.digits import paths


def test_runfile_is_found_in_the_runfiles_folder():
    with open(paths.runfile(paths.CONFIG), encoding="utf-8") as handle:
        assert handle.read(1) == "{"


def test_runfile_is_found_through_a_manifest_alone(tmp_path, monkeypatch):
    # What `bazel run` announces: a manifest, no runfiles folder.
    target = tmp_path / "config.json"
    target.write_text("{}", encoding="utf-8")
    manifest = tmp_path / "program.runfiles_manifest"
    manifest.write_text(f"{paths.WORKSPACE}/{paths.CONFIG} {target}\n", encoding="utf-8")
    monkeypatch.delenv("RUNFILES_DIR", raising=False)
    monkeypatch.delenv("TEST_SRCDIR", raising=False)
    monkeypatch.setenv("RUNFILES_MANIFEST_FILE", str(manifest))
    assert paths.runfile(paths.CONFIG) == str(target)


def test_missing_runfile_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.delenv("RUNFILES_MANIFEST_FILE", raising=False)
    monkeypatch.setenv("RUNFILES_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="in its `data`"):
        paths.runfile(paths.MODEL)


def test_without_the_library_a_file_of_the_tree_is_found(monkeypatch):
    # The image's test stage: no library, the built files beside the sources.
    monkeypatch.setitem(sys.modules, "runfiles", None)
    found = paths.runfile(paths.CONFIG)
    assert os.path.samefile(found, os.path.join(os.path.dirname(paths.__file__), "config.json"))


def test_without_the_library_a_missing_file_fails_as_file_not_found(monkeypatch):
    monkeypatch.setitem(sys.modules, "runfiles", None)
    with pytest.raises(FileNotFoundError, match="no runfiles library"):
        paths.runfile("models/digits/no-such-file.bin")
