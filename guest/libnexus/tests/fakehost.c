/* SPDX-License-Identifier: MIT */
/* The C test double of the host side (see fakehost.h). */
#include "fakehost.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <nexus/channel.h>
#include "../../../common/arena.h"
#include "../../../common/ring.h"
#include "../../../common/tlv.h"

#define MAX_OBJS 64
#define MAX_DONE 16

struct obj {
	char bucket[64], key[256], ctype[64];
	uint8_t *data;
	size_t len;
	bool used;
};

struct done {
	uint64_t tag;
	uint32_t status;
	char *payload;
	size_t len;
	bool used;
};

struct fakehost {
	int region_fd, kick_host, kick_guest;
	uint8_t *base;
	size_t size;
	struct nx_region_hdr hdr;     /* private copy: never read back */
	struct nx_ring *tx, *rx;      /* tx = to-guest (we produce), rx = to-host */
	struct nx_arena *arena;       /* host arena */
	pthread_t thread;
	pthread_mutex_t lock;         /* tx ring, arena, objs, done, counters */
	pthread_cond_t cv;
	bool stop, paused, broken;
	bool quiet_acks;              /* like nexusd: no doorbell for an OK INVOKE_DONE ack */
	uint32_t done_status;         /* the status INVOKE_DONE acks carry */
	int idle_poll_ms;             /* how long the idle host sleeps without a kick */
	unsigned violations;
	uint64_t releases, readies;
	struct obj objs[MAX_OBJS];
	struct done done[MAX_DONE];
};

static void push_locked(struct fakehost *h, const struct nx_desc *d)
{
	while (nx_ring_push(h->tx, d) == -EAGAIN) {
		pthread_mutex_unlock(&h->lock);
		usleep(100);
		pthread_mutex_lock(&h->lock);
	}
	bool quiet = h->quiet_acks && d->opcode == NX_OP_INVOKE_DONE && d->status == NX_S_OK;
	if (!quiet && nx_ring_kick_needed(h->tx)) {
		uint64_t one = 1;
		if (write(h->kick_guest, &one, sizeof one) < 0)
			h->violations++;
	}
}

static struct nx_buf host_copy_locked(struct fakehost *h, const void *data, size_t len)
{
	uint64_t off;
	if (!len || nx_arena_alloc(h->arena, len, &off) < 0)
		return (struct nx_buf){ 0, 0 };
	memcpy(h->base + off, data, len);
	return (struct nx_buf){ off, len };
}

static void complete_locked(struct fakehost *h, const struct nx_desc *req, uint32_t status, const char *meta,
                            const void *body, size_t body_len)
{
	struct nx_desc d = { .opcode = req->opcode, .flags = NX_F_COMPLETION, .status = status, .tag = req->tag };
	if (meta)
		d.buf[0] = host_copy_locked(h, meta, strlen(meta));
	if (body)
		d.buf[1] = host_copy_locked(h, body, body_len);
	push_locked(h, &d);
}

/* A guest buffer: must lie in the guest arena; copied out once. */
static uint8_t *guest_copy(struct fakehost *h, struct nx_buf b)
{
	if (b.len == 0)
		return calloc(1, 1);
	if (b.off < h->hdr.guest_arena_off || b.len > h->hdr.guest_arena_size ||
	    b.off - h->hdr.guest_arena_off > h->hdr.guest_arena_size - b.len)
		return NULL;
	uint8_t *p = malloc(b.len + 1);
	memcpy(p, h->base + b.off, b.len);
	p[b.len] = 0;
	return p;
}

static struct obj *find(struct fakehost *h, const char *bucket, const char *key)
{
	for (int i = 0; i < MAX_OBJS; i++)
		if (h->objs[i].used && !strcmp(h->objs[i].bucket, bucket) && !strcmp(h->objs[i].key, key))
			return &h->objs[i];
	return NULL;
}

static void store(struct fakehost *h, const char *bucket, const char *key, const uint8_t *data, size_t len,
                  const char *ctype)
{
	struct obj *o = find(h, bucket, key);
	for (int i = 0; !o && i < MAX_OBJS; i++)
		if (!h->objs[i].used)
			o = &h->objs[i];
	if (!o)
		return;
	free(o->data);
	o->used = true;
	snprintf(o->bucket, sizeof o->bucket, "%s", bucket);
	snprintf(o->key, sizeof o->key, "%s", key);
	snprintf(o->ctype, sizeof o->ctype, "%s", ctype && *ctype ? ctype : "binary/octet-stream");
	o->data = malloc(len ? len : 1);
	memcpy(o->data, data, len);
	o->len = len;
}

static void s3_locked(struct fakehost *h, const struct nx_desc *d, const struct nx_args *a)
{
	char bucket[64] = "", key[256] = "", ctype[64] = "", sb[64] = "", sk[256] = "", range[64] = "";
	char meta[4096];
	nx_args_str(a, NX_ARG_BUCKET, bucket, sizeof bucket);
	nx_args_str(a, NX_ARG_KEY, key, sizeof key);
	nx_args_str(a, NX_ARG_CONTENT_TYPE, ctype, sizeof ctype);
	nx_args_str(a, NX_ARG_SRC_BUCKET, sb, sizeof sb);
	nx_args_str(a, NX_ARG_SRC_KEY, sk, sizeof sk);
	nx_args_str(a, NX_ARG_RANGE, range, sizeof range);
	if (strcmp(bucket, "test-bucket") != 0) {
		complete_locked(h, d, NX_S_ACCESS_DENIED,
		                "{\"Code\":\"AccessDenied\",\"Message\":\"Access Denied\",\"HTTPStatusCode\":403}", NULL, 0);
		return;
	}
	if (d->opcode == NX_OP_S3_PUT) {
		uint8_t *body = guest_copy(h, d->buf[1]);
		if (!body) {
			h->violations++;
			complete_locked(h, d, NX_S_INVALID, NULL, NULL, 0);
			return;
		}
		store(h, bucket, key, body, d->buf[1].len, ctype);
		free(body);
		complete_locked(h, d, NX_S_OK, "{\"ETag\":\"\\\"e1\\\"\"}", NULL, 0);
		return;
	}
	if (d->opcode == NX_OP_S3_LIST) {
		size_t n = (size_t)snprintf(meta, sizeof meta, "{\"Contents\":[");
		int count = 0;
		for (int i = 0; i < MAX_OBJS; i++) {
			if (!h->objs[i].used || strcmp(h->objs[i].bucket, bucket))
				continue;
			n += (size_t)snprintf(meta + n, sizeof meta - n, "%s{\"Key\":\"%s\",\"Size\":%zu}",
			                      count++ ? "," : "", h->objs[i].key, h->objs[i].len);
		}
		snprintf(meta + n, sizeof meta - n, "],\"IsTruncated\":false,\"KeyCount\":%d}", count);
		complete_locked(h, d, NX_S_OK, meta, NULL, 0);
		return;
	}
	struct obj *o = find(h, d->opcode == NX_OP_S3_COPY ? sb : bucket, d->opcode == NX_OP_S3_COPY ? sk : key);
	if (d->opcode == NX_OP_S3_DELETE) {
		if (o) {
			free(o->data);
			memset(o, 0, sizeof *o);
		}
		complete_locked(h, d, NX_S_OK, "{}", NULL, 0);
		return;
	}
	if (!o) {
		complete_locked(h, d, NX_S_STORAGE_ERROR,
		                "{\"Code\":\"NoSuchKey\",\"Message\":\"The specified key does not exist.\",\"HTTPStatusCode\":404}",
		                NULL, 0);
		return;
	}
	if (d->opcode == NX_OP_S3_COPY) {
		uint8_t *copy = malloc(o->len ? o->len : 1);
		memcpy(copy, o->data, o->len);
		char ct[64];
		snprintf(ct, sizeof ct, "%s", o->ctype);
		store(h, bucket, key, copy, o->len, ct);
		free(copy);
		complete_locked(h, d, NX_S_OK, "{\"ETag\":\"\\\"e2\\\"\",\"LastModified\":\"2026-01-01T00:00:00.000Z\"}", NULL, 0);
		return;
	}
	size_t first = 0, len = o->len;
	unsigned long a0, a1;
	if (*range && sscanf(range, "bytes=%lu-%lu", &a0, &a1) == 2 && a0 <= a1 && a1 < o->len) {
		first = a0;
		len = a1 - a0 + 1;
	}
	snprintf(meta, sizeof meta,
	         "{\"ContentLength\": %zu, \"ETag\":\"\\\"e1\\\"\",\"ContentType\":\"%s\",\"LastModified\":\"2026-01-01T00:00:00.000Z\"}",
	         len, o->ctype);
	if (d->opcode == NX_OP_S3_HEAD)
		complete_locked(h, d, NX_S_OK, meta, NULL, 0);
	else
		complete_locked(h, d, NX_S_OK, meta, len ? o->data + first : NULL, len);
}

static void handle_locked(struct fakehost *h, const struct nx_desc *d)
{
	if (d->opcode == NX_OP_RELEASE) {
		h->releases++;
		if (nx_arena_release(h->arena, d->buf[0].off, NULL) < 0)
			h->violations++;
		return;
	}
	if (d->opcode == NX_OP_NOP) {
		complete_locked(h, d, NX_S_OK, NULL, NULL, 0);
		return;
	}
	uint8_t *args = guest_copy(h, d->buf[0]);
	struct nx_args a;
	if (!args || nx_tlv_parse(args, d->buf[0].len, &a) < 0) {
		h->violations++;
		free(args);
		complete_locked(h, d, NX_S_INVALID, NULL, NULL, 0);
		return;
	}
	if (d->opcode == NX_OP_READY) {
		h->readies++;
		complete_locked(h, d, NX_S_OK, "{\"function_name\":\"c-fn\",\"handler\":\"app.handler\",\"memory_mb\":128}",
		                NULL, 0);
	} else if (d->opcode == NX_OP_INVOKE_DONE) {
		for (int i = 0; i < MAX_DONE; i++) {
			if (!h->done[i].used) {
				h->done[i] = (struct done){ .tag = d->tag, .status = d->status, .used = true,
				                            .payload = (char *)guest_copy(h, d->buf[1]), .len = d->buf[1].len };
				break;
			}
		}
		pthread_cond_broadcast(&h->cv);
		complete_locked(h, d, h->done_status, NULL, NULL, 0);
	} else if (d->opcode >= NX_OP_S3_GET && d->opcode <= NX_OP_S3_COPY) {
		s3_locked(h, d, &a);
	} else {
		complete_locked(h, d, NX_S_UNSUPPORTED, NULL, NULL, 0);
	}
	free(args);
}

static void *serve(void *arg)
{
	struct fakehost *h = arg;
	pthread_mutex_lock(&h->lock);
	while (!h->stop) {
		struct nx_desc d;
		if (h->paused) {
			pthread_mutex_unlock(&h->lock);
			usleep(500);
			pthread_mutex_lock(&h->lock);
			continue;
		}
		int r = nx_ring_pop(h->rx, &d);
		if (r == 0) {
			handle_locked(h, &d);
			continue;
		}
		if (r == -EPROTO) {
			h->violations++;
			break;
		}
		/* Idle: spin briefly like nexusd would, then arm and sleep. */
		pthread_mutex_unlock(&h->lock);
		bool got = false;
		for (int i = 0; i < 2000 && !got; i++)
			got = nx_ring_pending(h->rx) != 0;
		if (!got && nx_ring_prepare_sleep(h->rx)) {
			struct pollfd p = { .fd = h->kick_host, .events = POLLIN };
			if (poll(&p, 1, h->idle_poll_ms) > 0) {
				uint64_t v;
				if (read(h->kick_host, &v, sizeof v) < 0 && errno != EAGAIN)
					h->violations++;
			}
		}
		pthread_mutex_lock(&h->lock);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

struct fakehost *fakehost_new(size_t size)
{
	struct fakehost *h = calloc(1, sizeof *h);
	h->size = size;
	h->idle_poll_ms = 50;
	h->region_fd = memfd_create("libnexus-test", MFD_CLOEXEC);
	if (h->region_fd < 0 || ftruncate(h->region_fd, (off_t)size) < 0)
		abort();
	h->kick_host = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h->kick_guest = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	h->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, h->region_fd, 0);
	if (h->base == MAP_FAILED)
		abort();
	uint64_t half = ((size - NX_ARENAS_OFF) / 2) & ~4095ull;
	h->hdr = (struct nx_region_hdr){
		.magic = NX_MAGIC, .abi_major = NX_ABI_MAJOR, .abi_minor = NX_ABI_MINOR, .region_size = size,
		.generation = 7, .ring_entries = NX_RING_ENTRIES, .to_host_ring_off = NX_TO_HOST_RING_OFF,
		.to_guest_ring_off = NX_TO_GUEST_RING_OFF, .guest_arena_off = NX_ARENAS_OFF, .guest_arena_size = half,
		.host_arena_off = NX_ARENAS_OFF + half, .host_arena_size = size - NX_ARENAS_OFF - half,
	};
	memcpy(h->base, &h->hdr, sizeof h->hdr);
	h->rx = (struct nx_ring *)(h->base + NX_TO_HOST_RING_OFF);
	h->tx = (struct nx_ring *)(h->base + NX_TO_GUEST_RING_OFF);
	nx_ring_init(h->rx);
	nx_ring_init(h->tx);
	h->arena = nx_arena_new(h->hdr.host_arena_off, h->hdr.host_arena_size);
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cv, NULL);
	pthread_create(&h->thread, NULL, serve, h);
	return h;
}

void fakehost_destroy(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_mutex_unlock(&h->lock);
	uint64_t one = 1;
	if (write(h->kick_host, &one, sizeof one) < 0)
		perror("fakehost: kick");
	pthread_join(h->thread, NULL);
	for (int i = 0; i < MAX_OBJS; i++)
		free(h->objs[i].data);
	for (int i = 0; i < MAX_DONE; i++)
		free(h->done[i].payload);
	nx_arena_destroy(h->arena);
	munmap(h->base, h->size);
	close(h->region_fd);
	close(h->kick_host);
	close(h->kick_guest);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

void fakehost_fds(const struct fakehost *h, int *region, int *kick_host, int *kick_guest)
{
	*region = h->region_fd;
	*kick_host = h->kick_host;
	*kick_guest = h->kick_guest;
}

void *fakehost_region(const struct fakehost *h) { return h->base; }

void fakehost_idle_poll(struct fakehost *h, int ms)
{
	pthread_mutex_lock(&h->lock);
	h->idle_poll_ms = ms;
	pthread_mutex_unlock(&h->lock);
}

void fakehost_ack_mode(struct fakehost *h, bool quiet, uint32_t status)
{
	pthread_mutex_lock(&h->lock);
	h->quiet_acks = quiet;
	h->done_status = status;
	pthread_mutex_unlock(&h->lock);
}

void fakehost_pause(struct fakehost *h, bool paused)
{
	pthread_mutex_lock(&h->lock);
	h->paused = paused;
	pthread_mutex_unlock(&h->lock);
	uint64_t one = 1;
	if (write(h->kick_host, &one, sizeof one) < 0)
		perror("fakehost: kick");
}

int fakehost_invoke(struct fakehost *h, uint64_t tag, const char *event, const char *ctx)
{
	pthread_mutex_lock(&h->lock);
	struct nx_desc d = { .opcode = NX_OP_INVOKE, .tag = tag };
	d.buf[0] = host_copy_locked(h, event, strlen(event));
	d.buf[1] = host_copy_locked(h, ctx, strlen(ctx));
	push_locked(h, &d);
	pthread_mutex_unlock(&h->lock);
	return 0;
}

int fakehost_wait_done(struct fakehost *h, uint64_t tag, char *buf, size_t *len, int timeout_ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&h->lock);
	for (;;) {
		for (int i = 0; i < MAX_DONE; i++) {
			struct done *dn = &h->done[i];
			if (dn->used && dn->tag == tag) {
				int st = (int)dn->status;
				size_t n = dn->len < *len ? dn->len : *len;
				if (dn->payload)
					memcpy(buf, dn->payload, n);
				*len = n;
				free(dn->payload);
				memset(dn, 0, sizeof *dn);
				pthread_mutex_unlock(&h->lock);
				return st;
			}
		}
		if (pthread_cond_timedwait(&h->cv, &h->lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&h->lock);
			return -ETIMEDOUT;
		}
	}
}

size_t fakehost_live_buffers(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	size_t n = nx_arena_live(h->arena);
	pthread_mutex_unlock(&h->lock);
	return n;
}

unsigned fakehost_violations(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	unsigned v = h->violations;
	pthread_mutex_unlock(&h->lock);
	return v;
}

uint64_t fakehost_releases(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t v = h->releases;
	pthread_mutex_unlock(&h->lock);
	return v;
}

void fakehost_break_ring(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	__atomic_store_n(&h->tx->head, __atomic_load_n(&h->tx->tail, __ATOMIC_RELAXED) + 1000, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(h->kick_guest, &one, sizeof one) < 0)
		perror("fakehost: kick");
	pthread_mutex_unlock(&h->lock);
}

void fakehost_new_generation(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	memset(h->base + NX_HDR_SIZE, 0, h->size - NX_HDR_SIZE);
	nx_ring_init(h->rx);
	nx_ring_init(h->tx);
	nx_arena_destroy(h->arena);
	h->arena = nx_arena_new(h->hdr.host_arena_off, h->hdr.host_arena_size);
	h->hdr.generation++;
	memcpy(h->base, &h->hdr, sizeof h->hdr);
	uint64_t one = 1;
	if (write(h->kick_guest, &one, sizeof one) < 0)
		perror("fakehost: kick");
	pthread_mutex_unlock(&h->lock);
}

uint64_t fakehost_readies(struct fakehost *h)
{
	pthread_mutex_lock(&h->lock);
	uint64_t v = h->readies;
	pthread_mutex_unlock(&h->lock);
	return v;
}
