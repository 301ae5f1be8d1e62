"""The canary drill: real containers, real nginx, steady traffic, measured.

    bazel run //:image -- --target production
    bazel run //tools/deploy:drill -- --archive dist/<image_name>.oci.tar
        [--repository REPO] [--served-name NAME] [--request FILE]

From the production archive it derives a second good release and two bad
ones (variants.py), then, with the load generator sending steady OIP infer
traffic through nginx all along, runs through the local target's CLI:
  1. good canary: 10 -> 25 -> 50 -> 100 %, each step gated, then promoted;
  2. bad canaries (errors; slow): caught at the first step, rolled back;
  3. a manual `rollback --release-history` after the promotion.
It prints, per scenario, the client requests that failed, the time from
fault to rollback and the traffic split observed at each step against the
weight set, as JSON and as the Markdown table of docs/benchmarks.md.
Everything runs in a scratch folder (private buildah storage, dockerd, nginx)
removed at the end. Needs root (buildah, dockerd).

Nothing in it is particular to one model: the images are named after the
archive's title label (`--repository`, default 127.0.0.1:5000/<title>; nothing
is pulled from it), the model is addressed by its served name (the archive's
io.modelship.model.served-name label, or `--served-name`), and the load
generator's request comes from the model's own metadata (or `--request FILE`).
"""

import contextlib
import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time

from tools import cli as convention
from tools.containers import runtime
from tools.deploy import images
from tools.deploy import loadgen
from tools.deploy import local
from tools.deploy import main as cli
from tools.deploy import variants
from tools.deploy.errors import InputError

# Where the drill's images say they come from when --repository is not given
# (the local target loads them from the archives; nothing is pulled).
REGISTRY = "127.0.0.1:5000"


def identity(archive, repository=None, served_name=None):
    """(repository, served name) of the drill's images: the options, else the archive's
    labels; InputError naming the option to pass when neither says."""
    found = variants.labels(archive) if repository is None or not served_name else {}
    if repository is None:
        title = found.get(variants.TITLE_LABEL)
        if not title:
            raise InputError(f"--archive {archive} has no {variants.TITLE_LABEL} label to name "
                             "its repository: pass --repository REPO")
        repository = f"{REGISTRY}/{title}"
    images.check_repository(repository)
    served_name = served_name or found.get(variants.SERVED_NAME_LABEL)
    if not served_name:
        raise InputError(f"--archive {archive} has no {variants.SERVED_NAME_LABEL} label: "
                         "pass --served-name NAME (the model's name in /v2/models/NAME)")
    return repository, served_name


class Drill:
    """One drill's images, state dir and front door; scenarios return their figures."""

    def __init__(self, archive, work, interval_s=4.0, rate=60.0, min_requests=10,
                 repository=None, served_name=None,
                 request_file=None):  # pylint: disable=too-many-arguments
        self.repository, self.served_name = identity(archive, repository, served_name)
        self.request_file = request_file
        self.request = None  # the infer Request, once the stable track answers
        self.work = work
        self.errors = []
        self.interval_s = interval_s
        self.rate = rate
        self.min_requests = min_requests
        self.port = runtime.free_port()
        self.state_dir = os.path.join(work, "state")
        storage = os.path.join(work, "storage")
        self.archives = {"production": archive}
        self.digests = {"production": variants.manifest_digest(archive)}
        for kind in ("good", "error", "slow"):
            out = os.path.join(work, f"{kind}.oci.tar")
            self.digests[kind] = variants.derive(archive, out, storage, kind, kind)
            self.archives[kind] = out
        shutil.rmtree(storage, ignore_errors=True)

    def image(self, kind):
        """The pinned reference of one image."""
        return f"{self.repository}@{self.digests[kind]}"

    def cli(self, *args):
        """(exit status, JSON documents printed) of one deploy command."""
        out, err = io.StringIO(), io.StringIO()
        # The drill's images are derived here and never pushed or signed: it rehearses
        # the traffic gates, not the signatures (tools/deploy/verify.py).
        saved = os.environ.get("MODELSHIP_VERIFY")
        os.environ["MODELSHIP_VERIFY"] = "0"
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                status = cli.main(["--target", "local", "--state-dir", self.state_dir,
                                   "--port", str(self.port)] + list(args))
        finally:
            if saved is None:
                os.environ.pop("MODELSHIP_VERIFY", None)
            else:
                os.environ["MODELSHIP_VERIFY"] = saved
        sys.stderr.write(err.getvalue())
        self.errors.append(err.getvalue())
        docs = [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]
        return status, docs

    def status(self):
        """The `status` document."""
        return self.cli("status")[1][-1]

    def start(self):
        """The production image as the stable track."""
        status, docs = self.cli("deploy", "--image", self.image("production"),
                                "--archive", self.archives["production"])
        if status != 0:
            raise RuntimeError(f"deploy of the production image failed: {docs} "
                               f"{self.errors[-1].strip()}")
        self.request = loadgen.model_request(self.port, self.served_name, self.request_file)

    def load(self):
        """A started load generator sending the model's request through nginx."""
        return loadgen.LoadGenerator(self.port, self.request, rate=self.rate, threads=4).start()

    def close(self):
        """Stops nginx, the containers and the dockerd."""
        self.cli("down")

    def _run_canary(self, kind, steps, auto, extra=()):
        report_path = os.path.join(self.work, f"report-{kind}.json")
        load = self.load()
        time.sleep(1.0)  # steady traffic before the canary starts
        status, _ = self.cli("run-canary", "--image", self.image(kind),
                             "--archive", self.archives[kind], "--steps", steps,
                             "--interval", str(self.interval_s),
                             "--min-requests", str(self.min_requests),
                             "--report", report_path, *(["--auto"] if auto else []), *extra)
        time.sleep(1.0)  # and after it is done
        records = load.stop()
        with open(report_path, encoding="utf-8") as text:
            report = json.load(text)
        return status, report, records

    def _figures(self, name, status, report, records):
        ports = {f"127.0.0.1:{port}": track
                 for track, port in report.get("details", {}).get("ports", {}).items()}
        steps = []
        for step in report["steps"]:
            observed = loadgen.split(records, step["started"], step["ended"], ports)
            steps.append({"weight": step["weight"], "decision": step["decision"],
                          "requests": observed["requests"],
                          "canary_assigned_pct": observed["canary_assigned_pct"],
                          "canary_served_pct": observed["canary_served_pct"],
                          "reasons": step["reasons"]})
        canary_times = [r.time for r in records if r.track == "canary"]
        figures = {
            "scenario": name, "exit": status, "result": report["result"],
            "requests": len(records), "failed": len(loadgen.failed(records)),
            "failures": [r.error or r.status for r in loadgen.failed(records)][:5],
            "stale_keepalive_resends": sum(r.stale for r in records),
            "nginx_retried_on_other_track": sum(1 for r in records
                                                if r.upstream and "," in r.upstream),
            "steps": steps,
        }
        if "traffic_back_at" in report:
            figures["fault_to_rollback_s"] = round(
                report["traffic_back_at"] - report["canary_traffic_at"], 2)
            figures["decision_to_traffic_back_s"] = round(
                report["traffic_back_at"] - report["decided_at"], 2)
            figures["last_canary_request_after_rollback_s"] = round(
                max(canary_times) - report["traffic_back_at"], 2) if canary_times else None
        return figures

    def good_canary(self):
        """Scenario 1: a good canary through 10, 25, 50, 100 %, promoted."""
        status, report, records = self._run_canary("good", "10,25,50,100", auto=True,
                                                   extra=("--max-p99-ratio", "10"))
        figures = self._figures("good canary promoted", status, report, records)
        figures["stable_after"] = self.status()["tracks"]["stable"]["digest"]
        return figures

    def bad_canary(self, kind):
        """Scenario 2: an erroring or slow canary, rolled back at the first step."""
        status, report, records = self._run_canary(
            kind, "10,25,50", auto=True, extra=("--max-p99", "0.2", "--max-p99-ratio", "10"))
        figures = self._figures(f"{kind} canary rolled back", status, report, records)
        after = self.status()
        figures["stable_after"] = after["tracks"]["stable"]["digest"]
        figures["canary_after"] = after["tracks"]["canary"]
        figures["containers_after"] = self.containers()
        return figures

    def containers(self):
        """Names of the containers running in the drill's dockerd."""
        daemon = local.Daemon(self.status()["details"]["dockerd_root"])
        return daemon.docker("ps", "--format", "{{.Names}}").stdout.split()

    def manual_rollback(self):
        """Scenario 3: `rollback --release-history` after a promotion restores the old digest."""
        history = os.path.join(self.work, "history.jsonl")
        with open(history, "w", encoding="utf-8") as out:
            for event, kind in (("publish", "production"), ("validate", "production"),
                                ("promote", "production"), ("publish", "good"),
                                ("validate", "good"), ("promote", "good")):
                reference = (f"{self.repository}:stable" if event == "promote"
                             else self.image(kind))
                out.write(json.dumps({"event": event, "digest": self.digests[kind],
                                      "reference": reference, "git_sha": "0" * 40,
                                      "model_version": "0" * 64, "api_version": "1.0",
                                      "when": "2026-12-01T00:00:00Z"}) + "\n")
        before = self.status()["tracks"]["stable"]["digest"]
        load = self.load()
        time.sleep(1.0)
        started = time.monotonic()
        status, docs = self.cli("rollback", "--release-history", history)
        took = time.monotonic() - started
        time.sleep(1.0)
        records = load.stop()
        return {"scenario": "manual rollback after promotion", "exit": status,
                "output": docs, "requests": len(records),
                "failed": len(loadgen.failed(records)),
                "failures": [r.error or r.status for r in loadgen.failed(records)][:5],
                "stale_keepalive_resends": sum(r.stale for r in records),
                "rollback_command_s": round(took, 2), "stable_before": before,
                "stable_after": self.status()["tracks"]["stable"]["digest"]}

    def run_all(self):
        """Every scenario in order (3 needs the promotion of 1)."""
        self.start()
        return [self.good_canary(), self.bad_canary("error"), self.bad_canary("slow"),
                self.manual_rollback()]


def markdown(results):
    """The figures as the table of docs/benchmarks.md."""
    lines = ["| scenario | client requests | failed | fault -> rollback | "
             "observed canary share per step (set -> chosen by split / answered by canary) |",
             "|---|---|---|---|---|"]
    for result in results:
        steps = "; ".join(f"{s['weight']}% -> {s['canary_assigned_pct']}% / "
                          f"{s['canary_served_pct']}% ({s['decision']})"
                          for s in result.get("steps", []))
        rollback = result.get("fault_to_rollback_s")
        if rollback is None and "rollback_command_s" in result:
            rollback = f"{result['rollback_command_s']} (command)"
        lines.append(f"| {result['scenario']} | {result['requests']} | {result['failed']} | "
                     f"{'-' if rollback is None else rollback} s | {steps or '-'} |")
    return "\n".join(lines)


def main(argv=None):
    """Entry point: 0 when every scenario behaved, 1 otherwise, 2 on bad input."""
    parser = convention.parser(__doc__)
    parser.add_argument("--archive", required=True,
                        help="the production OCI archive (bazel run //:image)")
    parser.add_argument("--repository",
                        help="repository the images are deployed as (default "
                        f"{REGISTRY}/<the archive's {variants.TITLE_LABEL} label>)")
    parser.add_argument("--served-name",
                        help="the model's name in /v2/models/NAME (default: the archive's "
                        f"{variants.SERVED_NAME_LABEL} label)")
    parser.add_argument("--request",
                        help="JSON file: the OIP infer request body to send (default: made "
                        "from the model's metadata, zeros of each input's type and shape)")
    parser.add_argument("--interval", type=float, default=4.0, help="seconds per step")
    parser.add_argument("--rate", type=float, default=60.0, help="requests per second")
    args = parser.parse_args(argv)
    archive = convention.user_path(args.archive)
    request_file = convention.user_path(args.request)
    # Every input is checked before anything is built or started.
    try:
        repository, served_name = identity(archive, args.repository, args.served_name)
        if request_file:
            loadgen.request_from_file(served_name, request_file)
    except (InputError, loadgen.RequestError) as err:
        print(f"drill: {err}", file=sys.stderr)
        return convention.USAGE
    except (OSError, KeyError, ValueError, tarfile.TarError) as err:
        print(f"drill: --archive {args.archive}: not an OCI archive as `bazel run //:image` "
              f"writes it ({err!r})", file=sys.stderr)
        return convention.USAGE
    work = tempfile.mkdtemp(prefix="modelship-drill-")
    drill = None
    try:
        drill = Drill(archive, work, interval_s=args.interval, rate=args.rate,
                      repository=repository, served_name=served_name,
                      request_file=request_file)
        results = drill.run_all()
    except loadgen.RequestError as err:
        print(f"drill: {err}", file=sys.stderr)
        return convention.FAILURE
    finally:
        if drill is not None:
            drill.close()
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(results, indent=1))
    print(markdown(results))
    good, error, slow, manual = results
    ok = (good["result"] == "promoted" and error["result"] == slow["result"] == "rolled back"
          and manual["stable_after"] != manual["stable_before"]
          and all(r["failed"] == 0 for r in results))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
