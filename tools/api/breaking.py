"""The breaking-change gate: is the current API contract backward compatible with
the last release's?

    bazel run //tools/api:breaking -- --releases services/iris/api/releases \\
        --current services/iris
    python3 tools/api/breaking.py --base DIR --current DIR     (no Bazel needed)

A contract folder holds `openapi.json` (OpenAPI 3.0) and, optionally,
`results.schema.json` (JSON Schema of a response body). `--releases DIR` picks
the highest-versioned subfolder of DIR (one per released API version) as the
base. Relative paths are taken from the workspace under `bazel run`.

Breaking (exit 1, one line per break): a removed path, method, success
response, media type, response header, response field or enum value; a
response field that is no longer required; a new required request field or
parameter; a narrowed type or bound in a request (number -> integer, a lower
maximum, a new pattern, no more additional properties); a widened type in a
response. Additive changes (new paths, methods, optional request fields,
response fields, enum values in requests, looser request bounds) pass.
Breaks pass too when the API major version (`info.version`) was raised: they
are then listed as accepted. `--accepted FILE` lists, with a reason, the
breaks that are not breaks for any client (a request bound tightened to what
the server always enforced): each entry names the released version it is
against and the exact break line; an entry that matches nothing fails the
gate, so the list cannot go stale. Exit 2: a contract folder or document is
missing or unreadable.
"""

import argparse
import json
import os
import re
import sys

OPENAPI = "openapi.json"
RESULTS_SCHEMA = "results.schema.json"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# Bounds a request may not tighten: (keyword, True when a larger value is tighter).
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minItems", "minLength", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxItems", "maxLength", "maxProperties")
_ANY_TYPE = frozenset(("array", "boolean", "integer", "null", "number", "object", "string"))
_VERSION = re.compile(r"^(\d+)(?:\.(\d+))?(?:\.(\d+))?$")


class ContractError(Exception):
    """A contract folder or document that cannot be compared (exit 2)."""


class Contract:
    """One folder's documents: the OpenAPI document and the results schema (or None)."""

    def __init__(self, folder, name=None):
        self.folder = name or folder
        self.openapi = _load(os.path.join(folder, OPENAPI), required=True)
        self.results = _load(os.path.join(folder, RESULTS_SCHEMA), required=False)
        info = self.openapi.get("info") if isinstance(self.openapi, dict) else None
        version = info.get("version") if isinstance(info, dict) else None
        match = _VERSION.match(str(version)) if version is not None else None
        if not match:
            raise ContractError(
                f"{os.path.join(folder, OPENAPI)}: info.version is {version!r}; it must be "
                "MAJOR.MINOR (e.g. \"1.0\"): the gate reads the API major version from it.")
        self.version = str(version)
        self.major = int(match.group(1))
        self.version_key = tuple(int(part or 0) for part in match.groups())


def _load(path, required):
    if not os.path.exists(path):
        if required:
            raise ContractError(f"{path} does not exist: a contract folder holds {OPENAPI} "
                                f"(and {RESULTS_SCHEMA}).")
        return None
    try:
        with open(path, encoding="utf-8") as text:
            return json.load(text)
    except (OSError, ValueError) as err:
        raise ContractError(f"{path} is not readable JSON: {err}") from None


def latest_release(releases, name=None):
    """The subfolder of `releases` with the highest API version (its info.version)."""
    if not os.path.isdir(releases):
        raise ContractError(f"{releases} is not a folder of released contracts "
                            "(one subfolder per API version).")
    found = [Contract(os.path.join(releases, entry), os.path.join(name or releases, entry))
             for entry in sorted(os.listdir(releases))
             if os.path.isdir(os.path.join(releases, entry))]
    if not found:
        raise ContractError(f"{releases} holds no released contract; snapshot one with "
                            "`bazel run //tools/api:snapshot`.")
    return max(found, key=lambda contract: contract.version_key)


# --- schema comparison ---------------------------------------------------------

class _Walk:
    """Compares two schemas of one document pair; collects (where, what) breaks."""

    def __init__(self, base_doc, current_doc):
        self.base_doc = base_doc
        self.current_doc = current_doc
        self.breaks = []
        self._seen = set()
        self._held = []  # keeps compared schemas alive: _seen holds their ids

    def resolve(self, schema, doc):
        """Follows local $refs ("#/a/b") to the schema they name."""
        hops = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/") or hops > 32:
                return {}
            node = doc
            for part in ref[2:].split("/"):
                node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) \
                    if isinstance(node, dict) else {}
            schema, hops = node, hops + 1
        return schema if isinstance(schema, dict) else {}

    def compare(self, base, current, where, request):
        """Records what in `current` breaks clients of `base` (a request or a response)."""
        base = self.resolve(base, self.base_doc)
        current = self.resolve(current, self.current_doc)
        # Each pair once: shared schemas (Error) are reported once, $ref cycles end.
        key = (id(base), id(current), request)
        if key in self._seen:
            return
        self._seen.add(key)
        self._held.append((base, current))
        self._types(base, current, where, request)
        self._enum(base, current, where, request)
        if request:
            self._bounds(base, current, where)
        self._properties(base, current, where, request)
        if "items" in base and isinstance(base["items"], dict):
            self.compare(base["items"], current.get("items", {}), where + "[]", request)
        for keyword in ("oneOf", "anyOf"):
            if keyword in base or keyword in current:
                self._alternatives(base, current, keyword, where, request)

    def _types(self, base, current, where, request):
        old, new = _types(base), _types(current)
        if old is None or new is None or old == new:
            return
        if request and not _covers(new, old):
            self.breaks.append((where, f"type narrowed from {_words(old)} to {_words(new)}"))
        elif not request and not _covers(old, new):
            self.breaks.append((where, f"type widened from {_words(old)} to {_words(new)}: "
                                       "clients do not expect the new values"))

    def _enum(self, base, current, where, request):
        if "enum" not in base:
            if request and "enum" in current:
                self.breaks.append((where, "now limited to the values "
                                           f"{_values(current['enum'])}"))
            return
        removed = [v for v in base["enum"] if v not in current.get("enum", base["enum"])]
        if removed:
            self.breaks.append((where, f"enum value{'s' if len(removed) > 1 else ''} "
                                       f"{_values(removed)} removed"))

    def _bounds(self, base, current, where):
        for keyword in _LOWER_BOUNDS + _UPPER_BOUNDS:
            if keyword not in current or not _number(current[keyword]):
                continue
            tighter = keyword in _LOWER_BOUNDS
            old = base.get(keyword)
            if old is None or (_number(old) and (current[keyword] > old if tighter
                                                 else current[keyword] < old)):
                self.breaks.append((where, f"{keyword} narrowed from "
                                           f"{'none' if old is None else old} to "
                                           f"{current[keyword]}"))
        if "pattern" in current and current["pattern"] != base.get("pattern"):
            self.breaks.append((where, f"pattern {current['pattern']!r} now required"))

    def _properties(self, base, current, where, request):
        old_props = base.get("properties") or {}
        new_props = current.get("properties") or {}
        old_required = set(base.get("required") or ())
        new_required = set(current.get("required") or ())
        if request:
            for name in sorted(new_required - old_required):
                self.breaks.append((f"{where}.{name}", "newly required request field"))
            if base.get("additionalProperties", True) is not False \
                    and current.get("additionalProperties", True) is False:
                self.breaks.append((where, "additional properties no longer accepted"))
            for name in sorted(set(old_props) - set(new_props)):
                if current.get("additionalProperties", True) is False:
                    self.breaks.append((f"{where}.{name}",
                                        "request field removed (and unknown fields are refused)"))
        else:
            for name in sorted(set(old_props) - set(new_props)):
                self.breaks.append((f"{where}.{name}", "response field removed"))
            for name in sorted(old_required - new_required):
                if name in new_props:
                    self.breaks.append((f"{where}.{name}",
                                        "response field no longer required (may be absent)"))
        for name in sorted(set(old_props) & set(new_props)):
            self.compare(old_props[name], new_props[name], f"{where}.{name}", request)

    def _alternatives(self, base, current, keyword, where, request):
        old = base.get(keyword) or [base]
        new = current.get(keyword) or [current]
        # Requests: every old alternative must still be accepted by some new one.
        # Responses: every new alternative must be one some old one allowed.
        must, by = (old, new) if request else (new, old)
        listed = keyword in (base if request else current)
        for i, option in enumerate(must):
            if not any(self._fits(option, other, request) for other in by):
                side = "no longer accepted" if request else "not allowed before, now sent"
                self.breaks.append((f"{where}.{keyword}[{i}]" if listed else where,
                                    f"alternative {side}" if listed else
                                    f"values {side} (was {keyword} of {len(by)})"))

    def _fits(self, option, other, request):
        probe = _Walk(self.base_doc, self.current_doc)
        if request:
            probe.compare(option, other, "", request)
        else:
            probe.compare(other, option, "", request)
        return not probe.breaks


def _types(schema):
    """The JSON types a schema allows; None when its alternatives decide (oneOf, ...)."""
    if "type" not in schema:
        if any(keyword in schema for keyword in ("oneOf", "anyOf", "allOf", "not", "enum")):
            return None
        return _ANY_TYPE
    kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if schema.get("nullable"):
        kinds = list(kinds) + ["null"]
    return frozenset(kinds)


def _covers(wide, narrow):
    """True when every value of the types `narrow` is a value of the types `wide`."""
    return all(kind in wide or (kind == "integer" and "number" in wide) for kind in narrow)


def _words(kinds):
    return "any type" if kinds == _ANY_TYPE else "|".join(sorted(kinds))


def _values(values):
    return ", ".join(json.dumps(v) for v in values)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# --- OpenAPI document comparison ------------------------------------------------

def compare_openapi(base, current):
    """[(where, what)] of the changes in `current` that break clients of `base`."""
    walk = _Walk(base, current)
    old_paths, new_paths = base.get("paths") or {}, current.get("paths") or {}
    for path in old_paths:
        if path not in new_paths:
            walk.breaks.append((path, "path removed"))
            continue
        for method in HTTP_METHODS:
            if method not in old_paths[path]:
                continue
            where = f"{method.upper()} {path}"
            if method not in new_paths[path]:
                walk.breaks.append((where, "method removed"))
                continue
            _operation(walk, old_paths[path], new_paths[path], method, where)
    return walk.breaks


def _operation(walk, old_item, new_item, method, where):
    old_op, new_op = old_item[method], new_item[method]
    old_params = _parameters(walk, old_item, old_op, walk.base_doc)
    new_params = _parameters(walk, new_item, new_op, walk.current_doc)
    for key, param in sorted(new_params.items()):
        if key not in old_params and param.get("required"):
            walk.breaks.append((f"{where} {key[1]} parameter {key[0]}",
                                "new required parameter"))
    for key, param in sorted(old_params.items()):
        if key in new_params:
            if new_params[key].get("required") and not param.get("required"):
                walk.breaks.append((f"{where} {key[1]} parameter {key[0]}", "now required"))
            walk.compare(param.get("schema", {}), new_params[key].get("schema", {}),
                         f"{where} {key[1]} parameter {key[0]}", request=True)
        elif key[1] == "path":
            walk.breaks.append((f"{where} path parameter {key[0]}", "parameter removed"))
    old_body = walk.resolve(old_op.get("requestBody") or {}, walk.base_doc)
    new_body = walk.resolve(new_op.get("requestBody") or {}, walk.current_doc)
    if new_body.get("required") and not old_body.get("required"):
        walk.breaks.append((f"{where} request body", "now required"))
    old_media, new_media = old_body.get("content") or {}, new_body.get("content") or {}
    for media, content in old_media.items():
        if media not in new_media:
            if new_body:
                walk.breaks.append((f"{where} request body {media}", "media type removed"))
            continue
        walk.compare(content.get("schema", {}), new_media[media].get("schema", {}),
                     f"{where} request", request=True)
    old_responses = old_op.get("responses") or {}
    new_responses = new_op.get("responses") or {}
    for status, old_response in old_responses.items():
        new_response = new_responses.get(status)
        if new_response is None:
            if str(status).startswith("2"):
                walk.breaks.append((f"{where} {status} response", "response removed"))
            continue
        _response(walk, old_response, new_response, f"{where} {status} response")


def _parameters(walk, item, operation, doc):
    params = {}
    for param in list(item.get("parameters") or []) + list(operation.get("parameters") or []):
        param = walk.resolve(param, doc)
        if "name" in param:
            params[(param["name"], param.get("in", "query"))] = param
    return params


def _response(walk, old, new, where):
    old = walk.resolve(old, walk.base_doc)
    new = walk.resolve(new, walk.current_doc)
    old_headers, new_headers = old.get("headers") or {}, new.get("headers") or {}
    for name, header in old_headers.items():
        header = walk.resolve(header, walk.base_doc)
        if name not in new_headers:
            walk.breaks.append((f"{where} header {name}", "response header removed"))
        elif header.get("required") and not walk.resolve(
                new_headers[name], walk.current_doc).get("required"):
            walk.breaks.append((f"{where} header {name}", "no longer always sent"))
    old_media, new_media = old.get("content") or {}, new.get("content") or {}
    for media, content in old_media.items():
        if media not in new_media:
            walk.breaks.append((f"{where} {media}", "media type removed"))
            continue
        walk.compare(content.get("schema", {}), new_media[media].get("schema", {}),
                     where, request=False)


def compare_results(base, current):
    """[(where, what)] of the changes in a response body's JSON Schema that break clients."""
    walk = _Walk(base, current)
    walk.compare(base, current, "results", request=False)
    return walk.breaks


# --- the gate --------------------------------------------------------------------

def check(base, current, accepted=()):
    """(breaks, verdict lines, passed) comparing two Contracts.

    `accepted`: waivers, dicts with "base" (released API version), "document",
    "where", "what" (the break, exactly) and "why".
    """
    breaks = [(OPENAPI, where, what) for where, what in compare_openapi(base.openapi,
                                                                        current.openapi)]
    if base.results is not None:
        if current.results is None:
            breaks.append((RESULTS_SCHEMA, "results", "schema removed"))
        else:
            breaks += [(RESULTS_SCHEMA, where, what)
                       for where, what in compare_results(base.results, current.results)]
    lines = []
    if current.version_key < base.version_key:
        lines.append(f"api: the API version went down from {base.version} to "
                     f"{current.version}; versions only move forward.")
        return breaks, lines, False
    raised = current.major > base.major
    waivers = [w for w in accepted if w.get("base") == base.version]
    used = set()
    kept = []
    for document, where, what in breaks:
        found = (document, where, what)
        match = next((i for i, w in enumerate(waivers)
                      if (w.get("document"), w.get("where"), w.get("what")) == found), None)
        if match is None:
            kept.append((document, where, what))
            continue
        used.add(match)
        lines.append(f"accepted {document}: {where}: {what} (waived: {waivers[match]['why']})")
    stale = [w for i, w in enumerate(waivers) if i not in used]
    for waiver in stale:
        lines.append(f"STALE waiver for API {base.version}: {waiver.get('where')}: "
                     f"{waiver.get('what')} matches no break; remove it.")
    if stale:
        return breaks, lines, False
    breaks = kept
    for document, where, what in breaks:
        lines.append(f"{'accepted' if raised else 'BREAKING'} {document}: {where}: {what}")
    if not breaks:
        lines.append(f"api: {current.folder} (API {current.version}) is backward compatible "
                     f"with {base.folder} (API {base.version}).")
        return breaks, lines, True
    if raised:
        lines.append(f"api: {len(breaks)} breaking change(s) accepted: the API major version "
                     f"went from {base.major} to {current.major}.")
        return breaks, lines, True
    lines.append(f"api: {len(breaks)} breaking change(s) against API {base.version} "
                 f"({base.folder}). Make the change additive, or raise the API major version "
                 f"(info.version, now {current.version}: the handler's "
                 "Contract(api_version=...)) and snapshot the release.")
    return breaks, lines, False


ACCEPTED_FILE = "accepted_breaks.json"


def main(argv=None):
    """Entry point; the exit status (0 compatible, 1 breaking, 2 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    base = parser.add_mutually_exclusive_group(required=True)
    base.add_argument("--base", help="the released contract folder to compare against")
    base.add_argument("--releases", help="a folder of released contracts: the highest "
                                         "API version is the base")
    parser.add_argument("--current", required=True, help="the contract folder to check")
    parser.add_argument("--accepted", help="a JSON file of waived breaks (each with its "
                                           "reason); default with --releases: "
                                           f"RELEASES/{ACCEPTED_FILE} when it exists")
    args = parser.parse_args(argv)
    # Paths are the caller's (tools/cli.py): `bazel run` starts us in the runfiles
    # tree; tools/ci/modelship-tool sets the same variable to the checkout.
    workspace = os.environ.get("BUILD_WORKING_DIRECTORY", "")
    if args.accepted is None and args.releases and os.path.isfile(
            os.path.join(workspace, args.releases, ACCEPTED_FILE)):
        # Waivers live beside the released contracts they are against, so every
        # caller of the gate (Bazel, the CI component) applies the same ones.
        args.accepted = os.path.join(args.releases, ACCEPTED_FILE)
    try:
        if args.base:
            base_contract = Contract(os.path.join(workspace, args.base), args.base)
        else:
            base_contract = latest_release(os.path.join(workspace, args.releases), args.releases)
        current = Contract(os.path.join(workspace, args.current), args.current)
        accepted = _load(os.path.join(workspace, args.accepted), True) if args.accepted else []
        if not isinstance(accepted, list) or not all(
                isinstance(w, dict) and isinstance(w.get("why"), str) for w in accepted):
            raise ContractError(f"{args.accepted}: must be a JSON array of objects with "
                                "base, document, where, what and why.")
    except ContractError as err:
        print(f"api: {err}", file=sys.stderr)
        return 2
    _, lines, passed = check(base_contract, current, accepted)
    for line in lines:
        print(line)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
