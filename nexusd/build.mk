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
