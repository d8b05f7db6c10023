/* The legacy devices, one file each; every one registers itself on a bus. */
#ifndef VMM_DEVICES_H
#define VMM_DEVICES_H
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "io_bus.h"

struct vmm;

/* ---- 8250/16550A UART (dev_serial.c) at COM1 0x3f8, IRQ 4 ---- */
#define SERIAL_COM1_BASE 0x3f8
#define SERIAL_COM1_IRQ  4
struct serial {
    pthread_mutex_t lock;
    uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
    bool thr_irq_pending;       /* THR-empty interrupt latched until IIR is read */
    bool irq_level;
    int out_fd;                 /* -1: discard */
    void (*set_irq)(void *ctx, int level);
    void *irq_ctx;
    /* Watch the output for the kernel's panic line (guest panic exit code). */
    char line[96];
    unsigned line_len;
    bool panic_seen;
};
extern const struct io_ops serial_ops;
void serial_setup(struct serial *s, int out_fd, void (*set_irq)(void *, int), void *ctx);
int  serial_register(struct vmm *vm, struct serial *s, int out_fd);
struct snap_out;
struct snap_in;
void serial_save(void *dev, struct snap_out *o, uint32_t index);
int  serial_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n);

/* ---- i8042 keyboard controller, only what reboot needs (dev_i8042.c) ---- */
int i8042_register(struct vmm *vm);

/* ---- exit port 0x501 and pvpanic port 0x505 (dev_exit.c) ---- */
#define EXIT_PORT    0x501
#define PVPANIC_PORT 0x505
int exit_port_register(struct vmm *vm);

/* ---- ports Linux pokes at boot that we answer as "nothing here" (dev_legacy.c) ---- */
int legacy_ports_register(struct vmm *vm);

#endif
