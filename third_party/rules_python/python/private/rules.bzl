"""The Python rules: Bazel's native rules, as upstream rules_python wraps them."""

def py_library(**attrs):
    """A Python library. Takes the attributes of the native `py_library`."""
    native.py_library(**attrs)  # buildifier: disable=native-py

def py_binary(**attrs):
    """A Python program. Takes the attributes of the native `py_binary`."""
    native.py_binary(**attrs)  # buildifier: disable=native-py

def py_test(**attrs):
    """A Python test. Takes the attributes of the native `py_test`."""
    native.py_test(**attrs)  # buildifier: disable=native-py
