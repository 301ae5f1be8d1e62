"""Checks that the production image is reproducible, bit for bit.

    bazel run //<pkg>:<name>.repro         of a model_image (//:image.repro: the
                                           default image; also run by `bazel test //...`)
    bazel run //<pkg>:<name>.repro -- --against dist    one more clean build, compared
                                                        with the one in dist/ (CI)

Builds the production image twice from clean state: each build from its own
git clone of the tree (uncommitted changes copied in, so it builds what the
tree holds, stamped with the same commit), in its own new folder with its
own empty buildah storage (no cache). The second differs in everything a
clone or a host may differ in: the clone's folder, its `origin` remote (the
first: a local path; the second: an https URL with user:token@ in it),
umask, time zone, locale and home folder. The two manifest digests and
config digests must be equal. On a mismatch it prints, for each layer
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

from tools.image import build

VARIANTS = [
    # remote None: the clone's origin is the local folder it was cloned from.
    {"umask": 0o022, "env": {"TZ": "UTC", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"},
     "remote": None},
    # A remote as CI runners and credential helpers write them: with a token in it
    # (a made-up one), which must never reach a label.
    {"umask": 0o077, "env": {"TZ": "Pacific/Chatham", "LANG": "fr_FR.UTF-8",
                             "LC_ALL": "fr_FR.UTF-8", "USER": "someone-else"},
     "remote": "https://gitlab-ci-token:glpat-repro-NOT-A-SECRET@mirror.invalid/"
               "elsewhere/modelship.git"},
]
SOURCE_LABEL = "org.opencontainers.image.source"


def _git(folder, *args, env=None):
    return subprocess.run(["git", "-C", folder] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, check=True, env=env).stdout


def _safe(url):
    """A remote for printing: any user:password@ masked."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def clone_for(variant, workspace, dest):
    """A clone of the workspace at `dest`, with the working tree's uncommitted changes
    and untracked, not ignored files copied in (so it builds what the workspace
    would, stamped with the same commit, dirty or not), and the variant's origin
    remote (None: the workspace's folder, as `git clone` sets it). Returns dest."""
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", workspace, dest], check=True)
    status = _git(workspace, "status", "--porcelain=v1", "-z", "--untracked-files=all")
    entries = status.split("\0")
    while entries:
        entry = entries.pop(0)
        if not entry:
            continue
        code, paths = entry[:2], [entry[3:]]
        if "R" in code or "C" in code:
            paths.append(entries.pop(0))  # the original path of a rename or copy
        for rel in paths:
            src, target = os.path.join(workspace, rel), os.path.join(dest, rel)
            if os.path.lexists(target):
                os.remove(target)
            if os.path.lexists(src):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copy2(src, target, follow_symlinks=False)
    if variant["remote"]:
        _git(dest, "remote", "set-url", "origin", variant["remote"])
    return dest


def build_once(builder, workspace, variant, root, extra, name="build", image="image"):
    """Runs one clean production build of `workspace`; returns its report. The
    build's progress is shown as it comes, prefixed with the build's name."""
    os.makedirs(root, exist_ok=True)
    env = dict(os.environ, **variant["env"], HOME=os.path.join(root, "home"),
               BUILD_WORKSPACE_DIRECTORY=workspace,
               XDG_CACHE_HOME=os.environ.get("XDG_CACHE_HOME")
               or os.path.join(os.path.expanduser("~"), ".cache"))
    os.makedirs(env["HOME"])
    argv = [sys.executable, builder, "--target", "production", "--no-cache",
            "--context", os.path.join(root, "context"), "--storage",
            os.path.join(root, "storage"), "--out", os.path.join(root, "dist")] + extra
    old = os.umask(variant["umask"])
    tail = []
    try:
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in proc.stderr:
            print(f"repro: {name}: {line.rstrip()}", flush=True)
            tail = (tail + [line.rstrip()])[-40:]
        status = proc.wait()
    finally:
        os.umask(old)
    if status != 0:
        raise SystemExit(f"repro: the {name} build (in {root}, kept) failed:\n"
                         + "\n".join(tail))
    with open(os.path.join(root, "dist", image + ".json"), encoding="utf-8") as out:
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


def _write_result(path, image, reports, same):
    path = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)
    result = {"image": image, "identical": same, "digest": reports[0]["digest"],
              "rebuild_digest": reports[1]["digest"],
              "config_digest": reports[0]["config_digest"],
              "rebuild_config_digest": reports[1]["config_digest"],
              "git_sha": reports[0]["labels"].get("org.opencontainers.image.revision")}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=2, sort_keys=True)
        out.write("\n")


def main(argv=None):
    """Entry point; exit 0 when both builds are identical."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Every other option is passed on to build.py:\n" + build.make_parser(
            description=None, add_help=False).format_help().split("\n\n", 1)[1])
    parser.add_argument("--builder", help="path of build.py (default: beside this file)")
    parser.add_argument("--keep", action="store_true", help="keep both build folders")
    parser.add_argument("--result", metavar="FILE",
                        help="also write the outcome as JSON (both digests, the commit): "
                             "what `release attest-reproducible --result FILE` signs")
    parser.add_argument("--against", metavar="DIR",
                        help="compare one clean build with the build already in DIR "
                             "(<image name>.oci.tar and .json, e.g. a CI job's dist/) "
                             "instead of building twice")
    args, extra = parser.parse_known_args(argv)
    # Refuse a mistyped option now (exit 2), not after a clone and a failed build.
    build_parser = build.make_parser(prog="repro.py (options for build.py)", add_help=False)
    build_args = build_parser.parse_args(extra)
    try:
        image = build.read_spec(build.spec_path(build_args)).image_name
    except build.BuildError as err:
        print(f"repro: {err}", file=sys.stderr)
        return 1
    builder = args.builder or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                           "build.py")
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY") or os.getcwd()
    top = tempfile.mkdtemp(prefix="modelship-repro-")
    roots = [os.path.join(top, "first"), os.path.join(top, "second", "elsewhere")]
    archives = [os.path.join(root, "dist", image + ".oci.tar") for root in roots]
    keep = args.keep
    try:
        clones = [None, None]
        for index, (name, variant, root) in enumerate(zip(("first", "second"), VARIANTS,
                                                          roots)):
            if args.against and index == 0:
                continue  # the first build is the one in --against
            clones[index] = clone_for(variant, workspace, os.path.join(root, "clone"))
            print(f"repro: {name} build: clone {clones[index]} of commit "
                  f"{_git(clones[index], 'rev-parse', 'HEAD').strip()[:12]}, origin "
                  f"{_safe(_git(clones[index], 'remote', 'get-url', 'origin').strip())}",
                  flush=True)
        if args.against:
            # The earlier build is the first; this one differs from it in umask,
            # time zone, locale and home, as the second of two builds does.
            against = os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), args.against)
            try:
                with open(os.path.join(against, image + ".json"),
                          encoding="utf-8") as report:
                    reports = [json.load(report)]
            except (OSError, ValueError) as err:
                print(f"repro: --against {args.against}: no build report there ({err}); "
                      f"give the folder a production build wrote (--out)", file=sys.stderr)
                return 2
            archives[0] = os.path.join(against, image + ".oci.tar")
            reports.append(build_once(builder, clones[1], VARIANTS[1], roots[1], extra,
                                      "second", image))
        else:
            reports = [build_once(builder, clone, variant, root, extra, name, image)
                       for name, clone, variant, root
                       in zip(("first", "second"), clones, VARIANTS, roots)]
        same = all(reports[0][key] == reports[1][key] for key in ("digest", "config_digest"))
        if args.result:
            _write_result(args.result, image, reports, same)
        for name, report in zip(("first", "second"), reports):
            print(f"repro: {name}: manifest {report['digest']} config "
                  f"{report['config_digest']} source "
                  f"{_safe(report['labels'].get(SOURCE_LABEL, ''))}")
        if not same:
            print("repro: MISMATCH: the two clean builds differ")
            for one, two in zip(reports[0]["layers"], reports[1]["layers"]):
                mark = "same" if one["digest"] == two["digest"] else "DIFFERS"
                print(f"repro:   layer {one['digest'][:19]} {two['digest'][:19]} {mark}")
            explain(archives, reports)
            return 1
        print("repro: identical: two builds gave the same manifest and config digests")
        return 0
    except SystemExit:
        keep = True  # a failed build: its logs (<root>/dist/logs) stay for reading
        raise
    finally:
        if keep:
            print(f"repro: the build folders are kept in {top}", flush=True)
        else:
            shutil.rmtree(top, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
