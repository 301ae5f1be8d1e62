"""Done when (token registries): publish, validate, promote, a second release,
rollback and the history, with the production image, through a real docker-registry
with token authentication (`auth: token`, the Docker token flow of GitLab's
registry, Docker Hub and Harbor) whose realm is a token server on another loopback
port. The tool's own client and skopeo (publish, promote, the validate pull into
the private dockerd) each get their tokens from the realm."""

import json

from tools.release import registry as registry_lib, settings as settings_lib
from tools.release.tests import support

REPOSITORY = "token/digits"


def test_the_release_flow_through_a_token_registry(capsys, token_registry, images):
    env = token_registry.env(REPOSITORY)
    client = registry_lib.Client(settings_lib.load(env))
    first, second = images["digests"]["first"], images["digests"]["second"]
    base = f"{token_registry.address}/{REPOSITORY}"
    granted_before = len(token_registry.tokens.granted())

    for name, digest in (("first", first), ("second", second)):
        status, out, err = support.run_cli(capsys, env, "publish", "--archive", images[name])
        assert status == 0, err
        assert out.splitlines()[-1] == digest
        status, out, err = support.run_cli(capsys, env, *support.RELEASE_SPEC,
                                           "validate", "--digest", digest)
        assert status == 0, out + err
        assert out.splitlines()[-1] == f"VALID {digest}"
        status, out, err = support.run_cli(capsys, env, "promote", "--digest", digest)
        assert status == 0, err
        assert out.strip() == f"{base}:stable -> {digest}"
        assert client.resolve("stable") == digest

    status, out, err = support.run_cli(capsys, env, "rollback")
    assert status == 0, err
    assert out.strip() == f"{base}:stable -> {first} (was {second})"
    assert client.resolve("stable") == first

    status, out, err = support.run_cli(capsys, env, "history", "--json")
    assert status == 0, err
    assert [(r["event"], r["digest"]) for r in map(json.loads, out.splitlines())] == [
        ("publish", first), ("validate", first), ("promote", first),
        ("publish", second), ("validate", second), ("promote", second),
        ("rollback", first)]
    granted = token_registry.tokens.granted()[granted_before:]
    assert [f"repository:{REPOSITORY}:pull,push"] in granted
    assert [f"repository:{REPOSITORY}:pull"] in granted
    assert token_registry.password not in out + err
