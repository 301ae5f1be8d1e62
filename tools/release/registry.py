"""A small client of the OCI distribution API: what releases need, with retries.

Manifests are handled as exact bytes (their sha256 is the digest), so a
manifest read by digest and written under a tag keeps its digest. Every call
retries connection failures and 5xx/429 answers with exponential backoff;
401 becomes an AuthError naming the registry, 404 a NotFoundError.
"""

import dataclasses
import datetime
import hashlib
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request

from tools.release import errors

MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
_RETRY_STATUSES = (429, 500, 502, 503, 504)


def _issued_at(text):
    """Seconds since the epoch of an RFC 3339 time (a token's issued_at), or None."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def sha256_digest(data):
    """`sha256:<hex>` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Unavailable(Exception):
    """One attempt could not reach the registry (retried)."""


def parse_challenge(header):
    """(scheme, {param: value}) of a WWW-Authenticate header (RFC 7235): parameters are
    tokens or quoted strings, and a quoted string may hold commas and escaped quotes
    (`scope="repository:x:pull,push"`). Only the first challenge is read."""
    scheme, _, rest = (header or "").strip().partition(" ")
    params, pos = {}, 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match:
            break
        value = match.group("token")
        if value is None:
            value = re.sub(r"\\(.)", r"\1", match.group("quoted"))
        params[match.group("name").lower()] = value
        pos = match.end()
    return scheme.lower(), params


_PARAM = re.compile(r'\s*,?\s*(?P<name>[A-Za-z0-9_.-]+)\s*=\s*'
                    r'(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<token>[^\s,"]+))\s*')


def merge_scopes(scopes):
    """Scopes with the actions of one resource joined, in a stable order:
    [`repository:a:pull`, `repository:a:push`, `repository:b:pull`] ->
    (`repository:a:pull,push`, `repository:b:pull`)."""
    actions = {}
    for scope in scopes:
        resource, _, wanted = scope.rpartition(":")
        if not resource:
            resource, wanted = scope, ""
        merged = actions.setdefault(resource, [])
        merged += [a for a in wanted.split(",") if a and a not in merged]
    return tuple(f"{resource}:{','.join(sorted(acts))}" if acts else resource
                 for resource, acts in sorted(actions.items()))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Token requests carry the credentials: a redirect (which urllib would follow with
    the Authorization header, to any host and scheme) is an answer, not a hop."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_NO_REDIRECTS = urllib.request.build_opener(_NoRedirect)


def _loopback(host):
    return (host or "").lower() in ("localhost", "127.0.0.1", "::1") \
        or (host or "").startswith("127.")


@dataclasses.dataclass
class _Token:
    """A bearer token and when to stop using it."""

    value: str
    expires: float  # time.monotonic() after which it is not used


class Client:
    """The distribution API of one repository.

    Registries with token authentication (GitLab's, Docker Hub, Harbor) answer 401
    with a Bearer challenge naming a realm (the token server), a service and the
    scope the call needs. The client asks the realm for a token for that scope (with
    the credentials, only over https or to a loopback host), caches it by scope
    until it expires, and asks again on expiry or when the registry answers 401 to
    it.
    """

    # Docker token spec: a token without expires_in lasts 60 s. Renewed this much
    # before it runs out (at most a tenth of its life), so a call never carries a
    # token that expires on the way.
    DEFAULT_TOKEN_S = 60
    RENEW_EARLY_S = 10

    def __init__(self, settings, timeout_s=30, sleep=time.sleep, clock=time.monotonic):
        self.settings = settings
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._clock = clock
        self._tokens = {}  # merged scopes -> _Token
        self._scopes = {}  # (method kind, path kind) -> merged scopes the registry asked
        self._bearer = None  # the challenge's realm and service, once seen
        scheme = "https" if settings.tls else "http"
        self._root = f"{scheme}://{settings.registry}"

    @property
    def name(self):
        """How messages name the registry."""
        return self.settings.registry

    # --- transport ------------------------------------------------------------

    @staticmethod
    def _call_kind(method, url):
        """What a call needs access for: reads and writes of which repository path."""
        path = urllib.parse.urlsplit(url).path
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        write = method not in ("GET", "HEAD")
        return (write, path.split("/manifests/")[0].split("/blobs/")[0],
                tuple(query.get("from", ())))

    def _authorization(self, kind):
        if self._bearer is not None:
            scopes = self._scopes.get(kind)
            if scopes is None:
                return None  # the registry will say which scope this call needs
            token = self._token(scopes)
            return f"Bearer {token.value}"
        if self.settings.credentials:
            return self.settings.credentials.basic()
        return None

    def _once(self, method, url, body, headers, authorization, opener=None):
        headers = dict(headers)
        if authorization:
            headers["Authorization"] = authorization
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with (opener.open if opener else urllib.request.urlopen)(
                    request, timeout=self.timeout_s) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            data = err.read()
            return err.code, dict(err.headers.items()), data
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout,
                ConnectionError) as err:
            raise _Unavailable(str(getattr(err, "reason", err))) from err

    def _authorized(self, method, url, body, headers):
        """One call, following a Bearer challenge: at most one new token per call (a
        second 401 with a fresh token is a refusal)."""
        kind = self._call_kind(method, url)
        status, reply_headers, data = self._once(method, url, body, headers,
                                                 self._authorization(kind))
        if status != 401:
            return status, reply_headers, data
        scheme, params = parse_challenge(
            {k.lower(): v for k, v in reply_headers.items()}.get("www-authenticate", ""))
        if scheme != "bearer" or not params.get("realm"):
            return status, reply_headers, data
        self._bearer = (params["realm"], params.get("service"))
        scopes = merge_scopes(params.get("scope", "").split())
        # A token of these scopes that the registry just refused (expired early,
        # revoked, signed by a rotated key) is never sent again.
        self._tokens.pop(scopes, None)
        self._scopes[kind] = scopes
        return self._once(method, url, body, headers, f"Bearer {self._token(scopes).value}")

    def _token(self, scopes):
        """A token for these scopes: cached until shortly before it expires."""
        cached = self._tokens.get(scopes)
        if cached is not None and self._clock() < cached.expires:
            return cached
        realm, service = self._bearer
        split = urllib.parse.urlsplit(realm)
        credentials = self.settings.credentials
        if split.scheme not in ("http", "https") or not split.hostname:
            raise errors.AuthError(f"registry {self.name} names the token realm {realm!r}, "
                                   f"which is not an http(s) URL")
        if credentials and split.scheme != "https" and not _loopback(split.hostname):
            raise errors.AuthError(
                f"registry {self.name} asks for credentials to be sent to the token realm "
                f"{realm} over plain http; refused (credentials go to a realm only over "
                f"https or to a loopback host). Check MODELSHIP_REGISTRY and the "
                f"registry's auth.token.realm setting")
        query = [("service", service)] if service else []
        query += [("scope", scope) for scope in scopes]
        url = realm + ("&" if split.query else "?") + urllib.parse.urlencode(query)
        headers = {"Authorization": credentials.basic()} if credentials else {}
        start = self._clock()
        status, _, data = self._request_token(url, headers)
        if status in (401, 403):
            given = "the credentials given" if credentials else "anonymous access"
            raise errors.AuthError(
                f"registry {self.name}: its token server {split.scheme}://{split.netloc} "
                f"refused {given} (HTTP {status}) for {' '.join(scopes) or 'the registry'}; "
                f"set MODELSHIP_REGISTRY_AUTH_FILE or MODELSHIP_REGISTRY_USER and "
                f"MODELSHIP_REGISTRY_PASSWORD to an account that may push to "
                f"{self.settings.repository}")
        try:
            reply = json.loads(data)
            value = reply.get("token") or reply.get("access_token")
            lifetime = float(reply.get("expires_in") or self.DEFAULT_TOKEN_S)
        except (ValueError, AttributeError, TypeError):
            value, lifetime = None, 0
        if status != 200 or not value or not isinstance(value, str):
            raise errors.AuthError(f"registry {self.name}: its token server "
                                   f"{split.scheme}://{split.netloc} gave no token "
                                   f"(HTTP {status})")
        issued = _issued_at(reply.get("issued_at"))
        if issued is not None and 0 <= time.time() - issued < lifetime:
            lifetime -= time.time() - issued  # spent on the way (clocks roughly agree)
        token = _Token(value, start + lifetime - min(self.RENEW_EARLY_S, lifetime / 10))
        self._tokens[scopes] = token
        return token

    def _request_token(self, url, headers):
        """(status, headers, body) of the token request, with the registry's retries."""
        last = None
        for attempt in range(self.settings.retries + 1):
            if attempt:
                self._sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                status, reply_headers, data = self._once("GET", url, None, headers, None,
                                                         opener=_NO_REDIRECTS)
            except _Unavailable as err:
                last = f"cannot connect ({err})"
                continue
            if status in _RETRY_STATUSES:
                last = f"HTTP {status}"
                continue
            return status, reply_headers, data
        netloc = urllib.parse.urlsplit(url).netloc
        raise errors.RegistryUnavailableError(
            f"registry {self.name}: its token server {netloc} is unavailable: {last}")

    def request(self, method, path, body=None, headers=(), ok=(200,), url=None):
        """(status, headers, body) of a call, retried; raises a typed error otherwise."""
        url = url or self._root + path
        headers = dict(headers)
        attempts = self.settings.retries + 1
        last = None
        for attempt in range(attempts):
            if attempt:
                self._sleep(self.settings.backoff_s * 2 ** (attempt - 1))
            try:
                status, reply_headers, data = self._authorized(method, url, body, headers)
            except _Unavailable as err:
                last = f"cannot connect ({err})"
                continue
            if status in _RETRY_STATUSES:
                last = f"HTTP {status}"
                continue
            if status in ok:
                return status, reply_headers, data
            self._raise(status, method, path, data)
        raise errors.RegistryUnavailableError(
            f"registry {self.name} is unavailable: {method} {path}: {last} after {attempts} "
            f"attempts; check that it is running and reachable (MODELSHIP_REGISTRY)")

    def _raise(self, status, method, path, data):
        try:
            detail = "; ".join(e.get("message", "") for e in json.loads(data)["errors"])
        except (ValueError, KeyError, TypeError, AttributeError):
            detail = data[:200].decode(errors="replace").strip()
        if status == 401:
            given = "the credentials given" if self.settings.credentials else "anonymous access"
            raise errors.AuthError(
                f"registry {self.name} refused {given} (HTTP 401); set "
                f"MODELSHIP_REGISTRY_AUTH_FILE or MODELSHIP_REGISTRY_USER and "
                f"MODELSHIP_REGISTRY_PASSWORD to an account that may push to "
                f"{self.settings.repository}")
        if status == 403:
            raise errors.AuthError(f"registry {self.name} denied {method} {path} (HTTP 403): "
                                   f"the account may not write {self.settings.repository}")
        if status == 404:
            raise errors.NotFoundError(f"{self.name}: {path} not found ({detail})")
        raise errors.RegistryError(f"registry {self.name}: {method} {path} failed with HTTP "
                                   f"{status}: {detail}")

    def _repo(self, suffix):
        return f"/v2/{self.settings.repository}/{suffix}"

    # --- the API --------------------------------------------------------------

    def ping(self):
        """Raises unless the registry answers /v2/ (and accepts our credentials)."""
        self.request("GET", "/v2/")

    def resolve(self, reference):
        """The digest a tag or digest points at, or None when it does not exist."""
        try:
            _, headers, data = self.request(
                "GET", self._repo(f"manifests/{reference}"),
                headers={"Accept": ", ".join(MANIFEST_TYPES + INDEX_TYPES)})
        except errors.NotFoundError:
            return None
        digest = sha256_digest(data)
        served = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
        if served and served != digest:
            raise errors.RegistryError(f"registry {self.name}: {reference} is served with "
                                       f"digest {served} but its bytes hash to {digest}")
        return digest

    def manifest(self, reference):
        """(media type, exact bytes, parsed) of a manifest; NotFoundError when absent."""
        _, headers, data = self.request(
            "GET", self._repo(f"manifests/{reference}"),
            headers={"Accept": ", ".join(MANIFEST_TYPES + INDEX_TYPES)})
        media_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        parsed = json.loads(data)
        return parsed.get("mediaType") or media_type, data, parsed

    def put_manifest(self, reference, media_type, data):
        """Writes a manifest under a tag or digest; returns its digest."""
        self.request("PUT", self._repo(f"manifests/{reference}"), body=data,
                     headers={"Content-Type": media_type}, ok=(201,))
        return sha256_digest(data)

    def has_blob(self, digest):
        """True when the repository holds the blob."""
        try:
            self.request("HEAD", self._repo(f"blobs/{digest}"))
        except errors.NotFoundError:
            return False
        return True

    def blob(self, digest):
        """The bytes of a blob, checked against its digest."""
        _, _, data = self.request("GET", self._repo(f"blobs/{digest}"))
        if sha256_digest(data) != digest:
            raise errors.RegistryError(f"registry {self.name}: blob {digest} came back with "
                                       f"other content")
        return data

    def push_blob(self, data):
        """Uploads bytes as one blob (monolithic upload); returns the digest."""
        digest = sha256_digest(data)
        if self.has_blob(digest):
            return digest
        _, headers, _ = self.request("POST", self._repo("blobs/uploads/"), body=b"",
                                     ok=(202,))
        location = {k.lower(): v for k, v in headers.items()}["location"]
        url = urllib.parse.urljoin(self._root + "/", location)
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": digest})
        self.request("PUT", location, body=data, url=url, ok=(201,),
                     headers={"Content-Type": "application/octet-stream"})
        return digest

    def mount_blob(self, digest, source_repository):
        """Mounts a blob of another repository of the registry into this one without
        copying it (a token registry asks for both repositories' scopes in one token);
        True when mounted, False when the registry would rather have it uploaded."""
        query = urllib.parse.urlencode({"mount": digest, "from": source_repository})
        status, headers, _ = self.request("POST", self._repo(f"blobs/uploads/?{query}"),
                                          body=b"", ok=(201, 202))
        if status == 202:  # an upload was opened instead: close it
            location = {k.lower(): v for k, v in headers.items()}.get("location")
            if location:
                try:
                    self.request("DELETE", location,
                                 url=urllib.parse.urljoin(self._root + "/", location),
                                 ok=(204,))
                except errors.RegistryError:
                    pass
            return False
        return True

    def missing_blobs(self, manifest):
        """Digests of the config and layers of a parsed manifest that are not present."""
        wanted = [manifest["config"]["digest"]]
        wanted += [layer["digest"] for layer in manifest["layers"]]
        return [digest for digest in wanted if not self.has_blob(digest)]
