/* SPDX-License-Identifier: MIT */
/*
 * Baseline mode's network (docs/baseline.md): the conventional stack, where a
 * function's sandbox has a network interface.
 *
 *   root netns (nexusd, host loopback, the S3 server)     -- untouched: no
 *        |                                                   interface, no
 *        | relay thread "nx-relay" (splice)                  address, no route
 *   node netns (nexusd's own, held by fd, unnamed)
 *        lo, bridge nxbr0 169.254.0.1/16, relay listener 169.254.0.1:9000,
 *        nxv<slot> (veth, master nxbr0) ...
 *        |
 *   sandbox netns (one per instance, held by fd, joined by the child)
 *        lo 127.0.0.1, eth0 (the veth peer) 169.254.A.B/16, the guest's HTTP
 *        server on 169.254.A.B:8080
 *
 * Everything is configured with raw rtnetlink (NETLINK_ROUTE) from sockets
 * created inside the namespace concerned (a socket keeps the namespace it was
 * created in: setns, socket, setns back), so no tool is run and nothing ever
 * touches the root namespace.  The namespaces are made by unshare() on the
 * calling thread, which then returns to the root namespace at once.
 */
#include "sandbox_process_priv.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#define BRIDGE_NAME   "nxbr0"
#define BRIDGE_INDEX  2            /* ifindex requested for the bridge in the node netns */
#define VETH_INDEX0   100          /* host-side veth of slot s: ifindex 100 + s */
#define GUEST_INDEX   2            /* eth0 in a fresh sandbox netns (lo is 1) */
#define MAX_SLOTS     4096

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int root_ns = -1, node_ns = -1;
static int node_err;               /* set when the node netns could not be made */
static char node_msg[200];
static uint64_t slot_owner[MAX_SLOTS];   /* instance id + 1 using the slot, 0 = free */
static bool slot_http[MAX_SLOTS];        /* its guest runs the Python runtime's HTTP server */

/* ------------------------------------------------------------------ */
/* Namespace helpers */

/* Run socket() inside netns `ns` and come back.  -errno on failure. */
static int socket_in(int ns, int domain, int type, int proto)
{
	if (setns(ns, CLONE_NEWNET) < 0)
		return -errno;
	int s = socket(domain, type | SOCK_CLOEXEC, proto);
	int e = errno;
	if (setns(root_ns, CLONE_NEWNET) < 0) {
		/* This thread would stay in a sandbox's namespace: never continue. */
		sbp_log(0, "sandbox net: cannot return to nexusd's network namespace: %s", strerror(errno));
		abort();
	}
	return s < 0 ? -e : s;
}

/* A fresh network namespace as an fd: unshare on this thread, keep it, go back. */
static int new_netns(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -errno;
	int fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int e = errno;
	if (setns(root_ns, CLONE_NEWNET) < 0) {
		sbp_log(0, "sandbox net: cannot return to nexusd's network namespace: %s", strerror(errno));
		abort();
	}
	return fd < 0 ? -e : fd;
}

/* ------------------------------------------------------------------ */
/* A minimal rtnetlink request builder: one message, nested attributes. */

struct nlreq {
	char buf[1024];
	size_t len;
	int bad;
};

static struct nlmsghdr *nl_hdr(struct nlreq *r)
{
	return (struct nlmsghdr *)(void *)r->buf;
}

static void nl_init(struct nlreq *r, uint16_t type, uint16_t flags, const void *body, size_t blen)
{
	memset(r, 0, sizeof *r);
	struct nlmsghdr *h = nl_hdr(r);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	h->nlmsg_seq = 1;
	r->len = NLMSG_LENGTH(blen);
	memcpy(NLMSG_DATA(h), body, blen);
	r->len = NLMSG_ALIGN(r->len);
}

static struct rtattr *nl_put(struct nlreq *r, uint16_t type, const void *data, size_t dlen)
{
	size_t need = RTA_SPACE(dlen);
	if (r->len + need > sizeof r->buf) {
		r->bad = 1;
		return NULL;
	}
	struct rtattr *a = (struct rtattr *)(void *)(r->buf + r->len);
	a->rta_type = type;
	a->rta_len = (unsigned short)RTA_LENGTH(dlen);
	if (dlen)
		memcpy(RTA_DATA(a), data, dlen);
	r->len += need;
	return a;
}

static struct rtattr *nl_nest(struct nlreq *r, uint16_t type)
{
	return nl_put(r, type, NULL, 0);
}

static void nl_end(struct nlreq *r, struct rtattr *nest)
{
	if (nest)
		nest->rta_len = (unsigned short)(r->buf + r->len - (char *)nest);
}

/* Send on a NETLINK_ROUTE socket and wait for the kernel's ack. 0 or -errno. */
static int nl_talk(int s, struct nlreq *r)
{
	if (r->bad)
		return -EMSGSIZE;
	nl_hdr(r)->nlmsg_len = (uint32_t)r->len;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	if (sendto(s, r->buf, r->len, 0, (struct sockaddr *)&kernel, sizeof kernel) < 0)
		return -errno;
	char ans[4096] __attribute__((aligned(4)));
	for (;;) {
		ssize_t n = recv(s, ans, sizeof ans, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)(void *)ans; NLMSG_OK(h, (size_t)n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;   /* 0 = ack */
			}
		}
	}
}

static int nl_socket(int ns)
{
	int s = socket_in(ns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (s >= 0) {
		struct timeval tv = { 5, 0 };   /* the kernel answers at once; never hang the launcher */
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	}
	return s;
}

static int link_up(int s, int index)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	struct nlreq r;
	nl_init(&r, RTM_NEWLINK, 0, &ifi, sizeof ifi);
	return nl_talk(s, &r);
}

static int addr_add(int s, int index, uint32_t addr_be, int prefix)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET, .ifa_prefixlen = (unsigned char)prefix,
	                         .ifa_scope = RT_SCOPE_UNIVERSE, .ifa_index = (unsigned)index };
	struct nlreq r;
	nl_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof ifa);
	nl_put(&r, IFA_LOCAL, &addr_be, 4);
	nl_put(&r, IFA_ADDRESS, &addr_be, 4);
	return nl_talk(s, &r);
}

/* A permanent neighbour entry addr -> mac on interface index. */
static int neigh_set(int s, int index, uint32_t addr_be, const unsigned char mac[6])
{
	struct ndmsg nd = { .ndm_family = AF_INET, .ndm_ifindex = index, .ndm_state = NUD_PERMANENT };
	struct nlreq r;
	nl_init(&r, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof nd);
	nl_put(&r, NDA_DST, &addr_be, 4);
	nl_put(&r, NDA_LLADDR, mac, 6);
	return nl_talk(s, &r);
}

static int link_del(int s, int index)
{
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = index };
	struct nlreq r;
	nl_init(&r, RTM_DELLINK, 0, &ifi, sizeof ifi);
	return nl_talk(s, &r);
}

/* ------------------------------------------------------------------ */
/* The node namespace */

uint32_t sbp_net_bridge_addr(void)
{
	return htonl(0xa9fe0001u);   /* 169.254.0.1 */
}

/* Slot s -> 169.254.(1 + s / 254).(1 + s % 254): never .0 or .255, never 169.254.0.x or 169.254.255.x. */
static uint32_t slot_addr(unsigned s)
{
	return htonl(0xa9fe0000u | ((1u + s / 254u) << 8) | (1u + s % 254u));
}

static int node_setup(char *err, size_t errlen)
{
	if (node_ns >= 0)
		return 0;
	if (node_err) {
		snprintf(err, errlen, "%s", node_msg);
		return node_err;
	}
	int rc, s = -1;
	const char *what = "open /proc/self/ns/net";
	if (root_ns < 0 && (root_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
		rc = -errno;
		goto fail;
	}
	what = "create the node network namespace (unshare CLONE_NEWNET)";
	int ns = new_netns();
	if (ns < 0) {
		rc = ns;
		goto fail;
	}
	what = "netlink socket in the node namespace";
	if ((s = nl_socket(ns)) < 0) {
		rc = s;
		close(ns);
		goto fail;
	}
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = BRIDGE_INDEX };
	struct nlreq r;
	nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	nl_put(&r, IFLA_IFNAME, BRIDGE_NAME, sizeof BRIDGE_NAME);
	/* A MAC of its own, set at creation (the kernel then never changes it).
	 * Without one a bridge takes the lowest MAC among its ports, so adding
	 * or deleting a veth (random host-side MACs) changes the MAC behind
	 * 169.254.0.1: every namespace that outlives that change (a zygote's,
	 * a long-lived instance's) keeps sending to the old MAC, and its
	 * packets to the relay and the forwarder vanish until its neighbour
	 * entry is re-probed: SYNs retried after 1 s, answers lost for many
	 * seconds (seen as 1 s stalls and invocation timeouts). */
	static const unsigned char bridge_mac[6] = { 0x02, 0x4e, 0x58, 0xff, 0x00, 0x01 };
	nl_put(&r, IFLA_ADDRESS, bridge_mac, sizeof bridge_mac);
	struct rtattr *li = nl_nest(&r, IFLA_LINKINFO);
	nl_put(&r, IFLA_INFO_KIND, "bridge", 7);
	nl_end(&r, li);
	what = "lo up (node namespace)";
	if ((rc = link_up(s, 1)) < 0)
		goto fail_ns;
	what = "create bridge " BRIDGE_NAME " (is the bridge module available?)";
	if ((rc = nl_talk(s, &r)) < 0)
		goto fail_ns;
	what = "address 169.254.0.1/16 on " BRIDGE_NAME;
	if ((rc = addr_add(s, BRIDGE_INDEX, sbp_net_bridge_addr(), 16)) < 0)
		goto fail_ns;
	what = BRIDGE_NAME " up";
	if ((rc = link_up(s, BRIDGE_INDEX)) < 0)
		goto fail_ns;
	close(s);
	node_ns = ns;
	sbp_log(2, "baseline network: node namespace with bridge " BRIDGE_NAME " 169.254.0.1/16");
	return 0;
fail_ns:
	close(ns);
fail:
	if (s >= 0)
		close(s);
	node_err = rc;
	snprintf(node_msg, sizeof node_msg, "baseline network: %s: %s", what, strerror(-rc));
	snprintf(err, errlen, "%s", node_msg);
	return rc;
}

int sbp_net_node_socket(int type, int *fd_out)
{
	pthread_mutex_lock(&mu);
	char err[200];
	int rc = node_setup(err, sizeof err);
	int ns = node_ns;
	pthread_mutex_unlock(&mu);
	if (rc < 0)
		return rc;
	int s = socket_in(ns, AF_INET, type, 0);
	if (s < 0)
		return s;
	*fd_out = s;
	return 0;
}

/* ------------------------------------------------------------------ */
/* One sandbox's network */

int sbp_net_create(uint64_t instance_id, int serves_http, struct sbp_net *net, char *err, size_t errlen)
{
	memset(net, 0, sizeof *net);
	net->netns_fd = -1;
	net->slot = -1;
	pthread_mutex_lock(&mu);
	int rc = node_setup(err, errlen);
	int nodens = node_ns;
	int slot = -1;
	if (rc == 0) {
		for (int i = 0; i < MAX_SLOTS; i++)
			if (!slot_owner[i]) {
				slot = i;
				slot_owner[i] = instance_id + 1;
				slot_http[i] = serves_http;
				break;
			}
		if (slot < 0) {
			snprintf(err, errlen, "baseline network: all %d addresses are in use", MAX_SLOTS);
			rc = -ENOSPC;
		}
	}
	pthread_mutex_unlock(&mu);
	if (rc < 0)
		return rc;
	net->slot = slot;
	net->addr_be = slot_addr((unsigned)slot);
	int ns = new_netns(), ns_s = -1, node_s = -1;
	const char *what = "create the sandbox network namespace";
	if (ns < 0) {
		rc = ns;
		goto fail;
	}
	what = "netlink socket";
	if ((node_s = nl_socket(nodens)) < 0 || (ns_s = nl_socket(ns)) < 0) {
		rc = node_s < 0 ? node_s : ns_s;
		goto fail;
	}
	/* The veth pair, created in the node namespace with its peer placed
	 * straight into the sandbox's as eth0, the host end on the bridge. */
	char host_name[IFNAMSIZ];
	snprintf(host_name, sizeof host_name, "nxv%d", slot);
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = VETH_INDEX0 + slot };
	struct ifinfomsg peer = { .ifi_family = AF_UNSPEC, .ifi_index = GUEST_INDEX };
	uint32_t master = BRIDGE_INDEX, nsfd = (uint32_t)ns;
	struct nlreq r;
	nl_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof ifi);
	nl_put(&r, IFLA_IFNAME, host_name, strlen(host_name) + 1);
	nl_put(&r, IFLA_MASTER, &master, 4);
	struct rtattr *li = nl_nest(&r, IFLA_LINKINFO);
	nl_put(&r, IFLA_INFO_KIND, "veth", 5);
	struct rtattr *data = nl_nest(&r, IFLA_INFO_DATA);
	struct rtattr *pa = nl_put(&r, VETH_INFO_PEER, &peer, sizeof peer);
	nl_put(&r, IFLA_IFNAME, "eth0", 5);
	/* A fixed MAC per slot (locally administered 02:4e:58:00:HI:LO): the
	 * node side's neighbour entry for a reused address stays right.  With a
	 * random MAC the bridge would keep sending to the previous instance's
	 * MAC until that stale entry was re-probed — seconds of silence. */
	unsigned char mac[6] = { 0x02, 0x4e, 0x58, 0x00, (unsigned char)(slot >> 8), (unsigned char)slot };
	nl_put(&r, IFLA_ADDRESS, mac, sizeof mac);
	nl_put(&r, IFLA_NET_NS_FD, &nsfd, 4);
	nl_end(&r, pa);
	nl_end(&r, data);
	nl_end(&r, li);
	what = "create the veth pair";
	if ((rc = nl_talk(node_s, &r)) < 0)
		goto fail;
	net->veth_created = 1;
	what = "host veth up";
	if ((rc = link_up(node_s, VETH_INDEX0 + slot)) < 0)
		goto fail;
	/* The node side never needs to ARP for a sandbox: the slot's MAC is
	 * fixed, so its neighbour entry is too.  Resolved entries could go stale
	 * or FAILED while an address is between holders (the forwarder's last
	 * FIN to a stopped instance goes unanswered); a new holder's first SYN
	 * then waited on ARP and was resent after 1 s. */
	int nrc = neigh_set(node_s, BRIDGE_INDEX, net->addr_be, mac);
	if (nrc < 0)
		sbp_log(1, "baseline network: neighbour entry for slot %d: %s", slot, strerror(-nrc));
	what = "lo up (sandbox)";
	if ((rc = link_up(ns_s, 1)) < 0)
		goto fail;
	what = "address on eth0 (sandbox)";
	if ((rc = addr_add(ns_s, GUEST_INDEX, net->addr_be, 16)) < 0)
		goto fail;
	what = "eth0 up (sandbox)";
	if ((rc = link_up(ns_s, GUEST_INDEX)) < 0)
		goto fail;
	close(node_s);
	close(ns_s);
	net->netns_fd = ns;
	return 0;
fail:
	snprintf(err, errlen, "baseline network: %s: %s", what, strerror(-rc));
	if (node_s >= 0)
		close(node_s);
	if (ns_s >= 0)
		close(ns_s);
	if (ns >= 0)
		close(ns);
	sbp_net_destroy(net);
	return rc;
}

void sbp_net_destroy(struct sbp_net *net)
{
	if (net->slot < 0)
		return;
	if (net->netns_fd >= 0)
		close(net->netns_fd);
	net->netns_fd = -1;
	/* Deleting the host end deletes its peer too; done now rather than when
	 * the kernel gets round to cleaning up the dead namespace, so the slot's
	 * interface name and index are free for the next instance. */
	if (net->veth_created) {
		int s = nl_socket(node_ns);
		if (s >= 0) {
			int rc = link_del(s, VETH_INDEX0 + net->slot);
			if (rc < 0 && rc != -ENODEV)
				sbp_log(1, "baseline network: delete nxv%d: %s", net->slot, strerror(-rc));
			close(s);
		}
	}
	pthread_mutex_lock(&mu);
	slot_owner[net->slot] = 0;
	pthread_mutex_unlock(&mu);
	net->slot = -1;
}

int sbp_net_guest_addr(uint64_t instance_id, uint32_t *addr_be)
{
	int rc = -ENOENT;
	pthread_mutex_lock(&mu);
	for (int i = 0; i < MAX_SLOTS; i++)
		if (slot_owner[i] == instance_id + 1) {
			*addr_be = slot_addr((unsigned)i);
			rc = slot_http[i] ? 0 : -EPROTONOSUPPORT;
			break;
		}
	pthread_mutex_unlock(&mu);
	return rc;
}

/* A TCP socket listening on the sandbox's eth0 address:port, created inside
 * its namespace.  The zygote driver (sandbox_zygote.c) hands it to a forked
 * baseline instance, which lives in its zygote's namespace and so could not
 * bind an address of its own namespace: a socket stays in the namespace it
 * was created in, so the instance still answers on its own address. */
int sbp_net_listen_socket(const struct sbp_net *net, int port, int *fd_out)
{
	if (net->netns_fd < 0 || net->slot < 0 || port <= 0 || port > 65535)
		return -EINVAL;
	int s = socket_in(net->netns_fd, AF_INET, SOCK_STREAM, 0);
	if (s < 0)
		return s;
	int one = 1;
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                           .sin_addr.s_addr = net->addr_be };
	if (bind(s, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(s, 16) < 0) {
		int e = -errno;
		close(s);
		return e;
	}
	*fd_out = s;
	return 0;
}
