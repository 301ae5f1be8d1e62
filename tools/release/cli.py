"""Publish once, validate, promote by digest, roll back: `bazel run //tools/release -- ...`.

    publish  --archive dist/modelship-digits.oci.tar [--dotenv FILE]
    validate --digest sha256:...
    promote  --digest sha256:... [--tag stable]... [--version-tag]
    rollback [--tag stable]
    history  [--json]
    local-registry [--stop]

Registry from $MODELSHIP_REGISTRY (host:port; unset: the embedded local
registry), repository from $MODELSHIP_REPOSITORY (default modelship/digits),
credentials from $MODELSHIP_REGISTRY_AUTH_FILE or $MODELSHIP_REGISTRY_USER and
$MODELSHIP_REGISTRY_PASSWORD. See tools/release/README.md.

Exit status: 0 done, 1 refused or failed, 2 bad arguments or settings.
"""

import argparse
import json
import os
import sys

from tools.release import errors, image, server, settings as settings_lib
from tools.release.release import Releases

EXIT_FAILED = 1
EXIT_USAGE = 2


def _user_path(path):
    # `bazel run` starts us in the runfiles tree; relative paths mean the user's cwd.
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", ""), path)


def _log(message):
    print(f"release: {message}", file=sys.stderr, flush=True)


def parser():
    """The argument parser (global flags are accepted before or after the command)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registry", default=argparse.SUPPRESS,
                        help="registry host:port (default $MODELSHIP_REGISTRY, else embedded)")
    common.add_argument("--repository", default=argparse.SUPPRESS,
                        help="repository (default $MODELSHIP_REPOSITORY, else modelship/digits)")
    top = argparse.ArgumentParser(prog="release", parents=[common], description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser("publish", parents=[common],
                                  help="push the OCI archive under candidate-<short sha>")
    publish.add_argument("--archive", required=True, help="the OCI archive `bazel run "
                                                          "//:image` wrote")
    publish.add_argument("--dotenv", help="also write RELEASE_DIGEST, RELEASE_IMAGE and "
                                          "RELEASE_CANDIDATE_TAG to this file")
    validate = commands.add_parser("validate", parents=[common],
                                   help="run the release gates on a pushed digest")
    validate.add_argument("--digest", required=True, help="sha256:<64 hex>")
    promote = commands.add_parser("promote", parents=[common],
                                  help="point release tags at a validated digest")
    promote.add_argument("--digest", required=True, help="sha256:<64 hex>")
    promote.add_argument("--tag", action="append", help="release tag (repeatable; default "
                                                        "stable)")
    promote.add_argument("--version-tag", action="store_true",
                         help="also tag <model version>-<git sha> (12 characters each)")
    rollback = commands.add_parser("rollback", parents=[common],
                                   help="point a release tag back at its previous digest")
    rollback.add_argument("--tag", default="stable", help="release tag (default stable)")
    show = commands.add_parser("history", parents=[common], help="print the release history")
    show.add_argument("--json", action="store_true", help="JSON lines, oldest first")
    local = commands.add_parser("local-registry", parents=[common],
                                help="start (or --stop) the embedded local registry")
    local.add_argument("--stop", action="store_true", help="stop it")
    return top


def _settings(args, environ):
    settings = settings_lib.load(environ, registry=getattr(args, "registry", None),
                                 repository=getattr(args, "repository", None))
    # Held in memory from here on; children (skopeo, dockerd) must not inherit it,
    # since a process's environment is readable to others running as its user.
    os.environ.pop("MODELSHIP_REGISTRY_PASSWORD", None)
    if settings.registry is None:
        address = server.embedded()
        _log(f"no MODELSHIP_REGISTRY: using the embedded registry at {address} "
             f"(storage {server.embedded_root()})")
        settings = settings.with_registry(address)
    return settings


def _write_dotenv(path, published):
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"RELEASE_DIGEST={published.digest}\n"
                  f"RELEASE_IMAGE={published.image}\n"
                  f"RELEASE_CANDIDATE_TAG={published.candidate_tag}\n")


def _table(records):
    lines = []
    for entry in records:
        extra = ""
        if entry.get("result"):
            extra = f" {entry['result']}"
        if entry.get("previous_digest"):
            extra += f" (was {entry['previous_digest'][:19]})"
        lines.append(f"{entry['when']}  {entry['event']:<8} {entry['digest'][:19]}  "
                     f"{entry['reference']}{extra}  git {str(entry.get('git_sha'))[:12]}  "
                     f"model {str(entry.get('model_version'))[:12]}  by {entry.get('who')}")
    return "\n".join(lines) if lines else "(no releases recorded yet)"


def run(args, environ):
    """Runs one parsed command; returns the exit status. Raises typed errors."""
    if args.command == "local-registry":
        if args.stop:
            address = server.stop_embedded()
            print(f"stopped the embedded registry at {address}" if address
                  else "the embedded registry was not running")
        else:
            print(server.embedded())
        return 0
    if getattr(args, "digest", None):
        image.require_digest(args.digest)  # before any registry is started
    releases = Releases(_settings(args, environ), log=_log)
    if args.command == "publish":
        published = releases.publish(_user_path(args.archive))
        if args.dotenv:
            _write_dotenv(_user_path(args.dotenv), published)
        print(f"{releases.settings.base}:{published.candidate_tag}")
        print(published.digest)
        return 0
    if args.command == "validate":
        passed, checks = releases.validate(args.digest)
        for check in checks:
            print(f"{'PASS' if check.ok else 'FAIL'}  {check.gate}: {check.name}: "
                  f"{check.detail}")
        print(f"{'VALID' if passed else 'INVALID'} {args.digest}")
        return 0 if passed else EXIT_FAILED
    if args.command == "promote":
        for move in releases.promote(args.digest, args.tag, args.version_tag):
            print(f"{move.reference} -> {move.digest}")
        return 0
    if args.command == "rollback":
        move = releases.rollback(args.tag)
        print(f"{move.reference} -> {move.digest} (was {move.previous})")
        return 0
    records = releases.records()
    if args.json:
        for entry in records:
            print(json.dumps(entry, sort_keys=True))
    else:
        print(_table(records))
    return 0


def main(argv=None, environ=None):
    """Entry point; the one place typed errors become messages and exit statuses."""
    args = parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        return run(args, environ)
    except errors.UsageError as err:
        print(f"release: {err}", file=sys.stderr)
        return EXIT_USAGE
    except errors.ReleaseError as err:
        print(f"release: {err}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as err:
        print(f"release: {err}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
