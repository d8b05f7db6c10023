# The nexus CLI: build/bin/nexus.  C, libcurl (HTTP + SigV4 for the S3 helpers),
# jansson (JSON), libzip (zipping a function directory), OpenSSL (base64, SHA-256),
# libxml2 (S3's XML listings and errors).
CLI_SRCS := $(sort $(wildcard cli/*.c)) common/file_atomic.c
CLI_OBJS := $(CLI_SRCS:%.c=$(OBJ)/%.o)
CLI_PKGS := libcurl jansson libzip libcrypto libxml-2.0

$(CLI_OBJS): CFLAGS += -Icommon $(shell pkg-config --cflags $(CLI_PKGS))

$(BIN)/nexus: $(CLI_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(shell pkg-config --libs $(CLI_PKGS))

ALL_TARGETS += $(BIN)/nexus

.PHONY: cli
cli: $(BIN)/nexus
