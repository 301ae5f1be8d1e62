"""Every lock under third_party/python matches its manifest and pins by hash.

A lock is stale when its .in file gained a requirement that tools/relock
has not been run for; it is unsafe when any entry is unpinned or unhashed;
it is not portable when it carries this machine's index settings.
"""

import glob
import os
import re

import pytest

HERE = "third_party/python"
MANIFESTS = sorted(glob.glob(os.path.join(HERE, "*.in")))
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name):
    """PEP 503 normalized name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_manifest(path):
    """Names required by a .in file (constraint lines excluded)."""
    names = []
    with open(path, encoding="utf-8") as manifest:
        for line in manifest:
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            names.append(normalize(NAME.match(line).group(1)))
    return names


def read_lock(path):
    """(entries {name: (version, [hashes])}, option lines) of a pip-compile lock."""
    with open(path, encoding="utf-8") as lock:
        text = lock.read().replace("\\\n", " ")
    entries, options = {}, []
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        spec = line.split()[0]
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        name, _, version = spec.partition("==")
        entries[normalize(name.split("[", 1)[0])] = (version, hashes, spec)
    return entries, options


def lock_for(manifest):
    """The lock compiled from a manifest."""
    return manifest[:-len(".in")] + ".txt"


def test_every_manifest_has_a_lock():
    assert MANIFESTS, f"no .in manifests found under {HERE}"
    for manifest in MANIFESTS:
        assert os.path.exists(lock_for(manifest)), (
            f"{manifest} has no lock {lock_for(manifest)}: run tools/relock")


@pytest.mark.parametrize("manifest", MANIFESTS, ids=os.path.basename)
def test_lock_contains_every_requirement_of_its_manifest(manifest):
    entries, _ = read_lock(lock_for(manifest))
    missing = [name for name in read_manifest(manifest) if name not in entries]
    assert not missing, (
        f"{lock_for(manifest)} is stale: {', '.join(missing)} required by {manifest} "
        "is not locked. Run tools/relock.")


@pytest.mark.parametrize("manifest", MANIFESTS, ids=os.path.basename)
def test_every_lock_entry_is_pinned_and_hashed(manifest):
    entries, _ = read_lock(lock_for(manifest))
    assert entries, f"{lock_for(manifest)} pins nothing"
    for name, (version, hashes, spec) in sorted(entries.items()):
        assert re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version or ""), (
            f"{lock_for(manifest)}: '{spec}' is not pinned with '=='. Run tools/relock.")
        assert hashes, f"{lock_for(manifest)}: {name} has no --hash. Run tools/relock."


@pytest.mark.parametrize("manifest", MANIFESTS, ids=os.path.basename)
def test_lock_carries_no_machine_specific_settings(manifest):
    _, options = read_lock(lock_for(manifest))
    for option in options:
        assert not re.match(r"(--index-url|--extra-index-url|--find-links|-f |-i |"
                            r"--trusted-host)", option), (
            f"{lock_for(manifest)} carries '{option}'; locks must not name this machine's "
            "package sources. tools/relock passes --no-emit-index-url --no-emit-find-links.")
    with open(lock_for(manifest), encoding="utf-8") as lock:
        text = lock.read()
    assert "file://" not in text and "/opt/" not in text, (
        f"{lock_for(manifest)} names a local path")


@pytest.mark.parametrize("manifest", MANIFESTS, ids=os.path.basename)
def test_layered_locks_agree_with_their_constraints(manifest):
    with open(manifest, encoding="utf-8") as text:
        constraints = re.findall(r"^-c\s+(\S+)", text.read(), re.MULTILINE)
    entries, _ = read_lock(lock_for(manifest))
    for constraint in constraints:
        pinned, _ = read_lock(os.path.join(HERE, constraint))
        for name, (version, _, _) in sorted(entries.items()):
            if name in pinned:
                assert version == pinned[name][0], (
                    f"{lock_for(manifest)} pins {name}=={version} but {constraint} pins "
                    f"{pinned[name][0]}: two versions would meet on one sys.path. "
                    "Run tools/relock.")
