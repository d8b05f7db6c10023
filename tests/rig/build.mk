# tests/rig: `make test-rig` boots the real minimal guest (guest kernel + nexus-init +
# rootfs image) under nexus-vmm and QEMU microvm, in the nested rig (tier 2) or directly
# on hardware KVM (tier 3), after fast host checks of nexus-init.  See tests/rig/README.md.
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
TEST_TARGETS += test-rig

.PHONY: test-rig
test-rig: guest-kernel guest-image $(BUILD)/guest/nexus-init
	@NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) tests/rig/test-rig.sh $(BUILD)
