"""`bazel run //services/digits:serve`: the serving runtime with the digits handler
(`python3 -m serving` with MODELSHIP_HANDLER set, as in the image)."""

import os
import sys

from serving import __main__ as serving_main

if __name__ == "__main__":
    os.environ.setdefault("MODELSHIP_HANDLER", "services.digits.handler:DigitsHandler")
    sys.exit(serving_main.main())
