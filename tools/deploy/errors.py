"""Typed errors of the deploy tool; the CLI maps them to exit statuses in one place."""


class InputError(Exception):
    """Bad input (a tag instead of a digest, a weight out of range, ...): exit 2."""


class DeployError(Exception):
    """The runtime, nginx or the cluster could not do what was asked: exit 1."""


class GateFailed(DeployError):
    """A metric gate aborted the canary; it was rolled back: exit 1."""
