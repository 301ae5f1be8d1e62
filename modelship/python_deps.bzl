"""modelship's pip repositories, for a workspace that loads modelship's rules.

The second step of the setup (modelship/repositories.bzl says the first):

    load("@modelship//modelship:python_deps.bzl", "modelship_python_deps")

    modelship_python_deps()

Defines `@pypi` (the serving runtime's lock, what every image ships),
`@pypi_build` (training), `@pypi_dev` (tests, lint, the runfiles library),
`@pypi_bench` and `@pypi_api` (the API tools' package), each from modelship's own lock under third_party/python: the
BUILD files of modelship's packages load them under these names. The
stand-in rules_python installs a whole lock in one repository, so no
`install_deps()` step follows (upstream's pip_parse needs one per lock).

A consumer's own packages go in its own lock and repository, under another
name (examples/consumer/README.md): an image's runtime lock is modelship's
plus the ones its model_image lists in `locks`.
"""

load("@rules_python//python:pip.bzl", "pip_parse")
load(":repositories.bzl", "PYTHON3")

# name -> modelship's lock. Only those modelship's loaded BUILD files need:
# serving and inference (runtime, build, bench), tools (dev), tools/api (api:
# the CI components' API gate runs @modelship//tools/api:breaking).
MODELSHIP_LOCKS = {
    "pypi": "//third_party/python:runtime.txt",
    "pypi_api": "//third_party/python:api.txt",
    "pypi_bench": "//third_party/python:bench.txt",
    "pypi_build": "//third_party/python:build.txt",
    "pypi_dev": "//third_party/python:dev.txt",
}

# buildifier: disable=unnamed-macro
def modelship_python_deps():
    """Defines modelship's pip repositories (see the file's docstring)."""
    for name, lock in MODELSHIP_LOCKS.items():
        if not native.existing_rule(name):
            pip_parse(
                name = name,
                python_interpreter = PYTHON3,
                requirements_lock = Label(lock),
            )
