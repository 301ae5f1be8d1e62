"""Image references pinned by digest: the only kind the deploy tool accepts."""

import dataclasses
import re

from tools.deploy.errors import InputError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9._:/-]*\Z")
# An object or container name: a DNS-1123 label (what a Kubernetes Service
# name must be), short enough that NAME-canary still fits in 63 characters.
_NAME = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?\Z")
NAME_MAX = 63 - len("-canary")


@dataclasses.dataclass(frozen=True)
class Image:
    """`repository@digest`; `reference` is the whole string."""

    repository: str
    digest: str

    @property
    def reference(self):
        """The pinned reference, `repository@sha256:...`."""
        return f"{self.repository}@{self.digest}"

    @property
    def short(self):
        """The first 12 hex characters of the digest (for names)."""
        return self.digest[len("sha256:"):][:12]


def parse(reference, what="--image"):
    """An Image from `REF@sha256:<64 hex>`; refuses tags and malformed digests."""
    reference = (reference or "").strip()
    if "@" not in reference:
        raise InputError(f"{what} {reference!r} is not pinned by digest: give "
                         "REF@sha256:<64 hex> (a tag can move between canary and promote).")
    repository, digest = reference.rsplit("@", 1)
    if not _DIGEST.match(digest):
        raise InputError(f"{what} {reference!r}: the digest must be sha256:<64 lower-case hex>.")
    # A tag before the digest (repo:tag@sha256:...) is legal but misleading: drop it.
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[:len(repository) - len(last)] + last.split(":", 1)[0]
    check_repository(repository, f"{what} {reference!r}: the repository")
    return Image(repository, digest)


def check_repository(repository, what="--repository"):
    """`repository` itself if it is a valid image name (no tag, no digest)."""
    if not repository or not _REPOSITORY.match(repository):
        raise InputError(f"{what} {repository!r} is not a valid image name (lower case, "
                         "e.g. registry:5000/team/iris).")
    return repository


def check_digest(digest, what="--digest"):
    """`digest` itself if it is sha256:<64 hex>."""
    if not _DIGEST.match(digest or ""):
        raise InputError(f"{what} {digest!r}: expected sha256:<64 lower-case hex>.")
    return digest


def check_name(name, what="--name"):
    """`name` itself if it can name the objects and containers of a track."""
    if not (name and _NAME.match(name) and len(name) <= NAME_MAX):
        raise InputError(f"{what} {name!r}: give a name of lower-case letters, numbers and '-', "
                         f"starting with a letter, at most {NAME_MAX} characters (objects and "
                         "containers are NAME-stable and NAME-canary)")
    return name


def default_name(image):
    """The name a track's objects get when --name is not given: the repository's last
    path component (`registry.example/team/iris@sha256:...` -> `iris`), with `_` and
    `.` read as `-`."""
    last = image.repository.rsplit("/", 1)[-1]
    name = last.replace("_", "-").replace(".", "-")
    if not (_NAME.match(name) and len(name) <= NAME_MAX):
        raise InputError(f"the image repository {image.repository!r} ends in {last!r}, which "
                         "cannot name Kubernetes objects or containers (a DNS label of at most "
                         f"{NAME_MAX} characters, starting with a letter): pass --name NAME")
    return name
