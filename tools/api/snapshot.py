"""Keeps the released API contract in the repository: the base of the breaking-change gate.

    bazel run //tools/api:snapshot -- --current services/iris \
        --releases services/iris/api/releases          after a release (or while cutting one)
    ... --force                                        replace the snapshot of this version

Copies CURRENT/openapi.json and results.schema.json (if present) to
RELEASES/<API version>/ (the version is the document's info.version): the
same folders the service's breaking-change test reads (`--current`,
`--releases`), relative to the workspace. A released contract does not
change: when a snapshot of the same version exists with other content, it
stops and says to raise the version, unless --force.
"""

import argparse
import filecmp
import os
import shutil
import sys

from tools.api import breaking


def _relative(path, flag):
    """`path` as a workspace-relative folder (the snapshot writes into the source tree)."""
    normal = os.path.normpath(path)
    if os.path.isabs(path) or normal == ".." or normal.startswith(".." + os.sep):
        raise breaking.ContractError(f"{flag} {path}: give a folder relative to the workspace "
                                     "(e.g. services/iris)")
    return normal


def snapshot(workspace, current_dir, releases_dir, force=False):
    """Copies the contract in `current_dir` to `releases_dir`/<its API version>/ (both
    relative to `workspace`); returns that folder."""
    current_dir = _relative(current_dir, "--current")
    releases_dir = _relative(releases_dir, "--releases")
    current = breaking.Contract(os.path.join(workspace, current_dir), current_dir)
    dest = os.path.join(releases_dir, current.version)
    names = [name for name in (breaking.OPENAPI, breaking.RESULTS_SCHEMA)
             if name == breaking.OPENAPI
             or os.path.exists(os.path.join(workspace, current_dir, name))]
    absolute = os.path.join(workspace, dest)
    if os.path.isdir(absolute) and not force:
        changed = [name for name in names
                   if not os.path.exists(os.path.join(absolute, name))
                   or not filecmp.cmp(os.path.join(workspace, current_dir, name),
                                      os.path.join(absolute, name), shallow=False)]
        if changed:
            raise breaking.ContractError(
                f"{dest} already holds API {current.version} with another "
                f"{', '.join(changed)}; a released contract does not change. Raise "
                "the API version of the service's contract (info.version) and regenerate it, "
                "or pass --force to replace it.")
    os.makedirs(absolute, exist_ok=True)
    for name in names:
        shutil.copyfile(os.path.join(workspace, current_dir, name),
                        os.path.join(absolute, name))
    return dest


def main(argv=None):
    """Entry point of `bazel run //tools/api:snapshot`."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--current", required=True,
                        help="folder of the service's contract (openapi.json, optionally "
                        "results.schema.json), relative to the workspace")
    parser.add_argument("--releases", required=True,
                        help="folder of the released contracts, one subfolder per API "
                        "version, relative to the workspace")
    parser.add_argument("--force", action="store_true",
                        help="replace an existing snapshot of the same API version")
    args = parser.parse_args(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("snapshot: run me with `bazel run //tools/api:snapshot`.", file=sys.stderr)
        return 2
    try:
        dest = snapshot(workspace, args.current, args.releases, args.force)
    except breaking.ContractError as err:
        print(f"snapshot: {err}", file=sys.stderr)
        return 2
    print(f"snapshot: wrote {dest}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
