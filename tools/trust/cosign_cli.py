"""cosign's key-based commands, in cosign's formats (keys, signatures, attestations),
for images in a registry the release tool can reach. cosign itself can verify what
this signs and use the keys it makes, and the other way round.

  bazel run //tools/trust:cosign -- generate-key-pair [--output-key-prefix cosign]
  bazel run //tools/trust:cosign -- sign --key cosign.key --digest sha256:...
  bazel run //tools/trust:cosign -- verify --key cosign.pub --digest sha256:...
  bazel run //tools/trust:cosign -- attest --key cosign.key --digest sha256:... \\
      --type slsaprovenance1 --predicate provenance.json
  bazel run //tools/trust:cosign -- verify-attestation --key cosign.pub \\
      --digest sha256:... --type slsaprovenance1

The key's password is read from COSIGN_PASSWORD, as cosign reads it (never from a
flag: flags end up in shell history and process lists); without it, from the
terminal when there is one. The registry, repository and credentials are the
release tool's: MODELSHIP_REGISTRY, MODELSHIP_REPOSITORY (or --registry,
--repository), MODELSHIP_REGISTRY_USER/_PASSWORD or MODELSHIP_REGISTRY_AUTH_FILE.
Images are named by digest only: a tag can move between signing and use.

Exit status: 0 done (verified), 1 failed (does not verify), 2 usage.
"""

import getpass
import json
import os
import re
import sys

from tools import cli
from tools.release import errors as release_errors
from tools.release import registry as release_registry
from tools.release import settings as release_settings
from tools.trust import cosign, dsse, keys
from tools.trust.errors import TrustError

PASSWORD_ENV = "COSIGN_PASSWORD"

# cosign attest --type shorthands (sigstore/cosign pkg/cosign/attestation).
PREDICATE_TYPES = {
    "custom": "https://cosign.sigstore.dev/attestation/v1",
    "slsaprovenance": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance02": "https://slsa.dev/provenance/v0.2",
    "slsaprovenance1": "https://slsa.dev/provenance/v1",
    "spdx": "https://spdx.dev/Document",
    "spdxjson": "https://spdx.dev/Document",
    "cyclonedx": "https://cyclonedx.org/bom",
    "link": "https://in-toto.io/Link/v1",
    "vuln": "https://cosign.sigstore.dev/attestation/vuln/v1",
    "openvex": "https://openvex.dev/ns",
}
_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class UsageError(Exception):
    """Bad arguments or environment: exit 2."""


def _digest(text):
    if not _DIGEST.match(text):
        raise UsageError(f"--digest {text!r} is not a digest: give sha256:<64 hex digits> "
                         f"(a tag can move; find the digest with `skopeo inspect "
                         f"--format '{{{{.Digest}}}}' docker://REGISTRY/REPOSITORY:TAG`)")
    return text


def _predicate_type(text):
    if text in PREDICATE_TYPES:
        return PREDICATE_TYPES[text]
    if "://" not in text:
        raise UsageError(f"--type {text!r} is neither a predicate type URI nor one of "
                         f"{', '.join(sorted(PREDICATE_TYPES))}")
    return text


def parser():
    """The command line."""
    top = cli.parser(__doc__, prog="cosign")
    commands = top.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name, text, key_help=None):
        sub = commands.add_parser(name, help=text, description=text)
        if key_help:
            sub.add_argument("--key", required=True, help=key_help)
        return sub

    gen = command("generate-key-pair", "write a new key pair, PREFIX.key (encrypted with "
                                       "COSIGN_PASSWORD) and PREFIX.pub")
    gen.add_argument("--output-key-prefix", default="cosign",
                     help="path prefix of the two files (default: cosign)")
    for name, text, key_help in (
            ("sign", "sign an image by digest", "the private key file (cosign.key)"),
            ("verify", "verify an image's signature", "the public key file (cosign.pub)"),
            ("attest", "attach a signed in-toto attestation",
             "the private key file (cosign.key)"),
            ("verify-attestation", "verify an image's attestations",
             "the public key file (cosign.pub)")):
        sub = command(name, text, key_help)
        sub.add_argument("--digest", required=True, help="the image digest, sha256:<hex>")
        sub.add_argument("--registry", help="host[:port] (default: MODELSHIP_REGISTRY)")
        sub.add_argument("--repository",
                         help="the image's repository (default: MODELSHIP_REPOSITORY)")
        if name == "sign":
            sub.add_argument("-a", "--annotations", action="append", default=[],
                             metavar="KEY=VALUE", help="an annotation signed with the "
                             "image (the payload's `optional`); repeatable")
        if name == "verify":
            sub.add_argument("--identity", help="the repository the signature must have "
                             "been made for (default: REGISTRY/REPOSITORY)")
        if name in ("attest", "verify-attestation"):
            sub.add_argument("--type", required=True, dest="predicate_type",
                             help="predicate type URI, or one of cosign's shorthands: "
                             + ", ".join(sorted(PREDICATE_TYPES)))
        if name == "attest":
            sub.add_argument("--predicate", required=True,
                             help="the predicate, a JSON file")
    return top


def _password(environ, confirm=False):
    """The key password: COSIGN_PASSWORD, else asked on the terminal."""
    if PASSWORD_ENV in environ:
        return environ[PASSWORD_ENV].encode("utf-8")
    if not sys.stdin.isatty():
        raise UsageError(f"set {PASSWORD_ENV} to the key's password (it is never taken "
                         f"from a flag)")
    password = getpass.getpass("Enter password for private key: ")
    if confirm and getpass.getpass("Enter password for private key again: ") != password:
        raise cli.Failure("the passwords do not match")
    return password.encode("utf-8")


def _user_path(path, environ):
    """tools.cli.user_path, with the environment given to main()."""
    if os.path.isabs(path):
        return path
    return os.path.join(environ.get("BUILD_WORKING_DIRECTORY") or os.getcwd(), path)


def _read(path, what, environ):
    try:
        with open(_user_path(path, environ), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise cli.Failure(f"{what} {path} does not exist") from None


def _client(args, environ):
    try:
        settings = release_settings.load(environ, registry=args.registry,
                                         repository=args.repository)
    except release_errors.UsageError as err:
        raise UsageError(str(err)) from None
    if not settings.registry:
        raise UsageError("no registry: set MODELSHIP_REGISTRY or --registry (host[:port])")
    return release_registry.Client(settings)


def _generate(args, environ):
    prefix = _user_path(args.output_key_prefix, environ)
    private_path, public_path = prefix + ".key", prefix + ".pub"
    for path in (private_path, public_path):
        if os.path.exists(path):
            raise cli.Failure(f"{path} exists; move it away or choose another "
                              f"--output-key-prefix (keys are never overwritten)")
    private_pem, public_pem = keys.generate_key_pair(_password(environ, confirm=True))
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    with open(public_path, "wb") as handle:
        handle.write(public_pem)
    print(f"Private key written to {private_path}")
    print(f"Public key written to {public_path}")
    return cli.OK


def _private_key(args, environ):
    pem = _read(args.key, "the private key", environ)
    return keys.load_private_key(pem, _password(environ), source=args.key)


def _public_key(args, environ):
    return keys.load_public_key(_read(args.key, "the public key", environ), source=args.key)


def _annotations(pairs):
    result = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--annotations {pair!r} is not KEY=VALUE")
        result[key] = value
    return result


def _run(args, environ):
    if args.command == "generate-key-pair":
        return _generate(args, environ)
    digest = _digest(args.digest)
    if args.command in ("attest", "verify-attestation"):
        args.predicate_type = _predicate_type(args.predicate_type)
    annotations = _annotations(getattr(args, "annotations", []))
    if args.command in ("sign", "attest"):
        key = _private_key(args, environ)
    else:
        key = _public_key(args, environ)
    client = _client(args, environ)
    base = client.settings.base
    if args.command == "sign":
        manifest = cosign.sign_image(client, digest, key, base, annotations or None)
        print(f"signed {base}@{digest} ({keys.key_id(key)[:16]}): "
              f"{base}:{cosign.signature_tag(digest)} is {manifest}")
    elif args.command == "verify":
        payload = cosign.verify_image(client, digest, key, args.identity or base)
        print(f"Verification for {base}@{digest} --\nThe following checks were performed:\n"
              f"  - the cosign claims were validated (digest, identity)\n"
              f"  - the signature was verified against the specified public key",
              file=sys.stderr)
        print(json.dumps([payload], separators=(",", ":")))
    elif args.command == "attest":
        try:
            predicate = json.loads(_read(args.predicate, "the predicate file", environ))
        except ValueError as err:
            raise cli.Failure(f"the predicate file {args.predicate} is not JSON: {err}") \
                from None
        statement = cosign.in_toto_statement(base, digest, args.predicate_type, predicate)
        envelope = dsse.sign(dsse.IN_TOTO_PAYLOAD_TYPE, statement, key)
        manifest = cosign.attach_attestation(client, digest, envelope, args.predicate_type)
        print(f"attested {base}@{digest} ({args.predicate_type}): "
              f"{base}:{cosign.attestation_tag(digest)} is {manifest}")
    else:
        statements = cosign.verify_attestations(client, digest, key, args.predicate_type)
        print(f"Verification for {base}@{digest} -- {len(statements)} attestation(s) of "
              f"{args.predicate_type} verified against the specified public key",
              file=sys.stderr)
        for statement in statements:
            print(json.dumps(statement, separators=(",", ":"), sort_keys=True))
    return cli.OK


def main(argv=None, environ=None):
    """Entry point: typed errors become one line and an exit status."""
    environ = os.environ if environ is None else environ
    args, unknown = parser().parse_known_args(argv)
    if unknown:
        # argparse would echo them: a password given as a flag by mistake must not be
        # printed (into CI logs). Option names only.
        names = sorted({a.split("=", 1)[0] for a in unknown if a.startswith("-")}) or ["..."]
        print(f"cosign: error: unrecognized arguments: {' '.join(names)} (values not shown; "
              f"the key password is read from {PASSWORD_ENV}; see --help)", file=sys.stderr)
        return cli.USAGE
    try:
        return _run(args, environ)
    except UsageError as err:
        print(f"cosign: error: {err}", file=sys.stderr)
        return cli.USAGE
    except (TrustError, release_errors.ReleaseError, cli.Failure) as err:
        print(f"cosign: error: {err}", file=sys.stderr)
        return cli.FAILURE


if __name__ == "__main__":
    cli.run(main)
