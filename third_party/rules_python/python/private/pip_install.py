"""Installs the wheels of one hashed pip-tools lock into a Bazel repository.

Run by the `pip_parse` repository rule with the workspace interpreter:
one `pip install --require-hashes --no-deps --only-binary=:all:` into a
scratch folder, then the files of each distribution (from its RECORD) are
moved under `<package>/site/`, and a BUILD file per package declares a
`py_library` whose deps come from the wheel's own Requires-Dist.
Failures are reported as one clear message: which package, what was
expected, how to fix it.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys

from pip._vendor.packaging.requirements import Requirement  # pylint: disable=import-error


class InstallError(Exception):
    """An error to show the user as it is."""


# Characters Bazel does not accept in a label; files named with them are
# dropped (templates and tests inside some wheels), and the drop is listed.
_BAD_LABEL_CHARS = re.compile(r"[ \t\n'\"$\\]")


def normalize(name):
    """PEP 503 name, with '_' as upstream rules_python spells repository names."""
    return re.sub(r"[-_.]+", "_", name).lower()


def parse_lock(path):
    """Returns {normalized name: 'name==version'} for the pinned entries of a lock."""
    pins = {}
    with open(path, encoding="utf-8") as lock:
        text = lock.read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        spec = line.split()[0]
        if "==" not in spec:
            raise InstallError(
                f"{path}: '{spec}' is not pinned with '=='. Locks are made by "
                "tools/relock (pip-compile --generate-hashes); re-lock."
            )
        name = spec.split("==", 1)[0].split("[", 1)[0]
        pins[normalize(name)] = spec
    return pins


def explain_pip_failure(output, repo, lock_label):
    """Turns pip's output into one message that names the package and the fix."""
    mismatches = re.findall(
        r"^\s+(\S+==\S+) from (\S+)[^\n]*\n\s+Expected sha256 (\S+)"
        r"(?:\s*\n\s+(?:Expected\s+)?or \S+)*\s*\n\s+Got\s+(\S+)",
        output,
        re.MULTILINE,
    )
    if mismatches:
        lines = [f"pip_parse(@{repo}): hash mismatch, the download is not what {lock_label} pins:"]
        for spec, url, expected, got in mismatches:
            fname = url.rsplit("/", 1)[-1].split("#", 1)[0]
            lines.append(
                f"  {spec} ({fname}): the lock expects sha256 {expected}, "
                f"the downloaded file has sha256 {got}."
            )
        lines.append(
            "Fix: if the lock was edited by hand or is stale, regenerate it with "
            "tools/relock; otherwise the package index served different bytes: do not use them."
        )
        return "\n".join(lines)
    missing_hash = re.search(
        r"Hashes are required in --require-hashes mode[^\n]*\n\s+(\S+)", output)
    if missing_hash:
        return (
            f"pip_parse(@{repo}): {missing_hash.group(1)} in {lock_label} has no --hash. "
            "Fix: regenerate the lock with tools/relock (pip-compile --generate-hashes)."
        )
    no_wheel = re.search(r"No matching distribution found for (\S+)", output)
    if no_wheel:
        return (
            f"pip_parse(@{repo}): no wheel of {no_wheel.group(1)} (from {lock_label}) for "
            f"Python {sys.version_info[0]}.{sys.version_info[1]} on this platform, or the index "
            "is unreachable. Locks must pin versions that ship wheels (fetches never build "
            "sdists); check the network, or pick another version and re-lock with tools/relock."
        )
    tail = "\n".join(output.strip().splitlines()[-15:])
    return f"pip_parse(@{repo}): pip install failed for {lock_label}:\n{tail}"


def run_pip(lock, target, repo, lock_label, extra_args):
    """Installs the lock into `target`; raises InstallError with pip's reason."""
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--require-hashes", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
        "--no-warn-script-location", "--target", target, "-r", lock,
    ] + list(extra_args)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    if proc.returncode != 0:
        raise InstallError(explain_pip_failure(proc.stdout, repo, lock_label))


def read_dist_infos(site):
    """Yields (dist-info dir name, METADATA text, RECORD paths) for each wheel."""
    for entry in sorted(os.listdir(site)):
        if not entry.endswith(".dist-info"):
            continue
        info = os.path.join(site, entry)
        with open(os.path.join(info, "METADATA"), encoding="utf-8") as meta:
            metadata = meta.read()
        with open(os.path.join(info, "RECORD"), encoding="utf-8") as rec:
            paths = [row.rsplit(",", 2)[0] for row in rec.read().splitlines() if row]
        yield entry, metadata, paths


def metadata_field(metadata, field):
    """All values of one header field of a METADATA file."""
    header = metadata.split("\n\n", 1)[0]
    prefix = field + ":"
    return [line[len(prefix):].strip() for line in header.splitlines() if line.startswith(prefix)]


def dependencies(metadata, pins, owner):
    """Names (normalized) of the lock's packages this wheel needs on this interpreter."""
    deps = set()
    for text in metadata_field(metadata, "Requires-Dist"):
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = normalize(req.name)
        if name not in pins:
            raise InstallError(
                f"the lock has no entry for {req.name}, which {owner} requires "
                f"('{text}'). The lock is stale or hand-edited: run tools/relock."
            )
        deps.add(name)
    return sorted(deps)


def break_cycles(graph):
    """Drops the edges that close a cycle (Bazel deps must form a DAG)."""
    state, dropped = {}, []

    def visit(node):
        state[node] = "active"
        for dep in list(graph[node]):
            if state.get(dep) == "active":
                graph[node].remove(dep)
                dropped.append((node, dep))
            elif dep not in state:
                visit(dep)
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return dropped


_PACKAGE_BUILD = """\
# Generated by @rules_python pip_parse from {lock}: {spec}. Do not edit.
load("@rules_python//python:defs.bzl", "py_library")

package(default_visibility = ["//visibility:public"])

py_library(
    name = "{name}",
    srcs = glob(["site/**/*.py"], allow_empty = True),
    data = glob(["site/**"], exclude = ["site/**/*.py"]),
    imports = ["site"],
    deps = [{deps}],
)

alias(
    name = "pkg",
    actual = ":{name}",
)

filegroup(
    name = "headers",
    srcs = glob(["site/**/*.h"], allow_empty = True),
)
"""

_REQUIREMENTS_BZL = '''\
"""Generated by @rules_python pip_parse from {lock}. Do not edit."""

all_requirements = [{all}]

_PACKAGES = {{{packages}}}

def requirement(name):
    """The label of the py_library of `name` (any spelling of the name)."""
    key = name.lower().replace("-", "_").replace(".", "_")
    if key not in _PACKAGES:
        fail("requirement(%r): %s does not pin it. " % (name, "{lock}") +
             "Add it to the matching .in file and run tools/relock.")
    return "@{repo}//" + key

def install_deps(**kwargs):
    """Kept for the upstream WORKSPACE idiom; every package is already here."""
    _ignore = kwargs
'''


def assemble(site, out, pins, lock_label, repo):
    """Moves each wheel's files to <out>/<pkg>/site and writes the BUILD files."""
    graph, specs, dropped_files = {}, {}, []
    for info_dir, metadata, paths in read_dist_infos(site):
        name = normalize(metadata_field(metadata, "Name")[0])
        if name not in pins:
            raise InstallError(f"pip installed {info_dir}, which the lock does not pin.")
        graph[name] = dependencies(metadata, pins, name)
        specs[name] = pins[name]
        dest = os.path.join(out, name, "site")
        for rel in paths:
            src = os.path.normpath(os.path.join(site, rel))
            if not src.startswith(site + os.sep) or not os.path.lexists(src):
                continue  # console scripts and data outside the site folder
            if _BAD_LABEL_CHARS.search(rel):
                dropped_files.append(rel)
                continue
            os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
            os.replace(src, os.path.join(dest, rel))
    missing = sorted(set(pins) - set(graph))
    if missing:
        raise InstallError(f"pip did not install {', '.join(missing)} from {lock_label}.")
    for node, dep in break_cycles(graph):
        print(f"pip_parse(@{repo}): dependency cycle, {node} -> {dep} left out", file=sys.stderr)
    for name in sorted(graph):
        deps = ", ".join(f'"//{dep}"' for dep in graph[name])
        with open(os.path.join(out, name, "BUILD.bazel"), "w", encoding="utf-8") as build:
            build.write(_PACKAGE_BUILD.format(lock=lock_label, spec=specs[name],
                                              name=name, deps=deps))
    for rel in dropped_files:
        print(f"pip_parse(@{repo}): left out {rel} (not a valid Bazel label)", file=sys.stderr)
    return sorted(graph)


def main(argv=None):
    """Entry point of the repository rule."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--lock", required=True)
    parser.add_argument("--lock-label", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--pip-arg", action="append", default=[])
    args = parser.parse_args(argv)
    out = os.path.abspath(args.out)
    site = os.path.join(out, "_install")
    try:
        pins = parse_lock(args.lock)
        if os.path.exists(site):
            shutil.rmtree(site)
        run_pip(args.lock, site, args.repo, args.lock_label, args.pip_arg)
        names = assemble(site, out, pins, args.lock_label, args.repo)
    except InstallError as err:
        print(str(err), file=sys.stderr)
        return 1
    shutil.rmtree(site)
    with open(os.path.join(out, "requirements.bzl"), "w", encoding="utf-8") as bzl:
        bzl.write(_REQUIREMENTS_BZL.format(
            lock=args.lock_label, repo=args.repo,
            all=", ".join(f'"@{args.repo}//{n}"' for n in names),
            packages=", ".join(f'"{n}": True' for n in names)))
    with open(os.path.join(out, "BUILD.bazel"), "w", encoding="utf-8") as build:
        build.write(f"# Generated by @rules_python pip_parse from {args.lock_label}.\n"
                    'exports_files(["requirements.bzl"])\n')
    with open(os.path.join(out, "WORKSPACE"), "w", encoding="utf-8") as ws:
        ws.write(f'workspace(name = "{args.repo}")\n')
    return 0


if __name__ == "__main__":
    sys.exit(main())
