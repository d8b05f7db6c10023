/* Daemon processes for `nexus up` / `nexus down`. */
#include "proc.h"
#include "nexus.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

pid_t proc_spawn(char *const argv[], char *const env[], const char *logpath)
{
    char *old = xasprintf("%s.1", logpath);
    rename(logpath, old);   /* keep one previous log for post-mortems */
    free(old);
    int log = open(logpath, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0) {
        nx_err("cannot open the log %s: %s", logpath, strerror(errno));
        return -1;
    }
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null < 0) {
        nx_err("cannot open /dev/null: %s", strerror(errno));
        close(log);
        return -1;
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        nx_err("fork: %s", strerror(errno));
        close(log);
        close(null);
        return -1;
    }
    if (pid == 0) {
        /* Own session: a Ctrl-C in the shell that ran `nexus up` must not stop the node. */
        setsid();
        dup2(null, STDIN_FILENO);
        dup2(log, STDOUT_FILENO);
        dup2(log, STDERR_FILENO);
        for (char *const *e = env; e && *e; e++)
            putenv(*e);
        execvp(argv[0], argv);
        dprintf(STDERR_FILENO, "nexus: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(log);
    close(null);
    return pid;
}

pid_t pidfile_read(const char *path)
{
    char *text = read_file(path, NULL);
    if (!text)
        return 0;
    text[strcspn(text, "\n")] = '\0';
    long pid = parse_long(text, 1, 1L << 30);
    free(text);
    return pid > 0 ? (pid_t)pid : 0;
}

int pidfile_write(const char *path, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)pid);
    if (write_file(path, buf, (size_t)n, 0644) < 0) {
        nx_err("cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static bool is_zombie(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    char *stat = read_file(path, NULL);
    if (!stat)
        return true;   /* gone between kill() and here */
    /* "pid (comm) S ..." — comm may contain spaces or parentheses: use the last ')' */
    char *rp = strrchr(stat, ')');
    bool z = !rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X';
    free(stat);
    return z;
}

bool proc_is(pid_t pid, const char *needle)
{
    if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH) || is_zombie(pid))
        return false;
    char path[64];
    size_t len;
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    char *cmd = read_file(path, &len);
    if (!cmd)
        return false;
    for (size_t i = 0; i < len; i++)   /* NUL-separated argv -> one string */
        if (cmd[i] == '\0')
            cmd[i] = ' ';
    bool match = strstr(cmd, needle) != NULL;
    free(cmd);
    return match;
}

static bool alive(pid_t pid)
{
    /* Reap it if it is our own child (it is, when `nexus up` cleans up after a failure). */
    waitpid(pid, NULL, WNOHANG);
    return !(kill(pid, 0) < 0 && errno == ESRCH) && !is_zombie(pid);
}

static bool wait_gone(pid_t pid, double secs)
{
    double end = now_s() + secs;
    while (alive(pid)) {
        if (now_s() >= end)
            return false;
        nanosleep(&(struct timespec){0, 50 * 1000 * 1000}, NULL);
    }
    return true;
}

int proc_stop(pid_t pid, double grace_s)
{
    if (!alive(pid))
        return 0;
    kill(pid, SIGTERM);
    if (wait_gone(pid, grace_s))
        return 0;
    kill(pid, SIGKILL);
    return wait_gone(pid, 5.0) ? 1 : -1;
}
