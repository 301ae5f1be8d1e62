"""Keeps the released API contract in the repository: the base of the breaking-change gate.

    bazel run //tools/api:snapshot              after a release (or while cutting one)
    bazel run //tools/api:snapshot -- --force   replace the snapshot of this version

Copies services/digits/openapi.json and results.schema.json to
services/digits/api/releases/<API version>/ (the version is the document's
info.version). A released contract does not change: when a snapshot of the
same version exists with other content, it stops and says to raise the
version, unless --force.
"""

import argparse
import filecmp
import os
import shutil
import sys

from tools.api import breaking

CURRENT = os.path.join("services", "digits")
RELEASES = os.path.join("services", "digits", "api", "releases")


def snapshot(workspace, force=False):
    """Copies the current contract into its release folder; returns that folder."""
    current = breaking.Contract(os.path.join(workspace, CURRENT), CURRENT)
    dest = os.path.join(RELEASES, current.version)
    names = [breaking.OPENAPI, breaking.RESULTS_SCHEMA]
    absolute = os.path.join(workspace, dest)
    if os.path.isdir(absolute) and not force:
        changed = [name for name in names
                   if not os.path.exists(os.path.join(absolute, name))
                   or not filecmp.cmp(os.path.join(workspace, CURRENT, name),
                                      os.path.join(absolute, name), shallow=False)]
        if changed:
            raise breaking.ContractError(
                f"{dest} already holds API {current.version} with another "
                f"{', '.join(changed)}; a released contract does not change. Raise "
                "API_VERSION in serving/contract.py (then `bazel run "
                "//services/digits:contract.update`), or pass --force to replace it.")
    os.makedirs(absolute, exist_ok=True)
    for name in names:
        shutil.copyfile(os.path.join(workspace, CURRENT, name), os.path.join(absolute, name))
    return dest


def main(argv=None):
    """Entry point of `bazel run //tools/api:snapshot`."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--force", action="store_true",
                        help="replace an existing snapshot of the same API version")
    args = parser.parse_args(argv)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        print("snapshot: run me with `bazel run //tools/api:snapshot`.", file=sys.stderr)
        return 2
    try:
        dest = snapshot(workspace, args.force)
    except breaking.ContractError as err:
        print(f"snapshot: {err}", file=sys.stderr)
        return 2
    print(f"snapshot: wrote {dest}/{breaking.OPENAPI} and {breaking.RESULTS_SCHEMA}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
