/* SPDX-License-Identifier: MIT */
/*
 * The nexusd event loop (loop.h): one epoll set, a binary min-heap of
 * one-shot timers whose earliest deadline is epoll_pwait2's timeout, and a
 * post queue woken by an eventfd.
 *
 * Why this shape:
 *  - fd watches are heap objects referenced by epoll's data.ptr; a watch
 *    deleted while a batch of events is being dispatched is only marked dead
 *    and freed after the batch, so a callback may tear down other watches
 *    (e.g. the exit fd handler destroying a channel) without use-after-free.
 *  - Timers cost no system call at all: the wait's timeout is the heap's
 *    earliest deadline (nanoseconds, epoll_pwait2), and due timers run after
 *    each batch of events.  (It used to be a timerfd: libcurl re-sets its
 *    timer, often to 0 ms, several times per storage request, and each one was
 *    a timerfd_settime plus a wake-up plus a read -- on this PVM node about
 *    12 of the ~43 system calls nexusd made per warm wordcount invocation.)
 *    Timers are loop-thread only (the heap has no lock), as before.
 *  - nx_loop_mod_fd skips epoll_ctl when the events do not change (libcurl
 *    re-announces the same interest often).
 *  - nx_loop_post from the loop thread itself writes no eventfd: the loop
 *    drains the queue after every batch and does not block while it is
 *    non-empty.  Other threads write the eventfd only on the empty ->
 *    non-empty transition.
 */
#include "loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct watch {
	int fd;
	uint32_t events;     /* as last given to epoll_ctl */
	bool dead;
	nx_fd_cb cb;
	void *arg;
	struct watch *next_dead;
};

struct nx_timer {
	uint64_t when_ns;
	size_t idx;          /* position in the heap */
	nx_fn fn;
	void *arg;
	struct nx_timer *next_free;
};

struct post {
	nx_fn fn;
	void *arg;
};

struct nx_loop {
	int epfd, evfd;
	struct watch ev_watch;

	/* fd -> watch, so nx_loop_mod_fd/del_fd can find it by fd. */
	struct watch **by_fd;
	size_t by_fd_cap;
	struct watch *dead;

	struct nx_timer **heap;
	size_t nheap, heap_cap;
	struct nx_timer *timer_free;

	pthread_mutex_t mu;
	struct post *q, *q_spare;
	size_t qlen, qcap, spare_cap;
	bool wake_pending;
	bool stopped;        /* set by nx_loop_stop; posts fail afterwards */
};

/* The loop running on this thread, if any: posts from it need no wake-up. */
static __thread struct nx_loop *tl_loop;

uint64_t nx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void on_eventfd(void *arg, uint32_t ev);

struct nx_loop *nx_loop_new(void)
{
	struct nx_loop *l = calloc(1, sizeof *l);
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&l->mu, NULL);
	if (l->epfd < 0 || l->evfd < 0)
		goto fail;
	l->ev_watch = (struct watch){.fd = l->evfd, .cb = on_eventfd, .arg = l};
	struct epoll_event e = {.events = EPOLLIN, .data.ptr = &l->ev_watch};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &e) < 0)
		goto fail;
	return l;
fail:
	nx_loop_destroy(l);
	return NULL;
}

static void free_dead(struct nx_loop *l)
{
	while (l->dead) {
		struct watch *w = l->dead;
		l->dead = w->next_dead;
		free(w);
	}
}

void nx_loop_destroy(struct nx_loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->by_fd_cap; i++)
		free(l->by_fd[i]);
	free(l->by_fd);
	free_dead(l);
	for (size_t i = 0; i < l->nheap; i++)
		free(l->heap[i]);
	free(l->heap);
	while (l->timer_free) {
		struct nx_timer *t = l->timer_free;
		l->timer_free = t->next_free;
		free(t);
	}
	free(l->q);
	free(l->q_spare);
	if (l->epfd >= 0) close(l->epfd);
	if (l->evfd >= 0) close(l->evfd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

/* ------------------------------------------------------------------ fds */

int nx_loop_add_fd(struct nx_loop *l, int fd, uint32_t events, nx_fd_cb cb, void *arg)
{
	if (fd < 0 || !cb)
		return -EINVAL;
	if ((size_t)fd >= l->by_fd_cap) {
		size_t cap = l->by_fd_cap ? l->by_fd_cap : 64;
		while (cap <= (size_t)fd)
			cap *= 2;
		struct watch **n = realloc(l->by_fd, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		memset(n + l->by_fd_cap, 0, (cap - l->by_fd_cap) * sizeof *n);
		l->by_fd = n;
		l->by_fd_cap = cap;
	}
	if (l->by_fd[fd])
		return -EEXIST;
	struct watch *w = calloc(1, sizeof *w);
	if (!w)
		return -ENOMEM;
	*w = (struct watch){.fd = fd, .events = events, .cb = cb, .arg = arg};
	struct epoll_event e = {.events = events, .data.ptr = w};
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int err = -errno;
		free(w);
		return err;
	}
	l->by_fd[fd] = w;
	return 0;
}

int nx_loop_mod_fd(struct nx_loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= l->by_fd_cap || !l->by_fd[fd])
		return -ENOENT;
	struct watch *w = l->by_fd[fd];
	if (w->events == events)
		return 0;
	struct epoll_event e = {.events = events, .data.ptr = w};
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &e) < 0)
		return -errno;
	w->events = events;
	return 0;
}

void nx_loop_del_fd(struct nx_loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->by_fd_cap || !l->by_fd[fd])
		return;
	struct watch *w = l->by_fd[fd];
	l->by_fd[fd] = NULL;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	/* Events for it may still sit in the current batch: free it afterwards. */
	w->dead = true;
	w->next_dead = l->dead;
	l->dead = w;
}

/* --------------------------------------------------------------- timers */

static void heap_swap(struct nx_loop *l, size_t a, size_t b)
{
	struct nx_timer *t = l->heap[a];
	l->heap[a] = l->heap[b];
	l->heap[b] = t;
	l->heap[a]->idx = a;
	l->heap[b]->idx = b;
}

static void heap_up(struct nx_loop *l, size_t i)
{
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->when_ns <= l->heap[i]->when_ns)
			break;
		heap_swap(l, i, p);
		i = p;
	}
}

static void heap_down(struct nx_loop *l, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1, m = i;
		if (c < l->nheap && l->heap[c]->when_ns < l->heap[m]->when_ns)
			m = c;
		if (c + 1 < l->nheap && l->heap[c + 1]->when_ns < l->heap[m]->when_ns)
			m = c + 1;
		if (m == i)
			return;
		heap_swap(l, i, m);
		i = m;
	}
}

static void heap_remove(struct nx_loop *l, struct nx_timer *t)
{
	size_t i = t->idx, last = --l->nheap;
	if (i != last) {
		l->heap[i] = l->heap[last];
		l->heap[i]->idx = i;
		heap_down(l, i);
		heap_up(l, i);
	}
}

struct nx_timer *nx_loop_timer(struct nx_loop *l, uint64_t delay_ms, nx_fn fn, void *arg)
{
	if (l->nheap == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct nx_timer **n = realloc(l->heap, cap * sizeof *n);
		if (!n)
			return NULL;
		l->heap = n;
		l->heap_cap = cap;
	}
	struct nx_timer *t = l->timer_free;
	if (t)
		l->timer_free = t->next_free;
	else if (!(t = malloc(sizeof *t)))
		return NULL;
	t->when_ns = nx_now_ns() + delay_ms * 1000000ull;
	t->fn = fn;
	t->arg = arg;
	t->idx = l->nheap;
	l->heap[l->nheap++] = t;
	heap_up(l, t->idx);
	return t;
}

static void timer_free(struct nx_loop *l, struct nx_timer *t)
{
	t->next_free = l->timer_free;
	l->timer_free = t;
}

void nx_timer_cancel(struct nx_loop *l, struct nx_timer *t)
{
	if (!t)
		return;
	heap_remove(l, t);
	timer_free(l, t);
}

/* Run every timer due when the pass starts.  One added meanwhile (even with
 * delay 0) waits for the next pass, after a poll for I/O: a timer that re-arms
 * itself at 0 ms (chan.c's "let the others run") cannot starve the fds. */
static void run_timers(struct nx_loop *l)
{
	uint64_t now = nx_now_ns();
	while (l->nheap && l->heap[0]->when_ns <= now) {
		struct nx_timer *t = l->heap[0];
		heap_remove(l, t);
		nx_fn fn = t->fn;
		void *a = t->arg;
		timer_free(l, t);
		fn(a);
	}
}

/* epoll_pwait2's timeout: none while posts wait, the earliest deadline, or
 * forever (NULL). */
static struct timespec *wait_timeout(struct nx_loop *l, bool pending, struct timespec *ts)
{
	if (pending) {
		*ts = (struct timespec){0, 0};
		return ts;
	}
	if (!l->nheap)
		return NULL;
	uint64_t now = nx_now_ns(), when = l->heap[0]->when_ns;
	uint64_t d = when > now ? when - now : 0;
	ts->tv_sec = (time_t)(d / 1000000000ull);
	ts->tv_nsec = (long)(d % 1000000000ull);
	return ts;
}

/* ----------------------------------------------------------------- posts */

int nx_loop_post(struct nx_loop *l, nx_fn fn, void *arg)
{
	bool on_loop = tl_loop == l;
	bool wake = false;
	pthread_mutex_lock(&l->mu);
	if (l->stopped) {
		pthread_mutex_unlock(&l->mu);
		return -ESHUTDOWN;
	}
	if (l->qlen == l->qcap) {
		size_t cap = l->qcap ? l->qcap * 2 : 64;
		struct post *n = realloc(l->q, cap * sizeof *n);
		if (!n) {
			pthread_mutex_unlock(&l->mu);
			return -ENOMEM;
		}
		l->q = n;
		l->qcap = cap;
	}
	l->q[l->qlen++] = (struct post){fn, arg};
	if (!on_loop && !l->wake_pending) {
		l->wake_pending = true;
		wake = true;
	}
	pthread_mutex_unlock(&l->mu);
	if (wake) {
		uint64_t one = 1;
		ssize_t w = write(l->evfd, &one, sizeof one);
		(void)w;
	}
	return 0;
}

static void on_eventfd(void *arg, uint32_t ev)
{
	(void)ev;
	struct nx_loop *l = arg;
	uint64_t n;
	ssize_t r = read(l->evfd, &n, sizeof n);
	(void)r;
}

/* Run everything posted so far; posts made meanwhile wait for the next round. */
static void drain_posts(struct nx_loop *l)
{
	pthread_mutex_lock(&l->mu);
	struct post *batch = l->q;
	size_t n = l->qlen, cap = l->qcap;
	l->q = l->q_spare;
	l->qcap = l->spare_cap;
	l->qlen = 0;
	l->wake_pending = false;
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; i < n; i++)
		batch[i].fn(batch[i].arg);
	pthread_mutex_lock(&l->mu);
	l->q_spare = batch;
	l->spare_cap = cap;
	pthread_mutex_unlock(&l->mu);
}

static bool posts_pending(struct nx_loop *l)
{
	pthread_mutex_lock(&l->mu);
	bool p = l->qlen > 0;
	pthread_mutex_unlock(&l->mu);
	return p;
}

int nx_loop_in_thread(const struct nx_loop *l)
{
	return tl_loop == l;
}

void nx_loop_run(struct nx_loop *l)
{
	tl_loop = l;
	struct epoll_event evs[64];
	for (;;) {
		pthread_mutex_lock(&l->mu);
		bool stop = l->stopped;
		bool pending = l->qlen > 0;
		pthread_mutex_unlock(&l->mu);
		if (stop)
			break;
		struct timespec ts;
		int n = epoll_pwait2(l->epfd, evs, 64, wait_timeout(l, pending, &ts), NULL);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			struct watch *w = evs[i].data.ptr;
			if (!w->dead)
				w->cb(w->arg, evs[i].events);
		}
		free_dead(l);
		run_timers(l);
		free_dead(l);
		if (posts_pending(l))
			drain_posts(l);
		free_dead(l);
	}
	/* Run what was posted before the stop so nothing is silently dropped. */
	drain_posts(l);
	free_dead(l);
	tl_loop = NULL;
}

void nx_loop_stop(struct nx_loop *l)
{
	pthread_mutex_lock(&l->mu);
	l->stopped = true;
	bool wake = !l->wake_pending;
	l->wake_pending = true;
	pthread_mutex_unlock(&l->mu);
	if (wake) {
		uint64_t one = 1;
		ssize_t w = write(l->evfd, &one, sizeof one);
		(void)w;
	}
}
