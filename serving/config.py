"""The service's configuration: environment variables, parsed and validated in one place.

Every setting but MODELSHIP_HANDLER (which model handler to serve) has a
default; the handler supplies the model's name and path.
`Config.from_environ` checks every variable and reports all the bad ones at
once (`ConfigError`), each with its name, the value given and what is
accepted. Variables are listed by `describe()` (and in README.md).
"""

import dataclasses
import typing
import math
import os
import re
import ssl

from serving import handler as handler_lib
from serving import redis_client

PREFIX = "MODELSHIP_"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HANDLER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")


class ConfigError(Exception):
    """One or more environment variables are invalid; `problems` lists every one."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("invalid configuration:\n" + "\n".join(
            f"  {p}" for p in self.problems))


@dataclasses.dataclass(frozen=True)
class Config:
    """Validated settings. Field names are the variable names without the prefix, lower case;
    `handler` is the handler class MODELSHIP_HANDLER names."""

    handler: type
    model_path: str | None
    model_name: str
    expected_version: str | None
    host: str
    port: int
    max_batch_size: int
    max_batch_cost: int
    max_queue_delay_ms: float
    max_queue_rows: int
    kernel: str
    max_body_bytes: int
    max_body_bytes_in_flight: int
    max_requests_in_flight: int
    body_timeout_s: float
    max_connections: int
    header_timeout_s: float
    max_header_bytes: int
    retry_after_s: int
    cache: str
    cache_max_entries: int
    response_cache_bytes: int
    redis_url: str | None
    redis_ca_file: str | None
    redis_cert_file: str | None
    redis_key_file: str | None
    redis_timeout_ms: float
    cache_ttl_s: int
    shutdown_timeout_s: float
    log_level: str

    @classmethod
    def from_environ(cls, environ=None, handler=None):
        """Reads `MODELSHIP_*` from `environ` (default os.environ); raises ConfigError.

        `handler` (a handler class) stands in for MODELSHIP_HANDLER; its `name`
        and `default_model_path()` are the defaults of the model name and path.
        """
        environ = os.environ if environ is None else environ
        values, problems = {}, []
        for setting in SETTINGS:
            raw = environ.get(PREFIX + setting.name.upper())
            if raw is None or raw == "":
                values[setting.name] = setting.default
                continue
            try:
                values[setting.name] = setting.parse(raw.strip())
            except ValueError:
                shown = setting.show(raw) if setting.show else repr(raw)
                problems.append(f"{PREFIX}{setting.name.upper()}={shown}: expected "
                                f"{setting.accepts}.")
        known = {PREFIX + s.name.upper() for s in SETTINGS}
        for name in sorted(environ):
            if name.startswith(PREFIX) and name not in known:
                problems.append(f"{name}: unknown setting. Known: {', '.join(sorted(known))}.")
        if handler is None and values.get("handler") is None:
            problems.append(f"{PREFIX}HANDLER is not set: name the model's handler class, "
                            "as package.module:Class, e.g. services.iris.handler:IrisHandler "
                            "(serving/README.md).")
        elif handler is None:
            try:
                handler = handler_lib.resolve(values["handler"])
            except ValueError as err:
                problems.append(f"{PREFIX}HANDLER={values['handler']!r}: {err}; expected "
                                "package.module:Class on the Python path.")
        values["handler"] = handler
        if not problems:
            problems += _cross_checks(values)
        if handler is not None:
            if values.get("model_name") is None:
                values["model_name"] = handler.name
            if values.get("model_path") is None:
                values["model_path"] = handler.default_model_path()
        if problems:
            raise ConfigError(problems)
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One variable: name (lower case, no prefix), default, parser, accepted values, help.

    `show`, when set, is how a bad value is printed (a URL may carry a password).
    """

    name: str
    default: object
    parse: typing.Callable[[str], object]
    accepts: str
    help: str
    show: typing.Callable[[str], str] | None = None


def _integer(low, high):
    def parse(raw):
        if not re.fullmatch(r"[+-]?\d+", raw):
            raise ValueError(raw)
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(raw)
        return value
    return parse


def _number(low, high):
    def parse(raw):
        value = float(raw)
        if not math.isfinite(value) or not low <= value <= high:
            raise ValueError(raw)
        return value
    return parse


def _choice(*options):
    def parse(raw):
        if raw.lower() not in options:
            raise ValueError(raw)
        return raw.lower()
    return parse


def _pattern(regex):
    def parse(raw):
        if not regex.fullmatch(raw):
            raise ValueError(raw)
        return raw
    return parse


def _path(raw):
    return raw


def _host(raw):
    if not re.fullmatch(r"[A-Za-z0-9.:-]+", raw):
        raise ValueError(raw)
    return raw


def _file(raw):
    if not os.path.isfile(raw) or not os.access(raw, os.R_OK):
        raise ValueError(raw)
    return raw


def _redis_url(raw):
    # The value is never put in the error: it may hold a password (Setting.show).
    try:
        redis_client.Address(raw)
    except redis_client.RedisError:
        raise ValueError("bad redis URL") from None
    return raw


def _redis_url_shown(raw):
    shown = redis_client.redact_url(raw)
    return shown if shown.startswith("<") else repr(shown)


SETTINGS = (
    Setting("handler", None, _pattern(_HANDLER), "package.module:Class",
            "the model's handler class (serving/README.md)"),
    Setting("model_path", None, _path, "a path to a model artifact",
            "model artifact to serve (default: the handler's)"),
    Setting("model_name", None, _pattern(_NAME),
            "a name of 1-64 letters, numbers, '_', '.' or '-'",
            "name of the model in the API, /v2/models/<name> (default: the handler's)"),
    Setting("expected_version", None, _pattern(_SHA256), "a sha256 in lower-case hex (64 chars)",
            "refuse to start unless the artifact has this version"),
    Setting("host", "127.0.0.1", _host, "an IP address or host name", "address to listen on"),
    Setting("port", 8080, _integer(1, 65535), "an integer from 1 to 65535", "TCP port"),
    # Defaults measured on the project's 2-core machine (docs/benchmarks.md).
    Setting("max_batch_size", 16, _integer(1, 4096), "an integer from 1 to 4096",
            "most rows given to one kernel call (a larger request still goes whole)"),
    Setting("max_batch_cost", 0, _integer(0, 1 << 30), "an integer from 0 to 1073741824",
            "most cost (e.g. tokens) of the rows of one kernel call, for handlers that "
            "count it (0: the handler's own max_batch_cost)"),
    Setting("max_queue_delay_ms", 0.0, _number(0, 10000),
            "a number of milliseconds from 0 to 10000",
            "longest a row waits for a batch to fill (0: take what is queued)"),
    Setting("max_queue_rows", 4096, _integer(1, 1_000_000), "an integer from 1 to 1000000",
            "rows allowed to wait; beyond that requests get 503 + Retry-After"),
    Setting("kernel", "inline", _choice("thread", "inline"), "'thread' or 'inline'",
            "run the kernel on the event loop or in a worker thread (it releases the GIL)"),
    Setting("max_body_bytes", 1 << 20, _integer(64, 1 << 30), "an integer from 64 to 1073741824",
            "largest request body accepted (413 beyond)"),
    # Memory bound: worst cases measured in docs/benchmarks.md ("Slow and unfinished
    # bodies"); with these defaults the worker stays far inside a 256 MiB limit.
    Setting("max_body_bytes_in_flight", 16 << 20, _integer(64, 1 << 34),
            "an integer from 64 to 17179869184",
            "request body bytes being received or served at once (declared length, or "
            "MODELSHIP_MAX_BODY_BYTES without one); beyond that 503 + Retry-After"),
    Setting("max_requests_in_flight", 512, _integer(1, 100_000), "an integer from 1 to 100000",
            "requests with a body being received or served at once; beyond that 503 + "
            "Retry-After (health, metadata and metrics are not counted)"),
    Setting("body_timeout_s", 10.0, _number(0.1, 3600), "a number of seconds from 0.1 to 3600",
            "deadline for receiving a whole request body; 408 beyond"),
    Setting("max_connections", 1024, _integer(2, 100_000), "an integer from 2 to 100000",
            "open connections served at once (more wait in the listen backlog)"),
    Setting("header_timeout_s", 30.0, _number(1, 60), "a number of seconds from 1 to 60",
            "deadline for a request's headers; also how long an idle keep-alive connection "
            "stays open"),
    Setting("max_header_bytes", 16384, _integer(8192, 1 << 20),
            "an integer from 8192 to 1048576",
            "largest request head (request line and headers; 431 beyond): the per-connection "
            "read buffer"),
    Setting("retry_after_s", 1, _integer(1, 3600), "an integer from 1 to 3600",
            "Retry-After seconds sent with 503 when overloaded"),
    Setting("cache", "memory", _choice("memory", "redis", "off"), "'memory', 'redis' or 'off'",
            "result cache backend"),
    Setting("cache_max_entries", 10000, _integer(1, 10_000_000), "an integer from 1 to 10000000",
            "rows kept by the in-memory cache (LRU)"),
    Setting("response_cache_bytes", 4 << 20, _integer(0, 1 << 30),
            "an integer from 0 to 1073741824",
            "memory for whole answers to repeated identical requests (LRU; 0: none; "
            "off with MODELSHIP_CACHE=off)"),
    Setting("redis_url", None, _redis_url,
            "a redis://[[user]:password@]host[:port][/db] URL (rediss:// for TLS, or "
            "unix:///path?db=N)",
            "Redis server of the 'redis' cache", show=_redis_url_shown),
    Setting("redis_ca_file", None, _file, "a readable PEM file",
            "CA certificates trusted for a rediss:// server (default: the system's)"),
    Setting("redis_cert_file", None, _file, "a readable PEM file",
            "client certificate for a rediss:// server that asks for one"),
    Setting("redis_key_file", None, _file, "a readable PEM file",
            "private key of MODELSHIP_REDIS_CERT_FILE (if not in that file)"),
    Setting("redis_timeout_ms", 50.0, _number(1, 10000),
            "a number of milliseconds from 1 to 10000",
            "Redis call timeout; a slower or failing Redis is skipped, never fatal"),
    Setting("cache_ttl_s", 86400, _integer(1, 31_536_000), "an integer from 1 to 31536000",
            "expiry of Redis cache entries"),
    Setting("shutdown_timeout_s", 30.0, _number(0, 3600), "a number of seconds from 0 to 3600",
            "how long SIGTERM waits for in-flight requests"),
    Setting("log_level", "info", _choice("debug", "info", "warning", "error"),
            "'debug', 'info', 'warning' or 'error'", "log level"),
)


def _cross_checks(values):
    problems = []
    if values["cache"] == "redis" and not values["redis_url"]:
        problems.append(f"{PREFIX}REDIS_URL is required when {PREFIX}CACHE=redis.")
    if values["max_queue_rows"] < values["max_batch_size"]:
        problems.append(
            f"{PREFIX}MAX_QUEUE_ROWS={values['max_queue_rows']} is smaller than "
            f"{PREFIX}MAX_BATCH_SIZE={values['max_batch_size']}: the queue must hold one batch.")
    if values["max_body_bytes_in_flight"] < values["max_body_bytes"]:
        problems.append(
            f"{PREFIX}MAX_BODY_BYTES_IN_FLIGHT={values['max_body_bytes_in_flight']} is smaller "
            f"than {PREFIX}MAX_BODY_BYTES={values['max_body_bytes']}: the largest body must fit.")
    if values["max_connections"] <= values["max_requests_in_flight"]:
        problems.append(
            f"{PREFIX}MAX_CONNECTIONS={values['max_connections']} must be larger than "
            f"{PREFIX}MAX_REQUESTS_IN_FLIGHT={values['max_requests_in_flight']}: the spare "
            "connections keep health checks answerable while every request slot is taken.")
    problems += _tls_checks(values)
    return problems


def _tls_checks(values):
    tls_files = [n for n in ("redis_ca_file", "redis_cert_file", "redis_key_file") if values[n]]
    if not tls_files:
        return []
    names = ", ".join(PREFIX + n.upper() for n in tls_files)
    if not (values["redis_url"] or "").startswith("rediss:"):
        return [f"{names} apply to a TLS Redis only: use a rediss:// {PREFIX}REDIS_URL, "
                "or unset them."]
    if values["redis_key_file"] and not values["redis_cert_file"]:
        return [f"{PREFIX}REDIS_KEY_FILE is set without {PREFIX}REDIS_CERT_FILE: give the "
                "client certificate too."]
    try:
        redis_client.tls_context(values["redis_ca_file"], values["redis_cert_file"],
                                 values["redis_key_file"])
    except (OSError, ssl.SSLError) as err:
        return [f"{names}: cannot be loaded as PEM certificates/key ({err}); give PEM files "
                "(CA bundle; client certificate and its unencrypted key)."]
    return []


def describe():
    """A table of every variable, its default and meaning (for --help)."""
    return "\n".join(f"  {PREFIX}{s.name.upper():<22} {s.help} [default: {s.default}]"
                     for s in SETTINGS)
