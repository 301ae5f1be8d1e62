"""Same commit, same digest, from any clone (tools/image/repro.py).

Two clean production builds, each from its own git clone of this tree in its
own folder, with empty buildah storage: the first clone's `origin` is a local
path, the second's an https URL with user:token@ in it, and umask, time zone,
locale and home differ too. The digests must be equal, the source label must
be the committed one (tools/image/source-url.txt), and no token, path remote
or sandbox debug line may show; the builds' progress must.
"""

import os
import re
import subprocess
import sys

from tests.image import support

TOKEN = "glpat-repro-NOT-A-SECRET"  # the made-up token of repro.py's second clone


def committed_source_url():
    """The URL tools/image/source-url.txt holds."""
    with open(os.path.join(support.workspace(), "tools/image/source-url.txt"),
              encoding="utf-8") as text:
        return [line.strip() for line in text if line.strip() and not line.startswith("#")][0]


def test_two_clones_with_different_remotes_give_identical_digests():
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=support.workspace())
    proc = subprocess.run([sys.executable, "tools/image/repro.py",
                           "--builder", support.BUILDER] + support.SPEC_ARGS, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          check=False)
    out = proc.stdout
    print(out[-20000:])
    # The two builds came from clones with the remotes this test is about.
    first = re.search(r"^repro: first build: clone (\S+) of commit (\w+), origin (\S+)$",
                      out, re.M)
    second = re.search(r"^repro: second build: clone (\S+) of commit (\w+), origin (\S+)$",
                       out, re.M)
    assert first and second, out[-3000:]
    assert first.group(1) != second.group(1) and first.group(2) == second.group(2)
    assert os.path.isabs(first.group(3))  # a local path remote
    assert second.group(3) == "https://***@mirror.invalid/elsewhere/modelship.git"
    assert proc.returncode == 0, "the two clean builds differ (see the report above)"
    assert "repro: identical" in out
    # The label is the committed URL; neither remote reached it, nor the output.
    sources = re.findall(r"^repro: (?:first|second): manifest .* source (\S+)$", out, re.M)
    assert sources == [committed_source_url()] * 2, sources
    assert TOKEN not in out
    # Progress: each build showed its Dockerfile steps; no sandbox debug noise.
    for name in ("first", "second"):
        assert re.search(rf"^repro: {name}: image: \[production\] step \d+/\d+: COPY model/ ",
                         out, re.M), name
    assert not re.search(r"src/main/tools/linux-sandbox[\w.-]*\.cc:\d+", out)
