/* SPDX-License-Identifier: MIT */
/*
 * tcp-pingpong: the TCP round trip that bench/vm sets against the channel's null
 * round trip.  Static, so it runs in the guest (server) and in L1 (client).
 *   tcp-pingpong server PORT              echo one byte per message, forever
 *   tcp-pingpong client HOST PORT N       N one-byte round trips; prints median/min/max
 * TCP_NODELAY on both ends, one connection, 8 bytes per message (like a descriptor kick).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../../common/bench_clock.h"

static int xfer(int fd, char *buf, int rd)
{
	size_t done = 0;
	while (done < 8) {
		ssize_t n = rd ? read(fd, buf + done, 8 - done) : write(fd, buf + done, 8 - done);
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int one = 1;
	char buf[8] = "pingpong";
	if (argc == 3 && !strcmp(argv[1], "server")) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2])) };
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 4) < 0) {
			perror("tcp-pingpong: server");
			return 1;
		}
		printf("tcp-pingpong: listening on %s\n", argv[2]);
		fflush(stdout);
		for (;;) {
			int c = accept(s, NULL, NULL);
			if (c < 0)
				continue;
			setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
			while (xfer(c, buf, 1) == 0 && xfer(c, buf, 0) == 0)
				;
			close(c);
		}
	}
	if (argc != 5 || strcmp(argv[1], "client")) {
		fprintf(stderr, "usage: tcp-pingpong server PORT | client HOST PORT N\n");
		return 2;
	}
	int n = atoi(argv[4]);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3])) };
	inet_pton(AF_INET, argv[2], &a.sin_addr);
	int s = -1;
	for (int tries = 0; tries < 600; tries++) {   /* the guest may still be booting */
		s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0)
			break;
		close(s);
		s = -1;
		usleep(200000);
	}
	if (s < 0) {
		perror("tcp-pingpong: connect");
		return 1;
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	enum { ROUNDS = 5 };
	uint64_t per[ROUNDS];
	for (int i = 0; i < 100; i++)
		if (xfer(s, buf, 0) || xfer(s, buf, 1))
			return 1;
	for (int k = 0; k < ROUNDS; k++) {
		uint64_t t0 = bench_now_ns();
		for (int i = 0; i < n / ROUNDS; i++)
			if (xfer(s, buf, 0) || xfer(s, buf, 1))
				return 1;
		per[k] = (bench_now_ns() - t0) / (uint64_t)(n / ROUNDS);
	}
	bench_sort_u64(per, ROUNDS);
	printf("tcp-roundtrip: %d round trips over virtio-net+tap; per round trip median %.1f us, min %.1f, max %.1f\n",
	       n, per[ROUNDS / 2] / 1e3, per[0] / 1e3, per[ROUNDS - 1] / 1e3);
	return 0;
}
