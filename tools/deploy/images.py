"""Image references pinned by digest: the only kind the deploy tool accepts."""

import dataclasses
import re

from tools.deploy.errors import InputError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}\Z")
_REPOSITORY = re.compile(r"^[a-z0-9][a-z0-9._:/-]*\Z")


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
        """The first 12 hex digits of the digest (for names)."""
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
    if not repository or not _REPOSITORY.match(repository):
        raise InputError(f"{what} {reference!r}: the repository {repository!r} is not a "
                         "valid image name (lower case, e.g. registry:5000/modelship/digits).")
    return Image(repository, digest)


def check_digest(digest, what="--digest"):
    """`digest` itself if it is sha256:<64 hex>."""
    if not _DIGEST.match(digest or ""):
        raise InputError(f"{what} {digest!r}: expected sha256:<64 lower-case hex>.")
    return digest
