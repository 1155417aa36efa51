/* wavenet-edge int8 step engine (C99, no heap, no libc beyond memcpy/memset).
 *
 * One wn_step() = one generated sample: delay-line reads, every operator of the exported program,
 * delay-line writes.  wn_reset plans fused kernels from the operator list (a layer's gated unit,
 * an FC with the ADD that consumes it) where the fusion is invisible in the outputs, and leaves
 * the SOFTMAX to wn_probs (computed on demand: sampling on the logits does not need it).  The arithmetic is the TFLM reference int8 arithmetic (gemmlowp double
 * rounding), bit-exact with wavenet_edge.Engine(profile="tflm").  Model data (weights, biases,
 * multipliers, tables, the operator list) lives in wavenet_model.c as const arrays (flash);
 * the state below is the only RAM the engine needs (static or on the stack, caller's choice).
 *
 * Kernel variant (compile time): WN_KERNELS = 0 auto (MVE if __ARM_FEATURE_MVE, else DSP if
 * __ARM_FEATURE_DSP, else plain C), 1 plain C, 2 DSP extension (SXTB16/SMLAD), 3 MVE (Helium).
 * The default comes from wavenet_model.h; override with -DWN_KERNELS=n.
 */
#ifndef WAVENET_ENGINE_H
#define WAVENET_ENGINE_H

#include <stdint.h>
#include "wavenet_model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Per-stream state: the activation arena, the delay-line rings and the ring positions. */
typedef struct {
    int8_t arena[WN_ARENA_SIZE];      /* every int8 activation of one step */
    int8_t ring[WN_RING_SIZE];        /* one ring per distinct delay-line write */
    uint32_t wpos[WN_N_WRITES_ALLOC]; /* slot of the next write in each ring (t mod length) */
    uint32_t filled;                  /* samples since reset, saturating at WN_MAX_DELAY */
    uint32_t t;                       /* samples since reset (wraps after 2**32) */
    int32_t speaker;                  /* global-conditioning speaker id (0 without gc) */
    uint32_t probs_ready;             /* the SOFTMAX of this step has run (wn_probs) */
    uint8_t plan[WN_N_OPS];           /* fused kernels (wn_reset builds it from the op list) */
} wn_state;

/* PCG32 sampler on the int8 logits (wavenet_edge.sampling): mode WN_SAMPLE_TABLE draws with the
 * weights table[qmax - logit] (256 Q15 weights, wn_sample_table: the export's temperature, the
 * SOFTMAX's own exponentials at temperature 1), WN_SAMPLE_GREEDY takes the first largest logit.
 * Neither needs the SOFTMAX (wn_probs). */
typedef struct {
    uint64_t state;
    uint64_t inc;
    int32_t mode;
    const uint16_t *table;
} wn_sampler;

#define WN_SAMPLE_TABLE 1
#define WN_SAMPLE_GREEDY 2

/* Back to silence: every delay-line read at its zero point; speaker 0. */
void wn_reset(wn_state *s);
/* Speaker id for global conditioning; returns 0, or -1 if out of range (state unchanged). */
int wn_set_speaker(wn_state *s, int32_t speaker);
/* One step on class index `code` (0..255) of x[t].  Copies the int8 probabilities (scale 1/256,
 * zero point -128) and logits (WN_LOGITS_SCALE, WN_LOGITS_ZERO_POINT) of x[t+1] to `probs` /
 * `logits` (256 bytes each; either may be NULL).  Returns 0, or -1 for a bad code. */
int wn_step(wn_state *s, int32_t code, int8_t *probs, int8_t *logits);
/* Pointers into the arena, valid until the next wn_step.  The probabilities are computed on
 * demand (the 256-way SOFTMAX is not part of the step unless `probs` is passed to wn_step or
 * wn_probs is called; the logits sampler does not need it). */
const int8_t *wn_probs(wn_state *s);
const int8_t *wn_logits(const wn_state *s);
/* What delay-line write k (0..WN_N_WRITES-1, contract order) produced at the last step. */
const int8_t *wn_delay_write(const wn_state *s, int k);

void wn_sampler_init(wn_sampler *r, uint64_t seed, uint64_t stream, int32_t mode,
                     const uint16_t *table);
uint32_t wn_pcg32_next(wn_sampler *r);
/* Next class index from one step's int8 logits (wavenet_edge.sampling.sample_one). */
int32_t wn_sample(wn_sampler *r, const int8_t *logits);
/* Free-running generation: feed `first`, then each sampled code; n codes into `out`. */
void wn_generate(wn_state *s, wn_sampler *r, int32_t first, int32_t *out, uint32_t n);

/* One FULLY_CONNECTED: y[o] = clamp(requant(bias[o] + sum_i w[o*cols+i]*x[i]) + zp, lo, hi)
 * with the kernel variant selected at compile time (exposed for benchmarks). */
void wn_fc(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int8_t *w,
           const int32_t *bias, const int32_t *mult, const int32_t *shift,
           int32_t zp, int32_t lo, int32_t hi);
#if WN_KERNELS == 2
/* The same on weights in the DSP layout (firmware_sim.c_export_dsp.fc_weights: int16 pairs,
 * rows in groups of 4, cols <= WN_DSP_MAX_COLS; rows % 4 == 0), as the step's FCs use them. */
void wn_fc_dsp(const int8_t *x, int8_t *y, int32_t rows, int32_t cols, const int32_t *w16,
               const int32_t *bias, const int32_t *mult, const int32_t *shift,
               int32_t zp, int32_t lo, int32_t hi);
#endif
/* The variant compiled in: 1 plain, 2 DSP, 3 MVE. */
int wn_kernels(void);

#ifdef __cplusplus
}
#endif
#endif
