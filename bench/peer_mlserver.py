"""MLServer serving the digits model, for the peer benchmark (bench/service_peers.py).

Runs inside the benchmark's own MLServer virtualenv (third_party/python/
bench-mlserver.txt), never in the product: service_peers.py writes the
settings MLServer reads (`DigitsRuntime` in one process, no parallel inference
workers, debug and access logs off), then runs `mlserver start DIR`.

The runtime loads the artifact with this repository's inference code (the
same Cython kernel our service runs), so the comparison is between servers,
not models.
"""

import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, StringCodec
from mlserver.types import InferenceRequest, InferenceResponse

from inference.model import Model


class DigitsRuntime(MLModel):
    """OIP v2 in, probabilities (FP32) and label (BYTES) out, as our service answers."""

    def __init__(self, settings):
        super().__init__(settings)
        self._model = None

    async def load(self):
        """Loads the artifact named by the model settings' `parameters.uri`."""
        self._model = Model.load(self.settings.parameters.uri)
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        """Probabilities and the most probable label of each row."""
        rows = NumpyCodec.decode_input(payload.inputs[0])
        proba = self._model.predict_proba(rows.reshape(rows.shape[0], -1))
        labels = [self._model.labels[i] for i in np.argmax(proba, axis=1)]
        return InferenceResponse(
            model_name=self.name, id=payload.id,
            outputs=[NumpyCodec.encode_output("probabilities", proba),
                     StringCodec.encode_output("label", labels)])
