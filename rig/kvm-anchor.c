/* SPDX-License-Identifier: MIT */
/*
 * rig/kvm-anchor — an idle KVM VM that L1 keeps for its whole life.
 *
 * Why: L1 (QEMU/TCG with two vCPUs) has been seen to stop for good with both
 * of its CPUs in the kernel's int3 handler, i.e. inside the breakpoint
 * protocol the kernel uses to patch its own code (text_poke_bp) when a static
 * key flips; one CI stall came right after "Unstable clock detected", another
 * such flip.  KVM flips static keys as VMs come and go: every vCPU's local
 * APIC is created software-disabled (apic_sw_disabled goes 0 -> 1, code is
 * patched) and the guest enabling it takes the count back to 0 a second later
 * (patched again).  Each microVM a test boots in L1 thus patched L1's kernel
 * text twice.
 *
 * This process creates one VM with an in-kernel irqchip and one vCPU that
 * never runs: its local APIC stays software-disabled, so the count never
 * returns to 0 and booting microVMs no longer patches L1's kernel.  It costs
 * L1 one vCPU struct and no guest memory, and no CPU time (it sleeps).
 *
 * Prints "kvm-anchor: ready" on stdout once the vCPU exists, then sleeps until
 * killed.  Statically linked: L1's userspace is busybox.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what)
{
	fprintf(stderr, "kvm-anchor: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return fail("open /dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		return fail("KVM_CREATE_VM");
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return fail("KVM_CREATE_IRQCHIP");
	if (ioctl(vm, KVM_CREATE_VCPU, 0) < 0)   /* creates its local APIC, disabled */
		return fail("KVM_CREATE_VCPU");
	printf("kvm-anchor: ready\n");
	fflush(stdout);
	for (;;)
		pause();
}
