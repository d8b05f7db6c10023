/* nexus-init: PID 1 of the Nexus guest.
 *
 * Mounts /proc, /sys, /dev, /dev/shm, /tmp and /run, makes sure stdio is the console,
 * brings up lo, runs the one command given on the kernel command line, reaps every
 * process that is re-parented to it, and when the command ends reports its status
 * through the exit port (I/O port 0x501, see the monitor contract) and powers off.
 * Status values (0..63, the exit status of nexus-vmm) are listed in README.md.
 *
 * Run as anything but PID 1 it is a test harness: `nexus-init --test CMDLINE [ARG...]`
 * parses CMDLINE like /proc/cmdline (ARGs standing for the kernel's argv after "--"),
 * runs the command without mounting or powering off, and exits with the value it
 * would have written to the exit port. */
#include "cmdline.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define EXIT_PORT 0x501

/* Exit port values.  0..ST_STATUS_MAX: the command's own exit status. */
enum {
    ST_STATUS_MAX = 55,
    ST_STATUS_HIGH = 56,   /* the command exited with a status > 55 (printed) */
    ST_SIGNALED = 57,      /* the command was killed by a signal, e.g. it crashed */
    ST_EXEC_FAILED = 58,   /* the command could not be executed (missing, not executable) */
    ST_NO_COMMAND = 59,    /* no command on the kernel command line */
    ST_BAD_OPTION = 60,    /* malformed nexus.* option */
    ST_SETUP_FAILED = 61,  /* a mount, fork or similar failed in init itself */
    ST_INIT_CRASHED = 63,  /* init caught a fatal signal of its own */
};

static bool is_pid1, quiet, poweroff_only;

static void say(bool important, const char *fmt, ...)
{
    if (quiet && !important) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof buf - 2) n = sizeof buf - 2;
    buf[n++] = '\n';
    /* One write per line, straight to fd 2: no stdio buffering to lose at power-off. */
    if (write(2, "nexus-init: ", 12) < 0 || write(2, buf, (size_t)n) < 0) { /* nowhere to say it */ }
}

static double uptime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Ends the VM with VALUE.  Never returns when PID 1. */
static void finish(int value)
{
    if (!is_pid1) exit(value);
    /* The serial driver transmits from its buffer on interrupts, after write() returned:
     * wait until the console has really sent everything, or the last lines are lost. */
    tcdrain(1);
    tcdrain(2);
    sync();
    if (!poweroff_only) {
        if (ioperm(EXIT_PORT, 1, 1) == 0)
            outb((unsigned char)value, EXIT_PORT);   /* the monitor stops the VM here */
        else
            say(true, "ioperm(0x%x) failed (%s): falling back to power-off", EXIT_PORT, strerror(errno));
        say(true, "still running after writing %d to port 0x%x: falling back to power-off",
            value, EXIT_PORT);
    }
    reboot(RB_POWER_OFF);
    say(true, "power-off failed (%s); halting", strerror(errno));
    for (;;) pause();
}

static void on_crash(int sig)
{
    /* Only async-signal-safe calls: write, ioperm/outb, reboot. */
    static const char msg[] = "nexus-init: FATAL: init itself crashed (fatal signal)\n";
    if (write(2, msg, sizeof msg - 1) < 0) { /* nothing more we can do */ }
    (void)sig;
    finish(ST_INIT_CRASHED);
}

static void catch_crashes(void)
{
    struct sigaction sa = { .sa_handler = on_crash };
    sigemptyset(&sa.sa_mask);
    int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGSYS };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) sigaction(sigs[i], &sa, NULL);
}

/* fds 0-2 are the console when the kernel found /dev/console; make sure of it. */
static void setup_console(void)
{
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) != -1) continue;
        int c = open("/dev/console", O_RDWR | O_NOCTTY);
        if (c < 0) return;   /* no console at all: we will be silent, not broken */
        if (c != fd) { dup2(c, fd); close(c); }
    }
}

struct mnt { const char *type, *dir, *opts; unsigned long flags; bool required; };

static bool mount_all(void)
{
    static const struct mnt mnts[] = {
        { "proc", "/proc", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, true },
        { "sysfs", "/sys", NULL, MS_NOSUID | MS_NODEV | MS_NOEXEC, true },
        { "devtmpfs", "/dev", "mode=0755", MS_NOSUID, true },
        { "tmpfs", "/tmp", "mode=1777", MS_NOSUID | MS_NODEV, true },
        { "tmpfs", "/dev/shm", "mode=1777", MS_NOSUID | MS_NODEV, false },
        { "tmpfs", "/run", "mode=0755", MS_NOSUID | MS_NODEV, false },
    };
    for (size_t i = 0; i < sizeof mnts / sizeof mnts[0]; i++) {
        const struct mnt *m = &mnts[i];
        if (!strcmp(m->dir, "/dev/shm")) mkdir(m->dir, 01777);   /* /dev is devtmpfs: writable */
        if (mount(m->type, m->dir, m->type, m->flags, m->opts) == 0) continue;
        if (errno == EBUSY) continue;   /* already there (the kernel mounts devtmpfs itself) */
        say(m->required, "%s: mounting %s on %s failed: %s", m->required ? "ERROR" : "warning",
            m->type, m->dir, strerror(errno));
        if (m->required) return false;
    }
    return true;
}

static void loopback_up(void)
{
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return;   /* kernel without INET: nothing to bring up */
    struct ifreq ifr = { 0 };
    strcpy(ifr.ifr_name, "lo");
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) != 0) say(false, "warning: lo up: %s", strerror(errno));
    }
    close(s);
}

static char *read_cmdline(void)
{
    static char buf[4096];
    int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) return NULL;
    buf[n] = '\0';
    return buf;
}

/* environ + nexus.env, with a PATH and HOME if the kernel gave none. */
static char **build_env(const struct init_config *cfg)
{
    extern char **environ;
    static char *env[INIT_MAX_ENV + 64];
    size_t n = 0;
    bool have_path = false, have_home = false;
    for (char **e = environ; e && *e && n < 60; e++) {
        if (!strncmp(*e, "PATH=", 5)) have_path = true;
        if (!strncmp(*e, "HOME=", 5)) have_home = true;
        env[n++] = *e;
    }
    if (!have_path) env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    if (!have_home) env[n++] = "HOME=/root";
    for (int i = 0; i < cfg->envc; i++) env[n++] = cfg->env[i];
    env[n] = NULL;
    return env;
}

/* Child side: becomes the command.  On failure sends errno up the pipe. */
static void exec_command(const struct init_config *cfg, char **argv, int errpipe)
{
    if (is_pid1) {
        setsid();
        ioctl(0, TIOCSCTTY, 0);   /* the console as controlling tty; harmless if it fails */
        signal(SIGPIPE, SIG_DFL);
    }
    int err = 0;
    if (chdir(cfg->cwd) != 0) err = errno;
    if (!err && cfg->gid >= 0 && (setgroups(0, NULL) != 0 || setgid((gid_t)cfg->gid) != 0)) err = errno;
    if (!err && cfg->uid >= 0 && setuid((uid_t)cfg->uid) != 0) err = errno;
    if (!err) {
        execve(argv[0], argv, build_env(cfg));
        err = errno;
    }
    if (write(errpipe, &err, sizeof err) < 0) { /* parent will see a plain exit */ }
    _exit(127);
}

/* Runs the command, reaping everything until it ends.  Returns the exit port value. */
static int run(const struct init_config *cfg, char **argv)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0) { say(true, "ERROR: pipe: %s", strerror(errno)); return ST_SETUP_FAILED; }
    double t0 = uptime();
    pid_t pid = fork();
    if (pid < 0) { say(true, "ERROR: fork: %s", strerror(errno)); return ST_SETUP_FAILED; }
    if (pid == 0) { close(pfd[0]); exec_command(cfg, argv, pfd[1]); }
    close(pfd[1]);

    int err = 0;
    ssize_t n;
    do n = read(pfd[0], &err, sizeof err); while (n < 0 && errno == EINTR);
    close(pfd[0]);
    bool exec_failed = n == (ssize_t)sizeof err;

    int st = 0;
    for (;;) {
        pid_t w = wait(&st);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) { say(true, "ERROR: wait: %s", strerror(errno)); return ST_SETUP_FAILED; }
    }
    long ms = (long)((uptime() - t0) * 1000);
    if (exec_failed) {
        say(true, "ERROR: cannot execute %s (cwd %s): %s", argv[0], cfg->cwd, strerror(err));
        return ST_EXEC_FAILED;
    }
    if (WIFSIGNALED(st)) {
        say(true, "ERROR: %s was killed by signal %d (%s) after %ld ms", argv[0], WTERMSIG(st),
            strsignal(WTERMSIG(st)), ms);
        return ST_SIGNALED;
    }
    int code = WEXITSTATUS(st);
    if (code > ST_STATUS_MAX) {
        say(true, "%s exited with status %d (> %d: reported as %d) after %ld ms", argv[0], code,
            ST_STATUS_MAX, ST_STATUS_HIGH, ms);
        return ST_STATUS_HIGH;
    }
    say(code != 0, "%s exited with status %d after %ld ms", argv[0], code, ms);
    return code;
}

/* After the command: stop whatever it left behind, so that power-off is clean. */
static void reap_leftovers(void)
{
    if (kill(-1, SIGTERM) != 0) return;   /* ESRCH: nobody left */
    for (int i = 0; i < 50; i++) {         /* up to 0.5 s for a graceful exit */
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
        if (kill(-1, 0) != 0) return;
        usleep(10000);
    }
    kill(-1, SIGKILL);
    while (wait(NULL) > 0) {}
}

int main(int argc, char **argv)
{
    char *cmdline;
    char **kargv = argv + 1;   /* the kernel's argv after "--" */
    is_pid1 = getpid() == 1;
    if (is_pid1) {
        setup_console();
        catch_crashes();
        signal(SIGPIPE, SIG_IGN);
        say(false, "started at %.3f s uptime", uptime());
        if (!mount_all()) finish(ST_SETUP_FAILED);
        cmdline = read_cmdline();
        if (!cmdline) { say(true, "ERROR: cannot read /proc/cmdline: %s", strerror(errno)); finish(ST_SETUP_FAILED); }
        loopback_up();
        sethostname("nexus-guest", 11);
    } else {
        if (argc < 3 || strcmp(argv[1], "--test")) {
            fprintf(stderr, "usage: nexus-init --test CMDLINE [ARG...]  (as PID 1 it needs no arguments)\n");
            return 2;
        }
        cmdline = argv[2];
        kargv = argv + 3;
    }

    static struct init_config cfg;
    if (!init_parse_cmdline(cmdline, &cfg)) {
        say(true, "ERROR: bad kernel command line: %s", cfg.error);
        finish(ST_BAD_OPTION);
    }
    quiet = cfg.quiet;
    poweroff_only = cfg.poweroff_only;
    char **cmd = cfg.argc > 0 ? cfg.argv : kargv;
    if (!cmd[0]) {
        say(true, "ERROR: no command: give nexus.cmd=... or '-- COMMAND ARGS' on the kernel command line");
        finish(ST_NO_COMMAND);
    }
    say(false, "running %s", cmd[0]);
    int value = run(&cfg, cmd);
    if (is_pid1) reap_leftovers();
    say(false, "exit port value %d (uptime %.3f s)", value, uptime());
    finish(value);
    return value;
}
