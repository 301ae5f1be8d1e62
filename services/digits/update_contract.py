"""Rewrites the checked-in contract documents from the code and the built model.

    bazel run //services/digits:update_contract

Writes services/digits/openapi.json and services/digits/results.schema.json
in the workspace (the documents the server serves for the default
configuration); review the diff: it is a change to the public API.
"""

import os
import sys

from inference.model import Model
from services.digits import contract, protocol
from services.digits.config import Config


def documents(config):
    """{file name: text} of the contract documents for `config`'s model."""
    spec = protocol.InputSpec.from_model(Model.load(config.model_path), config.model_name)
    return {
        contract.OPENAPI_FILE: contract.render(contract.openapi(spec)),
        contract.RESULTS_SCHEMA_FILE: contract.render(contract.results_schema(spec)),
    }


def main():
    """Writes the documents into the workspace `bazel run` was called from."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("update_contract: run me with `bazel run //services/digits:update_contract`.",
              file=sys.stderr)
        return 2
    for name, text in documents(Config.from_environ({})).items():
        path = os.path.join(workspace, "services", "digits", name)
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"wrote services/digits/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
