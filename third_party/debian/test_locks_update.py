"""locks.update re-locks every manifest of third_party/debian."""

import glob
import os

from third_party.debian import locks_update

HERE = "third_party/debian"


def test_every_manifest_here_has_an_entry_in_locks_update():
    manifests = sorted(glob.glob(f"{HERE}/*.in")) + [f"{HERE}/toolchain.txt"]
    covered = sorted(args[-1] for args in locks_update.LOCKS.values())
    assert covered == manifests


def test_every_lock_here_is_written_by_locks_update():
    locks = sorted(os.path.basename(p)[:-len(".lock")] for p in glob.glob(f"{HERE}/*.lock"))
    assert locks == sorted(locks_update.LOCKS)
