/* Starting and stopping the node's daemons (nexusd, the local S3 server). */
#ifndef NEXUS_CLI_PROC_H
#define NEXUS_CLI_PROC_H
#include <stdbool.h>
#include <sys/types.h>

/* Starts argv as a daemon in its own session, stdin from /dev/null, stdout and
 * stderr to logpath (the previous log is kept as logpath.1).  `env` is a NULL-
 * terminated list of "NAME=VALUE" to set in the child.  Returns the pid or -1. */
pid_t proc_spawn(char *const argv[], char *const env[], const char *logpath);
/* The pid in a pid file, 0 if there is none or it is garbage. */
pid_t pidfile_read(const char *path);
int pidfile_write(const char *path, pid_t pid);
/* True if pid is a live (not zombie) process whose command line mentions `needle`:
 * guards against pid reuse after a reboot or a crash. */
bool proc_is(pid_t pid, const char *needle);
/* Sends SIGTERM, waits up to grace_s, then SIGKILL.  Returns 0 if it stopped on
 * SIGTERM, 1 if it needed SIGKILL, -1 if it would not die. */
int proc_stop(pid_t pid, double grace_s);
#endif
