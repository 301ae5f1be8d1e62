"""Registry settings: parsed from the environment and flags, validated, completed.

Every problem is collected and reported at once. The environment is passed
in (tests pass their own), never read behind the caller's back.
"""

import base64
import dataclasses
import json
import re

from tools.release import errors

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
# host[:port], as registries are named in image references.
_REGISTRY = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d{1,5})?\Z")
# The distribution spec's repository name grammar (lower-case path components).
_REPOSITORY = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
                         r"(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*\Z")


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A user and password, kept out of repr so they never reach a log."""

    user: str
    password: str = dataclasses.field(repr=False)

    def basic(self):
        """The value of an HTTP Basic Authorization header."""
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return f"Basic {token}"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where releases go and how to reach it."""

    registry: str  # host:port; None until the embedded registry is started
    repository: str
    tls: bool
    credentials: Credentials = dataclasses.field(default=None, repr=False)
    history_file: str = None
    retries: int = 6
    backoff_s: float = 0.5

    def with_registry(self, registry):
        """These settings pointed at another registry (the embedded one)."""
        return dataclasses.replace(self, registry=registry, tls=default_tls(registry))

    @property
    def base(self):
        """`<registry>/<repository>`, as in image references."""
        return f"{self.registry}/{self.repository}"


def default_tls(registry):
    """https unless the registry is on loopback (where the test and local ones run)."""
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return host not in LOOPBACK_HOSTS


def _auth_file_credentials(path, registry, problems):
    try:
        with open(path, encoding="utf-8") as text:
            auths = json.load(text).get("auths", {})
        entry = auths.get(registry) or auths.get(f"https://{registry}") \
            or auths.get(f"http://{registry}")
        if entry is None:
            problems.append(f"MODELSHIP_REGISTRY_AUTH_FILE {path} has no entry for {registry} "
                            f"(it has: {', '.join(sorted(auths)) or 'none'})")
            return None
        user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        return Credentials(user, password)
    except (OSError, ValueError, KeyError, AttributeError, TypeError) as err:
        problems.append(f"MODELSHIP_REGISTRY_AUTH_FILE {path} is not a readable "
                        f"containers-auth.json ({type(err).__name__})")
        return None


def _positive(environ, name, default, cast, problems):
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = cast(raw)
        if value < 0:
            raise ValueError
        return value
    except ValueError:
        problems.append(f"{name} has value {raw!r}: not a non-negative {cast.__name__}")
        return default


def default_repository(served_name):
    """The repository an image's own release target uses when none is set."""
    return f"modelship/{served_name.lower()}"


def load(environ, registry=None, repository=None, default=None):
    """Settings from `environ` and the flags (flags win), else `default` (the image's
    own, default_repository); raises UsageError listing every problem."""
    problems = []
    registry = registry or environ.get("MODELSHIP_REGISTRY") or None
    repository = repository or environ.get("MODELSHIP_REPOSITORY") or default
    if registry is not None and not _REGISTRY.match(registry):
        problems.append(f"registry {registry!r} is not host[:port] (e.g. 127.0.0.1:5000, "
                        "registry.example.com)")
    if repository is None:
        problems.append("no repository: set MODELSHIP_REPOSITORY or --repository (e.g. "
                        "team/model), or run the image's own `bazel run "
                        "//<pkg>:<name>.release`, which defaults it to modelship/<served name>")
    elif not _REPOSITORY.match(repository):
        problems.append(f"repository {repository!r} is not a valid repository name (lower-case "
                        "path components, e.g. team/model)")
    tls_raw = environ.get("MODELSHIP_REGISTRY_TLS", "")
    if tls_raw not in ("", "0", "1"):
        problems.append(f"MODELSHIP_REGISTRY_TLS has value {tls_raw!r}: use 1 (https) or "
                        "0 (http)")
    credentials = None
    auth_file = environ.get("MODELSHIP_REGISTRY_AUTH_FILE")
    user = environ.get("MODELSHIP_REGISTRY_USER")
    password = environ.get("MODELSHIP_REGISTRY_PASSWORD")
    if auth_file and registry:
        credentials = _auth_file_credentials(auth_file, registry, problems)
    elif auth_file:
        problems.append("MODELSHIP_REGISTRY_AUTH_FILE is set but no registry is: set "
                        "MODELSHIP_REGISTRY (the embedded registry needs no credentials)")
    elif user or password:
        if not (user and password):
            problems.append("set both MODELSHIP_REGISTRY_USER and MODELSHIP_REGISTRY_PASSWORD, "
                            "or neither")
        else:
            credentials = Credentials(user, password)
    retries = _positive(environ, "MODELSHIP_REGISTRY_RETRIES", 6, int, problems)
    backoff = _positive(environ, "MODELSHIP_REGISTRY_BACKOFF_S", 0.5, float, problems)
    if problems:
        raise errors.UsageError("; ".join(problems))
    tls = (tls_raw == "1") if tls_raw else (default_tls(registry) if registry else False)
    return Settings(registry=registry, repository=repository, tls=tls,
                    credentials=credentials,
                    history_file=environ.get("MODELSHIP_RELEASE_HISTORY_FILE") or None,
                    retries=retries, backoff_s=backoff)
