/* SPDX-License-Identifier: MIT */
#include "s3rver.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

pid_t s3rver_pid;
int s3rver_port;
char skip_reason[256];
static char datadir[64];

int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &l);
	close(fd);
	return ntohs(a.sin_port);
}

bool port_open(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

void start_s3rver(void)
{
	const char *entry = "scripts/s3/s3rver.js";
	struct stat st;
	if (system("command -v node >/dev/null 2>&1") != 0) {
		snprintf(skip_reason, sizeof(skip_reason), "test-s3: node is not installed (apt-get install nodejs)");
		return;
	}
	if (stat(entry, &st) != 0 || stat("scripts/s3/node_modules/@20minutes/s3rver", &st) != 0) {
		snprintf(skip_reason, sizeof(skip_reason),
		         "test-s3: s3rver not installed in scripts/s3/node_modules (run: make deps)");
		return;
	}
	snprintf(datadir, sizeof(datadir), "/tmp/nexus-test-s3.XXXXXX");
	if (!mkdtemp(datadir)) {
		snprintf(skip_reason, sizeof(skip_reason), "test-s3: mkdtemp failed");
		return;
	}
	s3rver_port = free_port();
	char port[16];
	snprintf(port, sizeof(port), "%d", s3rver_port);
	s3rver_pid = fork();
	if (s3rver_pid == 0) {
		setpgid(0, 0);
		execlp("node", "node", "--openssl-legacy-provider", entry, "-d", datadir, "-a", "127.0.0.1",
		       "-p", port, "--silent", "--configure-bucket", "test", "--configure-bucket", "other",
		       (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 300 && !port_open(s3rver_port); i++) {
		int status;
		if (waitpid(s3rver_pid, &status, WNOHANG) == s3rver_pid) {
			snprintf(skip_reason, sizeof(skip_reason), "test-s3: s3rver exited at start (status %d)", status);
			s3rver_pid = 0;
			return;
		}
		usleep(50000);
	}
	if (!port_open(s3rver_port)) {
		/* installed but not answering: that is a failure, not a skip */
		fprintf(stderr, "s3rver did not start listening on port %d\n", s3rver_port);
		exit(1);
	}
	printf("s3rver (pid %d) on 127.0.0.1:%d, data in %s\n", s3rver_pid, s3rver_port, datadir);
}

void stop_s3rver(void)
{
	if (s3rver_pid > 0) {
		kill(s3rver_pid, SIGTERM);
		waitpid(s3rver_pid, NULL, 0);
	}
	if (datadir[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", datadir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", datadir);
	}
}

