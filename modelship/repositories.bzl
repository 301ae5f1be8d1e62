"""modelship's dependencies, for a workspace that loads modelship's rules.

In the consumer's WORKSPACE, after the repository `modelship` itself:

    load("@modelship//modelship:repositories.bzl", "modelship_dependencies")

    modelship_dependencies()

    load("@modelship//modelship:python_deps.bzl", "modelship_python_deps")

    modelship_python_deps()

Two steps, as rules_python's own setup: the second file loads
`@rules_python`, which only exists once the first has run.

`modelship_dependencies()` defines what Bazel 4.2.3 would download for
itself (offline, modelship ships stand-ins: third_party/bazel/README.md),
the stand-in `@rules_python` (third_party/rules_python/README.md) and the
interpreter `@system_python` with its toolchain, registered. The repository
names are modelship's own: its BUILD files refer to them, so a consumer must
not define them again (name its own pip repositories otherwise, e.g.
`<team>_pypi`).

modelship's own WORKSPACE sets up the same repositories itself (it is the
root there and names the folders directly); this file finds them inside
whatever folder the repository `modelship` was fetched to.
"""

load("//tools/python:toolchain.bzl", "system_python")

# Debian bookworm's python3, the package the production image is built from.
PYTHON3 = "/usr/bin/python3"
PYTHON_VERSION = "3.11"

def _modelship_folder_impl(rctx):
    # Label() of a file at modelship's root: its folder, wherever it was fetched.
    root = rctx.path(Label("//:WORKSPACE")).dirname
    folder = root
    for part in rctx.attr.folder.split("/"):
        folder = folder.get_child(part)
    if not folder.exists:
        fail("modelship: %s is missing from %s: fetch a complete modelship release" %
             (rctx.attr.folder, root))
    for child in folder.readdir():
        rctx.symlink(child, child.basename)

_modelship_folder = repository_rule(
    implementation = _modelship_folder_impl,
    doc = "A repository made of a folder of modelship's (a nested workspace there).",
    attrs = {"folder": attr.string(mandatory = True)},
    local = True,
)

def _maybe(rule, name, **kwargs):
    """Defines the repository unless the workspace already has one of that name."""
    if not native.existing_rule(name):
        rule(name = name, **kwargs)

# buildifier: disable=unnamed-macro
def modelship_dependencies():
    """Defines the repositories modelship's rules need, and registers its toolchain."""

    # Stand-ins for what Bazel 4.2.3 fetches on its own.
    _maybe(_modelship_folder, "rules_cc", folder = "third_party/bazel/rules_cc")
    _maybe(
        _modelship_folder,
        "remote_coverage_tools",
        folder = "third_party/bazel/remote_coverage_tools",
    )

    # Debian's bazel-rules-java installs upstream rules_java 4.0.0 here.
    _maybe(native.local_repository, "rules_java", path = "/usr/share/bazel/rules/java")
    _maybe(_modelship_folder, "rules_python", folder = "third_party/rules_python")
    _maybe(
        system_python,
        "system_python",
        expected_version = PYTHON_VERSION,
        interpreter_path = PYTHON3,
    )
    native.register_toolchains("@system_python//:toolchain")
