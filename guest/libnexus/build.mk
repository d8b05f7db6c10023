# libnexus: the guest side of the channel, as build/runtime/lib/libnexus.so
# plus its headers in build/runtime/include/nexus/.  The shared library is
# never built with sanitizers (even with SAN=1): it is loaded into the guest's
# python3, which does not carry the ASan runtime.  The C test links the same
# sources statically with $(CFLAGS), sanitizers included.

LIBNEXUS_SRCS := $(wildcard guest/libnexus/*.c) common/ring.c common/arena.c common/tlv.c
LIBNEXUS_HDRS := guest/libnexus/libnexus.h guest/libnexus/transport.h guest/libnexus/request_buf.h include/nexus/channel.h \
                 common/ring.h common/arena.h common/tlv.h
LIBNEXUS_SO   := $(BUILD)/runtime/lib/libnexus.so
LIBNEXUS_SO_CFLAGS := $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) \
                 -fvisibility=hidden -pthread
LIBNEXUS_OBJS := $(patsubst %.c,$(OBJ)/%.o,$(LIBNEXUS_SRCS))

$(LIBNEXUS_SO): $(LIBNEXUS_SRCS) $(LIBNEXUS_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBNEXUS_SO_CFLAGS) -shared -Wl,-soname,libnexus.so -Wl,-z,defs -o $@ $(LIBNEXUS_SRCS) -pthread

$(BUILD)/runtime/include/nexus/%.h: guest/libnexus/%.h
	@mkdir -p $(dir $@)
	cp $< $@
$(BUILD)/runtime/include/nexus/channel.h: include/nexus/channel.h
	@mkdir -p $(dir $@)
	cp $< $@

.PHONY: guest-libnexus
guest-libnexus: $(LIBNEXUS_SO) $(BUILD)/runtime/include/nexus/libnexus.h $(BUILD)/runtime/include/nexus/channel.h
