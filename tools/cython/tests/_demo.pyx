# cython: boundscheck=False, wraparound=False
"""A small extension that exercises the cython_extension rule."""


def dot(const double[::1] left, const double[::1] right):
    """Dot product of two equal-length float64 vectors, computed without the GIL."""
    if left.shape[0] != right.shape[0]:
        raise ValueError(f"lengths differ: {left.shape[0]} and {right.shape[0]}")
    cdef Py_ssize_t i
    cdef double total = 0.0
    with nogil:
        for i in range(left.shape[0]):
            total += left[i] * right[i]
    return total
