# Benchmark tools (not tests: performance is measured here, never asserted in make test).
ALL_TARGETS += $(BIN)/nexus-bench-invoke
$(BIN)/nexus-bench-invoke: $(OBJ)/bench/invoke_latency.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcurl
