"""py_binaries that //tools/tests:test_cli_convention does not run, and why.

Hand-edited. Every entry names a target of py_binaries.bzl and a reason; the
test fails on an entry that names no py_binary.
"""

CLI_WAIVERS = {
}
