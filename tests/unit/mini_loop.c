/* SPDX-License-Identifier: MIT */
/*
 * A minimal implementation of nexusd/loop.h for the unit tests, the S3 test
 * and the fuzzers.  Unlike nexusd's loop it can be run again after
 * nx_loop_stop (tests run it in short slices between their own steps).
 * epoll for fds, a sorted list of one-shot timers, a mutex-protected post
 * queue woken by an eventfd.  Not for production: O(n) timers.
 */
#include "nexusd/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct watch { int fd; nx_fd_cb cb; void *arg; struct watch *next; bool dead; };
struct nx_timer { uint64_t when; nx_fn fn; void *arg; struct nx_timer *next; };
struct post { nx_fn fn; void *arg; struct post *next; };

struct nx_loop {
	int epfd, evfd;
	struct watch *watches;
	struct nx_timer *timers;   /* sorted by deadline */
	pthread_mutex_t mu;
	struct post *posts, **posts_tail;
	bool stop;
};

uint64_t nx_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct nx_loop *nx_loop_new(void)
{
	struct nx_loop *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&l->mu, NULL);
	l->posts_tail = &l->posts;
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
	epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->evfd, &e);
	return l;
}

static void reap(struct nx_loop *l)
{
	for (struct watch **p = &l->watches; *p;) {
		if ((*p)->dead) {
			struct watch *w = *p;
			*p = w->next;
			free(w);
		} else {
			p = &(*p)->next;
		}
	}
}

void nx_loop_destroy(struct nx_loop *l)
{
	if (!l)
		return;
	for (struct watch *w = l->watches; w; w = w->next)
		w->dead = true;
	reap(l);
	while (l->timers) {
		struct nx_timer *t = l->timers;
		l->timers = t->next;
		free(t);
	}
	while (l->posts) {
		struct post *p = l->posts;
		l->posts = p->next;
		free(p);
	}
	close(l->epfd);
	close(l->evfd);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

static struct watch *find(struct nx_loop *l, int fd)
{
	for (struct watch *w = l->watches; w; w = w->next)
		if (!w->dead && w->fd == fd)
			return w;
	return NULL;
}

int nx_loop_add_fd(struct nx_loop *l, int fd, uint32_t events, nx_fd_cb cb, void *arg)
{
	struct watch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct watch){ .fd = fd, .cb = cb, .arg = arg, .next = l->watches };
	struct epoll_event e = { .events = events, .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &e) < 0) {
		int r = -errno;
		free(w);
		return r;
	}
	l->watches = w;
	return 0;
}

int nx_loop_mod_fd(struct nx_loop *l, int fd, uint32_t events)
{
	struct watch *w = find(l, fd);
	if (!w)
		return -ENOENT;
	struct epoll_event e = { .events = events, .data.ptr = w };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &e) < 0 ? -errno : 0;
}

void nx_loop_del_fd(struct nx_loop *l, int fd)
{
	struct watch *w = find(l, fd);
	if (!w)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	w->dead = true;   /* freed after the current dispatch */
}

struct nx_timer *nx_loop_timer(struct nx_loop *l, uint64_t delay_ms, nx_fn fn, void *arg)
{
	struct nx_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	*t = (struct nx_timer){ .when = nx_now_ns() + delay_ms * 1000000ull, .fn = fn, .arg = arg };
	struct nx_timer **p = &l->timers;
	while (*p && (*p)->when <= t->when)
		p = &(*p)->next;
	t->next = *p;
	*p = t;
	return t;
}

void nx_timer_cancel(struct nx_loop *l, struct nx_timer *t)
{
	for (struct nx_timer **p = &l->timers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			free(t);
			return;
		}
}

int nx_loop_post(struct nx_loop *l, nx_fn fn, void *arg)
{
	struct post *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->fn = fn;
	p->arg = arg;
	pthread_mutex_lock(&l->mu);
	*l->posts_tail = p;
	l->posts_tail = &p->next;
	pthread_mutex_unlock(&l->mu);
	uint64_t one = 1;
	if (write(l->evfd, &one, sizeof(one)) < 0)
		return -errno;
	return 0;
}

static void run_posts(struct nx_loop *l)
{
	pthread_mutex_lock(&l->mu);
	struct post *p = l->posts;
	l->posts = NULL;
	l->posts_tail = &l->posts;
	pthread_mutex_unlock(&l->mu);
	while (p) {
		struct post *n = p->next;
		p->fn(p->arg);
		free(p);
		p = n;
	}
}

void nx_loop_run(struct nx_loop *l)
{
	l->stop = false;
	while (!__atomic_load_n(&l->stop, __ATOMIC_ACQUIRE)) {
		int timeout = -1;
		if (l->timers) {
			uint64_t now = nx_now_ns();
			timeout = l->timers->when <= now ? 0 : (int)((l->timers->when - now + 999999) / 1000000);
		}
		struct epoll_event ev[32];
		int n = epoll_wait(l->epfd, ev, 32, timeout);
		for (int i = 0; i < n; i++) {
			struct watch *w = ev[i].data.ptr;
			if (!w) {
				uint64_t v;
				if (read(l->evfd, &v, sizeof(v)) < 0) { /* spurious */ }
				continue;
			}
			if (!w->dead)
				w->cb(w->arg, ev[i].events);
		}
		reap(l);
		uint64_t now = nx_now_ns();
		while (l->timers && l->timers->when <= now) {
			struct nx_timer *t = l->timers;
			l->timers = t->next;
			nx_fn fn = t->fn;
			void *arg = t->arg;
			free(t);
			fn(arg);
		}
		run_posts(l);
		reap(l);
	}
}

void nx_loop_stop(struct nx_loop *l)
{
	__atomic_store_n(&l->stop, true, __ATOMIC_RELEASE);
	uint64_t one = 1;
	if (write(l->evfd, &one, sizeof(one)) < 0) { /* the loop wakes anyway */ }
}
