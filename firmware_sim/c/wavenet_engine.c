/* wavenet-edge int8 step engine: see wavenet_engine.h and README.md. */
#include <string.h>
#include "wavenet_engine.h"

#ifndef WN_KERNELS
#define WN_KERNELS 0
#endif
#if WN_KERNELS == 0
#undef WN_KERNELS
#if defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1)
#define WN_KERNELS 3
#elif defined(__ARM_FEATURE_DSP)
#define WN_KERNELS 2
#else
#define WN_KERNELS 1
#endif
#endif
#if WN_KERNELS == 2 && !defined(__ARM_FEATURE_DSP)
#error "WN_KERNELS=2 needs the Arm DSP extension (__ARM_FEATURE_DSP)"
#endif
#if WN_KERNELS == 3 && !(defined(__ARM_FEATURE_MVE) && (__ARM_FEATURE_MVE & 1))
#error "WN_KERNELS=3 needs MVE (Helium) integer instructions (__ARM_FEATURE_MVE)"
#endif
#if WN_KERNELS < 1 || WN_KERNELS > 3
#error "WN_KERNELS must be 0 (auto), 1 (plain), 2 (DSP) or 3 (MVE)"
#endif

/* kernels that must be inlined (register-resident loops) or must not (their own registers) */
#if defined(__GNUC__)
#define WN_INLINE inline __attribute__((always_inline))
#define WN_NOINLINE __attribute__((noinline))
/* keeps the compiler from interleaving two register-hungry kernels (spilling their vectors) */
#define WN_SEQUENCE() __asm__ volatile("" ::: "memory")
#else
#define WN_INLINE inline
#define WN_NOINLINE
#define WN_SEQUENCE() ((void)0)
#endif

#if WN_KERNELS == 2
#include <arm_acle.h>
#elif WN_KERNELS == 3
#include <arm_mve.h>
#endif

/* ---- gemmlowp / TFLite fixed point (wavenet_edge/int8/fixedpoint.py) ----------------------- */

/* SaturatingRoundingDoublingHighMul: floor(a*b / 2**31 + 1/2), INT32_MIN*INT32_MIN saturates. */
static inline int32_t wn_srdhm(int32_t a, int32_t b)
{
    if (a == b && a == INT32_MIN)
        return INT32_MAX;
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* RoundingDivideByPOT: round to nearest, ties away from zero; 0 <= e <= 31 (c_export checks).
 * (A 64-bit "add half, shift" form is equivalent but slower here: variable 64-bit shifts are
 * library calls on Armv7-M.) */
static inline int32_t wn_rdbpot(int32_t x, int32_t e)
{
    const int32_t mask = (int32_t)((((uint32_t)1) << e) - 1u);
    const int32_t rem = x & mask;
    const int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier (double rounding) for multipliers m in [0, 2**31), which every
 * exported FC/ADD/MUL multiplier is (c_export checks): SRDHM's only saturating case needs
 * m == INT32_MIN, so the high multiply is a plain 64-bit product.  The left shift wraps like the
 * C++ code. */
static inline int32_t wn_mbqm(int32_t x, int32_t m, int32_t shift)
{
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift < 0 ? -shift : 0;
    const int32_t hi = (int32_t)(((int64_t)(int32_t)((uint32_t)x << left) * (int64_t)m
                                  + ((int64_t)1 << 30)) >> 31);
    return wn_rdbpot(hi, right);
}

static inline int32_t wn_sat_shl(int32_t x, int32_t e)
{
    const int32_t thr = (int32_t)((((uint32_t)1) << (31 - e)) - 1u);
    if (x > thr)
        return INT32_MAX;
    if (x < -thr)
        return INT32_MIN;
    return (int32_t)((uint32_t)x << e);
}

static inline int32_t wn_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return v < lo ? lo : (v > hi ? hi : v);
}

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson, 3 iterations) on Q0.31 raws. */
static int32_t wn_one_over_one_plus_x(int32_t a)
{
    int64_t sum = (int64_t)a + (int64_t)INT32_MAX;
    int32_t half_den, x;
    int i;
    sum += sum >= 0 ? 1 : -1;
    half_den = (int32_t)(sum / 2);                       /* RoundingHalfSum, C truncation */
    x = (int32_t)((uint32_t)1515870810 + (uint32_t)wn_srdhm(half_den, -1010580540));
    for (i = 0; i < 3; i++) {
        const int32_t hdx = wn_srdhm(half_den, x);
        const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)hdx);
        x = (int32_t)((uint32_t)x + (uint32_t)wn_sat_shl(wn_srdhm(x, one_minus), 2));
    }
    return wn_sat_shl(x, 1);
}

static inline int wn_clz32(uint32_t u)
{
#if defined(__GNUC__)
    return u ? __builtin_clz(u) : 32;
#else
    int n = 0;
    if (!u)
        return 32;
    while (!(u & 0x80000000u)) {
        u <<= 1;
        n++;
    }
    return n;
#endif
}

/* ---- 4-lane primitives ------------------------------------------------------------------------
 * Every kernel below works on 4 output channels at a time, as int32 lanes: on MVE one Q register,
 * otherwise 4 scalars the compiler keeps in registers.  A lane holds an int8 value (after
 * requantization) or an int32 accumulator. */

/* The bias has the input zero point folded in (wavenet_edge/program.py); int32 wraps as there. */
static inline int32_t wn_addw(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static inline int8_t wn_requant(int32_t acc, int32_t m, int32_t sh, int32_t zp, int32_t lo,
                                int32_t hi)
{
    return (int8_t)wn_clamp(wn_mbqm(acc, m, sh) + zp, lo, hi);
}

/* MUL and ADD parameters (left/right: the two sides of each shift) */
typedef struct { int32_t z1, z2, m, left, right, zo, lo, hi; } wn_mulp;
typedef struct { int32_t z1, z2, left, m1, r1, m2, r2, mo, ro, zo, lo, hi; } wn_addp;

static inline wn_mulp wn_mulp_load(const int32_t *p)
{
    wn_mulp q;
    q.z1 = p[0]; q.z2 = p[1]; q.m = p[2]; q.left = p[3] > 0 ? p[3] : 0;
    q.right = p[3] < 0 ? -p[3] : 0; q.zo = p[4]; q.lo = p[5]; q.hi = p[6];
    return q;
}

/* ADD shifts s1, s2, so are <= 0 (c_export checks), so their MultiplyByQuantizedMultiplier has
 * no left shift */
static inline wn_addp wn_addp_load(const int32_t *p)
{
    wn_addp q;
    q.z1 = p[0]; q.z2 = p[1]; q.left = p[2]; q.m1 = p[3]; q.r1 = -p[4]; q.m2 = p[5];
    q.r2 = -p[6]; q.mo = p[7]; q.ro = -p[8]; q.zo = p[9]; q.lo = p[10]; q.hi = p[11];
    return q;
}

static inline void wn_addp_swap(wn_addp *q)
{
    int32_t t;
    t = q->z1; q->z1 = q->z2; q->z2 = t;
    t = q->m1; q->m1 = q->m2; q->m2 = t;
    t = q->r1; q->r1 = q->r2; q->r2 = t;
}

#if WN_KERNELS == 3
typedef int32x4_t wn_i4;

/* MultiplyByQuantizedMultiplier on 4 lanes, per-lane multiplier/shift: VSHL (wrapping) by the
 * left shift, VQRDMULH (= SRDHM, including its one saturating case), then gemmlowp's NEON
 * RoundingDivideByPOT: x - 1 for negative x (saturating; only when the exponent is non-zero),
 * then the rounding shift VRSHL, which equals the scalar mask/threshold form exactly. */
static inline int32x4_t wn_rdbpot4(int32x4_t h, int32x4_t neg_right)
{
    const int32x4_t fixup = vshrq_n_s32(vandq_s32(h, neg_right), 31);
    return vrshlq_s32(vqaddq_s32(h, fixup), neg_right);
}

static inline int32x4_t wn_mbqm4(int32x4_t x, int32x4_t m, int32x4_t shift)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(x, vmaxq_s32(shift, zero)), m);
    return wn_rdbpot4(h, vminq_s32(shift, zero));
}

/* the same with one (multiplier, shift) for every lane, as scalar operands (VQRDMULH/VRSHL
 * with a general-purpose register): no vector constants to keep live */
static inline int32x4_t wn_mbqm4_s(int32x4_t x, int32_t m, int32_t left, int32_t right)
{
    const int32x4_t h = vqrdmulhq_n_s32(left ? vshlq_r_s32(x, left) : x, m);
    const int32x4_t fixup = vmulq_n_s32(vshrq_n_s32(h, 31), right > 0 ? 1 : 0);
    return vrshlq_n_s32(vqaddq_s32(h, fixup), -right);
}

/* ... for a right shift known to be > 0 at the call site (no left shift) */
static inline int32x4_t wn_mbqm4_sp(int32x4_t x, int32_t m, int32_t right)
{
    const int32x4_t h = vqrdmulhq_n_s32(x, m);
    return vrshlq_n_s32(vqaddq_s32(h, vshrq_n_s32(h, 31)), -right);
}

static inline wn_i4 wn_ld4(const int8_t *p) { return vldrbq_s32(p); }
static inline void wn_st4(int8_t *p, wn_i4 v) { vstrbq_s32(p, v); }

/* `full`: [lo, hi] is the whole int8 range (no fused activation), known at the call site: a
 * saturating shift up and back down, with immediates instead of two vector constants */
static inline wn_i4 wn_clamp4(wn_i4 v, int32_t lo, int32_t hi, int full)
{
    if (full)
        return vshrq_n_s32(vqshlq_n_s32(v, 24), 24);
    return vminq_s32(vmaxq_s32(v, vdupq_n_s32(lo)), vdupq_n_s32(hi));
}
/* TANH/LOGISTIC table lookup: one byte gather for 4 lanes, from the table's middle with the
 * int8 values as offsets (the 32-bit address sum wraps, so negative values index below it) */
static inline wn_i4 wn_lut4(wn_i4 v, const int8_t *tab)
{
    return vldrbq_gather_offset_s32(tab + 128, vreinterpretq_u32_s32(v));
}

/* 4 rows of w (row stride cols) dotted with x: VMLADAVA.S8 does 16 int8 MACs into a scalar;
 * the 16-byte input vector is shared by the 4 rows; a tail of cols % 16 is tail-predicated. */
#define WN_MVE_DOT16(xp, o)                                                                   \
    do {                                                                                      \
        const int8x16_t xv_ = vldrbq_s8((xp) + (o));                                          \
        a0 = vmladavaq_s8(a0, xv_, vldrbq_s8(p0 + (o)));                                      \
        a1 = vmladavaq_s8(a1, xv_, vldrbq_s8(p1 + (o)));                                      \
        a2 = vmladavaq_s8(a2, xv_, vldrbq_s8(p2 + (o)));                                      \
        a3 = vmladavaq_s8(a3, xv_, vldrbq_s8(p3 + (o)));                                      \
    } while (0)

#define WN_MVE_DOT16K(o, K)                                                                   \
    do {                                                                                      \
        const int8x16_t xv_ = vldrbq_s8(x + (o));                                             \
        a0 = vmladavaq_s8(a0, xv_, vldrbq_s8(w + (o)));                                       \
        a1 = vmladavaq_s8(a1, xv_, vldrbq_s8(w + (K) + (o)));                                 \
        a2 = vmladavaq_s8(a2, xv_, vldrbq_s8(w + 2 * (K) + (o)));                             \
        a3 = vmladavaq_s8(a3, xv_, vldrbq_s8(w + 3 * (K) + (o)));                             \
    } while (0)

#define WN_MVE_DOT16K0(K)                                                                     \
    do {                                                                                      \
        const int8x16_t xv_ = vldrbq_s8(x);                                                   \
        a0 = vmladavq_s8(xv_, vldrbq_s8(w));                                                  \
        a1 = vmladavq_s8(xv_, vldrbq_s8(w + (K)));                                            \
        a2 = vmladavq_s8(xv_, vldrbq_s8(w + 2 * (K)));                                        \
        a3 = vmladavq_s8(xv_, vldrbq_s8(w + 3 * (K)));                                        \
    } while (0)

/* 4 scalars into one vector: two VMOV Qd[2], Qd[0], Rt, Rt2 (GCC makes four lane moves) */
static inline int32x4_t wn_v4(int32_t a0, int32_t a1, int32_t a2, int32_t a3)
{
#if defined(__GNUC__)
    int32x4_t r;
    __asm__("vmov %q0[2], %q0[0], %1, %3\n\tvmov %q0[3], %q0[1], %2, %4"
            : "=&w"(r) : "r"(a0), "r"(a1), "r"(a2), "r"(a3));
    return r;
#else
    int32x4_t r = vdupq_n_s32(a0);
    r = vsetq_lane_s32(a1, r, 1);
    r = vsetq_lane_s32(a2, r, 2);
    return vsetq_lane_s32(a3, r, 3);
#endif
}

static WN_INLINE wn_i4 wn_dot4(const int8_t *x, const int8_t *w, int32_t cols)
{
    const int8_t *p0 = w, *p1 = w + cols, *p2 = p1 + cols, *p3 = p2 + cols;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    if (cols == 32) {         /* the common shapes: one base register, immediate offsets */
        WN_MVE_DOT16K0(32);
        WN_MVE_DOT16K(16, 32);
    } else if (cols == 16) {
        WN_MVE_DOT16K0(16);
    } else {
        for (i = cols >> 5; i > 0; i--) {
            WN_MVE_DOT16(x, 0);
            WN_MVE_DOT16(x, 16);
            x += 32; p0 += 32; p1 += 32; p2 += 32; p3 += 32;
        }
        if (cols & 16) {
            WN_MVE_DOT16(x, 0);
            x += 16; p0 += 16; p1 += 16; p2 += 16; p3 += 16;
        }
        if (cols & 15) {
            const mve_pred16_t p = vctp8q((uint32_t)(cols & 15));
            const int8x16_t xv = vldrbq_z_s8(x, p);
            a0 = vmladavaq_p_s8(a0, xv, vldrbq_z_s8(p0, p), p);
            a1 = vmladavaq_p_s8(a1, xv, vldrbq_z_s8(p1, p), p);
            a2 = vmladavaq_p_s8(a2, xv, vldrbq_z_s8(p2, p), p);
            a3 = vmladavaq_p_s8(a3, xv, vldrbq_z_s8(p3, p), p);
        }
    }
    return wn_v4(a0, a1, a2, a3);
}

static inline int32_t wn_dot1(const int8_t *x, const int8_t *w, int32_t cols)
{
    int32_t a = 0, i;
    for (i = 0; i < cols; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(cols - i));
        a = vmladavaq_p_s8(a, vldrbq_z_s8(x + i, p), vldrbq_z_s8(w + i, p), p);
    }
    return a;
}

/* FULLY_CONNECTED requantization of 4 rows: + bias, per-row multiplier/shift, + zp, clamp */
static inline wn_i4 wn_rq4(wn_i4 acc, const int32_t *bias, const int32_t *mult,
                           const int32_t *shift, int32_t zp, int32_t lo, int32_t hi)
{
    const wn_i4 v = wn_mbqm4(vaddq_s32(acc, vldrwq_s32(bias)), vldrwq_s32(mult),
                             vldrwq_s32(shift));
    return wn_clamp4(vaddq_n_s32(v, zp), lo, hi, 0);
}

/* the same when every shift of the FC is <= 0 (the usual case: no left shift) */
static inline wn_i4 wn_rq4_r(wn_i4 acc, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, int full)
{
    const wn_i4 h = vqrdmulhq_s32(vaddq_s32(acc, vldrwq_s32(bias)), vldrwq_s32(mult));
    return wn_clamp4(vaddq_n_s32(wn_rdbpot4(h, vldrwq_s32(shift)), zp), lo, hi, full);
}

/* `full` bit 1: the whole int8 range; bit 2: the shift is < 0 (right only, known > 0) */
static inline wn_i4 wn_mul4(wn_i4 a, wn_i4 b, const wn_mulp *q, int full)
{
    const wn_i4 prod = vmulq_s32(vsubq_n_s32(a, q->z1), vsubq_n_s32(b, q->z2));
    if (full & 4)
        return wn_clamp4(vaddq_n_s32(wn_mbqm4_sp(prod, q->m, q->right), q->zo), q->lo, q->hi,
                         full & 2);
    return wn_clamp4(vaddq_n_s32(wn_mbqm4_s(prod, q->m, q->left, q->right), q->zo), q->lo,
                     q->hi, full & 2);
}

/* `full` bit 1: the whole int8 range; bit 2: all three right shifts > 0; bit 3: the second
 * input is the larger-scale one, whose rescaling is exact: multiplier 2**30 with shift 0, so
 * SRDHM(d << left, 2**30) = d << (left - 1) (even product, no rounding; the plan checks
 * 1 <= left <= 23, so 255 << left does not wrap) — one requantization instead of two, and the
 * first input's and the output's right shifts are > 0 */
static inline wn_i4 wn_add4(wn_i4 a, wn_i4 b, const wn_addp *q, int full)
{
    if (full & 8) {
        const wn_i4 v1 = wn_mbqm4_sp(vshlq_r_s32(vsubq_n_s32(a, q->z1), q->left), q->m1, q->r1);
        const wn_i4 v2 = vshlq_r_s32(vsubq_n_s32(b, q->z2), q->left - 1);
        return wn_clamp4(vaddq_n_s32(wn_mbqm4_sp(vaddq_s32(v1, v2), q->mo, q->ro), q->zo),
                         q->lo, q->hi, full & 2);
    }
    if (full & 4) {
        const wn_i4 v1 = wn_mbqm4_sp(vshlq_r_s32(vsubq_n_s32(a, q->z1), q->left), q->m1, q->r1);
        const wn_i4 v2 = wn_mbqm4_sp(vshlq_r_s32(vsubq_n_s32(b, q->z2), q->left), q->m2, q->r2);
        return wn_clamp4(vaddq_n_s32(wn_mbqm4_sp(vaddq_s32(v1, v2), q->mo, q->ro), q->zo),
                         q->lo, q->hi, full & 2);
    } else {
        const wn_i4 v1 = wn_mbqm4_s(vshlq_r_s32(vsubq_n_s32(a, q->z1), q->left), q->m1, 0, q->r1);
        const wn_i4 v2 = wn_mbqm4_s(vshlq_r_s32(vsubq_n_s32(b, q->z2), q->left), q->m2, 0, q->r2);
        return wn_clamp4(vaddq_n_s32(wn_mbqm4_s(vaddq_s32(v1, v2), q->mo, 0, q->ro), q->zo),
                         q->lo, q->hi, full & 2);
    }
}

#else /* scalar lanes: plain C and DSP */

typedef struct { int32_t v[4]; } wn_i4;

static inline wn_i4 wn_ld4(const int8_t *p)
{
    wn_i4 r;
    r.v[0] = p[0]; r.v[1] = p[1]; r.v[2] = p[2]; r.v[3] = p[3];
    return r;
}

static inline void wn_st4(int8_t *p, wn_i4 a)
{
    p[0] = (int8_t)a.v[0]; p[1] = (int8_t)a.v[1]; p[2] = (int8_t)a.v[2]; p[3] = (int8_t)a.v[3];
}

static inline wn_i4 wn_lut4(wn_i4 a, const int8_t *tab)
{
    wn_i4 r;
    int k;
    for (k = 0; k < 4; k++)
        r.v[k] = tab[a.v[k] + 128];
    return r;
}

static inline wn_i4 wn_rq4(wn_i4 acc, const int32_t *bias, const int32_t *mult,
                           const int32_t *shift, int32_t zp, int32_t lo, int32_t hi)
{
    wn_i4 r;
    int k;
    for (k = 0; k < 4; k++)
        r.v[k] = wn_requant(wn_addw(acc.v[k], bias[k]), mult[k], shift[k], zp, lo, hi);
    return r;
}

/* MultiplyByQuantizedMultiplier for a shift <= 0 (right = -shift), m in [0, 2**31) */
static inline int32_t wn_mbqm_r(int32_t x, int32_t m, int32_t right)
{
    return wn_rdbpot((int32_t)(((int64_t)x * (int64_t)m + ((int64_t)1 << 30)) >> 31), right);
}

/* FC requantization of one row; `right`: the shift is <= 0 (no left shift) */
static inline int32_t wn_rq1(int32_t acc, const int32_t *bias, const int32_t *mult,
                             const int32_t *shift, int32_t j, int32_t zp, int32_t lo, int32_t hi,
                             int right)
{
    const int32_t x = wn_addw(acc, bias[j]);
    if (right)
        return wn_clamp(wn_mbqm_r(x, mult[j], -shift[j]) + zp, lo, hi);
    return wn_clamp(wn_mbqm(x, mult[j], shift[j]) + zp, lo, hi);
}

static inline int32_t wn_mul1(int32_t a, int32_t b, const wn_mulp *q)
{
    const int32_t prod = (a - q->z1) * (b - q->z2);
    const int32_t hi = (int32_t)(((int64_t)(int32_t)((uint32_t)prod << q->left) * (int64_t)q->m
                                  + ((int64_t)1 << 30)) >> 31);
    return wn_clamp(wn_rdbpot(hi, q->right) + q->zo, q->lo, q->hi);
}


static inline int32_t wn_add1(int32_t a, int32_t b, const wn_addp *q)
{
    const int32_t v1 = wn_mbqm_r((int32_t)((uint32_t)(a - q->z1) << q->left), q->m1, q->r1);
    const int32_t v2 = wn_mbqm_r((int32_t)((uint32_t)(b - q->z2) << q->left), q->m2, q->r2);
    const int32_t s = (int32_t)((uint32_t)v1 + (uint32_t)v2);
    return wn_clamp(wn_mbqm_r(s, q->mo, q->ro) + q->zo, q->lo, q->hi);
}

static inline wn_i4 wn_mul4(wn_i4 a, wn_i4 b, const wn_mulp *q, int full)
{
    wn_i4 r;
    int k;
    (void)full;
    for (k = 0; k < 4; k++)
        r.v[k] = wn_mul1(a.v[k], b.v[k], q);
    return r;
}

static inline wn_i4 wn_add4(wn_i4 a, wn_i4 b, const wn_addp *q, int full)
{
    wn_i4 r;
    int k;
    (void)full;
    for (k = 0; k < 4; k++)
        r.v[k] = wn_add1(a.v[k], b.v[k], q);
    return r;
}

#if WN_KERNELS == 2
static inline uint32_t wn_ld32(const int8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);   /* unaligned LDR: Armv7E-M and Armv8-M Mainline allow it */
    return v;
}

/* SXTB16 of the input rotated right by 8 (bytes 1 and 3) in one instruction */
static inline int16x2_t wn_sxtb16_ror8(uint32_t v)
{
#if defined(__GNUC__)
    int16x2_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(v));
    return r;
#else
    return __sxtb16((v >> 8) | (v << 24));
#endif
}

/* 4 rows share the sign-extended input; SXTB16 splits 4 int8 into 2 x (2 int16) (bytes 0,2
 * and 1,3), SMLAD does 2 MACs.  Both operands are split the same way, so the pairs match.  The
 * row stride is a compile-time constant in the common cases (immediate load offsets keep the
 * loop in registers). */
#define WN_DSP_DOT4(xv_, o)                                                                   \
    do {                                                                                      \
        const int16x2_t xe_ = __sxtb16(xv_), xo_ = wn_sxtb16_ror8(xv_);                       \
        uint32_t v_ = wn_ld32(w + (o));                                                       \
        a0 = __smlad(__sxtb16(v_), xe_, a0);                                                  \
        a0 = __smlad(wn_sxtb16_ror8(v_), xo_, a0);                                            \
        v_ = wn_ld32(w + stride + (o));                                                       \
        a1 = __smlad(__sxtb16(v_), xe_, a1);                                                  \
        a1 = __smlad(wn_sxtb16_ror8(v_), xo_, a1);                                            \
        v_ = wn_ld32(w + 2 * stride + (o));                                                   \
        a2 = __smlad(__sxtb16(v_), xe_, a2);                                                  \
        a2 = __smlad(wn_sxtb16_ror8(v_), xo_, a2);                                            \
        v_ = wn_ld32(w + 3 * stride + (o));                                                   \
        a3 = __smlad(__sxtb16(v_), xe_, a3);                                                  \
        a3 = __smlad(wn_sxtb16_ror8(v_), xo_, a3);                                            \
    } while (0)

static WN_INLINE void wn_dot4_dsp(const int8_t *x, const int8_t *w,
                                                               int32_t cols, int32_t stride,
                                                               int32_t *acc)
{
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    for (i = cols >> 3; i > 0; i--) {
        const uint32_t xa = wn_ld32(x), xb = wn_ld32(x + 4);
        WN_DSP_DOT4(xa, 0);
        WN_DSP_DOT4(xb, 4);
        x += 8;
        w += 8;
    }
    if (cols & 4) {
        const uint32_t xa = wn_ld32(x);
        WN_DSP_DOT4(xa, 0);
        x += 4;
        w += 4;
    }
    for (i = 0; i < (cols & 3); i++) {
        a0 += (int32_t)w[i] * (int32_t)x[i];
        a1 += (int32_t)w[stride + i] * (int32_t)x[i];
        a2 += (int32_t)w[2 * stride + i] * (int32_t)x[i];
        a3 += (int32_t)w[3 * stride + i] * (int32_t)x[i];
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

#define WN_DOT4_STRIDE(S)                                                                      \
    static WN_NOINLINE void wn_dot4_##S(const int8_t *x, const int8_t *w,       \
                                                      int32_t *acc)                            \
    {                                                                                          \
        wn_dot4_dsp(x, w, S, S, acc);                                                          \
    }
WN_DOT4_STRIDE(16)
WN_DOT4_STRIDE(32)
WN_DOT4_STRIDE(64)
WN_DOT4_STRIDE(128)
WN_DOT4_STRIDE(256)
WN_DOT4_STRIDE(512)

static WN_NOINLINE void wn_dot4_any(const int8_t *x, const int8_t *w, int32_t cols,
                                                  int32_t *acc)
{
    wn_dot4_dsp(x, w, cols, cols, acc);
}

static inline void wn_dot4p(const int8_t *x, const int8_t *w, int32_t cols, int32_t *acc)
{
    switch (cols) {
    case 16: wn_dot4_16(x, w, acc); break;
    case 32: wn_dot4_32(x, w, acc); break;
    case 64: wn_dot4_64(x, w, acc); break;
    case 128: wn_dot4_128(x, w, acc); break;
    case 256: wn_dot4_256(x, w, acc); break;
    case 512: wn_dot4_512(x, w, acc); break;
    default: wn_dot4_any(x, w, cols, acc); break;
    }
}

static inline int32_t wn_dot1(const int8_t *x, const int8_t *w, int32_t cols)
{
    int32_t a = 0, i = 0;
    for (; i + 4 <= cols; i += 4) {
        const uint32_t xv = wn_ld32(x + i), v = wn_ld32(w + i);
        a = __smlad(__sxtb16(v), __sxtb16(xv), a);
        a = __smlad(wn_sxtb16_ror8(v), wn_sxtb16_ror8(xv), a);
    }
    for (; i < cols; i++)
        a += (int32_t)w[i] * (int32_t)x[i];
    return a;
}
#else
static WN_NOINLINE void wn_dot4p(const int8_t *x, const int8_t *w, int32_t cols, int32_t *acc)
{
    const int8_t *w1 = w + cols, *w2 = w1 + cols, *w3 = w2 + cols;
    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0, i;
    for (i = 0; i < cols; i++) {
        const int32_t xi = x[i];
        a0 += (int32_t)w[i] * xi;
        a1 += (int32_t)w1[i] * xi;
        a2 += (int32_t)w2[i] * xi;
        a3 += (int32_t)w3[i] * xi;
    }
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

static inline int32_t wn_dot1(const int8_t *x, const int8_t *w, int32_t cols)
{
    int32_t a = 0, i;
    for (i = 0; i < cols; i++)
        a += (int32_t)w[i] * (int32_t)x[i];
    return a;
}
#endif
#endif /* lanes */

/* ---- operators -------------------------------------------------------------------------------
 * FULLY_CONNECTED, ADD, MUL, TANH/LOGISTIC tables (TFLM reference_integer_ops), 4 lanes at a
 * time with a scalar tail; and two fused layer kernels (below) that keep the intermediate
 * results in registers. */

int wn_kernels(void) { return WN_KERNELS; }

#if WN_KERNELS == 3
static WN_INLINE void wn_fc_loop(const int8_t *x, int8_t *y, int32_t rows, int32_t cols,
                                 const int8_t *w, const int32_t *bias, const int32_t *mult,
                                 const int32_t *shift, int32_t ps, int32_t zp, int32_t lo,
                                 int32_t hi, int right)
{
    int32_t o;
    for (o = 0; o < rows; o += 4) {
        const wn_i4 acc = wn_dot4(x, w + (size_t)o * (size_t)cols, cols);
        const int32_t g = ps * o;
        wn_st4(y + o, right ? wn_rq4_r(acc, bias + g, mult + g, shift + g, zp, lo, hi,
                                       right & 2)
                            : wn_rq4(acc, bias + g, mult + g, shift + g, zp, lo, hi));
        WN_SEQUENCE();
    }
}
#endif

/* `right`: every shift <= 0 (then the MVE requantization skips the left shift); `rq` (MVE, may
 * be 0): the FC's parameters in the interleaved wn_rq layout */
static WN_NOINLINE void wn_fc_r(const int8_t *x, int8_t *y, int32_t rows, int32_t cols,
                                const int8_t *w, const int32_t *bias, const int32_t *mult,
                                const int32_t *shift, int32_t zp, int32_t lo, int32_t hi,
                                int right, const int32_t *rq)
{
    int32_t o = 0;
#if WN_KERNELS == 3
    const int32_t r4 = rows & ~3;
    if (!rq)
        wn_fc_loop(x, y, r4, cols, w, bias, mult, shift, 1, zp, lo, hi, right);
    else if (cols == 32 && right && lo == -128 && hi == 127)
        wn_fc_loop(x, y, r4, 32, w, rq, rq + 4, rq + 8, 3, zp, lo, hi, 3);
    else if (cols == 32 && right)
        wn_fc_loop(x, y, r4, 32, w, rq, rq + 4, rq + 8, 3, zp, lo, hi, 1);
    else if (cols == 16 && right)
        wn_fc_loop(x, y, r4, 16, w, rq, rq + 4, rq + 8, 3, zp, lo, hi, 1);
    else
        wn_fc_loop(x, y, r4, cols, w, rq, rq + 4, rq + 8, 3, zp, lo, hi, right);
    o = r4;
#else
    (void)rq;
#endif
    for (; o + 4 <= rows; o += 4) {
#if WN_KERNELS != 3
        int32_t acc[4], k;
        wn_dot4p(x, w + (size_t)o * (size_t)cols, cols, acc);
        for (k = 0; k < 4; k++)
            y[o + k] = (int8_t)wn_rq1(acc[k], bias, mult, shift, o + k, zp, lo, hi, right);
#endif
    }
    for (; o < rows; o++)
        y[o] = wn_requant(wn_addw(wn_dot1(x, w + (size_t)o * (size_t)cols, cols), bias[o]),
                          mult[o], shift[o], zp, lo, hi);
}

void wn_fc(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int8_t *w,
           const int32_t *bias, const int32_t *mult, const int32_t *shift,
           int32_t zp, int32_t lo, int32_t hi)
{
    wn_fc_r(x, y, rows, cols, w, bias, mult, shift, zp, lo, hi, 0, 0);
}

/* ADD, p = [z1, z2, left, m1, s1, m2, s2, mo, so, zo, min, max] */
static WN_NOINLINE void wn_add(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n,
                               const int32_t *p)
{
    const wn_addp q = wn_addp_load(p);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
        wn_st4(y + i, wn_add4(wn_ld4(x1 + i), wn_ld4(x2 + i), &q, 0));
    for (; i < n; i++) {
        const int32_t d1 = (int32_t)x1[i] - p[0], d2 = (int32_t)x2[i] - p[1];
        const int32_t v1 = wn_mbqm((int32_t)((uint32_t)d1 << p[2]), p[3], p[4]);
        const int32_t v2 = wn_mbqm((int32_t)((uint32_t)d2 << p[2]), p[5], p[6]);
        const int32_t s = (int32_t)((uint32_t)v1 + (uint32_t)v2);
        y[i] = (int8_t)wn_clamp(wn_mbqm(s, p[7], p[8]) + p[9], p[10], p[11]);
    }
}

/* MUL, p = [z1, z2, m, s, zo, min, max] */
static WN_NOINLINE void wn_mul(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n,
                               const int32_t *p)
{
    const wn_mulp q = wn_mulp_load(p);
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
        wn_st4(y + i, wn_mul4(wn_ld4(x1 + i), wn_ld4(x2 + i), &q, 0));
    for (; i < n; i++) {
        const int32_t prod = ((int32_t)x1[i] - p[0]) * ((int32_t)x2[i] - p[1]);
        y[i] = (int8_t)wn_clamp(wn_mbqm(prod, p[2], p[3]) + p[4], p[5], p[6]);
    }
}

static void wn_lut(const int8_t *x, int8_t *y, int32_t n, const int8_t *tab)
{
    int32_t i = 0;
    for (; i + 4 <= n; i += 4)
        wn_st4(y + i, wn_lut4(wn_ld4(x + i), tab));
    for (; i < n; i++)
        y[i] = tab[(int32_t)x[i] + 128];
}

/* loop variants of the fused kernels (wn_variant_gate / wn_variant_fc_add, below) */
enum { WN_VAR_ANY = 0, WN_VAR_1 = 1, WN_VAR_2 = 2, WN_VAR_3 = 3, WN_VAR_4 = 4, WN_VAR_5 = 5 };

/* wn_state.plan[k]: the kernel (bits 0-2) that runs at operator k, its loop variant (bits 3-5),
 * flags RIGHT (the FC(s) have no left shift) and FFIRST (gated unit: op + 2 reads FC_f) */
enum { WN_PLAN_OP = 0, WN_PLAN_GATE = 1, WN_PLAN_FC_ADD = 2, WN_PLAN_LAZY = 3,
       WN_PLAN_GATE_SWAP = 4, WN_PLAN_FC_ADD_2ND = 5, WN_PLAN_KIND = 0x07,
       WN_PLAN_VAR_SHIFT = 3, WN_PLAN_VAR = 0x38, WN_PLAN_RIGHT = 0x40, WN_PLAN_FFIRST = 0x80 };

#if WN_KERNELS != 2   /* (the DSP build has its own, on int16 weights, below) */
/* One FULLY_CONNECTED's data, 4 rows at a time */
typedef struct {
    const int8_t *w;
    const int32_t *bias, *mult, *shift;
#if WN_KERNELS == 3
    const int32_t *rq;      /* wn_rq: [bias 4, mult 4, shift 4] per group of 4 rows */
#endif
    int32_t zp, lo, hi;
} wn_fcd;

static inline wn_fcd wn_fcd_load(const wn_op *op)
{
    wn_fcd d;
    const int32_t *p = wn_iparams + op->p;
    d.w = wn_weights + op->w;
    d.bias = wn_bias + op->q; d.mult = wn_mult + op->q; d.shift = wn_shift + op->q;
#if WN_KERNELS == 3
    d.rq = wn_rq + 3 * op->q;
#endif
    d.zp = p[0]; d.lo = p[1]; d.hi = p[2];
    return d;
}

#endif

static inline int wn_full(int32_t lo, int32_t hi) { return lo == -128 && hi == 127; }

/* every requantization shift of the FC <= 0 (decided once, in the plan) */
static int wn_fc_right_only(const wn_op *op)
{
    int32_t i;
    for (i = 0; i < op->n; i++)
        if (wn_shift[op->q + i] > 0)
            return 0;
    return 1;
}

#if WN_KERNELS != 2

#if WN_KERNELS == 3
/* rows c .. c+3 of the FC, requantized (int8 values in int32 lanes); `right` bit 0: every
 * shift of the FC is <= 0; bit 1: every clamp is the whole int8 range */
static WN_INLINE wn_i4 wn_fc4(const int8_t *x, const wn_fcd *d, int32_t c, int32_t cols,
                              int right)
{
    const wn_i4 acc = wn_dot4(x, d->w + (size_t)c * (size_t)cols, cols);
    const int32_t *p = d->rq + 3 * c;       /* one pointer: bias, mult, shift at +0, +4, +8 */
    if (right)
        return wn_rq4_r(acc, p, p + 4, p + 8, d->zp, d->lo, d->hi, right & 2);
    return wn_rq4(acc, p, p + 4, p + 8, d->zp, d->lo, d->hi);
}

#endif

#if WN_KERNELS == 3
static WN_INLINE void wn_gate_loop(const int8_t *x, const wn_fcd *f, const wn_fcd *g,
                                   int32_t n, int32_t cols, const int8_t *tf, const int8_t *tg,
                                   const wn_mulp *q, int8_t *z, int right)
{
    int32_t c;
    for (c = 0; c < n; c += 4) {
        const wn_i4 a = wn_lut4(wn_fc4(x, f, c, cols, right), tf);
        wn_i4 b;
        WN_SEQUENCE();
        b = wn_lut4(wn_fc4(x, g, c, cols, right), tg);
        wn_st4(z + c, wn_mul4(a, b, q, right & 6));
        WN_SEQUENCE();
    }
}

#else
static WN_INLINE void wn_gate_loop(const int8_t *x, const wn_fcd *f, const wn_fcd *g,
                                   int32_t n, int32_t cols, const int8_t *tf, const int8_t *tg,
                                   const wn_mulp *q, int8_t *z, int right)
{
    int32_t c, k;
    for (c = 0; c < n; c += 4) {
        int32_t af[4], ag[4];
        wn_dot4p(x, f->w + (size_t)c * (size_t)cols, cols, af);
        wn_dot4p(x, g->w + (size_t)c * (size_t)cols, cols, ag);
        for (k = 0; k < 4; k++) {
            const int32_t j = c + k;
            const int32_t a = tf[wn_rq1(af[k], f->bias, f->mult, f->shift, j, f->zp, f->lo,
                                        f->hi, right) + 128];
            const int32_t b = tg[wn_rq1(ag[k], g->bias, g->mult, g->shift, j, g->zp, g->lo,
                                        g->hi, right) + 128];
            z[j] = (int8_t)wn_mul1(a, b, q);
        }
    }
}
#endif

/* Kernel variants, chosen once in the plan (wn_variant_*): the common widths get their own copy
 * of each fused loop with constant offsets and the range checks resolved, so a call does only
 * the set-up its variant needs.  `right` bit 0: every FC shift <= 0; bit 1: every clamp is the
 * whole int8 range; bit 2 (FC+ADD): the ADD's three right shifts are > 0. */

/* Gated unit of one layer: z = MUL(LUT_f(FC_f(x)), LUT_g(FC_g(x))), 4 channels at a time; the FC
 * outputs and the table outputs never leave registers.  op .. op + 4: FC_f, FC_g, the two LUTs
 * (FFIRST: op + 2 reads FC_f), MUL.  `swap`: the MUL's first operand is the gate's (its product
 * is symmetric once the zero points follow their operands). */
static WN_INLINE void wn_gate_run(int8_t *a, const wn_op *op, int flags, int32_t cols,
                                  int right)
{
    const wn_op *m = op + 4;
    const int ff = (flags & WN_PLAN_FFIRST) != 0;
    const wn_fcd f = wn_fcd_load(op), g = wn_fcd_load(op + 1);
    wn_mulp q = wn_mulp_load(wn_iparams + m->p);
    if ((flags & WN_PLAN_KIND) == WN_PLAN_GATE_SWAP) {
        const int32_t t = q.z1;
        q.z1 = q.z2;
        q.z2 = t;
    }
    wn_gate_loop(a + op->in0, &f, &g, op->n, cols, wn_luts + 256 * (ff ? op + 2 : op + 3)->aux,
                 wn_luts + 256 * (ff ? op + 3 : op + 2)->aux, &q, a + m->out, right);
}

/* MVE: one function per variant (each keeps its own registers); plain C: the variants inline
 * into one dispatcher (fewer, larger functions suit its scalar loops) */
#if WN_KERNELS == 3
#define WN_VARIANT_FN WN_NOINLINE
#define WN_DISPATCH_FN inline
#else
#define WN_VARIANT_FN WN_INLINE
#define WN_DISPATCH_FN WN_NOINLINE
#endif

#define WN_GATE_VARIANT(name, C_, R_)                                                         \
    static WN_VARIANT_FN void name(int8_t *a, const wn_op *op, int flags)                       \
    {                                                                                         \
        if (C_)                                                                               \
            wn_gate_run(a, op, flags, C_, R_);                                                    \
        else                                                                                  \
            wn_gate_run(a, op, flags, op->cols, (R_) ? (R_) : (flags & WN_PLAN_RIGHT) != 0);     \
    }
WN_GATE_VARIANT(wn_gate_any, 0, 0)
WN_GATE_VARIANT(wn_gate_32f, 32, 7)
WN_GATE_VARIANT(wn_gate_32, 32, 1)
WN_GATE_VARIANT(wn_gate_16, 16, 1)
WN_GATE_VARIANT(wn_gate_64f, 64, 7)
WN_GATE_VARIANT(wn_gate_nf, 0, 7)

static WN_DISPATCH_FN void wn_gate(int8_t *a, const wn_op *op, int flags)
{
    switch ((flags & WN_PLAN_VAR) >> WN_PLAN_VAR_SHIFT) {
    case WN_VAR_5: wn_gate_nf(a, op, flags); break;
    case WN_VAR_4: wn_gate_64f(a, op, flags); break;
    case WN_VAR_3: wn_gate_32f(a, op, flags); break;
    case WN_VAR_2: wn_gate_32(a, op, flags); break;
    case WN_VAR_1: wn_gate_16(a, op, flags); break;
    default: wn_gate_any(a, op, flags); break;
    }
}

/* which copy of the gated-unit loop fits (the conditions its constants assume) */
static int wn_variant_gate(const wn_op *op, int right)
{
    const int32_t *pf = wn_iparams + op[0].p, *pg = wn_iparams + op[1].p;
    const int32_t *pm = wn_iparams + op[4].p;
    const int full = wn_full(pf[1], pf[2]) && wn_full(pg[1], pg[2]) && wn_full(pm[5], pm[6])
                     && pm[3] < 0;
    if (!right)
        return WN_VAR_ANY;
    if (full)                 /* 32 / 64 columns / any (the generic dot product) */
        return op->cols == 32 ? WN_VAR_3 : op->cols == 64 ? WN_VAR_4 : WN_VAR_5;
    if (op->cols == 32)
        return WN_VAR_2;
    if (op->cols == 16)
        return WN_VAR_1;
    return WN_VAR_ANY;
}

#if WN_KERNELS == 3
static WN_INLINE void wn_fc_add_loop(const int8_t *x, const wn_fcd *f, int32_t n, int32_t cols,
                                     const int8_t *other, const wn_addp *q, int8_t *y, int right)
{
    int32_t c;
    for (c = 0; c < n; c += 4) {
        wn_st4(y + c, wn_add4(wn_fc4(x, f, c, cols, right), wn_ld4(other + c), q, right & 14));
        WN_SEQUENCE();
    }
}

#else
static WN_INLINE void wn_fc_add_loop(const int8_t *x, const wn_fcd *f, int32_t n, int32_t cols,
                                     const int8_t *other, const wn_addp *q, int8_t *y, int right)
{
    int32_t c, k;
    for (c = 0; c < n; c += 4) {
        int32_t acc[4];
        wn_dot4p(x, f->w + (size_t)c * (size_t)cols, cols, acc);
        for (k = 0; k < 4; k++) {
            const int32_t j = c + k;
            const int32_t r = wn_rq1(acc[k], f->bias, f->mult, f->shift, j, f->zp, f->lo, f->hi,
                                     right);
            y[j] = (int8_t)wn_add1(r, other[j], q);
        }
    }
}
#endif

/* FULLY_CONNECTED followed by the ADD of its output and `other`: a layer's residual output,
 * 4 channels at a time.  op: the FC, op + 1: the ADD; `flags` FC_ADD (the FC output is the
 * ADD's first operand) or FC_ADD_2ND (the sum is symmetric once each operand keeps its own
 * parameters). */
static WN_INLINE void wn_fc_add_run(int8_t *a, const wn_op *op, int flags, int32_t cols,
                                    int right)
{
    const wn_op *ad = op + 1;
    const int first = (flags & WN_PLAN_KIND) == WN_PLAN_FC_ADD;
    const wn_fcd f = wn_fcd_load(op);
    wn_addp q = wn_addp_load(wn_iparams + ad->p);
    if (!first)
        wn_addp_swap(&q);
    wn_fc_add_loop(a + op->in0, &f, op->n, cols, a + (first ? ad->in1 : ad->in0), &q,
                   a + ad->out, right);
}

#define WN_FC_ADD_VARIANT(name, C_, R_)                                                         \
    static WN_VARIANT_FN void name(int8_t *a, const wn_op *op, int flags)                       \
    {                                                                                         \
        if (C_)                                                                               \
            wn_fc_add_run(a, op, flags, C_, R_);                                                    \
        else                                                                                  \
            wn_fc_add_run(a, op, flags, op->cols, (R_) ? (R_) : (flags & WN_PLAN_RIGHT) != 0);                   \
    }
WN_FC_ADD_VARIANT(wn_fc_add_any, 0, 0)
WN_FC_ADD_VARIANT(wn_fc_add_16fx, 16, 11)
WN_FC_ADD_VARIANT(wn_fc_add_16fp, 16, 7)
WN_FC_ADD_VARIANT(wn_fc_add_16f, 16, 3)
WN_FC_ADD_VARIANT(wn_fc_add_16, 16, 1)
WN_FC_ADD_VARIANT(wn_fc_add_32, 32, 1)
WN_FC_ADD_VARIANT(wn_fc_add_32fx, 32, 11)
WN_FC_ADD_VARIANT(wn_fc_add_nfx, 0, 11)

static WN_DISPATCH_FN void wn_fc_add(int8_t *a, const wn_op *op, int flags, int var)
{
    switch (var) {
    case 7: wn_fc_add_nfx(a, op, flags); break;
    case 6: wn_fc_add_32fx(a, op, flags); break;
    case 5: wn_fc_add_16fx(a, op, flags); break;
    case 4: wn_fc_add_16fp(a, op, flags); break;
    case 3: wn_fc_add_16f(a, op, flags); break;
    case 2: wn_fc_add_16(a, op, flags); break;
    case 1: wn_fc_add_32(a, op, flags); break;
    default: wn_fc_add_any(a, op, flags); break;
    }
}

/* which copy of the FC+ADD loop fits: 0 any, 1 (32), 2 (16), 3 (16, full), 4 (16, full, ADD
 * shifts > 0), 5 / 6 / 7 (16 / 32 / any columns, full, the other addend's rescaling exact:
 * see wn_add4) */
static int wn_variant_fc_add(const wn_op *op, int right)
{
    const int32_t *pf = wn_iparams + op[0].p, *pa = wn_iparams + op[1].p;
    const int full = wn_full(pf[1], pf[2]) && wn_full(pa[10], pa[11]);
    const int fc_first = op[1].in0 == op->out;
    const int32_t mo = fc_first ? pa[5] : pa[3], so = fc_first ? pa[6] : pa[4];
    const int32_t sf = fc_first ? pa[4] : pa[6];
    if (!right)
        return 0;
    if (full && mo == (1 << 30) && so == 0 && sf < 0 && pa[8] < 0 && pa[2] >= 1 && pa[2] <= 23)
        return op->cols == 16 ? 5 : op->cols == 32 ? 6 : 7;
    if (op->cols == 16 && full && pa[4] < 0 && pa[6] < 0 && pa[8] < 0)
        return 4;
    if (op->cols == 16 && full)
        return 3;
    if (op->cols == 16)
        return 2;
    if (op->cols == 32)
        return 1;
    return 0;
}

#endif /* WN_KERNELS != 2 */

/* byte copies of delay lines and embeddings (newlib-nano's memcpy copies byte by byte) */
static void wn_copy(int8_t *dst, const int8_t *src, int32_t n)
{
#if WN_KERNELS == 3
    int32_t i;
    if (n == 16) {                          /* the usual delay-line width */
        vstrbq_s8(dst, vldrbq_s8(src));
        return;
    }
    for (i = 0; i < n; i += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - i));
        vstrbq_p_s8(dst + i, vldrbq_z_s8(src + i, p), p);
    }
#else
    if ((((uintptr_t)dst | (uintptr_t)src | (uintptr_t)n) & 3u) == 0) {
        uint32_t *d = (uint32_t *)(void *)dst;
        const uint32_t *s = (const uint32_t *)(const void *)src;
        int32_t i;
        for (i = 0; i < n / 4; i++)
            d[i] = s[i];
    } else {
        memcpy(dst, src, (size_t)n);
    }
#endif
}

/* SOFTMAX (reference_ops::Softmax, beta folded): e = exp table over max - x (0 beyond diff_min). */
static void wn_softmax(const int8_t *x, int8_t *y, int32_t n, const int32_t *exp_table)
{
    int32_t c, mx = -128, sum = 0, hr, scale, expo;
#if WN_KERNELS == 3
    /* 4 lanes: gather e = exp_table[mx - x]; e >= 0, so RoundingDivideByPOT(e, 12) is the
     * round-half-up VRSHR; the output is wn_mbqm4 (exact, see there) */
    for (c = 0; c < n; c += 16) {
        const mve_pred16_t p = vctp8q((uint32_t)(n - c));
        mx = vmaxvq_p_s8((int8_t)mx, vldrbq_z_s8(x + c, p), p);
    }
    for (c = 0; c < n; c += 4) {
        const mve_pred16_t p = vctp32q((uint32_t)(n - c));
        const int32x4_t idx = vsubq_s32(vdupq_n_s32(mx), vldrbq_z_s32(x + c, p));
        const int32x4_t e = vldrwq_gather_shifted_offset_z_s32(exp_table,
                                                               vreinterpretq_u32_s32(idx), p);
        sum = vaddvaq_p_s32(sum, vrshrq_n_s32(e, 12), p);
    }
#else
    for (c = 0; c < n; c++)
        if (x[c] > mx)
            mx = x[c];
    for (c = 0; c < n; c++)
        sum += wn_rdbpot(exp_table[mx - x[c]], 12);
#endif
    hr = wn_clz32((uint32_t)sum);
    scale = wn_one_over_one_plus_x((int32_t)(((uint32_t)sum << hr) - 0x80000000u));
    expo = 12 - hr + 31 - 8;
#if WN_KERNELS == 3
    {
        const int32x4_t sv = vdupq_n_s32(scale), sh = vdupq_n_s32(-expo);
        const int32x4_t lo = vdupq_n_s32(-128), hi = vdupq_n_s32(127);
        for (c = 0; c < n; c += 4) {
            const mve_pred16_t p = vctp32q((uint32_t)(n - c));
            const int32x4_t idx = vsubq_s32(vdupq_n_s32(mx), vldrbq_z_s32(x + c, p));
            const int32x4_t e = vldrwq_gather_shifted_offset_z_s32(exp_table,
                                                                   vreinterpretq_u32_s32(idx), p);
            int32x4_t v = vsubq_n_s32(wn_mbqm4(e, sv, sh), 128);
            v = vminq_s32(vmaxq_s32(v, lo), hi);
            vstrbq_p_s32(y + c, v, p);
        }
    }
#else
    for (c = 0; c < n; c++) {
        /* scale > 0 (a reciprocal), so SRDHM cannot saturate: wn_mbqm with shift -expo */
        const int32_t v = wn_mbqm(exp_table[mx - x[c]], scale, -expo) - 128;
        y[c] = (int8_t)wn_clamp(v, -128, 127);
    }
#endif
}

#if WN_KERNELS == 2
/* ---- Arm DSP kernels on pre-extended weights (firmware_sim/c_export_dsp.py) ---------------------
 * Every FC's weights are int16 pairs in flash (two rows x four columns = 4 words per chunk), its
 * input is sign-extended once into an int16 scratch (SXTB16: bytes 0,2 and 1,3 of each word, the
 * order of the weight pairs), and 4 rows share each input load: per 4 columns x 4 rows, one LDRD
 * of the input, 4 of the weights, 8 SMLAD.  Records marked WN_DSP_FAST have doubled weights and
 * bias and requantize as SMMULR + one rounding add and shift (exactness: c_export_dsp); the
 * others use the scalar MultiplyByQuantizedMultiplier. */

static inline int32_t wn_smmulr(int32_t a, int32_t b)
{
#if defined(__GNUC__)
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* RoundingDivideByPOT(h, e) + zp in the form (2h + (h >> 31) + c) >> (e + 1) (c_export_dsp);
 * e1 = e + 1 */
static inline int32_t wn_rnd(int32_t h, int32_t c, int32_t e1)
{
    return (int32_t)((uint32_t)c + ((uint32_t)h << 1) + (uint32_t)(h >> 31)) >> e1;
}

static inline int32_t wn_shl(int32_t v, int32_t s) { return (int32_t)((uint32_t)v << s); }

/* sign-extend cols int8 into int16 pairs (zero-padded to 4 columns) */
static inline void wn_ext16_any(const int8_t *x, int32_t *xs, int32_t cols)
{
    int32_t i;
    for (i = 0; i + 4 <= cols; i += 4) {
        const uint32_t v = wn_ld32(x + i);
        xs[i >> 1] = (int32_t)__sxtb16(v);
        xs[(i >> 1) + 1] = (int32_t)wn_sxtb16_ror8(v);
    }
    if (cols & 3) {
        uint32_t v = 0;
        int32_t k;
        for (k = 0; k < (cols & 3); k++)
            v |= (uint32_t)(uint8_t)x[i + k] << (8 * k);
        xs[i >> 1] = (int32_t)__sxtb16(v);
        xs[(i >> 1) + 1] = (int32_t)wn_sxtb16_ror8(v);
    }
}

#define WN_EXT4(o)                                                                            \
    do {                                                                                      \
        const uint32_t v_ = wn_ld32(x + 4 * (o));                                             \
        xs[2 * (o)] = (int32_t)__sxtb16(v_);                                                  \
        xs[2 * (o) + 1] = (int32_t)wn_sxtb16_ror8(v_);                                        \
    } while (0)

/* ... straight-line for the common widths (a layer's 16 or 32 inputs) */
static inline void wn_ext16(const int8_t *x, int32_t *xs, int32_t cols)
{
    if (cols == 32 || cols == 16) {
        WN_EXT4(0); WN_EXT4(1); WN_EXT4(2); WN_EXT4(3);
        if (cols == 32) {
            WN_EXT4(4); WN_EXT4(5); WN_EXT4(6); WN_EXT4(7);
        }
    } else {
        wn_ext16_any(x, xs, cols);
    }
}

/* chunk (4 columns) of a 4-row group into a0..a3: one LDRD of the input pairs, two LDM of the
 * weights (r4-r7), 8 SMLAD */
#define WN_ASM_CH16                                                                           \
    "ldrd %[x0], %[x1], [%[xs]], #8\n\t"                                                      \
    "ldm %[w]!, {r4, r5, r6, r7}\n\t"                                                         \
    "smlad %[a0], r4, %[x0], %[a0]\n\t"                                                       \
    "smlad %[a0], r5, %[x1], %[a0]\n\t"                                                       \
    "smlad %[a1], r6, %[x0], %[a1]\n\t"                                                       \
    "smlad %[a1], r7, %[x1], %[a1]\n\t"                                                       \
    "ldm %[w]!, {r4, r5, r6, r7}\n\t"                                                         \
    "smlad %[a2], r4, %[x0], %[a2]\n\t"                                                       \
    "smlad %[a2], r5, %[x1], %[a2]\n\t"                                                       \
    "smlad %[a3], r6, %[x0], %[a3]\n\t"                                                       \
    "smlad %[a3], r7, %[x1], %[a3]\n\t"

/* the 4 rows of a row group (w: nch chunks of 8 words) dotted with the extended input xs;
 * acc holds the biases on entry */
static WN_INLINE void wn_dot16(const int32_t *xs, const int32_t *w, int32_t nch, int32_t *acc)
{
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
#if defined(__GNUC__)
    /* no loop counter inside the asm (its operands and r4-r7 take 12 registers): a C loop
     * around blocks of 4 chunks, then single chunks */
    int32_t x0, x1, j;
    for (j = nch >> 2; j > 0; j--)
        __asm__ volatile(WN_ASM_CH16 WN_ASM_CH16 WN_ASM_CH16 WN_ASM_CH16
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xs] "+r"(xs), [w] "+r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1)
                         :
                         : "r4", "r5", "r6", "r7", "memory");
    for (j = nch & 3; j > 0; j--)
        __asm__ volatile(WN_ASM_CH16
                         : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3),
                           [xs] "+r"(xs), [w] "+r"(w), [x0] "=&r"(x0), [x1] "=&r"(x1)
                         :
                         : "r4", "r5", "r6", "r7", "memory");
#else
    int32_t j;
    for (j = 0; j < nch; j++, xs += 2, w += 8) {
        a0 = __smlad(w[0], xs[0], a0); a0 = __smlad(w[1], xs[1], a0);
        a1 = __smlad(w[2], xs[0], a1); a1 = __smlad(w[3], xs[1], a1);
        a2 = __smlad(w[4], xs[0], a2); a2 = __smlad(w[5], xs[1], a2);
        a3 = __smlad(w[6], xs[0], a3); a3 = __smlad(w[7], xs[1], a3);
    }
#endif
    acc[0] = a0; acc[1] = a1; acc[2] = a2; acc[3] = a3;
}

/* one FC's requantization constants, copied to locals (int8 stores may alias the records) */
typedef struct {
    const int32_t *mult, *shift;
    int32_t zp, lo, hi, flags;
} wn_fq;

static inline wn_fq wn_fq_load(const wn_op *op, const wn_dsp_rec *d)
{
    wn_fq f;
    const int32_t *p = wn_iparams + op->p;
    f.mult = wn_mult + op->q; f.shift = wn_shift + op->q;
    f.zp = p[0]; f.lo = p[1]; f.hi = p[2]; f.flags = d->flags;
    return f;
}

/* requantize accumulator (bias included) of row j; r = its [m, c, e + 1] record */
static WN_INLINE int32_t wn_requant16(int32_t acc, const int32_t *r, int flags, const wn_fq *f,
                                 int32_t j)
{
    int32_t v;
    if (flags & WN_DSP_FAST)
        v = wn_rnd(wn_smmulr(acc, r[0]), r[1], r[2]);
    else
        v = wn_mbqm(acc, f->mult[j], f->shift[j]) + f->zp;
    return (flags & WN_DSP_FULL) ? __ssat(v, 8) : wn_clamp(v, f->lo, f->hi);
}

/* MUL / ADD outside the fast kernels: the scalar forms (the DSP records serve the fast ones) */
static inline wn_mulp wn_mq_load(const wn_op *op, int swap)
{
    wn_mulp q = wn_mulp_load(wn_iparams + op->p);
    if (swap) {
        const int32_t t = q.z1;
        q.z1 = q.z2;
        q.z2 = t;
    }
    return q;
}

static inline wn_addp wn_aq_load(const wn_op *op, int swap)
{
    wn_addp q = wn_addp_load(wn_iparams + op->p);
    if (swap)
        wn_addp_swap(&q);
    return q;
}

#define WN_DSP_XS ((WN_DSP_MAX_COLS + 3) / 4 * 2)
#define WN_FF (WN_DSP_FAST | WN_DSP_FULL)

/* the requantization record [m, c, e + 1] of row k of a group's record r */
#define WN_RQ(r, k) ((r) + 4 + 3 * (k))

/* FULLY_CONNECTED, 4 rows at a time (rows padded to 4 in the layout; padding not stored) */
static WN_INLINE void wn_fc16_loop(const int32_t *xs, int8_t *y, int32_t n, int32_t nch,
                                   const int32_t *w, const int32_t *r, const wn_fq *f, int flags)
{
    int32_t o, k;
    for (o = 0; o < n; o += 4, w += 8 * nch, r += 16) {
        int32_t acc[4];
        acc[0] = r[0]; acc[1] = r[1]; acc[2] = r[2]; acc[3] = r[3];
        wn_dot16(xs, w, nch, acc);
        if (o + 4 <= n) {
            for (k = 0; k < 4; k++)
                y[o + k] = (int8_t)wn_requant16(acc[k], WN_RQ(r, k), flags, f, o + k);
        } else {
            for (k = 0; o + k < n; k++)
                y[o + k] = (int8_t)wn_requant16(acc[k], WN_RQ(r, k), flags, f, o + k);
        }
    }
}

/* the FAST requantization of a full-range (int8 clamp) record r = [m, c, e + 1] */
#define WN_RQ_FF(acc, r) __ssat(wn_rnd(wn_smmulr((acc), (r)[0]), (r)[1], (r)[2]), 8)

/* 4 accumulators of one row group from its record r (biases) and weights w */
#define WN_GROUP_DOT(xs, w, nch, r, acc)                                                      \
    do {                                                                                      \
        (acc)[0] = (r)[0]; (acc)[1] = (r)[1]; (acc)[2] = (r)[2]; (acc)[3] = (r)[3];           \
        wn_dot16((xs), (w), (nch), (acc));                                                    \
    } while (0)

/* FC with every record FAST and full range, rows % 4 == 0: the 4 rows unrolled (accumulators
 * stay in registers) */
static WN_INLINE void wn_fc16_ff_body(const int32_t *xs, int8_t *y, int32_t n, int32_t nch,
                                   const int32_t *w, const int32_t *r)
{
    int32_t o;
    for (o = 0; o < n; o += 4, w += 8 * nch, r += 16) {
        int32_t acc[4];
        WN_GROUP_DOT(xs, w, nch, r, acc);
        y[o] = (int8_t)WN_RQ_FF(acc[0], r + 4);
        y[o + 1] = (int8_t)WN_RQ_FF(acc[1], r + 7);
        y[o + 2] = (int8_t)WN_RQ_FF(acc[2], r + 10);
        y[o + 3] = (int8_t)WN_RQ_FF(acc[3], r + 13);
    }
}

/* the common input widths (16, 32 columns) get copies with a constant chunk count */
static WN_NOINLINE void wn_fc16_ff(const int32_t *xs, int8_t *y, int32_t n, int32_t nch,
                                   const int32_t *w, const int32_t *r)
{
    if (nch == 8)
        wn_fc16_ff_body(xs, y, n, 8, w, r);
    else if (nch == 4)
        wn_fc16_ff_body(xs, y, n, 4, w, r);
    else
        wn_fc16_ff_body(xs, y, n, nch, w, r);
}

static WN_NOINLINE void wn_fc16_any(const int32_t *xs, int8_t *y, const wn_op *op,
                                    const wn_dsp_rec *d, const wn_fq *f)
{
    wn_fc16_loop(xs, y, op->n, (op->cols + 3) >> 2, d->w, d->rq, f, f->flags);
}

static WN_NOINLINE void wn_fc16(const int8_t *x, int8_t *y, const wn_op *op, const wn_dsp_rec *d)
{
    int32_t xs[WN_DSP_XS];
    const wn_fq f = wn_fq_load(op, d);
    wn_ext16(x, xs, op->cols);
    if (f.flags == WN_FF && (op->n & 3) == 0)
        wn_fc16_ff(xs, y, op->n, (op->cols + 3) >> 2, d->w, d->rq);
    else
        wn_fc16_any(xs, y, op, d, &f);
}

/* gated unit, 4 channels at a time: the filter's 4 rows, then the gate's, on the same input */
static WN_INLINE void wn_gate16_loop(const int32_t *xs, int32_t n, int32_t nch,
                                     const wn_dsp_rec *df, const wn_dsp_rec *dg,
                                     const wn_fq *ff, const wn_fq *fg, const int8_t *tf,
                                     const int8_t *tg, const wn_mulp *q, int8_t *z, int flf,
                                     int flg)
{
    const int32_t *wf = df->w, *wg = dg->w, *rf = df->rq, *rg = dg->rq;
    int32_t c, k;
    for (c = 0; c < n; c += 4, wf += 8 * nch, wg += 8 * nch, rf += 16, rg += 16) {
        int32_t acc[4], t[4];
        acc[0] = rf[0]; acc[1] = rf[1]; acc[2] = rf[2]; acc[3] = rf[3];
        wn_dot16(xs, wf, nch, acc);
        for (k = 0; k < 4; k++)
            t[k] = tf[wn_requant16(acc[k], WN_RQ(rf, k), flf, ff, c + k)];
        acc[0] = rg[0]; acc[1] = rg[1]; acc[2] = rg[2]; acc[3] = rg[3];
        wn_dot16(xs, wg, nch, acc);
        for (k = 0; k < 4; k++)
            z[c + k] = (int8_t)wn_mul1(t[k], tg[wn_requant16(acc[k], WN_RQ(rg, k), flg, fg,
                                                              c + k)], q);
    }
}

/* the gated unit's MUL, FAST and full range: (a - z1)(b - z2) << shl, requantized */
#define WN_MUL_FF(a, b) \
    __ssat(wn_rnd(wn_smmulr(wn_shl(((a) - z1) * ((b) - z2), shl), m), c, e1), 8)

static WN_INLINE void wn_gate16_ff_body(const int32_t *xs, int32_t n, int32_t nch,
                                     const wn_dsp_rec *df, const int8_t *tf, const int8_t *tg,
                                     const int32_t *em, int swap, int8_t *z)
{
    const int32_t *wf = df[0].w, *wg = df[1].w, *rf = df[0].rq, *rg = df[1].rq;
    const int32_t z1 = em[swap], z2 = em[1 - swap], shl = em[2], m = em[3], c = em[4];
    const int32_t e1 = em[5];
    int32_t o;
    for (o = 0; o < n; o += 4, wf += 8 * nch, wg += 8 * nch, rf += 16, rg += 16, z += 4) {
        int32_t acc[4], t0, t1, t2, t3;
        WN_GROUP_DOT(xs, wf, nch, rf, acc);
        t0 = tf[WN_RQ_FF(acc[0], rf + 4)];
        t1 = tf[WN_RQ_FF(acc[1], rf + 7)];
        t2 = tf[WN_RQ_FF(acc[2], rf + 10)];
        t3 = tf[WN_RQ_FF(acc[3], rf + 13)];
        WN_GROUP_DOT(xs, wg, nch, rg, acc);
        z[0] = (int8_t)WN_MUL_FF(t0, tg[WN_RQ_FF(acc[0], rg + 4)]);
        z[1] = (int8_t)WN_MUL_FF(t1, tg[WN_RQ_FF(acc[1], rg + 7)]);
        z[2] = (int8_t)WN_MUL_FF(t2, tg[WN_RQ_FF(acc[2], rg + 10)]);
        z[3] = (int8_t)WN_MUL_FF(t3, tg[WN_RQ_FF(acc[3], rg + 13)]);
    }
}

/* the common input widths (16, 32 columns) get copies with a constant chunk count */
static WN_NOINLINE void wn_gate16_ff(const int32_t *xs, int32_t n, int32_t nch,
                                     const wn_dsp_rec *df, const int8_t *tf, const int8_t *tg,
                                     const int32_t *em, int swap, int8_t *z)
{
    if (nch == 8)
        wn_gate16_ff_body(xs, n, 8, df, tf, tg, em, swap, z);
    else if (nch == 4)
        wn_gate16_ff_body(xs, n, 4, df, tf, tg, em, swap, z);
    else
        wn_gate16_ff_body(xs, n, nch, df, tf, tg, em, swap, z);
}

static WN_NOINLINE void wn_gate16_any(const int32_t *xs, const wn_op *of, const wn_dsp_rec *df,
                                      const wn_fq *ff, const wn_fq *fg, const int8_t *tf,
                                      const int8_t *tg, const wn_mulp *q, int8_t *z)
{
    wn_gate16_loop(xs, of->n, (of->cols + 3) >> 2, df, df + 1, ff, fg, tf, tg, q, z, ff->flags,
                   fg->flags);
}

static WN_NOINLINE void wn_gate16(const int8_t *x, int32_t k, const int8_t *tf,
                                  const int8_t *tg, int swap, int8_t *z)
{
    int32_t xs[WN_DSP_XS];
    const wn_op *of = &wn_ops[k];
    const wn_dsp_rec *df = &wn_dsp[k];
    wn_ext16(x, xs, of->cols);
    if (df[0].flags == WN_FF && df[1].flags == WN_FF && df[4].flags == WN_FF) {
        wn_gate16_ff(xs, of->n, (of->cols + 3) >> 2, df, tf + 128, tg + 128, df[4].ew, swap != 0,
                     z);
    } else {
        const wn_fq ff = wn_fq_load(of, df), fg = wn_fq_load(of + 1, df + 1);
        const wn_mulp q = wn_mq_load(of + 4, swap);
        wn_gate16_any(xs, of, df, &ff, &fg, tf + 128, tg + 128, &q, z);
    }
}

/* FC + the ADD of its output and `other` (which may be the output itself: read first) */
static WN_INLINE void wn_fc_add16_loop(const int32_t *xs, int32_t n, int32_t nch,
                                       const int32_t *w, const int32_t *r, const wn_fq *f,
                                       const int8_t *other, const wn_addp *q, int8_t *y, int flf)
{
    int32_t o, k;
    for (o = 0; o < n; o += 4, w += 8 * nch, r += 16) {
        int32_t acc[4];
        acc[0] = r[0]; acc[1] = r[1]; acc[2] = r[2]; acc[3] = r[3];
        wn_dot16(xs, w, nch, acc);
        for (k = 0; k < 4; k++)
            y[o + k] = (int8_t)wn_add1(wn_requant16(acc[k], WN_RQ(r, k), flf, f, o + k),
                                       other[o + k], q);
    }
}

/* the residual ADD, FAST and full range: t1, t2 the two inputs' tables (doubled rescaled
 * terms, c_export_dsp.elementwise_records) at their middle, the FC's side first; e: [mo, co,
 * eo + 1] */
#define WN_ADD_FF(a, b) __ssat(wn_rnd(wn_smmulr(t1[a] + t2[b], e[0]), e[1], e[2]), 8)

static WN_INLINE void wn_fc_add16_ff_body(const int32_t *xs, int32_t n, int32_t nch,
                                       const int32_t *w, const int32_t *r, const int8_t *other,
                                       const int32_t *e, const int32_t *t1, const int32_t *t2,
                                       int8_t *y)
{
    int32_t o;
    for (o = 0; o < n; o += 4, w += 8 * nch, r += 16) {
        int32_t acc[4], b0, b1, b2, b3;
        WN_GROUP_DOT(xs, w, nch, r, acc);
        b0 = other[o]; b1 = other[o + 1]; b2 = other[o + 2]; b3 = other[o + 3];
        y[o] = (int8_t)WN_ADD_FF(WN_RQ_FF(acc[0], r + 4), b0);
        y[o + 1] = (int8_t)WN_ADD_FF(WN_RQ_FF(acc[1], r + 7), b1);
        y[o + 2] = (int8_t)WN_ADD_FF(WN_RQ_FF(acc[2], r + 10), b2);
        y[o + 3] = (int8_t)WN_ADD_FF(WN_RQ_FF(acc[3], r + 13), b3);
    }
}

/* the common input widths (16, 32 columns) get copies with a constant chunk count */
static WN_NOINLINE void wn_fc_add16_ff(const int32_t *xs, int32_t n, int32_t nch,
                                       const int32_t *w, const int32_t *r, const int8_t *other,
                                       const int32_t *e, const int32_t *t1, const int32_t *t2,
                                       int8_t *y)
{
    if (nch == 8)
        wn_fc_add16_ff_body(xs, n, 8, w, r, other, e, t1, t2, y);
    else if (nch == 4)
        wn_fc_add16_ff_body(xs, n, 4, w, r, other, e, t1, t2, y);
    else
        wn_fc_add16_ff_body(xs, n, nch, w, r, other, e, t1, t2, y);
}

static WN_NOINLINE void wn_fc_add16_any(const int32_t *xs, const wn_op *of, const wn_dsp_rec *d,
                                        const wn_fq *f, const int8_t *other, const wn_addp *q,
                                        int8_t *y)
{
    wn_fc_add16_loop(xs, of->n, (of->cols + 3) >> 2, d->w, d->rq, f, other, q, y, f->flags);
}

static WN_NOINLINE void wn_fc_add16(const int8_t *x, int32_t k, const int8_t *other,
                                    int fc_first, int8_t *y)
{
    int32_t xs[WN_DSP_XS];
    const wn_op *of = &wn_ops[k];
    const wn_dsp_rec *d = &wn_dsp[k];
    wn_ext16(x, xs, of->cols);
    if (d[0].flags == WN_FF && d[1].flags == WN_FF && (of->n & 3) == 0) {
        const int32_t *e = d[1].ew, *ta = e + 5 + 128, *tb = e + 5 + 256 + 128;
        wn_fc_add16_ff(xs, of->n, (of->cols + 3) >> 2, d->w, d->rq, other, e,
                       fc_first ? ta : tb, fc_first ? tb : ta, y);
    } else {
        const wn_fq f = wn_fq_load(of, d);
        const wn_addp q = wn_aq_load(of + 1, !fc_first);
        wn_fc_add16_any(xs, of, d, &f, other, &q, y);
    }
}

/* One FULLY_CONNECTED on weights in the DSP layout (c_export_dsp.fc_weights, not doubled) with
 * the scalar requantization: the inner loop of the step's FCs, for benchmarks. */
void wn_fc_dsp(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int32_t *w16,
               const int32_t *bias, const int32_t *mult, const int32_t *shift, int32_t zp,
               int32_t lo, int32_t hi)
{
    int32_t xs[WN_DSP_XS], o, k;
    const int32_t nch = (cols + 3) >> 2;
    wn_fq f;
    f.mult = mult; f.shift = shift; f.zp = zp; f.lo = lo; f.hi = hi; f.flags = 0;
    wn_ext16(x, xs, cols);
    for (o = 0; o + 4 <= rows; o += 4, w16 += 8 * nch) {
        int32_t acc[4];
        acc[0] = bias[o]; acc[1] = bias[o + 1]; acc[2] = bias[o + 2]; acc[3] = bias[o + 3];
        wn_dot16(xs, w16, nch, acc);
        for (k = 0; k < 4; k++)
            y[o + k] = (int8_t)wn_requant16(acc[k], 0, 0, &f, o + k);
    }
}
#endif /* WN_KERNELS == 2 */

/* ---- the fusion plan -------------------------------------------------------------------------
 * Built once by wn_reset from the operator list: a layer's FC, FC, LUT, LUT, MUL become one
 * gated-unit kernel, an FC whose only use is the next ADD becomes one FC+ADD kernel, and the
 * SOFTMAX whose output is only the probabilities runs on demand (wn_probs).  A pattern is fused
 * only where that is invisible: its intermediate results are read by nothing else before being
 * overwritten (nor by a delay-line write, nor are they the probabilities/logits), and its
 * outputs do not overlap the inputs it still reads. */


static int wn_overlap(int32_t a, int32_t an, int32_t b, int32_t bn)
{
    return an > 0 && bn > 0 && a < b + bn && b < a + an;
}

/* bytes of input `which` (0: in0, 1: in1) that an operator reads */
static int32_t wn_in_len(const wn_op *o, int which)
{
    switch (o->kind) {
    case WN_OP_FC:
        return which ? 0 : o->cols;
    case WN_OP_ADD:
    case WN_OP_MUL:
        return o->n;
    case WN_OP_LUT:
    case WN_OP_SOFTMAX:
    case WN_OP_COPY:
        return which ? 0 : o->n;
    default:
        return 0;
    }
}

static int wn_op_reads(const wn_op *o, int32_t off, int32_t n)
{
    return wn_overlap(o->in0, wn_in_len(o, 0), off, n)
           || wn_overlap(o->in1, wn_in_len(o, 1), off, n);
}

/* Is what ops up to `last` wrote to [off, off+n) read later in the step (before something
 * overwrites it all) or by a delay-line write? */
static int wn_read_later(int32_t off, int32_t n, int32_t last)
{
    int32_t j;
    for (j = last + 1; j < WN_N_OPS; j++) {
        const wn_op *o = &wn_ops[j];
        if (o->kind < WN_OP_GATHER || o->kind > WN_OP_COPY || wn_op_reads(o, off, n))
            return 1;                                    /* unknown kinds count as readers */
        if (o->out <= off && off + n <= o->out + o->n)
            return 0;                                    /* overwritten first */
    }
    for (j = 0; j < WN_N_WRITES; j++)
        if (wn_overlap(wn_dl_writes[j].src, wn_dl_writes[j].width, off, n))
            return 1;
    return 0;
}

/* ... or is one of the step's outputs */
static int wn_used_elsewhere(int32_t off, int32_t n, int32_t last)
{
    return wn_read_later(off, n, last) || wn_overlap(WN_PROBS_OFFSET, 256, off, n)
           || wn_overlap(WN_LOGITS_OFFSET, 256, off, n);
}

static int wn_plan_gate(int32_t k)
{
    const wn_op *f, *g, *l0, *l1, *m;
    int32_t tf_out, tg_out;
    if (k + 4 >= WN_N_OPS)
        return WN_PLAN_OP;
    f = &wn_ops[k]; g = &wn_ops[k + 1]; l0 = &wn_ops[k + 2]; l1 = &wn_ops[k + 3];
    m = &wn_ops[k + 4];
    if (f->kind != WN_OP_FC || g->kind != WN_OP_FC || l0->kind != WN_OP_LUT
            || l1->kind != WN_OP_LUT || m->kind != WN_OP_MUL)
        return WN_PLAN_OP;
    if (f->in0 != g->in0 || f->cols != g->cols || f->n != g->n || (f->n & 3) || l0->n != f->n
            || l1->n != f->n || m->n != f->n)
        return WN_PLAN_OP;
    /* the tables may come in either order; l0 must read f's output */
    if (!(l0->in0 == f->out && l1->in0 == g->out) && !(l0->in0 == g->out && l1->in0 == f->out))
        return WN_PLAN_OP;
    tf_out = l0->in0 == f->out ? l0->out : l1->out;
    tg_out = l0->in0 == f->out ? l1->out : l0->out;
    if (!((m->in0 == tf_out && m->in1 == tg_out) || (m->in0 == tg_out && m->in1 == tf_out)))
        return WN_PLAN_OP;
    if (wn_overlap(m->out, m->n, f->in0, f->cols))
        return WN_PLAN_OP;
    if (wn_used_elsewhere(f->out, f->n, k + 4) || wn_used_elsewhere(g->out, g->n, k + 4)
            || wn_used_elsewhere(l0->out, l0->n, k + 4) || wn_used_elsewhere(l1->out, l1->n, k + 4))
        return WN_PLAN_OP;
    /* nothing in the pattern reads what an earlier member wrote except as the pattern says */
    if (wn_overlap(f->out, f->n, f->in0, f->cols) || wn_overlap(g->out, g->n, f->in0, f->cols))
        return WN_PLAN_OP;
    return m->in0 == tf_out ? WN_PLAN_GATE : WN_PLAN_GATE_SWAP;
}

static int wn_plan_fc_add(int32_t k)
{
    const wn_op *f, *a;
    int32_t other, on;
    if (k + 1 >= WN_N_OPS)
        return WN_PLAN_OP;
    f = &wn_ops[k]; a = &wn_ops[k + 1];
    if (f->kind != WN_OP_FC || a->kind != WN_OP_ADD || (f->n & 3) || a->n != f->n)
        return WN_PLAN_OP;
    if (a->in0 == f->out && a->in1 != f->out)
        other = a->in1;
    else if (a->in1 == f->out && a->in0 != f->out)
        other = a->in0;
    else
        return WN_PLAN_OP;
    on = a->n;
    /* y is written 4 channels at a time while x is read whole for every group; the other
     * addend may be y itself (in place) or apart from it */
    if (wn_overlap(a->out, a->n, f->in0, f->cols))
        return WN_PLAN_OP;
    if (other != a->out && wn_overlap(a->out, a->n, other, on))
        return WN_PLAN_OP;
    if (wn_used_elsewhere(f->out, f->n, k + 1))
        return WN_PLAN_OP;
    return a->in0 == f->out ? WN_PLAN_FC_ADD : WN_PLAN_FC_ADD_2ND;
}

static void wn_build_plan(wn_state *s)
{
    int32_t k;
    for (k = 0; k < WN_N_OPS; k++) {
        int p = wn_plan_gate(k);
        if (p == WN_PLAN_OP)
            p = wn_plan_fc_add(k);
#ifndef WN_OP_HOOK
        if (p == WN_PLAN_OP && wn_ops[k].kind == WN_OP_SOFTMAX && wn_ops[k].out == WN_PROBS_OFFSET
                && !wn_read_later(wn_ops[k].out, wn_ops[k].n, k)
                && !wn_overlap(wn_ops[k].out, 256, WN_LOGITS_OFFSET, 256))
            p = WN_PLAN_LAZY;
#endif
        {
            const int gate = p == WN_PLAN_GATE || p == WN_PLAN_GATE_SWAP;
            const int right = gate ? wn_fc_right_only(&wn_ops[k])
                                         && wn_fc_right_only(&wn_ops[k + 1])
                                   : wn_ops[k].kind == WN_OP_FC && wn_fc_right_only(&wn_ops[k]);
            int var = 0;
#if WN_KERNELS != 2   /* (the DSP kernels read their own records) */
            if (gate)
                var = wn_variant_gate(&wn_ops[k], right);
            else if (p == WN_PLAN_FC_ADD || p == WN_PLAN_FC_ADD_2ND)
                var = wn_variant_fc_add(&wn_ops[k], right);
#endif
            s->plan[k] = (uint8_t)(p | (right ? WN_PLAN_RIGHT : 0) | (var << WN_PLAN_VAR_SHIFT)
                                   | (gate && wn_ops[k + 2].in0 == wn_ops[k].out
                                      ? WN_PLAN_FFIRST : 0));
        }
        if (p == WN_PLAN_GATE || p == WN_PLAN_GATE_SWAP) {
            s->plan[k + 1] = s->plan[k + 2] = s->plan[k + 3] = s->plan[k + 4] = WN_PLAN_OP;
            k += 4;
        } else if (p == WN_PLAN_FC_ADD || p == WN_PLAN_FC_ADD_2ND) {
            s->plan[++k] = WN_PLAN_OP;
        }
    }
}

/* ---- the step ------------------------------------------------------------------------------- */

void wn_reset(wn_state *s)
{
    memset(s, 0, sizeof *s);
    wn_build_plan(s);
}

int wn_set_speaker(wn_state *s, int32_t speaker)
{
    if (speaker < 0 || speaker >= (WN_N_SPEAKERS > 0 ? WN_N_SPEAKERS : 1))
        return -1;
    s->speaker = speaker;
    return 0;
}

static void wn_run_softmax(wn_state *s)
{
    int32_t k;
    for (k = 0; k < WN_N_OPS; k++)
        if ((s->plan[k] & WN_PLAN_KIND) == WN_PLAN_LAZY)
            wn_softmax(s->arena + wn_ops[k].in0, s->arena + wn_ops[k].out, wn_ops[k].n,
                       wn_softmax_exp + 256 * wn_ops[k].aux);
    s->probs_ready = 1;
}

const int8_t *wn_probs(wn_state *s)
{
    if (!s->probs_ready)
        wn_run_softmax(s);
    return s->arena + WN_PROBS_OFFSET;
}

const int8_t *wn_logits(const wn_state *s) { return s->arena + WN_LOGITS_OFFSET; }

const int8_t *wn_delay_write(const wn_state *s, int k)
{
    return s->arena + wn_dl_writes[k].src;
}

/* Profiling hook (firmware_sim.emulate builds with -DWN_OP_HOOK=marker): called before every
 * operator or fused kernel and after the last one. */
#ifdef WN_OP_HOOK
void WN_OP_HOOK(void);
#endif

static void wn_run_ops(wn_state *s, int32_t code)
{
    int8_t *a = s->arena;
    int32_t k;
    for (k = 0; k < WN_N_OPS; k++) {
        const wn_op *op = &wn_ops[k];
#ifdef WN_OP_HOOK
        WN_OP_HOOK();
#endif
#ifdef WN_OP_HOOK
        /* a fused kernel's instructions count for its first operator; its other operators
         * get empty intervals (firmware_sim.emulate fits per-operator costs from these) */
#define WN_HOOK_SKIPPED(nk) \
    do { int32_t h_; for (h_ = 0; h_ < (nk); h_++) WN_OP_HOOK(); } while (0)
#else
#define WN_HOOK_SKIPPED(nk) ((void)0)
#endif
        const int right = (s->plan[k] & WN_PLAN_RIGHT) != 0;
#if WN_KERNELS == 2
        (void)right;   /* the DSP records carry their own flags */
#endif
        switch (s->plan[k] & WN_PLAN_KIND) {
        case WN_PLAN_GATE:
        case WN_PLAN_GATE_SWAP: {
#if WN_KERNELS == 2
            const wn_op *l0 = op + 2, *l1 = op + 3, *m = op + 4;
            const int f_first = l0->in0 == op->out;
            wn_gate16(a + op->in0, k, wn_luts + 256 * (f_first ? l0 : l1)->aux,
                      wn_luts + 256 * (f_first ? l1 : l0)->aux,
                      (s->plan[k] & WN_PLAN_KIND) == WN_PLAN_GATE_SWAP, a + m->out);
#else
            wn_gate(a, op, s->plan[k]);
#endif
            WN_HOOK_SKIPPED(4);
            k += 4;
            continue;
        }
        case WN_PLAN_FC_ADD:
        case WN_PLAN_FC_ADD_2ND: {
#if WN_KERNELS == 2
            const wn_op *ad = op + 1;
            const int first = (s->plan[k] & WN_PLAN_KIND) == WN_PLAN_FC_ADD;
            wn_fc_add16(a + op->in0, k, a + (first ? ad->in1 : ad->in0), first, a + ad->out);
#else
            wn_fc_add(a, op, s->plan[k], (s->plan[k] & WN_PLAN_VAR) >> WN_PLAN_VAR_SHIFT);
#endif
            WN_HOOK_SKIPPED(1);
            k += 1;
            continue;
        }
        case WN_PLAN_LAZY:
            s->probs_ready = 0;
            continue;
        default:
            break;
        }
        switch (op->kind) {
        case WN_OP_GATHER: {
            const int32_t idx = op->aux ? s->speaker : code;
#if WN_KERNELS == 2
            wn_copy(a + op->out, wn_dsp[k].tab + idx * op->n, op->n);
#else
            wn_copy(a + op->out, wn_weights + op->w + idx * op->n, op->n);
#endif
            break;
        }
        case WN_OP_FC: {
#if WN_KERNELS == 2
            wn_fc16(a + op->in0, a + op->out, op, &wn_dsp[k]);
#else
            const int32_t *p = wn_iparams + op->p;
            wn_fc_r(a + op->in0, a + op->out, op->n, op->cols, wn_weights + op->w,
                    wn_bias + op->q, wn_mult + op->q, wn_shift + op->q, p[0], p[1], p[2], right,
#if WN_KERNELS == 3
                    wn_rq + 3 * op->q
#else
                    0
#endif
                    );
#endif
            break;
        }
        case WN_OP_ADD:
            wn_add(a + op->in0, a + op->in1, a + op->out, op->n, wn_iparams + op->p);
            break;
        case WN_OP_MUL:
            wn_mul(a + op->in0, a + op->in1, a + op->out, op->n, wn_iparams + op->p);
            break;
        case WN_OP_LUT:
            wn_lut(a + op->in0, a + op->out, op->n, wn_luts + 256 * op->aux);
            break;
        case WN_OP_SOFTMAX:
            wn_softmax(a + op->in0, a + op->out, op->n, wn_softmax_exp + 256 * op->aux);
            break;
        case WN_OP_COPY:
            memmove(a + op->out, a + op->in0, (size_t)op->n);
            break;
        default:
            break;
        }
    }
#ifdef WN_OP_HOOK
    WN_OP_HOOK();
#endif
}

static void wn_fill(int8_t *dst, int32_t v, int32_t n)
{
#if WN_KERNELS == 3
    int32_t i;
    const int8x16_t z = vdupq_n_s8((int8_t)v);
    for (i = 0; i < n; i += 16)
        vstrbq_p_s8(dst + i, z, vctp8q((uint32_t)(n - i)));
#else
    memset(dst, v, (size_t)n);
#endif
}

int wn_step(wn_state *s, int32_t code, int8_t *probs, int8_t *logits)
{
    int32_t k;
    if (code < 0 || code > 255)
        return -1;
    /* delay-line reads: the write of step t - delay, or the read's zero point before that */
    for (k = 0; k < WN_N_READS; k++) {
        const wn_dl_read *r = &wn_dl_reads[k];
        const wn_dl_write *wr = &wn_dl_writes[r->write];
        if (s->filled < (uint32_t)r->delay) {
            wn_fill(s->arena + r->dst, r->zero_point, wr->width);
        } else {
            int32_t slot = (int32_t)s->wpos[r->write] - r->delay;
            if (slot < 0)
                slot += wr->length;
            wn_copy(s->arena + r->dst, s->ring + wr->ring + slot * wr->width, wr->width);
        }
    }
    wn_run_ops(s, code);
    for (k = 0; k < WN_N_WRITES; k++) {
        const wn_dl_write *wr = &wn_dl_writes[k];
        uint32_t pos = s->wpos[k];
        wn_copy(s->ring + wr->ring + pos * (uint32_t)wr->width, s->arena + wr->src, wr->width);
        s->wpos[k] = ++pos == (uint32_t)wr->length ? 0u : pos;
    }
    if (s->filled < WN_MAX_DELAY)
        s->filled++;
    s->t++;
    if (probs)
        memcpy(probs, wn_probs(s), 256);
    if (logits)
        memcpy(logits, s->arena + WN_LOGITS_OFFSET, 256);
    return 0;
}

/* ---- sampling (wavenet_edge/sampling.py) ---------------------------------------------------- */

uint32_t wn_pcg32_next(wn_sampler *r)
{
    const uint64_t old = r->state;
    const uint32_t xs = (uint32_t)(((old >> 18) ^ old) >> 27);
    const uint32_t rot = (uint32_t)(old >> 59);
    r->state = old * 6364136223846793005ull + r->inc;
    return (xs >> rot) | (xs << ((32u - rot) & 31u));
}

void wn_sampler_init(wn_sampler *r, uint64_t seed, uint64_t stream, int32_t mode,
                     const uint16_t *table)
{
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)wn_pcg32_next(r);
    r->state += seed;
    (void)wn_pcg32_next(r);
    r->mode = mode;
    r->table = table;
}

static int32_t wn_max256(const int8_t *v)
{
#if WN_KERNELS == 3
    int8x16_t m = vldrbq_s8(v);
    int32_t i;
    for (i = 16; i < 256; i += 16)
        m = vmaxq_s8(m, vldrbq_s8(v + i));
    return vmaxvq_s8(-128, m);
#elif WN_KERNELS == 2
    /* 4 bytes at a time: SSUB8 sets the per-byte GE flags, SEL keeps the larger bytes */
    uint32_t m = wn_ld32(v);
    int32_t i, mx;
    for (i = 4; i < 256; i += 4) {
        const uint32_t x = wn_ld32(v + i);
        (void)__ssub8((int8x4_t)x, (int8x4_t)m);
        m = (uint32_t)__sel((uint8x4_t)x, (uint8x4_t)m);
    }
    mx = (int8_t)m;
    for (i = 8; i < 32; i += 8)
        if ((int8_t)(m >> i) > mx)
            mx = (int8_t)(m >> i);
    return mx;
#else
    int32_t i, mx = -128;
    for (i = 0; i < 256; i++)
        if (v[i] > mx)
            mx = v[i];
    return mx;
#endif
}

/* the first index of the largest value */
static int32_t wn_argmax_first(const int8_t *v)
{
    const int32_t mx = wn_max256(v);
    int32_t i = 0;
    while (i < 255 && v[i] != mx)
        i++;
    return i;
}

/* w[i] = table[qmax - logits[i]] (Q15, so uint16), bsum[b] = w[16b] + ... + w[16b + 15];
 * returns the total (< 2**24) */
static uint32_t wn_table_weights(const int8_t *logits, const uint16_t *table, uint16_t *w,
                                 uint32_t *bsum)
{
    const int32_t mx = wn_max256(logits);
    uint32_t total = 0;
    int32_t b;
#if WN_KERNELS == 3
    /* qmax - logit lies in 0..255: int16 lanes, 8 table entries per gather */
    const int16x8_t vmx = vdupq_n_s16((int16_t)mx);
    for (b = 0; b < 16; b++) {
        const int8_t *l = logits + 16 * b;
        const uint16x8_t e0 = vldrhq_gather_shifted_offset_u16(
            table, vreinterpretq_u16_s16(vsubq_s16(vmx, vldrbq_s16(l))));
        const uint16x8_t e1 = vldrhq_gather_shifted_offset_u16(
            table, vreinterpretq_u16_s16(vsubq_s16(vmx, vldrbq_s16(l + 8))));
        const uint32_t sb = vaddvaq_u16(vaddvq_u16(e0), e1);
        vstrhq_u16(w + 16 * b, e0);
        vstrhq_u16(w + 16 * b + 8, e1);
        bsum[b] = sb;
        total += sb;
    }
#else
    for (b = 0; b < 16; b++) {
        const int8_t *l = logits + 16 * b;
        uint16_t *wb = w + 16 * b;
        uint32_t sb = 0;
        int32_t i;
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 16
#endif
        for (i = 0; i < 16; i++) {
            const uint16_t e = table[mx - l[i]];
            wb[i] = e;
            sb += e;
        }
        bsum[b] = sb;
        total += sb;
    }
#endif
    return total;
}

/* smallest i with w[0] + ... + w[i] > thr (thr < the total): the block of 16 first, then
 * within it */
static int32_t wn_inverse_cdf(const uint16_t *w, const uint32_t *bsum, uint32_t thr)
{
    uint32_t acc = 0;
    int32_t b = 0, i, end;
    while (b < 15 && acc + bsum[b] <= thr)
        acc += bsum[b++];
    end = 16 * b + 15;
    for (i = 16 * b; i < end; i++) {
        acc += w[i];
        if (acc > thr)
            return i;
    }
    return end;
}

int32_t wn_sample(wn_sampler *r, const int8_t *logits)
{
    uint16_t w[256];
    uint32_t bsum[16], total, u;
    if (r->mode == WN_SAMPLE_GREEDY)
        return wn_argmax_first(logits);
    total = wn_table_weights(logits, r->table, w, bsum);
    if (total == 0)
        return wn_argmax_first(logits);
    u = wn_pcg32_next(r);
    return wn_inverse_cdf(w, bsum, (uint32_t)(((uint64_t)u * (uint64_t)total) >> 32));
}

void wn_generate(wn_state *s, wn_sampler *r, int32_t first, int32_t *out, uint32_t n)
{
    uint32_t j;
    int32_t cur = first;
    for (j = 0; j < n; j++) {
        (void)wn_step(s, cur, 0, 0);
        cur = wn_sample(r, wn_logits(s));
        out[j] = cur;
    }
}
