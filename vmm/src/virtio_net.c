/* virtio-net: TX is served in the vCPU thread that kicks queue 1; RX has its own
 * thread that waits for packets on the tap and for the driver to post buffers.
 * Only VIRTIO_F_VERSION_1 and VIRTIO_NET_F_MAC are offered (no offloads, no
 * mergeable buffers), so the 12-byte virtio_net_hdr_v1 passes through the tap
 * (IFF_VNET_HDR) unchanged and every packet fits one RX chain. */
#include "virtio_net.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define NET_HDR_LEN 12   /* struct virtio_net_hdr_v1 */
#define RXQ 0
#define TXQ 1

int virtio_net_open(struct virtio_net *n, const char *name, const uint8_t mac[6])
{
    memset(n, 0, sizeof(*n));
    /* TUNSETIFF would create a missing interface: only attach to one the caller
     * made (in the VM's network namespace). */
    if (if_nametoindex(name) == 0)
        return -ENODEV;
    n->tap_fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (n->tap_fd < 0)
        return -errno;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, name, IFNAMSIZ - 1);
    int hdr = NET_HDR_LEN;
    /* No offloads: the driver negotiated none, so the host must hand us only
     * complete, checksummed, unsegmented frames. */
    if (ioctl(n->tap_fd, TUNSETIFF, &ifr) < 0 || ioctl(n->tap_fd, TUNSETVNETHDRSZ, &hdr) < 0 ||
        ioctl(n->tap_fd, TUNSETOFFLOAD, 0UL) < 0) {
        int e = errno;
        close(n->tap_fd);
        return -e;
    }
    n->kick_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (n->kick_efd < 0) {
        int e = errno;
        close(n->tap_fd);
        return -e;
    }
    memcpy(n->mac, mac, 6);
    return 0;
}

static uint64_t net_features(void *dev)
{
    (void)dev;
    return 1ULL << VIRTIO_NET_F_MAC;
}

static void net_config_read(void *dev, uint32_t off, void *data, unsigned len)
{
    struct virtio_net *n = dev;
    struct virtio_net_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    memcpy(cfg.mac, n->mac, 6);
    memcpy(data, (uint8_t *)&cfg + off, len);
}

static void net_tx(struct virtio_net *n, struct virtio_mmio *t)
{
    struct virtqueue *vq = &t->vq[TXQ];
    static __thread struct vq_chain chain;
    struct iovec iov[VQ_NUM_MAX];
    const char *why = NULL;
    bool any = false;
    int r;
    while ((r = vq_pop(vq, t->mem, &chain, &why)) == 1) {
        /* TX buffers are all device-readable and start with the header. */
        if (chain.n_readable == chain.n && chain.readable_len > NET_HDR_LEN &&
            chain.readable_len <= NET_HDR_LEN + 65535) {
            for (unsigned i = 0; i < chain.n; i++)
                iov[i] = (struct iovec){ chain.buf[i].host, chain.buf[i].len };
            /* A full tap queue drops the packet, as a real NIC would. */
            if (writev(n->tap_fd, iov, (int)chain.n) > 0)
                n->tx_packets++;
        }
        vq_push(vq, t->mem, chain.head, 0);
        any = true;
    }
    if (r < 0)
        virtio_mmio_fail(t, why);
    if (any)
        virtio_mmio_signal_used(t);
}

static void net_notify(void *dev, struct virtio_mmio *t, unsigned q)
{
    struct virtio_net *n = dev;
    if (q == TXQ) {
        net_tx(n, t);
    } else {
        uint64_t one = 1;
        if (write(n->kick_efd, &one, sizeof(one)) < 0) {
            /* counter saturated: the RX thread is awake anyway */
        }
    }
}

static void net_driver_ok(void *dev, struct virtio_mmio *t)
{
    (void)t;
    net_notify(dev, t, RXQ);   /* buffers may have been posted before DRIVER_OK */
}

static void net_reset(void *dev, struct virtio_mmio *t)
{
    struct virtio_net *n = dev;
    (void)t;
    n->generation++;
}

static void *rx_thread(void *arg)
{
    struct virtio_net *n = arg;
    struct virtio_mmio *t = &n->transport;
    static struct vq_chain chain;
    struct iovec iov[VQ_NUM_MAX];
    bool have = false;
    unsigned gen = 0;
    for (;;) {
        if (!have) {
            const char *why = NULL;
            pthread_mutex_lock(&t->lock);
            int r = virtio_mmio_driver_ok(t) ? vq_pop(&t->vq[RXQ], t->mem, &chain, &why) : 0;
            if (r < 0)
                virtio_mmio_fail(t, why);
            gen = n->generation;
            pthread_mutex_unlock(&t->lock);
            have = r == 1;
        }
        /* With a chain in hand wait for a packet; without one, wait for a kick
         * (and leave packets queued in the tap meanwhile). */
        struct pollfd p[2] = { { n->kick_efd, POLLIN, 0 }, { n->tap_fd, have ? POLLIN : 0, 0 } };
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[0].revents & POLLIN) {
            uint64_t v;
            if (read(n->kick_efd, &v, sizeof(v)) < 0) {
                /* spurious */
            }
        }
        if (!have || !(p[1].revents & POLLIN))
            continue;
        bool usable = chain.n_readable == 0 && chain.buf[0].len >= NET_HDR_LEN;
        ssize_t len = 0;
        if (usable) {
            for (unsigned i = 0; i < chain.n; i++)
                iov[i] = (struct iovec){ chain.buf[i].host, chain.buf[i].len };
            len = readv(n->tap_fd, iov, (int)chain.n);
            if (len < 0 && (errno == EAGAIN || errno == EINTR))
                continue;   /* keep the chain for the next packet */
            if (len >= NET_HDR_LEN) {
                uint16_t one = 1;   /* num_buffers: always 1 without MRG_RXBUF */
                memcpy(chain.buf[0].host + 10, &one, 2);
            } else {
                len = 0;
            }
        }
        pthread_mutex_lock(&t->lock);
        if (gen == n->generation && virtio_mmio_driver_ok(t)) {
            vq_push(&t->vq[RXQ], t->mem, chain.head, (uint32_t)len);
            virtio_mmio_signal_used(t);
            if (len)
                n->rx_packets++;
        }
        pthread_mutex_unlock(&t->lock);
        have = false;
    }
    return NULL;
}

int virtio_net_start(struct virtio_net *n)
{
    int r = pthread_create(&n->rx_thread, NULL, rx_thread, n);
    if (r == 0)
        pthread_setname_np(n->rx_thread, "virtio-net-rx");   /* as the vCPUs (vcpu.c) */
    return -r;
}

const struct virtio_dev_ops virtio_net_ops = {
    .name = "virtio-net",
    .device_id = 1,   /* VIRTIO_ID_NET */
    .num_queues = 2,
    .features = net_features,
    .config_size = sizeof(struct virtio_net_config),
    .config_read = net_config_read,
    .queue_notify = net_notify,
    .driver_ok = net_driver_ok,
    .reset = net_reset,
};
