"""A copy of examples/consumer, made a git repository of its own, that depends on
this checkout (what test_consumer and test_consumer_pipeline run)."""

import os
import re
import shutil
import subprocess

CONSUMER = "examples/consumer"
# Left out of the copy: what a build in the checkout's own copy leaves behind.
NOT_COPIED = ("bazel-", "dist", ".bazelrc.user", "__pycache__", ".gitlab-ci-local",
              ".modelship")


def checkout():
    """The source tree this test was built from (its WORKSPACE links back to it)."""
    return os.path.dirname(os.path.realpath("WORKSPACE"))


def copy_consumer(dest, remote=None):
    """examples/consumer at `dest`, its WORKSPACE's local_repository pointing at this
    checkout, committed on `main` (with an `origin` remote and its branch when
    `remote` is given, as a CI checkout has)."""
    shutil.copytree(os.path.join(checkout(), CONSUMER), dest, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n.startswith(NOT_COPIED)])
    workspace = os.path.join(dest, "WORKSPACE")
    with open(workspace, encoding="utf-8") as text:
        original = text.read()
    rewritten = re.sub(r'path = "\.\./\.\."', f'path = "{checkout()}"', original)
    assert rewritten != original, "examples/consumer/WORKSPACE no longer has path = \"../..\""
    with open(workspace, "w", encoding="utf-8") as out:
        out.write(rewritten)
    git = ["git", "-C", dest, "-c", "user.name=Flowers Team", "-c", "user.email=team@example.com"]
    steps = [["init", "-q", "-b", "main"], ["add", "-A"],
             ["commit", "-q", "-m", "The flowers service"]]
    if remote:
        steps += [["remote", "add", "origin", remote],
                  ["update-ref", "refs/remotes/origin/main", "HEAD"],
                  ["symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main"]]
    for argv in steps:
        subprocess.run(git + argv, check=True)
