"""A small asyncio Redis client: just what the result cache sends (RESP2).

Why not redis-py: the cache needs MGET and a pipeline of SET ... EX, and
redis-py with its compiled bytecode is about 6 MB of a production image that
must stay under 60 MB (docs/benchmarks.md, "Production image"). This client
speaks the documented RESP2 wire format over one connection:

- URLs: `redis://[[user]:password@]host[:port][/db]`, the same with
  `rediss://` for TLS (the server's certificate and host name verified against
  the system's CAs or a given CA file; a client certificate if asked), and
  `unix:///path/to/socket[?db=N][&password=...]`, as MODELSHIP_REDIS_URL takes.
  A URL is only ever shown through `redact_url` (no user, no password);
- `execute(*commands)` pipelines commands in one write and reads one reply
  each; an error reply comes back as a `ReplyError` in its slot, so one bad
  command does not hide the others;
- any failure (refused, reset, timeout, cancellation, a malformed reply)
  closes the connection, so the next call starts clean on a new one; the
  caller decides what a failure means (the cache counts it as a miss).

One exchange at a time runs on the connection (a lock): the batcher already
turns many requests into one MGET, so there is little to gain from a pool.
"""

import asyncio
import re
import ssl
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_PORT = 6379
SCHEMES = ("redis", "rediss", "unix")
# Everything between "scheme://" and the last "@" is user information. Greedy on
# purpose: a password pasted unencoded may itself hold "/", "@" or "?".
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)@", re.DOTALL)
_SECRET_PARAM = re.compile(r"([?&](?:password|pass|passwd|auth|user|username)=)[^&#]*",
                           re.IGNORECASE)


def redact_url(url):
    """`url` fit to print: user and password (in the authority or the query) are removed.

    Works on any string, also one that is not a valid URL; a value with no
    scheme at all might be a bare password, so none of it is shown.
    """
    if "://" not in url:
        return "<not a URL; value not shown>"
    url = _USERINFO.sub(r"\1***@", url)
    return _SECRET_PARAM.sub(r"\1***", url)


class RedisError(Exception):
    """Redis could not be reached or answered something this client cannot read."""


class ReplyError(RedisError):
    """An error reply from the server (`-ERR ...`), with its message."""


class Address:
    """Where and how to connect, parsed from a redis://, rediss:// or unix:// URL."""

    def __init__(self, url):
        shown = redact_url(url)
        try:
            parsed = urlparse(url)
            port = parsed.port
        except ValueError:
            raise RedisError(f"redis URL {shown} cannot be parsed (the port must be a number "
                             "from 0 to 65535)") from None
        query = parse_qs(parsed.query)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.tls = parsed.scheme == "rediss"
        if parsed.scheme in ("redis", "rediss"):
            if not parsed.hostname:
                raise RedisError(f"redis URL {shown} names no host "
                                 f"({parsed.scheme}://host:port/db)")
            self.host, self.port, self.path = parsed.hostname, port or DEFAULT_PORT, None
            db = parsed.path.strip("/") or "0"
        elif parsed.scheme == "unix":
            self.host, self.port, self.path = None, None, parsed.path
            db = query.get("db", ["0"])[0]
            self.password = self.password or query.get("password", [None])[0]
        else:
            raise RedisError(f"redis URL {shown}: the scheme must be redis://, rediss:// (TLS) "
                             "or unix://")
        if not db.isdigit():
            raise RedisError(f"redis URL {shown}: the database must be a number, not {db!r}")
        self.db = int(db)

    def __repr__(self):  # never shows the password
        where = self.path if self.path else f"{self.host}:{self.port}"
        return f"Address({'tls ' if self.tls else ''}{where}, db={self.db})"


def tls_context(ca_file=None, cert_file=None, key_file=None):
    """A client TLS context that verifies the server (certificate chain and host name).

    `ca_file`: PEM bundle of the CAs to trust (default: the system's);
    `cert_file`/`key_file`: a client certificate, for servers that ask for one.
    Raises OSError or ssl.SSLError when a file is missing or not PEM.
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    if cert_file:
        # An empty password: an encrypted key fails here instead of OpenSSL
        # prompting on the terminal of a server.
        context.load_cert_chain(cert_file, key_file or None, password=b"")
    return context


def encode(*commands):
    """The RESP2 bytes of one or more commands (each a sequence of str/bytes/int)."""
    out = bytearray()
    for command in commands:
        out += b"*%d\r\n" % len(command)
        for arg in command:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, int):
                arg = str(arg).encode()
            out += b"$%d\r\n%s\r\n" % (len(arg), arg)
    return bytes(out)


async def read_reply(reader):
    """One reply: bytes, int, None, a list, or a ReplyError (returned, not raised)."""
    line = await reader.readuntil(b"\r\n")
    kind, body = line[:1], line[1:-2]
    if kind == b"+":
        return body
    if kind == b"-":
        return ReplyError(body.decode(errors="replace"))
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data = await reader.readexactly(size + 2)
        if data[-2:] != b"\r\n":
            raise RedisError("malformed bulk reply (no CRLF after the data)")
        return data[:-2]
    if kind == b"*":
        count = int(body)
        if count < 0:
            return None
        return [await read_reply(reader) for _ in range(count)]
    raise RedisError(f"unexpected reply type {kind!r}")


class Client:
    """One lazily opened connection to one Redis server.

    `tls`: the ssl.SSLContext for a rediss:// URL (default: `tls_context()`).
    """

    def __init__(self, url, connect_timeout_s=1.0, tls=None):
        self.address = Address(url)
        self._tls = (tls or tls_context()) if self.address.tls else None
        self._connect_timeout = connect_timeout_s
        self._lock = asyncio.Lock()
        self._reader = None
        self._writer = None

    async def _open(self):
        address = self.address
        if address.path:
            opening = asyncio.open_unix_connection(address.path)
        else:
            opening = asyncio.open_connection(address.host, address.port, ssl=self._tls)
        try:
            self._reader, self._writer = await asyncio.wait_for(opening, self._connect_timeout)
        except ssl.SSLCertVerificationError as err:
            raise RedisError(
                f"{address!r}: the server's TLS certificate is not trusted "
                f"({err.verify_message}); set MODELSHIP_REDIS_CA_FILE to the CA that signed "
                "it, and connect by the name the certificate holds") from None
        except ssl.SSLError as err:
            raise RedisError(f"{address!r}: TLS handshake failed ({err.reason or err}); "
                             "is the server speaking TLS on this port (rediss://)?") from None
        except asyncio.TimeoutError:
            if not self._tls:
                raise
            raise RedisError(
                f"{address!r}: no TLS connection within {self._connect_timeout:g} s; is the "
                "server reachable, and speaking TLS on this port (rediss://)?") from None
        hello = []
        if address.password is not None:
            hello.append(("AUTH", address.username, address.password) if address.username
                         else ("AUTH", address.password))
        if address.db:
            hello.append(("SELECT", address.db))
        if hello:
            for reply in await self._exchange(hello):
                if isinstance(reply, ReplyError):
                    raise ReplyError(f"{address!r}: {reply}")

    async def _exchange(self, commands):
        self._writer.write(encode(*commands))
        await self._writer.drain()
        return [await read_reply(self._reader) for _ in commands]

    async def execute(self, *commands):
        """Sends the commands in one pipeline; their replies, in order."""
        async with self._lock:
            try:
                if self._writer is None:
                    await self._open()
                return await self._exchange(commands)
            except BaseException as err:  # incl. cancellation: the stream is mid-reply
                self._drop()
                if isinstance(err, (OSError, asyncio.IncompleteReadError,
                                    asyncio.LimitOverrunError, ValueError)):
                    raise RedisError(f"{self.address!r}: {type(err).__name__}: {err}") from err
                raise

    async def mget(self, keys):
        """Values of `keys` (None where absent)."""
        (reply,) = await self.execute(("MGET", *keys))
        if isinstance(reply, ReplyError):
            raise reply
        return reply

    async def set_many(self, items, ttl_s):
        """SET key value EX ttl for each (key, value), in one pipeline."""
        replies = await self.execute(*(("SET", key, value, "EX", int(ttl_s))
                                       for key, value in items))
        errors = [r for r in replies if isinstance(r, ReplyError)]
        if errors:
            raise errors[0]

    def _drop(self):
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def aclose(self):
        """Closes the connection (the next call would open a new one)."""
        writer = self._writer
        self._drop()
        if writer is not None:
            try:
                await writer.wait_closed()
            except OSError:
                pass
