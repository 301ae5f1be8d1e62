"""Checks the inputs a pipeline passes to this project's CI components.

    python3 tools/ci/check_inputs.py [--templates DIR] FILE.gitlab-ci.yml...

GitLab rejects a value outside `options`, a failed `regex`, a wrong type and
a missing required input when it builds the pipeline. It does not tell you
about an input name it does not know when you only run the pipeline locally
(gitlab-ci-local ignores unknown inputs), and a misspelt optional input
silently falls back to its default: `deploy_tagret: local` would deploy to
the default target. This check reads every `include:` of FILE that names one
of our components (`component: <host>/<path>/<name>@<ref>`, or
`project:` / `local:` with `file: templates/<name>.yml`), and reports every
problem at once, one line each, naming the file, the component, the input
and the fix: unknown names (with the closest known one), missing required
inputs, wrong types, values outside `options`, values failing `regex`, and
canary `steps` that are not ascending percentages in 1..99.

Exit status: 0 all good, 1 problems found, 2 unreadable file.
"""

import argparse
import difflib
import os
import re
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TEMPLATES = os.path.normpath(os.path.join(HERE, "..", "..", "templates"))
COMPONENT = re.compile(r"^[^@\s]+/(?P<name>[a-z0-9-]+)@\S+\Z")
TEMPLATE_FILE = re.compile(r"^/?templates/(?P<name>[a-z0-9-]+)(\.yml|/template\.yml)\Z")
TYPES = {"string": str, "number": (int, float), "boolean": bool, "array": list}


class CheckError(Exception):
    """A file that cannot be read at all."""


def load_yaml_documents(path):
    """All YAML documents of a file."""
    try:
        with open(path, encoding="utf-8") as text:
            return list(yaml.safe_load_all(text))
    except (OSError, yaml.YAMLError) as err:
        raise CheckError(f"{path}: cannot read it as YAML: {err}") from err


def load_specs(templates):
    """{component name: {input name: spec}} of every template in the folder."""
    specs = {}
    for entry in sorted(os.listdir(templates)):
        if not entry.endswith(".yml"):
            continue
        documents = load_yaml_documents(os.path.join(templates, entry))
        header = documents[0] if len(documents) == 2 else {}
        specs[entry[:-len(".yml")]] = ((header or {}).get("spec") or {}).get("inputs") or {}
    return specs


def component_of(include):
    """The name of our component an include entry names, or None."""
    if not isinstance(include, dict):
        return None
    if "component" in include:
        match = COMPONENT.match(str(include["component"]))
        return match.group("name") if match else None
    for key in ("file", "local"):
        value = include.get(key)
        if isinstance(value, str):
            match = TEMPLATE_FILE.match(value)
            if match:
                return match.group("name")
    return None


def is_interpolated(value):
    """A value that is itself an input reference is checked where it is defined."""
    return isinstance(value, str) and "$[[" in value


def re2_anchors(regex):
    """`regex` with each `$` anchor made `\\Z`: GitLab's RE2 ends `$` at the end of the
    text, where Python's `$` also matches before a final newline."""
    out, in_class, escaped = [], False, False
    for char in regex:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            char = r"\Z"
        out.append(char)
    return "".join(out)


def check_value(name, spec, value):
    """Problems with one input value, as strings (empty when fine)."""
    problems = []
    if is_interpolated(value):
        return problems
    kind = spec.get("type", "string")
    expected = TYPES.get(kind, str)
    if (kind == "number" and isinstance(value, bool)) or not isinstance(value, expected):
        return [f"input '{name}' must be a {kind}, got {type(value).__name__} {value!r}"]
    if "options" in spec and value not in spec["options"]:
        options = ", ".join(str(option) for option in spec["options"])
        problems.append(f"input '{name}' is {value!r}; use one of: {options}")
    if "regex" in spec and isinstance(value, str) and not re.search(
            re2_anchors(spec["regex"]), value):
        problems.append(f"input '{name}' is {value!r}, which does not match /{spec['regex']}/")
    if name == "steps" and kind == "array":
        if not all(isinstance(step, int) and not isinstance(step, bool) and 0 < step < 100
                   for step in value) or value != sorted(set(value)) or not value:
            problems.append(f"input 'steps' is {value!r}; give ascending whole percentages "
                            f"between 1 and 99, e.g. [10, 25, 50]")
    return problems


def check_include(where, component, inputs, spec):
    """Problems of one include of a component."""
    problems = []
    if not isinstance(inputs, dict):
        return [f"{where}: {component}: `inputs` must be a mapping"]
    for name in sorted(inputs):
        if name not in spec:
            close = difflib.get_close_matches(name, list(spec), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else \
                f"; known inputs: {', '.join(sorted(spec))}"
            problems.append(f"{where}: {component}: unknown input '{name}'{hint}")
            continue
        problems += [f"{where}: {component}: {p}"
                     for p in check_value(name, spec[name] or {}, inputs[name])]
    for name, definition in sorted(spec.items()):
        if "default" not in (definition or {}) and name not in inputs:
            problems.append(f"{where}: {component}: required input '{name}' is missing; "
                            f"add `{name}:` under `inputs:`")
    return problems


def includes_of(document):
    """The include entries of a pipeline document, as a list."""
    if not isinstance(document, dict):
        return []
    include = document.get("include") or []
    return include if isinstance(include, list) else [include]


def check_file(path, specs):
    """Problems of one pipeline file (its last document is the pipeline)."""
    documents = load_yaml_documents(path)
    problems = []
    for index, include in enumerate(includes_of(documents[-1] if documents else None)):
        component = component_of(include)
        if component is None:
            continue
        where = f"{path}: include #{index + 1}"
        if component not in specs:
            problems.append(f"{where}: no component named '{component}'; "
                            f"known: {', '.join(sorted(specs))}")
            continue
        problems += check_include(where, component, include.get("inputs") or {},
                                  specs[component])
    return problems


def main(argv=None):
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--templates", default=DEFAULT_TEMPLATES,
                        help="folder of the component templates (default: this project's)")
    parser.add_argument("files", nargs="+", help="pipeline files to check")
    args = parser.parse_args(argv)
    # Under `bazel run`, paths are the user's, not the runfiles tree's.
    base = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    args.files = [os.path.join(base, path) for path in args.files]
    try:
        specs = load_specs(args.templates)
        problems = [problem for path in args.files for problem in check_file(path, specs)]
    except CheckError as err:
        print(f"check_inputs: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"check_inputs: inputs of {len(args.files)} file(s) are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main())
