# bench/vm: tcp-pingpong (static: guest server on the test disk, client in L1).  bench/vm/README.md.
$(BUILD)/vm-tests/disk/tcp-pingpong: bench/vm/tcp_pingpong.c common/bench_clock.h
	@mkdir -p $(dir $@)
	$(CC) $(VMTEST_GUEST_CFLAGS) -o $@ $<
$(BUILD)/vm-tests/tests.ext4: $(BUILD)/vm-tests/disk/tcp-pingpong
# bench/vm/s3get/app.py on the test disk: the boto3 side of the get_object benchmark (in-l1-s3get.sh).
$(BUILD)/vm-tests/disk/s3get/app.py: bench/vm/s3get/app.py
	@mkdir -p $(dir $@)
	cp $< $@
$(BUILD)/vm-tests/tests.ext4: $(BUILD)/vm-tests/disk/s3get/app.py
