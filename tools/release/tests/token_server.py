"""A Docker token server for tests: what GitLab's, Docker Hub's and Harbor's realms do.

A real HTTP server on loopback (its own port: the realm is not the registry).
`GET /token?service=S&scope=repository:x:pull,push&scope=...` with HTTP Basic
credentials answers `{"token", "access_token", "expires_in", "issued_at"}`: an
RS256 JWT whose header carries the signing certificate in `x5c` and whose claims
are iss, aud (= service), sub, exp, nbf, iat, jti and access, as docker-registry's
`auth: token` verifies against its rootcertbundle. Wrong or missing credentials
get 401; `redirect` makes it answer 302. Every request is recorded (scopes, user,
status) for the tests to read.
"""

import base64
import datetime
import http.server
import json
import os
import secrets
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

SERVICE = "modelship-test-registry"
ISSUER = "modelship-test-token-server"


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def certificate(folder):
    """A private key and a self-signed certificate for it; returns (key, cert, pem path)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path = os.path.join(folder, "token-signer.pem")
    with open(path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def access_of(scopes):
    """The `access` claim granting every scope asked (`repository:name:a,b`)."""
    access = []
    for scope in scopes:
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        access.append({"type": kind, "name": name, "actions": actions.split(",")})
    return access


class TokenServer:
    """The token server of one registry, for one user."""

    def __init__(self, folder, user, password):
        self.user, self._password = user, password
        self.key, self.cert, self.bundle = certificate(folder)
        # What the server tells (expires_in) and what the token holds (exp - iat):
        # equal by default; tests make tokens short-lived or already expired.
        self.told_s = 300
        self.lifetime_s = 300
        self.requests = []
        self.redirect = None  # a URL: answer every request with 302 there
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            """GET /token."""

            def do_GET(self):  # pylint: disable=invalid-name
                """Issues a token, or 401."""
                status, body = server.answer(self.path, self.headers.get("Authorization"))
                data = json.dumps(body).encode()
                self.send_response(status)
                if server.redirect:
                    self.send_header("Location", server.redirect)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def rotate(self):
        """A new signing key and certificate, written over the registry's bundle (the
        registry reads it at start)."""
        self.key, self.cert, self.bundle = certificate(os.path.dirname(self.bundle))

    @property
    def realm(self):
        """The realm URL docker-registry names in its challenges."""
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def registry_auth(self):
        """docker-registry's `auth: token` section for this server."""
        return {"realm": self.realm, "service": SERVICE, "issuer": ISSUER,
                "rootcertbundle": self.bundle}

    def start(self):
        """Serves in a thread."""
        self.thread.start()
        return self

    def stop(self):
        """Stops serving."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def _user(self, authorization):
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return None
        if secrets.compare_digest(user, self.user) and \
                secrets.compare_digest(password, self._password):
            return user
        return None

    def answer(self, path, authorization):
        """(status, JSON body) of one token request; recorded."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        scopes = query.get("scope", [])
        user = self._user(authorization)
        status = 200 if user else 401
        with self._lock:
            self.requests.append({"scopes": scopes, "user": user, "status": status,
                                  "service": query.get("service", [None])[0]})
        if self.redirect:
            return 302, {}
        if not user:
            return 401, {"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [
            base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        claims = {"iss": ISSUER, "aud": query.get("service", [SERVICE])[0], "sub": user,
                  "iat": now, "nbf": now - 1, "exp": now + self.lifetime_s,
                  "jti": secrets.token_hex(8), "access": access_of(scopes)}
        signing_input = (_b64url(json.dumps(header).encode()) + "."
                         + _b64url(json.dumps(claims).encode()))
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        token = signing_input + "." + _b64url(signature)
        issued = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
        return 200, {"token": token, "access_token": token, "expires_in": self.told_s,
                     "issued_at": issued.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def granted(self):
        """The scopes of every successful request, in order."""
        with self._lock:
            return [r["scopes"] for r in self.requests if r["status"] == 200]
