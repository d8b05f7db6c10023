# guest/rootfs: `make rootfs` builds (or finds in the cache) the guest root filesystem
# and points $(BUILD)/rootfs at it.  Always run: build.sh decides in milliseconds whether
# the cached tree for the current recipe exists.
.PHONY: rootfs
rootfs:
	@guest/rootfs/build.sh $(BUILD)/rootfs

ALL_TARGETS += rootfs
