# Example C functions: each functions/<name>/main.c becomes an executable
# $(BUILD)/functions/<name>/bootstrap (runtime "provided") linked against the
# guest's /opt/nexus/lib/libnexus.so.  Never sanitized: the guest root
# filesystem has no sanitizer runtime.  (Python examples need no build.)
C_FUNCTION_DIRS := $(patsubst functions/%/main.c,%,$(wildcard functions/*/main.c))
C_FUNCTIONS := $(patsubst %,$(BUILD)/functions/%/bootstrap,$(C_FUNCTION_DIRS))

$(BUILD)/functions/%/bootstrap: functions/%/main.c $(BUILD)/runtime/include/nexus/libnexus.h \
                              $(BUILD)/runtime/include/nexus/channel.h $(BUILD)/runtime/lib/libnexus.so
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS)) -I$(BUILD)/runtime/include -o $@ $< \
	  -L$(BUILD)/runtime/lib -lnexus -Wl,-rpath,/opt/nexus/lib
	cp functions/$*/README.md functions/$*/event.json $(dir $@)

.PHONY: functions-c
functions-c: $(C_FUNCTIONS)
ALL_TARGETS += functions-c
