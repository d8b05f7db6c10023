/* Unit tests: the 8250 UART as Linux's driver probes it, the exit and pvpanic
 * ports, i8042 reset, CPUID filtering, config flags/JSON, control replies. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "cpuid.h"
#include "devices.h"
#include "exit_codes.h"
#include "stubs.h"
#include "vmm.h"

static struct vmm vm;

static int reset(void **s)
{
    (void)s;
    stub_reset();
    memset(&vm, 0, sizeof(vm));
    config_defaults(&vm.cfg);
    return 0;
}

static uint8_t srd(struct serial *s, uint64_t off)
{
    uint8_t v = 0;
    serial_ops.read(s, off, &v, 1);
    return v;
}
static void swr(struct serial *s, uint64_t off, uint8_t v) { serial_ops.write(s, off, &v, 1); }

static int irq_level;
static int irq_raises;
static void serial_irq(void *ctx, int level)
{
    (void)ctx;
    if (level && !irq_level)
        irq_raises++;
    irq_level = level;
}

static void test_serial_probe_and_output(void **st)
{
    (void)st;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct serial s;
    serial_setup(&s, p[1], serial_irq, NULL);
    irq_level = irq_raises = 0;
    /* Scratch register and IER read back. */
    swr(&s, 7, 0xa5);
    assert_int_equal(srd(&s, 7), 0xa5);
    swr(&s, 1, 0x0f);
    assert_int_equal(srd(&s, 1), 0x0f);
    swr(&s, 1, 0);
    /* Loopback: MCR bits show on MSR as the probe expects (0x1a -> 0x90). */
    swr(&s, 4, 0x10 | 0x0a);
    assert_int_equal(srd(&s, 6) & 0xf0, 0x90);
    swr(&s, 4, 0x08);
    /* FIFO enable shows as 16550A in IIR bits 7:6. */
    swr(&s, 2, 0x01);
    assert_int_equal(srd(&s, 2) & 0xc0, 0xc0);
    /* Divisor latch does not leak into data. */
    swr(&s, 3, 0x80);
    swr(&s, 0, 0x01);
    assert_int_equal(srd(&s, 0), 0x01);
    swr(&s, 3, 0x03);
    /* Output and THR-empty interrupts. */
    assert_true(srd(&s, 5) & 0x60);
    swr(&s, 1, 0x02);                         /* enable THRI: raises at once */
    assert_int_equal(irq_level, 1);
    assert_int_equal(srd(&s, 2) & 0x0f, 0x02);
    assert_int_equal(irq_level, 0);           /* reading IIR cleared it */
    assert_int_equal(srd(&s, 2) & 0x0f, 0x01);
    const char *msg = "hi\n";
    for (const char *c = msg; *c; c++)
        swr(&s, 0, (uint8_t)*c);
    /* THR is empty again at once: the interrupt is pending (line high) until
     * the driver reads IIR, which is how Linux's 8250 driver paces its output. */
    assert_int_equal(irq_level, 1);
    assert_true(irq_raises >= 2);
    assert_int_equal(srd(&s, 2) & 0x0f, 0x02);
    assert_int_equal(irq_level, 0);
    char buf[8] = { 0 };
    assert_int_equal(read(p[0], buf, sizeof(buf)), 3);
    assert_string_equal(buf, "hi\n");
    assert_false(s.panic_seen);
    const char *panic = "[ 1.0] Kernel panic - not syncing: VFS\n";
    for (const char *c = panic; *c; c++)
        swr(&s, 0, (uint8_t)*c);
    assert_true(s.panic_seen);
    close(p[0]);
    close(p[1]);
}

static void test_exit_port(void **st)
{
    (void)st;
    assert_int_equal(exit_port_register(&vm), 0);
    uint8_t v = 42;
    assert_int_equal(io_bus_access(&vm.pio, 0x501, &v, 1, 1), 0);
    assert_int_equal(stub_exit_code, 42);
    stub_reset();
    v = 64;
    io_bus_access(&vm.pio, 0x501, &v, 1, 1);
    assert_int_equal(stub_exit_code, VMM_EXIT_BAD_EXIT_VALUE);
    stub_reset();
    uint16_t w = 3;
    io_bus_access(&vm.pio, 0x501, &w, 2, 1);  /* only byte writes count */
    assert_int_equal(stub_exit_code, -1);
    v = 1;
    io_bus_access(&vm.pio, 0x505, &v, 1, 1);
    assert_int_equal(stub_exit_code, VMM_EXIT_GUEST_PANIC);
}

static void test_i8042_and_unhandled(void **st)
{
    (void)st;
    assert_int_equal(i8042_register(&vm), 0);
    uint8_t v = 0xff;
    io_bus_access(&vm.pio, 0x64, &v, 1, 0);
    assert_int_equal(v, 0x01);                /* input buffer empty, output never drains */
    v = 0xd1;
    io_bus_access(&vm.pio, 0x64, &v, 1, 1);
    assert_int_equal(stub_exit_code, -1);
    v = 0xfe;
    io_bus_access(&vm.pio, 0x64, &v, 1, 1);
    assert_int_equal(stub_exit_code, VMM_EXIT_RESET);
    uint32_t x = 0;
    assert_int_equal(io_bus_access(&vm.pio, 0x1234, &x, 4, 0), -1);
    assert_int_equal(x, 0xffffffff);
    assert_int_equal(vm.pio.unhandled, 1);
    /* Overlapping registrations are refused. */
    static const struct io_ops nop = { 0, 0 };
    assert_int_equal(io_bus_register(&vm.pio, 0x63, 2, &nop, NULL, "overlap"), -1);
}

static void test_cpuid_filter(void **st)
{
    (void)st;
    struct kvm_cpuid_entry2 e[5];
    memset(e, 0, sizeof(e));
    e[0].function = 1; e[0].ebx = 0xff00ffff; e[0].edx = 1u << 28;
    e[1].function = 0xa; e[1].eax = 0x12345678;
    e[2].function = 0xb; e[2].index = 0;
    e[3].function = 0xb; e[3].index = 1;
    e[4].function = 6; e[4].eax = 1;
    cpuid_filter(e, 5, 2, 4);
    assert_true(e[0].ecx & (1u << 31));       /* hypervisor present */
    assert_int_equal(e[0].ebx >> 24, 2);      /* APIC id */
    assert_int_equal((e[0].ebx >> 16) & 0xff, 4);
    assert_true(e[0].edx & (1u << 28));
    assert_int_equal(e[1].eax, 0);            /* no PMU */
    assert_int_equal(e[2].edx, 2);            /* x2APIC id */
    assert_int_equal(e[3].ebx, 4);
    assert_int_equal(e[3].eax, 2);            /* 4 cores: 2 bits */
    assert_int_equal(e[4].eax, 0);
    cpuid_filter(e, 1, 0, 1);
    assert_false(e[0].edx & (1u << 28));      /* no HTT with one CPU */
}

static void test_cpuid_xsave(void **st)
{
    (void)st;
    struct kvm_cpuid_entry2 e[4];
    memset(e, 0, sizeof(e));
    e[0].function = 1;                         /* no AVX */
    e[1].function = 0xd; e[1].eax = 0x7; e[1].ecx = 832;
    e[2].function = 0xd; e[2].index = 2; e[2].eax = 256; e[2].ebx = 576;
    e[3].function = 7;
    cpuid_filter(e, 4, 0, 1);
    assert_int_equal(e[1].eax, 0x3);           /* x87 | SSE only */
    assert_int_equal(e[1].ecx, 576);
    e[0].ecx = 1u << 28;                       /* with AVX the YMM state stays */
    e[1].eax = 0x7;
    cpuid_filter(e, 4, 0, 1);
    assert_int_equal(e[1].eax, 0x7);
    assert_int_equal(e[1].ecx, 832);
}

static int parse(struct vmm_config *c, const char *const *args)
{
    char *argv[32];
    int n = 0;
    argv[n++] = "nexus-vmm";
    for (; *args; args++)
        argv[n++] = (char *)*args;
    argv[n] = NULL;
    char err[256];
    config_defaults(c);
    return config_parse_args(c, n, argv, err, sizeof(err));
}

static void test_config_flags(void **st)
{
    (void)st;
    struct vmm_config c;
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--mem", "256", "--vcpus", "3",
        "--disk", "a.img", "--disk", "b.img,ro", "--net", "tap0,mac=02:00:00:00:00:09",
        "--serial", "file:/tmp/x", "--control", "/tmp/s", "--cmdline", "console=ttyS0", NULL }), 0);
    assert_string_equal(c.kernel, "k");
    assert_int_equal(c.mem_mb, 256);
    assert_int_equal(c.vcpus, 3);
    assert_int_equal(c.nr_disks, 2);
    assert_false(c.disks[0].ro);
    assert_true(c.disks[1].ro);
    assert_string_equal(c.disks[1].path, "b.img");
    assert_string_equal(c.net_tap, "tap0");
    assert_int_equal(c.net_mac[5], 9);
    assert_int_equal(c.serial, SERIAL_FILE);
    assert_string_equal(c.serial_path, "/tmp/x");
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--mem", "abc", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--vcpus", "0", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--net", "tap0,mac=01:00:00:00:00:00", NULL }), -1);
    config_free(&c);
    {
        /* The error names the bad option (and, under SAN=1, must not read freed memory). */
        char *argv[] = { "nexus-vmm", "--kernel", "k", "--disk", "a.img,bogus", NULL };
        char err[256] = "";
        config_defaults(&c);
        assert_int_equal(config_parse_args(&c, 5, argv, err, sizeof(err)), -1);
        assert_non_null(strstr(err, "'bogus'"));
        config_free(&c);
    }
    assert_int_equal(parse(&c, (const char *const[]){ "--mem", "64", NULL }), -1);   /* no kernel */
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--help", NULL }), 1);
    config_free(&c);
    /* Snapshots: --restore replaces --kernel (and refuses kernel/initrd/cmdline);
     * --ws needs --restore; --nexus control needs a control connection. */
    assert_int_equal(parse(&c, (const char *const[]){ "--restore", "/s", "--ws", "/w", "--disk", "a.img",
                                                      "--nexus", "control", "--control-fd", "3", NULL }), 0);
    assert_string_equal(c.restore_dir, "/s");
    assert_string_equal(c.ws_file, "/w");
    assert_true(c.nexus_control);
    assert_int_equal(c.control_fd, 3);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--restore", "/s", "--kernel", "k", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--restore", "/s", "--cmdline", "x", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--ws", "/w", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--nexus", "control", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--control-fd", "1", NULL }), -1);
    config_free(&c);
    assert_int_equal(parse(&c, (const char *const[]){ "--kernel", "k", "--nexus", "control", "--control",
                                                      "/tmp/s", NULL }), 0);
    config_free(&c);
}

static void test_config_json(void **st)
{
    (void)st;
    struct vmm_config c;
    char err[256];
    config_defaults(&c);
    assert_int_equal(config_load_json_string(&c,
        "{\"kernel\":\"/k\",\"mem_mb\":512,\"vcpus\":2,\"cmdline\":\"x\","
        "\"disks\":[{\"path\":\"/a\"},{\"path\":\"/b\",\"ro\":true}],"
        "\"net\":{\"tap\":\"tap1\",\"mac\":\"02:11:22:33:44:55\"},\"serial\":\"none\"}", err, sizeof(err)), 0);
    assert_string_equal(c.kernel, "/k");
    assert_int_equal(c.mem_mb, 512);
    assert_int_equal(c.nr_disks, 2);
    assert_true(c.disks[1].ro);
    assert_string_equal(c.net_tap, "tap1");
    assert_int_equal(c.net_mac[1], 0x11);
    assert_int_equal(c.serial, SERIAL_NONE);
    config_free(&c);
    config_defaults(&c);
    assert_int_equal(config_load_json_string(&c, "{\"kernal\":\"/k\"}", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "unknown key"));
    config_free(&c);
    config_defaults(&c);
    assert_int_equal(config_load_json_string(&c, "{\"mem_mb\":\"lots\"}", err, sizeof(err)), -1);
    config_free(&c);
    config_defaults(&c);
    assert_int_equal(config_load_json_string(&c, "[1,2]", err, sizeof(err)), -1);
    config_free(&c);
    config_defaults(&c);
    assert_int_equal(config_load_json_string(&c, "{\"disks\":[{\"path\":\"/a,ro\"}]}", err, sizeof(err)), -1);
    config_free(&c);
}

static void test_control_reply(void **st)
{
    (void)st;
    vm.nr_vcpus = 2;
    vm.cfg.mem_mb = 128;
    int stop;
    char *r = control_reply(&vm, "status", &stop);
    assert_non_null(strstr(r, "\"state\":\"created\""));   /* vCPUs not released yet */
    free(r);
    r = control_reply(&vm, "pause", &stop);
    assert_non_null(strstr(r, "\"ok\":false"));
    free(r);
    /* snapshot and ws-save need their argument, and a paused / restored VM */
    r = control_reply(&vm, "{\"cmd\":\"snapshot\"}", &stop);
    assert_non_null(strstr(r, "\"ok\":false"));
    free(r);
    r = control_reply(&vm, "{\"cmd\":\"snapshot\",\"dir\":\"/tmp\"}", &stop);
    assert_non_null(strstr(r, "not paused"));
    free(r);
    r = control_reply(&vm, "{\"cmd\":\"ws-save\",\"file\":\"/tmp/x\"}", &stop);
    assert_non_null(strstr(r, "restored VM only"));
    free(r);
    r = control_reply(&vm, "{\"cmd\":\"nexus-attach\"}", &stop);
    assert_non_null(strstr(r, "--nexus control"));
    free(r);
    vm.started = true;
    r = control_reply(&vm, "status", &stop);
    assert_non_null(strstr(r, "\"state\":\"running\""));
    assert_non_null(strstr(r, "\"vcpus\":2"));
    assert_non_null(strstr(r, "\"mem_mib\":128"));
    assert_int_equal(r[strlen(r) - 1], '\n');
    assert_int_equal(stop, 0);
    free(r);
    r = control_reply(&vm, "{\"cmd\":\"stop\"}", &stop);
    assert_non_null(strstr(r, "\"ok\":true"));
    assert_int_equal(stop, 1);
    free(r);
    r = control_reply(&vm, "{\"cmd\":42}", &stop);
    assert_non_null(strstr(r, "\"ok\":false"));
    assert_int_equal(stop, 0);
    free(r);
    r = control_reply(&vm, "{not json", &stop);
    assert_non_null(strstr(r, "\"ok\":false"));
    free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_serial_probe_and_output, reset),
        cmocka_unit_test_setup(test_exit_port, reset),
        cmocka_unit_test_setup(test_i8042_and_unhandled, reset),
        cmocka_unit_test_setup(test_cpuid_filter, reset),
        cmocka_unit_test_setup(test_cpuid_xsave, reset),
        cmocka_unit_test_setup(test_config_flags, reset),
        cmocka_unit_test_setup(test_config_json, reset),
        cmocka_unit_test_setup(test_control_reply, reset),
    };
    return cmocka_run_group_tests_name("vmm-devices", tests, NULL, NULL);
}
