/* SPDX-License-Identifier: MIT */
/* The libnexus C tests' one assertion: counts instead of aborting, so a run
 * reports every failure (test_libnexus.c, test_serve_clock.c).  Each test
 * file includes it once and prints `passed` and `failed` at its end. */
#ifndef NEXUS_GUEST_TESTS_CHECK_H
#define NEXUS_GUEST_TESTS_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (cond) {                                                   \
			passed++;                                             \
		} else {                                                      \
			failed++;                                             \
			printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
			printf(__VA_ARGS__);                                  \
			printf("\n");                                         \
		}                                                             \
	} while (0)

#endif
