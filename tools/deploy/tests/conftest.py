"""These tests are about tracks, traffic and gates, on made-up references no registry
holds: the deploy tool's signature check (verify.py) is off here, and is the subject
of //tools/release/tests:test_signed_release, against a real registry."""

import pytest


@pytest.fixture(autouse=True)
def _unsigned_images(monkeypatch):
    monkeypatch.setenv("MODELSHIP_VERIFY", "0")
