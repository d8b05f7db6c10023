/* Ports Linux touches while booting on a PC that this machine does not have:
 * POST/IO-delay port 0x80, the CMOS RTC (0x70/0x71), the second serial ports,
 * PCI config (0xcf8-0xcff) and the VGA/parallel ports.  Answering them here
 * (reads 0xff.., writes dropped) keeps them out of the "unhandled" counter that
 * the tests watch. */
#include <string.h>

#include "devices.h"
#include "vmm.h"

static void absent_read(void *dev, uint64_t off, void *data, unsigned len)
{
    (void)dev; (void)off;
    memset(data, 0xff, len);
}

static void absent_write(void *dev, uint64_t off, const void *data, unsigned len)
{
    (void)dev; (void)off; (void)data; (void)len;
}

static const struct io_ops absent_ops = { absent_read, absent_write };

int legacy_ports_register(struct vmm *vm)
{
    static const struct { uint16_t base, len; const char *name; } ports[] = {
        { 0x80, 1, "post" },  { 0x70, 2, "rtc" },      { 0x2f8, 8, "com2" },
        { 0x3e8, 8, "com3" }, { 0x2e8, 8, "com4" },    { 0xcf8, 8, "pci-conf" },
        { 0x378, 3, "lpt1" }, { 0x3c0, 32, "vga" },    { 0x87, 1, "dma-page" },
        { 0xed, 1, "io-delay" },
    };
    for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
        if (io_bus_register(&vm->pio, ports[i].base, ports[i].len, &absent_ops, NULL, ports[i].name) < 0)
            return -1;
    return 0;
}
