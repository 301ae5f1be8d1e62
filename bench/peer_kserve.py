"""KServe's Python model server serving the digits model, for the peer benchmark.

    python3 -m bench.peer_kserve MODEL_PATH PORT

Runs inside the benchmark's own KServe virtualenv (third_party/python/
bench-kserve.txt), never in the product: one uvicorn worker, gRPC off (the
benchmark speaks REST only), per-request latency logging off. The model is
loaded with this repository's inference code (the same Cython kernel our
service runs), so the comparison is between servers, not models.
"""

import sys
import uuid

import numpy as np

from inference.model import Model


def main(argv):
    """Serves until stopped."""
    model_path, port = argv[0], int(argv[1])
    # kserve parses sys.argv when imported: give it only what it should see.
    sys.argv = [sys.argv[0], "--configure_logging", "false"]
    import kserve  # pylint: disable=import-outside-toplevel
    from kserve import InferOutput, InferResponse  # pylint: disable=import-outside-toplevel

    class Digits(kserve.Model):
        """OIP v2 in, probabilities (FP32) and label (BYTES) out, as our service answers."""

        def __init__(self, name):
            super().__init__(name)
            self.model = None
            self.ready = False

        def load(self):
            """Loads the artifact."""
            self.model = Model.load(model_path)
            self.ready = True
            return self.ready

        async def predict(self, payload, headers=None, response_headers=None):
            """Probabilities and the most probable label of each row."""
            del headers, response_headers
            rows = payload.inputs[0].as_numpy()
            proba = self.model.predict_proba(rows.reshape(rows.shape[0], -1))
            labels = [self.model.labels[i] for i in np.argmax(proba, axis=1)]
            return InferResponse(
                # The request's id, or a new one (as our service and MLServer answer).
                response_id=payload.id or str(uuid.uuid4()), model_name=self.name,
                infer_outputs=[
                    InferOutput("probabilities", list(proba.shape), "FP32",
                                proba.ravel().tolist()),
                    InferOutput("label", [len(labels)], "BYTES", labels)])

    model = Digits("digits")
    model.load()
    kserve.ModelServer(http_port=port, workers=1, enable_grpc=False,
                       enable_latency_logging=False).start([model])


if __name__ == "__main__":
    main(sys.argv[1:])
