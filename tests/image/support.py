"""What the image tests share: the source tree, a build, a private dockerd.

These tests drive real tools as root (buildah, dockerd), so their targets are
tagged `local` (no sandbox) and find the source tree through the WORKSPACE
file in their runfiles, which links back to it.
"""

import json
import os
import subprocess
import sys

from tools.containers import runtime

BUILDER = "tools/image/build.py"
# The digits image's spec (model_image in services/digits/BUILD), in the runfiles:
# the image most tests build (the smallest).
SPEC = "services/digits/image.spec"
SPEC_ARGS = ["--spec-runfile", SPEC]
IMAGE = "modelship-digits"
# The embeddings image's (services/embeddings/BUILD).
EMBEDDINGS_SPEC = "services/embeddings/image.spec"


def spec(path=SPEC):
    """An image's spec (default: the digits image's), as model_image wrote it."""
    with open(path, encoding="utf-8") as text:
        return json.load(text)


def workspace():
    """The source tree this test was built from."""
    return os.path.dirname(os.path.realpath("WORKSPACE"))


def build_production(out, extra=(), output=None, spec_path=SPEC):
    """Builds the production image of the spec at `spec_path` (default: the digits
    image's) as `bazel run` of its model_image does; returns the report.
    What the build printed is appended to the list `output` when given."""
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=workspace())
    proc = subprocess.run([sys.executable, BUILDER, "--target", "production", "--out", out,
                           "--spec-runfile", spec_path] + list(extra), env=env,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    if output is not None:
        output.append(proc.stdout)
    assert proc.returncode == 0, f"image build failed:\n{proc.stdout[-4000:]}"
    with open(os.path.join(out, spec(spec_path)["image_name"] + ".json"),
              encoding="utf-8") as report:
        return json.load(report)


free_port = runtime.free_port
http = runtime.http
wait_until = runtime.wait_until
Docker = runtime.Docker
dockerd = runtime.dockerd
