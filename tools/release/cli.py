"""Publish once, validate, promote by digest, roll back an image.

    bazel run //<pkg>:<name>.release -- COMMAND   (bound to that image's spec)
    bazel run //tools/release -- COMMAND          (no spec: publish, promote,
                                                  rollback, history only)

    publish  [--archive dist/<image_name>.oci.tar] [--dotenv FILE]
    validate --digest sha256:...
    verify   --digest sha256:...
    attest-reproducible --result FILE
    promote  --digest sha256:... [--tag stable]... [--version-tag]
    rollback [--tag stable]
    history  [--json]
    gate     [--model FILE] [--release FILE]
    local-registry [--stop]

Registry from $MODELSHIP_REGISTRY (host:port; unset: the embedded local
registry), repository from $MODELSHIP_REPOSITORY (default with a spec:
modelship/<served name>; without one it must be set), credentials from
$MODELSHIP_REGISTRY_AUTH_FILE or $MODELSHIP_REGISTRY_USER and
$MODELSHIP_REGISTRY_PASSWORD. Signing keys and public keys from
$MODELSHIP_COSIGN_KEY, $MODELSHIP_GPG_KEY, $MODELSHIP_COSIGN_PUBLIC_KEY,
$MODELSHIP_GPG_PUBLIC_KEY (files) and the lookaside storage of GPG
signatures ($MODELSHIP_LOOKASIDE). See tools/release/README.md.

Exit status: 0 done, 1 refused or failed, 2 bad arguments or settings.
"""

import argparse
import json
import os
import sys

from tools.release import errors, image, imagespec, server, settings as settings_lib
from tools.release import trust as trust_lib
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
                        help="repository (default $MODELSHIP_REPOSITORY, else the spec's "
                             "modelship/<served name>)")
    common.add_argument("--spec", default=argparse.SUPPRESS,
                        help="the image's spec (JSON model_image wrote), a path")
    common.add_argument("--spec-runfile", default=argparse.SUPPRESS,
                        help="the image's spec as a runfiles path (what `<name>.release` "
                             "passes)")
    top = argparse.ArgumentParser(prog="release", parents=[common], description=__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    publish = commands.add_parser("publish", parents=[common],
                                  help="push the OCI archive under candidate-<short sha>")
    publish.add_argument("--archive", help="the OCI archive the image build wrote (default "
                                           "with a spec: dist/<image_name>.oci.tar)")
    publish.add_argument("--dotenv", help="also write RELEASE_DIGEST, RELEASE_IMAGE and "
                                          "RELEASE_CANDIDATE_TAG to this file")
    publish.add_argument("--build-report", metavar="FILE",
                         help="the image build's report (default: beside the archive, "
                              "<image_name>.json): times and builder of the provenance")
    validate = commands.add_parser("validate", parents=[common],
                                   help="run the release gates on a pushed digest")
    validate.add_argument("--digest", required=True, help="sha256:<64 hex>")
    verify = commands.add_parser("verify", parents=[common],
                                 help="check a pushed digest's signatures and attestations")
    verify.add_argument("--digest", required=True, help="sha256:<64 hex>")
    attest = commands.add_parser("attest-reproducible", parents=[common],
                                 help="sign and attach the reproducibility check's result")
    attest.add_argument("--result", required=True, metavar="FILE",
                        help="what `repro --result FILE` wrote")
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
    gate = commands.add_parser("gate", parents=[common],
                               help="run the image's model release gate on a model file "
                                    "(no registry)")
    gate.add_argument("--model", help="the model file (default: the one the spec names, built "
                                      "by Bazel)")
    gate.add_argument("--release", help="the release record to judge it against (default: "
                                        "the spec's)")
    local = commands.add_parser("local-registry", parents=[common],
                                help="start (or --stop) the embedded local registry")
    local.add_argument("--stop", action="store_true", help="stop it")
    return top


def _spec(args):
    """The image's spec the flags name (--spec: a path; --spec-runfile: in the runfiles),
    or None."""
    if getattr(args, "spec", None):
        return imagespec.load(_user_path(args.spec))
    if getattr(args, "spec_runfile", None):
        rlocation = args.spec_runfile
        if os.path.exists(rlocation):  # relative to the runfiles tree, where we start
            return imagespec.load(os.path.abspath(rlocation))
        from tools.image import build  # pylint: disable=import-outside-toplevel
        try:
            return imagespec.load(build.runfile(rlocation, "--spec-runfile"))
        except build.BuildError as err:
            raise errors.UsageError(str(err)) from None
    return None


def _settings(args, environ, spec=None):
    default = settings_lib.default_repository(spec.served_name) if spec else None
    settings = settings_lib.load(environ, registry=getattr(args, "registry", None),
                                 repository=getattr(args, "repository", None), default=default)
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


def _in_checkout(path):
    """`path` in the checkout `bazel run` started from (what a commit changes, and what CI
    judges, also when the tool runs outside Bazel), else None (the runfiles copy)."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    found = os.path.join(workspace, path) if workspace else None
    return found if found and os.path.isfile(found) else None


def _gate(args, spec):
    """`gate`: the spec's model release gate on a model file; exit 0 accepted, 1 refused."""
    if spec is None:
        raise errors.UsageError("gate runs the image's model release gate: run `bazel run "
                                "//<pkg>:<name>.release -- gate` (or give --spec)")
    if args.model:
        model = _user_path(args.model)
    else:
        model = imagespec.local(spec, spec.model, "model")
    release = _user_path(args.release) if args.release else _in_checkout(spec.release.path)
    checks = imagespec.run_gate(spec, model, release)
    print(f"model release gate {spec.release_gate} for {args.model or spec.model.path}:")
    for check in checks:
        print(f"  {'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    failed = [check.name for check in checks if not check.ok]
    if failed or not checks:
        print(f"REFUSED: {len(failed)} check(s) failed: {'; '.join(failed)}" if checks
              else "REFUSED: the gate returned no checks")
        return EXIT_FAILED
    print("ACCEPTED")
    return 0


def _check_before_the_registry(args, spec):
    """What validate and publish need of the spec and the archive, refused before any
    registry is started; completes publish's default --archive from the spec."""
    if args.command == "validate" and spec is None:
        raise errors.UsageError(
            "validate runs the image's own release gates, so it needs the image's spec: "
            "run `bazel run //<pkg>:<name>.release -- validate ...` (model_image generates "
            "it), not //tools/release")
    if args.command != "publish":
        return
    if not args.archive:
        if spec is None:
            raise errors.UsageError("publish needs --archive (or run the image's own "
                                    "`<name>.release`, whose spec names the archive)")
        args.archive = os.path.join("dist", spec.image_name + ".oci.tar")
    if not os.path.isfile(_user_path(args.archive)):
        raise errors.UsageError(f"--archive {_user_path(args.archive)}: no such file (build "
                                f"it with `bazel run //<pkg>:image`)")


def _result(args):
    """The reproducibility check's result file."""
    path = _user_path(args.result)
    try:
        with open(path, encoding="utf-8") as text:
            result = json.load(text)
        image.require_digest(result.get("digest"))
        return result
    except (OSError, ValueError, AttributeError) as err:
        raise errors.UsageError(f"--result {path}: not a result of `repro --result` "
                                f"({err})") from None


def _provenance(args, spec, settings, trust):
    """The SLSA provenance predicate of the published build (None without a signing
    key: nothing would sign it)."""
    if not trust.cosign_key:
        return None
    from tools.release import provenance  # pylint: disable=import-outside-toplevel
    archive = _user_path(args.archive)
    report = _user_path(args.build_report) if args.build_report else \
        os.path.splitext(os.path.splitext(archive)[0])[0] + ".json"
    return provenance.of_build(report, spec, settings, os.environ)


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
    spec = _spec(args)
    if args.command == "gate":
        return _gate(args, spec)
    _check_before_the_registry(args, spec)
    trust = trust_lib.load(environ)
    releases = Releases(_settings(args, environ, spec), log=_log, spec=spec, trust=trust)
    return _COMMANDS[args.command](args, releases, environ)


def _publish(args, releases, environ):
    del environ
    archive = _user_path(args.archive)
    published = releases.publish(
        archive, provenance=_provenance(args, releases.spec, releases.settings,
                                        releases.trust.trust))
    if args.dotenv:
        _write_dotenv(_user_path(args.dotenv), published)
    print(f"{releases.settings.base}:{published.candidate_tag}")
    print(published.digest)
    return 0


def _validate(args, releases, environ):
    del environ
    passed, checks = releases.validate(args.digest)
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.gate}: {check.name}: "
              f"{check.detail}")
    print(f"{'VALID' if passed else 'INVALID'} {args.digest}")
    return 0 if passed else EXIT_FAILED


def _attest_reproducible(args, releases, environ):
    print(releases.trust.attest_reproducible(_result(args), environ))
    return 0


def _verify(args, releases, environ):
    del environ
    checks = releases.verify(args.digest)
    for check in checks:
        print(f"{'PASS' if check.ok else 'FAIL'}  {check.name}: {check.detail}")
    passed = bool(checks) and all(check.ok for check in checks)
    print(f"{'VERIFIED' if passed else 'NOT VERIFIED'} {args.digest}")
    return 0 if passed else EXIT_FAILED


def _promote(args, releases, environ):
    del environ
    for move in releases.promote(args.digest, args.tag, args.version_tag):
        print(f"{move.reference} -> {move.digest}")
    return 0


def _rollback(args, releases, environ):
    del environ
    move = releases.rollback(args.tag)
    print(f"{move.reference} -> {move.digest} (was {move.previous})")
    return 0


def _history(args, releases, environ):
    del environ
    records = releases.records()
    if args.json:
        for entry in records:
            print(json.dumps(entry, sort_keys=True))
    else:
        print(_table(records))
    return 0


_COMMANDS = {"publish": _publish, "validate": _validate,
             "attest-reproducible": _attest_reproducible, "verify": _verify,
             "promote": _promote, "rollback": _rollback, "history": _history}


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
