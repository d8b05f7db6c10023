/* Control socket (see control.h). */
#include "control.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "exit_codes.h"
#include "vcpu.h"
#include "virtio_blk.h"
#include "vmm.h"

int control_open(struct control *c, const char *path)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
        c->client[i] = -1;
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
    json_object_set_new(o, "state", json_string(vmm_is_exiting(vm) ? "stopping" : "running"));
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

char *control_reply(struct vmm *vm, const char *line, int *stop)
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
    } else {
        o = json_pack("{s:b, s:s}", "ok", 0, "error", "unknown command (status, stop)");
    }
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    json_decref(req);
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

static void drop(struct control *c, int i)
{
    close(c->client[i]);
    c->client[i] = -1;
    c->len[i] = 0;
}

static void serve(struct control *c, struct vmm *vm, int i)
{
    ssize_t r = read(c->client[i], c->buf[i] + c->len[i], CONTROL_LINE_MAX - 1 - c->len[i]);
    if (r <= 0) {
        if (r < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        drop(c, i);
        return;
    }
    c->len[i] += (size_t)r;
    c->buf[i][c->len[i]] = 0;
    char *nl;
    while ((nl = strchr(c->buf[i], '\n'))) {
        *nl = 0;
        if (nl > c->buf[i] && nl[-1] == '\r')
            nl[-1] = 0;
        int stop;
        char *rep = control_reply(vm, c->buf[i], &stop);
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
    if (c->len[i] >= CONTROL_LINE_MAX - 1)
        drop(c, i);   /* line too long */
}

void control_handle(struct control *c, struct vmm *vm, const struct pollfd *p, int n)
{
    if (n < 1)
        return;
    for (int i = 0; i < CONTROL_MAX_CLIENTS && 1 + i < n; i++)
        if (c->client[i] >= 0 && (p[1 + i].revents & (POLLIN | POLLHUP | POLLERR)))
            serve(c, vm, i);
    if (p[0].revents & POLLIN) {
        int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        for (int i = 0; i < CONTROL_MAX_CLIENTS; i++)
            if (c->client[i] < 0) {
                c->client[i] = fd;
                c->len[i] = 0;
                return;
            }
        close(fd);   /* too many clients */
    }
}
