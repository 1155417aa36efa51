/* Test/benchmark driver for an exported engine (firmware_sim.emulate and the host tests).
 * Reads its scenario from wn_driver_data.h; prints one line per step:
 *   S <step> <input code> <sampled code or -1> <fnv1a32 of probs|logits|writes>
 * and every WN_DRV_FULL_EVERY steps the full vectors (P probs, L logits, W writes, hex bytes).
 * marker() calls delimit each wn_step (and the FC benchmark) for the instruction counter.
 * A vocoder (WN_HAS_COND) takes its host-quantized int8 features from wn_drv_frames (padded
 * frames with an upsampler, one row per step without) and has three intervals per step: the
 * gap, the frame calls due before the step (none on most steps), the step with its cond row. */
#include <stdint.h>
#include <string.h>
#include "wavenet_engine.h"
#include "wn_driver_data.h"
#if WN_HAS_COND
#include "wavenet_cond.h"
#endif

#ifdef WN_HOST
#include <stdio.h>
static void wn_drv_puts(const char *s) { fputs(s, stdout); }
#else
void sh_puts(const char *s);
static void wn_drv_puts(const char *s) { sh_puts(s); }
#endif

__attribute__((noinline)) void marker(void) { __asm__ volatile("" ::: "memory"); }

static wn_state st;
#if WN_HAS_FRAMES
static wn_frame_state fst;
static int8_t zero_window[WN_FRAME_INPUT_SIZE];
static uint32_t frame_calls;

/* The frame calls due before step j (one per hop; frame 0 first needs WN_FRAME_BLOCK_DELAY
 * calls that only fill the delay lines): the window of call g is padded frames g .. g+K-1, past
 * the last frame the feature zero point (the engine's end of stream). */
static const int8_t *frames_for_step(uint32_t j, const int8_t *block)
{
    if (j % (uint32_t)WN_HOP)
        return block;
    do {
        const int8_t *win = frame_calls + WN_FRAME_K <= WN_DRV_N_FRAMES
            ? wn_drv_frames + (size_t)frame_calls * WN_COND_CHANNELS : zero_window;
        frame_calls++;
        block = wn_frame(&fst, win);
    } while (!block);
    return block;
}
#endif
static char line[2 * (256 + WN_DRV_WRITE_BYTES) + 64];

static uint32_t fnv(uint32_t h, const int8_t *p, int32_t n)
{
    int32_t i;
    for (i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

static char *put_uint(char *q, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10u);
        v /= 10u;
    } while (v);
    while (n)
        *q++ = tmp[--n];
    return q;
}

static char *put_int(char *q, int32_t v)
{
    if (v < 0) {
        *q++ = '-';
        return put_uint(q, (uint32_t)(-v));
    }
    return put_uint(q, (uint32_t)v);
}

static char *put_hex(char *q, const int8_t *p, int32_t n)
{
    static const char hx[] = "0123456789abcdef";
    int32_t i;
    for (i = 0; i < n; i++) {
        *q++ = hx[((uint8_t)p[i]) >> 4];
        *q++ = hx[((uint8_t)p[i]) & 15];
    }
    return q;
}

static void full(char tag, uint32_t j, const int8_t *p, int32_t n)
{
    char *q = line;
    *q++ = tag;
    *q++ = ' ';
    q = put_uint(q, j);
    *q++ = ' ';
    q = put_hex(q, p, n);
    *q++ = '\n';
    *q = 0;
    wn_drv_puts(line);
}

#if WN_DRV_BENCH
#define WN_DRV_DRAWS 8
static int8_t bx[WN_DRV_BENCH_COLS], by[WN_DRV_BENCH_ROWS];
static int8_t bw[WN_DRV_BENCH_ROWS * WN_DRV_BENCH_COLS];
static int32_t bb[WN_DRV_BENCH_ROWS], bm[WN_DRV_BENCH_ROWS], bs[WN_DRV_BENCH_ROWS];
#if WN_KERNELS == 2 && WN_DRV_BENCH_COLS <= WN_DSP_MAX_COLS && WN_DRV_BENCH_ROWS % 4 == 0
/* the DSP kernels' weight layout (firmware_sim/c_export_dsp.py): per 4 rows and 4 columns,
 * per row the int16 pairs of bytes (0, 2) and (1, 3) */
#define WN_DRV_BENCH_DSP 1
#define WN_DRV_NCH ((WN_DRV_BENCH_COLS + 3) / 4)
static int32_t bw16[WN_DRV_BENCH_ROWS * WN_DRV_NCH * 2];

static int32_t bw_at(int32_t r, int32_t c)
{
    return c < WN_DRV_BENCH_COLS ? bw[r * WN_DRV_BENCH_COLS + c] : 0;
}

static void bench_layout(void)
{
    int32_t r, j;
    for (r = 0; r < WN_DRV_BENCH_ROWS; r++)
        for (j = 0; j < WN_DRV_NCH; j++) {
            int32_t *o = bw16 + ((r / 4) * WN_DRV_NCH + j) * 8 + (r % 4) * 2;
            o[0] = (int32_t)(((uint32_t)bw_at(r, 4 * j) & 0xffffu)
                             | ((uint32_t)bw_at(r, 4 * j + 2) << 16));
            o[1] = (int32_t)(((uint32_t)bw_at(r, 4 * j + 1) & 0xffffu)
                             | ((uint32_t)bw_at(r, 4 * j + 3) << 16));
        }
}
#else
#define WN_DRV_BENCH_DSP 0
#endif
#endif

int main(void)
{
    uint32_t j;
    int32_t cur = wn_drv_codes[0];
    wn_sampler r;
#if WN_HAS_FRAMES
    const int8_t *block = 0;
    memset(zero_window, WN_FEATURE_ZERO_POINT, sizeof zero_window);
    wn_frame_reset(&fst);
#endif
    wn_reset(&st);
    (void)wn_set_speaker(&st, WN_DRV_SPEAKER);
    wn_sampler_init(&r, WN_DRV_SEED, 0, WN_DRV_SMODE, wn_sample_table);
    marker();
    marker();   /* empty interval: the marker's own overhead */
    for (j = 0; j < WN_DRV_STEPS; j++) {
        int32_t out = -1, k;
        uint32_t h = 2166136261u;
        char *q = line;
        if (!WN_DRV_GENERATE)
            cur = wn_drv_codes[j];
        marker();
#if WN_HAS_FRAMES
        block = frames_for_step(j, block);
        marker();
        (void)wn_step_cond(&st, block, cur, 0, 0);
#elif WN_HAS_COND
        marker();
        wn_set_cond(&st, wn_drv_frames + (size_t)j * WN_COND_CHANNELS);
        (void)wn_step(&st, cur, 0, 0);
#else
        (void)wn_step(&st, cur, 0, 0);
#endif
        marker();
        if (WN_DRV_GENERATE)
            out = wn_sample(&r, wn_logits(&st));
        h = fnv(h, wn_probs(&st), 256);
        h = fnv(h, wn_logits(&st), 256);
        for (k = 0; k < WN_N_WRITES; k++)
            h = fnv(h, wn_delay_write(&st, k), wn_dl_writes[k].width);
        *q++ = 'S';
        *q++ = ' ';
        q = put_uint(q, j);
        *q++ = ' ';
        q = put_int(q, cur);
        *q++ = ' ';
        q = put_int(q, out);
        *q++ = ' ';
        q = put_uint(q, h);
        *q++ = '\n';
        *q = 0;
        wn_drv_puts(line);
        if (WN_DRV_FULL_EVERY && j % WN_DRV_FULL_EVERY == 0) {
            int32_t off = 0;
            static int8_t wbuf[WN_DRV_WRITE_BYTES + 1];
            full('P', j, wn_probs(&st), 256);
            full('L', j, wn_logits(&st), 256);
            for (k = 0; k < WN_N_WRITES; k++) {
                memcpy(wbuf + off, wn_delay_write(&st, k), (size_t)wn_dl_writes[k].width);
                off += wn_dl_writes[k].width;
            }
            full('W', j, wbuf, off);
        }
        if (WN_DRV_GENERATE)
            cur = out;
    }
#if WN_DRV_BENCH
    {
        uint32_t v = 12345u;
        int32_t i;
        for (i = 0; i < WN_DRV_BENCH_ROWS * WN_DRV_BENCH_COLS; i++) {
            v = v * 1103515245u + 12345u;
            bw[i] = (int8_t)(v >> 24);
        }
        for (i = 0; i < WN_DRV_BENCH_COLS; i++)
            bx[i] = (int8_t)(i * 37);
        for (i = 0; i < WN_DRV_BENCH_ROWS; i++) {
            bb[i] = i;
            bm[i] = 1518500250;
            bs[i] = -9;
        }
#if WN_DRV_BENCH_DSP
        /* the DSP build's step runs its FCs on pre-extended weights: time that kernel */
        bench_layout();
        marker();
        wn_fc_dsp(bx, by, WN_DRV_BENCH_ROWS, WN_DRV_BENCH_COLS, bw16, bb, bm, bs, 0, -128, 127);
        marker();
        wn_fc_dsp(bx, by, WN_DRV_BENCH_ROWS, 0, bw16, bb, bm, bs, 0, -128, 127);
        marker();
#else
        marker();
        wn_fc(bx, by, WN_DRV_BENCH_ROWS, WN_DRV_BENCH_COLS, bw, bb, bm, bs, 0, -128, 127);
        marker();
        wn_fc(bx, by, WN_DRV_BENCH_ROWS, 0, bw, bb, bm, bs, 0, -128, 127);
        marker();
#endif
        /* the probabilities on demand (the step itself does not run the SOFTMAX), then
         * WN_DRV_DRAWS samples on the last logits with the export's table (their mean is what
         * a free-running device pays per sample on top of the step), then one greedy sample */
        st.probs_ready = 0;
        marker();
        (void)wn_probs(&st);
        marker();
        {
            wn_sampler rt, rg;
            volatile int32_t sink;
            int32_t d;
            wn_sampler_init(&rt, 1u, 0u, WN_SAMPLE_TABLE, wn_sample_table);
            wn_sampler_init(&rg, 1u, 0u, WN_SAMPLE_GREEDY, wn_sample_table);
            marker();
            for (d = 0; d < WN_DRV_DRAWS; d++)
                sink = wn_sample(&rt, wn_logits(&st));
            marker();
            sink = wn_sample(&rg, wn_logits(&st));
            marker();
            (void)sink;
        }
        {
            char *q = line;
            *q++ = 'B';
            *q++ = ' ';
            q = put_int(q, by[0]);
            *q++ = '\n';
            *q = 0;
            wn_drv_puts(line);
        }
    }
#endif
    wn_drv_puts("END\n");
    return 0;
}
