/* libnexus-pyarena.so: keeps the arenas of Python's small-object allocator
 * (pymalloc) mapped between invocations.
 *
 * Why: pymalloc takes its arenas (1 MiB on 64-bit CPython 3.11) from the OS
 * with mmap and gives each one back with munmap the moment its last object is
 * freed.  A handler that builds many small objects per call (wordcount: one
 * str per word, ~17 000 at 100 KiB) therefore maps fresh arenas and faults
 * every page of them in again on every invocation, and frees them all at its
 * end.  Page faults are dear in a sandbox (and dearer in a microVM): measured
 * on wordcount 100 KiB, 7.5 ms per call against 4.2 ms when the arenas
 * happened to stay pinned by a long-lived object (which depends on what the
 * instance's first invocation allocated, so the same function was fast or slow
 * by chance).  glibc's malloc has the same habit and nexusd's default
 * GLIBC_TUNABLES (nexusd/registry_spec.c) stop it; pymalloc's arenas do not go
 * through malloc, so they need this.
 *
 * What: an arena allocator (CPython's PyObject_SetArenaAllocator, a stable
 * API since 3.4) that chains to the previous one and keeps up to a byte budget
 * of freed arenas on a free list, handing them out again before asking the
 * previous allocator.  Idle cost: at most the budget of resident pages per
 * instance, and only as much as the function ever used at once.
 *
 * The library does not link libpython: it finds the two API functions in the
 * process (python3 exports them) with dlsym, so it loads into any CPython 3.
 * The runtime (nexusrt/runtime.py) calls nx_pyarena_install() through
 * ctypes.PyDLL, i.e. holding the GIL, before it imports the handler.  pymalloc
 * calls the allocator with the GIL held too; the mutex is for interpreters
 * that may one day not have one global lock. */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

/* CPython's PyObjectArenaAllocator (Include/cpython/objimpl.h), declared
 * here so the build needs no Python headers.  Its layout is part of the
 * stable API. */
struct py_arena_allocator {
	void *ctx;
	void *(*alloc)(void *ctx, size_t size);
	void (*free)(void *ctx, void *ptr, size_t size);
};

/* A freed arena's first bytes hold the link to the next one: the memory is
 * ours until we hand it out again. */
struct cached_arena {
	struct cached_arena *next;
	size_t size;
};

static struct {
	pthread_mutex_t lock;
	struct py_arena_allocator prev;   /* the allocator we chain to */
	struct cached_arena *free_list;
	size_t cached_bytes, budget;
	unsigned long hits, misses, released;   /* for nx_pyarena_stats */
	int installed;
} cache = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void *arena_alloc(void *ctx, size_t size)
{
	(void)ctx;
	pthread_mutex_lock(&cache.lock);
	/* Every pymalloc arena has the same size; an entry of another size
	 * (never seen, but the API allows it) is simply not reused. */
	for (struct cached_arena **p = &cache.free_list; *p; p = &(*p)->next) {
		struct cached_arena *a = *p;
		if (a->size == size) {
			*p = a->next;
			cache.cached_bytes -= size;
			cache.hits++;
			pthread_mutex_unlock(&cache.lock);
			return a;
		}
	}
	cache.misses++;
	pthread_mutex_unlock(&cache.lock);
	return cache.prev.alloc(cache.prev.ctx, size);
}

static void arena_free(void *ctx, void *ptr, size_t size)
{
	(void)ctx;
	if (ptr && size >= sizeof(struct cached_arena)) {
		pthread_mutex_lock(&cache.lock);
		if (cache.cached_bytes + size <= cache.budget) {
			struct cached_arena *a = ptr;
			a->next = cache.free_list;
			a->size = size;
			cache.free_list = a;
			cache.cached_bytes += size;
			pthread_mutex_unlock(&cache.lock);
			return;
		}
		cache.released++;
		pthread_mutex_unlock(&cache.lock);
	}
	cache.prev.free(cache.prev.ctx, ptr, size);
}

/* Installs the cache with a budget of `budget` bytes of freed arenas.
 * Returns 0, -EALREADY when installed before, -ENOSYS when the process has no
 * CPython arena API (not a CPython).  A budget of 0 installs nothing. */
__attribute__((visibility("default"))) int nx_pyarena_install(size_t budget)
{
	void (*get)(struct py_arena_allocator *) =
		(void (*)(struct py_arena_allocator *))dlsym(RTLD_DEFAULT, "PyObject_GetArenaAllocator");
	void (*set)(struct py_arena_allocator *) =
		(void (*)(struct py_arena_allocator *))dlsym(RTLD_DEFAULT, "PyObject_SetArenaAllocator");
	if (!get || !set)
		return -ENOSYS;
	if (!budget)
		return 0;
	pthread_mutex_lock(&cache.lock);
	if (cache.installed) {
		pthread_mutex_unlock(&cache.lock);
		return -EALREADY;
	}
	get(&cache.prev);
	cache.budget = budget;
	cache.installed = 1;
	pthread_mutex_unlock(&cache.lock);
	/* CPython copies the struct. */
	struct py_arena_allocator ours = { .ctx = NULL, .alloc = arena_alloc, .free = arena_free };
	set(&ours);
	return 0;
}

/* What the cache did so far (tests and diagnostics): arenas reused, arenas
 * asked of the previous allocator, arenas given back for lack of budget, and
 * the bytes held now.  Any pointer may be NULL. */
__attribute__((visibility("default"))) void nx_pyarena_stats(unsigned long *hits, unsigned long *misses,
                                                              unsigned long *released, size_t *cached_bytes)
{
	pthread_mutex_lock(&cache.lock);
	if (hits)
		*hits = cache.hits;
	if (misses)
		*misses = cache.misses;
	if (released)
		*released = cache.released;
	if (cached_bytes)
		*cached_bytes = cache.cached_bytes;
	pthread_mutex_unlock(&cache.lock);
}
