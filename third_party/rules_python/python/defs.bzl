"""Stand-in for upstream `@rules_python//python:defs.bzl`.

Same load path and names as upstream. Upstream's rules of the same era are
thin wrappers over Bazel's native Python rules, and so are these: a BUILD
file written against this file works unchanged with upstream.
"""

load("//python/private:rules.bzl", _py_binary = "py_binary", _py_library = "py_library", _py_test = "py_test")

py_library = _py_library
py_binary = _py_binary
py_test = _py_test
