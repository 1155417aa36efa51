/* wavenet-edge local conditioning: the frame program interpreter and the step's cond row
 * (see wavenet_cond.h).  No arithmetic of its own: FC rows go to the engine's wn_fc with the
 * parameters wavenet_edge.int8 computed at export time; COPYs and delay lines move bytes. */
#include <string.h>
#include "wavenet_cond.h"

void wn_set_cond(wn_state *s, const int8_t *row)
{
    memcpy(s->arena + WN_COND_OFFSET, row, WN_COND_CHANNELS);
}

#if WN_HAS_FRAMES
void wn_frame_reset(wn_frame_state *f)
{
    memset(f, 0, sizeof *f);
}

const int8_t *wn_frame(wn_frame_state *f, const int8_t *frames)
{
    int32_t k;
    int8_t *a = f->arena;
    memcpy(a + WN_FRAME_INPUT_OFFSET, frames, WN_FRAME_INPUT_SIZE);
    /* frame delay-line reads: the write of call g - delay, or the zero point before that */
    for (k = 0; k < WN_FRAME_N_READS; k++) {
        const wn_dl_read *r = &wn_frame_reads[k];
        const wn_dl_write *w = &wn_frame_writes[r->write];
        if (f->filled < (uint32_t)r->delay) {
            memset(a + r->dst, r->zero_point, (size_t)w->width);
        } else {
            int32_t slot = (int32_t)f->wpos[r->write] - r->delay;
            if (slot < 0)
                slot += w->length;
            memcpy(a + r->dst, f->ring + w->ring + slot * w->width, (size_t)w->width);
        }
    }
    for (k = 0; k < WN_FRAME_N_OPS; k++) {
        const wn_op *o = &wn_frame_ops[k];
        if (o->kind == WN_OP_FC) {
            const int32_t *p = wn_frame_iparams + o->p;
            wn_fc(a + o->in0, a + o->out, o->n, o->cols, wn_frame_weights + o->w,
                  wn_frame_bias + o->q, wn_frame_mult + o->q, wn_frame_shift + o->q,
                  p[WN_FC_ZP], p[WN_FC_MIN], p[WN_FC_MAX]);
        } else {   /* WN_OP_COPY (the export admits no other kind here) */
            memmove(a + o->out, a + o->in0, (size_t)o->n);
        }
    }
    for (k = 0; k < WN_FRAME_N_WRITES; k++) {
        const wn_dl_write *w = &wn_frame_writes[k];
        uint32_t pos = f->wpos[k];
        memcpy(f->ring + w->ring + pos * (uint32_t)w->width, a + w->src, (size_t)w->width);
        f->wpos[k] = ++pos == (uint32_t)w->length ? 0u : pos;
    }
    if (f->filled < WN_FRAME_MAX_DELAY)
        f->filled++;
    return f->calls++ < (uint32_t)WN_FRAME_BLOCK_DELAY ? 0 : a + WN_FRAME_BLOCK_OFFSET;
}

int wn_step_cond(wn_state *s, const int8_t *block, int32_t code, int8_t *probs, int8_t *logits)
{
    int8_t row[WN_COND_CHANNELS];
    const uint32_t col = s->t % (uint32_t)WN_HOP;
    int32_t c;
    for (c = 0; c < WN_COND_CHANNELS; c++)
        row[c] = block[(uint32_t)c * (uint32_t)WN_HOP + col];
    wn_set_cond(s, row);
    return wn_step(s, code, probs, logits);
}
#endif
