"""MODEL_CARD.md is generated from the artifact and says what the artifact says, plus the
operating point the release holds the service to."""

import json

from inference import artifact
from models.digits import model_card, paths

CARD = "models/digits/MODEL_CARD.md"
OPERATING_POINT = "models/digits/release/operating_point.json"


def _operating_point():
    with open(paths.runfile(OPERATING_POINT), encoding="utf-8") as src:
        return json.load(src)


def _card():
    with open(paths.runfile(CARD), encoding="utf-8") as src:
        return src.read()


def test_built_card_is_the_rendering_of_the_built_artifact():
    assert _card() == model_card.render(artifact.read(paths.model_path()), _operating_point())


def test_card_states_the_operating_point_bounds():
    bounds, card = _operating_point(), _card()
    assert "## Operating point" in card
    assert f"| {bounds['latency_p95_ms']:g} ms |" in card
    assert f"| {bounds['memory_mib']:g} MiB |" in card


def test_card_states_version_metrics_split_and_limits():
    loaded = artifact.read(paths.model_path())
    card, m = _card(), loaded.header["metrics"]
    assert f"`{loaded.version}`" in card
    assert f"| top-1 accuracy (quantized model, as served) | {m['test_accuracy']:.4f} |" in card
    assert f"| quantized vs float top-1 agreement | {m['quantized_agreement']:.4f} |" in card
    sizes = m["split_sizes"]
    assert (f"{sizes['train']} train, {sizes['validation']} validation, {sizes['test']} test"
            in card)
    for section in ("## Intended use", "## Evaluation", "## Quantization", "## Limits"):
        assert section in card
