# Nexus — top-level build.  Each part has its own build.mk, included below;
# this file only holds what they share.  `make` builds everything into build/,
# `make test` runs the whole suite, `make demo` starts a node and shows it working.
# SAN=1 builds an AddressSanitizer/UBSan tree into build-san/ (used by the tests).

SHELL   := /bin/bash
CC      ?= cc
ifeq ($(SAN),1)
BUILD   ?= build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD   ?= build
SANFLAGS :=
endif
BIN     := $(BUILD)/bin
OBJ     := $(BUILD)/obj
LIB     := $(BUILD)/lib
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iinclude -fPIC $(SANFLAGS)
LDFLAGS += $(SANFLAGS)

# Cache for expensive artefacts (guest rootfs, guest kernel), outside the clone,
# keyed by the hash of their inputs.  Override with NEXUS_CACHE=...
NEXUS_CACHE ?= /var/cache/nexus
export NEXUS_CACHE

.PHONY: all test demo deps clean
all:

# Every part registers its binaries in ALL_TARGETS and its test targets in TEST_TARGETS.
ALL_TARGETS  :=
TEST_TARGETS :=

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

include $(sort $(wildcard */build.mk */*/build.mk))

all: $(ALL_TARGETS)

deps:
	scripts/install-deps.sh

# The whole suite.  tests/run-all.sh runs each registered test target, keeps going
# after a failure, and prints one summary line with passed/failed/skipped counts.
test: deps
	$(MAKE) all
	tests/run-all.sh $(TEST_TARGETS)

demo: deps
	$(MAKE) all
	scripts/demo.sh

clean:
	rm -rf build build-san

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
