"""Temporary folders of these tests live in Bazel's per-test TEST_TMPDIR.

pytest's default root, /tmp/pytest-of-<user>, is shared by every test on the
machine, and pytest tidies old folders there at start: another test's
leftover root filesystem (files it cannot delete) then fails ours with a
warning, which is an error here.
"""

import os

if os.environ.get("TEST_TMPDIR"):
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", os.environ["TEST_TMPDIR"])
