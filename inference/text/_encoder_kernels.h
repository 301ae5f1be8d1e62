/* Kernels of the sentence encoder (BERT), in plain C: included by _encoder.pyx.
 *
 * Float kernels use no intrinsics: GCC vector extensions (vector_size) are
 * lowered to whatever the function's target has. Each hot function is compiled
 * three times from one always_inline body, for AVX-512, AVX2+FMA and baseline
 * x86-64, and `enc_init` picks one per process with the CPU's feature bits, so
 * the extension stays portable with the shared -O2 flags (tools/cython/flags.bzl).
 * The int8 x int8 products (int8 activations) have one tile per instruction set,
 * with intrinsics: vpdpbusd (AVX-512 VNNI, checked by cpuid), vpmaddwd (AVX2,
 * SSE2); their integer sums are exact whatever the tiles and instructions.
 *
 * Determinism (the hard requirement): every output element is computed by the
 * same sequence of floating-point operations whatever else is in the batch
 * and however the work is split between threads:
 *   - linear layers sum over the input features in index order, one
 *     accumulator per output element; tiles (of 8, 4, 2 or 1 rows) and input
 *     blocks only decide which elements are computed together, never the
 *     order or the operations of a sum;
 *   - attention, layer norm, pooling work on one sequence (or row) at a time,
 *     over its own tokens only: no padding tokens exist (sequences are packed
 *     back to back), so no mask can leak into a sum;
 *   - threads split output columns or (sequence, head) pairs, never a sum:
 *     a batch of many sequences is split by sequence (enc_forward_threads),
 *     a few sequences are run by a team sharing every step (enc_forward_team).
 * Results may differ between CPU families (FMA or not): the same machine
 * gives the same bits.
 */
#ifndef MODELSHIP_ENCODER_KERNELS_H
#define MODELSHIP_ENCODER_KERNELS_H

#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* 64-byte vectors pass through the always-inline helpers of the baseline
 * (SSE2) versions too; they never cross a real call, so the ABI note is moot. */
#pragma GCC diagnostic ignored "-Wpsabi"

/* Output columns per packed weight panel, and the row padding of activations. */
#define ENC_NR 32
#define ENC_ROW_ALIGN 8
#define ENC_MAX_THREADS 8

typedef float enc_v16 __attribute__((vector_size(64)));
typedef float enc_v16u __attribute__((vector_size(64), aligned(4)));
typedef int enc_i16 __attribute__((vector_size(64)));

enum { ENC_F32 = 0, ENC_F16 = 1, ENC_I8 = 2 };

/* ---- half floats ------------------------------------------------------------------- */

static float enc_half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    float out;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp == 0) {
        /* zero or subnormal: man * 2^-24, exact in float */
        out = (float)man * 5.9604644775390625e-08f;
        return sign ? -out : out;
    } else {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    }
    memcpy(&out, &bits, 4);
    return out;
}

/* A row of a weight table (float32, float16 bits or int8 times its row scale) as float32. */
static void enc_row_to_float(const void *table, int dtype, const float *scale, long row,
                             long width, float *out) {
    long k;
    if (dtype == ENC_F32) {
        memcpy(out, (const float *)table + row * width, (size_t)width * 4);
    } else if (dtype == ENC_F16) {
        const uint16_t *src = (const uint16_t *)table + row * width;
        for (k = 0; k < width; k++) out[k] = enc_half_to_float(src[k]);
    } else {
        const signed char *src = (const signed char *)table + row * width;
        float s = scale[row];
        for (k = 0; k < width; k++) out[k] = (float)src[k] * s;
    }
}

/* ---- linear layers: y = x @ W.T + b ------------------------------------------------ */

typedef struct {
    long n, k;      /* output and input features; n % ENC_NR == 0, k % 4 == 0 */
    int int8;       /* packed holds int8 (times scale) rather than float32 */
    int int8_act;   /* int8 weights times int8 activations (see enc_gemm_q) */
    void *packed;   /* [n / ENC_NR][k][ENC_NR]: a panel's weights for one input feature
                       are contiguous, so the kernel streams each panel once per tile;
                       int8 (either path): groups of 4 inputs, see enc_linear_pack */
    float *scale;   /* [n], int8 only */
    float *bias;    /* [n] */
    int32_t *colsum; /* [n], int8_act only: sum of each output's weights */
} enc_linear;

static void *enc_alloc_raw(size_t nbytes) {
    void *p = NULL;
    if (posix_memalign(&p, 64, nbytes ? nbytes : 64)) return NULL;
    return p;
}

static void *enc_alloc(size_t nbytes) {
    void *p = enc_alloc_raw(nbytes);
    if (p) memset(p, 0, nbytes);
    return p;
}

static void enc_linear_free(enc_linear *lin) {
    free(lin->packed);
    free(lin->scale);
    free(lin->bias);
    free(lin->colsum);
    lin->packed = lin->scale = lin->bias = NULL;
    lin->colsum = NULL;
}

/* Packs W [n][k] (dtype ENC_F32/F16/I8; scale [n] for int8) and bias [n].
 * float16 weights become float32 (the arithmetic is float32 anyway); int8 stay
 * int8 and are widened in registers. Returns 0, or -1 when out of memory. */
static int enc_linear_pack(enc_linear *lin, const void *w, int dtype, const float *scale,
                           const float *bias, long n, long k, int int8_act) {
    long p, kk, j;
    lin->n = n;
    lin->k = k;
    lin->int8 = dtype == ENC_I8;
    lin->int8_act = lin->int8 && int8_act;
    lin->packed = enc_alloc((size_t)n * k * (lin->int8 ? 1 : 4));
    lin->bias = enc_alloc((size_t)n * 4);
    lin->scale = lin->int8 ? enc_alloc((size_t)n * 4) : NULL;
    lin->colsum = lin->int8_act ? (int32_t *)enc_alloc((size_t)n * 4) : NULL;
    if (!lin->packed || !lin->bias || (lin->int8 && !lin->scale) ||
        (lin->int8_act && !lin->colsum)) {
        enc_linear_free(lin);
        return -1;
    }
    memcpy(lin->bias, bias, (size_t)n * 4);
    if (lin->int8_act) {
        const signed char *src = (const signed char *)w;
        for (j = 0; j < n; j++) {
            int32_t total = 0;
            for (kk = 0; kk < k; kk++) total += src[j * k + kk];
            lin->colsum[j] = total;
        }
    }
    if (lin->int8) {
        const signed char *src = (const signed char *)w;
        signed char *dst = (signed char *)lin->packed;
        memcpy(lin->scale, scale, (size_t)n * 4);
        /* Groups of 4 inputs: lane j of a 16-lane int32 vector holds column j's
         * weights for inputs 4g..4g+3 in its 4 bytes; shifts widen them in
         * registers (gcc 12 does not vectorize a char -> int conversion). */
        for (p = 0; p < n / ENC_NR; p++)
            for (kk = 0; kk < k; kk++)
                for (j = 0; j < ENC_NR; j++)
                    dst[(p * k + kk / 4 * 4) * ENC_NR + (j / 16) * 64 + (j % 16) * 4 + kk % 4] =
                        src[(p * ENC_NR + j) * k + kk];
    } else {
        float *dst = (float *)lin->packed;
        float *row = (float *)malloc((size_t)k * 4);
        if (!row) {
            enc_linear_free(lin);
            return -1;
        }
        for (p = 0; p < n / ENC_NR; p++)
            for (j = 0; j < ENC_NR; j++) {
                enc_row_to_float(w, dtype, NULL, p * ENC_NR + j, k, row);
                for (kk = 0; kk < k; kk++) dst[(p * k + kk) * ENC_NR + j] = row[kk];
            }
        free(row);
    }
    return 0;
}

/* One tile: rows [0, MR) of x times `kn` inputs of a float32 panel block `wf`
 * ([kn][ENC_NR]) into y (ENC_NR columns); x starts at the block's first input. The
 * first block starts the sums at zero, later ones continue the float32 partial
 * sums left in y, and the last applies scale (int8 weights; NULL otherwise) and
 * bias: the same operations, in the same order, as one pass over all inputs. The
 * loop over r is unrolled, so the accumulators live in registers. */
static inline __attribute__((always_inline)) void
enc_tile(const float *x, long ldx, const float *wf, long kn, int first, int last, float *y,
         long ldy, const float *scale, const float *bias, const int MR) {
    enc_v16 acc0[8], acc1[8], w0, w1;
    long kk;
    int r;
    if (first) {
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) acc0[r] = acc1[r] = (enc_v16){0};
    } else {
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            acc0[r] = *(const enc_v16u *)(y + r * ldy);
            acc1[r] = *(const enc_v16u *)(y + r * ldy + 16);
        }
    }
    for (kk = 0; kk < kn; kk++) {
        /* the panel streams from memory on the first tile of a block */
        __builtin_prefetch(wf + (kk + 16) * ENC_NR);
        __builtin_prefetch(wf + (kk + 16) * ENC_NR + 16);
        w0 = *(const enc_v16 *)(wf + kk * ENC_NR);
        w1 = *(const enc_v16 *)(wf + kk * ENC_NR + 16);
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            float xv = x[r * ldx + kk];
            acc0[r] += xv * w0;
            acc1[r] += xv * w1;
        }
    }
    if (!last) {
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            *(enc_v16u *)(y + r * ldy) = acc0[r];
            *(enc_v16u *)(y + r * ldy + 16) = acc1[r];
        }
    } else if (scale) {
        enc_v16 s0 = *(const enc_v16u *)scale, s1 = *(const enc_v16u *)(scale + 16);
        enc_v16 b0 = *(const enc_v16u *)bias, b1 = *(const enc_v16u *)(bias + 16);
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            *(enc_v16u *)(y + r * ldy) = acc0[r] * s0 + b0;
            *(enc_v16u *)(y + r * ldy + 16) = acc1[r] * s1 + b1;
        }
    } else {
        enc_v16 b0 = *(const enc_v16u *)bias, b1 = *(const enc_v16u *)(bias + 16);
#pragma GCC unroll 8
        for (r = 0; r < MR; r++) {
            *(enc_v16u *)(y + r * ldy) = acc0[r] + b0;
            *(enc_v16u *)(y + r * ldy + 16) = acc1[r] + b1;
        }
    }
}

/* Inputs [k0, k1) of an int8 panel as float32 (the codes, exact; the scale comes
 * last, in enc_tile), [k1 - k0][ENC_NR]: widened once per block and chunk of rows
 * rather than in every tile. Groups of 4 inputs: lane j of a 16-lane int32 vector
 * holds column j's weights for inputs 4g..4g+3; shifts widen them (gcc 12 does
 * not vectorize a char -> int conversion). */
static inline __attribute__((always_inline)) void
enc_widen_block(const signed char *wb, long k0, long k1, float *out) {
    long kk;
    int t;
    for (kk = k0; kk < k1; kk += 4) {
        enc_i16 raw0 = *(const enc_i16 *)(wb + kk * ENC_NR);
        enc_i16 raw1 = *(const enc_i16 *)(wb + kk * ENC_NR + 64);
        float *o = out + (kk - k0) * ENC_NR;
#pragma GCC unroll 4
        for (t = 0; t < 4; t++) {
            *(enc_v16 *)(o + t * ENC_NR) =
                __builtin_convertvector((raw0 << (24 - 8 * t)) >> 24, enc_v16);
            *(enc_v16 *)(o + t * ENC_NR + 16) =
                __builtin_convertvector((raw1 << (24 - 8 * t)) >> 24, enc_v16);
        }
    }
}

/* Input features per block: a block of a panel (ENC_KC * ENC_NR weights, 16 KB
 * as float32) stays in L1 while every row tile of a chunk passes over it, so
 * a small batch reads each weight from memory once. A multiple of 4 (int8). */
#define ENC_KC 128

/* Rows [0, m) of y, panels [p0, p1): chunks of rows (kept in L2), then panels,
 * input blocks, and tiles of up to MR rows. A tile of r rows spends max(r, 4)
 * cycles per input on a 4-cycle FMA latency, so the rows left over are split
 * into tiles of at least 4 (17 = 8 + 5 + 4, not 8 + 8 + 1). Tiles of every
 * size do the same operations per element: a row's result does not depend on
 * its tile. Int8 weights: each block is widened to float32 (wbuf) first. */
#define ENC_TILE_CASE(R)                                                                    \
    case R:                                                                                 \
        enc_tile(x + r * ldx + k0, ldx, wf, k1 - k0, first, last,                           \
                 y + r * ldy + p * ENC_NR, ldy, sc, bi, R);                                 \
        break;
#define ENC_GEMM_BODY(MR)                                                                   \
    {                                                                                       \
        long m0, m1, r, p, k0, k1, mc = lin->k > 512 ? 64 : 128;                           \
        size_t esize = lin->int8 ? 1 : 4;                                                   \
        float wbuf[ENC_KC * ENC_NR] __attribute__((aligned(64)));                           \
        for (m0 = 0; m0 < m; m0 = m1) {                                                     \
            m1 = m0 + mc < m ? m0 + mc : m;                                                 \
            for (p = p0; p < p1; p++) {                                                     \
                const char *w = (const char *)lin->packed + (size_t)p * lin->k * ENC_NR * esize; \
                const float *sc = lin->int8 ? lin->scale + p * ENC_NR : NULL;               \
                const float *bi = lin->bias + p * ENC_NR;                                   \
                for (k0 = 0; k0 < lin->k; k0 = k1) {                                        \
                    int first = k0 == 0, last;                                              \
                    long left, take;                                                        \
                    const float *wf;                                                        \
                    k1 = k0 + ENC_KC < lin->k ? k0 + ENC_KC : lin->k;                       \
                    last = k1 == lin->k;                                                    \
                    if (lin->int8) {                                                        \
                        enc_widen_block((const signed char *)w, k0, k1, wbuf);              \
                        wf = wbuf;                                                          \
                    } else {                                                                \
                        wf = (const float *)w + k0 * ENC_NR;                                \
                    }                                                                       \
                    for (r = m0; r < m1; r += take) {                                       \
                        left = m1 - r;                                                      \
                        take = left <= MR ? left                                            \
                             : MR < 8 || left >= MR + 4 ? MR : left - 4;                    \
                        switch (take) {                                                     \
                            ENC_TILE_CASE(1)                                                \
                            ENC_TILE_CASE(2)                                                \
                            ENC_TILE_CASE(3)                                                \
                            ENC_TILE_CASE(4)                                                \
                            ENC_TILE_CASE(5)                                                \
                            ENC_TILE_CASE(6)                                                \
                            ENC_TILE_CASE(7)                                                \
                            default:                                                        \
                                enc_tile(x + r * ldx + k0, ldx, wf, k1 - k0, first, last,   \
                                         y + r * ldy + p * ENC_NR, ldy, sc, bi, 8);         \
                        }                                                                   \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

#define ENC_TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define ENC_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))

ENC_TARGET_AVX512 static void
enc_gemm_avx512(const enc_linear *lin, const float *x, long ldx, long m, float *y, long ldy,
                long p0, long p1) ENC_GEMM_BODY(8)
ENC_TARGET_AVX2 static void
enc_gemm_avx2(const enc_linear *lin, const float *x, long ldx, long m, float *y, long ldy,
              long p0, long p1) ENC_GEMM_BODY(4)
static void
enc_gemm_base(const enc_linear *lin, const float *x, long ldx, long m, float *y, long ldy,
              long p0, long p1) ENC_GEMM_BODY(2)

/* ---- int8 activations: y = dequant(q(x) @ W.T) + b ---------------------------------- */

/* Each row of x to int8 on its own scale (max |x| / 127, rounding halves up),
 * stored offset by 128 as uint8 for the u8 x s8 dot products; sx[r] its
 * scale. A row's codes depend on that row only. Written for the vectoriser:
 * the maximum is taken on the bit patterns (ordered like the values for
 * non-negative floats), and v + 128.5 > 0 truncates to floor. */
static inline __attribute__((always_inline)) void
enc_quantize_body(const float *x, long ldx, long m, long k, uint8_t *q, float *sx) {
    long r, kk;
    for (r = 0; r < m; r++) {
        const float *row = x + r * ldx;
        const uint32_t *bits = (const uint32_t *)row;
        uint8_t *out = q + r * k;
        uint32_t top_bits = 0;
        float top, inv;
        for (kk = 0; kk < k; kk++) {
            uint32_t a = bits[kk] & 0x7fffffffu;
            top_bits = a > top_bits ? a : top_bits;
        }
        memcpy(&top, &top_bits, 4);
        if (!(top > 0.0f) || top_bits >= 0x7f800000u) {  /* zero, or inf / NaN: all zero */
            memset(out, 128, (size_t)k);
            sx[r] = 0.0f;
            continue;
        }
        inv = 127.0f / top;
        sx[r] = top / 127.0f;
        for (kk = 0; kk < k; kk++) out[kk] = (uint8_t)(int32_t)(row[kk] * inv + 128.5f);
    }
}

__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"), optimize("O3"))) static void
enc_quantize_avx512(const float *x, long ldx, long m, long k, uint8_t *q, float *sx) {
    enc_quantize_body(x, ldx, m, k, q, sx);
}
__attribute__((target("avx2,fma"), optimize("O3"))) static void
enc_quantize_avx2(const float *x, long ldx, long m, long k, uint8_t *q, float *sx) {
    enc_quantize_body(x, ldx, m, k, q, sx);
}
__attribute__((optimize("O3"))) static void
enc_quantize_base(const float *x, long ldx, long m, long k, uint8_t *q, float *sx) {
    enc_quantize_body(x, ldx, m, k, q, sx);
}

/* y rows [0, m), panels [p0, p1) = (sum_k q[r][k] * W[c][k] - 128 * colsum[c]) *
 * (sx[r] * scale[c]) + b[c]. The integer sums are exact, so blocking, tiles and the
 * instructions used (vpdpbusd on VNNI CPUs, vpmaddwd on AVX2) cannot change them;
 * the float epilogue (enc_q_finish) is the same per element whatever the tile.
 * Weights are in the int8 panel layout (enc_linear_pack): for 4 consecutive inputs,
 * a 32-bit lane holds one output's 4 weights, as vpdpbusd reads them. */

typedef int enc_i16u __attribute__((vector_size(64), aligned(4)));

/* Input features per block of a panel (32 * 512 bytes stay in L1 while every row
 * tile of a chunk passes over them); partial sums wait in y as int32 bits. */
#define ENC_KC_Q 512
/* Rows per chunk: their codes (64 * 1536 bytes at most) stay in L2. */
#define ENC_MC_Q 64
#ifndef ENC_PF_Q
#define ENC_PF_Q 64
#endif

static inline __attribute__((always_inline)) int32_t enc_load4(const uint8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One row, 16 columns: the float epilogue of the exact integer sums s. */
static inline __attribute__((always_inline)) void
enc_q_finish(enc_i16 s, float sxr, const int32_t *colsum, const float *scale,
             const float *bias, float *y) {
    enc_v16 f = __builtin_convertvector(s - *(const enc_i16u *)colsum * 128, enc_v16);
    *(enc_v16u *)y = f * (sxr * *(const enc_v16u *)scale) + *(const enc_v16u *)bias;
}

/* Tile arguments: rows [0, R) of codes q (row stride ldq) times inputs [k0, k1) of
 * panel w into y (32 columns, row stride ldy): the first block starts at zero, the
 * others continue the int32 sums kept in y, the last writes the floats. */
#define ENC_TARGET_VNNI \
    __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512vnni,avx2,fma,f16c")))

/* AVX-512 VNNI: R rows x 32 columns in 2R zmm accumulators, one vpdpbusd per
 * row, 16 columns and 4 inputs; the row's 4 codes broadcast to every lane. */
ENC_TARGET_VNNI static inline __attribute__((always_inline)) void
enc_tile_q_vnni(const uint8_t *q, long ldq, const int8_t *w, long k0, long k1, int first,
                int last, float *y, long ldy, const float *sx, const int32_t *colsum,
                const float *scale, const float *bias, const int R) {
    __m512i a0[8], a1[8];
    long kk;
    int r;
#pragma GCC unroll 8
    for (r = 0; r < R; r++) {
        if (first) {
            a0[r] = a1[r] = _mm512_setzero_si512();
        } else {
            a0[r] = _mm512_loadu_si512((const void *)(y + r * ldy));
            a1[r] = _mm512_loadu_si512((const void *)(y + r * ldy + 16));
        }
    }
    for (kk = k0; kk < k1; kk += 4) {
        __m512i w0 = _mm512_load_si512((const void *)(w + kk * ENC_NR));
        __m512i w1 = _mm512_load_si512((const void *)(w + kk * ENC_NR + 64));
        __builtin_prefetch(w + (kk + ENC_PF_Q) * ENC_NR);
        __builtin_prefetch(w + (kk + ENC_PF_Q) * ENC_NR + 64);
#pragma GCC unroll 8
        for (r = 0; r < R; r++) {
            __m512i xv = _mm512_set1_epi32(enc_load4(q + r * ldq + kk));
            a0[r] = _mm512_dpbusd_epi32(a0[r], xv, w0);
            a1[r] = _mm512_dpbusd_epi32(a1[r], xv, w1);
        }
    }
#pragma GCC unroll 8
    for (r = 0; r < R; r++) {
        if (!last) {
            _mm512_storeu_si512((void *)(y + r * ldy), a0[r]);
            _mm512_storeu_si512((void *)(y + r * ldy + 16), a1[r]);
        } else {
            enc_q_finish((enc_i16)a0[r], sx[r], colsum, scale, bias, y + r * ldy);
            enc_q_finish((enc_i16)a1[r], sx[r], colsum + 16, scale + 16, bias + 16,
                         y + r * ldy + 16);
        }
    }
}

/* AVX2: R (1 or 2) rows x 16 columns at a time. Weights widen to int16 (4 columns
 * x 4 inputs per ymm), the row's 4 codes to int16 repeated; vpmaddwd sums pairs
 * (at most 2 * 255 * 128: no overflow), so each column has 2 partial sums in
 * adjacent lanes until the end of the block (vphaddd). */
ENC_TARGET_AVX2 static inline __attribute__((always_inline)) void
enc_tile_q_avx2(const uint8_t *q, long ldq, const int8_t *w, long k0, long k1, int first,
                int last, float *y, long ldy, const float *sx, const int32_t *colsum,
                const float *scale, const float *bias, const int R) {
    long kk;
    int h, r, j;
    for (h = 0; h < 2; h++) {
        __m256i acc[2][4];
#pragma GCC unroll 2
        for (r = 0; r < R; r++)
#pragma GCC unroll 4
            for (j = 0; j < 4; j++) acc[r][j] = _mm256_setzero_si256();
        for (kk = k0; kk < k1; kk += 4) {
            const int8_t *wp = w + kk * ENC_NR + h * 64;
            __m256i wv[4];
#pragma GCC unroll 4
            for (j = 0; j < 4; j++)
                wv[j] = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(wp + 16 * j)));
#pragma GCC unroll 2
            for (r = 0; r < R; r++) {
                __m256i xv = _mm256_broadcastq_epi64(
                    _mm_cvtepu8_epi16(_mm_cvtsi32_si128(enc_load4(q + r * ldq + kk))));
#pragma GCC unroll 4
                for (j = 0; j < 4; j++)
                    acc[r][j] = _mm256_add_epi32(acc[r][j], _mm256_madd_epi16(xv, wv[j]));
            }
        }
#pragma GCC unroll 2
        for (r = 0; r < R; r++) {
            int32_t *yi = (int32_t *)(void *)(y + r * ldy + h * 16);
            __m256i s0 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][0], acc[r][1]), 0xD8);
            __m256i s1 = _mm256_permute4x64_epi64(_mm256_hadd_epi32(acc[r][2], acc[r][3]), 0xD8);
            if (!first) {
                s0 = _mm256_add_epi32(s0, _mm256_loadu_si256((const __m256i *)yi));
                s1 = _mm256_add_epi32(s1, _mm256_loadu_si256((const __m256i *)(yi + 8)));
            }
            if (!last) {
                _mm256_storeu_si256((__m256i *)yi, s0);
                _mm256_storeu_si256((__m256i *)(yi + 8), s1);
            } else {
                int32_t s[16] __attribute__((aligned(64)));
                _mm256_store_si256((__m256i *)s, s0);
                _mm256_store_si256((__m256i *)(s + 8), s1);
                enc_q_finish(*(const enc_i16 *)s, sx[r], colsum + h * 16, scale + h * 16,
                             bias + h * 16, y + r * ldy + h * 16);
            }
        }
    }
}

/* Baseline x86-64 (SSE2): the AVX2 scheme on 128-bit vectors, R (1 or 2) rows x 8
 * columns at a time; the pairs are summed through memory at the end of the block. */
static inline __attribute__((always_inline)) void
enc_tile_q_sse2(const uint8_t *q, long ldq, const int8_t *w, long k0, long k1, int first,
                int last, float *y, long ldy, const float *sx, const int32_t *colsum,
                const float *scale, const float *bias, const int R) {
    long kk;
    int c, r, j, i;
    int32_t s[2][ENC_NR] __attribute__((aligned(64)));
    const __m128i zero = _mm_setzero_si128();
    for (c = 0; c < 4; c++) {  /* columns 8c .. 8c + 7 */
        __m128i acc[2][4];
        int32_t lanes[4][4] __attribute__((aligned(16)));
        for (r = 0; r < R; r++)
            for (j = 0; j < 4; j++) acc[r][j] = zero;
        for (kk = k0; kk < k1; kk += 4) {
            const int8_t *wp = w + kk * ENC_NR + (c / 2) * 64 + (c % 2) * 32;
            __m128i v0 = _mm_load_si128((const __m128i *)wp);
            __m128i v1 = _mm_load_si128((const __m128i *)(wp + 16));
            __m128i wv[4];
            wv[0] = _mm_srai_epi16(_mm_unpacklo_epi8(v0, v0), 8);
            wv[1] = _mm_srai_epi16(_mm_unpackhi_epi8(v0, v0), 8);
            wv[2] = _mm_srai_epi16(_mm_unpacklo_epi8(v1, v1), 8);
            wv[3] = _mm_srai_epi16(_mm_unpackhi_epi8(v1, v1), 8);
            for (r = 0; r < R; r++) {
                __m128i xv = _mm_unpacklo_epi8(_mm_cvtsi32_si128(enc_load4(q + r * ldq + kk)),
                                               zero);
                xv = _mm_unpacklo_epi64(xv, xv);
                for (j = 0; j < 4; j++)
                    acc[r][j] = _mm_add_epi32(acc[r][j], _mm_madd_epi16(xv, wv[j]));
            }
        }
        for (r = 0; r < R; r++) {
            for (j = 0; j < 4; j++) _mm_store_si128((__m128i *)lanes[j], acc[r][j]);
            for (j = 0; j < 4; j++)
                for (i = 0; i < 2; i++)
                    s[r][8 * c + 2 * j + i] = lanes[j][2 * i] + lanes[j][2 * i + 1];
        }
    }
    for (r = 0; r < R; r++) {
        if (!first) {
            int32_t prev[ENC_NR];
            memcpy(prev, y + r * ldy, sizeof prev);
            for (j = 0; j < ENC_NR; j++) s[r][j] += prev[j];
        }
        if (!last) {
            memcpy(y + r * ldy, s[r], sizeof s[r]);
        } else {
            enc_q_finish(*(const enc_i16 *)s[r], sx[r], colsum, scale, bias, y + r * ldy);
            enc_q_finish(*(const enc_i16 *)(s[r] + 16), sx[r], colsum + 16, scale + 16,
                         bias + 16, y + r * ldy + 16);
        }
    }
}

/* Chunks of rows, panels, input blocks, tiles of up to MR rows (the rows left
 * over in tiles of at least 4 where MR is 8: 17 = 8 + 5 + 4). */
#define ENC_Q_TILE(TILE, R)                                                                 \
    TILE(q + r * k, k, w, k0, k1, first, last, y + r * ldy + p * ENC_NR, ldy, sx + r, cs,  \
         sc, bi, R)
#define ENC_Q_CASE(TILE, R)                                                                 \
    case R:                                                                                 \
        ENC_Q_TILE(TILE, R);                                                                \
        break;
#define ENC_GEMM_Q_LOOPS(TILE_CALL)                                                         \
    {                                                                                       \
        long m0, m1, r, p, k0, k1, k = lin->k, left, take;                                 \
        for (m0 = 0; m0 < m; m0 = m1) {                                                     \
            m1 = m0 + ENC_MC_Q < m ? m0 + ENC_MC_Q : m;                                     \
            for (p = p0; p < p1; p++) {                                                     \
                const int8_t *w = (const int8_t *)lin->packed + (size_t)p * k * ENC_NR;     \
                const int32_t *cs = lin->colsum + p * ENC_NR;                               \
                const float *sc = lin->scale + p * ENC_NR, *bi = lin->bias + p * ENC_NR;    \
                for (k0 = 0; k0 < k; k0 = k1) {                                             \
                    int first = k0 == 0, last;                                              \
                    k1 = k0 + ENC_KC_Q < k ? k0 + ENC_KC_Q : k;                             \
                    last = k1 == k;                                                         \
                    for (r = m0; r < m1; r += take) {                                       \
                        left = m1 - r;                                                      \
                        TILE_CALL                                                           \
                    }                                                                       \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    }

ENC_TARGET_VNNI static void
enc_gemm_q_vnni(const enc_linear *lin, const uint8_t *q, const float *sx, long m, float *y,
                long ldy, long p0, long p1)
ENC_GEMM_Q_LOOPS(
    take = left <= 8 ? left : left >= 12 ? 8 : left - 4;
    switch (take) {
        ENC_Q_CASE(enc_tile_q_vnni, 1)
        ENC_Q_CASE(enc_tile_q_vnni, 2)
        ENC_Q_CASE(enc_tile_q_vnni, 3)
        ENC_Q_CASE(enc_tile_q_vnni, 4)
        ENC_Q_CASE(enc_tile_q_vnni, 5)
        ENC_Q_CASE(enc_tile_q_vnni, 6)
        ENC_Q_CASE(enc_tile_q_vnni, 7)
        default:
            ENC_Q_TILE(enc_tile_q_vnni, 8);
    })

ENC_TARGET_AVX2 static void
enc_gemm_q_avx2(const enc_linear *lin, const uint8_t *q, const float *sx, long m, float *y,
                long ldy, long p0, long p1)
ENC_GEMM_Q_LOOPS(
    take = left >= 2 ? 2 : 1;
    if (take == 2)
        ENC_Q_TILE(enc_tile_q_avx2, 2);
    else
        ENC_Q_TILE(enc_tile_q_avx2, 1);)

__attribute__((optimize("O3"))) static void
enc_gemm_q_base(const enc_linear *lin, const uint8_t *q, const float *sx, long m, float *y,
                long ldy, long p0, long p1)
ENC_GEMM_Q_LOOPS(
    take = left >= 2 ? 2 : 1;
    if (take == 2)
        ENC_Q_TILE(enc_tile_q_sse2, 2);
    else
        ENC_Q_TILE(enc_tile_q_sse2, 1);)

/* ---- erf and exp on 16 lanes ---------------------------------------------------------- */

/* erf on [0, 4) in 16 pieces of width 1/4: on piece i, the degree-7 Taylor
 * polynomial of erf about its centre c = (i + 1/2) / 4, whose coefficients
 * enc_init computes from C's erf and exp (erf^(n+1)(c) = 2/sqrt(pi) (-1)^n
 * H_n(c) exp(-c^2), H_n the Hermite polynomials). A lane picks its piece's
 * coefficients with one permute per coefficient. Beyond 4, erf is 1 in
 * float32. Checked against erf to within 6e-8 (one unit in the last place
 * near 1) by tests/test_encoder_kernels.py. */
#define ENC_ERF_DEGREE 7
static float enc_erf_table[ENC_ERF_DEGREE + 1][16] __attribute__((aligned(64)));

static void enc_erf_table_init(void) {
    int i, n;
    for (i = 0; i < 16; i++) {
        double c = (i + 0.5) / 4.0, h[ENC_ERF_DEGREE], fact = 1.0;
        double g = 2.0 / sqrt(3.14159265358979323846) * exp(-c * c);
        h[0] = 1.0;
        h[1] = 2.0 * c;
        for (n = 1; n + 1 < ENC_ERF_DEGREE; n++) h[n + 1] = 2.0 * c * h[n] - 2.0 * n * h[n - 1];
        enc_erf_table[0][i] = (float)erf(c);
        for (n = 0; n < ENC_ERF_DEGREE; n++) {
            fact *= n + 1;
            enc_erf_table[n + 1][i] = (float)(g * ((n & 1) ? -h[n] : h[n]) / fact);
        }
    }
}

static inline __attribute__((always_inline)) enc_v16 enc_select(enc_i16 mask, enc_v16 yes,
                                                                enc_v16 no) {
    return (enc_v16)(((enc_i16)yes & mask) | ((enc_i16)no & ~mask));
}

static inline __attribute__((always_inline)) enc_v16 enc_erf16(enc_v16 x) {
    enc_i16 bits = (enc_i16)x, sign = bits & (int)0x80000000u, idx, high;
    enc_v16 a = (enc_v16)(bits & 0x7fffffff), t, y;
    enc_i16 big = a >= 4.0f;
    int n;
    a = enc_select(big, (enc_v16){0}, a);      /* keeps the index in range (and NaN out) */
    a = enc_select(a == a, a, (enc_v16){0});
    idx = __builtin_convertvector(a * 4.0f, enc_i16);
    high = idx > 15;
    idx = (idx & ~high) | (15 & high);
    t = a - (__builtin_convertvector(idx, enc_v16) + 0.5f) * 0.25f;
    y = __builtin_shuffle(*(const enc_v16 *)enc_erf_table[ENC_ERF_DEGREE], idx);
    for (n = ENC_ERF_DEGREE - 1; n >= 0; n--)
        y = y * t + __builtin_shuffle(*(const enc_v16 *)enc_erf_table[n], idx);
    y = enc_select(big, (enc_v16){0} + 1.0f, y);
    return (enc_v16)((enc_i16)y | sign);
}

/* exp(x) for x <= 0 (softmax scores minus their maximum): x = k ln 2 + r with
 * |r| <= ln 2 / 2, exp(r) by its Taylor polynomial to r^7 / 7!, times 2^k
 * built in the exponent bits. Below -87 the result is flushed to 0. */
static inline __attribute__((always_inline)) enc_v16 enc_exp16(enc_v16 x) {
    enc_i16 tiny = x < -87.0f;
    enc_v16 xs = enc_select(tiny, (enc_v16){0}, x);
    enc_v16 kf = (xs * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  /* round */
    enc_v16 r = (xs - kf * 0.693145751953125f) - kf * 1.42860682030941723e-06f;
    enc_v16 p = (enc_v16){0} + (1.0f / 5040.0f);
    enc_i16 k = __builtin_convertvector(kf, enc_i16);
    p = p * r + (1.0f / 720.0f);
    p = p * r + (1.0f / 120.0f);
    p = p * r + (1.0f / 24.0f);
    p = p * r + (1.0f / 6.0f);
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    p = p * (enc_v16)((k + 127) << 23);
    return enc_select(tiny, (enc_v16){0}, p);
}

/* Exact GELU, 0.5 x (1 + erf(x / sqrt 2)), in place. */
static inline __attribute__((always_inline)) void enc_gelu_body(float *x, long count) {
    long i;
    for (i = 0; i + 16 <= count; i += 16) {
        enc_v16 v = *(enc_v16u *)(x + i);
        *(enc_v16u *)(x + i) = 0.5f * v * (1.0f + enc_erf16(v * 0.70710678118654752f));
    }
    if (i < count) {  /* the same lanes' arithmetic, through a buffer */
        float tail[16] __attribute__((aligned(64))) = {0};
        enc_v16 v;
        memcpy(tail, x + i, (size_t)(count - i) * 4);
        v = *(enc_v16 *)tail;
        *(enc_v16 *)tail = 0.5f * v * (1.0f + enc_erf16(v * 0.70710678118654752f));
        memcpy(x + i, tail, (size_t)(count - i) * 4);
    }
}

ENC_TARGET_AVX512 static void enc_gelu_avx512(float *x, long count) { enc_gelu_body(x, count); }
ENC_TARGET_AVX2 static void enc_gelu_avx2(float *x, long count) { enc_gelu_body(x, count); }
static void enc_gelu_base(float *x, long count) { enc_gelu_body(x, count); }

/* ---- attention ---------------------------------------------------------------------- */

/* Self-attention of one sequence and one head. qkv rows hold [q | k | v] (each
 * `hidden` wide) for the sequence's `len` tokens; writes the head's slice of ctx.
 * scratch: (head_dim + ENC_ATT_Q) * round_up(len, 16) floats. Each score and each
 * context element is one chain of FMAs in index order; up to ENC_ATT_Q queries
 * (scores) and 4 blocks of 16 dimensions (context) run side by side only to hide
 * the FMA latency, so a query's results do not depend on its neighbours. */
#define ENC_ATT_Q 4
static inline __attribute__((always_inline)) void
enc_attention_body(const float *qkv, long hidden, long head, long head_dim, long len,
                   float *ctx, float *scratch) {
    long lp = (len + 15) & ~15L, ld = 3 * hidden, i, j, d, jb, nv = head_dim / 16, qn, a;
    float *kt = scratch, *scores = scratch + head_dim * lp;
    float div = sqrtf((float)head_dim);
    const float *q0 = qkv + head * head_dim, *k0 = qkv + hidden + head * head_dim;
    const float *v0 = qkv + 2 * hidden + head * head_dim;
    for (d = 0; d < head_dim; d++) {
        for (j = 0; j < len; j++) kt[d * lp + j] = k0[j * ld + d];
        for (; j < lp; j++) kt[d * lp + j] = 0.0f;
    }
    for (i = 0; i < len; i += qn) {
        qn = len - i >= ENC_ATT_Q ? ENC_ATT_Q : 1;
        for (jb = 0; jb < lp; jb += 16) {
            if (qn == ENC_ATT_Q) {
                const float *qa = q0 + i * ld, *qb = qa + ld, *qc = qb + ld, *qd = qc + ld;
                enc_v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
                for (d = 0; d < head_dim; d++) {
                    enc_v16 kv = *(const enc_v16 *)(kt + d * lp + jb);
                    s0 += qa[d] * kv;
                    s1 += qb[d] * kv;
                    s2 += qc[d] * kv;
                    s3 += qd[d] * kv;
                }
                *(enc_v16 *)(scores + jb) = s0 / div;
                *(enc_v16 *)(scores + lp + jb) = s1 / div;
                *(enc_v16 *)(scores + 2 * lp + jb) = s2 / div;
                *(enc_v16 *)(scores + 3 * lp + jb) = s3 / div;
            } else {
                const float *q = q0 + i * ld;
                enc_v16 s0 = {0};
                for (d = 0; d < head_dim; d++) s0 += q[d] * *(const enc_v16 *)(kt + d * lp + jb);
                *(enc_v16 *)(scores + jb) = s0 / div;
            }
        }
        for (a = 0; a < qn; a++) {
            float *sc = scores + a * lp, top, total = 0.0f, inv;
            float *out = ctx + (i + a) * hidden + head * head_dim;
            top = sc[0];
            for (j = 1; j < len; j++) top = sc[j] > top ? sc[j] : top;
            for (jb = 0; jb < lp; jb += 16)
                *(enc_v16 *)(sc + jb) = enc_exp16(*(const enc_v16 *)(sc + jb) - top);
            for (j = 0; j < len; j++) total += sc[j];
            inv = 1.0f / total;
            for (d = 0; d + 4 <= nv; d += 4) {
                enc_v16 c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
                for (j = 0; j < len; j++) {
                    const float *v = v0 + j * ld + d * 16;
                    float pj = sc[j];
                    c0 += pj * *(const enc_v16u *)v;
                    c1 += pj * *(const enc_v16u *)(v + 16);
                    c2 += pj * *(const enc_v16u *)(v + 32);
                    c3 += pj * *(const enc_v16u *)(v + 48);
                }
                *(enc_v16u *)(out + d * 16) = c0 * inv;
                *(enc_v16u *)(out + d * 16 + 16) = c1 * inv;
                *(enc_v16u *)(out + d * 16 + 32) = c2 * inv;
                *(enc_v16u *)(out + d * 16 + 48) = c3 * inv;
            }
            for (; d < nv; d++) {
                enc_v16 acc = {0};
                for (j = 0; j < len; j++) acc += sc[j] * *(const enc_v16u *)(v0 + j * ld + d * 16);
                *(enc_v16u *)(out + d * 16) = acc * inv;
            }
        }
    }
}

ENC_TARGET_AVX512 static void
enc_attention_avx512(const float *qkv, long hidden, long head, long head_dim, long len,
                     float *ctx, float *scratch) {
    enc_attention_body(qkv, hidden, head, head_dim, len, ctx, scratch);
}
ENC_TARGET_AVX2 static void
enc_attention_avx2(const float *qkv, long hidden, long head, long head_dim, long len,
                   float *ctx, float *scratch) {
    enc_attention_body(qkv, hidden, head, head_dim, len, ctx, scratch);
}
static void
enc_attention_base(const float *qkv, long hidden, long head, long head_dim, long len,
                   float *ctx, float *scratch) {
    enc_attention_body(qkv, hidden, head, head_dim, len, ctx, scratch);
}

/* ---- row-wise operations ------------------------------------------------------------ */

/* Sum of 16 lanes in a fixed order. */
static inline __attribute__((always_inline)) float enc_hsum(const enc_v16 *v) {
    float s = 0.0f;
    int i;
    for (i = 0; i < 16; i++) s += (*v)[i];
    return s;
}

/* out = LayerNorm(a + b) (b may be NULL) over `width` (a multiple of 16); out may be a. */
static inline __attribute__((always_inline)) void
enc_add_norm_body(const float *a, const float *b, const float *gamma, const float *beta,
                  float eps, long width, float *out) {
    long i;
    enc_v16 s = {0}, v;
    float mean, var, inv;
    for (i = 0; i < width; i += 16) {
        v = *(const enc_v16u *)(a + i);
        if (b) v += *(const enc_v16u *)(b + i);
        *(enc_v16u *)(out + i) = v;
        s += v;
    }
    mean = enc_hsum(&s) / (float)width;
    s = (enc_v16){0};
    for (i = 0; i < width; i += 16) {
        v = *(const enc_v16u *)(out + i) - mean;
        s += v * v;
    }
    var = enc_hsum(&s) / (float)width;
    inv = 1.0f / sqrtf(var + eps);
    for (i = 0; i < width; i += 16) {
        v = (*(const enc_v16u *)(out + i) - mean) * inv;
        *(enc_v16u *)(out + i) = v * *(const enc_v16u *)(gamma + i) + *(const enc_v16u *)(beta + i);
    }
}

ENC_TARGET_AVX512 static void
enc_add_norm_avx512(const float *a, const float *b, const float *g, const float *be, float eps,
                    long width, float *out) {
    enc_add_norm_body(a, b, g, be, eps, width, out);
}
ENC_TARGET_AVX2 static void
enc_add_norm_avx2(const float *a, const float *b, const float *g, const float *be, float eps,
                  long width, float *out) {
    enc_add_norm_body(a, b, g, be, eps, width, out);
}
static void
enc_add_norm_base(const float *a, const float *b, const float *g, const float *be, float eps,
                  long width, float *out) {
    enc_add_norm_body(a, b, g, be, eps, width, out);
}


/* ---- dispatch ----------------------------------------------------------------------- */

typedef void (*enc_gemm_fn)(const enc_linear *, const float *, long, long, float *, long, long,
                            long);
typedef void (*enc_attention_fn)(const float *, long, long, long, long, float *, float *);
typedef void (*enc_add_norm_fn)(const float *, const float *, const float *, const float *,
                                float, long, float *);

static enc_gemm_fn enc_gemm = enc_gemm_base;
static enc_attention_fn enc_attention = enc_attention_base;
static enc_add_norm_fn enc_add_norm = enc_add_norm_base;
typedef void (*enc_gemm_q_fn)(const enc_linear *, const uint8_t *, const float *, long, float *,
                              long, long, long);
static enc_gemm_q_fn enc_gemm_q = enc_gemm_q_base;
typedef void (*enc_quantize_fn)(const float *, long, long, long, uint8_t *, float *);
static enc_quantize_fn enc_quantize_rows = enc_quantize_base;
typedef void (*enc_gelu_fn)(float *, long);
static enc_gelu_fn enc_gelu = enc_gelu_base;
static const char *enc_isa = "x86-64";

/* Picks the kernels for this CPU; `force` = "x86-64" or "avx2" limits the choice (tests). */
static const char *enc_init(const char *force) {
    int avx512, avx2, vnni;
    __builtin_cpu_init();
    avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    vnni = avx512 && __builtin_cpu_supports("avx512vnni");
    if (force && strcmp(force, "avx2") == 0) avx512 = vnni = 0;
    if (force && strcmp(force, "x86-64") == 0) avx512 = avx2 = vnni = 0;
    enc_gemm_q = vnni ? enc_gemm_q_vnni : avx2 ? enc_gemm_q_avx2 : enc_gemm_q_base;
    enc_quantize_rows = avx512 ? enc_quantize_avx512 : avx2 ? enc_quantize_avx2
                                                            : enc_quantize_base;
    enc_gelu = avx512 ? enc_gelu_avx512 : avx2 ? enc_gelu_avx2 : enc_gelu_base;
    enc_erf_table_init();
    if (avx512) {
        enc_gemm = enc_gemm_avx512;
        enc_attention = enc_attention_avx512;
        enc_add_norm = enc_add_norm_avx512;
        enc_isa = "avx512";
    } else if (avx2) {
        enc_gemm = enc_gemm_avx2;
        enc_attention = enc_attention_avx2;
        enc_add_norm = enc_add_norm_avx2;
        enc_isa = "avx2";
    } else {
        enc_gemm = enc_gemm_base;
        enc_attention = enc_attention_base;
        enc_add_norm = enc_add_norm_base;
        enc_isa = "x86-64";
    }
    return enc_isa;
}

/* ---- the whole encoder -------------------------------------------------------------- */

typedef struct {
    enc_linear qkv, out, inter, out2;
    float *norm1_g, *norm1_b, *norm2_g, *norm2_b;
} enc_layer;

typedef struct {
    long layers, hidden, heads, inter, max_positions, vocab, type_vocab;
    float eps;
    const void *word;        /* borrowed: the artifact's table [vocab][hidden] */
    int word_dtype;
    const float *word_scale; /* borrowed, int8 only */
    float *position;         /* [max_positions][hidden] float32 */
    float *type0;            /* token type 0's row */
    float *norm_g, *norm_b;
    enc_layer *layer;        /* [layers] */
} enc_model;

/* Scratch of one forward pass over `tokens` tokens, the longest sequence `longest`,
 * for a team of `team` threads (attention scratch is per thread). */
typedef struct {
    float *h, *qkv, *ctx, *tmp, *inter, *attn, *sx;
    uint8_t *q;
    long attn_size;
} enc_scratch;

static void enc_scratch_free(enc_scratch *s) {
    free(s->h); free(s->qkv); free(s->ctx); free(s->tmp); free(s->inter); free(s->attn);
    free(s->sx); free(s->q);
}

/* Not zeroed: every buffer is written before it is read (activations row by
 * row, attention's key block including its padding). */
static int enc_scratch_alloc(enc_scratch *s, const enc_model *m, long tokens, long longest,
                             int team) {
    long rows = (tokens + ENC_ROW_ALIGN - 1) / ENC_ROW_ALIGN * ENC_ROW_ALIGN;
    long lp = (longest + 15) & ~15L;
    s->attn_size = ((m->hidden / m->heads + ENC_ATT_Q) * lp + 15) & ~15L;
    s->h = enc_alloc_raw((size_t)rows * m->hidden * 4);
    s->qkv = enc_alloc_raw((size_t)rows * 3 * m->hidden * 4);
    s->ctx = enc_alloc_raw((size_t)rows * m->hidden * 4);
    s->tmp = enc_alloc_raw((size_t)rows * m->hidden * 4);
    s->inter = enc_alloc_raw((size_t)rows * m->inter * 4);
    s->attn = enc_alloc_raw((size_t)s->attn_size * team * 4);
    s->sx = enc_alloc_raw((size_t)rows * 4);
    s->q = enc_alloc_raw((size_t)rows * (m->inter > m->hidden ? m->inter : m->hidden));
    if (!s->h || !s->qkv || !s->ctx || !s->tmp || !s->inter || !s->attn || !s->sx || !s->q) {
        enc_scratch_free(s);
        return -1;
    }
    return 0;
}

/* A team of threads running one forward pass together: each does its share of
 * every step (output columns of a linear layer, (sequence, head) pairs of
 * attention, rows of the rest), with a barrier between steps. Shares split
 * outputs, never a sum, so the team size changes no result. */
typedef struct {
    int size;
    int waiting;            /* threads at the barrier */
    int generation;         /* bumped when all arrived */
    int go;                 /* set once the size is known: the mates may start */
} enc_team;

static void enc_barrier(enc_team *team) {
    int gen, spins = 0;
    if (team->size <= 1) return;
    gen = __atomic_load_n(&team->generation, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&team->waiting, 1, __ATOMIC_ACQ_REL) == team->size) {
        __atomic_store_n(&team->waiting, 0, __ATOMIC_RELAXED);
        __atomic_add_fetch(&team->generation, 1, __ATOMIC_RELEASE);
        return;
    }
    while (__atomic_load_n(&team->generation, __ATOMIC_ACQUIRE) == gen)
        if (++spins > 256) sched_yield();  /* a busy machine may have descheduled a mate */
}

/* [lo, hi) of `count` items for member `t` of `size`. */
static void enc_share(long count, int t, int size, long *lo, long *hi) {
    *lo = count * t / size;
    *hi = count * (t + 1) / size;
}

/* y = x @ W.T + b for rows [0, m), this member's share of the columns. Int8
 * activations: the rows are quantized first (shared by rows, then a barrier). */
static void enc_apply(const enc_linear *lin, const float *x, long ldx, long m, float *y, long ldy,
                      const enc_scratch *sc, enc_team *team, int t) {
    long lo, hi;
    if (lin->int8_act) {
        enc_share(m, t, team->size, &lo, &hi);
        if (hi > lo) enc_quantize_rows(x + lo * ldx, ldx, hi - lo, lin->k, sc->q + lo * lin->k,
                                       sc->sx + lo);
        enc_barrier(team);
        enc_share(lin->n / ENC_NR, t, team->size, &lo, &hi);
        if (hi > lo) enc_gemm_q(lin, sc->q, sc->sx, m, y, ldy, lo, hi);
    } else {
        enc_share(lin->n / ENC_NR, t, team->size, &lo, &hi);
        if (hi > lo) enc_gemm(lin, x, ldx, m, y, ldy, lo, hi);
    }
    enc_barrier(team);
}

/* Member t's part of the forward pass of sequences [0, n_seq) (see enc_forward). */
static void enc_forward_member(const enc_model *m, const int32_t *ids, const long *offsets,
                               long n_seq, float *out, const enc_scratch *sc, enc_team *team,
                               int t) {
    long H = m->hidden, I = m->inter, hd = H / m->heads;
    long tokens = offsets[n_seq] - offsets[0], s, r, i, l, lo, hi, pair;
    const int32_t *id0 = ids + offsets[0];
    float *attn = sc->attn + sc->attn_size * t;

    /* (word + token type) + position, then the embedding norm; this member's tokens */
    enc_share(n_seq, t, team->size, &lo, &hi);
    for (s = lo; s < hi; s++) {
        long j, first = offsets[s] - offsets[0];
        for (j = 0; j < offsets[s + 1] - offsets[s]; j++) {
            float *row = sc->h + (first + j) * H;
            enc_row_to_float(m->word, m->word_dtype, m->word_scale, id0[first + j], H, row);
            for (i = 0; i < H; i++) row[i] = row[i] + m->type0[i];
            for (i = 0; i < H; i++) row[i] = row[i] + m->position[j * H + i];
            enc_add_norm(row, NULL, m->norm_g, m->norm_b, m->eps, H, row);
        }
    }
    enc_barrier(team);

    for (l = 0; l < m->layers; l++) {
        const enc_layer *L = &m->layer[l];
        enc_apply(&L->qkv, sc->h, H, tokens, sc->qkv, 3 * H, sc, team, t);
        enc_share(n_seq * m->heads, t, team->size, &lo, &hi);
        for (pair = lo; pair < hi; pair++) {
            long sq = pair / m->heads, hh = pair % m->heads;
            long o = offsets[sq] - offsets[0], len = offsets[sq + 1] - offsets[sq];
            enc_attention(sc->qkv + o * 3 * H, H, hh, hd, len, sc->ctx + o * H, attn);
        }
        enc_barrier(team);
        enc_apply(&L->out, sc->ctx, H, tokens, sc->tmp, H, sc, team, t);
        enc_share(tokens, t, team->size, &lo, &hi);
        for (r = lo; r < hi; r++)
            enc_add_norm(sc->tmp + r * H, sc->h + r * H, L->norm1_g, L->norm1_b, m->eps, H,
                         sc->h + r * H);
        enc_barrier(team);
        enc_apply(&L->inter, sc->h, H, tokens, sc->inter, I, sc, team, t);
        enc_share(tokens, t, team->size, &lo, &hi);
        if (hi > lo) enc_gelu(sc->inter + lo * I, (hi - lo) * I);
        enc_barrier(team);
        enc_apply(&L->out2, sc->inter, I, tokens, sc->tmp, H, sc, team, t);
        enc_share(tokens, t, team->size, &lo, &hi);
        for (r = lo; r < hi; r++)
            enc_add_norm(sc->tmp + r * H, sc->h + r * H, L->norm2_g, L->norm2_b, m->eps, H,
                         sc->h + r * H);
        enc_barrier(team);
    }

    /* mean over the sequence's tokens, then L2 normalisation (eps 1e-12, as torch's) */
    enc_share(n_seq, t, team->size, &lo, &hi);
    for (s = lo; s < hi; s++) {
        long o = offsets[s] - offsets[0], len = offsets[s + 1] - offsets[s], tk;
        float *v = out + s * H, norm = 0.0f;
        for (i = 0; i < H; i++) v[i] = 0.0f;
        for (tk = 0; tk < len; tk++)
            for (i = 0; i < H; i++) v[i] += sc->h[(o + tk) * H + i];
        for (i = 0; i < H; i++) v[i] = v[i] / (float)len;
        for (i = 0; i < H; i++) norm += v[i] * v[i];
        norm = sqrtf(norm);
        if (norm < 1e-12f) norm = 1e-12f;
        for (i = 0; i < H; i++) v[i] = v[i] / norm;
    }
}

typedef struct {
    const enc_model *m;
    const int32_t *ids;
    const long *offsets;
    long n_seq;
    float *out;
    const enc_scratch *sc;
    enc_team *team;
    int t;
} enc_member_job;

static void *enc_member_run(void *arg) {
    enc_member_job *job = (enc_member_job *)arg;
    int spins = 0;
    while (!__atomic_load_n(&job->team->go, __ATOMIC_ACQUIRE))
        if (++spins > 256) sched_yield();
    enc_forward_member(job->m, job->ids, job->offsets, job->n_seq, job->out, job->sc, job->team,
                       job->t);
    return NULL;
}

/* Embeddings of the tokens of sequences [0, n_seq): ids packed back to back,
 * sequence s is ids[offsets[s] .. offsets[s + 1]). Writes n_seq unit vectors
 * of `hidden` floats to out, with a team of `team_size` threads (the caller's
 * thread and team_size - 1 started here). Returns 0, or -1 when out of memory. */
static int enc_forward_team(const enc_model *m, const int32_t *ids, const long *offsets,
                            long n_seq, float *out, int team_size) {
    long tokens = offsets[n_seq] - offsets[0], longest = 1, s;
    enc_scratch sc;
    enc_team team = {1, 0, 0, 0};
    enc_member_job jobs[ENC_MAX_THREADS];
    pthread_t threads[ENC_MAX_THREADS];
    int g, started = 1;
    for (s = 0; s < n_seq; s++)
        if (offsets[s + 1] - offsets[s] > longest) longest = offsets[s + 1] - offsets[s];
    if (team_size < 1) team_size = 1;
    if (team_size > ENC_MAX_THREADS) team_size = ENC_MAX_THREADS;
    if (enc_scratch_alloc(&sc, m, tokens, longest, team_size)) return -1;
    /* Mates wait for `go`, so the team's size is fixed (to the threads that did
     * start) before anyone computes a share or reaches a barrier. */
    for (g = 1; g < team_size; g++) {
        enc_member_job job = {m, ids, offsets, n_seq, out, &sc, &team, g};
        jobs[g] = job;
        if (pthread_create(&threads[g], NULL, enc_member_run, &jobs[g]) != 0) break;
        started++;
    }
    team.size = started;
    __atomic_store_n(&team.go, 1, __ATOMIC_RELEASE);
    enc_forward_member(m, ids, offsets, n_seq, out, &sc, &team, 0);
    for (g = 1; g < started; g++) pthread_join(threads[g], NULL);
    enc_scratch_free(&sc);
    return 0;
}

static int enc_forward(const enc_model *m, const int32_t *ids, const long *offsets, long n_seq,
                       float *out) {
    return enc_forward_team(m, ids, offsets, n_seq, out, 1);
}

/* enc_forward over sequences split in `n_threads` contiguous groups of about
 * equal token counts, one thread each (the caller's thread runs the first).
 * Rows never interact, so the split cannot change any result. */
typedef struct {
    const enc_model *m;
    const int32_t *ids;
    const long *offsets;
    long n_seq;
    float *out;
    int status;
} enc_job;

static void *enc_job_run(void *arg) {
    enc_job *job = (enc_job *)arg;
    job->status = enc_forward(job->m, job->ids, job->offsets, job->n_seq, job->out);
    return NULL;
}

static int enc_forward_threads(const enc_model *m, const int32_t *ids, const long *offsets,
                               long n_seq, float *out, int n_threads) {
    enc_job jobs[ENC_MAX_THREADS];
    pthread_t threads[ENC_MAX_THREADS];
    int started[ENC_MAX_THREADS] = {0};
    long total = offsets[n_seq] - offsets[0], s = 0, g;
    int status = 0;
    if (n_threads > ENC_MAX_THREADS) n_threads = ENC_MAX_THREADS;
    if (n_seq == 0) return 0;
    /* Few sequences: one team shares every step; many: a group of sequences each. */
    if (n_threads > 1 && n_seq < 2 * n_threads)
        return enc_forward_team(m, ids, offsets, n_seq, out, n_threads);
    if (n_threads > n_seq) n_threads = (int)n_seq;
    if (n_threads <= 1) return enc_forward(m, ids, offsets, n_seq, out);
    for (g = 0; g < n_threads; g++) {
        long first = s, goal = offsets[0] + total * (g + 1) / n_threads;
        while (s < n_seq && (g == n_threads - 1 || offsets[s + 1] <= goal || s == first)) s++;
        jobs[g].m = m;
        jobs[g].ids = ids;
        jobs[g].offsets = offsets + first;
        jobs[g].n_seq = s - first;
        jobs[g].out = out + first * m->hidden;
        jobs[g].status = 0;
    }
    for (g = 1; g < n_threads; g++)
        if (jobs[g].n_seq && pthread_create(&threads[g], NULL, enc_job_run, &jobs[g]) == 0)
            started[g] = 1;
    for (g = 0; g < n_threads; g++)
        if (!started[g] && jobs[g].n_seq) enc_job_run(&jobs[g]);
    for (g = 1; g < n_threads; g++)
        if (started[g]) pthread_join(threads[g], NULL);
    for (g = 0; g < n_threads; g++) status |= jobs[g].status;
    return status;
}

#endif
