"""What proves a release: signatures and attestations made at publish, checked at
validate, promote and rollback, and by tools/deploy before it runs an image.

Two signature formats, so that every verifier our users run can check our images:
- cosign's (what Kubernetes admission and `cosign verify --key` check), made and
  checked by tools/trust/cosign.py, stored under the tag `sha256-<hex>.sig`;
- containers' simple signing with GPG (podman, CRI-O, OpenShift), made and checked
  by skopeo itself (tools/trust/simplesigning.py), stored in lookaside storage.
Attestations are in-toto statements in DSSE envelopes signed with the cosign key,
under `sha256-<hex>.att`: the SBOM the image ships, the SLSA provenance, the
model's own signature (OpenSSF model-signing) and the reproducibility proof.

Every signature is for the identity `<registry>/<repository>` of the settings:
the repository the image is released from. Nothing here changes the image or its
digest. Settings come from the environment (TrustSettings.load); keys are files
(GitLab file variables), passwords masked variables, never flags.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile

from tools.release import errors

SBOM = "https://spdx.dev/Document"
PROVENANCE = "https://slsa.dev/provenance/v1"
MODEL_SIGNATURE = "https://modelship.dev/attestations/model-signature/v1"
REPRODUCIBLE = "https://modelship.dev/attestations/reproducible/v1"
PREDICATES = {"sbom": SBOM, "provenance": PROVENANCE, "model signature": MODEL_SIGNATURE,
              "reproducibility": REPRODUCIBLE}
# Where the production image ships its SBOM, <image name>.spdx.json (the Dockerfile's
# production stage; tools/trust/sbom.py writes it), as apko/Chainguard images do.
SBOM_DIR = "var/lib/db/sbom"

_SECRETS = ("MODELSHIP_COSIGN_PASSWORD", "COSIGN_PASSWORD", "MODELSHIP_GPG_PASSPHRASE")


@dataclasses.dataclass(frozen=True)
class TrustSettings:
    """Keys and rules; paths are files (GitLab file variables hold paths)."""

    cosign_key: str = None
    cosign_password: str = dataclasses.field(default=None, repr=False)
    cosign_public_key: str = None
    gpg_key: str = None
    gpg_passphrase: str = dataclasses.field(default=None, repr=False)
    gpg_public_key: str = None
    lookaside: str = None
    lookaside_staging: str = None
    verify: bool = True
    require_reproducible: bool = True

    @property
    def signs(self):
        """True when publish has a key to sign with."""
        return bool(self.cosign_key or self.gpg_key)


def _flag(environ, name, default, problems):
    raw = environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in ("0", "1", "true", "false"):
        problems.append(f"{name} has value {raw!r}: use 1 or true (yes), 0 or false (no)")
        return default
    return raw in ("1", "true")


def _file(environ, name, problems, what):
    path = environ.get(name) or None
    if path and not os.path.isfile(path):
        problems.append(f"{name} names {path!r}, which is not a file: give the path of "
                        f"{what} (a GitLab file variable holds one)")
    return path


def load(environ):
    """TrustSettings from the environment; raises UsageError naming every problem.
    Passwords are taken out of os.environ afterwards, so that no child inherits them."""
    problems = []
    settings = TrustSettings(
        cosign_key=_file(environ, "MODELSHIP_COSIGN_KEY", problems,
                         "the cosign private key (cosign.key)"),
        cosign_password=environ.get("MODELSHIP_COSIGN_PASSWORD",
                                    environ.get("COSIGN_PASSWORD")),
        cosign_public_key=_file(environ, "MODELSHIP_COSIGN_PUBLIC_KEY", problems,
                                "the cosign public key (cosign.pub)"),
        gpg_key=_file(environ, "MODELSHIP_GPG_KEY", problems,
                      "the armored GPG secret key"),
        gpg_passphrase=environ.get("MODELSHIP_GPG_PASSPHRASE"),
        gpg_public_key=_file(environ, "MODELSHIP_GPG_PUBLIC_KEY", problems,
                             "the armored GPG public key"),
        lookaside=environ.get("MODELSHIP_LOOKASIDE") or None,
        lookaside_staging=environ.get("MODELSHIP_LOOKASIDE_STAGING") or None,
        verify=_flag(environ, "MODELSHIP_VERIFY", True, problems),
        require_reproducible=_flag(environ, "MODELSHIP_REQUIRE_REPRODUCIBLE", True, problems))
    if settings.cosign_key and settings.cosign_password is None:
        problems.append("MODELSHIP_COSIGN_KEY is set but MODELSHIP_COSIGN_PASSWORD is not "
                        "(a masked CI variable; empty for a key without a password)")
    if (settings.gpg_key or settings.gpg_public_key) and not settings.lookaside:
        problems.append("GPG signatures live in lookaside storage: set MODELSHIP_LOOKASIDE to "
                        "the URL they are read from (docs/lookaside.md)")
    if settings.gpg_key and not settings.lookaside_staging:
        problems.append("MODELSHIP_GPG_KEY is set but MODELSHIP_LOOKASIDE_STAGING is not: the "
                        "folder publish writes GPG signatures into (then uploaded to "
                        "MODELSHIP_LOOKASIDE)")
    if settings.lookaside and not settings.lookaside.startswith(
            ("http://", "https://", "file://")):
        problems.append(f"MODELSHIP_LOOKASIDE has value {settings.lookaside!r}: give an "
                        f"http(s):// or file:// URL")
    if problems:
        raise errors.UsageError("; ".join(problems))
    for name in _SECRETS:
        os.environ.pop(name, None)
    return settings


def _read(path, what):
    try:
        with open(path, "rb") as data:
            return data.read()
    except OSError as err:
        raise errors.UsageError(f"{what} {path}: {err.strerror}") from None


@dataclasses.dataclass(frozen=True)
class Check:
    """One verification: `what` (cosign signature, sbom, ...), ok, and why."""

    name: str
    ok: bool
    detail: str


class Trust:
    """Signing and verification of one repository's releases."""

    def __init__(self, trust, settings, client, log=None):
        self.trust = trust
        self.settings = settings
        self.client = client
        self.log = log or (lambda message: None)

    @property
    def identity(self):
        """What signatures are made for: `<registry>/<repository>`."""
        return self.settings.base

    # --- keys ------------------------------------------------------------------

    def _private_key(self):
        from tools.trust import keys  # pylint: disable=import-outside-toplevel
        from tools.trust.errors import TrustError  # pylint: disable=import-outside-toplevel
        pem = _read(self.trust.cosign_key, "MODELSHIP_COSIGN_KEY")
        try:
            return keys.load_private_key(pem, (self.trust.cosign_password or "").encode())
        except TrustError as err:
            raise errors.UsageError(f"MODELSHIP_COSIGN_KEY: {err}") from None

    def _public_key(self):
        from tools.trust import keys  # pylint: disable=import-outside-toplevel
        from tools.trust.errors import TrustError  # pylint: disable=import-outside-toplevel
        pem = _read(self.trust.cosign_public_key, "MODELSHIP_COSIGN_PUBLIC_KEY")
        try:
            return keys.load_public_key(pem)
        except TrustError as err:
            raise errors.UsageError(f"MODELSHIP_COSIGN_PUBLIC_KEY: {err}") from None

    # --- publish -----------------------------------------------------------------

    def sign(self, pushed, provenance=None):
        """Signs the pushed image in every format a key is configured for and attaches
        its attestations; returns what the history records (`signatures`)."""
        from tools.trust import cosign, dsse  # pylint: disable=import-outside-toplevel
        from tools.trust.errors import TrustError  # pylint: disable=import-outside-toplevel
        done = {}
        try:
            if self.trust.cosign_key:
                key = self._private_key()
                self.log(f"signing {pushed.reference} (cosign format, identity "
                         f"{self.identity})")
                done["cosign"] = cosign.signature_tag(pushed.digest)
                cosign.sign_image(self.client, pushed.digest, key, self.identity)
                attached = {}
                for name, predicate in self._predicates(pushed, key, provenance):
                    statement = cosign.in_toto_statement(self.identity, pushed.digest,
                                                         PREDICATES[name], predicate)
                    envelope = dsse.sign("application/vnd.in-toto+json", statement, key)
                    cosign.attach_attestation(self.client, pushed.digest, envelope,
                                              PREDICATES[name])
                    attached[name] = "sha256:" + hashlib.sha256(statement).hexdigest()
                done["attestations"] = cosign.attestation_tag(pushed.digest)
                done["attested"] = attached
            if self.trust.gpg_key:
                self.log(f"signing {pushed.reference} (simple signing, GPG, into "
                         f"{self.trust.lookaside_staging})")
                self._gpg_sign(pushed)
                done["gpg"] = self.trust.lookaside
        except TrustError as err:
            raise errors.RefusedError(f"signing {pushed.reference} failed: {err}") from None
        return done

    def _predicates(self, pushed, key, provenance):
        """(name, predicate) of the attestations publish makes."""
        yield "sbom", json.loads(self._sbom(pushed))
        if provenance is not None:
            yield "provenance", provenance
        model_path = _model_path(pushed)
        if model_path:
            yield "model signature", self._model_signature(pushed, model_path, key)

    @staticmethod
    def _sbom(pushed):
        path = sbom_path(pushed)
        try:
            return pushed.file(path)
        except errors.RefusedError:
            raise errors.RefusedError(f"{pushed.reference} ships no SBOM (/{path}): build it "
                                      f"with this modelship (its production stage writes "
                                      f"one)") from None

    def _model_signature(self, pushed, model_path, key):
        from tools.trust import model  # pylint: disable=import-outside-toplevel
        data = pushed.file(model_path)
        with _scratch() as scratch:
            path = os.path.join(scratch, os.path.basename(model_path))
            with open(path, "wb") as out:
                out.write(data)
            bundle = model.sign_model(path, key)
        return {"file": os.path.basename(model_path),
                "sha256": hashlib.sha256(data).hexdigest(),
                "bundle": json.loads(bundle)}

    def attest_reproducible(self, result, environ):
        """Signs and attaches the reproducibility attestation of a check's result
        (tools/image/repro.py --result): the digest a clean independent rebuild gave
        equals the shipped build's. The image need not be pushed yet: the attestation
        is stored under its digest's `.att` tag, where promote looks for it."""
        # pylint: disable=import-outside-toplevel
        from tools.trust import cosign, dsse, provenance
        from tools.trust.errors import TrustError
        from tools.release import provenance as release_provenance
        if not self.trust.cosign_key:
            raise errors.UsageError("attesting reproducibility needs the signing key: set "
                                    "MODELSHIP_COSIGN_KEY and MODELSHIP_COSIGN_PASSWORD")
        digest, rebuilt = result.get("digest"), result.get("rebuild_digest")
        if not result.get("identical") or digest != rebuilt:
            raise errors.RefusedError(f"the reproducibility check found {digest} and "
                                      f"{rebuilt}: not identical, nothing to attest")
        key = self._private_key()
        try:
            predicate = provenance.reproducibility_predicate(
                digest=digest, rebuild_digest=rebuilt, git_sha=result.get("git_sha"),
                builder_id=release_provenance.builder_id(environ),
                invocation_id=release_provenance.invocation_id(environ, {}))
            statement = cosign.in_toto_statement(self.identity, digest, REPRODUCIBLE,
                                                 predicate)
            envelope = dsse.sign("application/vnd.in-toto+json", statement, key)
            # The reproducibility job runs before publish: the image may not be pushed yet.
            cosign.attach_attestation(self.client, digest, envelope, REPRODUCIBLE,
                                      require_image=False)
        except TrustError as err:
            raise errors.RefusedError(f"attesting {digest} failed: {err}") from None
        return cosign.attestation_tag(digest)

    def _gpg_sign(self, pushed):
        from tools.trust import simplesigning  # pylint: disable=import-outside-toplevel
        from tools.release import skopeo  # pylint: disable=import-outside-toplevel
        armored = _read(self.trust.gpg_key, "MODELSHIP_GPG_KEY")
        with simplesigning.Keyring() as ring, _scratch() as scratch, \
                skopeo.auth_file(self.settings) as auth:
            fingerprint = ring.import_secret_key(armored, self.trust.gpg_passphrase)
            registries_d = simplesigning.write_registries_d(
                os.path.join(scratch, "registries.d"), self.settings.registry,
                self.trust.lookaside, self.trust.lookaside_staging)
            simplesigning.sign(registry=self.settings.registry,
                               repository=self.settings.repository, digest=pushed.digest,
                               fingerprint=fingerprint, keyring=ring,
                               registries_d=registries_d, tls=self.settings.tls,
                               auth_file=auth)

    # --- validate, promote, rollback, deploy ---------------------------------------

    def checks(self, pushed):
        """Every verification of the pushed image, as Checks (all run, so one report
        shows every problem). Empty when verification is off."""
        if not self.trust.verify:
            self.log(f"MODELSHIP_VERIFY=0: the signatures of {pushed.digest} are not "
                     f"checked")
            return []
        if not (self.trust.cosign_public_key or self.trust.gpg_public_key):
            return [Check("signatures", False,
                          f"no public key to verify {pushed.digest} with: set "
                          f"MODELSHIP_COSIGN_PUBLIC_KEY (and MODELSHIP_GPG_PUBLIC_KEY) to the "
                          f"release keys, or MODELSHIP_VERIFY=0 to release unsigned images "
                          f"(never in production)")]
        found = []
        if self.trust.cosign_public_key:
            found += self._cosign_checks(pushed, self._public_key())
        if self.trust.gpg_public_key:
            found.append(self._check("GPG signature (simple signing, via skopeo)",
                                     lambda: self._gpg_verify(pushed)))
        return found

    def require(self, pushed, why=""):
        """Raises RefusedError naming the digest and every failed check."""
        failed = [check for check in self.checks(pushed) if not check.ok]
        if failed:
            raise errors.RefusedError(
                f"{why}{pushed.reference} does not verify: "
                + "; ".join(f"{check.name}: {check.detail}" for check in failed))

    @staticmethod
    def _check(name, run):
        from tools.trust.errors import TrustError  # pylint: disable=import-outside-toplevel
        try:
            detail = run()
        except (TrustError, errors.ReleaseError) as err:
            return Check(name, False, str(err))
        return Check(name, True, detail or "verified")

    def _cosign_checks(self, pushed, public_key):
        from tools.trust import cosign  # pylint: disable=import-outside-toplevel
        checks = [self._check(
            "cosign signature",
            lambda: _signed_detail(cosign.verify_image(self.client, pushed.digest,
                                                       public_key, self.identity)))]
        statements = {}

        def attestation(name):
            def run():
                found = cosign.verify_attestations(self.client, pushed.digest, public_key,
                                                   PREDICATES[name])
                statements[name] = found[-1]
                return self._attestation_detail(name, pushed, found[-1], public_key)
            return run

        names = ["sbom", "provenance"]
        if _model_path(pushed):
            names.append("model signature")
        if self.trust.require_reproducible:
            names.append("reproducibility")
        for name in names:
            checks.append(self._check(f"{name} attestation", attestation(name)))
        return checks

    def _attestation_detail(self, name, pushed, statement, public_key):
        predicate = statement.get("predicate")
        if name == "sbom":
            shipped = json.loads(self._sbom(pushed))
            if predicate != shipped:
                raise errors.RefusedError("the attested SBOM is not the SBOM the image ships "
                                          f"(/{sbom_path(pushed)})")
            return f"{len(predicate.get('packages', []))} packages, equal to the shipped SBOM"
        if name == "provenance":
            revision = pushed.labels.get("org.opencontainers.image.revision")
            commits = json.dumps(predicate.get("buildDefinition", {})
                                 .get("externalParameters", {}))
            if not revision or revision not in commits:
                raise errors.RefusedError(f"the provenance does not name the image's commit "
                                          f"{revision}")
            return f"commit {revision[:12]}"
        if name == "model signature":
            return self._verify_model(pushed, predicate, public_key)
        hexdigest = pushed.digest.split(":", 1)[1]
        rebuild = (predicate or {}).get("rebuild") or {}
        rebuilt = (rebuild.get("digest") or {}).get("sha256")
        if (predicate or {}).get("digest", {}).get("sha256") != hexdigest \
                or rebuilt != hexdigest:
            raise errors.RefusedError(f"the attested rebuild gave sha256:{rebuilt}, not "
                                      f"{pushed.digest}")
        return (f"a clean rebuild gave the same digest (builder "
                f"{(rebuild.get('builder') or {}).get('id')})")

    def _verify_model(self, pushed, predicate, public_key):
        # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import serialization
        from tools.trust import model
        path = _model_path(pushed)
        data = pushed.file(path)
        digest = hashlib.sha256(data).hexdigest()
        if predicate.get("sha256") != digest:
            raise errors.RefusedError(f"the model signature is for a model of sha256 "
                                      f"{predicate.get('sha256')}, the image ships {digest}")
        with _scratch() as scratch:
            local = os.path.join(scratch, os.path.basename(path))
            with open(local, "wb") as out:
                out.write(data)
            pem = public_key.public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
            model.verify_model(local, json.dumps(predicate["bundle"]).encode(), pem)
        return f"{os.path.basename(path)} (sha256 {digest[:12]}) signed with model-signing"

    def _gpg_verify(self, pushed):
        from tools.trust import simplesigning  # pylint: disable=import-outside-toplevel
        from tools.release import skopeo  # pylint: disable=import-outside-toplevel
        with _scratch() as scratch, skopeo.auth_file(self.settings) as auth:
            registries_d = simplesigning.write_registries_d(
                os.path.join(scratch, "registries.d"), self.settings.registry,
                self.trust.lookaside)
            simplesigning.verify(registry=self.settings.registry,
                                 repository=self.settings.repository, digest=pushed.digest,
                                 public_key_file=self.trust.gpg_public_key,
                                 registries_d=registries_d, tls=self.settings.tls,
                                 auth_file=auth)
        return f"signed for {self.identity}, lookaside {self.trust.lookaside}"


def sbom_path(pushed):
    """The SBOM's path in the image (relative to /), from its title label."""
    name = pushed.labels.get("org.opencontainers.image.title") or "image"
    return f"{SBOM_DIR}/{name}.spdx.json"


def _signed_detail(payload):
    critical = (payload or {}).get("critical", {})
    return f"signed for {critical.get('identity', {}).get('docker-reference')}"


def _model_path(pushed):
    """The model file the image serves (its MODELSHIP_MODEL_PATH), relative to /."""
    for entry in (pushed.config.get("config") or {}).get("Env") or []:
        name, _, value = entry.partition("=")
        if name == "MODELSHIP_MODEL_PATH" and value.startswith("/"):
            return value.lstrip("/")
    return None


@contextlib.contextmanager
def _scratch():
    folder = tempfile.mkdtemp(prefix="modelship-trust-")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
