/* SPDX-License-Identifier: MIT */
/*
 * nexus-s3peer's object store: buckets of immutable, reference-counted objects
 * held in memory.  A bucket keeps its objects sorted by key (binary search;
 * ListObjects walks the array), which is all a benchmark peer needs.  One
 * read-write lock guards the whole store; an object's bytes are never changed
 * after it is stored, so a reader takes a reference under the lock and sends
 * the bytes after dropping it (a PUT of the same key replaces the pointer).
 */
#ifndef S3PEER_STORE_H
#define S3PEER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct s3obj {
	int refs;                /* atomic */
	char *key;
	uint8_t *data;
	size_t len;
	char etag[33];           /* MD5 hex of data */
	char *ctype;             /* Content-Type as stored, or NULL */
	time_t mtime;
};

struct s3bucket {
	char *name;
	time_t ctime;
	struct s3obj **objs;     /* sorted by strcmp(key) */
	size_t n, cap;
};

enum { ST_OK = 0, ST_NO_BUCKET = 1, ST_NO_KEY = 2, ST_EXISTS = 3, ST_NOT_EMPTY = 4, ST_NOMEM = 5 };

/* A new object owning data (malloc'd) and copies of key and ctype; refs = 1. */
struct s3obj *obj_new(const char *key, uint8_t *data, size_t len, const char *ctype);
void obj_ref(struct s3obj *o);
void obj_unref(struct s3obj *o);

void store_init(void);
int store_bucket_create(const char *name);
int store_bucket_delete(const char *name);
int store_bucket_exists(const char *name);
/* Takes over the caller's reference to o on success. */
int store_put(const char *bucket, struct s3obj *o);
/* On ST_OK, *out holds a new reference. */
int store_get(const char *bucket, const char *key, struct s3obj **out);
int store_delete(const char *bucket, const char *key);

/* Listing: call with the read lock held (store_rdlock/store_unlock). */
void store_rdlock(void);
void store_unlock(void);
struct s3bucket *store_find_bucket_locked(const char *name);
/* Index of the first object whose key is > after (after NULL or "": the first). */
size_t store_first_after_locked(const struct s3bucket *b, const char *after);
/* Every bucket, for ListBuckets (read lock held). */
struct s3bucket *const *store_buckets_locked(size_t *n);

#endif
