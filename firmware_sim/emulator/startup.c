/* Minimal bare-metal start-up for the QEMU MPS2/MPS3 boards: vector table, FPU/MVE enable,
 * .data/.bss init, semihosting for output and exit. */
#include <stdint.h>

extern uint32_t _estack, _sidata, _sdata, _edata, _sbss, _ebss;
int main(void);
void sh_puts(const char *s);
void sh_exit(int code);

static int semihost(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void sh_puts(const char *s) { semihost(0x04, s); }          /* SYS_WRITE0 */

void sh_exit(int code)
{
    uint32_t block[2] = {0x20026u, (uint32_t)code};         /* ADP_Stopped_ApplicationExit */
    semihost(0x20, block);                                   /* SYS_EXIT_EXTENDED */
    semihost(0x18, (const void *)0x20026u);                  /* SYS_EXIT, if the former is absent */
    for (;;) {}
}

void Reset_Handler(void)
{
    /* CPACR: full access to CP10/CP11, i.e. the FPU and (on M55) the MVE unit */
    *(volatile uint32_t *)0xE000ED88u |= (0xFu << 20);
    __asm__ volatile("dsb\n\tisb" ::: "memory");
    uint32_t *s = &_sidata, *d = &_sdata;
    while (d < &_edata) *d++ = *s++;
    for (d = &_sbss; d < &_ebss;) *d++ = 0;
    sh_exit(main());
}

/* Every fault ends the run.  CFSR.UNDEFINSTR (bit 16) set: an undefined instruction, which is
 * what a trapping UndefinedBehaviorSanitizer check executes (UDF); firmware_sim.qemu says so. */
void Default_Handler(void)
{
    const uint32_t cfsr = *(volatile uint32_t *)0xE000ED28u;
    sh_puts((cfsr & (1u << 16)) ? "FAULT undefined instruction\n" : "FAULT\n");
    sh_exit(99);
}

__attribute__((section(".vectors"), used)) const void *const vectors[16] = {
    &_estack, (const void *)Reset_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, (const void *)Default_Handler, (const void *)Default_Handler,
    (const void *)Default_Handler, 0, 0, 0, 0, (const void *)Default_Handler,
    (const void *)Default_Handler, 0, (const void *)Default_Handler, (const void *)Default_Handler,
};
