"""Rewrites a model's checked-in contract documents from the code and the built model.

A model's `contract.update` target runs `main(HandlerClass)`, e.g.

    bazel run //services/<name>:contract.update

and it writes openapi.json (and results.schema.json when the handler serves a
results schema) beside the handler's module in the workspace: the documents
the server serves for the default configuration. Review the diff: it is a
change to the public API.
"""

import argparse
import dataclasses
import os
import sys

from serving import app
from serving.config import Config


def documents(config):
    """{file name: text} of the contract documents for `config`'s handler and model."""
    handler = config.handler()
    app.load(handler, config)
    handler.spec = dataclasses.replace(handler.spec, model_name=config.model_name)
    return app.contract_documents(handler, handler.spec)


def main(handler, argv=None):
    """Writes the documents of `handler` (a class) into the workspace `bazel run` was called
    from; the exit status (2 for a usage error)."""
    argparse.ArgumentParser(description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter
                            ).parse_args(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    folder = os.path.join(*handler.__module__.split(".")[:-1])
    if not workspace:
        print(f"update_contract: run me with `bazel run //{folder}:contract.update`.",
              file=sys.stderr)
        return 2
    for name, text in documents(Config.from_environ({}, handler=handler)).items():
        path = os.path.join(workspace, folder, name)
        with open(path, "w", encoding="utf-8") as out:
            out.write(text)
        print(f"wrote {folder}/{name}")
    return 0
