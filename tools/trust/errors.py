"""Typed errors of the supply-chain tools (signatures, attestations, SBOMs).

Only command-line edges turn them into exit statuses: the release tool and
deploy map TrustError to exit 1 with its message, which names the digest (or
file) and the reason, and never a secret.
"""


class TrustError(Exception):
    """A signature, attestation, SBOM or key does not verify or cannot be used."""


class KeyFileError(TrustError):
    """A key cannot be read: wrong password, wrong format, missing file."""
