"""fetch.py falls back to a mirror's pool when apt no longer lists a pinned version."""

import functools
import hashlib
import http.server
import os
import threading

import pytest

from tools.debian import fetch

POOL = "pool/updates/main/d/demo/demo_1.0-1_amd64.deb"
PAYLOAD = b"!<arch>\ndemo package bytes\n"


@pytest.fixture(name="mirror")
def fixture_mirror(tmp_path):
    """A real HTTP server on loopback serving one .deb at its pool path."""
    root = tmp_path / "mirror"
    (root / os.path.dirname(POOL)).mkdir(parents=True)
    (root / POOL).write_bytes(PAYLOAD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _entry(sha256):
    return ("demo", "1.0-1", "amd64", sha256, POOL)


def test_a_version_apt_no_longer_lists_comes_from_the_pool_and_is_hash_checked(
        mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "mirrors", lambda: ["http://127.0.0.1:9/", mirror])
    dest = tmp_path / "demo.deb"
    assert fetch.from_pool(POOL, str(dest))  # the first mirror is down, the second has it
    path, new = fetch.check(_entry(hashlib.sha256(PAYLOAD).hexdigest()), str(dest))
    assert new
    with open(path, "rb") as got:
        assert got.read() == PAYLOAD


def test_a_pool_file_with_another_hash_is_deleted_and_named(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "mirrors", lambda: [mirror])
    dest = tmp_path / "demo.deb"
    assert fetch.from_pool(POOL, str(dest))
    with pytest.raises(fetch.FetchError, match="demo=1.0-1: sha256 mismatch"):
        fetch.check(_entry("0" * 64), str(dest))
    assert not dest.exists()


def test_no_mirror_with_the_file_leaves_nothing_behind(mirror, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "mirrors", lambda: [mirror])
    dest = tmp_path / "gone.deb"
    assert not fetch.from_pool("pool/main/g/gone/gone_1_amd64.deb", str(dest))
    assert not dest.exists() and not os.path.exists(str(dest) + ".part")


def test_only_selects_named_packages_and_refuses_one_no_lock_holds():
    entries = [_entry("a" * 64), ("other", "2", "all", "b" * 64, "pool/main/o/other_2_all.deb")]
    assert fetch.select(entries, None) == entries
    assert fetch.select(entries, ["other"]) == entries[1:]
    with pytest.raises(fetch.FetchError, match="nginx: not in the lock; re-lock"):
        fetch.select(entries, ["other", "nginx"])
