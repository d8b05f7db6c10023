/* The exit port (0x501, prompts/vmm-contract.md): a one-byte write of V ends the
 * VM and the monitor exits with V (0..63).  And QEMU's ISA pvpanic port (0x505):
 * a write with bit 0 set means "guest panicked". */
#include "devices.h"
#include "exit_codes.h"
#include "vmm.h"

static void exit_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct vmm *vm = dev;
    (void)off;
    if (len != 1)
        return;
    uint8_t v = *(const uint8_t *)data;
    if (v <= VMM_EXIT_GUEST_MAX)
        vmm_request_exit(vm, v, "guest exit port: %u", v);
    else
        vmm_request_exit(vm, VMM_EXIT_BAD_EXIT_VALUE, "guest wrote %u (> %d) to the exit port",
                         v, VMM_EXIT_GUEST_MAX);
}

static void pvpanic_read(void *dev, uint64_t off, void *data, unsigned len)
{
    (void)dev; (void)off; (void)len;
    *(uint8_t *)data = 1;   /* supported events: PANICKED */
}

static void pvpanic_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    struct vmm *vm = dev;
    (void)off;
    if (len == 1 && (*(const uint8_t *)data & 1)) {
        vm->guest_panicked = true;
        vmm_request_exit(vm, VMM_EXIT_GUEST_PANIC, "guest panicked (pvpanic)");
    }
}

static const struct io_ops exit_ops = { NULL, exit_write };
static const struct io_ops pvpanic_ops = { pvpanic_read, pvpanic_write };

int exit_port_register(struct vmm *vm)
{
    if (io_bus_register(&vm->pio, EXIT_PORT, 1, &exit_ops, vm, "exit-port") < 0)
        return -1;
    return io_bus_register(&vm->pio, PVPANIC_PORT, 1, &pvpanic_ops, vm, "pvpanic");
}
