"""The image's spec, as the release tool reads it: what is particular to one image.

`bazel run //<pkg>:<name>.release` passes the spec model_image wrote
(`--spec-runfile`), with every file it names and the model release gate in
its runfiles; `--spec FILE` names one by path. The spec is parsed and checked
by tools/image/build.py (the one reader of its format); this module adds what
the release needs: the sample requests, the gate callable, the operating point.
"""

import dataclasses
import importlib
import json
import numbers

from tools.image import build
from tools.release import errors

_HINT = ("run the image's own release target (`bazel run //<pkg>:<name>.release`, whose "
         "runfiles hold every file of its spec and its release gate)")


@dataclasses.dataclass(frozen=True)
class GateCheck:
    """One check of the model release gate, as it returned it (validated)."""

    name: str
    ok: bool
    detail: str
    figures: dict


def load(path):
    """The checked build.Spec at `path`; UsageError naming every wrong field."""
    try:
        return build.read_spec(path)
    except build.BuildError as err:
        raise errors.UsageError(f"image spec: {err}") from None


def local(spec, entry, field):
    """The path of a file the spec names, in this program's runfiles; UsageError naming
    the spec field when it is not there."""
    if entry is None:
        raise errors.UsageError(f"image spec {spec.source}: field {field!r} is not set")
    try:
        return build.runfile(entry.runfile, field)
    except build.BuildError as err:
        raise errors.UsageError(f"image spec {spec.source}: {err}; {_HINT}") from None


def read_json(spec, entry, field):
    """The decoded JSON of a file the spec names; UsageError naming the field."""
    path = local(spec, entry, field)
    try:
        with open(path, encoding="utf-8") as text:
            return json.load(text)
    except (OSError, ValueError) as err:
        raise errors.UsageError(f"image spec field {field!r}: {entry.path} is not readable "
                                f"JSON ({err})") from None


def _infer_body(value, where, problems):
    """Problems of one Open Inference Protocol infer request body."""
    inputs = value.get("inputs") if isinstance(value, dict) else None
    if not isinstance(inputs, list) or not inputs:
        problems.append(f"{where} must be an infer request body {{\"inputs\": [...]}}, got "
                        f"{str(value)[:80]}")
        return
    for index, tensor in enumerate(inputs):
        if not (isinstance(tensor, dict) and isinstance(tensor.get("name"), str)
                and isinstance(tensor.get("datatype"), str)
                and isinstance(tensor.get("shape"), list) and tensor["shape"]
                and all(isinstance(d, int) and d >= 0 for d in tensor["shape"])
                and "data" in tensor):
            problems.append(f"{where}: inputs[{index}] must have 'name', 'shape' (whole "
                            f"numbers), 'datatype' and 'data'")


def requests(spec):
    """The spec's sample requests, checked: {"infer": BODY, "operating_point": [BODY...],
    "task": BODY (when the spec has a task check)}. UsageError naming every problem."""
    doc = read_json(spec, spec.requests, "requests")
    where = f"image spec field 'requests' ({spec.requests.path})"
    if not isinstance(doc, dict):
        raise errors.UsageError(f"{where}: must be a JSON object")
    problems = []
    _infer_body(doc.get("infer"), "'infer'", problems)
    bodies = doc.get("operating_point")
    if not isinstance(bodies, list) or not bodies:
        problems.append("'operating_point' must be a non-empty list of infer request bodies")
    else:
        for index, body in enumerate(bodies):
            _infer_body(body, f"'operating_point'[{index}]", problems)
    if spec.task is not None and "task" not in doc:
        problems.append(f"'task' (the body POSTed to {spec.task.path}) is missing")
    if problems:
        raise errors.UsageError(f"{where} is invalid: " + "; ".join(problems))
    return doc


def gate_function(spec):
    """The model release gate the spec names (`release_gate`, 'package.module:function').
    UsageError naming the field when it cannot be imported or is not a function."""
    module_name, _, name = spec.release_gate.partition(":")
    where = (f"image spec field 'release_gate' ({spec.release_gate!r}, from "
             f"{spec.release_gate_library})")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise errors.UsageError(f"{where}: cannot import {module_name} ({err}); {_HINT}") \
            from None
    function = getattr(module, name, None)
    if not callable(function):
        raise errors.UsageError(f"{where}: {module_name} has no function {name!r}")
    return function


def run_gate(spec, model_path, release_path=None):
    """Runs the model release gate on `model_path` against the release record
    (default: the spec's `release`); returns the list of GateCheck. A gate that
    cannot run raises GateError; one that returns something else than checks is a
    UsageError naming the field."""
    function = gate_function(spec)
    release_path = release_path or local(spec, spec.release, "release")
    try:
        returned = function(model_path, release_path)
    except Exception as err:  # pylint: disable=broad-except
        # The gate is the model team's code: whatever it raises means "cannot run".
        raise errors.GateError(f"the model release gate {spec.release_gate} cannot run: "
                               f"{type(err).__name__}: {err}") from err
    where = f"image spec field 'release_gate' ({spec.release_gate})"
    if not isinstance(returned, (list, tuple)):
        raise errors.UsageError(f"{where} returned {type(returned).__name__}, not a list of "
                                "checks")
    checks = []
    for index, check in enumerate(returned):
        name, ok, detail, figures = (getattr(check, attr, None)
                                     for attr in ("name", "ok", "detail", "figures"))
        if not (isinstance(name, str) and isinstance(ok, bool) and isinstance(detail, str)
                and isinstance(figures, dict)
                and all(isinstance(k, str) and isinstance(v, numbers.Real)
                        and not isinstance(v, bool) for k, v in figures.items())):
            raise errors.UsageError(
                f"{where}: check {index} must have name (str), ok (bool), detail (str) and "
                f"figures (dict of str to number), got {check!r}")
        checks.append(GateCheck(name, ok, detail, dict(figures)))
    return checks
