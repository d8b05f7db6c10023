# guest/init: nexus-init, PID 1 of the guest.  Static (the guest image has no loader
# we can count on) and never built with sanitizers, even with SAN=1: it runs as PID 1
# in the guest, where no ASan runtime can help.  Output: $(BUILD)/guest/nexus-init.
GUEST_INIT_SRCS := guest/init/init.c guest/init/cmdline.c
GUEST_INIT_CFLAGS := -std=gnu11 -Os -g -Wall -Wextra -Werror -D_GNU_SOURCE -static

$(BUILD)/guest/nexus-init: $(GUEST_INIT_SRCS) guest/init/cmdline.h
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_INIT_CFLAGS) -o $@ $(GUEST_INIT_SRCS)

.PHONY: guest-init
guest-init: $(BUILD)/guest/nexus-init
ALL_TARGETS += guest-init
