"""The serving runtime: a model team's handler served over HTTP (README.md).

The handler API: `Handler`, `InputSpec`, `TextSpec`, `Task`, `Contract` (serving/handler.py)
and `BadRequestError`; `serving.testing.HandlerClient` drives a handler
in-process for tests.
"""

from serving.errors import BadRequestError
from serving.handler import Contract, Handler, InputSpec, Task, TextSpec

__all__ = ["BadRequestError", "Contract", "Handler", "InputSpec", "Task", "TextSpec"]
