"""What the CI template tests share: a component project, consumer projects
and gitlab-ci-local, all offline.

The component project is a bare git repository holding this workspace's
templates/ at tag 1.0.0 (the version consumers pin). Consumer projects are git
repositories whose remote names a GitLab host; git's URL rewriting
(GIT_CONFIG_COUNT, `url.<path>.insteadOf`) sends gitlab-ci-local's
`git archive --remote` / `git ls-remote` for the component project to the bare
repository, so `include: component:` and `include: project:` resolve as they
would on GitLab, with no network.
"""

import json
import os
import shutil
import subprocess

import runfiles
import yaml

HOST = "gitlab.example.com"
COMPONENT_GROUP = "platform"
COMPONENT_PROJECT = "platform/modelship"
CONSUMER_REMOTE = f"git@{HOST}:team/digits.git"
VERSION = "1.0.0"
GIT_IDENTITY = ["-c", "user.email=ci-tests@modelship.invalid", "-c", "user.name=ci-tests",
                "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main"]
TEMPLATES = "templates"
# Predefined variables the tests set to stage a tag or merge request pipeline
# (gitlab-ci-local itself only knows branches); it warns on stdout otherwise.
SITUATION_VARIABLES = ["CI_COMMIT_TAG", "CI_COMMIT_REF_NAME", "CI_COMMIT_BRANCH",
                       "CI_PIPELINE_SOURCE", "CI_MERGE_REQUEST_IID", "CI_DEPLOY_FREEZE",
                       "CI_COMMIT_REF_PROTECTED"]
# gitlab-ci-local calls every ref unprotected; GitLab protects the default
# branch, and release tags are protected by the project's settings.
PROTECTED = ["--variable", "CI_COMMIT_REF_PROTECTED=true"]


def _runfiles():
    resolver = runfiles.Runfiles.Create()
    if resolver is None:
        raise RuntimeError("no runfiles: run this with `bazel test` or `bazel run`")
    # Folders (templates/) are not listed in a runfiles manifest, which is what
    # `bazel run` announces: resolve inside the runfiles tree it also builds.
    return runfiles.Runfiles.CreateDirectoryBased(resolver.EnvVars()["RUNFILES_DIR"])


def runfiles_root():
    """The runfiles folder of this test (holds modelship/ and external repositories)."""
    return _runfiles().EnvVars()["RUNFILES_DIR"]


def workspace_file(path):
    """A file of this workspace in the runfiles."""
    return _runfiles().Rlocation("modelship/" + path)


def gitlab_ci_local_entry():
    """The pinned gitlab-ci-local program (@gitlab_ci_local, tools/npm/npm_bundle.bzl)."""
    return _runfiles().Rlocation("gitlab_ci_local/node_modules/gitlab-ci-local/dist/index.js")


def git(cwd, *args, env=None):
    """Runs git; returns stdout."""
    proc = subprocess.run(["git"] + GIT_IDENTITY + list(args), cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          check=False)
    assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
    return proc.stdout


def copy_templates(dest):
    """Copies templates/*.yml of the workspace (runfiles) into dest/templates."""
    source = workspace_file(TEMPLATES)
    os.makedirs(os.path.join(dest, TEMPLATES), exist_ok=True)
    for name in sorted(os.listdir(source)):
        if name.endswith(".yml"):
            shutil.copyfile(os.path.join(source, name), os.path.join(dest, TEMPLATES, name))


class Offline:
    """A place with the component project served from a bare repository."""

    def __init__(self, root, self_hosted=False):
        self.root = root
        self.self_hosted = self_hosted
        self.server = os.path.join(root, "server")
        self.home = os.path.join(root, "home")
        os.makedirs(self.home, exist_ok=True)
        work = os.path.join(root, "component-src")
        os.makedirs(work)
        copy_templates(work)
        git(work, "init", "-q")
        git(work, "add", "-A")
        git(work, "commit", "-q", "-m", "components")
        git(work, "tag", VERSION)
        bare = os.path.join(self.server, COMPONENT_PROJECT + ".git")
        os.makedirs(os.path.dirname(bare), exist_ok=True)
        git(root, "clone", "-q", "--bare", work, bare)

    def env(self, extra=None, inherit=True):
        """Environment for gitlab-ci-local: private HOME, git URLs to the bare repository.
        `inherit=False` starts from PATH, USER and LANG alone: the jobs then see none
        of the calling test's Bazel variables (runfiles, TEST_*), which would mislead a
        Bazel the jobs run themselves."""
        prefix = os.path.join(self.server, COMPONENT_GROUP) + "/"
        rewrites = [
            (f"url.{prefix}.insteadOf", f"ssh://git@{HOST}:22/{COMPONENT_GROUP}/"),
            # A component pinned by commit SHA is fetched with `git archive` of that SHA.
            ("uploadarchive.allowUnreachable", "true"),
        ]
        if not self.self_hosted:
            # `git ls-remote` (to resolve a tag) uses the scp-like form. Not
            # rewritten when the consumer is the component project itself:
            # gitlab-ci-local reads the project path from its own (rewritten) remote.
            rewrites.append((f"url.{prefix}.insteadOf", f"git@{HOST}:{COMPONENT_GROUP}/"))
        base = os.environ if inherit else {key: os.environ[key] for key in
                                           ("PATH", "USER", "LANG") if key in os.environ}
        env = dict(base, HOME=self.home, GIT_CONFIG_COUNT=str(len(rewrites)))
        for index, (key, value) in enumerate(rewrites):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        env.update(extra or {})
        return env

    def consumer(self, name, pipeline, files=None, branch="main"):
        """A consumer project: a git repository with .gitlab-ci.yml (text) and files."""
        path = os.path.join(self.root, name)
        os.makedirs(path)
        with open(os.path.join(path, ".gitlab-ci.yml"), "w", encoding="utf-8") as out:
            out.write(pipeline)
        for rel, text in (files or {}).items():
            os.makedirs(os.path.dirname(os.path.join(path, rel)) or path, exist_ok=True)
            with open(os.path.join(path, rel), "w", encoding="utf-8") as out:
                out.write(text)
        init_repo(path, branch)
        return path

    def gcl(self, cwd, *args, env=None, check=True, inherit=True):
        """Runs gitlab-ci-local in cwd; returns the CompletedProcess (`inherit`: env)."""
        argv = ["node", gitlab_ci_local_entry(), "--max-job-name-padding", "0",
                "--ignore-predefined-vars", ",".join(SITUATION_VARIABLES)] + list(args)
        proc = subprocess.run(argv, cwd=cwd, env=self.env(env, inherit), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False)
        if check:
            assert proc.returncode == 0, \
                f"gitlab-ci-local {' '.join(args)} failed ({proc.returncode}):\n" \
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc

    def preview(self, cwd, *args):
        """The expanded pipeline (--preview) as text."""
        return self.gcl(cwd, "--preview", *args).stdout

    def jobs(self, cwd, *args):
        """{job name: when} of the jobs that would run (--list-json, when:never dropped)."""
        listed = json.loads(self.gcl(cwd, "--list-json", *args).stdout)
        return {job["name"]: job["when"] for job in listed if job["when"] != "never"}


def init_repo(path, branch="main", remote=CONSUMER_REMOTE):
    """Commits everything in path on `branch`, with a GitLab-like origin remote."""
    git(path, "init", "-q", "-b", branch)
    git(path, "config", "user.name", "ci-tests")
    git(path, "config", "user.email", "ci-tests@modelship.invalid")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "consumer pipeline")
    git(path, "remote", "add", "origin", remote)
    git(path, "update-ref", f"refs/remotes/origin/{branch}", "HEAD")
    git(path, "update-ref", "refs/remotes/origin/main", "HEAD")
    git(path, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/main")


def preview_documents(text):
    """The pipeline of a --preview output as a dict."""
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    assert len(documents) == 1, f"expected one document, got {len(documents)}"
    return documents[0]


def split_component(path):
    """(spec header, body) of a component template file."""
    with open(path, encoding="utf-8") as text:
        documents = list(yaml.safe_load_all(text))
    assert len(documents) == 2, f"{path}: a component is a spec header, `---`, then the body"
    return documents


def example(name):
    """Text of ci/examples/<name>.gitlab-ci.yml."""
    with open(workspace_file(f"ci/examples/{name}.gitlab-ci.yml"), encoding="utf-8") as text:
        return text.read()
