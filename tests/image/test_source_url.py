"""The image's source label comes from the commit, never from the clone.

org.opencontainers.image.source is tools/image/source-url.txt as committed:
a clone's `origin` (a local path, a URL with a token in it) never reaches it,
credentials are stripped, and CI's CI_PROJECT_URL only confirms it. The
same commit then gives the same digest from any clone
(//tests/image:test_reproducible_build builds two such clones).
"""

import os
import subprocess

import pytest

from tools.image import build

COMMITTED = "https://gitlab.example.com/platform/modelship"
TOKEN = "glpat-s3cr3t-t0ken"


def git(folder, *args):
    """Output of a git command in `folder`."""
    return subprocess.run(["git", "-C", str(folder)] + list(args), check=True,
                          stdout=subprocess.PIPE, text=True).stdout


@pytest.fixture(name="clone")
def fixture_clone(tmp_path):
    """A repository holding the setting, and a clone of it whose origin is a local path."""
    origin = tmp_path / "origin"
    (origin / "tools" / "image").mkdir(parents=True)
    (origin / build.SOURCE_URL_FILE).write_text(f"# the project\n{COMMITTED}\n")
    git(tmp_path, "init", "--quiet", str(origin))
    git(origin, "add", ".")
    git(origin, "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "--quiet",
        "-m", "setting")
    clone = tmp_path / "builds" / "clone"
    subprocess.run(["git", "clone", "--quiet", str(origin), str(clone)], check=True)
    return clone


def test_a_clone_whose_origin_is_a_local_path_gets_the_committed_url(clone, tmp_path):
    assert git(clone, "remote", "get-url", "origin").strip() == str(tmp_path / "origin")
    url = build.source_url(str(clone))
    assert url == COMMITTED
    assert str(tmp_path) not in url


def test_a_clone_whose_origin_carries_a_token_gets_the_committed_url(clone, capsys):
    git(clone, "remote", "set-url", "origin",
        f"https://ci-bot:{TOKEN}@mirror.example.org/elsewhere/modelship.git")
    assert build.source_url(str(clone)) == COMMITTED
    assert TOKEN not in capsys.readouterr().err


def test_the_label_is_the_committed_url_whatever_the_clone_s_remote(clone):
    labels = []
    for remote in (f"https://u:{TOKEN}@a.example/x.git", str(clone.parent), "git@b:y/z.git"):
        git(clone, "remote", "set-url", "origin", remote)
        labels.append(build.source_url(str(clone)))
    assert labels == [COMMITTED] * 3


def test_credentials_in_the_committed_setting_are_stripped_and_reported_without_them(
        clone, capsys):
    (clone / build.SOURCE_URL_FILE).write_text(
        f"https://deploy:{TOKEN}@gitlab.example.com/platform/modelship\n")
    assert build.source_url(str(clone)) == COMMITTED
    err = capsys.readouterr().err
    assert "holds credentials" in err and build.SOURCE_URL_FILE in err
    assert TOKEN not in err


def test_ci_naming_the_same_project_is_quiet(clone, capsys):
    for claimed in (COMMITTED, COMMITTED + "/", COMMITTED + ".git",
                    f"https://gitlab-ci-token:{TOKEN}@GitLab.example.com/platform/modelship"):
        assert build.source_url(str(clone), claimed) == COMMITTED
    assert capsys.readouterr().err == ""


def test_ci_naming_another_project_warns_and_the_label_stays_committed(clone, capsys):
    claimed = f"https://gitlab-ci-token:{TOKEN}@gitlab.example.com/fork/modelship"
    assert build.source_url(str(clone), claimed) == COMMITTED
    err = capsys.readouterr().err
    assert "warning: CI says the project is https://gitlab.example.com/fork/modelship" in err
    assert build.SOURCE_URL_FILE in err
    assert TOKEN not in err


@pytest.mark.parametrize("content, problem", [
    ("/srv/git/modelship.git\n", "must be an https:// URL"),
    ("git@gitlab.example.com:platform/modelship.git\n", "must be an https:// URL"),
    ("file:///srv/git/modelship\n", "must be an https:// URL"),
    ("# nothing here\n", "must hold one URL line, found 0"),
    (f"{COMMITTED}\n{COMMITTED}\n", "must hold one URL line, found 2"),
])
def test_a_bad_setting_is_refused_naming_the_file(clone, content, problem):
    (clone / build.SOURCE_URL_FILE).write_text(content)
    with pytest.raises(build.BuildError) as refused:
        build.source_url(str(clone))
    assert build.SOURCE_URL_FILE in str(refused.value)
    assert problem in str(refused.value)


def test_a_missing_setting_is_refused_with_the_fix(tmp_path):
    with pytest.raises(build.BuildError) as refused:
        build.source_url(str(tmp_path))
    assert f"{build.SOURCE_URL_FILE} is missing: commit it" in str(refused.value)


def test_strip_credentials_keeps_everything_but_user_and_password():
    assert build.strip_credentials(f"https://user:{TOKEN}@host:8443/a/b.git?x=1") == \
        "https://host:8443/a/b.git?x=1"
    assert build.strip_credentials("https://host/a") == "https://host/a"


def test_this_project_s_committed_setting_is_valid(capsys):
    # runfiles: tools/image/source-url.txt is in this test's data
    assert build.source_url(os.getcwd()).startswith("https://")
    assert capsys.readouterr().err == ""
