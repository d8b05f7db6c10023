# guest/image: `make guest-image` -> $(BUILD)/guest/rootfs.ext4, the read-only ext4 image
# of the guest root filesystem with nexus-init at /sbin/nexus-init (cached by content in
# $NEXUS_CACHE/guest-image-<hash>).  GUEST_ROOTFS=DIR uses another tree than `make rootfs`'s.
GUEST_ROOTFS ?= $(BUILD)/rootfs
GUEST_IMAGE  := $(BUILD)/guest/rootfs.ext4

.PHONY: guest-image
guest-image: $(BUILD)/guest/nexus-init $(if $(filter $(BUILD)/rootfs,$(GUEST_ROOTFS)),rootfs)
	@guest/image/build.sh $(GUEST_ROOTFS) $(BUILD)/guest/nexus-init $(GUEST_IMAGE)
