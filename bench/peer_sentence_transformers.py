"""PEER (benchmarks only, never deployed): all-MiniLM-L6-v2 with sentence-transformers
behind FastAPI + uvicorn, one worker. Run by the reference virtualenv's python
(third_party/python/reference.txt), never by Bazel's:

    python bench/peer_sentence_transformers.py MODEL_FOLDER PORT [--mode threadpool|loop]

MODEL_FOLDER holds the published files (@minilm_source): the fp32 weights the
service's int8 artifact was converted from. This is the straightforward way to
serve the model: pydantic validates `POST /v1/embed {"texts": [...]}`, one
`SentenceTransformer.encode` call per request (normalised embeddings, its
default batch size of 32), and the same answer shape as the service's.

--mode threadpool (default): a plain `def` endpoint, which FastAPI runs in its
thread pool (its documented idiom for blocking work); torch releases the GIL,
so several requests compute at once. --mode loop: an `async def` endpoint that
computes on the event loop, one request at a time, torch's own threads only.
"""

import argparse

import torch
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel, Field
from sentence_transformers import SentenceTransformer


class EmbedRequest(BaseModel):
    """`{"texts": ["a sentence", ...]}`, as the service takes it."""

    texts: list[str] = Field(min_length=1, max_length=1024)


def create_app(model_folder, mode):
    """The app serving the model in `model_folder`."""
    model = SentenceTransformer(model_folder, device="cpu")
    model.eval()
    dimension = model.get_sentence_embedding_dimension()
    app = FastAPI()

    def embed(texts):
        with torch.inference_mode():
            vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return {"model": {"name": "all-MiniLM-L6-v2"}, "dimension": dimension,
                "embeddings": vectors.tolist()}

    @app.get("/v2/health/ready")
    def ready():
        """Always ready once started."""
        return {"ready": True}

    if mode == "threadpool":
        @app.post("/v1/embed")
        def embed_threadpool(request: EmbedRequest):
            """One embedding per text, computed in FastAPI's thread pool."""
            return embed(request.texts)
    else:
        @app.post("/v1/embed")
        async def embed_loop(request: EmbedRequest):
            """One embedding per text, computed on the event loop."""
            return embed(request.texts)

    return app


def main(argv=None):
    """Serves the model on 127.0.0.1:PORT."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("model_folder")
    parser.add_argument("port", type=int)
    parser.add_argument("--mode", choices=("threadpool", "loop"), default="threadpool")
    args = parser.parse_args(argv)
    app = create_app(args.model_folder, args.mode)
    uvicorn.run(app, host="127.0.0.1", port=args.port, workers=1, access_log=False,
                log_level="warning")


if __name__ == "__main__":
    main()
