/* QEMU TCG plugin (plugin API version 1, QEMU 7.x): counts executed guest instructions and prints
 * the count since the previous hit each time the instruction at address `marker=` executes.
 *
 * With `hist=A:B` it also keeps, per instruction address, how often it executed and how often
 * control did not fall through to the next instruction afterwards (a taken branch), counting only
 * from the A-th to the B-th marker hit (1-based), and prints them at exit as
 *   ICOUNT-HIST <address> <size> <executions> <taken>
 * firmware_sim.cycles classifies those instructions (from the ELF's disassembly) and prices each
 * class.  Debian ships no qemu-plugin.h, so the few API functions used are declared by hand. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
struct qemu_plugin_insn;
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(unsigned int vcpu, void *userdata);
typedef void (*atexit_cb)(qemu_plugin_id_t, void *userdata);
enum { INLINE_ADD_U64 = 0, CB_NO_REGS = 0 };

void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
struct qemu_plugin_insn *qemu_plugin_tb_get_insn(const struct qemu_plugin_tb *, size_t);
uint64_t qemu_plugin_insn_vaddr(const struct qemu_plugin_insn *);
size_t qemu_plugin_insn_size(const struct qemu_plugin_insn *);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, int op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, udata_cb, int flags, void *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, atexit_cb, void *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t count, last, marker = UINT64_MAX;

/* histogram: one record per instruction address (open addressing on the address) */
struct rec { uint64_t addr, n, taken; uint32_t size, used; };
static struct rec *table;
static size_t table_cap;
static int hist;
static long hist_from = -1, hist_to = -1, hits;
static struct rec *prev;

static struct rec *lookup(uint64_t addr, uint32_t size)
{
    size_t i = (size_t)(addr * 0x9E3779B97F4A7C15ull >> 40) & (table_cap - 1);
    while (table[i].used && table[i].addr != addr)
        i = (i + 1) & (table_cap - 1);
    table[i].used = 1;
    table[i].addr = addr;
    table[i].size = size;
    return &table[i];
}

static void on_insn(unsigned int vcpu, void *u)
{
    struct rec *r = u;
    (void)vcpu;
    if (hits >= hist_from && hits < hist_to) {
        r->n++;
        if (prev && prev->addr + prev->size != r->addr)
            prev->taken++;
        prev = r;
    } else {
        prev = NULL;
    }
}

static void on_marker(unsigned int vcpu, void *u)
{
    char b[48];
    (void)vcpu; (void)u;
    snprintf(b, sizeof b, "ICOUNT-MARK %llu\n", (unsigned long long)(count - last));
    last = count;
    hits++;
    qemu_plugin_outs(b);
}

/* Whole-TB inline counting is exact here: bare-metal code with no interrupts never leaves a TB
 * half-way except through a fault, which ends the run anyway. */
static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    (void)id;
    qemu_plugin_register_vcpu_tb_exec_inline(tb, INLINE_ADD_U64, &count, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *in = qemu_plugin_tb_get_insn(tb, i);
        uint64_t a = qemu_plugin_insn_vaddr(in) & ~1ull;
        if (a == marker)
            qemu_plugin_register_vcpu_insn_exec_cb(in, on_marker, CB_NO_REGS, NULL);
        if (hist)
            qemu_plugin_register_vcpu_insn_exec_cb(in, on_insn, CB_NO_REGS,
                                                   lookup(a, (uint32_t)qemu_plugin_insn_size(in)));
    }
}

static void at_exit_report(qemu_plugin_id_t id, void *u)
{
    char b[96];
    (void)id; (void)u;
    for (size_t i = 0; hist && i < table_cap; i++)
        if (table[i].used && table[i].n) {
            snprintf(b, sizeof b, "ICOUNT-HIST %#llx %u %llu %llu\n",
                     (unsigned long long)table[i].addr, table[i].size,
                     (unsigned long long)table[i].n, (unsigned long long)table[i].taken);
            qemu_plugin_outs(b);
        }
    snprintf(b, sizeof b, "ICOUNT-TOTAL %llu\n", (unsigned long long)count);
    qemu_plugin_outs(b);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++) {
        if (!strncmp(argv[i], "marker=", 7))
            marker = strtoull(argv[i] + 7, NULL, 0) & ~1ull;
        else if (!strncmp(argv[i], "hist=", 5)
                 && sscanf(argv[i] + 5, "%ld:%ld", &hist_from, &hist_to) == 2)
            hist = 1;
    }
    if (hist) {
        table_cap = 1u << 20;          /* addresses: far more than any firmware here has */
        table = calloc(table_cap, sizeof *table);
        if (!table)
            return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit_report, NULL);
    return 0;
}
