/* virtio-net over a tap device (device id 1), for the baseline mode.  The caller
 * creates the tap inside a network namespace and runs the monitor there; the
 * monitor only opens it by name (never creates interfaces). */
#ifndef VMM_VIRTIO_NET_H
#define VMM_VIRTIO_NET_H
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio_mmio.h"

struct virtio_net {
    int tap_fd;
    int kick_efd;                 /* the driver refilled the RX queue */
    uint8_t mac[6];
    struct virtio_mmio transport;
    pthread_t rx_thread;
    uint64_t rx_packets, tx_packets, rx_dropped;
    unsigned generation;          /* bumped on reset: drops a chain held across it */
};

extern const struct virtio_dev_ops virtio_net_ops;
/* Open the tap `name`; returns 0 or -errno. */
int virtio_net_open(struct virtio_net *n, const char *name, const uint8_t mac[6]);
/* Start the RX thread (after the transport is initialised). */
int virtio_net_start(struct virtio_net *n);

#endif
