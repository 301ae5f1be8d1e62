"""modelship/repositories.bzl and python_deps.bzl, which another workspace runs, set
up what modelship's own WORKSPACE does: the same stand-ins, the same locks."""

import ast
import os
import re

WORKSPACE = "WORKSPACE"
# The source tree (BUILD files are not exported, so not in the runfiles).
ROOT = os.path.dirname(os.path.realpath(WORKSPACE))


def _read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as text:
        return text.read()


def _workspace_pip_repositories():
    """{name: lock label} of the pip_parse calls in modelship's WORKSPACE."""
    calls = re.findall(r'pip_parse\(\s*name = "(\w+)",.*?requirements_lock = "([^"]+)"',
                       _read(WORKSPACE), re.S)
    return dict(calls)


def _python_deps_locks():
    """MODELSHIP_LOCKS of python_deps.bzl (a Starlark dict literal, also Python)."""
    text = _read("modelship/python_deps.bzl")
    literal = re.search(r"MODELSHIP_LOCKS = (\{.*?\n\})", text, re.S).group(1)
    return ast.literal_eval(literal)


def test_the_consumers_pip_repositories_are_modelships_own():
    ours = _workspace_pip_repositories()
    theirs = _python_deps_locks()
    assert theirs, "python_deps.bzl defines no pip repository"
    for name, lock in theirs.items():
        assert ours.get(name) == lock, (name, lock, ours.get(name))


def test_the_loaded_build_files_need_no_other_pip_repository():
    # A consumer loads serving, inference and tools/image's BUILD files (and the
    # macros they load): every @pypi* they load must be defined for it.
    defined = set(_python_deps_locks())
    for path in ("serving/BUILD", "inference/BUILD", "tools/image/BUILD", "tools/BUILD",
                 "tools/cython/BUILD", "tools/containers/BUILD", "tools/lint/BUILD",
                 "tools/lint/defs.bzl", "tools/pytest/defs.bzl", "tools/cython/defs.bzl"):
        for name in re.findall(r'load\("@(pypi\w*)//', _read(path)):
            assert name in defined, f"{path} loads @{name}, which python_deps.bzl does not define"


def test_every_stand_in_folder_exists_and_matches_the_workspace():
    text = _read("modelship/repositories.bzl")
    folders = dict(re.findall(r'"(\w+)",\s*folder = "([^"]+)"', text))
    folders.update(re.findall(r'_maybe\(_modelship_folder, "(\w+)", folder = "([^"]+)"\)', text))
    assert set(folders) == {"rules_cc", "remote_coverage_tools", "rules_python"}, folders
    workspace = _read(WORKSPACE)
    for name, folder in folders.items():
        assert os.path.isfile(os.path.join(ROOT, folder, "WORKSPACE")), folder
        assert re.search(rf'name = "{name}",\s*path = "{re.escape(folder)}"', workspace), name
