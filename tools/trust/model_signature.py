"""Sign a model artifact file, or verify its signature (OpenSSF model-signing, key mode).

    bazel run //tools/trust:model_signature -- sign --key cosign.key \\
        --model bazel-bin/models/digits/digits.model --out digits.model.sig.json
    bazel run //tools/trust:model_signature -- verify --key cosign.pub \\
        --model digits.model --bundle digits.model.sig.json

sign: --key is the private key (cosign's encrypted key, or an ECDSA PEM); its
password comes from $COSIGN_PASSWORD (never from the command line). The bundle
(Sigstore bundle JSON) is written to --out.
verify: --key is the public key (cosign.pub). Prints what was verified as JSON.

Exit status: 0 done, 1 the signature does not verify (or signing failed), 2 bad
arguments. See tools/trust/README.md ("Model signatures").
"""

import json
import os
import sys

from tools import cli
from tools.trust import model
from tools.trust.errors import TrustError

PASSWORD_ENV = "COSIGN_PASSWORD"


def parser():
    """The argument parser: `sign` and `verify`."""
    top = cli.parser(__doc__, prog="model_signature")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sign = commands.add_parser("sign", help="sign a model file into a bundle")
    sign.add_argument("--key", required=True,
                      help=f"private key file (password from ${PASSWORD_ENV})")
    sign.add_argument("--model", required=True, help="the model artifact file")
    sign.add_argument("--out", required=True, help="where to write the bundle (JSON)")
    verify = commands.add_parser("verify", help="verify a model file against a bundle")
    verify.add_argument("--key", required=True, help="public key file (cosign.pub)")
    verify.add_argument("--model", required=True, help="the model artifact file")
    verify.add_argument("--bundle", required=True, help="the bundle sign wrote")
    return top


def _read(path, what):
    try:
        with open(path, "rb") as stream:
            return stream.read()
    except OSError as err:
        raise cli.Failure(f"cannot read the {what} {path}: {err.strerror}") from None


def _sign(args):
    key = _read(cli.user_path(args.key), "private key")
    password = os.environ.get(PASSWORD_ENV)
    password = None if password is None else password.encode("utf-8")
    bundle = model.sign_model(cli.user_path(args.model), key, password)
    out = cli.user_path(args.out)
    with open(out, "wb") as stream:
        stream.write(bundle)
    print(f"model_signature: signed {os.path.basename(args.model)} -> {args.out}",
          file=sys.stderr)


def _verify(args):
    public = _read(cli.user_path(args.key), "public key")
    bundle = _read(cli.user_path(args.bundle), "bundle")
    verified = model.verify_model(cli.user_path(args.model), bundle, public)
    print(json.dumps(verified, indent=2, sort_keys=True))


def main(argv=None):
    """Runs one command; TrustError becomes a one-line failure (exit 1)."""
    args = parser().parse_args(argv)
    try:
        if args.command == "sign":
            _sign(args)
        else:
            _verify(args)
    except TrustError as err:
        raise cli.Failure(str(err)) from None
    return cli.OK


if __name__ == "__main__":
    cli.run(main)
