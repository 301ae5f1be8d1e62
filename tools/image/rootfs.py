"""Assembles a root filesystem tarball from pinned .deb files, bit for bit.

    python3 tools/image/rootfs.py --lock third_party/debian/base.lock \\
        --debs DIR --prune third_party/debian/base.prune --out rootfs.tar

The packages are unpacked, not installed (no maintainer scripts run: the
result has no package manager and needs none), in the manner of distroless:
  - /bin, /sbin, /lib, /lib64 are links into /usr (merged /usr, as bookworm);
  - files matching the prune globs are left out (docs, man pages, tests...);
  - /etc/passwd and /etc/group know root and nonroot (uid/gid 65532),
    /home/nonroot belongs to nonroot, /tmp is 1777;
  - /var/lib/dpkg/status.d/<package> records each package and version, so
    image scanners see what the image holds;
  - entries are sorted, owned by root (but /home/nonroot), and stamped with
    SOURCE_DATE_EPOCH: the same inputs give the same bytes.
Every .deb is checked against its lock hash before it is read.
"""

import argparse
import fnmatch
import hashlib
import io
import os
import subprocess
import sys
import tarfile

MERGED = ("bin", "sbin", "lib", "lib64")
NONROOT = 65532

PASSWD = ("root:x:0:0:root:/root:/sbin/nologin\n"
          "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
GROUP = "root:x:0:\nnonroot:x:65532:\n"


class RootfsError(Exception):
    """A problem to show as it is."""


def read_lock(path):
    """[(package, version, arch, sha256, pool path)] of a Debian lock."""
    with open(path, encoding="utf-8") as lock:
        return [tuple(line.split()) for line in lock
                if line.strip() and not line.startswith("#")]


def read_prune(path):
    """Glob patterns (relative paths, no leading slash) of files to leave out."""
    if not path:
        return []
    with open(path, encoding="utf-8") as prune:
        return [line.split("#", 1)[0].strip().lstrip("/") for line in prune
                if line.split("#", 1)[0].strip()]


def merged_path(name):
    """'./lib/x86_64-linux-gnu/libc.so.6' -> 'usr/lib/x86_64-linux-gnu/libc.so.6'."""
    name = os.path.normpath(name.lstrip("./") or ".")
    top = name.split("/", 1)[0]
    if top in MERGED:
        return "usr/" + name
    return name


def pruned(name, patterns):
    """True when a path matches a prune pattern (a pattern 'd/**' covers d itself)."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(name, pattern):
            return True
        if pattern.endswith("/**") and name == pattern[:-3]:
            return True
    return False


def sha256_of(path):
    """Hex sha256 of a file."""
    with open(path, "rb") as data:
        return hashlib.sha256(data.read()).hexdigest()


def unpack(deb, patterns, entries):
    """Adds the members of one .deb to `entries` ({path: (TarInfo, bytes)})."""
    proc = subprocess.run(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise RootfsError(f"{os.path.basename(deb)}: dpkg-deb failed: {proc.stderr.decode()}")
    with tarfile.open(fileobj=io.BytesIO(proc.stdout), mode="r:") as tar:
        for member in tar:
            name = merged_path(member.name)
            if name == "." or pruned(name, patterns):
                continue
            if name in MERGED:
                continue
            data = tar.extractfile(member).read() if member.isfile() else None
            if member.islnk():
                member.linkname = merged_path(member.linkname)
            if member.isdir() and name in entries:
                continue
            member.name = name
            entries[name] = (member, data)


def make_dir(name, mode=0o755, uid=0):
    """A directory entry."""
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, mode, uid, uid
    return info, None


def make_file(name, text, mode=0o644):
    """A regular file entry."""
    data = text.encode()
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def make_link(name, target):
    """A symbolic link entry."""
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = tarfile.SYMTYPE, target, 0o777
    return info, None


def add_system_files(entries, lock, links):
    """Users, merged-/usr links, writable dirs and the package records."""
    for top in MERGED:
        entries[top] = make_link(top, "usr/" + top)
    entries["etc/passwd"] = make_file("etc/passwd", PASSWD)
    entries["etc/group"] = make_file("etc/group", GROUP)
    entries["tmp"] = make_dir("tmp", 0o1777)
    entries["home"] = make_dir("home")
    entries["home/nonroot"] = make_dir("home/nonroot", 0o700, NONROOT)
    entries["root"] = make_dir("root", 0o700)
    for name, target in links:
        entries[name] = make_link(name, target)
    for name, version, arch, _sha, _pool in lock:
        record = (f"Package: {name}\nStatus: install ok installed\n"
                  f"Architecture: {arch}\nVersion: {version}\n")
        path = f"var/lib/dpkg/status.d/{name}"
        entries[path] = make_file(path, record)


def add_parents(entries):
    """Every entry's parent folders exist as entries of their own."""
    for name in list(entries):
        parent = os.path.dirname(name)
        while parent and parent not in entries:
            entries[parent] = make_dir(parent)
            parent = os.path.dirname(parent)


def write_tar(out, entries, epoch):
    """Writes the entries sorted, root-owned (unless set), stamped with `epoch`."""
    with open(out, "wb") as raw, \
            tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            info, data = entries[name]
            info.name = name
            info.mtime = epoch
            info.uname = info.gname = ""
            if info.uid != NONROOT:
                info.uid = info.gid = 0
            info.pax_headers = {}
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


def main(argv=None):
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lock", required=True, action="append")
    parser.add_argument("--skip-lock", action="append", default=[],
                        help="leave out the packages of this lock (a layer below has them)")
    parser.add_argument("--skip-tar",
                        help="leave out the paths this tarball (the layer below) has")
    parser.add_argument("--debs", required=True, help="folder holding the .deb files")
    parser.add_argument("--prune", help="file of glob patterns to leave out")
    parser.add_argument("--link", action="append", default=[], metavar="PATH=TARGET",
                        help="extra symbolic link, e.g. usr/bin/python3=python3.11")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    try:
        below = {entry[0]: entry for path in args.skip_lock for entry in read_lock(path)}
        lock = []
        for entry in (e for path in args.lock for e in read_lock(path)):
            if entry[0] not in below:
                lock.append(entry)
            elif below[entry[0]] != entry:
                raise RootfsError(f"{entry[0]}: the locks pin different files "
                                  f"({below[entry[0]][1]} and {entry[1]}); re-lock both")
        patterns = read_prune(args.prune)
        entries = {}
        for name, version, _arch, sha256, pool in sorted(lock):
            deb = os.path.join(args.debs, os.path.basename(pool))
            if not os.path.exists(deb):
                raise RootfsError(f"{name}={version}: {deb} is missing; fetch it first "
                                  "(tools/debian/fetch.py)")
            if sha256_of(deb) != sha256:
                raise RootfsError(f"{name}={version}: {deb} does not have the pinned sha256 "
                                  f"{sha256}; delete it and fetch again")
            unpack(deb, patterns, entries)
        links = [tuple(spec.split("=", 1)) for spec in args.link]
        if args.skip_tar:
            with tarfile.open(args.skip_tar) as lower:
                for member in lower:
                    if not member.isdir():
                        entries.pop(member.name, None)
        if below or args.skip_tar:
            for name, target in links:
                entries[name] = make_link(name, target)
        else:
            add_system_files(entries, lock, links)
        add_parents(entries)
        write_tar(args.out, entries, epoch)
    except (OSError, RootfsError) as err:
        print(f"rootfs: {err}", file=sys.stderr)
        return 1
    size = sum(info.size for info, _ in entries.values())
    print(f"rootfs: {args.out}: {len(entries)} entries, {size / 1e6:.1f} MB of files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
