/* Entry from nexus-vmm's Linux boot path: 64-bit mode, paging on, rsi = boot_params. */
    .section .text.start, "ax"
    .code64
    .globl _start
_start:
    cli
    lea boot_stack_top(%rip), %rsp
    mov %rsi, %rdi
    call guest_main0
1:  cli
    hlt
    jmp 1b

/* void enter_user(uint64_t rip, uint64_t rsp): iretq to ring 3 with IOPL=3 (port I/O
 * allowed) and interrupts off.  Selectors: 0x1b user data, 0x23 user code. */
    .globl enter_user
enter_user:
    mov $0x1b, %eax
    mov %ax, %ds
    mov %ax, %es
    push %rax
    push %rsi
    push $0x3002
    push $0x23
    push %rdi
    iretq

/* Exception stubs: report vector v as guest exit code 32 + v (ring 0, via the TSS stack). */
    .align 16
    .globl exc_stubs
exc_stubs:
    .set vec, 0
    .rept 32
    .align 16
    mov $(32 + vec), %al
    mov $0x501, %dx
    out %al, %dx
    hlt
    .set vec, vec + 1
    .endr

/* Application-processor trampoline, copied to AP_TRAMPOLINE (below 1 MiB) and
 * started there by INIT/SIPI in real mode: load our GDT, enable PAE and long mode
 * with the BSP's page tables, jump to ap_entry64. */
    .globl ap_tramp_start, ap_tramp_end, ap_tramp_gdtr, ap_tramp_cr3
    .code16
ap_tramp_start:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl ap_tramp_gdtr - ap_tramp_start
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    mov (ap_tramp_cr3 - ap_tramp_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    ljmpl $0x08, $ap_entry64
    .align 8
ap_tramp_gdtr:
    .word 0
    .long 0
    .align 4
ap_tramp_cr3:
    .long 0
ap_tramp_end:

    .code64
ap_entry64:
    mov $0x10, %eax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    /* Each AP takes its own 4 KiB stack. */
    mov $4096, %eax
    lock xadd %eax, ap_stack_next(%rip)
    lea ap_stacks(%rip), %rsp
    add %rax, %rsp
    add $4096, %rsp
    call ap_main
2:  cli
    hlt
    jmp 2b

    .data
    .globl ap_stack_next
ap_stack_next: .long 0

    .bss
    .align 4096
    .globl ap_stacks
ap_stacks: .space 4096 * 32
boot_stack: .space 16384
boot_stack_top:

    .section .note.GNU-stack, "", @progbits
