"""BASELINE (benchmarks only, never deployed): the digits model behind a plain
FastAPI + uvicorn server, computed with the numpy reference implementation.

    python -m bench.baseline_fastapi MODEL_PATH PORT

This is what the service is measured against: the straightforward way to put
a numpy model behind HTTP (pydantic validation, one model call per request,
no batching, no cache), using FastAPI's documented idioms and uvicorn's
fastest settings (uvloop, httptools, one worker, no access log). It serves the
same `POST /v1/predict` request and answers the same top-k result shape.
"""

import sys

import numpy as np
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field

from inference import artifact
from inference.reference import ReferenceModel


class PredictRequest(BaseModel):
    """`{"instances": [[64 levels], ...], "top_k": 3}`."""

    instances: list[list[float]] = Field(min_length=1, max_length=1024)
    top_k: int = Field(default=3, ge=1, le=10)


def create_app(model_path):
    """The baseline app serving the artifact at `model_path`."""
    loaded = artifact.read(model_path)
    spec = artifact.classifier_spec(loaded)
    model = ReferenceModel(spec.weights)
    labels = spec.labels
    app = FastAPI()

    @app.get("/v2/health/ready")
    def ready():
        """Always ready once started."""
        return {"ready": True}

    @app.post("/v1/predict")
    async def predict(request: PredictRequest):
        """Top-k labels of each instance."""
        x = np.asarray(request.instances, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != spec.n_inputs:
            raise HTTPException(400, f"instances must be rows of {spec.n_inputs} values")
        if not np.all((x >= 0) & (x <= spec.max_level)):
            raise HTTPException(400, f"pixel values must be levels 0..{spec.max_level}")
        proba = model.predict_proba(x)
        order = np.argsort(-proba, axis=1, kind="stable")[:, :request.top_k]
        predictions = []
        for row, best in zip(proba.tolist(), order.tolist()):
            ranked = [{"label": labels[c], "probability": row[c]} for c in best]
            predictions.append({"label": ranked[0]["label"], "top_k": ranked})
        return {"format": "1.0", "model": {"name": "digits", "version": loaded.version},
                "predictions": predictions}

    return app


def main(argv):
    """Serves argv[1] on port argv[2]."""
    model_path, port = argv[1], int(argv[2])
    uvicorn.run(create_app(model_path), host="127.0.0.1", port=port, loop="uvloop",
                http="httptools", access_log=False, log_level="warning")


if __name__ == "__main__":
    main(sys.argv)
