"""Rewrites services/digits/openapi.json and results.schema.json from the code and the
built model: `bazel run //services/digits:contract.update` (serving/update_contract.py)."""

import sys

from serving import update_contract
from services.digits.handler import DigitsHandler

if __name__ == "__main__":
    sys.exit(update_contract.main(DigitsHandler))
