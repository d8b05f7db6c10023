# C unit tests (cmocka): the channel ABI, rings, arena, TLV codec and the
# descriptor validator of nexusd/chan.c.  `make test-unit` builds and runs them
# all and writes $(NEXUS_TEST_RESULTS)/test-unit.counts.
# `make test-s3` runs the S3 client against a local signature-checking s3rver.

NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
UNIT_BIN     := $(BUILD)/tests/unit
UNIT_COMMON  := $(OBJ)/common/ring.o $(OBJ)/common/arena.o $(OBJ)/common/tlv.o
UNIT_LIBS    := -lcmocka -pthread
CHAN_OBJS    := $(OBJ)/nexusd/chan.o $(OBJ)/nexusd/chan_storage.o $(OBJ)/nexusd/chan_validate.o
S3_OBJS      := $(patsubst %.c,$(OBJ)/%.o,$(wildcard nexusd/s3*.c))

# Tests include "common/ring.h", "nexusd/chan.h", ... relative to the repo root.
$(OBJ)/tests/unit/%.o: CFLAGS += -I.

UNIT_TESTS := test_abi test_ring test_arena test_tlv test_chan
UNIT_PROGS := $(addprefix $(UNIT_BIN)/,$(UNIT_TESTS))

$(UNIT_BIN)/test_abi: $(OBJ)/tests/unit/test_abi.o
$(UNIT_BIN)/test_ring: $(OBJ)/tests/unit/test_ring.o $(OBJ)/common/ring.o
$(UNIT_BIN)/test_arena: $(OBJ)/tests/unit/test_arena.o $(OBJ)/common/arena.o
$(UNIT_BIN)/test_tlv: $(OBJ)/tests/unit/test_tlv.o $(OBJ)/common/tlv.o
# The channel host side against a fake S3 (same symbols as nexusd/s3.c) and
# a private re-runnable loop (mini_loop.c: nexusd/loop.c cannot run again after a stop).
$(UNIT_BIN)/test_chan: $(OBJ)/tests/unit/test_chan.o $(OBJ)/tests/unit/fake_s3.o \
                       $(CHAN_OBJS) $(OBJ)/tests/unit/mini_loop.o $(UNIT_COMMON)
$(UNIT_BIN)/test_chan: UNIT_LIBS += -ljansson

$(UNIT_PROGS):
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(UNIT_LIBS)

ALL_TARGETS  += $(UNIT_PROGS)
TEST_TARGETS += test-unit

.PHONY: test-unit
test-unit: $(UNIT_PROGS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) tests/unit/run-cmocka.sh test-unit $(UNIT_PROGS)

# The S3 client against a local s3rver (started by the test itself; skipped
# loudly when node or scripts/s3/node_modules are missing).
S3_TEST := $(UNIT_BIN)/test_s3
$(S3_TEST): $(OBJ)/tests/unit/test_s3.o $(OBJ)/tests/unit/s3rver.o $(OBJ)/tests/unit/mini_loop.o \
            $(S3_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcmocka -pthread -lcurl -ljansson -lxml2 -lcrypto

# The channel end to end: nexusd's chan.c + s3.c against the guest's real
# libnexus.so (built by guest/libnexus/build.mk) and the same s3rver.
CHAN_E2E_TEST := $(UNIT_BIN)/test_chan_e2e
$(CHAN_E2E_TEST): $(OBJ)/tests/unit/test_chan_e2e.o $(OBJ)/tests/unit/s3rver.o $(OBJ)/tests/unit/mini_loop.o \
                  $(CHAN_OBJS) $(S3_OBJS) \
                  $(UNIT_COMMON) $(LIBNEXUS_SO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBNEXUS_SO) -Wl,-rpath,$(abspath $(dir $(LIBNEXUS_SO))) \
	    -lcmocka -pthread -lcurl -ljansson -lxml2 -lcrypto

ALL_TARGETS  += $(S3_TEST) $(CHAN_E2E_TEST)
TEST_TARGETS += test-s3

.PHONY: test-s3
test-s3: $(S3_TEST) $(CHAN_E2E_TEST)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) tests/unit/run-cmocka.sh test-s3 $(S3_TEST) $(CHAN_E2E_TEST)

# The write-back journal (nexusd/journal.c, aio.h): codec, group commit, replay, bound.
UNIT_TESTS += test_journal
UNIT_PROGS += $(UNIT_BIN)/test_journal
ALL_TARGETS += $(UNIT_BIN)/test_journal
test-unit: $(UNIT_BIN)/test_journal
$(UNIT_BIN)/test_journal: UNIT_LIBS += -lcrypto
$(UNIT_BIN)/test_journal: $(OBJ)/tests/unit/test_journal.o $(OBJ)/nexusd/journal.o $(OBJ)/nexusd/util.o \
                          $(OBJ)/tests/unit/mini_loop.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(UNIT_LIBS)
