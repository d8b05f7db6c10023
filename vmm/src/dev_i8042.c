/* i8042 keyboard controller: just enough for Linux's reboot=k path, and absent
 * otherwise.  The status port reads 0x01: input buffer empty (so the reboot
 * path's kb_wait() returns at once) and an output byte that never drains, which
 * Linux's probe (i8042_flush) takes for "no controller" after 16 reads -- instead
 * of polling 10000 times, 50 us apart, for a CTR byte that never comes (seconds
 * of boot time under nested virtualization, where every port read is an exit).
 * The "pulse reset line" command 0xfe ends the VM with VMM_EXIT_RESET (or the
 * panic code if the kernel had printed its panic line first: panic=-1 reboots
 * through here). */
#include "devices.h"
#include "exit_codes.h"
#include "vmm.h"

#define I8042_DATA    0x60
#define I8042_COMMAND 0x64
#define I8042_CMD_RESET 0xfe

#define I8042_STR_OBF 0x01

static void i8042_read_data(void *dev, uint64_t off, void *data, unsigned len)
{
    (void)dev; (void)off; (void)len;
    *(uint8_t *)data = 0;
}

static void i8042_read_status(void *dev, uint64_t off, void *data, unsigned len)
{
    (void)dev; (void)off; (void)len;
    *(uint8_t *)data = I8042_STR_OBF;
}

/* Writes to the data port (0x60) are accepted and ignored. */
static void i8042_command(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct vmm *vm = dev;
    (void)off;
    if (len == 1 && *(const uint8_t *)data == I8042_CMD_RESET) {
        if (vm->guest_panicked)
            vmm_request_exit(vm, VMM_EXIT_GUEST_PANIC, "guest kernel panicked (then reset via i8042)");
        else
            vmm_request_exit(vm, VMM_EXIT_RESET, "guest reset via i8042");
    }
}

static const struct io_ops i8042_data_ops = { i8042_read_data, NULL };
static const struct io_ops i8042_cmd_ops = { i8042_read_status, i8042_command };

int i8042_register(struct vmm *vm)
{
    /* Two one-port ranges: 0x61 between them is the PIT's speaker gate (in KVM). */
    if (io_bus_register(&vm->pio, I8042_DATA, 1, &i8042_data_ops, vm, "i8042-data") < 0)
        return -1;
    return io_bus_register(&vm->pio, I8042_COMMAND, 1, &i8042_cmd_ops, vm, "i8042-cmd");
}
