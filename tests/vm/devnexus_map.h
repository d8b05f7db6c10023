/* Raw access to /dev/nexus for the guest programs that attack or probe the
 * shared region directly, without libnexus (guest_hostile.c, guest_isolation.c). */
#ifndef NEXUS_TESTS_VM_DEVNEXUS_MAP_H
#define NEXUS_TESTS_VM_DEVNEXUS_MAP_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include <nexus/nexus_dev.h>

/* Open /dev/nexus, read its info and map the whole region read-write; *fd is the
 * open device (its write() kicks the host).  NULL (and a message prefixed with
 * who) if any step fails. */
static inline uint8_t *devnexus_map(const char *who, struct nexus_dev_info *info, int *fd_out)
{
	char what[64];
	int fd = open("/dev/nexus", O_RDWR);
	if (fd < 0 || ioctl(fd, NEXUS_IOC_INFO, info) < 0) {
		snprintf(what, sizeof what, "%s: /dev/nexus", who);
		perror(what);
		return NULL;
	}
	void *r = mmap(NULL, info->region_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r == MAP_FAILED) {
		snprintf(what, sizeof what, "%s: mmap", who);
		perror(what);
		return NULL;
	}
	*fd_out = fd;
	return r;
}

#endif
