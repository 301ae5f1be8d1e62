"""Before any track runs an image: its signatures and attestations must verify.

The same checks as the release tool's promote (tools/release/trust.py), against
the registry the image reference names, with the release tool's settings for
credentials (MODELSHIP_REGISTRY_USER / _PASSWORD / _AUTH_FILE, _TLS) and keys
(MODELSHIP_COSIGN_PUBLIC_KEY, MODELSHIP_GPG_PUBLIC_KEY, MODELSHIP_LOOKASIDE).
MODELSHIP_VERIFY=0 turns the check off (tests of traffic shifting, local trials;
never production); the deploy then says so on stderr.
"""

import sys

from tools.deploy.errors import DeployError, InputError


def _say(message):
    print(f"deploy: {message}", file=sys.stderr, flush=True)


def verifier(environ, log=_say):
    """A function Image -> None that raises DeployError unless the image verifies."""
    # pylint: disable=import-outside-toplevel
    from tools.release import errors, image as image_lib, registry, settings as settings_lib
    from tools.release import trust as trust_lib
    try:
        keys = trust_lib.load(environ)
    except errors.UsageError as err:
        raise InputError(str(err)) from None

    def verify(image):
        if not keys.verify:
            log(f"MODELSHIP_VERIFY=0: {image.reference} runs without its signatures checked")
            return
        host, _, repository = image.repository.partition("/")
        try:
            settings = settings_lib.load(environ, registry=host, repository=repository)
            client = registry.Client(settings)
            pushed = image_lib.Pushed(client, image.digest)
            trust_lib.Trust(keys, settings, client, log).require(
                pushed, why="refused to run it: ")
        except errors.UsageError as err:
            raise InputError(f"{image.reference}: {err}") from None
        except errors.ReleaseError as err:
            raise DeployError(f"{err}; nothing was changed") from None
        log(f"verified {image.reference}")

    return verify
