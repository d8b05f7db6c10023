# guest/kernel: `make guest-kernel` -> $(BUILD)/guest/bzImage and $(BUILD)/guest/vmlinux
# (symlinks into $NEXUS_CACHE/kernel-<hash>; the hash covers nexus-guest.config and the
# linux-source-6.1 version).  First build ~8-10 min on 2 cores; afterwards instant.
.PHONY: guest-kernel
guest-kernel:
	@guest/kernel/build.sh $(BUILD)/guest
