/* 8250/16550A UART, transmit side (the guest console).  Enough of the register
 * model for Linux's 8250 driver to probe it as a 16550A (scratch, loopback MSR,
 * FIFO bits in IIR) and to drive it by THR-empty interrupts.  Output goes to a
 * file descriptor as it is written; there is no receive path yet. */
#include "devices.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "snapshot.h"
#include "vmm.h"

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB     0x80
#define IER_THRI     0x02
#define IIR_NO_INT   0x01
#define IIR_THRI     0x02
#define IIR_FIFO_ON  0xc0
#define FCR_FIFO_EN  0x01
#define LSR_THRE     0x20
#define LSR_TEMT     0x40
#define MCR_LOOP     0x10
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08

static const char panic_marker[] = "Kernel panic - not syncing";

void serial_setup(struct serial *s, int out_fd, void (*set_irq)(void *, int), void *ctx)
{
    memset(s, 0, sizeof(*s));
    pthread_mutex_init(&s->lock, NULL);
    s->iir = IIR_NO_INT;
    s->lsr = LSR_THRE | LSR_TEMT;
    s->msr = 0xb0;   /* DCD, DSR, CTS */
    s->mcr = MCR_OUT2;
    s->out_fd = out_fd;
    s->set_irq = set_irq;
    s->irq_ctx = ctx;
}

static void update_irq(struct serial *s)
{
    uint8_t iir = IIR_NO_INT;
    if ((s->ier & IER_THRI) && s->thr_irq_pending)
        iir = IIR_THRI;
    s->iir = iir | ((s->fcr & FCR_FIFO_EN) ? IIR_FIFO_ON : 0);
    int level = !(iir & IIR_NO_INT);
    if (level != s->irq_level) {
        s->irq_level = level;
        if (s->set_irq)
            s->set_irq(s->irq_ctx, level);
    }
}

static void watch_line(struct serial *s, uint8_t c)
{
    if (c == '\n' || s->line_len == sizeof(s->line) - 1) {
        s->line[s->line_len] = 0;
        if (strstr(s->line, panic_marker))
            s->panic_seen = true;
        s->line_len = 0;
        if (c == '\n')
            return;
    }
    s->line[s->line_len++] = (char)c;
    s->line[s->line_len] = 0;
    if (s->line_len >= sizeof(panic_marker) - 1 && strstr(s->line, panic_marker))
        s->panic_seen = true;
}

static void emit(struct serial *s, uint8_t c)
{
    watch_line(s, c);
    if (s->out_fd < 0)
        return;
    for (;;) {
        ssize_t w = write(s->out_fd, &c, 1);
        if (w == 1 || (w < 0 && errno != EINTR))
            return;   /* a broken console must not stop the guest */
    }
}

static void serial_read(void *dev, uint64_t off, void *data, unsigned len)
{
    struct serial *s = dev;
    uint8_t v = 0;
    if (len != 1)
        return;
    pthread_mutex_lock(&s->lock);
    bool dlab = s->lcr & LCR_DLAB;
    switch (off) {
    case RBR_THR: v = dlab ? s->dll : 0; break;
    case IER: v = dlab ? s->dlm : s->ier; break;
    case IIR_FCR:
        v = s->iir;
        /* Reading IIR while it reports THR-empty clears that interrupt. */
        if ((s->iir & 0x0f) == IIR_THRI) {
            s->thr_irq_pending = false;
            update_irq(s);
        }
        break;
    case LCR: v = s->lcr; break;
    case MCR: v = s->mcr; break;
    case LSR: v = s->lsr; break;
    case MSR:
        if (s->mcr & MCR_LOOP) {
            /* Loopback: modem outputs appear on the inputs (the 8250 probe checks this). */
            v = 0;
            if (s->mcr & MCR_DTR) v |= 0x20;
            if (s->mcr & MCR_RTS) v |= 0x10;
            if (s->mcr & MCR_OUT1) v |= 0x40;
            if (s->mcr & MCR_OUT2) v |= 0x80;
        } else {
            v = s->msr;
        }
        break;
    case SCR: v = s->scr; break;
    }
    pthread_mutex_unlock(&s->lock);
    *(uint8_t *)data = v;
}

static void serial_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct serial *s = dev;
    if (len != 1)
        return;
    uint8_t v = *(const uint8_t *)data;
    pthread_mutex_lock(&s->lock);
    bool dlab = s->lcr & LCR_DLAB;
    switch (off) {
    case RBR_THR:
        if (dlab) {
            s->dll = v;
        } else {
            if (!(s->mcr & MCR_LOOP))
                emit(s, v);
            /* Transmission is instant: THR is empty again at once. */
            s->thr_irq_pending = true;
            update_irq(s);
        }
        break;
    case IER:
        if (dlab) {
            s->dlm = v;
        } else {
            uint8_t was = s->ier;
            s->ier = v & 0x0f;
            /* Enabling THRI while THR is empty raises the interrupt at once. */
            if ((s->ier & IER_THRI) && !(was & IER_THRI))
                s->thr_irq_pending = true;
            update_irq(s);
        }
        break;
    case IIR_FCR:
        s->fcr = v & 0xc9;   /* keep enable + trigger bits; reset bits self-clear */
        update_irq(s);
        break;
    case LCR: s->lcr = v; break;
    case MCR: s->mcr = v & 0x1f; break;
    case SCR: s->scr = v; break;
    default: break;   /* LSR/MSR are read-only */
    }
    pthread_mutex_unlock(&s->lock);
}

const struct io_ops serial_ops = { serial_read, serial_write };

static void serial_set_irq(void *ctx, int level)
{
    vmm_irq_line(ctx, SERIAL_COM1_IRQ, level);
}

int serial_register(struct vmm *vm, struct serial *s, int out_fd)
{
    serial_setup(s, out_fd, serial_set_irq, vm);
    return io_bus_register(&vm->pio, SERIAL_COM1_BASE, 8, &serial_ops, s, "serial-com1");
}

/* ---- snapshot: the register file (the line level itself is in the irqchip) ---- */

struct serial_state {
    uint8_t ier, iir, lcr, mcr, lsr, msr, scr, dll, dlm, fcr, thr_irq_pending, irq_level;
};

void serial_save(void *dev, struct snap_out *o, uint32_t index)
{
    struct serial *s = dev;
    pthread_mutex_lock(&s->lock);
    struct serial_state st = { s->ier, s->iir, s->lcr, s->mcr, s->lsr, s->msr, s->scr, s->dll, s->dlm,
                               s->fcr, s->thr_irq_pending, s->irq_level };
    pthread_mutex_unlock(&s->lock);
    snap_put(o, "serial", index, &st, sizeof(st));
}

int serial_restore(void *dev, const struct snap_in *in, uint32_t index, char *err, size_t n)
{
    struct serial *s = dev;
    const struct serial_state *st = snap_get(in, "serial", index, sizeof(*st));
    if (!st) {
        snprintf(err, n, "record missing");
        return -1;
    }
    pthread_mutex_lock(&s->lock);
    s->ier = st->ier & 0x0f;
    s->iir = st->iir;
    s->lcr = st->lcr;
    s->mcr = st->mcr & 0x1f;
    s->lsr = st->lsr;
    s->msr = st->msr;
    s->scr = st->scr;
    s->dll = st->dll;
    s->dlm = st->dlm;
    s->fcr = st->fcr & 0xc9;
    s->thr_irq_pending = st->thr_irq_pending != 0;
    s->irq_level = st->irq_level != 0;
    pthread_mutex_unlock(&s->lock);
    return 0;
}
