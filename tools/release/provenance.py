"""The SLSA provenance of a published build, from its build report, the checkout's
locks and the CI job's environment (tools/trust/provenance.py writes the statement).

What must differ between two publishes of the same commit, and nothing else:
the invocation (CI job URL), the builder and the build's start and finish times.
"""

import datetime
import getpass
import json
import os
import socket

from tools.release import errors, labels as labels_lib

DEFAULT_TARGET = "//:image.release"


def builder_id(environ):
    """Who ran the build: the GitLab runner (CI), else user@host (a workstation)."""
    server, project = environ.get("CI_SERVER_URL"), environ.get("CI_PROJECT_PATH")
    if server and project and environ.get("CI_RUNNER_ID"):
        return f"{server}/{project}/-/runners/{environ['CI_RUNNER_ID']}"
    return f"local:{getpass.getuser()}@{socket.gethostname()}"


def invocation_id(environ, report):
    """The build job's URL (recorded by the build in its report), else this job's."""
    return report.get("invocation") or environ.get("CI_JOB_URL") or \
        f"local:{getpass.getuser()}@{socket.gethostname()}"


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _model(labels):
    """The model artifact the labels name (its version is its sha256)."""
    version = labels.get("io.modelship.model.version")
    if not version:
        return None
    return {"name": labels.get("io.modelship.model.name") or "model", "sha256": version}


def of_build(report_path, spec, settings, environ):
    """The SLSA v1 provenance predicate of the build whose report is `report_path`."""
    from tools.trust import provenance  # pylint: disable=import-outside-toplevel
    try:
        with open(report_path, encoding="utf-8") as text:
            report = json.load(text)
    except (OSError, ValueError) as err:
        raise errors.UsageError(
            f"the build report {report_path} cannot be read ({err}); give --build-report "
            f"(the image build writes <image_name>.json beside the archive)") from None
    workspace = environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace or not os.path.isdir(workspace):
        raise errors.UsageError("publish attests the build's provenance from the checkout's "
                                "locks: run it in the checkout (`bazel run "
                                "//<pkg>:<name>.release -- publish`)")
    labels = report.get("labels") or {}
    statement = provenance.slsa_provenance(
        image_name=spec.image_name if spec else labels.get("org.opencontainers.image.title"),
        digest=report["digest"],
        repository=settings.base,
        git_sha=labels.get(labels_lib.REVISION),
        source_url=labels.get("org.opencontainers.image.source"),
        target=environ.get("MODELSHIP_RELEASE_TARGET") or DEFAULT_TARGET,
        builder_id=report.get("builder") or builder_id(environ),
        invocation_id=invocation_id(environ, report),
        started_on=report.get("started") or report.get("finished") or _now(),
        finished_on=report.get("finished") or _now(),
        workspace=workspace,
        model=_model(labels),
        locks_root=provenance.modelship_root())
    return statement["predicate"]
