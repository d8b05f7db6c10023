/* The control socket: a Unix stream socket that takes one request per line and
 * answers one JSON object per line.  Requests (bare words or {"cmd":...}):
 * status, stop, pause, resume, snapshot {"dir"}, ws-save {"file"}, and
 * nexus-attach with the Nexus device's three fds as SCM_RIGHTS (docs/vmm.md).
 * Clients come from the listening socket (--control PATH) or are inherited
 * (--control-fd N).  Served from the main thread's poll loop. */
#ifndef VMM_CONTROL_H
#define VMM_CONTROL_H
#include <poll.h>
#include <stddef.h>

#define CONTROL_MAX_CLIENTS 8
#define CONTROL_LINE_MAX 4608
#define CONTROL_MAX_FDS 8

struct vmm;

struct control {
    int listen_fd;
    int client[CONTROL_MAX_CLIENTS];
    char buf[CONTROL_MAX_CLIENTS][CONTROL_LINE_MAX];
    size_t len[CONTROL_MAX_CLIENTS];
    int fds[CONTROL_MAX_CLIENTS][CONTROL_MAX_FDS];   /* SCM_RIGHTS fds for the next line */
    int nfds[CONTROL_MAX_CLIENTS];
};

/* Empty (no listener, no clients). */
void control_init(struct control *c);
int control_open(struct control *c, const char *path);
/* Serve an already-connected socket as a client (--control-fd). 0 or -errno. */
int control_add_client(struct control *c, int fd);
/* Add our fds to p[]; returns how many were added (at most 1 + CONTROL_MAX_CLIENTS). */
int control_pollfds(struct control *c, struct pollfd *p);
void control_handle(struct control *c, struct vmm *vm, const struct pollfd *p, int n);
/* Build the reply to one request line (exposed for the unit tests); returns a
 * malloc'd JSON line, and sets *stop when the request was `stop`. */
char *control_reply(struct vmm *vm, const char *line, int *stop);
/* Same, with the fds that came with the line (consumed: kept by nexus-attach, else closed). */
char *control_reply_fds(struct vmm *vm, const char *line, int *stop, int *fds, int nfds);

#endif
