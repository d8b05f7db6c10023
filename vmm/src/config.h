/* nexus-vmm configuration: command-line flags and/or a JSON file (jansson).
 * The flags are the contract in prompts/vmm-contract.md; docs/vmm.md lists them. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VMM_MAX_DISKS 8
#define VMM_MAX_VCPUS 32

enum serial_mode { SERIAL_STDOUT, SERIAL_FILE, SERIAL_NONE };
enum seccomp_mode { SECCOMP_KILL, SECCOMP_LOG, SECCOMP_OFF };

struct disk_config {
    char *path;
    bool ro;
};

struct vmm_config {
    char *kernel;
    char *initrd;
    char *cmdline;                 /* NULL: default, see config.c */
    uint64_t mem_mb;
    unsigned vcpus;
    struct disk_config disks[VMM_MAX_DISKS];
    unsigned nr_disks;
    char *net_tap;                 /* tap interface name (already created by the caller) */
    uint8_t net_mac[6];
    enum serial_mode serial;
    char *serial_path;
    char *control_path;
    enum seccomp_mode seccomp;
    bool verbose;
    /* --nexus REGION_FD,KICK_HOST_FD,KICK_GUEST_FD: the Nexus device (dev_nexus.c)
     * on fds inherited from nexusd; nexus_fds[0] < 0 = no device. */
    int nexus_fds[3];
    /* --nexus control: the three fds arrive with {"cmd":"nexus-attach"} (SCM_RIGHTS)
     * on a control connection; the VM does not run until they have. */
    bool nexus_control;
    /* --control-fd N: an inherited, connected AF_UNIX stream socket served like a
     * client of --control (-1: none). */
    int control_fd;
    /* --restore DIR: start from the snapshot in DIR (snapshot.c) instead of a kernel;
     * --ws FILE: pre-fault the working-set page ranges in FILE before resuming. */
    char *restore_dir;
    char *ws_file;
};

#define VMM_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=-1"

void config_defaults(struct vmm_config *c);
/* Parse argv (which may name --config FILE; flags given on the command line
 * override the file).  Returns 0, 1 for --help (usage printed), or -1 with a
 * message in err. */
int config_parse_args(struct vmm_config *c, int argc, char **argv, char *err, size_t errlen);
int config_load_json(struct vmm_config *c, const char *path, char *err, size_t errlen);
int config_load_json_string(struct vmm_config *c, const char *text, char *err, size_t errlen);
void config_free(struct vmm_config *c);
void config_usage(void *stream);   /* FILE * */

#endif
