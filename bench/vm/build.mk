# bench/vm: tcp-pingpong (static: guest server on the test disk, client in L1).  bench/vm/README.md.
$(BUILD)/vm-tests/disk/tcp-pingpong: bench/vm/tcp_pingpong.c
	@mkdir -p $(dir $@)
	$(CC) $(VMTEST_GUEST_CFLAGS) -o $@ $<
$(BUILD)/vm-tests/tests.ext4: $(BUILD)/vm-tests/disk/tcp-pingpong
