/* SPDX-License-Identifier: MIT */
/*
 * Baseline mode on the `vm` driver (docs/baseline.md, "On the vm driver"): the
 * conventional stack as Firecracker + vHive run it, a microVM with virtio-net
 * on a tap.
 *
 *   node netns (sandbox_process_net.c: nexusd's own, unnamed, held by fd)
 *        bridge nxbr0 169.254.0.1/16, relay 169.254.0.1:9000
 *        nxt<slot>  tap (IFF_VNET_HDR, persistent, master nxbr0)  <- nexus-vmm --net
 *          |  virtio-net
 *        guest eth0 169.254.A.B/16 (kernel `ip=`, MAC 02:4e:58:00:HI:LO),
 *        the runtime's HTTP server on 169.254.A.B:8080
 *
 * The address slot comes from the process driver's table (sbp_net_create), so
 * the forwarder (baseline_forward.c, sbp_net_guest_addr) finds a vm guest the
 * same way as a process one.  sbp_net_create also makes a sandbox namespace and
 * a veth for the slot, which a VM does not use: they are dropped at once (the
 * veth's MAC is the one the guest then takes).  A call in sandbox_process_net.c
 * that only reserves a slot would save that work (a few ms of the cold start;
 * not made here: that file is the process driver's).
 *
 * nexus-vmm attaches to an existing tap by name in its own network namespace
 * (docs/vmm.md), so the monitor runs in the node namespace: its fork child
 * joins it (setns) before exec.  Nothing is created in the root namespace.
 */
#include "sandbox_vm_net.h"
#include "sandbox_process_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>

#define TAP_INDEX0 4196   /* ifindex of slot s's tap: above the veths' 100..4195 */

struct vm_net {
	const void *owner;
	struct sbp_net pnet;    /* the slot (its namespace and veth dropped) */
	int tap_index;
	struct vm_net_info info;
	struct vm_net *next;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static struct vm_net *nets;
static int root_ns = -1;

/* Enter netns `ns` on this thread; back with leave(). */
static int enter(int ns)
{
	return setns(ns, CLONE_NEWNET) < 0 ? -errno : 0;
}

static void leave(void)
{
	if (setns(root_ns, CLONE_NEWNET) < 0) {
		/* This thread would stay in the node namespace: never continue. */
		sbp_log(0, "vm net: cannot return to nexusd's network namespace: %s", strerror(errno));
		abort();
	}
}

/* One acked rtnetlink request on link `index` in netns `ns`. */
static int link_req(int ns, uint16_t type, int index, int master, unsigned flags)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
		char attrs[64];
	} req;
	memset(&req, 0, sizeof req);
	req.h.nlmsg_type = type;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
	req.h.nlmsg_len = NLMSG_LENGTH(sizeof req.i);
	req.i.ifi_family = AF_UNSPEC;
	req.i.ifi_index = index;
	req.i.ifi_flags = flags;
	req.i.ifi_change = flags;
	if (master > 0) {
		struct rtattr *a = (struct rtattr *)(void *)((char *)&req + NLMSG_ALIGN(req.h.nlmsg_len));
		a->rta_type = IFLA_MASTER;
		a->rta_len = RTA_LENGTH(4);
		uint32_t m = (uint32_t)master;
		memcpy(RTA_DATA(a), &m, 4);
		req.h.nlmsg_len = NLMSG_ALIGN(req.h.nlmsg_len) + RTA_ALIGN(a->rta_len);
	}
	int rc = enter(ns);
	if (rc < 0)
		return rc;
	int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	rc = s < 0 ? -errno : 0;
	leave();
	if (rc < 0)
		return rc;
	struct timeval tv = { 5, 0 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	if (sendto(s, &req, req.h.nlmsg_len, 0, (struct sockaddr *)&k, sizeof k) < 0) {
		rc = -errno;
		close(s);
		return rc;
	}
	char ans[4096] __attribute__((aligned(4)));
	rc = -EIO;
	for (;;) {
		ssize_t n = recv(s, ans, sizeof ans, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		struct nlmsghdr *h = (struct nlmsghdr *)(void *)ans;
		for (; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n))
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				rc = e->error;
				goto out;
			}
	}
out:
	close(s);
	return rc;
}

/* The node namespace as an fd: a socket made there tells its namespace (SIOCGSKNS). */
static int node_ns_fd(void)
{
	int s = -1, rc = sbp_net_node_socket(SOCK_DGRAM, &s);
	if (rc < 0)
		return rc;
	int ns = ioctl(s, SIOCGSKNS);
	rc = ns < 0 ? -errno : ns;
	close(s);
	if (ns >= 0)
		fcntl(ns, F_SETFD, FD_CLOEXEC);
	return rc;
}

/* A persistent tap `name` with ifindex `index` in netns `ns`, for nexus-vmm to
 * attach to (same flags as its virtio_net.c); *bridge gets nxbr0's ifindex. */
static int make_tap(int ns, const char *name, int index, int *bridge)
{
	int rc = enter(ns);
	if (rc < 0)
		return rc;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	unsigned idx = (unsigned)index;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", name);
	if (fd < 0 || ioctl(fd, TUNSETIFINDEX, &idx) < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0 ||
	    ioctl(fd, TUNSETPERSIST, 1UL) < 0)
		rc = -errno;
	*bridge = (int)if_nametoindex("nxbr0");
	leave();
	if (fd >= 0)
		close(fd);
	return rc;
}

static bool env_is(const char *e, const char *name)
{
	size_t n = strlen(name);
	return !strncmp(e, name, n) && e[n] == '=';
}

int vm_net_start(const void *owner, const struct nx_sandbox_spec *spec, struct vm_net_info **info, char *err,
                 size_t errlen)
{
	*info = NULL;
	pthread_mutex_lock(&mu);
	if (root_ns < 0)
		root_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	pthread_mutex_unlock(&mu);
	if (root_ns < 0)
		return snprintf(err, errlen, "vm baseline network: /proc/self/ns/net: %s", strerror(errno)), -errno;
	/* Only the Python runtime serves invocations over HTTP (as on process). */
	int py = 0;
	for (const char *const *a = spec->argv; *a; a++)
		py |= !strcmp(*a, "/opt/nexus/python/bootstrap.py");
	struct vm_net *vn = calloc(1, sizeof *vn);
	if (!vn)
		return snprintf(err, errlen, "out of memory"), -ENOMEM;
	vn->owner = owner;
	vn->info.node_ns_fd = -1;
	int rc = sbp_net_create(spec->instance_id, py, &vn->pnet, err, errlen);
	if (rc < 0) {
		free(vn);
		return rc;
	}
	const char *what = "the node namespace (SIOCGSKNS)";
	int slot = vn->pnet.slot, bridge = 0;
	if ((rc = vn->info.node_ns_fd = node_ns_fd()) < 0)
		goto fail;
	/* The slot's veth and namespace are the process driver's: not used here. */
	what = "drop the slot's veth";
	if ((rc = link_req(vn->info.node_ns_fd, RTM_DELLINK, 100 + slot, 0, 0)   /* VETH_INDEX0 + slot */) < 0 && rc != -ENODEV)
		goto fail;
	vn->pnet.veth_created = 0;
	close(vn->pnet.netns_fd);
	vn->pnet.netns_fd = -1;
	char tap[IFNAMSIZ];
	snprintf(tap, sizeof tap, "nxt%d", slot);
	what = "create the tap (is /dev/net/tun there, module tun?)";
	if ((rc = make_tap(vn->info.node_ns_fd, tap, TAP_INDEX0 + slot, &bridge)) < 0)
		goto fail;
	vn->tap_index = TAP_INDEX0 + slot;
	what = "tap on nxbr0 and up";
	if (bridge <= 0 && (rc = -ENODEV))
		goto fail;
	if ((rc = link_req(vn->info.node_ns_fd, RTM_NEWLINK, vn->tap_index, bridge, IFF_UP)) < 0)
		goto fail;
	/* The same fixed MAC per slot as the process driver's eth0: a reused
	 * address keeps its MAC, so the bridge's neighbour entry stays right. */
	snprintf(vn->info.net_arg, sizeof vn->info.net_arg, "%s,mac=02:4e:58:00:%02x:%02x", tap, (slot >> 8) & 0xff,
	         slot & 0xff);
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &vn->pnet.addr_be, ip, sizeof ip);
	/* The kernel's own IP autoconfiguration (CONFIG_IP_PNP), static: no
	 * gateway (the bridge, the relay and the node are on the link). */
	snprintf(vn->info.ip_arg, sizeof vn->info.ip_arg, " ip=%s::0.0.0.0:255.255.0.0::eth0:off", ip);
	/* The environment: the real boto3 pointed at the relay, the server's address. */
	const char *endpoint = NULL;
	size_t n = 0;
	for (const char *const *e = spec->envp; e && *e; e++) {
		if (env_is(*e, "AWS_ENDPOINT_URL_S3") && (*e)[20])
			endpoint = *e + 20;
		else if (!endpoint && env_is(*e, "AWS_ENDPOINT_URL") && (*e)[17])
			endpoint = *e + 17;
	}
	for (const char *const *e = spec->envp; e && *e; e++) {
		if (env_is(*e, "AWS_ENDPOINT_URL_S3") || env_is(*e, "AWS_ENDPOINT_URL") || env_is(*e, "NEXUS_BASELINE_LISTEN"))
			continue;
		if (n >= VM_NET_MAX_ENV - 3) {   /* a microVM takes at most 30 anyway (sandbox_vm.c) */
			what = "too many environment variables";
			rc = -E2BIG;
			goto fail;
		}
		vn->info.envp[n++] = *e;
	}
	if (endpoint) {
		char relay[128];
		what = "the S3 relay";
		if ((rc = sbp_relay_endpoint(endpoint, relay, sizeof relay, err, errlen)) < 0)
			goto fail_keep_err;
		snprintf(vn->info.env_bufs[0], sizeof vn->info.env_bufs[0], "AWS_ENDPOINT_URL_S3=%s", relay);
		snprintf(vn->info.env_bufs[1], sizeof vn->info.env_bufs[1], "AWS_ENDPOINT_URL=%s", relay);
		vn->info.envp[n++] = vn->info.env_bufs[0];
		vn->info.envp[n++] = vn->info.env_bufs[1];
	}
	snprintf(vn->info.env_bufs[2], sizeof vn->info.env_bufs[2], "NEXUS_BASELINE_LISTEN=%s:%d", ip,
	         SBP_GUEST_HTTP_PORT);
	vn->info.envp[n++] = vn->info.env_bufs[2];
	vn->info.envp[n] = NULL;
	pthread_mutex_lock(&mu);
	vn->next = nets;
	nets = vn;
	pthread_mutex_unlock(&mu);
	*info = &vn->info;
	return 0;
fail:
	snprintf(err, errlen, "vm baseline network: %s: %s", what, strerror(-rc));
fail_keep_err:
	if (vn->tap_index > 0 && vn->info.node_ns_fd >= 0)
		link_req(vn->info.node_ns_fd, RTM_DELLINK, vn->tap_index, 0, 0);
	if (vn->info.node_ns_fd >= 0)
		close(vn->info.node_ns_fd);
	sbp_net_destroy(&vn->pnet);
	free(vn);
	return rc;
}

void vm_net_stop(const void *owner)
{
	pthread_mutex_lock(&mu);
	struct vm_net **pp = &nets, *vn = NULL;
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->owner == owner) {
			vn = *pp;
			*pp = vn->next;
			break;
		}
	pthread_mutex_unlock(&mu);
	if (!vn)
		return;
	/* Persistent: it stays until deleted, even with its monitor gone. */
	int rc = link_req(vn->info.node_ns_fd, RTM_DELLINK, vn->tap_index, 0, 0);
	if (rc < 0 && rc != -ENODEV)
		sbp_log(1, "vm baseline network: delete nxt%d: %s", vn->pnet.slot, strerror(-rc));
	close(vn->info.node_ns_fd);
	sbp_net_destroy(&vn->pnet);
	free(vn);
}
