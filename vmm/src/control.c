/* Control socket (see control.h). */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "exit_codes.h"
#include "snapshot.h"
#include "vcpu.h"
#include "virtio_blk.h"
#include "vmm.h"

void control_init(struct control *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_fd = -1;
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->client[i] = -1;
}

static int add_client(struct control *c, int fd)
{
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        if (c->client[i] < 0) {
            c->client[i] = fd;
            c->len[i] = 0;
            c->nfds[i] = 0;
            return 0;
        }
    return -EMFILE;
}

int control_add_client(struct control *c, int fd)
{
    struct stat st;
    int type = 0;
    socklen_t tl = sizeof(type);
    if (fstat(fd, &st) < 0)
        return -errno;
    int domain = 0;
    socklen_t dl = sizeof(domain);
    if (!S_ISSOCK(st.st_mode) || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_STREAM ||
        getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0 || domain != AF_UNIX)
        return -ENOTSOCK;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return add_client(c, fd);
}

int control_open(struct control *c, const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sa.sun_path))
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct stat st;
    /* Replace a stale socket, never any other kind of file. */
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return -EEXIST;
        unlink(path);
    }
    c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->listen_fd < 0)
        return -errno;
    if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(c->listen_fd, 4) < 0) {
        int e = errno;
        close(c->listen_fd);
        c->listen_fd = -1;
        return -e;
    }
    return 0;
}

int control_pollfds(struct control *c, struct pollfd *p)
{
    int n = 0;
    p[n++] = (struct pollfd){ c->listen_fd, POLLIN, 0 };
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        p[n++] = (struct pollfd){ c->client[i], POLLIN, 0 };   /* fd -1 is ignored by poll */
    return n;
}

static json_t *status_json(struct vmm *vm)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_true());
    json_object_set_new(o, "state", json_string(vmm_is_exiting(vm) ? "stopping" : vm->pause_req ? "paused" :
                                                 vm->started ? "running" : "created"));
    json_object_set_new(o, "restored", json_boolean(vm->restored));
    json_object_set_new(o, "pid", json_integer(getpid()));
    json_object_set_new(o, "vcpus", json_integer(vm->nr_vcpus));
    json_object_set_new(o, "mem_mib", json_integer((json_int_t)vm->cfg.mem_mb));
    json_object_set_new(o, "disks", json_integer(vm->cfg.nr_disks));
    json_object_set_new(o, "net", vm->cfg.net_tap ? json_string(vm->cfg.net_tap) : json_null());
    json_object_set_new(o, "uptime_ms", json_real(vmm_now_ms() - (vm->t_start.tv_sec * 1e3 +
                                                                  vm->t_start.tv_nsec / 1e6)));
    json_object_set_new(o, "setup_wall_ms", json_real(vm->setup_wall_ms));
    json_object_set_new(o, "setup_cpu_ms", json_real(vm->setup_cpu_ms));
    json_int_t exits = 0;
    for (unsigned i = 0; i < vm->nr_vcpus && vm->vcpus; i++)
        exits += (json_int_t)__atomic_load_n(&vm->vcpus[i].exits, __ATOMIC_RELAXED);
    json_object_set_new(o, "vm_exits", json_integer(exits));
    return o;
}

static json_t *error_json(const char *msg)
{
    return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

static const char *str_arg(json_t *req, const char *key)
{
    json_t *v = req ? json_object_get(req, key) : NULL;
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *do_snapshot(struct vmm *vm, json_t *req)
{
    const char *dir = str_arg(req, "dir");
    char err[300];
    double ms;
    uint64_t bytes;
    if (!dir)
        return error_json("snapshot needs \"dir\": an absolute path to an existing, empty directory");
    if (snapshot_write(vm, dir, &ms, &bytes, err, sizeof(err)) < 0)
        return error_json(err);
    return json_pack("{s:b, s:f, s:I}", "ok", 1, "ms", ms, "memory_bytes", (json_int_t)bytes);
}

static json_t *do_ws_save(struct vmm *vm, json_t *req)
{
    const char *file = str_arg(req, "file");
    char err[300];
    uint64_t pages;
    if (!file)
        return error_json("ws-save needs \"file\": an absolute path (a new file)");
    if (ws_save(vm, file, &pages, err, sizeof(err)) < 0)
        return error_json(err);
    return json_pack("{s:b, s:I}", "ok", 1, "pages", (json_int_t)pages);
}

static json_t *do_nexus_attach(struct vmm *vm, int *fds, int nfds)
{
    char err[300];
    if (!vm->cfg.nexus_control)
        return error_json("nexus-attach: the monitor was not started with --nexus control");
    if (nfds < 3)
        return error_json("nexus-attach: expected the region memfd, the doorbell and the interrupt eventfd "
                          "as SCM_RIGHTS with the request");
    if (vmm_nexus_attach(vm, fds, err, sizeof(err)) < 0)
        return error_json(err);
    fds[0] = fds[1] = fds[2] = -1;   /* the device keeps them */
    return json_pack("{s:b}", "ok", 1);
}

char *control_reply_fds(struct vmm *vm, const char *line, int *stop, int *fds, int nfds)
{
    *stop = 0;
    const char *cmd = line;
    json_t *req = NULL;
    while (*cmd == ' ' || *cmd == '\t')
        cmd++;
    if (*cmd == '{') {
        req = json_loads(cmd, 0, NULL);
        json_t *c = req ? json_object_get(req, "cmd") : NULL;
        cmd = json_is_string(c) ? json_string_value(c) : "";
    }
    json_t *o;
    if (!strcmp(cmd, "status")) {
        o = status_json(vm);
    } else if (!strcmp(cmd, "stop")) {
        o = json_pack("{s:b, s:s}", "ok", 1, "state", "stopping");
        *stop = 1;
    } else if (!strcmp(cmd, "pause")) {
        o = !vm->started ? error_json("the VM has not started yet")
            : vmm_pause(vm) < 0 ? error_json(vmm_is_exiting(vm) ? "the VM is stopping"
                                                                : "the vCPUs did not stop within 10 s (not paused)")
            : json_pack("{s:b, s:s}", "ok", 1, "state", "paused");
    } else if (!strcmp(cmd, "resume")) {
        vmm_resume(vm);
        o = json_pack("{s:b, s:s}", "ok", 1, "state", vm->started ? "running" : "created");
    } else if (!strcmp(cmd, "snapshot")) {
        o = do_snapshot(vm, req);
    } else if (!strcmp(cmd, "ws-save")) {
        o = do_ws_save(vm, req);
    } else if (!strcmp(cmd, "nexus-attach")) {
        o = do_nexus_attach(vm, fds, nfds);
    } else {
        o = error_json("unknown command (status, stop, pause, resume, snapshot, ws-save, nexus-attach)");
    }
    for (int i = 0; i < nfds; i++)   /* whatever fds nobody kept */
        if (fds[i] >= 0)
            close(fds[i]);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_decref(req);
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *out = realloc(s, n + 2);
    if (!out) {
        free(s);
        return NULL;
    }
    out[n] = '\n';
    out[n + 1] = 0;
    return out;
}

char *control_reply(struct vmm *vm, const char *line, int *stop)
{
    return control_reply_fds(vm, line, stop, NULL, 0);
}

static void close_fds(struct control *c, int i)
{
    for (int k = 0; k < c->nfds[i]; k++)
        close(c->fds[i][k]);
    c->nfds[i] = 0;
}

static void drop(struct control *c, int i)
{
    close(c->client[i]);
    close_fds(c, i);
    c->client[i] = -1;
    c->len[i] = 0;
}

/* recvmsg, keeping any SCM_RIGHTS fds for the next complete line (nexus-attach's
 * fds ride on the sendmsg of its first byte); more than CONTROL_MAX_FDS pending
 * fds are closed at once. */
static ssize_t recv_with_fds(struct control *c, int i, char *buf, size_t len)
{
    union { char b[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)]; struct cmsghdr align; } ctl;
    struct iovec iov = { buf, len };
    struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof(ctl.b) };
    ssize_t r = recvmsg(c->client[i], &m, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    for (struct cmsghdr *h = CMSG_FIRSTHDR(&m); r >= 0 && h; h = CMSG_NXTHDR(&m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
            continue;
        int nf = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        for (int k = 0; k < nf; k++) {
            int fd;
            memcpy(&fd, CMSG_DATA(h) + k * sizeof(int), sizeof(int));
            if (c->nfds[i] < CONTROL_MAX_FDS)
                c->fds[i][c->nfds[i]++] = fd;
            else
                close(fd);
        }
    }
    return r;
}

static void serve(struct control *c, struct vmm *vm, int i)
{
    ssize_t r = recv_with_fds(c, i, c->buf[i] + c->len[i], CONTROL_LINE_MAX - 1 - c->len[i]);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        drop(c, i);
        return;
    }
    c->len[i] += (size_t)r;
    c->buf[i][c->len[i]] = 0;
    char *nl;
    while (c->client[i] >= 0 && (nl = strchr(c->buf[i], '\n'))) {
        *nl = 0;
        if (nl > c->buf[i] && nl[-1] == '\r')
            nl[-1] = 0;
        int stop;
        int nfds = c->nfds[i];
        c->nfds[i] = 0;   /* handed to the request, which keeps or closes them */
        char *rep = control_reply_fds(vm, c->buf[i], &stop, c->fds[i], nfds);
        if (rep) {
            /* Replies are small; a client that does not read them loses them. */
            if (write(c->client[i], rep, strlen(rep)) < 0) {
            }
            free(rep);
        }
        size_t used = (size_t)(nl + 1 - c->buf[i]);
        memmove(c->buf[i], nl + 1, c->len[i] - used + 1);
        c->len[i] -= used;
        if (stop)
            vmm_request_exit(vm, VMM_EXIT_STOPPED, "stopped by control socket request");
    }
    if (c->client[i] >= 0 && c->len[i] >= CONTROL_LINE_MAX - 1)
        drop(c, i);   /* line too long */
}

void control_handle(struct control *c, struct vmm *vm, const struct pollfd *p, int n)
{
    if (n < 1)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENTS && 1 + i < n; i++)
        if (c->client[i] >= 0 && (p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
            serve(c, vm, i);
    if (c->listen_fd >= 0 && (p[0].revents & POLLIN)) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0 && add_client(c, fd) < 0)
            close(fd);   /* too many clients */
    }
}
