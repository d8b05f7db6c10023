# tests/sandbox: test-sandbox drives the process sandbox driver (nexusd/sandbox_process*.c)
# through its driver table with commands running in the real guest rootfs.
# Needs root and `make rootfs` (a dependency).
SANDBOX_TEST_SRCS := tests/sandbox/sandbox_test.c $(sort $(wildcard nexusd/sandbox_process*.c)) nexusd/sandbox_pidfd.c
SANDBOX_TEST_OBJS := $(SANDBOX_TEST_SRCS:%.c=$(OBJ)/%.o)

$(BIN)/sandbox-test: $(SANDBOX_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lseccomp -lpthread

.PHONY: test-sandbox
# The rootfs is built first if needed; if that is impossible here (not root, no
# network) sandbox-test still runs and reports every check as skipped, with the reason.
test-sandbox: $(BIN)/sandbox-test
	@mkdir -p $${NEXUS_TEST_RESULTS:-$(BUILD)/test-results}
	@$(MAKE) --no-print-directory rootfs || echo "test-sandbox: WARNING: 'make rootfs' failed (above); checks needing it are skipped"
	$(BIN)/sandbox-test --rootfs $(BUILD)/rootfs --code tests/sandbox/code \
	    --runtime $(BUILD)/runtime --functions functions \
	    --results $${NEXUS_TEST_RESULTS:-$(BUILD)/test-results}

ALL_TARGETS  += $(BIN)/sandbox-test
TEST_TARGETS += test-sandbox
