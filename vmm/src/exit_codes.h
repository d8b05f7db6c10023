/* nexus-vmm process exit codes.  0..63 are the guest's own (the byte it wrote to
 * the exit port 0x501); 64 and above are the monitor's, one per way a VM can end.
 * docs/vmm.md lists them; keep both in sync. */
#ifndef VMM_EXIT_CODES_H
#define VMM_EXIT_CODES_H

#define VMM_EXIT_GUEST_MAX      63  /* guest exit-port values 0..63 pass through */
#define VMM_EXIT_USAGE          64  /* bad command line or config file */
#define VMM_EXIT_SETUP          65  /* could not set the VM up (KVM, files, memory) */
#define VMM_EXIT_TRIPLE_FAULT   66  /* KVM_EXIT_SHUTDOWN: triple fault / CPU shutdown */
#define VMM_EXIT_GUEST_PANIC    67  /* pvpanic write, or the kernel's panic line then reset */
#define VMM_EXIT_INTERNAL       68  /* KVM error, emulation failure, unexpected exit */
#define VMM_EXIT_RESET          69  /* i8042 reset (0xfe to port 0x64), e.g. reboot=k */
#define VMM_EXIT_STOPPED        70  /* stopped by the host: control socket `stop`, SIGTERM, SIGINT */
#define VMM_EXIT_BAD_EXIT_VALUE 71  /* guest wrote a value > 63 to the exit port */
#define VMM_EXIT_SNAPSHOT       72  /* --restore: snapshot corrupt, truncated, wrong version or mismatched */

#endif
