/* wavenet-edge local conditioning (vocoders) for the C step engine (C99, no heap).
 *
 * A vocoder's step graph takes one int8 row of sample-rate features per step (its cond input,
 * WN_COND_CHANNELS bytes at arena offset WN_COND_OFFSET); with an upsampler those rows come
 * from the frame program (the .tflite's frame graph, lowered like the step: FC rows of the
 * batched upsampler FIR, COPYs, frame delay lines), run once per feature frame by wn_frame().
 *
 * Who does what:
 *   host   float features (frames x WN_COND_CHANNELS, WN_CIN_PAD padding frames at each end as
 *          the model was trained) -> int8: q = clamp(round_half_even(x / WN_FEATURE_SCALE)
 *          + WN_FEATURE_ZERO_POINT, -128, 127)  (wavenet_edge.lowered.FrameProgram
 *          .quantize_features; this is the only float step, and it is the host's);
 *   device call g of wn_frame() takes the padded int8 frames g .. g+WN_FRAME_K-1 (frame-major,
 *          WN_FRAME_K * WN_COND_CHANNELS bytes; past the last frame a window of
 *          WN_FEATURE_ZERO_POINT bytes); calls 0 .. WN_FRAME_BLOCK_DELAY-1 only fill the frame
 *          delay lines (wn_frame returns NULL), call g >= WN_FRAME_BLOCK_DELAY returns the
 *          block of output frame g - WN_FRAME_BLOCK_DELAY: int8 [WN_COND_CHANNELS][WN_HOP],
 *          channel-major, the cond rows of samples f*WN_HOP .. f*WN_HOP + WN_HOP-1;
 *          wn_step_cond() steps with column (t mod WN_HOP) of that block.
 * Without an upsampler (WN_HAS_FRAMES 0) the features are at sample rate: the host quantizes
 * each row with WN_FEATURE_SCALE / WN_FEATURE_ZERO_POINT and the device passes it to
 * wn_set_cond() before each wn_step().
 *
 * Bit-exact with wavenet_edge.Engine(profile="tflm").process(codes, cond=features) and
 * generate(n, cond=features, seed=...).  The frame program uses the step engine's wn_fc (the
 * same TFLM reference requantization); the step's per-layer QUANTIZE of the cond row is a LUT
 * row of the step program, its table computed by wavenet_edge.int8.quantize. */
#ifndef WAVENET_COND_H
#define WAVENET_COND_H

#include <stdint.h>
#include "wavenet_engine.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The cond row of the next wn_step (WN_COND_CHANNELS bytes, int8 in the cond input's
 * quantization). */
void wn_set_cond(wn_state *s, const int8_t *row);

#if WN_HAS_FRAMES
/* Per-stream state of the frame program: its arena, frame delay-line rings and positions. */
typedef struct {
    int8_t arena[WN_FRAME_ARENA_SIZE];
    int8_t ring[WN_FRAME_RING_ALLOC];
    uint32_t wpos[WN_FRAME_N_WRITES_ALLOC];
    uint32_t filled;                  /* calls since reset, saturating at WN_FRAME_MAX_DELAY */
    uint32_t calls;                   /* calls since reset */
} wn_frame_state;

/* A new utterance: every frame delay line at its zero point. */
void wn_frame_reset(wn_frame_state *f);
/* One call of the frame program on WN_FRAME_K padded int8 frames (frame-major).  Returns the
 * channel-major block [WN_COND_CHANNELS][WN_HOP] of frame calls - 1 - WN_FRAME_BLOCK_DELAY
 * (valid until the next call), or NULL while the call only fills the delay lines. */
const int8_t *wn_frame(wn_frame_state *f, const int8_t *frames);
/* wn_step with the cond row taken from `block` (column s->t mod WN_HOP). */
int wn_step_cond(wn_state *s, const int8_t *block, int32_t code, int8_t *probs,
                 int8_t *logits);
#endif

#ifdef __cplusplus
}
#endif
#endif
