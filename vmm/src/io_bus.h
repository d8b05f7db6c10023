/* Port-I/O and MMIO dispatch: a device registers a range and an ops table; a
 * vCPU exit looks the address up and calls the device.  Registration happens
 * before any vCPU runs, so lookups need no lock; devices lock their own state. */
#ifndef VMM_IO_BUS_H
#define VMM_IO_BUS_H
#include <stdint.h>

struct io_ops {
    /* off is relative to the registered base; len is 1, 2, 4 or 8. */
    void (*read)(void *dev, uint64_t off, void *data, unsigned len);
    void (*write)(void *dev, uint64_t off, const void *data, unsigned len);
};

#define IO_BUS_MAX 32

struct io_range {
    uint64_t base, len;
    const struct io_ops *ops;
    void *dev;
    const char *name;
};

struct io_bus {
    const char *name;
    unsigned n;
    struct io_range r[IO_BUS_MAX];
    uint64_t unhandled;   /* accesses that hit no device (reads see all-ones) */
};

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
                    void *dev, const char *name);
/* Returns 0 when a device took the access, -1 when none did. */
int io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len, int is_write);

#endif
