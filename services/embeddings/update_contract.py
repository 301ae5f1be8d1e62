"""Rewrites services/embeddings/openapi.json and results.schema.json from the code and the
built model: `bazel run //services/embeddings:contract.update`. Review the diff: it is a
change to the public API."""

import sys

from serving import update_contract
from services.embeddings.handler import EmbeddingsHandler

if __name__ == "__main__":
    sys.exit(update_contract.main(EmbeddingsHandler))
