# Benchmark tools (not tests: performance is measured here, never asserted in make test).
ALL_TARGETS += $(BIN)/nexus-bench-invoke
$(BIN)/nexus-bench-invoke: $(OBJ)/bench/invoke_latency.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcurl

# The A/B harness's load generator (closed loop and trace-driven open loop).
ALL_TARGETS += $(BIN)/nexus-bench-load
$(BIN)/nexus-bench-load: $(OBJ)/bench/loadgen.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcurl

# `make bench`: the whole A/B evaluation into docs/results (docs/results.md).
# BENCH_ARGS=--quick for the few-minutes version.
.PHONY: bench bench-spine
bench: all
	/usr/bin/python3 bench/harness/main.py --out docs/results $(BENCH_ARGS)
bench-spine: all
	/usr/bin/python3 bench/spine.py $(BENCH_ARGS)

# Smoke check: the harness runs end to end (--smoke: a handful of invocations,
# one size); asserts that it completes and writes every output, never timing.
NEXUS_TEST_RESULTS ?= $(CURDIR)/$(BUILD)/test-results
.PHONY: test-bench
test-bench: all
	@mkdir -p $(NEXUS_TEST_RESULTS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) BUILD=$(BUILD) bench/test-bench.sh
TEST_TARGETS += test-bench

# nexus-s3peer: the benchmarks' fast S3-compatible server (bench/s3peer/README.md).
S3PEER_SRCS := bench/s3peer/main.c bench/s3peer/s3api.c bench/s3peer/sigv4.c bench/s3peer/store.c
ALL_TARGETS += $(BIN)/nexus-s3peer
$(BIN)/nexus-s3peer: $(S3PEER_SRCS:%.c=$(OBJ)/%.o)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lmicrohttpd -lcrypto -lpthread

# Its test: boto3 (every operation the functions, the harness and nexusd use,
# errors, signatures) and nexusd's own S3 client against it.
.PHONY: test-s3peer
test-s3peer: $(BIN)/nexus-s3peer $(BIN)/nexusd
	@mkdir -p $(NEXUS_TEST_RESULTS)
	NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) BUILD=$(BUILD) /usr/bin/python3 bench/s3peer/test_s3peer.py
TEST_TARGETS += test-s3peer
