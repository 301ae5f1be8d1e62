# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False, nonecheck=False
"""The sentence encoder's forward pass (BERT + mean pooling + L2), nogil.

Private to `inference.text`: use `inference.text.encoder.SentenceEncoder`.
The kernels are C in `_encoder_kernels.h` (read its header comment: CPU
dispatch, and why a row's result never depends on its batch). This module
binds them to Python buffers: the artifact's tensors (memoryviews of the file
bytes, cast to bytes) in, `array('f')` out. No numpy.

Sequences are packed back to back (no padding tokens): `forward(ids, offsets)`
embeds sequence s = ids[offsets[s]:offsets[s + 1]].
"""

from libc.stdint cimport int32_t, uint8_t, uint16_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

cdef extern from "_encoder_kernels.h" nogil:
    enum:
        ENC_NR
        ENC_ROW_ALIGN
        ENC_ATT_Q
        ENC_F32
        ENC_F16
        ENC_I8
    ctypedef struct enc_linear:
        long n, k
    ctypedef struct enc_layer:
        enc_linear qkv, out, inter, out2
        float *norm1_g
        float *norm1_b
        float *norm2_g
        float *norm2_b
    ctypedef struct enc_model:
        long layers, hidden, heads, inter, max_positions, vocab, type_vocab
        float eps
        const void *word
        int word_dtype
        const float *word_scale
        float *position
        float *type0
        float *norm_g
        float *norm_b
        enc_layer *layer
    void *enc_alloc(size_t nbytes)
    void enc_linear_free(enc_linear *lin)
    int enc_linear_pack(enc_linear *lin, const void *w, int dtype, const float *scale,
                        const float *bias, long n, long k, int int8_act)
    void enc_quantize_rows(const float *x, long ldx, long m, long k, uint8_t *q, float *sx)
    void enc_gemm_q(const enc_linear *lin, const uint8_t *q, const float *sx, long m, float *y,
                    long ldy, long p0, long p1)
    void enc_row_to_float(const void *table, int dtype, const float *scale, long row,
                          long width, float *out)
    void enc_gemm(const enc_linear *lin, const float *x, long ldx, long m, float *y, long ldy,
                  long p0, long p1)
    void enc_attention(const float *qkv, long hidden, long head, long head_dim, long len,
                       float *ctx, float *scratch)
    void enc_add_norm(const float *a, const float *b, const float *gamma, const float *beta,
                      float eps, long width, float *out)
    void enc_gelu(float *x, long count)
    int enc_forward_threads(const enc_model *m, const int32_t *ids, const long *offsets,
                            long n_seq, float *out, int n_threads)
    const char *enc_init(const char *force)
    float enc_half_to_float(uint16_t h)

# Linear layers and tables need these multiples (checked by spec.py first).
COLUMN_MULTIPLE = ENC_NR
HEAD_DIM_MULTIPLE = 16
DTYPES = {"float32": ENC_F32, "float16": ENC_F16, "int8": ENC_I8}

_ISA = enc_init(NULL).decode()


def isa():
    """The instruction set the kernels run with: 'avx512', 'avx2' or 'x86-64'."""
    return _ISA


def use_isa(str force=None):
    """Re-picks the kernels, at most `force` ('avx2', 'x86-64'; None: the best). Tests only:
    not thread-safe with running forward passes."""
    global _ISA
    cdef bytes raw = force.encode() if force is not None else None
    _ISA = enc_init(<const char*>raw if raw is not None else NULL).decode()
    return _ISA


cdef const void *_ptr(const unsigned char[::1] raw) except NULL:
    if raw.shape[0] == 0:
        raise ValueError("empty tensor")
    return &raw[0]


cdef float *_table(const unsigned char[::1] raw, int dtype, object scale, long rows,
                   long cols) except NULL:
    """A copy of a 2-D table as float32 (an int8 one times its row scales)."""
    cdef const float *sp = NULL
    cdef float *out = <float*>enc_alloc(rows * cols * 4)
    cdef long r
    if out == NULL:
        raise MemoryError()
    if scale is not None:
        sp = <const float*>_ptr(scale)
    for r in range(rows):
        enc_row_to_float(_ptr(raw), dtype, sp, r, cols, out + r * cols)
    return out


cdef float *_vector(const unsigned char[::1] raw, long n) except NULL:
    cdef float *out = <float*>enc_alloc(n * 4)
    if out == NULL:
        raise MemoryError()
    memcpy(out, _ptr(raw), n * 4)
    return out


cdef class Encoder:
    """Packed weights of one model. Safe to share between threads (read-only after init).

    `weights`: {name: (raw bytes view, dtype name, scale bytes view or None)} for every
    2-D weight, and `vectors` {name: raw bytes view} for 1-D float32 tensors, as spec.py
    checked. `int8_activations`: the layers' int8 weights multiply int8 codes of the
    activations (each token row on its own scale) in integer arithmetic.
    """

    cdef enc_model m
    cdef object _keep  # the word table's memory (borrowed by m.word)
    cdef int int8_act

    def __cinit__(self):
        self.m.layer = NULL
        self.m.layers = 0

    def __init__(self, dict dims, dict weights, dict vectors, bint int8_activations=False):
        cdef long l, H, I
        cdef enc_layer *L
        self.int8_act = int8_activations
        m = &self.m
        m.layers, m.hidden, m.heads = dims["layers"], dims["hidden"], dims["heads"]
        m.inter, m.max_positions = dims["intermediate"], dims["max_positions"]
        m.vocab, m.type_vocab, m.eps = dims["vocab_size"], dims["type_vocab_size"], dims["eps"]
        H, I = m.hidden, m.inter
        if H % ENC_NR or I % ENC_NR or (H // m.heads) % HEAD_DIM_MULTIPLE or H % m.heads:
            raise ValueError("unsupported dimensions")
        raw, dtype, scale = weights["embeddings.word.weight"]
        self._keep = (raw, scale)
        m.word = _ptr(raw)
        m.word_dtype = DTYPES[dtype]
        m.word_scale = <const float*>_ptr(scale) if scale is not None else NULL
        raw, dtype, scale = weights["embeddings.position.weight"]
        m.position = _table(raw, DTYPES[dtype], scale, m.max_positions, H)
        raw, dtype, scale = weights["embeddings.token_type.weight"]
        m.type0 = _table(raw, DTYPES[dtype], scale, 1, H)
        m.norm_g = _vector(vectors["embeddings.norm.weight"], H)
        m.norm_b = _vector(vectors["embeddings.norm.bias"], H)
        m.layer = <enc_layer*>enc_alloc(m.layers * sizeof(enc_layer))
        if m.layer == NULL:
            raise MemoryError()
        for l in range(m.layers):
            L = &m.layer[l]
            p = f"layers.{l}."
            self._pack(&L.qkv, weights, vectors, p + "attention.qkv", 3 * H, H)
            self._pack(&L.out, weights, vectors, p + "attention.output", H, H)
            self._pack(&L.inter, weights, vectors, p + "ffn.intermediate", I, H)
            self._pack(&L.out2, weights, vectors, p + "ffn.output", H, I)
            L.norm1_g = _vector(vectors[p + "attention.norm.weight"], H)
            L.norm1_b = _vector(vectors[p + "attention.norm.bias"], H)
            L.norm2_g = _vector(vectors[p + "ffn.norm.weight"], H)
            L.norm2_b = _vector(vectors[p + "ffn.norm.bias"], H)

    cdef _pack(self, enc_linear *lin, dict weights, dict vectors, str name, long n, long k):
        raw, dtype, scale = weights[name + ".weight"]
        cdef const unsigned char[::1] bias = vectors[name + ".bias"]
        cdef const float *sp = <const float*>_ptr(scale) if scale is not None else NULL
        if self.int8_act and dtype != "int8":
            raise ValueError(f"int8 activations need int8 weights; {name} is {dtype}")
        if enc_linear_pack(lin, _ptr(raw), DTYPES[dtype], sp, <const float*>_ptr(bias), n, k,
                           self.int8_act):
            raise MemoryError()

    def __dealloc__(self):
        cdef long l
        free(self.m.position)
        free(self.m.type0)
        free(self.m.norm_g)
        free(self.m.norm_b)
        if self.m.layer != NULL:
            for l in range(self.m.layers):
                L = &self.m.layer[l]
                enc_linear_free(&L.qkv)
                enc_linear_free(&L.out)
                enc_linear_free(&L.inter)
                enc_linear_free(&L.out2)
                free(L.norm1_g)
                free(L.norm1_b)
                free(L.norm2_g)
                free(L.norm2_b)
            free(self.m.layer)

    @property
    def hidden(self):
        return self.m.hidden

    def forward(self, const int32_t[::1] ids, const long[::1] offsets, float[::1] out,
                int threads=1):
        """Unit embeddings of the packed sequences into `out` (n_seq * hidden floats).

        offsets: n_seq + 1 ascending indices into ids, offsets[0] == 0. Every
        sequence holds 1..max_positions token ids below vocab_size; raises
        ValueError otherwise (the caller checks first, for its own messages).
        """
        cdef long n_seq = offsets.shape[0] - 1, s, t, length
        cdef int status
        if n_seq < 0 or offsets[0] != 0 or offsets[n_seq] != ids.shape[0] \
                or out.shape[0] != n_seq * self.m.hidden:
            raise ValueError("forward: inconsistent ids, offsets and output sizes")
        for s in range(n_seq):
            length = offsets[s + 1] - offsets[s]
            if length < 1 or length > self.m.max_positions:
                raise ValueError(f"forward: sequence {s} has {length} tokens; "
                                 f"1 to {self.m.max_positions} are allowed")
        for t in range(ids.shape[0]):
            if ids[t] < 0 or ids[t] >= self.m.vocab:
                raise ValueError(f"forward: token id {ids[t]} is outside the vocabulary "
                                 f"(0..{self.m.vocab - 1})")
        if n_seq == 0:
            return
        with nogil:
            status = enc_forward_threads(&self.m, &ids[0], &offsets[0], n_seq, &out[0], threads)
        if status:
            raise MemoryError("forward: out of memory for the activations")


# --- single kernels, for the tests ----------------------------------------------------------

def kernel_linear(const float[:, ::1] x, const unsigned char[::1] w, str dtype, scale,
                  const float[::1] bias, float[:, ::1] y, bint int8_activations=False):
    """y = x @ W.T + b with W [n, k] stored as `dtype` (int8: times `scale`); with
    int8_activations, x is rounded to int8 codes per row first."""
    cdef enc_linear lin
    cdef long m = x.shape[0], n = y.shape[1], k = x.shape[1]
    cdef long rows = (m + ENC_ROW_ALIGN - 1) // ENC_ROW_ALIGN * ENC_ROW_ALIGN
    cdef const float *sp = <const float*>_ptr(scale) if scale is not None else NULL
    cdef float *xp
    cdef float *yp
    cdef float *sx
    cdef uint8_t *qp
    if y.shape[0] != m or bias.shape[0] != n or n % ENC_NR:
        raise ValueError("kernel_linear: shapes")
    if k % 4 or (int8_activations and dtype != "int8"):
        raise ValueError("kernel_linear: k must be a multiple of 4; int8 activations need "
                         "int8 weights")
    if enc_linear_pack(&lin, _ptr(w), DTYPES[dtype], sp, &bias[0], n, k, int8_activations):
        raise MemoryError()
    xp = <float*>enc_alloc(rows * k * 4)
    yp = <float*>enc_alloc(rows * n * 4)
    qp = <uint8_t*>enc_alloc(rows * k)
    sx = <float*>enc_alloc(rows * 4)
    memcpy(xp, &x[0, 0], m * k * 4)
    if int8_activations:
        enc_quantize_rows(xp, k, m, k, qp, sx)
        enc_gemm_q(&lin, qp, sx, m, yp, n, 0, n // ENC_NR)
    else:
        enc_gemm(&lin, xp, k, m, yp, n, 0, n // ENC_NR)
    memcpy(&y[0, 0], yp, m * n * 4)
    free(xp)
    free(yp)
    free(qp)
    free(sx)
    enc_linear_free(&lin)


def kernel_attention(const float[:, ::1] qkv, long heads, float[:, ::1] ctx):
    """Self-attention of one sequence: qkv [len, 3 * hidden] -> ctx [len, hidden]."""
    cdef long length = qkv.shape[0], hidden = ctx.shape[1], h, hd = hidden // heads
    cdef float *scratch = <float*>enc_alloc((hd + ENC_ATT_Q) * ((length + 15) // 16 * 16) * 4)
    for h in range(heads):
        enc_attention(&qkv[0, 0], hidden, h, hd, length, &ctx[0, 0], scratch)
    free(scratch)


def kernel_add_norm(const float[:, ::1] a, const float[:, ::1] b, const float[::1] gamma,
                    const float[::1] beta, float eps, float[:, ::1] out):
    """out = LayerNorm(a + b) row by row."""
    cdef long r
    for r in range(a.shape[0]):
        enc_add_norm(&a[r, 0], &b[r, 0], &gamma[0], &beta[0], eps, a.shape[1], &out[r, 0])


def kernel_gelu(float[::1] x):
    """Exact GELU in place."""
    enc_gelu(&x[0], x.shape[0])


def quantize_rows(const float[:, ::1] x, unsigned char[:, ::1] q, float[::1] scale):
    """The int8 codes (offset by 128) and scales of each row of x, as int8 activations use."""
    enc_quantize_rows(&x[0, 0], x.shape[1], x.shape[0], x.shape[1], &q[0, 0], &scale[0])


def half_to_float(uint16_t bits):
    """The float32 value of IEEE half `bits` (the conversion the loader uses)."""
    return enc_half_to_float(bits)
