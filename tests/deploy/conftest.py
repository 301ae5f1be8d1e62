"""Keeps pytest's temporary folders inside the test's own TEST_TMPDIR.

pytest's default, /tmp/pytest-of-<user>, is shared by every test on the
machine, and pytest removes "old" numbered folders there: with several
engineers' tests running at once it deletes folders still in use.
"""

import os


def pytest_configure(config):
    """--basetemp under $TEST_TMPDIR when Bazel gives one."""
    tmp = os.environ.get("TEST_TMPDIR")
    if tmp and not config.option.basetemp:
        config.option.basetemp = os.path.join(tmp, "pytest")
