"""Fuzzes the real server from the checked-in OpenAPI document with schemathesis.

Proves: schemathesis' own runner, with every check it has and all four
phases (examples, coverage with positive and negative data, fuzzing,
stateful), finds no failure on any operation, the versioned paths included:
no 5xx, every response as documented (status, headers, content type, body),
every schema-violating request refused with a 4xx, and every schema-valid one
accepted (0 "schema-valid request rejected"). The operations are split into
shards (one Bazel target each, so they run in parallel); together they send
at least 5,000 generated requests.

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
# (shard: schemathesis options, examples per operation, whether the served model's name
# and version are fixed, fewest generated cases). The minimums add up to 5,000.
SHARDS = {
    "infer": (["--include-path-regex", "/infer$"], 200, True, 2600),
    "models": (["--include-path-regex", "^/v2/models/", "--exclude-path-regex", "/infer$"],
               150, True, 900),
    "service": (["--exclude-path-regex", "^/v2/models/"], 60, True, 1100),
    "any_model": (["--include-path-regex", "^/v2/models/"], 25, False, 400),
}
MIN_TOTAL = 5000
assert sum(shard[3] for shard in SHARDS.values()) >= MIN_TOTAL


def _run(server, tmp_path, options, examples, served):
    version = server.get("/v2/health/ready").headers["x-model-version"]
    config = tmp_path / "schemathesis.toml"
    lines = ["[checks.positive_data_acceptance]",
             # A valid body over DIGITS_MAX_BODY_BYTES is refused before it is read.
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
               "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
               "--mode", "all", "--max-examples", str(examples), "--generation-deterministic",
               "--generation-database", "none", "--suppress-health-check", "all",
               "--workers", "1", "--request-timeout", "30", "--no-color",
               "--output-truncate", "true", *options]
    result = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=900, check=False)
    return result.stdout + result.stderr, result.returncode


@pytest.mark.parametrize("shard", sorted(SHARDS))
def test_generated_requests_find_no_failure(server, tmp_path, shard):
    options, examples, served, fewest = SHARDS[shard]
    output, status = _run(server, tmp_path, options, examples, served)
    tail = output[-6000:]
    assert status == 0, f"schemathesis failed (exit {status}):\n{tail}"
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", output), f"phase {phase} did not pass:\n{tail}"
    generated = re.search(r"(\d+) generated", output)
    assert generated, tail
    assert int(generated.group(1)) >= fewest, f"only {generated.group(1)} cases:\n{tail}"
    assert "Schema-valid request rejected" not in output and "Server error" not in output
    print(f"{shard}: {generated.group(1)} generated cases\n{tail}")
