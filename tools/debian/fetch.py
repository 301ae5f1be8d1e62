"""Downloads the .deb files a Debian lock pins and checks each sha256.

    python3 tools/debian/fetch.py --cache DIR third_party/debian/base.lock ...

A file already in the cache with the pinned hash is not downloaded again; a
download whose hash differs is deleted and reported, naming the package.
Downloads go through apt (`apt-get download pkg=version`), so the mirror is
the machine's own apt configuration. When apt no longer lists the pinned
version (Debian's security archive drops a version from its index as soon as
an update replaces it, but keeps the file in its pool for a while), the file
is taken from the lock's pool path on each mirror apt is configured with;
the sha256 check is the same either way.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request


class FetchError(Exception):
    """A fetch problem to show as it is."""


def read_lock(path):
    """[(package, version, arch, sha256, pool path)] of a lock."""
    entries = []
    with open(path, encoding="utf-8") as lock:
        for number, line in enumerate(lock, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            if len(fields) != 5 or len(fields[3]) != 64:
                raise FetchError(f"{path}:{number}: expected 'package version arch sha256 "
                                 f"pool-path', got '{line}'. Regenerate the lock.")
            entries.append(tuple(fields))
    return entries


def sha256_of(path):
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for chunk in iter(lambda: data.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_UPDATED = []


def fetch(entry, cache):
    """Makes sure the cache holds the pinned file of one entry; returns (path, new)."""
    try:
        return fetch_once(entry, cache)
    except FetchError:
        if _UPDATED:
            raise
        # apt may not know the version yet (no or old package lists): update once.
        _UPDATED.append(True)
        subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)
        return fetch_once(entry, cache)


def fetch_once(entry, cache):
    """One attempt at `fetch`."""
    name, version, _arch, sha256, pool = entry
    path = os.path.join(cache, os.path.basename(pool))
    if os.path.exists(path) and sha256_of(path) == sha256:
        return path, False
    with tempfile.TemporaryDirectory(dir=cache) as scratch:
        # apt names the file with the epoch (libcrypt1_1%3a4.4...); the pool does not.
        proc = subprocess.run(["apt-get", "download", "-q", f"{name}={version}"], cwd=scratch,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              check=False)
        downloaded = [f for f in os.listdir(scratch) if f.endswith(".deb")]
        if proc.returncode == 0 and len(downloaded) == 1:
            os.replace(os.path.join(scratch, downloaded[0]), path)
    if proc.returncode != 0 or not os.path.exists(path):
        if from_pool(pool, path):
            return check(entry, path)
        tail = [line for line in proc.stdout.strip().splitlines()
                if not line.startswith("W:")][-1:] or ["(no output)"]
        raise FetchError(f"{name}={version}: apt-get download failed: {tail[0]}. If Debian "
                         "no longer serves this version (a security update replaced it), "
                         "re-lock with `bazel run //tools/debian:lock -- <manifest>`.")
    return check(entry, path)


def check(entry, path):
    """(path, True) when the downloaded file has the pinned hash; else deletes it."""
    name, version, _arch, sha256, _pool = entry
    got = sha256_of(path)
    if got != sha256:
        os.remove(path)
        raise FetchError(f"{name}={version}: sha256 mismatch: the lock pins {sha256}, the "
                         f"download has {got}. The file was deleted; do not use it.")
    return path, True


def mirrors():
    """The repository URIs of the machine's apt configuration."""
    proc = subprocess.run(["apt-get", "indextargets", "--format", "$(REPO_URI)"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          check=False)
    return sorted({line.strip() for line in proc.stdout.splitlines() if line.strip()})


def from_pool(pool, path):
    """Downloads `pool` (a path relative to a mirror) into `path`; True when one had it."""
    for mirror in mirrors():
        url = mirror.rstrip("/") + "/" + pool
        # A private partial file: another fetch may be filling the same cache.
        handle, part = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, \
                    urllib.request.urlopen(url, timeout=60) as response:
                shutil.copyfileobj(response, out, 1 << 20)
        except (urllib.error.URLError, OSError):
            os.remove(part)
            continue
        os.chmod(part, 0o644)
        os.replace(part, path)
        return True
    return False


def main(argv=None):
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", required=True, help="folder that keeps the .deb files")
    parser.add_argument("--only", action="append", metavar="PACKAGE",
                        help="fetch only this package of the locks (repeatable)")
    parser.add_argument("--print-paths", action="store_true",
                        help="print each fetched file's path on standard output (the "
                             "summary goes to standard error)")
    parser.add_argument("locks", nargs="+")
    args = parser.parse_args(argv)
    os.makedirs(args.cache, exist_ok=True)
    fetched = kept = 0
    try:
        entries = select([entry for lock in args.locks for entry in read_lock(lock)],
                         args.only)
        for entry in entries:
            path, new = fetch(entry, args.cache)
            fetched, kept = fetched + new, kept + (not new)
            if args.print_paths:
                print(os.path.abspath(path))
    except (OSError, FetchError) as err:
        print(f"debian fetch: {err}", file=sys.stderr)
        return 1
    print(f"debian fetch: {fetched} downloaded, {kept} already present, all hashes match",
          file=sys.stderr if args.print_paths else sys.stdout)
    return 0


def select(entries, only):
    """The entries named in `only` (all when None); a name no lock holds is an error."""
    if only is None:
        return entries
    names = {entry[0] for entry in entries}
    unknown = sorted(set(only) - names)
    if unknown:
        raise FetchError(f"{', '.join(unknown)}: not in the lock; re-lock it "
                         "(tools/debian/lock.py) after changing its manifest.")
    return [entry for entry in entries if entry[0] in only]


if __name__ == "__main__":
    sys.exit(main())
