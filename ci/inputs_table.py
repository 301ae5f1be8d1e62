"""The inputs tables of ci/README.md, rendered from the templates' `spec:` headers.

    python3 ci/inputs_table.py [templates/]    prints the tables (Markdown)

ci/tests/test_readme.py fails when the README's tables differ from these, so
the documentation cannot drift from the components.
"""

import os
import sys

import yaml

ORDER = ["pipeline", "image-build", "repro-check", "release-gate", "api-gate", "publish",
         "promote", "canary", "check-inputs"]


def cell(value):
    """A table cell: code for values, pipes escaped."""
    text = yaml.safe_dump(value, default_flow_style=True).strip()
    text = text[:-4] if text.endswith("\n...") else text
    return "`" + text.replace("|", "\\|") + "`"


def render(templates):
    """Markdown: one table per component, in ORDER."""
    parts = []
    names = ORDER + sorted(n[:-4] for n in os.listdir(templates)
                           if n.endswith(".yml") and n[:-4] not in ORDER)
    for name in names:
        with open(os.path.join(templates, name + ".yml"), encoding="utf-8") as text:
            header = next(yaml.safe_load_all(text))
        parts.append(f"#### `{name}`\n\n| input | type | default | meaning |\n|---|---|---|---|")
        for key, spec in header["spec"]["inputs"].items():
            spec = spec or {}
            kind = spec.get("type", "string")
            if "options" in spec:
                kind += " (one of " + ", ".join(f"`{o}`" for o in spec["options"]) + ")"
            if "regex" in spec:
                kind += " matching `" + spec["regex"].replace("|", "\\|") + "`"
            default = cell(spec["default"]) if "default" in spec else "**required**"
            parts.append(f"| `{key}` | {kind} | {default} | {spec.get('description', '')} |")
        parts.append("")
    return "\n".join(parts)


if __name__ == "__main__":
    HERE = os.path.dirname(os.path.abspath(__file__))
    print(render(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "templates")))
