#!/bin/sh
# Runs inside L1 (rig/run-l1): RUNS boots of the same kernel + rootfs with each monitor,
# interleaved, one result line per boot (see vmm_bench.c).
RUNS=${RUNS:-5}
# nexus.cmd= rather than "-- CMD": QEMU appends its virtio_mmio.device= entries at the end.
CL="console=ttyS0 reboot=k panic=-1 quiet root=/dev/vda ro init=/sbin/nexus-init nexus.cmd=/bin/true"
MARK="nexus-init: started"
i=0
while [ $i -lt "$RUNS" ]; do
  /rig/vmm-bench nexus-vmm /rig/kvm_run_probe.so "$MARK" -- \
    /rig/nexus-vmm --kernel /rig/bzImage --mem 256 --disk /dev/vda,ro --cmdline "$CL" </dev/null
  /rig/vmm-bench qemu-microvm /rig/kvm_run_probe.so "$MARK" -- \
    /rig/qemu-system-x86_64 -L /usr/share/qemu -M microvm,acpi=off,x-option-roms=off,memory-backend=ram \
      -accel kvm -cpu host -m 256 -smp 1 -object memory-backend-memfd,id=ram,size=256M \
      -nodefaults -no-user-config -display none -monitor none -no-reboot -serial stdio \
      -kernel /rig/bzImage -append "$CL" \
      -drive id=root,file=/dev/vda,format=raw,if=none,readonly=on -device virtio-blk-device,drive=root \
      -device isa-debug-exit,iobase=0x501,iosize=1 </dev/null
  i=$((i+1))
done
