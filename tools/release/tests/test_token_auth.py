"""The Docker token flow (GitLab's registry, Docker Hub, Harbor) against a real
docker-registry with `auth: token` whose realm is a token server on another loopback
port: quoted challenge parameters, a token per scope, renewal on expiry and after a
401, credentials to the realm only over https or loopback, wrong passwords named
without the password."""

import json
import os
import subprocess
import time

import pytest

from tools.release import errors, history, labels as labels_lib, server, skopeo
from tools.release import registry as registry_lib, settings as settings_lib
from tools.release.tests import support, token_server


def client_for(token_registry, repository, **extra):
    """A client of `repository` in the token registry, with the test user's password."""
    return registry_lib.Client(settings_lib.load(token_registry.env(repository, **extra)))


def test_challenge_parameters_are_read_whole():
    scheme, params = registry_lib.parse_challenge(
        'Bearer realm="https://gitlab.example/jwt/auth",service="container_registry",'
        'scope="repository:group/project:pull,push", error="insufficient_scope"')
    assert scheme == "bearer"
    assert params == {"realm": "https://gitlab.example/jwt/auth",
                      "service": "container_registry",
                      "scope": "repository:group/project:pull,push",
                      "error": "insufficient_scope"}
    assert registry_lib.parse_challenge('Bearer realm="a\\"b",scope=x')[1] == {
        "realm": 'a"b', "scope": "x"}


def test_scopes_of_one_repository_are_merged_and_others_kept():
    assert registry_lib.merge_scopes(
        ["repository:a/b:pull", "repository:c/d:pull", "repository:a/b:push,pull"]) == (
            "repository:a/b:pull,push", "repository:c/d:pull")


def test_a_push_asks_one_token_for_pull_and_push_and_reuses_it(token_registry):
    client = client_for(token_registry, "tok/several")
    before = len(token_registry.tokens.granted())
    digest = client.push_blob(b"several actions in one scope")
    assert client.has_blob(digest)
    client.push_blob(b"a second blob, same token")
    granted = token_registry.tokens.granted()[before:]
    assert ["repository:tok/several:pull,push"] in granted
    assert granted.count(["repository:tok/several:pull,push"]) == 1, granted


def test_scope_changes_get_their_own_tokens(token_registry):
    client = client_for(token_registry, "tok/first")
    before = len(token_registry.tokens.granted())
    support.push_image(client, support.releasable_labels("scope changes"), tag="v1")
    assert client.resolve("v1")  # pull after push
    other = registry_lib.Client(
        settings_lib.load(token_registry.env("tok/second")))
    assert other.resolve("v1") is None  # another repository: another scope
    other.push_blob(b"into the second repository")
    granted = token_registry.tokens.granted()[before:]
    assert ["repository:tok/first:pull,push"] in granted
    assert ["repository:tok/first:pull"] in granted
    assert ["repository:tok/second:pull"] in granted
    assert ["repository:tok/second:pull,push"] in granted
    assert len(granted) == len({tuple(g) for g in granted}), granted  # none asked twice


def test_a_cross_repository_mount_gets_one_token_for_both_repositories(token_registry):
    source = client_for(token_registry, "tok/mount-source")
    digest = source.push_blob(b"mounted, not copied")
    target = client_for(token_registry, "tok/mount-target")
    before = len(token_registry.tokens.granted())
    assert target.mount_blob(digest, "tok/mount-source")
    assert target.has_blob(digest)
    asked = [sorted(g) for g in token_registry.tokens.granted()[before:]]
    assert ["repository:tok/mount-source:pull",
            "repository:tok/mount-target:pull,push"] in asked, asked


def test_an_expired_token_is_renewed_before_it_is_sent(token_registry):
    tokens = token_registry.tokens
    # The token server says two seconds (issued_at is to the second: at least one left).
    tokens.told_s = 2
    try:
        client = client_for(token_registry, "tok/expiry")
        before = len(tokens.granted())
        assert client.resolve("absent") is None
        assert client.resolve("absent") is None  # at once: the cached token
        assert len(tokens.granted()) - before == 1
        time.sleep(2.2)
        assert client.resolve("absent") is None
        assert len(tokens.granted()) - before == 2
    finally:
        tokens.told_s = 300


def test_a_token_the_registry_refuses_is_replaced_on_401(token_registry):
    client = client_for(token_registry, "tok/rotated")
    digest = client.push_blob(b"before the key rotation")
    before = len(token_registry.tokens.granted())
    # The token server's signing key is rotated and the registry restarted with the new
    # certificate: the cached token (valid for minutes by its expiry) is refused.
    token_registry.tokens.rotate()
    token_registry.process.stop()
    token_registry.start()
    assert client.has_blob(digest)
    assert len(token_registry.tokens.granted()) - before == 1


def test_a_wrong_password_names_the_registry_and_not_the_password(capsys, token_registry):
    env = token_registry.env("tok/wrong", MODELSHIP_REGISTRY_PASSWORD="not-the-password-42")
    status, out, err = support.run_cli(capsys, env, "history")
    assert status == 1
    assert f"registry {token_registry.address}: its token server" in err
    assert "refused the credentials given (HTTP 401)" in err
    assert "not-the-password-42" not in out + err
    assert "Traceback" not in err


def test_credentials_are_not_sent_to_a_plain_http_realm_elsewhere(token_registry, tmp_path):
    # A registry whose challenge names a realm over plain http on a non-loopback host.
    auth = dict(token_registry.tokens.registry_auth(),
                realm="http://tokens.example.invalid:8080/token")
    elsewhere = server.Registry(str(tmp_path), token=auth).start()
    try:
        env = dict(token_registry.env("tok/elsewhere"), MODELSHIP_REGISTRY=elsewhere.address)
        client = registry_lib.Client(settings_lib.load(env))
        with pytest.raises(errors.AuthError) as refused:
            client.resolve("stable")
        message = str(refused.value)
        assert "http://tokens.example.invalid:8080/token over plain http; refused" in message
        assert elsewhere.address in message
        assert token_registry.password not in message
    finally:
        elsewhere.stop()


def archive_of(client, labels, path):
    """An OCI archive of a small image with these labels (pushed to a scratch repository
    of `client`'s registry, copied out with skopeo); returns the archive's digest."""
    digest = support.push_image(client, labels)
    with skopeo.auth_file(client.settings) as auth:
        subprocess.run(["skopeo", "--tmpdir", os.path.dirname(path), "copy", "--quiet",
                        "--src-tls-verify=false", "--src-authfile", auth,
                        f"docker://{client.settings.base}@{digest}", f"oci-archive:{path}"],
                       check=True)
    return support.manifest_digest(path)


def test_a_token_server_redirect_is_not_followed_with_the_credentials(token_registry):
    # The redirect points at a token server too: following it would send the password.
    trap = token_server.TokenServer(token_registry.root, support.USER, "x").start()
    token_registry.tokens.redirect = trap.realm.replace("127.0.0.1", "localhost")
    try:
        client = client_for(token_registry, "tok/redirected")
        with pytest.raises(errors.AuthError, match=r"gave no token \(HTTP 302\)"):
            client.resolve("stable")
    finally:
        token_registry.tokens.redirect = None
        trap.stop()
    assert not trap.requests


def test_publish_promote_rollback_and_history_through_the_token_registry(
        capsys, token_registry, tmp_path):
    """The CLI end to end on small images (the real production image goes through the
    token registry in test_release_end_to_end): skopeo does its own token flow from
    the auth file the tool writes, the tool's client its own."""
    env = token_registry.env("tok/flow")
    client = registry_lib.Client(settings_lib.load(env))
    scratch = registry_lib.Client(settings_lib.load(token_registry.env("tok/scratch")))
    digests = []
    for seed in ("one", "two"):
        labels = support.releasable_labels("token flow " + seed)
        archive = str(tmp_path / f"{seed}.oci.tar")
        digest = archive_of(scratch, labels, archive)
        status, out, err = support.run_cli(capsys, env, "publish", "--archive", archive)
        assert status == 0, err
        assert out.splitlines()[-1] == digest
        assert client.resolve("candidate-" + labels[labels_lib.REVISION][:12]) == digest
        history.Store(client).append(history.record(
            "validate", digest, f"{client.settings.base}@{digest}", labels,
            result="passed"))
        status, out, err = support.run_cli(capsys, env, "promote", "--digest", digest)
        assert status == 0, err
        assert out.strip() == f"{client.settings.base}:stable -> {digest}"
        digests.append(digest)
    status, out, err = support.run_cli(capsys, env, "rollback")
    assert status == 0, err
    assert out.strip() == f"{client.settings.base}:stable -> {digests[0]} (was {digests[1]})"
    assert client.resolve("stable") == digests[0]
    status, out, err = support.run_cli(capsys, env, "history", "--json")
    assert status == 0, err
    assert [(r["event"], r["digest"]) for r in map(json.loads, out.splitlines())] == [
        ("publish", digests[0]), ("validate", digests[0]), ("promote", digests[0]),
        ("publish", digests[1]), ("validate", digests[1]), ("promote", digests[1]),
        ("rollback", digests[0])]
    assert token_registry.password not in out + err
