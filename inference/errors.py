"""Typed errors of the inference library.

Every error says what is wrong and what to do about it. Callers at the edge
(an HTTP handler, a CLI) map the two families to their own vocabulary:
`ArtifactError` is the operator's problem (the model file), `InputError` is
the caller's (the batch they sent).
"""


class InferenceError(Exception):
    """Base class of every error raised on purpose by `inference`."""


class ArtifactError(InferenceError):
    """The model artifact cannot be used."""


class ArtifactUnreadableError(ArtifactError):
    """The artifact file could not be read at all (missing, a directory, no permission)."""


class TruncatedArtifactError(ArtifactError):
    """The artifact file is shorter than its own preamble says: an interrupted copy."""


class CorruptArtifactError(ArtifactError):
    """The artifact's bytes are not a valid artifact (bad magic, checksum or header)."""


class IncompatibleArtifactError(ArtifactError):
    """The artifact is intact but written for another version of this library."""


class VersionMismatchError(ArtifactError):
    """The artifact is valid but is not the model version the caller pinned."""


class InputError(InferenceError, ValueError):
    """A batch given to the model is unusable (shape, dtype or values)."""
