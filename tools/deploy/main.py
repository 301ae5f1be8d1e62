"""Canary deploys with real traffic shifting: `bazel run //tools/deploy -- <command>`.

    deploy     --image REF@sha256:D            D becomes the stable track
    canary     --image REF@sha256:D --weight N  N % of requests to the canary D
    promote                                    the canary becomes stable
    rollback   [--release-history FILE]        drop the canary, or back to the previous stable
    status                                     JSON: tracks, digests, weights
    run-canary --image REF@sha256:D --steps 10,25,50 [--interval S] [--auto]
    down                                       local: stop nginx, containers, dockerd

Targets: --target local (containers behind nginx) or kubernetes (kubectl).
Exit status: 0 ok, 1 gate failed and rolled back (or the runtime failed),
2 bad input. See tools/deploy/README.md.
"""

import argparse
import json
import os
import sys

from tools.deploy import canary as canary_lib
from tools.deploy import gate
from tools.deploy import images
from tools.deploy import state as state_lib
from tools.deploy import verify as verify_lib
from tools.deploy.errors import DeployError, GateFailed, InputError

TARGETS = ("local", "kubernetes")


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        print(f"deploy: {message}", file=sys.stderr)
        sys.exit(2)


def _common(parser, suppress):
    default = argparse.SUPPRESS if suppress else None
    parser.add_argument("--target", choices=TARGETS, default=default if suppress else "local",
                        help="where to deploy (default local)")
    parser.add_argument("--state-dir", default=default,
                        help="state folder (default ~/.cache/modelship/deploy/<target>)")
    parser.add_argument("--name", default=default,
                        help="name of the tracks' containers (local) and objects (kubernetes): "
                        "NAME-stable, NAME-canary (default: the last path component of the "
                        "first --image's repository, e.g. iris for registry.example/team/"
                        "iris@sha256:...; fixed for the state dir)")
    local = parser.add_argument_group("local target")
    local.add_argument("--port", type=int, default=default,
                       help="nginx listens on 127.0.0.1:PORT (default 8080, set at first use)")
    k8s = parser.add_argument_group("kubernetes target")
    for flag, text in (("--namespace", "namespace (default modelship)"),
                       ("--host", "Ingress host (default NAME.local)"),
                       ("--kubectl", "kubectl binary (default kubectl)"),
                       ("--context", "kubectl context"),
                       ("--manifests", "also write rendered manifests to this folder")):
        k8s.add_argument(flag, default=default, help=text)
    k8s.add_argument("--replicas", type=int, default=default, help="pods per track (default 2)")


def _parser():
    parser = _Parser(prog="deploy", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="command", parser_class=_Parser)
    commands.required = True

    def command(name, text):
        sub = commands.add_parser(name, help=text, description=text)
        _common(sub, suppress=True)
        return sub

    sub = command("deploy", "make --image the stable track")
    sub.add_argument("--image", required=True, help="REF@sha256:<64 hex>")
    sub.add_argument("--archive", help="local: load the image from this OCI archive")
    sub = command("canary", "start the canary or set its weight")
    sub.add_argument("--image", help="REF@sha256:<64 hex> (omit to change the weight only)")
    sub.add_argument("--weight", type=int, required=True, help="percent of requests, 0..100")
    sub.add_argument("--archive", help="local: load the image from this OCI archive")
    command("promote", "the canary becomes the stable track")
    sub = command("rollback", "drop the canary, or return stable to the previous stable")
    sub.add_argument("--release-history",
                     help="JSON lines of `bazel run //tools/release -- history --json`")
    command("status", "print tracks, digests and weights as JSON")
    sub = command("run-canary", "step the canary through weights, gated on metrics")
    sub.add_argument("--image", required=True, help="REF@sha256:<64 hex>")
    sub.add_argument("--archive", help="local: load the image from this OCI archive")
    sub.add_argument("--steps", default="10,25,50", help="weights, e.g. 10,25,50,100")
    sub.add_argument("--interval", type=float, default=60.0, help="seconds per step")
    sub.add_argument("--auto", action="store_true", help="promote after the last step")
    sub.add_argument("--max-holds", type=int, default=2,
                     help="extra intervals a quiet step may wait before it aborts")
    sub.add_argument("--report", help="also write the final JSON report to this file")
    defaults = gate.Bounds()
    sub.add_argument("--min-requests", type=int, default=defaults.min_requests)
    sub.add_argument("--max-error-ratio", type=float, default=defaults.max_error_ratio)
    sub.add_argument("--max-error-ratio-increase", type=float,
                     default=defaults.max_error_ratio_increase)
    sub.add_argument("--max-p99", type=float, default=defaults.max_p99_s, help="seconds")
    sub.add_argument("--max-p99-ratio", type=float, default=defaults.max_p99_ratio)
    sub.add_argument("--p99-slack", type=float, default=defaults.p99_slack_s,
                     help="seconds the canary p99 may exceed ratio x stable's (noise)")
    sub.add_argument("--stable-metrics",
                     help="kubernetes: URL[,URL...] of stable's pods' /metrics (default: "
                     "every stable pod, read through the API server)")
    sub.add_argument("--canary-metrics",
                     help="kubernetes: URL[,URL...] of canary's pods' /metrics (default: "
                     "every canary pod, read through the API server)")
    command("down", "local: stop nginx, every container and the private dockerd")
    return parser


def _path(value):
    """A user path, relative to where `bazel run` was started."""
    if value is None or os.path.isabs(value):
        return value
    return os.path.join(os.environ.get("BUILD_WORKING_DIRECTORY", os.getcwd()), value)


def make_target(options, kubectl=None):
    """The target object the options name; the commands that start images check their
    signatures first (verify.py)."""
    state = state_lib.State(_path(options.state_dir) or state_lib.default_dir(options.target),
                            options.target)
    if options.target == "local":
        from tools.deploy import local  # pylint: disable=import-outside-toplevel
        target = local.LocalTarget(state, options)
    else:
        from tools.deploy import kubernetes  # pylint: disable=import-outside-toplevel
        target = kubernetes.KubernetesTarget(state, options, kubectl=kubectl)
    if getattr(options, "command", None) in ("deploy", "canary", "run-canary", "rollback"):
        target.verify = verify_lib.verifier(os.environ)
    return target


def _print(doc):
    print(json.dumps(doc, sort_keys=True), flush=True)


def run(options, kubectl=None):
    """Executes one parsed command; returns the exit status (raises typed errors)."""
    for key in ("archive", "manifests", "report", "release_history"):
        if getattr(options, key, None):
            setattr(options, key, _path(getattr(options, key)))
    if getattr(options, "port", None) is not None and not 1 <= options.port <= 65535:
        raise InputError(f"--port {options.port}: give a TCP port from 1 to 65535")
    image, steps = None, None
    if getattr(options, "image", None) is not None:
        image = images.parse(options.image)
    if options.command == "run-canary":
        steps = canary_lib.parse_steps(options.steps)
        if options.interval <= 0:
            raise InputError(f"--interval {options.interval}: give a positive number of seconds")
    if options.command == "canary" and not 0 <= options.weight <= 100:
        raise InputError(f"--weight {options.weight}: give a whole number from 0 to 100")
    target = make_target(options, kubectl)
    command = options.command
    if command == "deploy":
        target.deploy(image, options.archive)
        _print(target.status())
    elif command == "canary":
        target.canary(image, options.weight, options.archive)
        _print(target.status())
    elif command == "promote":
        target.promote()
        _print(target.status())
    elif command == "rollback":
        _print(target.rollback(options.release_history))
    elif command == "status":
        _print(target.status())
    elif command == "down":
        target.down()
        _print({"down": True})
    elif command == "run-canary":
        bounds = gate.Bounds(options.min_requests, options.max_error_ratio,
                             options.max_error_ratio_increase, options.max_p99,
                             options.max_p99_ratio, options.p99_slack)
        try:
            report = canary_lib.run(target, image, steps, options.interval, bounds,
                                    auto=options.auto, max_holds=options.max_holds,
                                    archive=options.archive, emit=_print)
        except GateFailed as err:
            _write_report(options.report, err.report)
            _print({"report": err.report})
            raise
        _write_report(options.report, report)
        _print({"report": report})
    return 0


def _write_report(path, report):
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=1, sort_keys=True)
            out.write("\n")


def main(argv=None, kubectl=None):
    """Entry point: the exit status."""
    options = _parser().parse_args(argv)
    try:
        return run(options, kubectl)
    except InputError as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 2
    except DeployError as err:
        print(f"deploy: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("deploy: interrupted", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
