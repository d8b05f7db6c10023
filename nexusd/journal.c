/* SPDX-License-Identifier: MIT */
/*
 * The write-back journal (journal.h): record codec, segment files, the
 * group-committing writer thread, replay and segment deletion.
 */
#include "journal.h"
#include "loop.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* ------------------------------------------------------------- codec */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;   /* Castagnoli, reflected */
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t nx_crc32c(uint32_t crc, const void *p, size_t n)
{
	pthread_once(&crc_once, crc_init);
	const uint8_t *b = p;
	crc = ~crc;
	while (n >= 8) {   /* slicing-by-8: ~1 GB/s without SSE4.2 intrinsics */
		uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24);
		crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
		      crc_table[4][lo >> 24] ^ crc_table[3][b[4]] ^ crc_table[2][b[5]] ^ crc_table[1][b[6]] ^
		      crc_table[0][b[7]];
		b += 8;
		n -= 8;
	}
	while (n--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *b++) & 0xff];
	return ~crc;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

/* Header layout:
 *   0 magic u32 | 4 crc u32 | 8 type u32 | 12 reserved u32 | 16 seq u64 |
 *  24 body_len u64 | 32 bucket_len u16 | 34 key_len u16 | 36 ctype_len u16 | 38 reserved u16
 * then bucket NUL key NUL ctype NUL body, zero padding to a multiple of 8. */
static size_t names_len(const struct nx_jrec *r)
{
	return strlen(r->bucket) + 1 + strlen(r->key) + 1 + strlen(r->ctype ? r->ctype : "") + 1;
}

size_t nx_jrec_size(const struct nx_jrec *r)
{
	size_t n = NX_JREC_HDR_SIZE + names_len(r) + r->body_len;
	return (n + 7) & ~(size_t)7;
}

size_t nx_jrec_encode_head(const struct nx_jrec *r, uint8_t *out, size_t cap)
{
	const char *ct = r->ctype ? r->ctype : "";
	size_t bl = strlen(r->bucket), kl = strlen(r->key), cl = strlen(ct);
	size_t n = NX_JREC_HDR_SIZE + bl + kl + cl + 3;
	if (n > cap || bl > NX_JREC_NAME_MAX || kl > NX_JREC_NAME_MAX || cl > NX_JREC_CTYPE_MAX)
		return 0;
	memset(out, 0, NX_JREC_HDR_SIZE);
	put32(out, NX_JREC_MAGIC);
	put32(out + 8, r->type);
	put64(out + 16, r->seq);
	put64(out + 24, r->body_len);
	put16(out + 32, (uint16_t)bl);
	put16(out + 34, (uint16_t)kl);
	put16(out + 36, (uint16_t)cl);
	uint8_t *p = out + NX_JREC_HDR_SIZE;
	memcpy(p, r->bucket, bl + 1); p += bl + 1;
	memcpy(p, r->key, kl + 1); p += kl + 1;
	memcpy(p, ct, cl + 1);
	static const uint8_t zeros[8];
	size_t pad = nx_jrec_size(r) - n - r->body_len;
	uint32_t crc = nx_crc32c(0, out, n);
	crc = nx_crc32c(crc, r->body, r->body_len);
	crc = nx_crc32c(crc, zeros, pad);
	put32(out + 4, crc);
	return n;
}

int nx_jrec_decode(const uint8_t *buf, size_t len, struct nx_jrec *r, size_t *used)
{
	if (len < NX_JREC_HDR_SIZE)
		return NX_JREC_SHORT;
	if (get32(buf) != NX_JREC_MAGIC)
		return NX_JREC_CORRUPT;
	uint32_t type = get32(buf + 8);
	uint64_t blen = get64(buf + 24);
	size_t bl = get16(buf + 32), kl = get16(buf + 34), cl = get16(buf + 36);
	if ((type != NX_JREC_PUT && type != NX_JREC_TOMBSTONE && type != NX_JREC_DONE) || blen > NX_JREC_BODY_MAX || bl == 0 ||
	    bl > NX_JREC_NAME_MAX || kl == 0 || kl > NX_JREC_NAME_MAX || cl > NX_JREC_CTYPE_MAX)
		return NX_JREC_CORRUPT;
	size_t names = bl + kl + cl + 3;
	size_t total = (NX_JREC_HDR_SIZE + names + (size_t)blen + 7) & ~(size_t)7;
	if (len < total)
		return NX_JREC_SHORT;
	uint8_t hdr[NX_JREC_HDR_SIZE];
	memcpy(hdr, buf, sizeof hdr);
	put32(hdr + 4, 0);
	uint32_t crc = nx_crc32c(0, hdr, sizeof hdr);
	crc = nx_crc32c(crc, buf + NX_JREC_HDR_SIZE, total - NX_JREC_HDR_SIZE);
	if (crc != get32(buf + 4))
		return NX_JREC_CORRUPT;
	const uint8_t *p = buf + NX_JREC_HDR_SIZE;
	if (p[bl] || p[bl + 1 + kl] || p[bl + kl + 2 + cl] || memchr(p, 0, bl) || memchr(p + bl + 1, 0, kl))
		return NX_JREC_CORRUPT;
	r->type = type;
	r->seq = get64(buf + 16);
	r->bucket = (const char *)p;
	r->key = (const char *)p + bl + 1;
	r->ctype = (const char *)p + bl + kl + 2;
	r->body = p + names;
	r->body_len = blen;
	*used = total;
	return NX_JREC_OK;
}

uint64_t nx_journal_rec_bytes(const char *bucket, const char *key, const char *ctype, uint64_t len)
{
	struct nx_jrec r = { .bucket = bucket, .key = key, .ctype = ctype, .body_len = len };
	return nx_jrec_size(&r);
}

/* ----------------------------------------------------------- journal */

struct job {
	struct job *next;
	uint32_t type;
	uint64_t seq, size;
	char *bucket, *key, *ctype;
	const void *body;
	uint64_t len;
	nx_journal_cb cb;
	void *arg;
	int err;
	uint64_t seg;
	char etag[40];
};

struct seg {
	uint64_t id, bytes, live;
};

struct nx_journal {
	struct nx_loop *loop;
	char dir[512];
	uint64_t max_bytes, seg_max;
	/* loop thread */
	uint64_t next_seq;
	uint64_t bytes_live;          /* live segments + appends in flight */
	struct seg *segs;
	size_t nsegs, cap_segs;
	struct nx_journal_stats st;
	/* writer thread (active_id also read by the loop) */
	pthread_t thr;
	bool thr_running;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *qhead, *qtail;
	struct batch *posted;
	bool quit;
	int fd;
	uint64_t active_id, next_id, active_size;
	char why[1200];
};

static void seg_path(const struct nx_journal *j, uint64_t id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/seg-%016" PRIx64 ".log", j->dir, id);
}

static struct seg *seg_get(struct nx_journal *j, uint64_t id, bool create)
{
	for (size_t i = 0; i < j->nsegs; i++)
		if (j->segs[i].id == id)
			return &j->segs[i];
	if (!create)
		return NULL;
	if (j->nsegs == j->cap_segs) {
		size_t cap = j->cap_segs ? j->cap_segs * 2 : 16;
		struct seg *n = realloc(j->segs, cap * sizeof *n);
		if (!n)
			return NULL;
		j->segs = n;
		j->cap_segs = cap;
	}
	/* ids only grow, except at replay which goes in order too */
	size_t at = j->nsegs;
	while (at > 0 && j->segs[at - 1].id > id)
		at--;
	memmove(&j->segs[at + 1], &j->segs[at], (j->nsegs - at) * sizeof *j->segs);
	j->segs[at] = (struct seg){ .id = id };
	j->nsegs++;
	return &j->segs[at];
}

/* Delete the oldest segments while they are sealed and all done.  Only a
 * prefix may go: a surviving record then always has every later record of
 * its key surviving too, which is what makes replay (latest wins) correct. */
static void seg_gc(struct nx_journal *j)
{
	uint64_t active = __atomic_load_n(&j->active_id, __ATOMIC_ACQUIRE);
	while (j->nsegs && j->segs[0].live == 0 && j->segs[0].id < active) {
		char p[600];
		seg_path(j, j->segs[0].id, p, sizeof p);
		if (unlink(p) < 0 && errno != ENOENT) {
			nxd_warn("journal: cannot delete %s: %s", p, strerror(errno));
			return;
		}
		j->bytes_live -= j->segs[0].bytes <= j->bytes_live ? j->segs[0].bytes : j->bytes_live;
		memmove(&j->segs[0], &j->segs[1], (j->nsegs - 1) * sizeof *j->segs);
		j->nsegs--;
	}
}

/* Writer thread: make sure a segment with room is open. */
static int writer_segment(struct nx_journal *j, uint64_t need)
{
	if (j->fd >= 0 && (j->active_size == 0 || j->active_size + need <= j->seg_max))
		return 0;
	if (j->fd >= 0) {
		if (fdatasync(j->fd) < 0)
			return -errno;
		close(j->fd);
		j->fd = -1;
	}
	int r = nxd_mkdir_p(j->dir);
	if (r < 0) {
		snprintf(j->why, sizeof j->why, "cannot create %s: %s", j->dir, strerror(-r));
		return r;
	}
	char p[600];
	uint64_t id = j->next_id;
	seg_path(j, id, p, sizeof p);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		snprintf(j->why, sizeof j->why, "cannot create %s: %s", p, strerror(errno));
		return r;
	}
	int dfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {   /* the new name itself must survive a crash */
		fsync(dfd);
		close(dfd);
	}
	j->fd = fd;
	j->active_size = 0;
	j->next_id = id + 1;
	__atomic_store_n(&j->active_id, id, __ATOMIC_RELEASE);
	return 0;
}

void nx_journal_md5_etag(const void *p, uint64_t n, char out[40])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int ml = 0;
	EVP_Digest(p, n, md, &ml, EVP_md5(), NULL);
	out[0] = '"';
	for (unsigned i = 0; i < 16; i++)
		snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
	out[33] = '"';
	out[34] = 0;
}

static int writer_append(struct nx_journal *j, struct job *jb)
{
	int r = writer_segment(j, jb->size);
	if (r < 0)
		return r;
	struct nx_jrec rec = { .type = jb->type, .seq = jb->seq, .bucket = jb->bucket, .key = jb->key,
	                       .ctype = jb->ctype, .body = jb->body, .body_len = jb->len };
	uint8_t head[NX_JREC_HDR_SIZE + 2 * NX_JREC_NAME_MAX + NX_JREC_CTYPE_MAX + 3];
	size_t hl = nx_jrec_encode_head(&rec, head, sizeof head);
	if (!hl)
		return -ENAMETOOLONG;
	static const uint8_t zeros[8];
	struct iovec iov[3] = { { head, hl }, { (void *)jb->body, jb->len }, { (void *)zeros, jb->size - hl - jb->len } };
	uint64_t want = jb->size, done = 0;
	int idx = 0;
	while (done < want) {
		ssize_t n = writev(j->fd, iov + idx, 3 - idx);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			snprintf(j->why, sizeof j->why, "write to %s: %s", j->dir, strerror(errno));
			/* drop the partial record so the segment stays decodable */
			if (ftruncate(j->fd, (off_t)j->active_size) < 0) {
				close(j->fd);
				j->fd = -1;
			}
			return r;
		}
		done += (uint64_t)n;
		while (idx < 3 && (size_t)n >= iov[idx].iov_len) {
			n -= (ssize_t)iov[idx].iov_len;
			idx++;
		}
		if (idx < 3) {
			iov[idx].iov_base = (uint8_t *)iov[idx].iov_base + n;
			iov[idx].iov_len -= (size_t)n;
		}
	}
	j->active_size += want;
	jb->seg = j->active_id;
	return 0;
}

static void deliver(void *arg);

struct batch {
	struct nx_journal *j;
	struct job *head;
	uint64_t fsyncs;
	struct batch *pnext;          /* j->posted: written, not yet delivered on the loop */
};

static void *writer_main(void *arg)
{
	struct nx_journal *j = arg;
	pthread_mutex_lock(&j->mu);
	for (;;) {
		while (!j->qhead && !j->quit)
			pthread_cond_wait(&j->cv, &j->mu);
		if (!j->qhead && j->quit)
			break;
		struct job *list = j->qhead;   /* everything queued so far: one fsync for all */
		j->qhead = j->qtail = NULL;
		pthread_mutex_unlock(&j->mu);
		bool wrote = false;
		for (struct job *jb = list; jb; jb = jb->next) {
			if (jb->type == NX_JREC_PUT)
				nx_journal_md5_etag(jb->body, jb->len, jb->etag);
			jb->err = writer_append(j, jb);
			wrote |= jb->err == 0;
		}
		struct batch *b = calloc(1, sizeof *b);
		if (wrote && j->fd >= 0 && fdatasync(j->fd) < 0) {
			int e = -errno;
			snprintf(j->why, sizeof j->why, "fdatasync in %s: %s", j->dir, strerror(errno));
			for (struct job *jb = list; jb; jb = jb->next)
				if (!jb->err)
					jb->err = e;
		}
		if (!b) {   /* out of memory: these can never be answered; the records are on disk */
			for (struct job *jb = list, *nx; jb; jb = nx) {
				nx = jb->next;
				free(jb->bucket);
				free(jb);
			}
			pthread_mutex_lock(&j->mu);
			continue;
		}
		b->j = j;
		b->head = list;
		b->fsyncs = wrote;
		pthread_mutex_lock(&j->mu);
		b->pnext = j->posted;   /* a batch the loop never runs is answered by nx_journal_close */
		j->posted = b;
		pthread_mutex_unlock(&j->mu);
		nx_loop_post(j->loop, deliver, b);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	if (j->fd >= 0) {
		fdatasync(j->fd);
		close(j->fd);
		j->fd = -1;
	}
	return NULL;
}

/* Loop thread: a batch is durable (or failed). */
static void deliver(void *arg)
{
	struct batch *b = arg;
	struct nx_journal *j = b->j;
	pthread_mutex_lock(&j->mu);
	for (struct batch **pp = &j->posted; *pp; pp = &(*pp)->pnext)
		if (*pp == b) {
			*pp = b->pnext;
			break;
		}
	pthread_mutex_unlock(&j->mu);
	j->st.fsyncs += b->fsyncs;
	for (struct job *jb = b->head, *nx; jb; jb = nx) {
		nx = jb->next;
		if (jb->err == 0) {
			struct seg *s = seg_get(j, jb->seg, true);
			if (s) {
				s->bytes += jb->size;
				s->live++;
			}
		} else {
			j->bytes_live -= jb->size;
			j->st.errors++;
			snprintf(j->st.why, sizeof j->st.why, "%.250s", j->why);
		}
		if (jb->cb)
			jb->cb(jb->arg, jb->err, jb->seq, jb->seg, jb->etag);
		free(jb->bucket);
		free(jb);
	}
	free(b);
	seg_gc(j);
}

struct nx_journal *nx_journal_open(struct nx_loop *loop, const char *dir, uint64_t max_bytes)
{
	struct nx_journal *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	j->loop = loop;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	j->max_bytes = max_bytes;
	j->seg_max = max_bytes / 8 < (64u << 20) ? max_bytes / 8 : (64u << 20);
	if (j->seg_max < (1u << 20))
		j->seg_max = 1u << 20;
	j->fd = -1;
	j->next_seq = 1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_cond_init(&j->cv, NULL);
	int r = nxd_mkdir_p(dir);
	if (r < 0 || access(dir, W_OK) < 0) {
		snprintf(j->why, sizeof j->why, "journal directory %s is not usable: %s", dir,
		         strerror(r < 0 ? -r : errno));
		snprintf(j->st.why, sizeof j->st.why, "%.250s", j->why);
		nxd_warn("%s: functions with nexus:writeback=async will get errors on put_object", j->why);
	}
	if (pthread_create(&j->thr, NULL, writer_main, j) != 0) {
		free(j);
		return NULL;
	}
	j->thr_running = true;
	return j;
}

void nx_journal_close(struct nx_journal *j)
{
	if (!j)
		return;
	if (j->thr_running) {
		pthread_mutex_lock(&j->mu);
		j->quit = true;
		pthread_cond_signal(&j->cv);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thr, NULL);
	}
	/* Batches posted to a loop that has stopped: answer them (not
	 * acknowledged; their records are on disk and the next start replays them). */
	while (j->posted) {
		struct batch *b = j->posted;
		j->posted = b->pnext;
		for (struct job *jb = b->head, *nx; jb; jb = nx) {
			nx = jb->next;
			if (jb->cb)
				jb->cb(jb->arg, -ESHUTDOWN, jb->seq, jb->seg, jb->etag);
			free(jb->bucket);
			free(jb);
		}
		free(b);
	}
	for (struct job *jb = j->qhead, *nx; jb; jb = nx) {
		nx = jb->next;
		free(jb->bucket);
		free(jb);
	}
	free(j->segs);
	free(j);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

size_t nx_journal_replay(struct nx_journal *j, void (*fn)(void *arg, const struct nx_jrec *r, uint64_t seg),
                         void *arg)
{
	DIR *d = opendir(j->dir);
	if (!d)
		return 0;
	uint64_t *ids = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		uint64_t id;
		char tail[8];
		if (sscanf(de->d_name, "seg-%16" SCNx64 ".%4s", &id, tail) != 2 || strcmp(tail, "log"))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			uint64_t *nn = realloc(ids, cap * sizeof *nn);
			if (!nn)
				break;
			ids = nn;
		}
		ids[n++] = id;
	}
	closedir(d);
	if (n)
		qsort(ids, n, sizeof *ids, cmp_u64);
	size_t records = 0;
	for (size_t i = 0; i < n; i++) {
		char p[600];
		seg_path(j, ids[i], p, sizeof p);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		struct stat sb;
		if (fd < 0 || fstat(fd, &sb) < 0) {
			nxd_warn("journal: cannot read %s: %s", p, strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		size_t len = (size_t)sb.st_size;
		uint8_t *buf = len ? malloc(len) : NULL;
		size_t got = 0;
		while (buf && got < len) {
			ssize_t k = read(fd, buf + got, len - got);
			if (k <= 0)
				break;
			got += (size_t)k;
		}
		close(fd);
		struct seg *s = seg_get(j, ids[i], true);
		if (s)
			s->bytes = len;
		j->bytes_live += len;
		size_t off = 0;
		while (buf && off < got) {
			struct nx_jrec r;
			size_t used;
			int rc = nx_jrec_decode(buf + off, got - off, &r, &used);
			if (rc != NX_JREC_OK) {
				/* a torn tail: never acknowledged (acks follow the fsync) */
				nxd_warn("journal: %s: %s record at offset %zu, %zu bytes ignored", p,
				         rc == NX_JREC_SHORT ? "incomplete" : "corrupt", off, got - off);
				break;
			}
			if (r.seq >= j->next_seq)
				j->next_seq = r.seq + 1;
			if (s)
				s->live++;
			fn(arg, &r, ids[i]);
			records++;
			off += used;
		}
		free(buf);
		if (ids[i] >= j->next_id)
			j->next_id = ids[i] + 1;
	}
	free(ids);
	/* appends go to a fresh segment; replayed ones are sealed */
	__atomic_store_n(&j->active_id, j->next_id, __ATOMIC_RELEASE);
	seg_gc(j);
	return records;
}

int nx_journal_append(struct nx_journal *j, uint32_t type, const char *bucket, const char *key,
                      const char *ctype, const void *body, uint64_t len, nx_journal_cb cb, void *arg,
                      uint64_t *seq_out)
{
	if (!ctype)
		ctype = "";
	if (strlen(bucket) > NX_JREC_NAME_MAX || strlen(key) > NX_JREC_NAME_MAX || strlen(ctype) > NX_JREC_CTYPE_MAX)
		return -ENAMETOOLONG;
	uint64_t size = nx_journal_rec_bytes(bucket, key, ctype, len);
	if (j->bytes_live + size > j->max_bytes) {
		j->st.full++;
		return -ENOSPC;
	}
	struct job *jb = calloc(1, sizeof *jb);
	size_t bl = strlen(bucket) + 1, kl = strlen(key) + 1, cl = strlen(ctype) + 1;
	char *names = malloc(bl + kl + cl);   /* one allocation: bucket, key, ctype */
	if (!jb || !names) {
		free(jb);
		free(names);
		return -ENOMEM;
	}
	memcpy(names, bucket, bl);
	memcpy(names + bl, key, kl);
	memcpy(names + bl + kl, ctype, cl);
	jb->bucket = names;
	jb->key = names + bl;
	jb->ctype = names + bl + kl;
	jb->type = type;
	jb->seq = j->next_seq++;
	jb->size = size;
	jb->body = body;
	jb->len = len;
	jb->cb = cb;
	jb->arg = arg;
	j->bytes_live += size;
	j->st.appends++;
	if (seq_out)
		*seq_out = jb->seq;
	pthread_mutex_lock(&j->mu);
	if (j->qtail)
		j->qtail->next = jb;
	else
		j->qhead = jb;
	j->qtail = jb;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->mu);
	return 0;
}

void nx_journal_done(struct nx_journal *j, uint64_t seg, uint64_t bytes)
{
	(void)bytes;
	struct seg *s = seg_get(j, seg, false);
	if (s && s->live)
		s->live--;
	seg_gc(j);
}

int nx_journal_seg_live(struct nx_journal *j, uint64_t seg)
{
	return seg_get(j, seg, false) != NULL || seg >= __atomic_load_n(&j->active_id, __ATOMIC_ACQUIRE);
}

void nx_journal_stats(const struct nx_journal *j, struct nx_journal_stats *out)
{
	*out = j->st;
	out->bytes_live = j->bytes_live;
	out->max_bytes = j->max_bytes;
	out->segments = j->nsegs;
	out->usable = j->st.why[0] == 0 || j->st.errors == 0;
	snprintf(out->dir, sizeof out->dir, "%s", j->dir);
}
