# nexus-vmm: the KVM microVM monitor (vmm/src), its host-side unit tests
# (vmm/tests/unit, cmocka), its tiny test guests (vmm/tests/guest) and the tier-1
# runner that boots them under KVM (vmm/tests/tier1; in the nested rig here).

VMM_SRCS := $(wildcard vmm/src/*.c)
VMM_LIB_SRCS := $(filter-out vmm/src/main.c vmm/src/setup.c,$(VMM_SRCS))
# The seccomp filter is compiled from its rules (vmm/gen/seccomp_gen.c, libseccomp)
# to BPF at build time; the monitor only loads it.
VMM_SECCOMP_GEN := $(BUILD)/vmm-gen/seccomp-gen
VMM_SECCOMP_BPF := $(OBJ)/vmm-gen/seccomp_bpf.o
VMM_OBJS := $(VMM_SRCS:%.c=$(OBJ)/%.o) $(VMM_SECCOMP_BPF)
VMM_LIB_OBJS := $(VMM_LIB_SRCS:%.c=$(OBJ)/%.o) $(VMM_SECCOMP_BPF)
VMM_LIBS := -lpthread -ljansson

$(VMM_SECCOMP_GEN): vmm/gen/seccomp_gen.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< -lseccomp
$(BUILD)/vmm-gen/seccomp_bpf.c: $(VMM_SECCOMP_GEN)
	$(VMM_SECCOMP_GEN) $@
$(VMM_SECCOMP_BPF): $(BUILD)/vmm-gen/seccomp_bpf.c vmm/src/seccomp_filter.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Ivmm/src -c -o $@ $<

$(BIN)/nexus-vmm: $(VMM_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS)

# The unit tests link the monitor's objects minus main.c and setup.c, plus a stub
# of the few functions of theirs the devices call.
VMM_UNIT_SRCS := $(wildcard vmm/tests/unit/test_*.c)
VMM_UNIT_BINS := $(VMM_UNIT_SRCS:vmm/tests/unit/%.c=$(BUILD)/vmm-tests/%)
$(OBJ)/vmm/tests/unit/%.o: CFLAGS += -Ivmm/src
$(BUILD)/vmm-tests/%: $(OBJ)/vmm/tests/unit/%.o $(OBJ)/vmm/tests/unit/stubs.o $(VMM_LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(VMM_LIBS) -lcmocka

# Tiny test guests: freestanding, static, non-PIE ELF linked at 2 MiB, built with
# the host gcc but never with the host's CFLAGS (no sanitizers, no -fPIC).
VMM_GUEST_DIR := vmm/tests/guest
VMM_GUEST_CFLAGS := -std=gnu11 -O2 -g -Wall -Wextra -Werror -ffreestanding -fno-pic -fno-pie \
    -fno-stack-protector -fno-builtin -mno-red-zone -mgeneral-regs-only \
    -fcf-protection=none -nostdlib -I$(VMM_GUEST_DIR)
VMM_GUEST_SRCS := $(wildcard $(VMM_GUEST_DIR)/*.c) $(wildcard $(VMM_GUEST_DIR)/*.S)
$(BUILD)/vmm-guest/testguest.elf: $(VMM_GUEST_SRCS) $(wildcard $(VMM_GUEST_DIR)/*.h) $(VMM_GUEST_DIR)/guest.ld
	@mkdir -p $(dir $@)
	gcc $(VMM_GUEST_CFLAGS) -static -no-pie -Wl,--build-id=none -Wl,--no-warn-rwx-segments -Wl,-T,$(VMM_GUEST_DIR)/guest.ld \
	    -o $@ $(filter %.c %.S,$^)

# The tier-1 runner runs inside L1 (or directly where KVM is hardware): static,
# so it needs nothing from L1's userspace.
$(BIN)/vmm-tier1: vmm/tests/tier1/run-tier1.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -static -pthread -o $@ $<

.PHONY: vmm vmm-unit vmm-tier1 test-vmm
vmm: $(BIN)/nexus-vmm $(BUILD)/vmm-guest/testguest.elf $(BIN)/vmm-tier1
ALL_TARGETS += vmm
TEST_TARGETS += test-vmm

test-vmm: vmm $(VMM_UNIT_BINS)
	@vmm/tests/test-vmm.sh $(BUILD) $(VMM_UNIT_BINS)
