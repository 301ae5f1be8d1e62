"""skopeo copies, with credentials passed as a private auth file, and retries.

skopeo reads credentials from an auth file only: the tool writes one (mode
0600, in a private temporary folder) for each copy and deletes it after, so a
password never appears in argv, the environment of skopeo, or a log.
"""

import base64
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from tools.release import errors

SKOPEO = "skopeo"


@contextlib.contextmanager
def auth_file(settings):
    """Path of a containers-auth.json holding the settings' credentials (or None)."""
    if settings.credentials is None:
        yield None
        return
    folder = tempfile.mkdtemp(prefix="modelship-auth-")  # mode 0700
    path = os.path.join(folder, "auth.json")
    creds = settings.credentials
    token = base64.b64encode(f"{creds.user}:{creds.password}".encode()).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"auths": {settings.registry: {"auth": token}}}, out)
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _classify(settings, output):
    """A typed error for skopeo's failure output; None when it may be transient."""
    text = output.lower()
    if "unauthorized" in text or "authentication required" in text or " 401" in text:
        given = "the credentials given" if settings.credentials else "anonymous access"
        return errors.AuthError(
            f"registry {settings.registry} refused {given}; set MODELSHIP_REGISTRY_AUTH_FILE or "
            f"MODELSHIP_REGISTRY_USER and MODELSHIP_REGISTRY_PASSWORD to an account that may "
            f"push to {settings.repository}")
    if "denied" in text:
        return errors.AuthError(f"registry {settings.registry} denied access to "
                                f"{settings.repository}")
    if "manifest unknown" in text or "not found" in text and "connection" not in text:
        return errors.NotFoundError(f"registry {settings.registry}: {_last_line(output)}")
    return None


# What skopeo says when the registry is down, restarting or overloaded: retried.
_TRANSIENT = ("connection refused", "connection reset", "eof", "i/o timeout", "timeout",
              "broken pipe", "no route to host", "502", "503", "504", "500 internal",
              "429", "too many requests", "server misbehaving", "temporarily unavailable",
              "closed network connection", "readfrom tcp")


def _reachable(settings):
    """True when the registry answers HTTP at all (any status)."""
    scheme = "https" if settings.tls else "http"
    try:
        with urllib.request.urlopen(f"{scheme}://{settings.registry}/v2/", timeout=5):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def _transient(settings, output):
    """A failure worth retrying: the registry went away (or says it is busy)."""
    text = output.lower()
    return any(sign in text for sign in _TRANSIENT) or not _reachable(settings)


def _last_line(output):
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:400] if lines else "no output"


def copy(settings, source, destination, sleep=time.sleep):
    """`skopeo copy source destination` (transports included), retried with backoff;
    returns the digest skopeo reports for what it wrote. Registry to registry and
    archive to registry copies keep the manifest bytes (--preserve-digests), so the
    digest never changes on the way."""
    tls = "true" if settings.tls else "false"
    with auth_file(settings) as auth, tempfile.TemporaryDirectory(
            prefix="modelship-skopeo-") as scratch:
        digestfile = os.path.join(scratch, "digest")
        # Unpacked archives go to our private scratch folder, not skopeo's default
        # /var/tmp (shared, and read-only in a sandbox).
        argv = [SKOPEO, "--tmpdir", scratch, "copy", "--quiet", "--digestfile", digestfile]
        if destination.startswith("docker://"):
            argv.append("--preserve-digests")
        for side, ref in (("src", source), ("dest", destination)):
            if ref.startswith("docker://"):
                argv.append(f"--{side}-tls-verify={tls}")
                if auth:
                    argv += [f"--{side}-authfile", auth]
        argv += [source, destination]
        attempts = settings.retries + 1
        output = ""
        for attempt in range(attempts):
            if attempt:
                sleep(settings.backoff_s * 2 ** (attempt - 1))
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, check=False)
            output = proc.stdout
            if proc.returncode == 0:
                with open(digestfile, encoding="utf-8") as text:
                    return text.read().strip()
            typed = _classify(settings, output)
            if typed is not None:
                raise typed
            if not _transient(settings, output):
                raise errors.RegistryError(f"skopeo copy to {destination} failed: "
                                           f"{_last_line(output)}")
        raise errors.RegistryUnavailableError(
            f"registry {settings.registry} is unavailable: copying to {destination} failed "
            f"{attempts} times, last: {_last_line(output)}")
