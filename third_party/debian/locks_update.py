"""Re-locks every Debian manifest of this folder (tools/debian/lock.py on each).

    bazel run //third_party/debian:locks.update            all three locks
    bazel run //third_party/debian:locks.update -- --only base
    bazel test //third_party/debian:locks.test             locks match manifests

base.in and dev.in are resolved with their dependencies; toolchain.txt is a
list of exact pins, locked as it is (what tools/bootstrap installs). Needs
`apt-get update` first: versions come from apt's index.
"""

from tools import cli
from tools.debian import lock

HERE = "third_party/debian"
# name -> the arguments of tools/debian/lock.py that write <name>.lock
LOCKS = {
    "base": [f"{HERE}/base.in"],
    "dev": [f"{HERE}/dev.in"],
    "toolchain": ["--pins", f"{HERE}/toolchain.txt"],
}


def main(argv=None):
    """Entry point."""
    parser = cli.parser(__doc__)
    parser.add_argument("--only", choices=sorted(LOCKS), action="append",
                        help="re-lock only this one (repeatable)")
    args = parser.parse_args(argv)
    cli.workspace_root()
    for name in args.only or sorted(LOCKS):
        status = lock.main(LOCKS[name])
        if status:
            raise cli.Failure(f"re-locking {name} failed (exit {status})")
    return 0


if __name__ == "__main__":
    cli.run(main)
