# libFuzzer targets (clang): the TLV parser, the channel's whole to-host
# drain path, and the S3 XML response parsers.  `make test-fuzz` builds them and runs each briefly from the
# checked-in seed corpus (tests/fuzz/corpus/); docs/fuzzing.md says how to
# run them long.  Built with ASan+UBSan regardless of SAN.

FUZZ_CC     ?= clang
FUZZ_DIR    := $(BUILD)/fuzz
FUZZ_SECS   ?= 8
FUZZ_CFLAGS := -std=gnu11 -g -O1 -D_GNU_SOURCE -Iinclude -I. -I/usr/include/libxml2 \
               -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_COMMON := common/ring.c common/arena.c common/tlv.c

FUZZ_TLV_SRCS   := tests/fuzz/fuzz_tlv.c common/tlv.c
FUZZ_DRAIN_SRCS := tests/fuzz/fuzz_drain.c nexusd/chan.c nexusd/chan_storage.c nexusd/chan_validate.c tests/unit/fake_s3.c tests/unit/mini_loop.c $(FUZZ_COMMON)

$(FUZZ_DIR)/fuzz_tlv: $(FUZZ_TLV_SRCS) common/tlv.h include/nexus/channel.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_TLV_SRCS)

$(FUZZ_DIR)/fuzz_drain: $(FUZZ_DRAIN_SRCS) nexusd/chan.h nexusd/chan_validate.h nexusd/chan_internal.h nexusd/s3.h tests/unit/fake_s3.h \
                        common/ring.h common/arena.h common/tlv.h include/nexus/channel.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_DRAIN_SRCS) -ljansson -lpthread

FUZZ_XML_SRCS := tests/fuzz/fuzz_s3_xml.c nexusd/s3_xml.c
$(FUZZ_DIR)/fuzz_s3_xml: $(FUZZ_XML_SRCS) nexusd/s3_internal.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_XML_SRCS) -lxml2 -ljansson

FUZZ_TARGETS := $(FUZZ_DIR)/fuzz_tlv $(FUZZ_DIR)/fuzz_drain $(FUZZ_DIR)/fuzz_s3_xml
TEST_TARGETS += test-fuzz

.PHONY: test-fuzz fuzz-build
fuzz-build: $(FUZZ_TARGETS)

# Skipped (with the reason) when clang cannot build libFuzzer targets here.
test-fuzz:
	@NEXUS_TEST_RESULTS=$(NEXUS_TEST_RESULTS) FUZZ_DIR=$(FUZZ_DIR) FUZZ_SECS=$(FUZZ_SECS) \
	  FUZZ_CC=$(FUZZ_CC) MAKE="$(MAKE)" tests/fuzz/run-fuzz.sh fuzz_tlv fuzz_drain fuzz_s3_xml
