/* SPDX-License-Identifier: MIT */
/*
 * The write-back journal: nexusd's durable, append-only log of PUTs that a
 * function with "nexus:writeback" = "async" made (writeback.c uploads them).
 *
 * On disk: STATE/journal/seg-NNNNNNNNNNNNNNNN.log, each a sequence of records
 *
 *   header (40 bytes, little-endian: magic, crc, type, seq, body length, name
 *   lengths) | bucket NUL | key NUL | content type NUL | body | zero pad to 8
 *
 * Types: PUT (an object), TOMBSTONE (a later sync write or delete of the key:
 * older PUTs of it are void), DONE (S3 has taken PUT seq N of the key).
 *
 * with a CRC32C over the header (crc field zero) and everything after it, so
 * a torn tail (a crash in the middle of an append) is detected and ignored:
 * such a record was never acknowledged, because the acknowledgement goes out
 * only after the fsync that covers it.
 *
 * Appends come from the loop thread and are written by one writer thread,
 * which takes every append queued so far, writes them, and covers them all
 * with one fdatasync (group commit).  Completions are posted back to the loop.
 * Segments are deleted oldest first, once all their records are done (see
 * writeback.c for why only a prefix may go).
 */
#ifndef NEXUSD_JOURNAL_H
#define NEXUSD_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define NX_JREC_MAGIC     0x314a584eu   /* "NXJ1" */
#define NX_JREC_HDR_SIZE  40u
#define NX_JREC_PUT       1u
#define NX_JREC_TOMBSTONE 2u            /* a later sync write/delete of the key: older records are void */
#define NX_JREC_DONE      3u            /* body = u64 LE seq of a PUT of the key that S3 has taken */
#define NX_JREC_NAME_MAX  1024u         /* bucket, key */
#define NX_JREC_CTYPE_MAX 255u
#define NX_JREC_BODY_MAX  (5ull << 30)

struct nx_jrec {
	uint32_t type;
	uint64_t seq;
	const char *bucket, *key, *ctype;   /* NUL-terminated views (decode: into the buffer copy) */
	const void *body;
	uint64_t body_len;
};

/* ---- codec (pure functions; tests/unit/test_journal.c) ---- */
uint32_t nx_crc32c(uint32_t crc, const void *p, size_t n);
/* Size of r encoded, padding included. */
size_t nx_jrec_size(const struct nx_jrec *r);
/* Encode the header + names (not the body) into hdr[], which must hold
 * NX_JREC_HDR_SIZE + names; returns the bytes written.  The CRC covers the
 * body too, so the body must be passed. */
size_t nx_jrec_encode_head(const struct nx_jrec *r, uint8_t *out, size_t cap);
enum { NX_JREC_OK = 0, NX_JREC_SHORT = -1, NX_JREC_CORRUPT = -2 };
/* Decode one record at buf (len bytes available).  On OK, *r points into
 * buf (names are stored with a NUL after each, checked here), *used = its
 * encoded size.  SHORT: buf ends inside the record (a torn tail); CORRUPT:
 * bad magic, lengths or CRC. */
int nx_jrec_decode(const uint8_t *buf, size_t len, struct nx_jrec *r, size_t *used);

/* S3's ETag of a single-part PUT: the body's MD5, hex, in double quotes. */
void nx_journal_md5_etag(const void *p, uint64_t n, char out[40]);

/* ---- the journal ---- */
struct nx_loop;
struct nx_journal;

/* Called on the loop thread once the record is durable (err = 0, seg = the
 * segment holding it, etag = the body's MD5 in quotes as S3 gives it,
 * computed on the writer thread) or could not be written (err = -errno). */
typedef void (*nx_journal_cb)(void *arg, int err, uint64_t seq, uint64_t seg, const char *etag);

/* Opens (creates) dir and starts the writer thread; max_bytes bounds the
 * bytes of all live segments.  Does not fail for an unusable directory:
 * appends then fail with its errno (so a PUT fails loudly), and the stats'
 * why says what is wrong.  NULL only when out of memory/threads. */
struct nx_journal *nx_journal_open(struct nx_loop *loop, const char *dir, uint64_t max_bytes);
void nx_journal_close(struct nx_journal *j);

/* Replay: calls fn for every intact record of the existing segments, oldest
 * first (start-up, before any append).  Returns records seen. */
size_t nx_journal_replay(struct nx_journal *j, void (*fn)(void *arg, const struct nx_jrec *r, uint64_t seg),
                         void *arg);

/* Loop thread.  body must stay valid until cb has run; strings are copied.  Returns 0, -ENOSPC when the bound would be
 * exceeded (push back), -EIO when the journal is unusable. */
int nx_journal_append(struct nx_journal *j, uint32_t type, const char *bucket, const char *key,
                      const char *ctype, const void *body, uint64_t len, nx_journal_cb cb, void *arg,
                      uint64_t *seq_out);
/* Loop thread: one record of segment seg (of encoded size bytes) is done. */
void nx_journal_done(struct nx_journal *j, uint64_t seg, uint64_t bytes);
/* Loop thread: does segment seg still exist (not yet deleted)? */
int nx_journal_seg_live(struct nx_journal *j, uint64_t seg);
/* Encoded size of a PUT record, for nx_journal_done. */
uint64_t nx_journal_rec_bytes(const char *bucket, const char *key, const char *ctype, uint64_t len);

struct nx_journal_stats {
	uint64_t bytes_live, max_bytes, segments, appends, fsyncs, full, errors;
	int usable;
	char dir[512];
	char why[256];          /* last error */
};
void nx_journal_stats(const struct nx_journal *j, struct nx_journal_stats *out);

#endif
