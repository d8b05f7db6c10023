# Raw syscalls the filter must refuse (errno) or allow.  x86_64 numbers.
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
calls = {'ptrace': (101, 0, 0, 0, 0), 'mount': (165, 0, 0, 0, 0), 'unshare': (272, 0x10000000),
         'bpf': (321, 0, 0, 0), 'keyctl': (250, 0, 0), 'add_key': (248, 0, 0, 0, 0, 0),
         'perf_event_open': (298, 0, 0, 0, 0, 0), 'kexec_load': (246, 0, 0, 0, 0),
         'io_uring_setup': (425, 1, 0), 'userfaultfd': (323, 0), 'clone3': (435, 0, 0),
         'chroot': (161, 0), 'setns': (308, 0, 0), 'getpid': (39,)}
for name, args in calls.items():
    r = libc.syscall(*[ctypes.c_long(a) for a in args])
    print(name, r if r >= 0 else 'errno=%d' % ctypes.get_errno())
# clone with a namespace flag is refused; a plain fork works.
r = libc.syscall(ctypes.c_long(56), ctypes.c_long(0x10000000 | 17), ctypes.c_long(0), ctypes.c_long(0),
                 ctypes.c_long(0), ctypes.c_long(0))
print('clone_newuser', 'errno=%d' % ctypes.get_errno() if r < 0 else r)
pid = os.fork()
if pid == 0:
    os._exit(3)
print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
