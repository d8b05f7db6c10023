/* SPDX-License-Identifier: MIT */
/* nexus-s3peer's in-memory object store (store.h). */
#include "store.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static struct s3bucket **buckets;
static size_t nbuckets, capbuckets;

static void md5_hex(const uint8_t *p, size_t n, char out[33])
{
	unsigned char d[16];
	unsigned int dl = 0;
	EVP_Digest(p, n, d, &dl, EVP_md5(), NULL);
	for (int i = 0; i < 16; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

struct s3obj *obj_new(const char *key, uint8_t *data, size_t len, const char *ctype)
{
	struct s3obj *o = calloc(1, sizeof *o);
	if (!o)
		return NULL;
	o->refs = 1;
	o->key = strdup(key);
	o->ctype = ctype ? strdup(ctype) : NULL;
	if (!o->key || (ctype && !o->ctype)) {
		free(o->key);
		free(o->ctype);
		free(o);
		return NULL;
	}
	o->data = data;
	o->len = len;
	o->mtime = time(NULL);
	md5_hex(data ? data : (const uint8_t *)"", len, o->etag);
	return o;
}

void obj_ref(struct s3obj *o)
{
	__atomic_add_fetch(&o->refs, 1, __ATOMIC_RELAXED);
}

void obj_unref(struct s3obj *o)
{
	if (!o || __atomic_sub_fetch(&o->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	free(o->key);
	free(o->data);
	free(o->ctype);
	free(o);
}

void store_init(void) {}

void store_rdlock(void) { pthread_rwlock_rdlock(&lock); }
void store_unlock(void) { pthread_rwlock_unlock(&lock); }

struct s3bucket *store_find_bucket_locked(const char *name)
{
	for (size_t i = 0; i < nbuckets; i++)
		if (strcmp(buckets[i]->name, name) == 0)
			return buckets[i];
	return NULL;
}

struct s3bucket *const *store_buckets_locked(size_t *n)
{
	*n = nbuckets;
	return buckets;
}

/* First index whose key is >= key; *found when equal. */
static size_t lower_bound(const struct s3bucket *b, const char *key, int *found)
{
	size_t lo = 0, hi = b->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(b->objs[mid]->key, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (found)
		*found = lo < b->n && strcmp(b->objs[lo]->key, key) == 0;
	return lo;
}

size_t store_first_after_locked(const struct s3bucket *b, const char *after)
{
	if (!after || !*after)
		return 0;
	int found;
	size_t i = lower_bound(b, after, &found);
	return found ? i + 1 : i;
}

int store_bucket_create(const char *name)
{
	pthread_rwlock_wrlock(&lock);
	int r = ST_OK;
	if (store_find_bucket_locked(name)) {
		r = ST_EXISTS;
		goto out;
	}
	if (nbuckets == capbuckets) {
		size_t nc = capbuckets ? 2 * capbuckets : 8;
		struct s3bucket **nb = realloc(buckets, nc * sizeof *nb);
		if (!nb) {
			r = ST_NOMEM;
			goto out;
		}
		buckets = nb;
		capbuckets = nc;
	}
	struct s3bucket *b = calloc(1, sizeof *b);
	if (!b || !(b->name = strdup(name))) {
		free(b);
		r = ST_NOMEM;
		goto out;
	}
	b->ctime = time(NULL);
	buckets[nbuckets++] = b;
out:
	pthread_rwlock_unlock(&lock);
	return r;
}

int store_bucket_delete(const char *name)
{
	pthread_rwlock_wrlock(&lock);
	int r = ST_NO_BUCKET;
	for (size_t i = 0; i < nbuckets; i++) {
		struct s3bucket *b = buckets[i];
		if (strcmp(b->name, name) != 0)
			continue;
		if (b->n) {
			r = ST_NOT_EMPTY;
			break;
		}
		free(b->objs);
		free(b->name);
		free(b);
		buckets[i] = buckets[--nbuckets];
		r = ST_OK;
		break;
	}
	pthread_rwlock_unlock(&lock);
	return r;
}

int store_bucket_exists(const char *name)
{
	store_rdlock();
	int r = store_find_bucket_locked(name) != NULL;
	store_unlock();
	return r;
}

/* Find key's slot in bucket: ST_OK (found, *ip is its index), ST_NO_KEY (*ip is
 * where it would go) or ST_NO_BUCKET.  Caller holds the lock. */
static int store_locate_locked(const char *bucket, const char *key, struct s3bucket **bp, size_t *ip)
{
	struct s3bucket *b = store_find_bucket_locked(bucket);
	if (!b)
		return ST_NO_BUCKET;
	int found;
	*ip = lower_bound(b, key, &found);
	*bp = b;
	return found ? ST_OK : ST_NO_KEY;
}

int store_put(const char *bucket, struct s3obj *o)
{
	struct s3obj *old = NULL;
	struct s3bucket *b;
	size_t i;
	pthread_rwlock_wrlock(&lock);
	int r = store_locate_locked(bucket, o->key, &b, &i);
	if (r == ST_OK) {
		old = b->objs[i];
		b->objs[i] = o;
		goto out;
	}
	if (r != ST_NO_KEY)
		goto out;
	r = ST_OK;
	if (b->n == b->cap) {
		size_t nc = b->cap ? 2 * b->cap : 64;
		struct s3obj **no = realloc(b->objs, nc * sizeof *no);
		if (!no) {
			r = ST_NOMEM;
			goto out;
		}
		b->objs = no;
		b->cap = nc;
	}
	memmove(b->objs + i + 1, b->objs + i, (b->n - i) * sizeof *b->objs);
	b->objs[i] = o;
	b->n++;
out:
	pthread_rwlock_unlock(&lock);
	obj_unref(old);   /* outside the lock: may free megabytes */
	return r;
}

int store_get(const char *bucket, const char *key, struct s3obj **out)
{
	struct s3bucket *b;
	size_t i;
	store_rdlock();
	int r = store_locate_locked(bucket, key, &b, &i);
	if (r == ST_OK) {
		*out = b->objs[i];
		obj_ref(*out);
	}
	store_unlock();
	return r;
}

int store_delete(const char *bucket, const char *key)
{
	struct s3obj *old = NULL;
	struct s3bucket *b;
	size_t i;
	pthread_rwlock_wrlock(&lock);
	int r = store_locate_locked(bucket, key, &b, &i);
	if (r == ST_OK) {
		old = b->objs[i];
		memmove(b->objs + i, b->objs + i + 1, (b->n - i - 1) * sizeof *b->objs);
		b->n--;
	}
	pthread_rwlock_unlock(&lock);
	obj_unref(old);
	return r;
}
