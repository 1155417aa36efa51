/* QEMU TCG plugin (plugin API version 1, QEMU 7.x): counts executed guest instructions and prints
 * the count since the previous hit each time the instruction at address `marker=` executes.
 * Debian ships no qemu-plugin.h, so the few API functions used are declared here by hand. */
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
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, int op, void *ptr, uint64_t imm);
void qemu_plugin_register_vcpu_insn_exec_cb(struct qemu_plugin_insn *, udata_cb, int flags, void *);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, atexit_cb, void *);
void qemu_plugin_outs(const char *);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

static uint64_t count, last, marker = UINT64_MAX;

static void on_marker(unsigned int vcpu, void *u)
{
    char b[48];
    (void)vcpu; (void)u;
    snprintf(b, sizeof b, "ICOUNT-MARK %llu\n", (unsigned long long)(count - last));
    last = count;
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
        if ((qemu_plugin_insn_vaddr(in) & ~1ull) == marker)
            qemu_plugin_register_vcpu_insn_exec_cb(in, on_marker, CB_NO_REGS, NULL);
    }
}

static void at_exit_report(qemu_plugin_id_t id, void *u)
{
    char b[48];
    (void)id; (void)u;
    snprintf(b, sizeof b, "ICOUNT-TOTAL %llu\n", (unsigned long long)count);
    qemu_plugin_outs(b);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const void *info, int argc, char **argv)
{
    (void)info;
    for (int i = 0; i < argc; i++)
        if (!strncmp(argv[i], "marker=", 7))
            marker = strtoull(argv[i] + 7, NULL, 0) & ~1ull;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, at_exit_report, NULL);
    return 0;
}
