# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""Forward pass of the classifier over a whole batch, in one call.

Private to `inference`: use `inference.model.Model`. Same maths as
`inference.reference` (read its docstring first):

  * layer 1 multiplies integer input levels (0..16) by int8 weights in integer
    arithmetic, so its accumulators equal numpy's bit for bit;
  * the rest (scale, bias, ReLU, layer 2, softmax) rounds like numpy per
    operation but sums layer 2 in its own order and takes the softmax in
    float32 (the reference in float64): probabilities agree to ~1e-7;
  * each row is computed on its own by the same code path, whatever else is
    in the batch, so a row's result never depends on its neighbours. Keep it
    one path: with FMA contraction (gcc's default where the target has FMA)
    two copies of a loop may round differently.

Why the loops look the way they do: gcc 12 at -O2 vectorizes only loops whose
trip count is a known multiple of the vector width and whose stores cannot
alias their loads (its "very cheap" cost model). So layer widths are padded by
the caller to whole blocks, trip counts are masked to show gcc that they are
multiples, and accumulators are local arrays. Each accumulator update sums a
group of 8 products, to spend one load/store of it per 8 multiply-adds.
Layer 1 runs in 16-bit lanes (8 per SSE2 register): a level times a weight is
at most 16 * 127 = 2032 in magnitude and 8 of them at most 16256, which fits in
int16; the groups are then added into int32 accumulators.
"""

from cpython.object cimport PyObject, PyTypeObject
from cpython.sequence cimport PySequence_Fast_GET_SIZE, PySequence_Fast_ITEMS
from libc.math cimport expf

cdef enum:
    # Layer widths are padded by the caller to whole blocks (zero weights).
    HIDDEN_BLOCK = 16
    CLASS_BLOCK = 4
    # Products summed per accumulator update (see above). MAX_LEVEL * 127 *
    # GROUP must stay below 32768 for the int16 sums of layer 1.
    GROUP = 8
    # Local (stack) scratch sizes; checked when a Network is built.
    MAX_INPUTS = 1024
    MAX_HIDDEN = 1024
    MAX_CLASSES = 256
    MAX_LEVEL = 16
    # Below this many rows, releasing the GIL costs more than the work.
    NOGIL_MIN_ROWS = 8

# For the Python side, which pads the weights.
HIDDEN_PADDING = HIDDEN_BLOCK
CLASS_PADDING = CLASS_BLOCK

cdef extern from "Python.h":
    # Borrowed-pointer forms of the C API, for the inner loop of pack_rows.
    PyTypeObject PyFloat_Type
    PyTypeObject PyLong_Type
    PyTypeObject* Py_TYPE(PyObject* obj) noexcept
    double _float_value "PyFloat_AS_DOUBLE" (PyObject* obj) noexcept
    double _int_value "PyLong_AsDouble" (PyObject* obj) noexcept
    PyObject* PyErr_Occurred() noexcept
    void PyErr_Clear() noexcept

ctypedef fused pixel_t:
    float
    double


cdef class Network:
    """The weights of the two layers, padded, bound once at load time.

    w1: (n_inputs, h_pad) int16 holding the int8 weights; s1, b1: (h_pad,) float32
    w2: (h_pad, c_pad) float32 holding the int8 weights; s2, b2: (c_pad,) float32
    h_pad is a multiple of HIDDEN_PADDING, c_pad of CLASS_PADDING; padding rows
    and columns are zero. The first n_classes columns are the classes.
    """

    cdef const short[:, ::1] w1
    cdef const float[::1] s1
    cdef const float[::1] b1
    cdef const float[:, ::1] w2
    cdef const float[::1] s2
    cdef const float[::1] b2
    cdef readonly Py_ssize_t n_inputs
    cdef readonly Py_ssize_t n_classes
    cdef readonly Py_ssize_t h_pad
    cdef Py_ssize_t c_pad
    cdef double max_level

    def __init__(self, const short[:, ::1] w1, const float[::1] s1, const float[::1] b1,
                 const float[:, ::1] w2, const float[::1] s2, const float[::1] b2,
                 Py_ssize_t n_classes, int max_level):
        cdef Py_ssize_t i, j
        if w1.shape[1] % HIDDEN_BLOCK or w2.shape[1] % CLASS_BLOCK:
            raise ValueError(f"pad hidden units to a multiple of {HIDDEN_BLOCK} and "
                             f"classes to a multiple of {CLASS_BLOCK}")
        if not (s1.shape[0] == b1.shape[0] == w1.shape[1] == w2.shape[0]
                and s2.shape[0] == b2.shape[0] == w2.shape[1]):
            raise ValueError("inconsistent layer shapes")
        if not (0 < w1.shape[0] <= MAX_INPUTS and w1.shape[1] <= MAX_HIDDEN
                and 0 < n_classes <= w2.shape[1] <= MAX_CLASSES
                and 0 < max_level <= MAX_LEVEL):
            raise ValueError(f"sizes exceed the kernel limits ({MAX_INPUTS} inputs, "
                             f"{MAX_HIDDEN} hidden units, {MAX_CLASSES} classes, "
                             f"levels up to {MAX_LEVEL})")
        for i in range(w1.shape[0]):
            for j in range(w1.shape[1]):
                if not -127 <= w1[i, j] <= 127:
                    raise ValueError("layer 1 weights must lie in [-127, 127]")
        self.w1, self.s1, self.b1 = w1, s1, b1
        self.w2, self.s2, self.b2 = w2, s2, b2
        self.n_inputs = w1.shape[0]
        self.h_pad = w1.shape[1]
        self.c_pad = w2.shape[1]
        self.n_classes = n_classes
        self.max_level = max_level

    def forward_f32(self, const float[:, :] x, float[:, ::1] out):
        """Probabilities of the float32 rows `x` into `out` (see `_forward`)."""
        return _forward(self, x, out)

    def forward_f64(self, const double[:, :] x, float[:, ::1] out):
        """Probabilities of the float64 rows `x` into `out` (see `_forward`)."""
        return _forward(self, x, out)

    def layer1_f64(self, const double[:, :] x, int[:, ::1] out):
        """Layer 1's integer accumulators of `x` into `out` (n, h_pad); for tests.

        Returns -1, or the flat index of the first invalid value as `_forward` does.
        """
        cdef Py_ssize_t n, nnz
        cdef short levels[MAX_INPUTS + GROUP]
        cdef int index[MAX_INPUTS + GROUP]
        if x.shape[1] != self.n_inputs or out.shape[0] != x.shape[0] \
                or out.shape[1] != self.h_pad:
            raise ValueError("layer1_f64: shape mismatch")
        for n in range(x.shape[0]):
            nnz = _quantize_row(self, x, n, levels, index)
            if nnz < 0:
                return n * self.n_inputs - nnz - 1
            _row(self, levels, index, nnz, NULL, &out[n, 0])
        return -1


def pack_rows(rows, Py_ssize_t n_inputs, Py_ssize_t height, double[::1] out):
    """Copies a batch of Python rows into `out` (len(rows) * n_inputs float64), fast.

    `rows` is a list or tuple; each row a list or tuple of `n_inputs` numbers,
    or of `height` lists or tuples of n_inputs / height numbers (an image), the
    same form for every row; a number is an exact `int` or `float` (so never a
    bool). Values are copied as they are: `_forward` checks their range.
    Returns -1 when every row was copied, else the index of the first row not
    in that form (or with an int too large for a double); the caller then
    explains the problem or converts the row itself.
    """
    cdef Py_ssize_t n, r, n_rows = len(rows), width = 0, form = -1
    cdef double* dst
    if out.shape[0] != n_rows * n_inputs:
        raise ValueError("pack_rows: out must hold len(rows) * n_inputs values")
    if n_rows == 0:
        return -1
    if 0 < height < n_inputs and n_inputs % height == 0:
        width = n_inputs // height
    dst = &out[0]
    for n in range(n_rows):
        row = rows[n]
        if type(row) is not list and type(row) is not tuple:
            return n
        if form != 1 and PySequence_Fast_GET_SIZE(row) == n_inputs:
            if _pack_numbers(row, n_inputs, dst) < 0:
                return n
            form = 0
        elif form != 0 and width and PySequence_Fast_GET_SIZE(row) == height:
            for r in range(height):
                if _pack_numbers(<object>PySequence_Fast_ITEMS(row)[r], width,
                                 dst + r * width) < 0:
                    return n
            form = 1
        else:
            return n
        dst += n_inputs
    return -1


cdef int _pack_numbers(object seq, Py_ssize_t count, double* dst) except -2:
    """Copies a list or tuple of exactly `count` exact ints or floats to dst; else -1.

    Reads the items as borrowed pointers (no reference counting): nothing here
    can run Python code, so `seq` cannot change meanwhile.
    """
    cdef Py_ssize_t i
    cdef PyObject** items
    cdef PyObject* item
    if type(seq) is not list and type(seq) is not tuple:
        return -1
    if PySequence_Fast_GET_SIZE(seq) != count:
        return -1
    items = PySequence_Fast_ITEMS(seq)
    for i in range(count):
        item = items[i]
        if Py_TYPE(item) is &PyFloat_Type:
            dst[i] = _float_value(item)
        elif Py_TYPE(item) is &PyLong_Type:
            dst[i] = _int_value(item)
            if dst[i] == -1.0 and PyErr_Occurred() != NULL:  # too large for a double
                PyErr_Clear()
                return -1
        else:
            return -1
    return 0


cdef Py_ssize_t _forward(Network net, const pixel_t[:, :] x, float[:, ::1] out) except -2:
    """Runs the network on every row of `x`, writing probabilities into `out`.

    `x` may have any strides (no copy for slices); `out` is (n, n_classes).
    Returns -1 when every value was valid, else the flat index row * n_inputs +
    column of the first value that is NaN, infinite or outside [0, max_level];
    the caller turns it into an error and discards `out`.
    """
    if x.shape[1] != net.n_inputs or out.shape[0] != x.shape[0] \
            or out.shape[1] != net.n_classes:
        raise ValueError("forward: shape mismatch between the batch, the output and the model")
    cdef Py_ssize_t result
    if x.shape[0] >= NOGIL_MIN_ROWS:
        with nogil:
            result = _rows(net, x, out)
    else:
        result = _rows(net, x, out)
    return result


cdef Py_ssize_t _rows(Network net, const pixel_t[:, :] x, float[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t n, nnz
    cdef short levels[MAX_INPUTS + GROUP]
    cdef int index[MAX_INPUTS + GROUP]
    for n in range(x.shape[0]):
        nnz = _quantize_row(net, x, n, levels, index)
        if nnz < 0:
            return n * net.n_inputs - nnz - 1
        _row(net, levels, index, nnz, &out[n, 0], NULL)
    return -1


cdef inline Py_ssize_t _quantize_row(Network net, const pixel_t[:, :] x, Py_ssize_t n,
                                     short* levels, int* index) noexcept nogil:
    """Validates row n and lists its non-zero levels floor(v + 0.5) (v in float64).

    Returns the length of the list, padded with zero levels to a whole number
    (at least one) of GROUPs, or -(column + 1) of the first invalid value.
    """
    cdef Py_ssize_t i, nnz = 0
    cdef double v, top = net.max_level
    cdef short q
    for i in range(net.n_inputs):
        v = x[n, i]
        if not (v >= 0.0 and v <= top):  # also false for NaN
            return -(i + 1)
        q = <short>(v + 0.5)  # v >= 0, so truncation is floor
        levels[nnz] = q
        index[nnz] = <int>i
        nnz += q != 0  # branch-free compaction: a zero level is overwritten next
    while nnz % GROUP or nnz == 0:
        levels[nnz] = 0
        index[nnz] = 0
        nnz += 1
    return nnz


cdef inline short _int16_dot(const short* q, const short** r, Py_ssize_t o) noexcept nogil:
    """sum_k q[k] * r[k][o] over a GROUP; |sum| <= 8 * 16 * 127 < 2**15, so exact in int16."""
    return <short>(((q[0] * r[0][o] + q[1] * r[1][o]) + (q[2] * r[2][o] + q[3] * r[3][o]))
                   + ((q[4] * r[4][o] + q[5] * r[5][o]) + (q[6] * r[6][o] + q[7] * r[7][o])))


cdef inline float _float_dot(const float* h, const float* r, Py_ssize_t stride,
                             Py_ssize_t o) noexcept nogil:
    """sum_k h[k] * r[k * stride + o] over a GROUP, in a fixed order."""
    return ((h[0] * r[o] + h[1] * r[stride + o])
            + (h[2] * r[2 * stride + o] + h[3] * r[3 * stride + o])) \
        + ((h[4] * r[4 * stride + o] + h[5] * r[5 * stride + o])
           + (h[6] * r[6 * stride + o] + h[7] * r[7 * stride + o]))


cdef void _row(Network net, const short* levels, const int* index, Py_ssize_t nnz,
               float* out, int* layer1_out) noexcept nogil:
    """One row: layer 1 from the compacted levels, ReLU, layer 2, softmax into `out`.

    With `layer1_out` set, copies layer 1's accumulators there and stops (tests).
    All scratch is local, so gcc knows no store aliases a weight; the first
    group is assigned rather than added, which saves zeroing (a memset call).
    """
    # Masking the low bits shows gcc each trip count is a multiple of the vector
    # width, which its -O2 cost model requires (they already are multiples).
    cdef Py_ssize_t h_pad = net.h_pad & ~(HIDDEN_BLOCK - 1)
    cdef Py_ssize_t c_pad = net.c_pad & ~(CLASS_BLOCK - 1)
    cdef Py_ssize_t g, k, o, n_classes = net.n_classes
    cdef const short* w1 = &net.w1[0, 0]
    cdef const float* w2 = &net.w2[0, 0]
    cdef const float* s1 = &net.s1[0]
    cdef const float* b1 = &net.b1[0]
    cdef const short* r[GROUP]
    cdef const float* r2
    cdef short q[GROUP]
    cdef int acc[MAX_HIDDEN]
    cdef float hidden[MAX_HIDDEN]
    cdef float logits[MAX_CLASSES]
    cdef float t, top, total

    # Layer 1: exact integer sums of level * weight over the non-zero inputs.
    for g in range(nnz // GROUP):
        for k in range(GROUP):
            q[k] = levels[g * GROUP + k]
            r[k] = w1 + index[g * GROUP + k] * h_pad
        if g == 0:
            for o in range(h_pad):
                acc[o] = _int16_dot(q, r, o)
        else:
            for o in range(h_pad):
                acc[o] += _int16_dot(q, r, o)
    if layer1_out != NULL:
        for o in range(h_pad):
            layer1_out[o] = acc[o]
        return

    # Scale, bias, ReLU: float32, one rounding per operation (as numpy).
    for o in range(h_pad):
        t = <float>acc[o] * s1[o]  # exact conversion: |acc| < 2**24
        t = t + b1[o]
        hidden[o] = t if t > 0 else 0

    # Layer 2: GROUP hidden units per update, always in the same order.
    for g in range(h_pad // GROUP):
        r2 = w2 + g * GROUP * c_pad
        if g == 0:
            for o in range(c_pad):
                logits[o] = _float_dot(hidden, r2, c_pad, o)
        else:
            for o in range(c_pad):
                logits[o] += _float_dot(&hidden[g * GROUP], r2, c_pad, o)

    # Softmax over the real classes.
    for k in range(n_classes):
        t = logits[k] * net.s2[k]
        logits[k] = t + net.b2[k]
    top = logits[0]
    for k in range(1, n_classes):
        if logits[k] > top:
            top = logits[k]
    total = 0
    for k in range(n_classes):
        logits[k] = expf(logits[k] - top)
        total += logits[k]
    total = 1 / total
    for k in range(n_classes):
        out[k] = logits[k] * total
