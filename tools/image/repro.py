"""Checks that the production image is reproducible, bit for bit.

    bazel run //tools/image:repro          (also run by `bazel test //...`)
    bazel run //tools/image:repro -- --against dist    one more clean build, compared
                                                       with the one in dist/ (CI)

Builds the production image twice from clean state: each build in its own
new folder with its own empty buildah storage (no cache), the second with
another umask, time zone, locale and home folder. The two manifest digests
and config digests must be equal. On a mismatch it prints, for each layer
that differs, the files that differ (content, mode, owner or time), then
diffoscope's (Debian's diffoscope-minimal) report on the first such layer.
"""

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VARIANTS = [
    {"umask": 0o022, "env": {"TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}},
    {"umask": 0o077, "env": {"TZ": "Pacific/Chatham", "LANG": "fr_FR.UTF-8",
                             "LC_ALL": "fr_FR.UTF-8", "USER": "someone-else"}},
]


def build_once(builder, workspace, variant, root, extra):
    """Runs one clean production build; returns its report."""
    os.makedirs(root)
    env = dict(os.environ, **variant["env"], HOME=os.path.join(root, "home"),
               BUILD_WORKSPACE_DIRECTORY=workspace,
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME")
               or os.path.join(os.path.expanduser("~"), ".cache"))
    os.makedirs(env["HOME"])
    argv = [sys.executable, builder, "--target", "production", "--no-cache",
            "--context", os.path.join(root, "context"), "--storage",
            os.path.join(root, "storage"), "--out", os.path.join(root, "dist")] + extra
    old = os.umask(variant["umask"])
    try:
        proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, check=False)
    finally:
        os.umask(old)
    if proc.returncode != 0:
        raise SystemExit(f"repro: build in {root} failed:\n{proc.stderr[-3000:]}")
    with open(os.path.join(root, "dist", "modelship-digits.json"), encoding="utf-8") as out:
        return json.load(out)


def layer_entries(archive, digest):
    """{path: (type, mode, uid, gid, mtime, sha256 of content)} of one layer blob."""
    entries = {}
    with tarfile.open(archive) as outer:
        blob = outer.extractfile("blobs/sha256/" + digest.split(":", 1)[1])
        with tarfile.open(fileobj=blob, mode="r:*") as layer:
            for member in layer:
                content = layer.extractfile(member).read() if member.isfile() else b""
                entries[member.name] = (member.type, oct(member.mode), member.uid,
                                        member.gid, member.mtime,
                                        member.linkname or hashlib.sha256(content).hexdigest())
    return entries


def explain(archives, reports):
    """Which files differ in which layers; then diffoscope on the first differing pair."""
    pairs = [(one["digest"], two["digest"])
             for one, two in zip(reports[0]["layers"], reports[1]["layers"])
             if one["digest"] != two["digest"]]
    if len(reports[0]["layers"]) != len(reports[1]["layers"]):
        print("repro: the two images have different numbers of layers")
    for one, two in pairs:
        left, right = layer_entries(archives[0], one), layer_entries(archives[1], two)
        print(f"repro: layer {one[:19]} vs {two[:19]}:")
        for path in sorted(set(left) | set(right)):
            if path not in right:
                print(f"repro:   only in the first build: {path}")
            elif path not in left:
                print(f"repro:   only in the second build: {path}")
            elif left[path] != right[path]:
                print(f"repro:   differs: {path}: {left[path]} != {right[path]}")
    if pairs and shutil.which("diffoscope"):
        with tempfile.TemporaryDirectory() as scratch:
            blobs = []
            for archive, digest in zip(archives, pairs[0]):
                with tarfile.open(archive) as outer:
                    outer.extract("blobs/sha256/" + digest.split(":", 1)[1],
                                  os.path.join(scratch, str(len(blobs))))
                blobs.append(os.path.join(scratch, str(len(blobs)), "blobs", "sha256",
                                          digest.split(":", 1)[1]))
            proc = subprocess.run(["diffoscope", "--no-progress", "--text", "-",
                                   "--max-report-size", "200000"] + blobs,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, check=False)
            print(proc.stdout[:20000])


def main(argv=None):
    """Entry point; exit 0 when both builds are identical."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--builder", help="path of build.py (default: beside this file)")
    parser.add_argument("--keep", action="store_true", help="keep both build folders")
    parser.add_argument("--against", metavar="DIR",
                        help="compare one clean build with the build already in DIR "
                             "(modelship-digits.oci.tar and .json, e.g. a CI job's dist/) "
                             "instead of building twice")
    args, extra = parser.parse_known_args(argv)
    builder = args.builder or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "build.py")
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    top = tempfile.mkdtemp(prefix="modelship-repro-")
    roots = [os.path.join(top, "first"), os.path.join(top, "second", "elsewhere")]
    archives = [os.path.join(root, "dist", "modelship-digits.oci.tar") for root in roots]
    try:
        if args.against:
            # The earlier build is the first; this one differs from it in umask,
            # time zone, locale and home, as the second of two builds does.
            against = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), args.against)
            try:
                with open(os.path.join(against, "modelship-digits.json"),
                          encoding="utf-8") as report:
                    reports = [json.load(report)]
            except (OSError, ValueError) as err:
                print(f"repro: --against {args.against}: no build report there ({err}); "
                      f"give the folder a production build wrote (--out)", file=sys.stderr)
                return 2
            archives[0] = os.path.join(against, "modelship-digits.oci.tar")
            reports.append(build_once(builder, workspace, VARIANTS[1], roots[1], extra))
        else:
            reports = [build_once(builder, workspace, variant, root, extra)
                       for variant, root in zip(VARIANTS, roots)]
        same = all(reports[0][key] == reports[1][key] for key in ("digest", "config_digest"))
        for name, report in zip(("first", "second"), reports):
            print(f"repro: {name}: manifest {report['digest']} config "
                  f"{report['config_digest']}")
        if not same:
            print("repro: MISMATCH: the two clean builds differ")
            for one, two in zip(reports[0]["layers"], reports[1]["layers"]):
                mark = "same" if one["digest"] == two["digest"] else "DIFFERS"
                print(f"repro:   layer {one['digest'][:19]} {two['digest'][:19]} {mark}")
            explain(archives, reports)
            return 1
        print("repro: identical: two builds gave the same manifest and config digests")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
