"""The example consumers expand to exactly the checked-in pipelines.

gitlab-ci-local's `--preview` resolves every include (component and project,
from the offline component project), interpolates the inputs and expands
`extends`; its output is compared with ci/tests/golden/. A template change
that alters what consumers run shows up as a diff of those files
(`bazel run //ci/tests:golden.update` rewrites them).
"""

import difflib

import pytest

from ci.tests import golden, support


@pytest.mark.parametrize("name", sorted(golden.GOLDEN))
def test_example_consumer_preview_matches_golden_file(tmp_path, name):
    got = golden.render(name, str(tmp_path))
    with open(support.workspace_file(f"ci/tests/golden/{golden.GOLDEN[name]}"),
              encoding="utf-8") as text:
        want = text.read()
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        "golden", "preview"))
    assert not diff, f"preview differs; if intended, run `bazel run //ci/tests:golden.update`:\n" \
                     f"{diff}"


def test_preview_is_the_same_twice(tmp_path):
    assert golden.render("component", str(tmp_path / "a")) == \
        golden.render("component", str(tmp_path / "b"))


def test_preview_interpolates_the_inputs(tmp_path):
    pipeline = support.preview_documents(golden.render("component", str(tmp_path)))
    steps = pipeline["modelship-canary-production"]["parallel"]["matrix"][0]
    assert steps == {"MODELSHIP_CANARY_WEIGHT": [5, 20, 50]}
    rollout = pipeline["modelship-rollout-production"]
    assert rollout["variables"]["MODELSHIP_DEPLOY"] == \
        "tools/ci/modelship-tool deploy --target kubernetes --namespace digits-team --name digits"
    assert rollout["environment"]["name"] == "production"
    assert "$[[" not in str(pipeline)
