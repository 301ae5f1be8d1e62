"""The Debian locks are complete, well-formed and agree with the toolchain."""

import os
import re

import pytest

HERE = "third_party/debian"
LOCKS = ["base", "dev"]


def read_lock(name):
    """{package: (version, arch, sha256, pool)} of a lock."""
    entries = {}
    with open(os.path.join(HERE, name + ".lock"), encoding="utf-8") as lock:
        for line in lock:
            if line.startswith("#") or not line.strip():
                continue
            package, version, arch, sha256, pool = line.split()
            entries[package] = (version, arch, sha256, pool)
    return entries


def read_manifest(name):
    """(wanted, excluded) package names of a manifest."""
    wanted, excluded = [], []
    with open(os.path.join(HERE, name + ".in"), encoding="utf-8") as manifest:
        for line in manifest:
            line = line.split("#", 1)[0].strip()
            if line:
                (excluded if line.startswith("!") else wanted).append(line.lstrip("!"))
    return wanted, excluded


@pytest.mark.parametrize("name", LOCKS)
def test_lock_holds_every_wanted_package_and_no_excluded_one(name):
    entries = read_lock(name)
    wanted, excluded = read_manifest(name)
    missing = [p for p in wanted if p not in entries]
    assert not missing, f"{name}.lock is stale ({missing} not locked): re-lock with " \
        f"bazel run //third_party/debian:locks.update -- --only {name}"
    leaked = [p for p in excluded if p in entries]
    assert not leaked, f"{name}.lock holds excluded packages {leaked}"


@pytest.mark.parametrize("name", LOCKS)
def test_lock_entries_are_exact_and_hashed(name):
    for package, (version, arch, sha256, pool) in read_lock(name).items():
        assert re.fullmatch(r"[0-9a-f]{64}", sha256), package
        assert arch in ("amd64", "all"), package
        assert pool.startswith("pool/") and pool.endswith(".deb"), package
        assert "://" not in pool, f"{package}: the lock must not name a mirror"
        assert version.split(":")[-1] in pool, f"{package}: {version} vs {pool}"


def test_dev_lock_agrees_with_base_lock():
    base, dev = read_lock("base"), read_lock("dev")
    for package in sorted(set(base) & set(dev)):
        assert base[package] == dev[package], (
            f"{package}: base.lock and dev.lock pin different files; re-lock both")


def read_toolchain_pins():
    """{package: version} of toolchain.txt."""
    with open(os.path.join(HERE, "toolchain.txt"), encoding="utf-8") as pins:
        return dict(line.split("#", 1)[0].strip().split("=", 1) for line in pins
                    if "=" in line.split("#", 1)[0])


def test_toolchain_lock_pins_exactly_the_toolchain_versions_by_hash():
    pins, lock = read_toolchain_pins(), read_lock("toolchain")
    assert {p: v for p, (v, *_rest) in lock.items()} == pins, (
        "toolchain.lock is stale: re-lock with "
        "bazel run //third_party/debian:locks.update -- --only toolchain")
    for package, (version, _arch, sha256, pool) in lock.items():
        assert re.fullmatch(r"[0-9a-f]{64}", sha256), package
        assert pool.startswith("pool/") and version.split(":")[-1] in pool, package


def test_toolchain_interpreter_is_the_image_interpreter():
    base = read_lock("base")
    toolchain = read_toolchain_pins()
    for package in ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib"):
        assert toolchain.get(package) == base[package][0], (
            f"toolchain.txt pins {package}={toolchain.get(package)} but the image has "
            f"{base[package][0]}: tests would not run on the interpreter that ships")
