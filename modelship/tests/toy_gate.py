"""The toy image's model release gates: one that passes, and ones broken in the ways
the release tool must catch (each named for how it is broken)."""

import dataclasses
import os


@dataclasses.dataclass(frozen=True)
class Check:
    """One check, with the attributes model_image's release_gate returns."""

    name: str
    ok: bool
    detail: str
    figures: dict = dataclasses.field(default_factory=dict)


def gate(model_path, release_path):
    """Passes a non-empty model; measures its size."""
    size = os.path.getsize(model_path)
    return [Check("model file is not empty", size > 0, f"{size} bytes", {"model_bytes": size}),
            Check("release record is there", os.path.isfile(release_path), release_path)]


def refuses(model_path, release_path):
    """Fails every model."""
    del model_path, release_path
    return [Check("never good enough", False, "measured 0.5", {"toy_accuracy": 0.5})]


def returns_text(model_path, release_path):
    """Returns a message instead of checks."""
    del model_path, release_path
    return "all good, measured 0.99"


def figures_are_text(model_path, release_path):
    """A check whose figures are not numbers."""
    del model_path, release_path
    return [Check("accuracy", True, "fine", {"accuracy": "0.99"})]


def cannot_run(model_path, release_path):
    """Raises, as a gate whose data is missing does."""
    raise FileNotFoundError(f"no data set beside {model_path} ({release_path})")


NOT_A_FUNCTION = "gate"
