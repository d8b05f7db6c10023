/* The precompiled seccomp filter (vmm/gen/seccomp_gen.c -> seccomp_filter.c),
 * loaded in a child process: what the monitor needs passes, the rest ends the
 * process with 68 through the SIGSYS handler. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exit_codes.h"
#include "seccomp_filter.h"

static char path[64];

/* Run `what` in a child under the filter; its exit status. */
static int under_filter(int what)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (seccomp_filter_install(SECCOMP_KILL) != 0)
            _exit(99);
        int fd;
        switch (what) {
        case 0:   /* allowed: write, create a new file, close */
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
            _exit(fd >= 0 && write(fd, "x", 1) == 1 && close(fd) == 0 ? 0 : 1);
        case 1:   /* open an existing file to read it */
            fd = open("/etc/hostname", O_RDONLY);
            _exit(2);
        case 2:   /* a new socket */
            fd = socket(AF_INET, SOCK_STREAM, 0);
            _exit(3);
        case 3:   /* open for writing without O_EXCL (could truncate someone's file) */
            fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            _exit(4);
        }
        _exit(5);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_filter(void **st)
{
    (void)st;
#if defined(__SANITIZE_ADDRESS__)
    /* The sanitizer runtime makes syscalls of its own (sigaltstack, ...): SAN
     * builds run the monitor with --seccomp log, and this test is skipped. */
    skip();
#endif
    snprintf(path, sizeof(path), "/tmp/vmm-seccomp-test.%d", getpid());
    unlink(path);
    assert_int_equal(under_filter(0), 0);
    assert_int_equal(under_filter(1), VMM_EXIT_INTERNAL);
    assert_int_equal(under_filter(2), VMM_EXIT_INTERNAL);
    assert_int_equal(under_filter(3), VMM_EXIT_INTERNAL);
    unlink(path);
    assert_true(vmm_seccomp_trap_len > 10 && vmm_seccomp_log_len == vmm_seccomp_trap_len);
}

int main(void)
{
    const struct CMUnitTest tests[] = { cmocka_unit_test(test_filter) };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
