/* The control socket: a Unix stream socket that takes one request per line and
 * answers one JSON object per line.  Requests: `status`, `stop` (bare words or
 * {"cmd":"status"} / {"cmd":"stop"}).  Served from the main thread's poll loop. */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H
#include <poll.h>
#include <stddef.h>

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 512

struct vmm;

struct control {
    int listen_fd;
    int client[CONTROL_MAX_CLIENTS];
    char buf[CONTROL_MAX_CLIENTS][CONTROL_LINE_MAX];
    size_t len[CONTROL_MAX_CLIENTS];
};

int control_open(struct control *c, const char *path);
/* Add our fds to p[]; returns how many were added (at most 1 + CONTROL_MAX_CLIENTS). */
int control_pollfds(struct control *c, struct pollfd *p);
void control_handle(struct control *c, struct vmm *vm, const struct pollfd *p, int n);
/* Build the reply to one request line (exposed for the unit tests); returns a
 * malloc'd JSON line, and sets *stop when the request was `stop`. */
char *control_reply(struct vmm *vm, const char *line, int *stop);

#endif
