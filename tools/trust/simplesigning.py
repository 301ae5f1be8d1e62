"""containers' simple signing (GPG) through skopeo, with lookaside storage.

What podman, CRI-O and OpenShift verify: a GPG signature over a small JSON
claim ("the image with manifest digest D is REGISTRY/REPOSITORY"), stored
next to the registry on a plain web server ("lookaside"), not in it:

    <lookaside URL>/<repository>@sha256=<hex>/signature-1, signature-2, ...

Signing writes into a local folder (`lookaside-staging` in registries.d); CI
uploads that folder to the web server (docs/lookaside.md). Clients read the
web server (`lookaside`) and enforce a policy.json `signedBy` requirement.

    with Keyring() as keyring:
        fpr = keyring.import_secret_key(armored, passphrase)
        d = write_registries_d(folder, "registry.example:5000",
                               "https://sigs.example/", staging_dir=staging)
        sign(registry=..., repository=..., digest=..., fingerprint=fpr,
             keyring=keyring, registries_d=d, tls=True, auth_file=auth)
    verify(registry=..., repository=..., digest=..., public_key_file="pub.asc",
           registries_d=d, tls=True)

Two verifications, both skopeo's own check of the same signature:
- `verify`: the fast path. Reads the manifest (`skopeo inspect --raw`) and
  the signatures from the lookaside URL, and runs `skopeo standalone-verify`
  on each: a few kilobytes, whatever the image's size.
- `verify_policy`: what a container engine does, `skopeo copy` under a
  policy.json that rejects everything but images signed by the key. It pulls
  every blob of the image (the cost grows with the image).

Identity: a signature names the repository it was made for. By default a
verification accepts a signature whose identity is the image's own
repository, any tag or digest (`matchRepository`). With `identity=` it
requires exactly that repository (`exactRepository`): the signature must
have been made for the repository the image was promoted to, wherever it is
pulled from (a mirror, another registry host) — so a signature of a
candidate repository does not pass for production.
"""

import hashlib
import json
import os
import re
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request

from tools.trust import gpg
from tools.trust.errors import TrustError

Keyring = gpg.Keyring

SKOPEO = "skopeo"
# Bounds: skopeo's HTTP client has no overall timeout for lookaside reads, so a
# server that accepts and never answers would hang a job without ours.
SMALL_TIMEOUT_S = 120   # inspect, standalone-verify, one signature read
COPY_TIMEOUT_S = 1800   # a copy that moves every blob
FETCH_TIMEOUT_S = 10    # one HTTP read of a signature
MAX_SIGNATURES = 64     # a lookaside folder with more is refused, not walked forever

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


# --- configuration files ----------------------------------------------------------

def write_registries_d(directory, registry, lookaside_url, staging_dir=None):
    """Writes `<directory>/modelship-<registry>.yaml` telling skopeo where `registry`'s
    signatures are: read from `lookaside_url` (https:// in real use; file:// works),
    written to `staging_dir` (a local folder, uploaded afterwards) when given.
    Returns `directory` (skopeo's --registries.d)."""
    if not registry or "://" in registry or registry.endswith("/"):
        raise TrustError(f"registry {registry!r}: give host[:port] (optionally /namespace), "
                         f"without a scheme")
    if not re.match(r"^(https?|file)://", lookaside_url or ""):
        raise TrustError(f"lookaside URL {lookaside_url!r} must start with https://, http:// "
                         f"or file://")
    os.makedirs(directory, exist_ok=True)
    # No trailing slash: skopeo appends "/<repository>@..." and some static hosts
    # (object storage) do not merge the resulting "//".
    lookaside_url = lookaside_url.rstrip("/")
    lines = ["# Where containers' simple signatures of this registry live (containers-",
             "# registries.d(5)). Written by tools/trust/simplesigning.py.",
             "docker:", f"  {registry}:", f"    lookaside: {lookaside_url}"]
    if staging_dir is not None:
        staging = os.path.abspath(staging_dir)
        os.makedirs(staging, exist_ok=True)
        lines.append(f"    lookaside-staging: file://{staging}")
    name = "modelship-" + re.sub(r"[^A-Za-z0-9._-]", "_", registry) + ".yaml"
    with open(os.path.join(directory, name), "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return directory


def read_registries_d(directory, registry, repository):
    """{"lookaside": url, "lookaside-staging": url} that skopeo would use for
    registry/repository: the most specific scope of the files in `directory`
    (`registry/namespace/...` beats `registry`, which beats `default-docker`).
    Reads the block YAML that write_registries_d writes (and the older key name
    `sigstore`/`sigstore-staging`)."""
    scopes = {}
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith((".yaml", ".yml")))
    except OSError as err:
        raise TrustError(f"cannot read registries.d folder {directory}: {err.strerror}") from err
    for name in names:
        with open(os.path.join(directory, name), encoding="utf-8") as text:
            _parse_registries_yaml(text.read(), scopes)
    wanted = f"{registry}/{repository}"
    candidates = [wanted]
    while "/" in candidates[-1]:
        candidates.append(candidates[-1].rsplit("/", 1)[0])
    for scope in candidates + [""]:
        if scope in scopes and "lookaside" in scopes[scope]:
            return scopes[scope]
    raise TrustError(f"no lookaside for {wanted} in {directory}: add one with "
                     f"write_registries_d (docs/lookaside.md)")


def _parse_registries_yaml(text, scopes):
    section, scope = None, None
    for raw in text.splitlines():
        line = raw.split(" #")[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        stripped = line.strip()
        if stripped.endswith(":"):
            key, value = stripped[:-1], ""
        else:  # "key: value" (a registry key holds a colon of its own: host:port)
            key, _, value = stripped.partition(": ")
        value = value.strip().strip("'\"")
        key = key.strip().strip("'\"")
        if indent == 0:
            section, scope = key, ("" if key == "default-docker" else None)
            continue
        if section == "docker" and indent == 2 and not value:
            scope = key
            continue
        if section in ("docker", "default-docker") and scope is not None and value:
            key = {"sigstore": "lookaside", "sigstore-staging": "lookaside-staging"}.get(key, key)
            scopes.setdefault(scope, {})[key] = value


def write_policy(path, public_key_file, identity_repository=None, *, scope=None):
    """Writes a containers-policy.json(5) at `path`; returns `path`.

    Everything is rejected except images of the docker transport signed by the key
    in `public_key_file` (ASCII-armored): for `scope` (`registry/repository`) only
    when given, else for every docker image. The signature's identity must be the
    image's own repository (`matchRepository`), or exactly `identity_repository`
    when given (`exactRepository`: "made for the repository it was promoted to")."""
    if identity_repository:
        signed_identity = {"type": "exactRepository", "dockerRepository": identity_repository}
    else:
        signed_identity = {"type": "matchRepository"}
    requirement = [{"type": "signedBy", "keyType": "GPGKeys",
                    "keyPath": os.path.abspath(public_key_file),
                    "signedIdentity": signed_identity}]
    if scope:
        docker = {scope: requirement, "": [{"type": "reject"}]}
    else:
        docker = {"": requirement}
    policy = {"default": [{"type": "reject"}], "transports": {"docker": docker}}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(policy, out, indent=2)
        out.write("\n")
    return path


# --- signing ----------------------------------------------------------------------

def sign(*, registry, repository, digest, fingerprint, keyring, registries_d, tls,
         auth_file=None, tag=None):
    """Signs the image at registry/repository@digest with the GPG key `fingerprint`
    (in `keyring`), for the identity registry/repository (with `@digest`, or `:tag`
    when `tag` is given: what a client that pulls by that tag with the default
    policy needs). Returns the paths of the signature files in the staging folder.

    It is skopeo's own signing: a copy of the image onto itself by digest with
    --sign-by (the manifest bytes are kept, so the digest cannot change; checked).
    skopeo writes every signature the lookaside already has for that digest plus
    the new one, `signature-1..N`: upload the digest's folder as a whole."""
    _check_digest(digest)
    config = read_registries_d(registries_d, registry, repository)
    staging = config.get("lookaside-staging") or config["lookaside"]
    if not staging.startswith("file://"):
        raise TrustError(f"the lookaside-staging of {registry} in {registries_d} must be a "
                         f"local folder (file://...), is {staging}")
    folder = os.path.join(urllib.parse.unquote(staging[len("file://"):]),
                          _signature_dir(repository, digest))
    ref = f"docker://{registry}/{repository}@{digest}"
    flag = "true" if tls else "false"
    with tempfile.TemporaryDirectory(prefix="modelship-sign-") as scratch:
        digestfile = os.path.join(scratch, "digest")
        argv = [SKOPEO, "--registries.d", registries_d, "--tmpdir", scratch, "copy",
                "--quiet", "--preserve-digests", "--digestfile", digestfile,
                f"--src-tls-verify={flag}", f"--dest-tls-verify={flag}",
                "--sign-by", fingerprint]
        passphrase_file = keyring.passphrase_file(fingerprint)
        if passphrase_file:
            argv += ["--sign-passphrase-file", passphrase_file]
        if tag:
            argv += ["--sign-identity", f"{registry}/{repository}:{tag}"]
        if auth_file:
            argv += ["--src-authfile", auth_file, "--dest-authfile", auth_file]
        argv += [ref, ref]
        before = _mtimes(folder)
        proc = _run(argv, keyring.env(), COPY_TIMEOUT_S, f"signing {digest}")
        if proc.returncode != 0:
            raise TrustError(f"could not sign {digest} in {registry}/{repository}: "
                             f"{_reason(proc.stdout)}")
        with open(digestfile, encoding="utf-8") as text:
            written = text.read().strip()
    if written != digest:
        raise TrustError(f"signing {registry}/{repository}@{digest} wrote manifest {written}: "
                         f"the image digest changed; the signature is not valid for {digest}")
    after = _mtimes(folder)
    new = sorted((p for p, m in after.items() if before.get(p) != m),
                 key=lambda p: int(p.rsplit("-", 1)[1]))
    if not new:
        raise TrustError(f"skopeo signed {digest} but wrote no signature under {folder}: "
                         f"check the lookaside-staging of {registry} in {registries_d}")
    return new


def _mtimes(folder):
    try:
        names = os.listdir(folder)
    except OSError:
        return {}
    return {os.path.join(folder, n): os.stat(os.path.join(folder, n)).st_mtime_ns
            for n in names if re.match(r"^signature-[0-9]+$", n)}


# --- verification -----------------------------------------------------------------

def verify(*, registry, repository, digest, public_key_file, registries_d, tls,
           auth_file=None, identity=None):
    """Accepts registry/repository@digest if one of its lookaside signatures is by the
    key in `public_key_file` and names the image's repository (or exactly `identity`,
    a `registry/repository`); else raises TrustError naming the digest and why.

    The fast path: the manifest and the signatures only (kilobytes), each signature
    checked by `skopeo standalone-verify` against this manifest, key and identity."""
    _check_digest(digest)
    expected = identity or f"{registry}/{repository}"
    where = f"{registry}/{repository}@{digest}"
    lookaside = read_registries_d(registries_d, registry, repository)["lookaside"]
    manifest = _manifest(registry, repository, digest, tls, auth_file)
    signatures = _fetch_signatures(lookaside, repository, digest, where)
    if not signatures:
        raise TrustError(f"{where} is not signed: no signature at "
                         f"{_signature_url(lookaside, repository, digest, 1)}; sign it "
                         f"(tools/trust/README.md, Simple signing)")
    with open(public_key_file, "rb") as text:
        public = text.read()
    reasons = []
    with Keyring() as keyring, tempfile.TemporaryDirectory(prefix="modelship-verify-") as tmp:
        fprs = keyring.import_public_keys(public)
        manifest_file = os.path.join(tmp, "manifest.json")
        with open(manifest_file, "wb") as out:
            out.write(manifest)
        for number, signature in enumerate(signatures, 1):
            name = f"signature-{number}"
            claimed = _claimed_reference(keyring, signature)
            if claimed is None:
                reasons.append(f"{name} is not an OpenPGP signature (corrupt or tampered)")
                continue
            if _repository_of(claimed) != expected:
                reasons.append(f"{name} was made for {claimed}, not for {expected}")
                continue
            sig_file = os.path.join(tmp, name)
            with open(sig_file, "wb") as out:
                out.write(signature)
            # A file of several keys (a rotation) accepts a signature by any of them.
            for fpr in fprs:
                proc = _run([SKOPEO, "standalone-verify", manifest_file, claimed, fpr,
                             sig_file], keyring.env(), SMALL_TIMEOUT_S, f"verifying {where}")
                if proc.returncode == 0:
                    return
                if "expected fingerprint" in proc.stdout.lower() and len(fprs) > 1:
                    continue  # signed by another of the keys: try it
                reasons.append(f"{name}: {_reason(proc.stdout)}")
                break
    raise TrustError(f"{where}: no valid signature by key {', '.join(fprs)} for {expected}: "
                     + "; ".join(reasons))


def verify_policy(*, registry, repository, digest, public_key_file, registries_d, tls,
                  auth_file=None, identity=None):
    """As verify, but the way a container engine checks: `skopeo copy` of the image
    under a policy.json (write_policy) that rejects all but this key's signatures.
    Pulls every blob of the image into a temporary folder (deleted after)."""
    _check_digest(digest)
    where = f"{registry}/{repository}@{digest}"
    flag = "true" if tls else "false"
    # skopeo would wait on a lookaside that accepts connections and never answers for
    # as long as the whole copy may take: ask it first, with a short timeout.
    lookaside = read_registries_d(registries_d, registry, repository)["lookaside"]
    _fetch_signatures(lookaside, repository, digest, where, limit=1)
    with tempfile.TemporaryDirectory(prefix="modelship-verify-") as tmp:
        policy = write_policy(os.path.join(tmp, "policy.json"), public_key_file, identity,
                              scope=f"{registry}/{repository}")
        argv = [SKOPEO, "--policy", policy, "--registries.d", registries_d, "--tmpdir", tmp,
                "copy", "--quiet", f"--src-tls-verify={flag}"]
        if auth_file:
            argv += ["--src-authfile", auth_file]
        argv += [f"docker://{where}", "dir:" + os.path.join(tmp, "image")]
        # gpgme imports keyPath into a keyring of its own: give it a private GNUPGHOME.
        with Keyring() as keyring:
            proc = _run(argv, keyring.env(), COPY_TIMEOUT_S, f"verifying {where}")
    if proc.returncode != 0:
        raise TrustError(f"{where} refused by the signature policy: {_reason(proc.stdout)}")


# --- helpers ----------------------------------------------------------------------

def _check_digest(digest):
    if not _DIGEST.match(digest or ""):
        raise TrustError(f"not an image digest: {digest!r} (want sha256:<64 hex>; a tag is "
                         f"never signed or verified, it can move)")


def _signature_dir(repository, digest):
    return f"{repository}@{digest.replace(':', '=', 1)}"


def _signature_url(lookaside, repository, digest, number):
    return f"{lookaside.rstrip('/')}/{_signature_dir(repository, digest)}/signature-{number}"


def _fetch_signatures(lookaside, repository, digest, where, limit=MAX_SIGNATURES + 1):
    """The bytes of signature-1, signature-2, ... until the first that does not exist
    (at most `limit` of them)."""
    found = []
    for number in range(1, limit + 1):
        url = _signature_url(lookaside, repository, digest, number)
        if number > MAX_SIGNATURES:
            raise TrustError(f"{where}: more than {MAX_SIGNATURES} signatures at the lookaside "
                             f"({url} exists); remove stale ones")
        if url.startswith("file://"):
            try:
                with open(urllib.parse.unquote(url[len("file://"):]), "rb") as data:
                    found.append(data.read())
                continue
            except FileNotFoundError:
                return found
        try:
            with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
                found.append(answer.read())
        except urllib.error.HTTPError as err:
            if err.code == 404:
                return found
            raise TrustError(f"cannot verify {where}: the lookaside answered {err.code} for "
                             f"{url}") from err
        except (urllib.error.URLError, OSError) as err:  # TimeoutError is an OSError
            reason = getattr(err, "reason", err) or "timed out"
            raise TrustError(f"cannot verify {where}: the lookaside {lookaside} is unreachable "
                             f"({reason}); check the lookaside server and its URL in "
                             f"registries.d") from err
    return found


def _manifest(registry, repository, digest, tls, auth_file):
    where = f"{registry}/{repository}@{digest}"
    argv = [SKOPEO, "inspect", "--raw", f"--tls-verify={'true' if tls else 'false'}"]
    if auth_file:
        argv += ["--authfile", auth_file]
    argv.append(f"docker://{where}")
    try:
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              check=False, timeout=SMALL_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise TrustError(f"reading the manifest of {where} took over {SMALL_TIMEOUT_S}s") \
            from err
    except FileNotFoundError as err:
        raise TrustError("skopeo is not installed: run tools/bootstrap") from err
    if proc.returncode != 0:
        raise TrustError(f"cannot read the manifest of {where}: "
                         f"{_reason(proc.stderr.decode(errors='replace'))}")
    if "sha256:" + hashlib.sha256(proc.stdout).hexdigest() != digest:
        raise TrustError(f"the registry answered a manifest for {where} whose digest is not "
                         f"{digest}")
    return proc.stdout


def _claimed_reference(keyring, signature):
    payload = keyring.decode(signature)
    try:
        return json.loads(payload)["critical"]["identity"]["docker-reference"]
    except (TypeError, ValueError, KeyError):
        return None


def _repository_of(reference):
    """registry/repository of a reference with a tag or digest."""
    name = reference.split("@", 1)[0]
    last = name.rsplit("/", 1)
    if ":" in last[-1]:
        name = name.rsplit(":", 1)[0]
    return name


def _run(argv, env, timeout_s, what):
    try:
        return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env, stdin=subprocess.DEVNULL, check=False, timeout=timeout_s)
    except subprocess.TimeoutExpired as err:
        raise TrustError(f"{what}: skopeo did not finish within {timeout_s}s (is the registry "
                         f"or the lookaside server answering?)") from err
    except FileNotFoundError as err:
        raise TrustError("skopeo is not installed: run tools/bootstrap") from err


# skopeo's messages, most specific first, and what they mean for a release.
_REASONS = (
    ("a signature was required, but no signature exists",
     "no signature (sign it; see tools/trust/README.md)"),
    ("is not accepted",
     "the signature was made for another image identity (repository)"),
    ("invalid gpg signature",
     "invalid GPG signature (signed by another key, or tampered with)"),
    ("not signed by",
     "signed by another key"),
    ("no valid openpgp data", "the signature is not OpenPGP data (corrupt or tampered)"),
    ("unexpected gpg signature count",
     "the signature file holds no valid GPG signature (corrupt or tampered)"),
    ("expected fingerprint", "signed by another key"),
    ("does not match", "the signature is for another manifest digest"),
    ("/signature-", "the lookaside server is unreachable or failing; check it and the "
                    "lookaside URL in registries.d"),
    ("connection refused", "the registry is unreachable (connection refused)"),
)


def _reason(output):
    """skopeo's failure output, translated when known, with its own last line."""
    text = output.lower()
    last = _last_line(output)
    for needle, meaning in _REASONS:
        if needle in text:
            return f"{meaning} (skopeo: {last})"
    return last


def _last_line(output):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    if not lines:
        return "no output"
    line = lines[-1]
    match = re.search(r'msg="(.*)"\s*$', line)
    line = match.group(1) if match else line
    # gpgme's struct dumps (timestamps, error codes) say nothing more to a reader.
    line = re.sub(r":? ?gpgme\.Signature\{.*", "", line).replace('\\"', '"')
    return line[:400]
