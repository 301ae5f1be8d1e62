"""Rewrites services/flowers/openapi.json from the code and the built model:
`bazel run //services/flowers:contract.update` (modelship's serving/update_contract.py).
Review the diff: it is a change to the public API."""

import sys

from serving import update_contract
from services.flowers.handler import FlowersHandler

if __name__ == "__main__":
    sys.exit(update_contract.main(FlowersHandler))
