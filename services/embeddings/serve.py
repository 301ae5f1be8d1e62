"""`bazel run //services/embeddings:serve`: the serving runtime with the embeddings handler
(`python3 -m serving` with MODELSHIP_HANDLER set, as in the image)."""

import os
import sys

from serving import __main__ as serving_main

if __name__ == "__main__":
    os.environ.setdefault("MODELSHIP_HANDLER",
                          "services.embeddings.handler:EmbeddingsHandler")
    sys.exit(serving_main.main())
