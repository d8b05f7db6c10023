# tests/vm: the Nexus device end to end in microVMs (nexus-vmm + the guest kernel's
# /dev/nexus + libnexus's /dev/nexus transport), run inside the nested rig here.
# `make test-vm`.  Guest programs are static (they run from a small ext4 test disk
# inside the guest) and link the libnexus sources directly.
VMTEST_DIR  := $(BUILD)/vm-tests
VMTEST_LIBNEXUS := $(filter-out %/tests/%,$(wildcard guest/libnexus/*.c)) common/ring.c common/arena.c common/tlv.c
VMTEST_GUEST_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -pthread -static

$(VMTEST_DIR)/disk/guest-chan: tests/vm/guest_chan.c common/bench_clock.h $(VMTEST_LIBNEXUS) include/nexus/nexus_dev.h include/nexus/channel.h
	@mkdir -p $(dir $@)
	$(CC) $(VMTEST_GUEST_CFLAGS) -o $@ tests/vm/guest_chan.c $(VMTEST_LIBNEXUS)

$(VMTEST_DIR)/disk/guest-hostile: tests/vm/guest_hostile.c tests/vm/devnexus_map.h include/nexus/nexus_dev.h include/nexus/channel.h
	@mkdir -p $(dir $@)
	$(CC) $(VMTEST_GUEST_CFLAGS) -o $@ $<

$(VMTEST_DIR)/disk/guest-isolation: tests/vm/guest_isolation.c tests/vm/devnexus_map.h include/nexus/nexus_dev.h include/nexus/channel.h
	@mkdir -p $(dir $@)
	$(CC) $(VMTEST_GUEST_CFLAGS) -o $@ $<

# The guest's test disk: an ext4 image of $(VMTEST_DIR)/disk (no root needed).
$(VMTEST_DIR)/tests.ext4: $(VMTEST_DIR)/disk/guest-chan $(VMTEST_DIR)/disk/guest-hostile $(VMTEST_DIR)/disk/guest-isolation
	rm -f $@
	mkfs.ext4 -q -F -L nexus-vmtest -O ^has_journal -m 0 -d $(VMTEST_DIR)/disk $@ 16M

# The S3 cases' tools disk (in-l1-s3.sh, bench/vm): node + its libraries + scripts/s3 (s3rver).
# Not made (and those cases skipped, loudly) without node or scripts/s3/node_modules.
$(VMTEST_DIR)/s3tools.ext4: tests/vm/make-s3tools.sh scripts/s3/package-lock.json scripts/s3/s3rver.js $(shell command -v node 2>/dev/null)
	@mkdir -p $(dir $@)
	tests/vm/make-s3tools.sh $@

# The C function of the snapshot:c-clock case (in-l1-snapshot.sh): a C function's
# clock after a restore.  Like functions/*: linked to the guest's libnexus, never sanitized.
$(VMTEST_DIR)/c-clock/bootstrap: tests/vm/c-clock.c $(BUILD)/runtime/include/nexus/libnexus.h \
                                 $(BUILD)/runtime/include/nexus/channel.h $(BUILD)/runtime/lib/libnexus.so
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -I$(BUILD)/runtime/include -o $@ $< \
	  -L$(BUILD)/runtime/lib -lnexus -Wl,-rpath,/opt/nexus/lib

.PHONY: vm-tests test-vm
vm-tests: $(VMTEST_DIR)/tests.ext4 $(VMTEST_DIR)/s3tools.ext4 $(VMTEST_DIR)/c-clock/bootstrap
TEST_TARGETS += test-vm

test-vm: vm-tests vmm runtime functions-c $(BIN)/guest-realhost $(BIN)/nexusd $(BIN)/nexus
	@tests/vm/test-vm.sh $(BUILD)
