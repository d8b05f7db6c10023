# bench/vmm: nexus-vmm vs QEMU microvm, measured inside the nested rig (see docs/vmm.md).
$(BUILD)/bench-vmm/vmm-bench: bench/vmm/vmm_bench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -static -o $@ $<
$(BUILD)/bench-vmm/kvm_run_probe.so: bench/vmm/kvm_run_probe.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -shared -fPIC -o $@ $< -ldl

.PHONY: bench-vmm
bench-vmm: $(BIN)/nexus-vmm $(BUILD)/bench-vmm/vmm-bench $(BUILD)/bench-vmm/kvm_run_probe.so
	bench/vmm/run.sh $(BUILD)

# Snapshot load time (docs/vmm.md "Snapshots"): restore with and without --ws, in the rig.
$(BUILD)/bench-vmm/snap-bench: bench/vmm/snap_bench.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -static -o $@ $<

.PHONY: bench-vmm-snapshot
bench-vmm-snapshot: $(BIN)/nexus-vmm $(BUILD)/bench-vmm/snap-bench $(BUILD)/bench-vmm/kvm_run_probe.so
	bench/vmm/snapshot-run.sh $(BUILD)
