"""The release commands: publish, validate, promote, rollback, history.

Each takes validated Settings and returns what the CLI prints; problems are
raised as typed errors (errors.py). Nothing here rebuilds an image: after
publish, everything works on the digest.
"""

import dataclasses
import functools
import os
import re

from tools.release import errors, history, image, labels as labels_lib
from tools.release import registry as registry_lib
from tools.release import skopeo, trust as trust_lib

CANDIDATE_PREFIX = "candidate-"


@dataclasses.dataclass(frozen=True)
class Published:
    """What publish did."""

    digest: str
    image: str
    candidate_tag: str


@dataclasses.dataclass(frozen=True)
class Moved:
    """One tag pointed at a digest."""

    reference: str
    digest: str
    previous: str


class Releases:
    """The release operations on one repository."""

    def __init__(self, settings, client=None, log=None, spec=None, trust=None):
        self.settings = settings
        self.spec = spec  # the image's spec (imagespec.load); validate needs it
        self.client = client or registry_lib.Client(settings)
        self.history = history.Store(self.client, settings.history_file)
        self.log = log or (lambda message: None)
        # Keys and rules (trust.load); None: the environment's.
        self.trust = trust_lib.Trust(trust or trust_lib.load(os.environ), settings,
                                     self.client, self.log)

    def _tag_ref(self, tag):
        return f"{self.settings.base}:{tag}"

    # --- publish ------------------------------------------------------------

    def publish(self, archive, provenance=None):
        """Pushes the archive under candidate-<short sha>, then signs and attests it
        (when keys are configured: trust.py); returns Published. `provenance` is the
        SLSA predicate of the build."""
        if not os.path.isfile(archive):
            raise errors.UsageError(f"--archive {archive}: no such file (build it with "
                                    "`bazel run //<pkg>:image`)")
        labels = image.archive_labels(archive)
        labels_lib.require_releasable(labels, archive)
        self.client.ping()
        tag = CANDIDATE_PREFIX + labels[labels_lib.REVISION][:12]
        self.log(f"pushing {archive} to {self._tag_ref(tag)}")
        reported = skopeo.copy(self.settings, f"oci-archive:{archive}",
                               f"docker://{self._tag_ref(tag)}")
        digest = self.client.resolve(tag)
        if digest is None or digest != reported:
            raise errors.RegistryError(f"registry {self.client.name}: after the push "
                                       f"{self._tag_ref(tag)} resolves to {digest}, not the "
                                       f"pushed {reported}")
        signatures = {}
        if self.trust.trust.signs:
            signatures = self.trust.sign(image.Pushed(self.client, digest),
                                         provenance=provenance)
        else:
            self.log("no signing key (MODELSHIP_COSIGN_KEY, MODELSHIP_GPG_KEY): published "
                     "unsigned; promote refuses it wherever signatures are verified")
        self.history.append(history.record("publish", digest, self._tag_ref(tag), labels,
                                           tag=tag, metrics=labels_lib.metrics(labels),
                                           signatures=signatures))
        return Published(digest, f"{self.settings.base}@{digest}", tag)

    # --- validate -------------------------------------------------------------

    def validate(self, digest, run_gates=None):
        """Runs the gates on the pushed image; returns (passed, checks)."""
        from tools.release import gates  # pylint: disable=import-outside-toplevel
        if run_gates is None:
            if self.spec is None:
                raise errors.UsageError(
                    "validate runs the image's own release gates, so it needs the image's "
                    "spec: run `bazel run //<pkg>:<name>.release -- validate ...` (model_image "
                    "generates it), not //tools/release")
            run_gates = functools.partial(gates.run_all, spec=self.spec)
        pushed = image.Pushed(self.client, digest)
        checks = [_trust_check(check) for check in self.trust.checks(pushed)]
        if checks:
            failed = sum(1 for check in checks if not check.ok)
            self.log(f"validate: signatures and attestations: {len(checks)} checks, "
                     f"{failed} failed")
        checks += run_gates(self.settings, pushed)
        passed = all(check.ok for check in checks)
        figures = {}
        for check in checks:
            figures.update(check.figures)
        failed = [f"{c.gate}: {c.name}" for c in checks if not c.ok]
        self.history.append(history.record(
            "validate", digest, pushed.reference, pushed.labels,
            result="passed" if passed else "failed", metrics=figures, failed=failed))
        return passed, checks

    # --- verify ------------------------------------------------------------------

    def verify(self, digest):
        """The signature and attestation checks of a pushed digest (trust.py)."""
        image.require_digest(digest)
        return self.trust.checks(image.Pushed(self.client, digest))

    # --- promote ----------------------------------------------------------------

    def _move(self, pushed, tag):
        """Points `tag` at the pushed digest (by digest, every blob checked first) and
        reads it back; returns Moved."""
        missing = self.client.missing_blobs(pushed.manifest)
        if missing:
            raise errors.RefusedError(
                f"{pushed.reference} is incomplete in {self.client.name}: blobs "
                f"{', '.join(m[:19] for m in missing)} are missing; {tag} was not moved. "
                f"Publish the image again")
        previous = self.client.resolve(tag)
        skopeo.copy(self.settings, f"docker://{pushed.reference}",
                    f"docker://{self._tag_ref(tag)}")
        now = self.client.resolve(tag)
        if now != pushed.digest:
            raise errors.RegistryError(f"registry {self.client.name}: {self._tag_ref(tag)} "
                                       f"resolves to {now} after the copy, not "
                                       f"{pushed.digest}")
        return Moved(self._tag_ref(tag), pushed.digest, previous)

    # --- what a promote or rollback may point a tag at -------------------------------

    def _releasable(self, records, digest, why=""):
        """(Pushed, its passed validate record) when `digest` may be released: a passed
        validation recorded for this very repository, and the image still in it with
        complete labels that are the validated image's. Refuses anything else, naming
        the record. References are built from the settings only, never from a record."""
        reference = f"{self.settings.base}@{digest}"
        passed = history.validated(records, digest)
        named = history.describe(records, passed) + ": " if passed else ""
        try:
            pushed = image.Pushed(self.client, digest)
        except errors.RefusedError as err:
            raise errors.RefusedError(f"{why}{named}{err}") from err
        labels_lib.require_releasable(pushed.labels, f"{why}{pushed.reference}")
        if passed is None:
            raise errors.RefusedError(
                f"{why}{reference} has not passed validation (no passed validate record in "
                f"the release history); run `bazel run //tools/release -- validate --digest "
                f"{digest}` first")
        if passed["reference"] != reference:
            raise errors.RefusedError(
                f"{why}{named}it validated {passed['reference']!r}, not {reference}: a "
                f"record about another registry or repository does not count; validate "
                f"{digest} here")
        for field, label in (("git_sha", labels_lib.REVISION),
                             ("model_version", labels_lib.MODEL_VERSION),
                             ("api_version", labels_lib.API_VERSION)):
            if passed.get(field) != pushed.labels.get(label):
                raise errors.RefusedError(
                    f"{why}{named}it says {field} {passed.get(field)!r}, but the image's label "
                    f"{label} is {pushed.labels.get(label)!r}: the record is not about this "
                    f"image; validate {digest} again")
        self.trust.require(pushed, why)
        return pushed, passed

    def promote(self, digest, tags=("stable",), version_tag=False):
        """Moves each tag to a validated digest; returns the list of Moved."""
        image.require_digest(digest)
        records = self.history.read()
        pushed, passed = self._releasable(records, digest)
        tags = list(tags or ("stable",))
        if version_tag:
            tags.insert(0, version_tag_of(pushed.labels))
        for tag in tags:
            _require_tag(tag)
        moved = []
        for tag in tags:
            move = self._move(pushed, tag)
            moved.append(move)
            self.history.append(history.record(
                "promote", digest, move.reference, pushed.labels, tag=tag,
                previous_digest=move.previous, metrics=passed.get("metrics", {})))
        return moved

    # --- rollback ---------------------------------------------------------------

    def rollback(self, tag="stable"):
        """Points `tag` back at the release before its current one; returns Moved."""
        _require_tag(tag)
        records = self.history.read()
        stack, first = history.released_records(records, tag)
        for entry in stack + ([first] if first else []):
            if entry["reference"] != self._tag_ref(tag):
                raise errors.RefusedError(
                    f"rollback refused: {history.describe(records, entry)} moved "
                    f"{entry['reference']!r}, not {self._tag_ref(tag)}: the history of this "
                    f"tag names another registry or repository")
        if len(stack) >= 2:
            source = stack[-2]
            target = source["digest"]
        elif stack and first.get("previous_digest"):
            source = first
            target = first["previous_digest"]
        else:
            raise errors.RefusedError(f"nothing to roll back to: the release history of "
                                      f"{self._tag_ref(tag)} holds "
                                      f"{len(stack)} release(s) and no earlier digest")
        current = self.client.resolve(tag)
        if stack and current != stack[-1]["digest"]:
            self.log(f"note: {self._tag_ref(tag)} is at {current}, not the last recorded "
                     f"release {stack[-1]['digest']}; rolling back to {target} anyway")
        pushed, passed = self._releasable(
            records, target, why=f"rollback to {target} (from "
                                 f"{history.describe(records, source)}) refused: ")
        move = self._move(pushed, tag)
        self.history.append(history.record(
            "rollback", target, move.reference, pushed.labels, tag=tag,
            previous_digest=move.previous, metrics=passed.get("metrics", {})))
        return move

    # --- history ------------------------------------------------------------------

    def records(self):
        """The release history, oldest first."""
        return self.history.read()


def _trust_check(check):
    from tools.release import gates  # pylint: disable=import-outside-toplevel
    return gates.Check("signatures", check.name, check.ok, check.detail)


def version_tag_of(labels):
    """`<model version 12>-<git sha 12>`: names what is inside, unique per release."""
    return f"{labels[labels_lib.MODEL_VERSION][:12]}-{labels[labels_lib.REVISION][:12]}"


def _require_tag(tag):
    if not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z", tag) or tag == history.TAG \
            or tag.startswith(CANDIDATE_PREFIX):
        raise errors.UsageError(f"--tag {tag!r} is not a release tag (letters, numbers, '_', "
                                f"'.', '-'; not {history.TAG!r} or candidate-*)")
