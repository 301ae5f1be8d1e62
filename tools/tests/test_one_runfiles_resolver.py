"""Runfiles are found by rules_python's library (bazel-runfiles) alone: no module
reads Bazel's runfiles variables to look files up by hand."""

import os
import re
import subprocess

# A read of a runfiles variable (os.environ[...], .get(...), or a loop over names).
HAND_WRITTEN = re.compile(r"""(environ(\.get)?\s*[\[(]\s*|in\s*[\[(]\s*)"""
                          r"""["'](RUNFILES_DIR|TEST_SRCDIR|RUNFILES_MANIFEST_FILE)["']""")


def test_no_module_resolves_runfiles_by_hand():
    # The source tree, through the WORKSPACE file of this test's runfiles.
    root = os.path.dirname(os.path.realpath("WORKSPACE"))
    tracked = subprocess.run(["git", "-C", root, "ls-files", "-z", "--", "*.py"],
                             capture_output=True, text=True, check=True).stdout
    offenders = []
    for rel in filter(None, tracked.split("\0")):
        path = os.path.join(root, rel)
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if HAND_WRITTEN.search(line):
                    offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, ("look runfiles up with the `runfiles` library "
                           "(requirement(\"bazel-runfiles\")), not by hand:\n"
                           + "\n".join(offenders))
