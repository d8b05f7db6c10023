# The Python guest runtime, installed into $(BUILD)/runtime/python/ (which the
# sandbox mounts read-only at /opt/nexus/python), and `runtime`: the whole
# guest runtime tree $(BUILD)/runtime (libnexus + python).
# test-guest runs the runtime's own tests: the libnexus C test and pytest.

GUEST_PY_SRCS := $(shell find guest/python/bootstrap.py guest/python/nexusrt guest/python/shim -name '*.py' 2>/dev/null)
GUEST_PY_DST  := $(patsubst guest/python/%,$(BUILD)/runtime/python/%,$(GUEST_PY_SRCS))

$(BUILD)/runtime/python/%.py: guest/python/%.py
	@mkdir -p $(dir $@)
	cp $< $@

.PHONY: runtime guest-python
guest-python: $(GUEST_PY_DST)
	@# drop files that were removed from the source tree
	@cd $(BUILD)/runtime/python && find . -name '*.py' | while read -r f; do \
	  [ -f "$(CURDIR)/guest/python/$$f" ] || rm -f "$$f"; done
	@# Byte-compile now: /opt/nexus is read-only in the sandbox, so without
	@# these every cold start would compile the runtime and the shim again.
	/usr/bin/python3 -m compileall -q $(BUILD)/runtime/python
# pymalloc's arena cache (arena_cache.c), loaded by nexusrt/runtime.py.  Like
# libnexus.so it goes into the guest's python3, so never with sanitizers.
GUEST_PYARENA_SO := $(BUILD)/runtime/lib/libnexus-pyarena.so
$(GUEST_PYARENA_SO): guest/python/arena_cache.c
	@mkdir -p $(dir $@)
	$(CC) $(LIBNEXUS_SO_CFLAGS) -shared -Wl,-soname,libnexus-pyarena.so -Wl,-z,defs -o $@ $< -ldl -pthread

runtime: guest-libnexus guest-python $(GUEST_PYARENA_SO)
ALL_TARGETS += runtime

# ------------------------------------------------------------------ tests
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
GUEST_TEST_BIN := $(BIN)/test-libnexus
GUEST_TEST_OBJS := $(OBJ)/guest/libnexus/tests/test_libnexus.o $(OBJ)/guest/libnexus/tests/fakehost.o \
                   $(patsubst %.c,$(OBJ)/%.o,$(filter-out common/%,$(LIBNEXUS_SRCS))) \
                   $(patsubst %.c,$(OBJ)/guest-common/%.o,$(filter common/%,$(LIBNEXUS_SRCS)))

# common/*.c for the guest test, compiled apart from nexusd's objects.
$(OBJ)/guest-common/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(GUEST_TEST_BIN): $(GUEST_TEST_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -pthread

# nx_serve's clock rule after a snapshot restore: the test #includes serve.c
# (its static functions) with the clock setter replaced, so it links every
# other libnexus source.
GUEST_SERVE_CLOCK_BIN := $(BIN)/test-serve-clock
$(GUEST_SERVE_CLOCK_BIN): guest/libnexus/tests/test_serve_clock.c guest/libnexus/tests/check.h guest/libnexus/serve.c \
                          $(filter-out %/serve.o,$(filter-out $(OBJ)/guest/libnexus/tests/%,$(GUEST_TEST_OBJS)))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Iguest/libnexus -o $@ $< $(filter %.o,$^) $(LDFLAGS) -pthread

.PHONY: test-guest
test-guest: runtime $(GUEST_TEST_BIN) $(GUEST_SERVE_CLOCK_BIN)
	@mkdir -p $(NEXUS_TEST_RESULTS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) BUILD=$(BUILD) guest/python/tests/run.sh $(GUEST_TEST_BIN) \
	  $(GUEST_REALHOST) $(GUEST_NOPBENCH)
TEST_TARGETS += test-guest

# The C fake host as a shared library, so the Python tests can measure the
# null round trip through the binding against a C host.
GUEST_FAKEHOST_SO := $(LIB)/libnexus-fakehost.so
$(GUEST_FAKEHOST_SO): guest/libnexus/tests/fakehost.c guest/libnexus/tests/fakehost.h common/ring.c common/arena.c common/tlv.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -shared -o $@ guest/libnexus/tests/fakehost.c common/ring.c common/arena.c common/tlv.c -pthread
test-guest: $(GUEST_FAKEHOST_SO)

# realhost: the runtime against nexusd's real channel server (chan.c + loop.c)
# with an in-memory S3, and a C null-round-trip client for it.
GUEST_REALHOST := $(BIN)/guest-realhost
GUEST_NOPBENCH := $(BIN)/guest-nopbench
$(GUEST_REALHOST): $(OBJ)/guest/libnexus/tests/realhost.o $(OBJ)/guest/libnexus/tests/realhost_s3.o \
                   $(patsubst %.c,$(OBJ)/%.o,$(wildcard nexusd/chan*.c)) $(OBJ)/nexusd/loop.o $(OBJ)/common/ring.o $(OBJ)/common/arena.o $(OBJ)/common/tlv.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -ljansson -pthread
$(GUEST_NOPBENCH): $(OBJ)/guest/libnexus/tests/nopbench.o $(LIBNEXUS_SO)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< -L$(BUILD)/runtime/lib -lnexus -Wl,-rpath,'$$ORIGIN/../runtime/lib' -pthread
test-guest: $(GUEST_REALHOST) $(GUEST_NOPBENCH) functions-c
# Built with everything, so bench/ can run them: the channel's null round trip
# against nexusd's chan.c is `guest-realhost -- guest-nopbench`.
ALL_TARGETS += $(GUEST_REALHOST) $(GUEST_NOPBENCH)
