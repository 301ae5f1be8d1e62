"""Fuzzes the real server from the checked-in OpenAPI document with schemathesis.

Proves: schemathesis' own runner, with every check it has and all four
phases (examples, coverage with positive and negative data, fuzzing,
stateful), finds no failure on any operation, the versioned paths included:
no 5xx, every response as documented (status, headers, content type, body),
every schema-violating request refused with a 4xx, and every schema-valid one
accepted (0 "schema-valid request rejected"). The operations are split into
shards (one Bazel target each, so they run in parallel); together they send
at least 5,000 generated requests (each shard prints its count into its test log).

Model paths get the served model's name and version (the config file), so
requests reach the model; one shard leaves the path parameters to the
generator too, so unknown models and versions are fuzzed (404 is documented).

Two allowances, both documented: a schema-valid body over the body limit may
get 413 (a size limit is no JSON Schema property), and schema-valid infer
requests get their shape fitted to their data before they are sent, the one
rule JSON Schema cannot state (fuzz_hooks.py). Schema-violating requests are
sent as generated.
"""

import os
import pathlib
import re
import subprocess
import sys

import pytest

from services.digits.tests import harness

OPENAPI = pathlib.Path(__file__).resolve().parent.parent / "openapi.json"
ALL_PHASES = ("examples", "coverage", "fuzzing", "stateful")
_METADATA = r"^/v2/models/\{model_name\}"
# shard: (schemathesis options, examples per operation, served model's name and version
# fixed, phases, fewest generated cases). The minimums add up to at least 5,000. Each
# model shard keeps model metadata in: its links feed the stateful phase.
SHARDS = {
    "infer": (["--include-path-regex", _METADATA + "(/infer)?$"], 100, True, ALL_PHASES,
              600),
    "versioned_infer": (["--include-path-regex",
                         _METADATA + r"(/versions/\{model_version\}/infer)?$"], 100, True,
                        ALL_PHASES, 600),
    "models": (["--include-path-regex", "^/v2/models/", "--exclude-path-regex", "/infer$"],
               600, True, ALL_PHASES, 3100),
    # No links among these operations: nothing for the stateful phase.
    "service": (["--exclude-path-regex", "^/v2/models/"], 100, True, ALL_PHASES[:3], 200),
    "any_model": (["--include-path-regex", "^/v2/models/"], 40, False, ALL_PHASES, 500),
}
MIN_TOTAL = 5000
assert sum(shard[4] for shard in SHARDS.values()) >= MIN_TOTAL


def _run(server, tmp_path, options, examples, served, phases):
    version = server.get("/v2/health/ready").headers["x-model-version"]
    config = tmp_path / "schemathesis.toml"
    lines = ["[checks.positive_data_acceptance]",
             # A valid body over MODELSHIP_MAX_BODY_BYTES is refused before it is read.
             'expected-statuses = ["2xx", "404", "413"]']
    if served:
        lines = ["[parameters]", 'model_name = "digits"', f'model_version = "{version}"',
                 ""] + lines
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "services.digits.tests.fuzz_hooks",
           "PYTHONPATH": os.pathsep.join(sys.path), "HOME": str(tmp_path)}
    command = [sys.executable, "-c", "from schemathesis.cli import schemathesis; schemathesis()",
               "--config-file", str(config), "run", str(OPENAPI),
               "--url", f"http://{harness.HOST}:{server.port}",
               "--checks", "all", "--phases", ",".join(phases),
               "--mode", "all", "--max-examples", str(examples), "--generation-deterministic",
               "--suppress-health-check", "all",
               "--workers", "1", "--request-timeout", "30", "--no-color",
               "--output-truncate", "true", *options]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=900, check=False)
    return result.stdout + result.stderr, result.returncode


@pytest.mark.parametrize("shard", sorted(SHARDS), ids=lambda shard: f"shard_{shard}")
def test_generated_requests_find_no_failure(server, tmp_path, shard, capsys):
    options, examples, served, phases, fewest = SHARDS[shard]
    output, status = _run(server, tmp_path, options, examples, served, phases)
    failures = output.find("FAILURES")
    tail = output[failures:failures + 8000] if failures >= 0 else output[-6000:]
    assert status == 0, f"schemathesis failed (exit {status}):\n{tail}"
    for phase in phases:
        assert re.search(rf"✅ {phase.title()}\n", output), f"phase {phase} did not pass:\n{tail}"
    generated = re.search(r"(\d+) generated, \1 passed", output)
    assert generated, tail
    with capsys.disabled():  # into the test log: the shard's share of the 5,000
        print(f"\nfuzz shard {shard}: {generated.group(1)} generated cases, 0 failures")
    assert int(generated.group(1)) >= fewest, f"only {generated.group(1)} cases:\n{tail}"
    assert "Schema-valid request rejected" not in output and "Server error" not in output
