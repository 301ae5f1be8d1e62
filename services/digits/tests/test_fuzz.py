"""Fuzzes the real server from the checked-in OpenAPI document with schemathesis.

Proves: over at least 1,000 generated requests (schema-valid and schema-
violating, to every operation, with random and with the served model's names),
the server never answers 5xx, every response conforms to the document (status,
headers, content type, body schema), schema-violating requests are rejected
with a 4xx (413 for bodies over the size limit), and schema-valid task
requests are accepted.

OIP infer requests are exempt from "schema-valid means accepted": whether
`data` fits `shape` cannot be said in JSON Schema, so the document is looser
than the server there (the server's 400 says what does not fit).
"""

import collections
import os
import pathlib

import hypothesis
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis import checks

OPENAPI = pathlib.Path(__file__).resolve().parent.parent / "openapi.json"
EXAMPLES_PER_STRATEGY = int(os.environ.get("FUZZ_EXAMPLES", "80"))
MIN_CASES = 1000

CHECKS = [checks.not_a_server_error, checks.status_code_conformance,
          checks.content_type_conformance, checks.response_headers_conformance,
          checks.response_schema_conformance, checks.negative_data_rejection]
CHECKS_WITH_ACCEPTANCE = CHECKS + [checks.positive_data_acceptance]


def _strategies(schema, version):
    """(label, strategy) for every operation, mode, and random or served model names."""
    for result in schema.get_all_operations():
        operation = result.ok()
        served = {"model_name": "digits", "model_version": version}
        fixed = {k: v for k, v in served.items() if "{" + k + "}" in operation.path}
        for mode in GenerationMode:
            yield f"{operation.label} {mode.value}", operation, mode, None
            if fixed:
                yield f"{operation.label} {mode.value} (served model)", operation, mode, fixed


def _fuzzer(strategy, body):
    @given(strategy)
    @settings(max_examples=EXAMPLES_PER_STRATEGY, database=None, deadline=None,
              derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    def run(case):
        body(case)
    return run


def _call(case, label, chosen, base_url, counts, failures):
    counts[label] += 1
    response = case.call(base_url=base_url, timeout=30)
    if response.status_code == 413:
        # A body over DIGITS_MAX_BODY_BYTES is refused before it is parsed: a correct
        # rejection, whatever schema rule the generated body also breaks (schemathesis'
        # negative-data check does not count 413 among rejections).
        chosen = [check for check in chosen if check is not checks.negative_data_rejection]
    try:
        case.validate_response(response, checks=chosen)
    except BaseException as err:  # pylint: disable=broad-except
        # schemathesis raises a group of failures; record them and go on fuzzing.
        if len(failures) < 20:
            failures.append(f"{label}: {case.method} {case.formatted_path} "
                            f"body={str(case.body)[:300]} -> {response.status_code} "
                            f"{response.text[:300]}\n{str(err)[:800]}")


def test_generated_requests_never_get_a_server_error_and_always_conform(server):
    version = server.get("/v2/health/ready").headers["x-model-version"]
    base_url = f"http://{server.env['DIGITS_HOST']}:{server.port}"
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    schema.config.update(base_url=base_url)
    counts = collections.Counter()
    failures = []
    for label, operation, mode, path_parameters in _strategies(schema, version):
        chosen = CHECKS if "infer" in label else CHECKS_WITH_ACCEPTANCE
        strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
        run = _fuzzer(strategy, lambda case, label=label, chosen=chosen: _call(
            case, label, chosen, base_url, counts, failures))
        try:
            run()  # pylint: disable=no-value-for-parameter
        except hypothesis.errors.Unsatisfiable:
            # No schema-violating form exists (e.g. an operation without inputs).
            assert mode is GenerationMode.NEGATIVE, label
    assert not failures, "\n\n".join(failures)
    total = sum(counts.values())
    assert total >= MIN_CASES, f"only {total} cases generated: {dict(counts)}"
    print(f"{total} generated cases: {dict(counts)}")
