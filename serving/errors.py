"""Typed errors of the service. Each says what is wrong and, where it can, what to do.

Status codes are not chosen here: `app.py` (the HTTP edge) maps these classes
to statuses in one table. The model library's own `inference.errors.InputError`
is a caller error too and is mapped there as well. `ModelError` stops the
server before it serves (`__main__.py`), so it has no status.
"""


class ServiceError(Exception):
    """Base class of every error the service raises on purpose."""


class BadRequestError(ServiceError):
    """The request body is not a valid request (JSON, fields, shapes, values)."""


class UnsupportedMediaTypeError(ServiceError):
    """The request body is not declared as JSON."""


class PayloadTooLargeError(ServiceError):
    """The request body exceeds the configured limit."""


class RequestTimeoutError(ServiceError):
    """The request body did not arrive within the deadline."""


class NotFoundError(ServiceError):
    """No such route, model or model version."""


class MethodNotAllowedError(ServiceError):
    """The route exists but not for this method; `allowed` lists the methods it takes."""

    def __init__(self, message, allowed):
        super().__init__(message)
        self.allowed = tuple(allowed)


class NotReadyError(ServiceError):
    """The model is still loading (or failed to load, or the server is draining)."""


class OverloadedError(ServiceError):
    """The batch queue is full; the caller should retry after `retry_after_s` seconds."""

    def __init__(self, message, retry_after_s):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ModelError(ServiceError):
    """The handler's model cannot be served (not the expected version, incomplete handler)."""
