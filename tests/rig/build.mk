# tests/rig: `make test-rig` boots the real minimal guest (guest kernel + nexus-init +
# rootfs image) under nexus-vmm and QEMU microvm, in the nested rig (tier 2) or directly
# on hardware KVM (tier 3), after fast host checks of nexus-init.  See tests/rig/README.md.
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
TEST_TARGETS += test-rig

# Static, no sanitizers: it runs inside L1's busybox userspace.
$(BUILD)/tests/rig/http-get: tests/rig/http-get.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -o $@ $<

.PHONY: test-rig
test-rig: guest-kernel guest-image $(BUILD)/guest/nexus-init $(BUILD)/tests/rig/http-get $(BIN)/vmm-tier1
	@NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) tests/rig/test-rig.sh $(BUILD)
