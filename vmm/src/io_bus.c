/* Range lookup for port I/O and MMIO exits. */
#include "io_bus.h"

#include <string.h>

int io_bus_register(struct io_bus *bus, uint64_t base, uint64_t len, const struct io_ops *ops,
                    void *dev, const char *name)
{
    if (bus->n >= IO_BUS_MAX || len == 0 || base + len < base)
        return -1;
    for (unsigned i = 0; i < bus->n; i++) {
        const struct io_range *o = &bus->r[i];
        if (base < o->base + o->len && o->base < base + len)
            return -1;   /* overlap */
    }
    bus->r[bus->n++] = (struct io_range){ base, len, ops, dev, name };
    return 0;
}

int io_bus_access(struct io_bus *bus, uint64_t addr, void *data, unsigned len, int is_write)
{
    for (unsigned i = 0; i < bus->n; i++) {
        const struct io_range *r = &bus->r[i];
        if (addr >= r->base && addr - r->base < r->len && len <= r->len - (addr - r->base)) {
            if (is_write) {
                if (r->ops->write)
                    r->ops->write(r->dev, addr - r->base, data, len);
            } else {
                memset(data, 0, len);
                if (r->ops->read)
                    r->ops->read(r->dev, addr - r->base, data, len);
            }
            return 0;
        }
    }
    __atomic_fetch_add(&bus->unhandled, 1, __ATOMIC_RELAXED);
    if (!is_write)
        memset(data, 0xff, len);
    return -1;
}
