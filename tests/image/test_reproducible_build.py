"""Two clean builds of the production image are identical (tools/image/repro.py)."""

import os
import subprocess
import sys

from tests.image import support


def test_two_clean_builds_give_identical_digests():
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=support.workspace())
    proc = subprocess.run([sys.executable, "tools/image/repro.py",
                           "--builder", support.BUILDER], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    print(proc.stdout[-20000:])
    assert proc.returncode == 0, "the two clean builds differ (see the report above)"
    assert "repro: identical" in proc.stdout
