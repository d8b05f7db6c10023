# nexusd — the node daemon.  Every nexusd/*.c and common/*.c is linked in, so
# the other engineers' files (chan.c, s3*.c, sandbox_process*.c) join by
# wildcard.
NEXUSD_SRCS := $(sort $(wildcard nexusd/*.c) $(wildcard common/*.c))
NEXUSD_OBJS := $(NEXUSD_SRCS:%.c=$(OBJ)/%.o)
NEXUSD_LIBS := -lmicrohttpd -lcurl -ljansson -lcrypto -lxml2 -lzip -lseccomp -lpthread

$(OBJ)/nexusd/%.o: CFLAGS += -Inexusd -Icommon -I/usr/include/libxml2

$(BIN)/nexusd: $(NEXUSD_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NEXUSD_LIBS)

.PHONY: nexusd
nexusd: $(BIN)/nexusd

ALL_TARGETS += $(BIN)/nexusd

# nexusd's own tests: the daemon started directly (tests/test_nexusd.py).
TEST_TARGETS += test-nexusd
.PHONY: test-nexusd
test-nexusd: $(BIN)/nexusd
	cd nexusd/tests && BUILD=$(BUILD) /usr/bin/python3 -m pytest -q -rs -p no:cacheprovider test_nexusd.py; \
	  rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# The event loop's own C test (timers, posts, deletion during a batch, stop).
TEST_TARGETS += test-nexusd-loop
.PHONY: test-nexusd-loop
$(BIN)/test-nexusd-loop: $(OBJ)/nexusd/tests/test_loop.o $(OBJ)/nexusd/loop.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lpthread
test-nexusd-loop: $(BIN)/test-nexusd-loop
	@mkdir -p $${NEXUS_TEST_RESULTS:=$(CURDIR)/$(BUILD)/test-results}; \
	  NEXUS_TEST_RESULTS=$$NEXUS_TEST_RESULTS $(BIN)/test-nexusd-loop
