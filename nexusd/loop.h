/* SPDX-License-Identifier: MIT */
/*
 * nexusd's event loop: one epoll thread owns the channels, the storage
 * transfers (libcurl multi), the sandboxes' exit notifications and the
 * timers.  Other threads (HTTP ingress) hand work to it with nx_loop_post.
 */
#ifndef NEXUSD_LOOP_H
#define NEXUSD_LOOP_H

#include <stdint.h>

struct nx_loop;
struct nx_timer;

typedef void (*nx_fd_cb)(void *arg, uint32_t epoll_events);
typedef void (*nx_fn)(void *arg);

struct nx_loop *nx_loop_new(void);
void nx_loop_destroy(struct nx_loop *l);

/* Watch fd for EPOLLIN/EPOLLOUT/...; cb runs on the loop thread. */
int  nx_loop_add_fd(struct nx_loop *l, int fd, uint32_t events, nx_fd_cb cb, void *arg);
int  nx_loop_mod_fd(struct nx_loop *l, int fd, uint32_t events);
void nx_loop_del_fd(struct nx_loop *l, int fd);

/* One-shot timer after delay_ms; returns a handle valid until it fires or
 * is cancelled.  Cancelling a fired timer is not allowed. */
struct nx_timer *nx_loop_timer(struct nx_loop *l, uint64_t delay_ms, nx_fn fn, void *arg);
void nx_timer_cancel(struct nx_loop *l, struct nx_timer *t);

/* Thread-safe: run fn(arg) on the loop thread soon.  Returns 0 or -errno. */
int nx_loop_post(struct nx_loop *l, nx_fn fn, void *arg);

/* True when called on the thread running nx_loop_run(l). */
int nx_loop_in_thread(const struct nx_loop *l);

/* Run until nx_loop_stop (thread-safe). */
void nx_loop_run(struct nx_loop *l);
void nx_loop_stop(struct nx_loop *l);

/* Monotonic clock. */
uint64_t nx_now_ns(void);

#endif
