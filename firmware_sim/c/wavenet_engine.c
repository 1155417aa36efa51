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

/* ---- FULLY_CONNECTED kernels ---------------------------------------------------------------- */

static inline int8_t wn_requant(int32_t acc, int32_t m, int32_t sh, int32_t zp, int32_t lo,
                                int32_t hi)
{
    return (int8_t)wn_clamp(wn_mbqm(acc, m, sh) + zp, lo, hi);
}

/* The bias has the input zero point folded in (wavenet_edge/program.py); int32 wraps as there. */
static inline int32_t wn_addw(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

#if WN_KERNELS == 1
int wn_kernels(void) { return 1; }

void wn_fc(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int8_t *w,
           const int32_t *bias, const int32_t *mult, const int32_t *shift,
           int32_t zp, int32_t lo, int32_t hi)
{
    int32_t o, i;
    for (o = 0; o < rows; o++) {
        const int8_t *wr = w + (size_t)o * (size_t)cols;
        int32_t acc = 0;
        for (i = 0; i < cols; i++)
            acc += (int32_t)wr[i] * (int32_t)x[i];
        y[o] = wn_requant(wn_addw(acc, bias[o]), mult[o], shift[o], zp, lo, hi);
    }
}
#endif

#if WN_KERNELS == 2
int wn_kernels(void) { return 2; }

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

/* Four (then two, then one) rows at a time share the sign-extended input; SXTB16 splits 4 int8
 * into 2 x (2 int16) (bytes 0,2 and 1,3), SMLAD does 2 MACs.  Both operands are split the same
 * way, so the pairs match and the sum is the plain dot product. */
void wn_fc(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int8_t *w,
           const int32_t *bias, const int32_t *mult, const int32_t *shift,
           int32_t zp, int32_t lo, int32_t hi)
{
    int32_t o = 0, i;
    const int32_t c4 = cols & ~3;
    for (; o + 4 <= rows; o += 4) {
        const int8_t *w0 = w + (size_t)o * (size_t)cols;
        const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (i = 0; i < c4; i += 4) {
            const uint32_t xv = wn_ld32(x + i);
            const int16x2_t xe = __sxtb16(xv), xo = wn_sxtb16_ror8(xv);
            uint32_t v = wn_ld32(w0 + i);
            a0 = __smlad(__sxtb16(v), xe, a0);
            a0 = __smlad(wn_sxtb16_ror8(v), xo, a0);
            v = wn_ld32(w1 + i);
            a1 = __smlad(__sxtb16(v), xe, a1);
            a1 = __smlad(wn_sxtb16_ror8(v), xo, a1);
            v = wn_ld32(w2 + i);
            a2 = __smlad(__sxtb16(v), xe, a2);
            a2 = __smlad(wn_sxtb16_ror8(v), xo, a2);
            v = wn_ld32(w3 + i);
            a3 = __smlad(__sxtb16(v), xe, a3);
            a3 = __smlad(wn_sxtb16_ror8(v), xo, a3);
        }
        for (; i < cols; i++) {
            a0 += (int32_t)w0[i] * (int32_t)x[i];
            a1 += (int32_t)w1[i] * (int32_t)x[i];
            a2 += (int32_t)w2[i] * (int32_t)x[i];
            a3 += (int32_t)w3[i] * (int32_t)x[i];
        }
        y[o] = wn_requant(wn_addw(a0, bias[o]), mult[o], shift[o], zp, lo, hi);
        y[o + 1] = wn_requant(wn_addw(a1, bias[o + 1]), mult[o + 1], shift[o + 1], zp, lo, hi);
        y[o + 2] = wn_requant(wn_addw(a2, bias[o + 2]), mult[o + 2], shift[o + 2], zp, lo, hi);
        y[o + 3] = wn_requant(wn_addw(a3, bias[o + 3]), mult[o + 3], shift[o + 3], zp, lo, hi);
    }
    for (; o + 2 <= rows; o += 2) {
        const int8_t *w0 = w + (size_t)o * (size_t)cols;
        const int8_t *w1 = w0 + cols;
        int32_t a0 = 0, a1 = 0;
        for (i = 0; i < c4; i += 4) {
            const uint32_t xv = wn_ld32(x + i);
            const int16x2_t xe = __sxtb16(xv), xo = wn_sxtb16_ror8(xv);
            const uint32_t v0 = wn_ld32(w0 + i), v1 = wn_ld32(w1 + i);
            a0 = __smlad(__sxtb16(v0), xe, a0);
            a0 = __smlad(wn_sxtb16_ror8(v0), xo, a0);
            a1 = __smlad(__sxtb16(v1), xe, a1);
            a1 = __smlad(wn_sxtb16_ror8(v1), xo, a1);
        }
        for (; i < cols; i++) {
            a0 += (int32_t)w0[i] * (int32_t)x[i];
            a1 += (int32_t)w1[i] * (int32_t)x[i];
        }
        y[o] = wn_requant(wn_addw(a0, bias[o]), mult[o], shift[o], zp, lo, hi);
        y[o + 1] = wn_requant(wn_addw(a1, bias[o + 1]), mult[o + 1], shift[o + 1], zp, lo, hi);
    }
    for (; o < rows; o++) {
        const int8_t *w0 = w + (size_t)o * (size_t)cols;
        int32_t a0 = 0;
        for (i = 0; i < c4; i += 4) {
            const uint32_t xv = wn_ld32(x + i), v0 = wn_ld32(w0 + i);
            a0 = __smlad(__sxtb16(v0), __sxtb16(xv), a0);
            a0 = __smlad(wn_sxtb16_ror8(v0), wn_sxtb16_ror8(xv), a0);
        }
        for (; i < cols; i++)
            a0 += (int32_t)w0[i] * (int32_t)x[i];
        y[o] = wn_requant(wn_addw(a0, bias[o]), mult[o], shift[o], zp, lo, hi);
    }
}
#endif

#if WN_KERNELS == 3
int wn_kernels(void) { return 3; }

/* MultiplyByQuantizedMultiplier on 4 lanes, per-lane multiplier/shift: VSHL (wrapping) by the
 * left shift, VQRDMULH (= SRDHM, including its one saturating case), then gemmlowp's
 * RoundingDivideByPOT with per-lane exponents (mask/threshold form, ties away from zero). */
static inline int32x4_t wn_mbqm4(int32x4_t x, int32x4_t m, int32x4_t shift)
{
    const int32x4_t zero = vdupq_n_s32(0);
    const int32x4_t left = vmaxq_s32(shift, zero);
    const int32x4_t right = vmaxq_s32(vnegq_s32(shift), zero);
    const int32x4_t h = vqrdmulhq_s32(vshlq_s32(x, left), m);
    const int32x4_t mask = vsubq_n_s32(vshlq_s32(vdupq_n_s32(1), right), 1);
    const int32x4_t rem = vandq_s32(h, mask);
    const int32x4_t thr = vsubq_s32(vshrq_n_s32(mask, 1), vshrq_n_s32(h, 31));
    const int32x4_t q = vshlq_s32(h, vnegq_s32(right));
    return vaddq_m_n_s32(q, q, 1, vcmpgtq_s32(rem, thr));
}

static inline void wn_requant4(int32x4_t acc, const int32_t *bias, const int32_t *mult,
                               const int32_t *shift, int32_t zp, int32_t lo, int32_t hi, int8_t *y)
{
    int32x4_t v = wn_mbqm4(vaddq_s32(acc, vldrwq_s32(bias)), vldrwq_s32(mult), vldrwq_s32(shift));
    v = vminq_s32(vmaxq_s32(vaddq_n_s32(v, zp), vdupq_n_s32(lo)), vdupq_n_s32(hi));
    vstrbq_s32(y, v);
}

/* Four rows at a time share each 16-byte input vector; VMLADAVA.S8 multiplies 16 int8 pairs and
 * adds them to a scalar int32; the tail is tail-predicated (VCTP8, zeroing loads). */
void wn_fc(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int8_t *w,
           const int32_t *bias, const int32_t *mult, const int32_t *shift,
           int32_t zp, int32_t lo, int32_t hi)
{
    int32_t o = 0, i;
    for (; o + 4 <= rows; o += 4) {
        const int8_t *w0 = w + (size_t)o * (size_t)cols;
        const int8_t *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (i = 0; i < cols; i += 16) {
            const mve_pred16_t p = vctp8q((uint32_t)(cols - i));
            const int8x16_t xv = vldrbq_z_s8(x + i, p);
            a0 = vmladavaq_p_s8(a0, xv, vldrbq_z_s8(w0 + i, p), p);
            a1 = vmladavaq_p_s8(a1, xv, vldrbq_z_s8(w1 + i, p), p);
            a2 = vmladavaq_p_s8(a2, xv, vldrbq_z_s8(w2 + i, p), p);
            a3 = vmladavaq_p_s8(a3, xv, vldrbq_z_s8(w3 + i, p), p);
        }
        {
            int32x4_t acc = vdupq_n_s32(a0);
            acc = vsetq_lane_s32(a1, acc, 1);
            acc = vsetq_lane_s32(a2, acc, 2);
            acc = vsetq_lane_s32(a3, acc, 3);
            wn_requant4(acc, bias + o, mult + o, shift + o, zp, lo, hi, y + o);
        }
    }
    for (; o < rows; o++) {
        const int8_t *w0 = w + (size_t)o * (size_t)cols;
        int32_t a0 = 0;
        for (i = 0; i < cols; i += 16) {
            const mve_pred16_t p = vctp8q((uint32_t)(cols - i));
            a0 = vmladavaq_p_s8(a0, vldrbq_z_s8(x + i, p), vldrbq_z_s8(w0 + i, p), p);
        }
        y[o] = wn_requant(wn_addw(a0, bias[o]), mult[o], shift[o], zp, lo, hi);
    }
}
#endif

/* ---- element-wise operators (TFLM reference_integer_ops) ------------------------------------ */

#if WN_KERNELS == 3
/* ADD, p = [z1, z2, left, m1, s1, m2, s2, mo, so, zo, min, max]: 4 lanes at a time, tail-predicated */
static void wn_add(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n, const int32_t *p)
{
    int32_t i;
    const int32x4_t left = vdupq_n_s32(p[2]);
    const int32x4_t m1 = vdupq_n_s32(p[3]), s1 = vdupq_n_s32(p[4]);
    const int32x4_t m2 = vdupq_n_s32(p[5]), s2 = vdupq_n_s32(p[6]);
    const int32x4_t mo = vdupq_n_s32(p[7]), so = vdupq_n_s32(p[8]);
    const int32x4_t lo = vdupq_n_s32(p[10]), hi = vdupq_n_s32(p[11]);
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        const int32x4_t d1 = vsubq_n_s32(vldrbq_z_s32(x1 + i, pr), p[0]);
        const int32x4_t d2 = vsubq_n_s32(vldrbq_z_s32(x2 + i, pr), p[1]);
        const int32x4_t v1 = wn_mbqm4(vshlq_s32(d1, left), m1, s1);
        const int32x4_t v2 = wn_mbqm4(vshlq_s32(d2, left), m2, s2);
        int32x4_t r = vaddq_n_s32(wn_mbqm4(vaddq_s32(v1, v2), mo, so), p[9]);
        r = vminq_s32(vmaxq_s32(r, lo), hi);
        vstrbq_p_s32(y + i, r, pr);
    }
}

/* MUL, p = [z1, z2, m, s, zo, min, max] */
static void wn_mul(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n, const int32_t *p)
{
    int32_t i;
    const int32x4_t m = vdupq_n_s32(p[2]), sh = vdupq_n_s32(p[3]);
    const int32x4_t lo = vdupq_n_s32(p[5]), hi = vdupq_n_s32(p[6]);
    for (i = 0; i < n; i += 4) {
        const mve_pred16_t pr = vctp32q((uint32_t)(n - i));
        const int32x4_t d1 = vsubq_n_s32(vldrbq_z_s32(x1 + i, pr), p[0]);
        const int32x4_t d2 = vsubq_n_s32(vldrbq_z_s32(x2 + i, pr), p[1]);
        int32x4_t r = vaddq_n_s32(wn_mbqm4(vmulq_s32(d1, d2), m, sh), p[4]);
        r = vminq_s32(vmaxq_s32(r, lo), hi);
        vstrbq_p_s32(y + i, r, pr);
    }
}
#else
/* ADD, p = [z1, z2, left, m1, s1, m2, s2, mo, so, zo, min, max]. */
static void wn_add(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n, const int32_t *p)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const int32_t d1 = (int32_t)x1[i] - p[0], d2 = (int32_t)x2[i] - p[1];
        const int32_t v1 = wn_mbqm((int32_t)((uint32_t)d1 << p[2]), p[3], p[4]);
        const int32_t v2 = wn_mbqm((int32_t)((uint32_t)d2 << p[2]), p[5], p[6]);
        const int32_t s = (int32_t)((uint32_t)v1 + (uint32_t)v2);
        const int32_t r = wn_mbqm(s, p[7], p[8]) + p[9];
        y[i] = (int8_t)wn_clamp(r, p[10], p[11]);
    }
}

/* MUL, p = [z1, z2, m, s, zo, min, max]. */
static void wn_mul(const int8_t *x1, const int8_t *x2, int8_t *y, int32_t n, const int32_t *p)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        const int32_t prod = ((int32_t)x1[i] - p[0]) * ((int32_t)x2[i] - p[1]);
        y[i] = (int8_t)wn_clamp(wn_mbqm(prod, p[2], p[3]) + p[4], p[5], p[6]);
    }
}
#endif

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

/* ---- the step ------------------------------------------------------------------------------- */

void wn_reset(wn_state *s)
{
    memset(s, 0, sizeof *s);
}

int wn_set_speaker(wn_state *s, int32_t speaker)
{
    if (speaker < 0 || speaker >= (WN_N_SPEAKERS > 0 ? WN_N_SPEAKERS : 1))
        return -1;
    s->speaker = speaker;
    return 0;
}

const int8_t *wn_probs(const wn_state *s) { return s->arena + WN_PROBS_OFFSET; }
const int8_t *wn_logits(const wn_state *s) { return s->arena + WN_LOGITS_OFFSET; }

const int8_t *wn_delay_write(const wn_state *s, int k)
{
    return s->arena + wn_dl_writes[k].src;
}

/* Profiling hook (firmware_sim.emulate builds with -DWN_OP_HOOK=marker): called before every
 * operator and after the last one. */
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
        switch (op->kind) {
        case WN_OP_GATHER: {
            const int32_t idx = op->aux ? s->speaker : code;
            memcpy(a + op->out, wn_weights + op->w + idx * op->n, (size_t)op->n);
            break;
        }
        case WN_OP_FC: {
            const int32_t *p = wn_iparams + op->p;
            wn_fc(a + op->in0, a + op->out, op->n, op->cols, wn_weights + op->w,
                  wn_bias + op->q, wn_mult + op->q, wn_shift + op->q, p[0], p[1], p[2]);
            break;
        }
        case WN_OP_ADD:
            wn_add(a + op->in0, a + op->in1, a + op->out, op->n, wn_iparams + op->p);
            break;
        case WN_OP_MUL:
            wn_mul(a + op->in0, a + op->in1, a + op->out, op->n, wn_iparams + op->p);
            break;
        case WN_OP_LUT: {
            const int8_t *tb = wn_luts + 256 * op->aux;
            const int8_t *in = a + op->in0;
            int8_t *out = a + op->out;
            int32_t i;
            for (i = 0; i < op->n; i++)
                out[i] = tb[(int32_t)in[i] + 128];
            break;
        }
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
            memset(s->arena + r->dst, r->zero_point, (size_t)wr->width);
        } else {
            int32_t slot = (int32_t)s->wpos[r->write] - r->delay;
            if (slot < 0)
                slot += wr->length;
            memcpy(s->arena + r->dst, s->ring + wr->ring + slot * wr->width, (size_t)wr->width);
        }
    }
    wn_run_ops(s, code);
    for (k = 0; k < WN_N_WRITES; k++) {
        const wn_dl_write *wr = &wn_dl_writes[k];
        uint32_t pos = s->wpos[k];
        memcpy(s->ring + wr->ring + pos * (uint32_t)wr->width, s->arena + wr->src,
               (size_t)wr->width);
        s->wpos[k] = ++pos == (uint32_t)wr->length ? 0u : pos;
    }
    if (s->filled < WN_MAX_DELAY)
        s->filled++;
    s->t++;
    if (probs)
        memcpy(probs, s->arena + WN_PROBS_OFFSET, 256);
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
                     const int32_t *table)
{
    r->state = 0;
    r->inc = (stream << 1) | 1u;
    (void)wn_pcg32_next(r);
    r->state += seed;
    (void)wn_pcg32_next(r);
    r->mode = mode;
    r->table = table;
}

static int32_t wn_argmax_first(const int8_t *v)
{
    int32_t i, best = 0;
    for (i = 1; i < 256; i++)
        if (v[i] > v[best])
            best = i;
    return best;
}

int32_t wn_sample(wn_sampler *r, const int8_t *probs, const int8_t *logits)
{
    uint32_t w[256], total = 0, acc = 0, u, thr;
    int32_t i;
    if (r->mode == WN_SAMPLE_GREEDY)
        return wn_argmax_first(logits);
    if (r->mode == WN_SAMPLE_PROBS) {
        for (i = 0; i < 256; i++)
            total += (w[i] = (uint32_t)((int32_t)probs[i] + 128));
    } else {
        int32_t mx = -128;
        for (i = 0; i < 256; i++)
            if (logits[i] > mx)
                mx = logits[i];
        for (i = 0; i < 256; i++)
            total += (w[i] = (uint32_t)r->table[mx - logits[i]]);
    }
    if (total == 0)
        return wn_argmax_first(logits);
    u = wn_pcg32_next(r);
    thr = (uint32_t)(((uint64_t)u * (uint64_t)total) >> 32);
    for (i = 0; i < 256; i++) {
        acc += w[i];
        if (acc > thr)
            return i;
    }
    return 255;
}

void wn_generate(wn_state *s, wn_sampler *r, int32_t first, int32_t *out, uint32_t n)
{
    uint32_t j;
    int32_t cur = first;
    for (j = 0; j < n; j++) {
        (void)wn_step(s, cur, 0, 0);
        cur = wn_sample(r, wn_probs(s), wn_logits(s));
        out[j] = cur;
    }
}
