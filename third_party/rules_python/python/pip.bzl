"""Stand-in for upstream `@rules_python//python:pip.bzl`: `pip_parse`.

`pip_parse(name, requirements_lock, ...)` creates the repository `@<name>`
whose `requirements.bzl` offers `requirement("pkg")`, `all_requirements`
and `install_deps()`, as upstream's does. The differences are internal: all
wheels of one lock are installed by one repository rule (upstream makes one
repository per package, which `install_deps()` declares; here it is a no-op
kept so WORKSPACE files read the same).
"""

load("//python/private:pip_repository.bzl", _pip_repository = "pip_repository")

def pip_parse(name, requirements_lock, **kwargs):
    """Installs the wheels pinned by a pip-tools lock into the repository `name`.

    Args:
      name: the repository name, e.g. "pypi": labels are "@pypi//<package>".
      requirements_lock: label of a lock made with `pip-compile --generate-hashes`.
        Every entry must be pinned with `==` and carry hashes: pip runs with
        --require-hashes, --no-deps (the lock is the full closure) and
        --only-binary=:all: (wheels only, no build step in a fetch).
      **kwargs: python_interpreter (path of the interpreter to install for;
        it should be the toolchain's), extra_pip_args, quiet, timeout.
    """
    _pip_repository(
        name = name,
        requirements_lock = requirements_lock,
        **kwargs
    )
