"""What signing and verification add to publish and promote (docs/benchmarks.md,
"Releases: signatures and attestations").

    bazel run //:image                       # dist/modelship-digits.oci.tar
    bazel run //bench:release_signing -- [--archive dist/modelship-digits.oci.tar]
                                         [--rounds 5] [--json FILE]

A real docker-registry (htpasswd) and a real nginx serving the GPG lookaside
on loopback, real keys (a cosign-format key pair, a GPG key). Each round, in
turn, on fresh repositories:
- publish without keys, and publish with both keys (cosign signature, GPG
  signature through skopeo, SBOM, provenance and model-signature attestations);
- promote with verification off (MODELSHIP_VERIFY=0) and promote with every
  check (both signatures, four attestations, the model's signature checked on
  the model taken out of the image);
- `verify` alone.
Commands run in this process (`tools.release.cli.main`), so Python's start-up
is not counted; each figure is the median over the rounds, with min and max.
Validation itself is not run (its containers would swamp the difference): the
tool is given the passed validate record it would have written.
"""

import contextlib
import io
import json
import os
import secrets
import statistics
import sys
import tempfile
import time

from ci.tests import release_keys
from tools import cli as cli_conventions
from tools.release import cli, history, image as image_lib, registry as registry_lib
from tools.release import server, settings as settings_lib

DEFAULT_ARCHIVE = "dist/modelship-digits.oci.tar"


def _run(env, *argv):
    """(seconds, exit status, stdout, stderr) of one release command, in-process."""
    out, err = io.StringIO(), io.StringIO()
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            started = time.perf_counter()
            status = cli.main(list(argv), environ=dict(env))
            seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return seconds, status, out.getvalue(), err.getvalue()


def _checked(what, result):
    seconds, status, out, err = result
    if status != 0:
        raise cli_conventions.Failure(f"{what} failed (exit {status}): "
                                      f"{(err or out).strip().splitlines()[-1:]}")
    return seconds, out


def _validated(env, digest):
    """The passed validate record validate would write (so promote may run)."""
    client = registry_lib.Client(settings_lib.load(env))
    pushed = image_lib.Pushed(client, digest)
    history.Store(client).append(history.record("validate", digest, pushed.reference,
                                                pushed.labels, result="passed", metrics={}))


def measure(archive, rounds, work):
    """{figure: [seconds per round]}."""
    root = os.path.join(work, "registry")
    os.makedirs(root)
    password = secrets.token_urlsafe(16)
    server.add_user(os.path.join(root, "htpasswd"), "bench", password)
    registry = server.Registry(root, htpasswd=os.path.join(root, "htpasswd"))
    registry.start()

    def job_env(repository, **extra):
        return {"MODELSHIP_REGISTRY": registry.address, "MODELSHIP_REPOSITORY": repository,
                "MODELSHIP_REGISTRY_USER": "bench", "MODELSHIP_REGISTRY_PASSWORD": password,
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"), **extra}

    keys = release_keys.ReleaseKeys(os.path.join(work, "keys"))
    figures = {name: [] for name in ("publish", "publish signed", "promote",
                                     "promote verified", "verify")}
    try:
        with tempfile.TemporaryDirectory(prefix="release-signing-") as scratch:
            report = os.path.join(scratch, "build.json")
            with open(os.path.splitext(os.path.splitext(archive)[0])[0] + ".json",
                      encoding="utf-8") as text:
                built = json.load(text)
            with open(report, "w", encoding="utf-8") as out:
                json.dump(built, out)
            for number in range(rounds):
                plain = job_env(f"bench/plain{number}", MODELSHIP_VERIFY="0")
                signed = job_env(f"bench/signed{number}", MODELSHIP_VERIFY="1", **keys.env())
                seconds, _ = _checked("publish", _run(plain, "publish", "--archive", archive))
                figures["publish"].append(seconds)
                seconds, out = _checked("publish signed", _run(
                    signed, "publish", "--archive", archive, "--build-report", report))
                figures["publish signed"].append(seconds)
                digest = out.strip().splitlines()[-1]
                result = os.path.join(scratch, "repro.json")
                with open(result, "w", encoding="utf-8") as text:
                    json.dump({"identical": True, "digest": digest, "rebuild_digest": digest,
                               "git_sha": built["labels"]["org.opencontainers.image.revision"]},
                              text)
                _checked("attest-reproducible",
                         _run(signed, "attest-reproducible", "--result", result))
                for each in (plain, signed):
                    _validated(each, digest)
                seconds, _ = _checked("promote", _run(plain, "promote", "--digest", digest))
                figures["promote"].append(seconds)
                seconds, _ = _checked("promote verified",
                                      _run(signed, "promote", "--digest", digest))
                figures["promote verified"].append(seconds)
                seconds, _ = _checked("verify", _run(signed, "verify", "--digest", digest))
                figures["verify"].append(seconds)
                print(f"release_signing: round {number + 1}/{rounds}: "
                      + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in figures.items()),
                      file=sys.stderr, flush=True)
    finally:
        keys.stop()
        registry.stop()
    return figures


def table(figures):
    """The markdown table of medians (min-max)."""
    lines = ["| command | median s | min-max s |", "|---|---:|---:|"]
    for name, values in figures.items():
        lines.append(f"| {name} | {statistics.median(values):.2f} | "
                     f"{min(values):.2f}-{max(values):.2f} |")
    for plain, signed in (("publish", "publish signed"), ("promote", "promote verified")):
        added = statistics.median(figures[signed]) - statistics.median(figures[plain])
        lines.append(f"| added by signing/verifying to {plain} | {added:+.2f} | |")
    return "\n".join(lines)


def main(argv=None):
    """Entry point."""
    parser = cli_conventions.parser(__doc__)
    parser.add_argument("--archive", default=DEFAULT_ARCHIVE,
                        help=f"the production image's OCI archive (default {DEFAULT_ARCHIVE})")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--json", help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    archive = cli_conventions.user_path(args.archive)
    if not os.path.isfile(archive):
        raise cli_conventions.Failure(f"--archive {archive}: no such file; build it with "
                                      f"`bazel run //:image`")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    with tempfile.TemporaryDirectory(prefix="release-signing-work-") as work:
        figures = measure(os.path.abspath(archive), args.rounds, work)
    print(table(figures))
    if args.json:
        with open(cli_conventions.user_path(args.json), "w", encoding="utf-8") as out:
            json.dump(figures, out, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(cli_conventions.run(main))
