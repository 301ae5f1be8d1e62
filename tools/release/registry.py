"""A small client of the OCI distribution API: what releases need, with retries.

Manifests are handled as exact bytes (their sha256 is the digest), so a
manifest read by digest and written under a tag keeps its digest. Every call
retries connection failures and 5xx/429 answers with exponential backoff;
401 becomes an AuthError naming the registry, 404 a NotFoundError.
"""

import hashlib
import http.client
import json
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


def sha256_digest(data):
    """`sha256:<hex>` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _Unavailable(Exception):
    """One attempt could not reach the registry (retried)."""


class Client:
    """The distribution API of one repository."""

    def __init__(self, settings, timeout_s=30, sleep=time.sleep):
        self.settings = settings
        self.timeout_s = timeout_s
        self._sleep = sleep
        self._token = None
        scheme = "https" if settings.tls else "http"
        self._root = f"{scheme}://{settings.registry}"

    @property
    def name(self):
        """How messages name the registry."""
        return self.settings.registry

    # --- transport ------------------------------------------------------------

    def _authorization(self):
        if self._token:
            return f"Bearer {self._token}"
        if self.settings.credentials:
            return self.settings.credentials.basic()
        return None

    def _once(self, method, url, body, headers):
        headers = dict(headers)
        auth = self._authorization()
        if auth:
            headers["Authorization"] = auth
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as err:
            data = err.read()
            return err.code, dict(err.headers.items()), data
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout,
                ConnectionError) as err:
            raise _Unavailable(str(getattr(err, "reason", err))) from err

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
                status, reply_headers, data = self._once(method, url, body, headers)
                if status == 401 and self._refresh_token(reply_headers):
                    status, reply_headers, data = self._once(method, url, body, headers)
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

    def _refresh_token(self, headers):
        """Follows a Bearer challenge (token-auth registries such as GitLab's)."""
        challenge = {k.lower(): v for k, v in headers.items()}.get("www-authenticate", "")
        if not challenge.lower().startswith("bearer ") or self._token:
            return False
        params = dict(part.split("=", 1) for part in
                      challenge[len("bearer "):].replace('"', "").split(",") if "=" in part)
        realm = params.pop("realm", None)
        if not realm:
            return False
        url = realm + "?" + urllib.parse.urlencode(params)
        headers = {}
        if self.settings.credentials:
            headers["Authorization"] = self.settings.credentials.basic()
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=self.timeout_s) as response:
                reply = json.loads(response.read())
        except (urllib.error.URLError, ValueError, http.client.HTTPException, OSError):
            return False
        self._token = reply.get("token") or reply.get("access_token")
        return bool(self._token)

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

    def missing_blobs(self, manifest):
        """Digests of the config and layers of a parsed manifest that are not present."""
        wanted = [manifest["config"]["digest"]]
        wanted += [layer["digest"] for layer in manifest["layers"]]
        return [digest for digest in wanted if not self.has_blob(digest)]
