"""Typed errors of the release tool. Only the CLI edge (cli.py) turns them into
exit statuses and one-line messages."""


class ReleaseError(Exception):
    """Something went wrong or was refused. The message says what and how to fix it."""


class UsageError(ReleaseError):
    """Bad arguments or settings."""


class RegistryError(ReleaseError):
    """The registry answered with an error we cannot retry away."""


class RegistryUnavailableError(RegistryError):
    """The registry could not be reached (after the retries)."""


class AuthError(RegistryError):
    """The registry refused the credentials (or asked for some and none were given)."""


class NotFoundError(RegistryError):
    """A manifest, tag or blob is not in the repository."""


class RefusedError(ReleaseError):
    """A precondition of the command does not hold (not validated, dirty tree, ...)."""


class GateError(ReleaseError):
    """A release gate could not run (not: a gate failed; that is a result)."""
