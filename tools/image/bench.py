"""Image build benchmark: `bazel run //tools/image:bench` (takes ~10 minutes).

In one run, on one machine:
  1. cold build of the production image (empty buildah storage);
  2. rebuild after a code-only change (a comment added to inference/model.py
     in a scratch git worktree), with the layers whose digests changed;
  3. rebuild after a model-only change (the same weights with a different
     header, so a different model version), with the layers that changed;
  4. the naive baseline (tools/image/naive/Dockerfile: one stage, network,
     no lock, no timestamp control), built twice: time, size, identical?
Prints a markdown report for docs/benchmarks.md.
"""

import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time

from inference import artifact
from models.digits import paths
from tools import cli


def timed(argv, env=None, cwd=None):
    """(seconds, stdout) of a command that must succeed."""
    start = time.monotonic()
    proc = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, check=False)
    seconds = time.monotonic() - start
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:4])} failed:\n{proc.stdout[-3000:]}")
    return seconds, proc.stdout


def build(workspace, storage, out, extra=()):
    """Builds production into `out`; returns (seconds, report)."""
    builder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build.py")
    env = dict(os.environ, BUILD_WORKSPACE_DIRECTORY=workspace)
    seconds, _ = timed([sys.executable, builder, "--target", "production", "--storage",
                        storage, "--out", out] + list(extra), env=env)
    with open(os.path.join(out, "modelship-digits.json"), encoding="utf-8") as report:
        return seconds, json.load(report)


def changed_layers(before, after):
    """Steps whose layer digest differs between two reports."""
    rows = []
    for old, new, step in zip(before["layers"], after["layers"], after["history"]):
        if old["digest"] != new["digest"]:
            rows.append(step[-60:])
    return rows


def other_model(scratch):
    """The shipped weights under a different header: a model-only change."""
    loaded = artifact.read(paths.model_path())
    header = dict(loaded.header)
    header["model"] = dict(header["model"], note="benchmark: model-only change")
    header.pop("tensors", None)
    path = os.path.join(scratch, "other.model")
    artifact.write(path, header, dict(loaded.tensors))
    return path


def naive(workspace, scratch):
    """Builds the naive baseline twice; returns (seconds list, size, identical)."""
    ctx = os.path.join(scratch, "naive")
    shutil.copytree(os.path.join(workspace, "inference"), os.path.join(ctx, "src", "inference"))
    shutil.copytree(os.path.join(workspace, "services"), os.path.join(ctx, "src", "services"))
    shutil.copytree(os.path.join(workspace, "models"), os.path.join(ctx, "src", "models"))
    shutil.copy(os.path.join(workspace, "tools", "image", "naive", "Dockerfile"), ctx)
    bundle = ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"
    shutil.copy(bundle, os.path.join(ctx, "ca.crt"))
    timed(["mmdebstrap", "--variant=apt", "--include=ca-certificates", "bookworm",
           os.path.join(ctx, "rootfs.tar")])
    seconds, digests, size = [], [], 0
    for attempt in range(2):
        storage = os.path.join(scratch, f"naive-storage-{attempt}")
        argv = ["buildah", "--root", os.path.join(storage, "root"), "--runroot",
                os.path.join(storage, "run")]
        took, _ = timed(argv + ["build", "--network", "host", "--layers", "--tag",
                                "localhost/naive:latest", ctx])
        seconds.append(took)
        archive = os.path.join(scratch, f"naive-{attempt}.oci.tar")
        timed(argv + ["push", "--quiet", "localhost/naive:latest", f"oci-archive:{archive}"])
        raw = json.loads(timed(["skopeo", "inspect", "--raw", f"oci-archive:{archive}"])[1])
        digests.append(raw["config"]["digest"])
        from tools.image import build as builder  # pylint: disable=import-outside-toplevel
        size = sum(builder.uncompressed_sizes(archive).values())
    return seconds, size, digests[0] == digests[1]


def main(argv=None):
    """Runs everything and prints the report."""
    cli.parser(__doc__).parse_args(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    scratch = tempfile.mkdtemp(prefix="modelship-bench-")
    storage = os.path.join(scratch, "storage")
    try:
        cold_s, cold = build(workspace, storage, os.path.join(scratch, "cold"))
        tree = os.path.join(scratch, "tree")
        timed(["git", "-C", workspace, "worktree", "add", "--detach", tree, "HEAD"])
        with open(os.path.join(tree, "inference", "model.py"), "a", encoding="utf-8") as src:
            src.write("\n# benchmark: a code-only change\n")
        code_s, code = build(tree, storage, os.path.join(scratch, "code"))
        model_s, model = build(workspace, storage, os.path.join(scratch, "model"),
                               ["--model", other_model(scratch)])
        naive_s, naive_size, naive_same = naive(workspace, scratch)
    finally:
        subprocess.run(["git", "-C", workspace, "worktree", "remove", "--force",
                        os.path.join(scratch, "tree")], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    print("| build | time (s) | layers changed |")
    print("|---|---:|---|")
    print(f"| production, cold | {cold_s:.1f} | all {len(cold['layers'])} |")
    print(f"| after a code-only change | {code_s:.1f} | "
          f"{'; '.join(changed_layers(cold, code)) or 'none'} |")
    print(f"| after a model-only change | {model_s:.1f} | "
          f"{'; '.join(changed_layers(cold, model)) or 'none'} |")
    print(f"| naive baseline, first | {naive_s[0]:.1f} | (one stage) |")
    print(f"| naive baseline, second | {naive_s[1]:.1f} | |")
    print()
    print("| image | uncompressed size (MB) | two builds identical |")
    print("|---|---:|---|")
    print(f"| production | {cold['uncompressed_size'] / 1e6:.1f} | see //tests/image:"
          "test_reproducible_build |")
    print(f"| naive baseline | {naive_size / 1e6:.1f} | {'yes' if naive_same else 'no'} |")
    print()
    print("production layers (uncompressed MB, step):")
    for layer, step in zip(cold["layers"], cold["history"]):
        print(f"- {layer['uncompressed_size'] / 1e6:.2f} MB: `{step[-70:]}`")
    print(f"model-only change: config {cold['config_digest'][:19]} -> "
          f"{model['config_digest'][:19]}")
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    cli.run(main)
