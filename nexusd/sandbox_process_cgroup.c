/* SPDX-License-Identifier: MIT */
/*
 * Per-instance cgroups for the process sandbox: the memory limit (the
 * function's MemorySize), a task limit (fork bombs) and CPU/memory accounting
 * for usage().  Works on cgroup v1 (memory, cpuacct, pids hierarchies, as on
 * this machine) and on a unified v2 hierarchy.  Instances live in
 *   v1: /sys/fs/cgroup/{memory,cpuacct,pids}/nexus/<name>
 *   v2: /sys/fs/cgroup/nexus/<name>
 * If neither is usable the driver still runs, without limits, and says so.
 */
#include "sandbox_process_priv.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>

#define CG_ROOT       "/sys/fs/cgroup"   /* NEXUS_CGROUP_ROOT overrides (tests, odd layouts) */
#define CG_GROUP      "nexus"
/* Tasks (processes + threads) per instance: enough for thread pools and a few
 * subprocesses, small enough that a fork bomb stops at once. */
#define CG_PIDS_MAX   "512"

static pthread_once_t probe_once = PTHREAD_ONCE_INIT;
static enum sbp_cg_kind probe_kind;
static char probe_desc[256];
/* v1 base directories ("" = controller unavailable); v2 uses base_mem. */
static char base_mem[160], base_cpu[160], base_pids[160];

static int write_file(const char *dir, const char *file, const char *val)
{
	char path[320];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, val, strlen(val));
	int e = n < 0 ? -errno : 0;
	close(fd);
	return e;
}

static int read_file(const char *dir, const char *file, char *buf, size_t cap)
{
	char path[320];
	snprintf(path, sizeof path, "%s/%s", dir, file);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, cap - 1);
	int e = n < 0 ? -errno : 0;
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return e;
}

static int is_fs(const char *path, long magic)
{
	struct statfs st;
	return statfs(path, &st) == 0 && (long)st.f_type == magic;
}

/* mkdir the shared parent "nexus" directory of a hierarchy (once; EEXIST fine). */
static int make_base(const char *hier, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", hier, CG_GROUP);
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		int e = errno;
		out[0] = 0;
		return -e;
	}
	return 0;
}

/* Remove the empty instance groups a nexusd that died left behind: names are
 * sb-<instance>-<nexusd pid>-<seq>, and a group whose nexusd is gone and
 * that holds no task is garbage (rmdir refuses a populated group anyway). */
static void sweep(const char *base)
{
	DIR *d = base[0] ? opendir(base) : NULL;
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		unsigned long long inst;
		int pid;
		unsigned seq;
		if (sscanf(e->d_name, "sb-%llu-%d-%u", &inst, &pid, &seq) != 3 || pid <= 0 || pid == getpid())
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		char path[320];
		snprintf(path, sizeof path, "%s/%s", base, e->d_name);
		rmdir(path);
	}
	closedir(d);
}

static void probe(void)
{
	char buf[512], hier[128];
	int e;
	const char *root = getenv("NEXUS_CGROUP_ROOT");
	if (!root || !*root || strlen(root) > 64)
		root = CG_ROOT;

	/* Unified hierarchy with the memory controller available at the root. */
	if (is_fs(root, CGROUP2_SUPER_MAGIC)) {
		if (read_file(root, "cgroup.controllers", buf, sizeof buf) < 0 || !strstr(buf, "memory")) {
			snprintf(probe_desc, sizeof probe_desc,
			         "WARNING: cgroup v2 at %s has no memory controller: memory limits NOT enforced", root);
			return;
		}
		/* Processes may sit in the root, so enabling controllers there is allowed;
		 * "nexus" itself holds no process, only the instance groups. */
		write_file(root, "cgroup.subtree_control", "+memory");
		write_file(root, "cgroup.subtree_control", "+pids");
		if ((e = make_base(root, base_mem, sizeof base_mem)) < 0 ||
		    (e = write_file(base_mem, "cgroup.subtree_control", "+memory")) < 0) {
			snprintf(probe_desc, sizeof probe_desc,
			         "WARNING: cannot set up %s/" CG_GROUP " (%s): memory limits NOT enforced", root, strerror(-e));
			base_mem[0] = 0;
			return;
		}
		write_file(base_mem, "cgroup.subtree_control", "+pids");
		sweep(base_mem);
		probe_kind = SBP_CG_V2;
		snprintf(probe_desc, sizeof probe_desc, "memory cgroup v2 at %s", base_mem);
		return;
	}

	/* v1: one hierarchy per controller; the memory one is what matters. */
	snprintf(hier, sizeof hier, "%s/memory", root);
	if (!is_fs(hier, CGROUP_SUPER_MAGIC)) {
		snprintf(probe_desc, sizeof probe_desc,
		         "WARNING: no memory cgroup (neither cgroup v2 with memory at %s nor v1 at %s/memory): "
		         "memory limits NOT enforced", root, root);
		return;
	}
	if ((e = make_base(hier, base_mem, sizeof base_mem)) < 0) {
		snprintf(probe_desc, sizeof probe_desc,
		         "WARNING: cannot create %s/" CG_GROUP " (%s): memory limits NOT enforced", hier, strerror(-e));
		return;
	}
	/* Hierarchical accounting, so the nexus group's usage covers every instance. */
	write_file(base_mem, "memory.use_hierarchy", "1");
	snprintf(hier, sizeof hier, "%s/cpuacct", root);
	if (is_fs(hier, CGROUP_SUPER_MAGIC))
		make_base(hier, base_cpu, sizeof base_cpu);
	snprintf(hier, sizeof hier, "%s/pids", root);
	if (is_fs(hier, CGROUP_SUPER_MAGIC))
		make_base(hier, base_pids, sizeof base_pids);
	sweep(base_mem);
	sweep(base_cpu);
	sweep(base_pids);
	probe_kind = SBP_CG_V1;
	snprintf(probe_desc, sizeof probe_desc, "memory cgroup v1 at %s%s%s", base_mem,
	         base_cpu[0] ? ", cpuacct" : " (no cpuacct: CPU usage from /proc)",
	         base_pids[0] ? ", pids" : " (no pids controller: no task limit)");
}

enum sbp_cg_kind sbp_cgroup_probe(char *desc, size_t desclen)
{
	pthread_once(&probe_once, probe);
	if (desc && desclen)
		snprintf(desc, desclen, "%s", probe_desc);
	return probe_kind;
}

static int make_dir(const char *base, const char *name, char *out, size_t cap)
{
	if (!base[0]) {
		out[0] = 0;
		return 0;
	}
	snprintf(out, cap, "%s/%s", base, name);
	if (mkdir(out, 0755) == 0)
		return 0;
	if (errno != EEXIST)
		return -errno;
	/* Left over by a nexusd that died: reuse it if it is empty (rmdir succeeds). */
	if (rmdir(out) < 0 || mkdir(out, 0755) < 0)
		return -errno;
	return 0;
}

int sbp_cgroup_create(struct sbp_cgroup *cg, const char *name, uint32_t memory_mb,
                      char *err, size_t errlen)
{
	memset(cg, 0, sizeof *cg);
	cg->kind = sbp_cgroup_probe(NULL, 0);
	if (cg->kind == SBP_CG_NONE)
		return 0;

	char limit[32];
	snprintf(limit, sizeof limit, "%llu", (unsigned long long)memory_mb << 20);
	int e;
	if ((e = make_dir(base_mem, name, cg->mem, sizeof cg->mem)) < 0) {
		snprintf(err, errlen, "cgroup mkdir %s/%s: %s", base_mem, name, strerror(-e));
		goto fail;
	}
	if (cg->kind == SBP_CG_V2) {
		if ((e = write_file(cg->mem, "memory.max", limit)) < 0) {
			snprintf(err, errlen, "cgroup %s/memory.max = %s: %s", cg->mem, limit, strerror(-e));
			goto fail;
		}
		write_file(cg->mem, "memory.swap.max", "0");   /* absent without swap accounting */
		write_file(cg->mem, "pids.max", CG_PIDS_MAX);
		return 0;
	}
	if ((e = write_file(cg->mem, "memory.limit_in_bytes", limit)) < 0) {
		snprintf(err, errlen, "cgroup %s/memory.limit_in_bytes = %s: %s", cg->mem, limit, strerror(-e));
		goto fail;
	}
	/* Memory+swap at the same value: the limit cannot be dodged by swapping
	 * (the file exists only with swap accounting). */
	write_file(cg->mem, "memory.memsw.limit_in_bytes", limit);
	if ((e = make_dir(base_cpu, name, cg->cpu, sizeof cg->cpu)) < 0)
		cg->cpu[0] = 0;   /* accounting only: fall back to /proc */
	if ((e = make_dir(base_pids, name, cg->pids, sizeof cg->pids)) < 0 ||
	    (cg->pids[0] && (e = write_file(cg->pids, "pids.max", CG_PIDS_MAX)) < 0)) {
		snprintf(err, errlen, "cgroup %s/%s pids.max: %s", base_pids, name, strerror(-e));
		goto fail;
	}
	return 0;
fail:
	sbp_cgroup_remove(cg);
	return e;
}

int sbp_cgroup_procs_fds(const struct sbp_cgroup *cg, int fds[3], char *err, size_t errlen)
{
	const char *dirs[3] = { cg->mem, cg->cpu, cg->pids };
	for (int i = 0; i < 3; i++) {
		fds[i] = -1;
		if (!dirs[i][0])
			continue;
		char path[320];
		snprintf(path, sizeof path, "%s/cgroup.procs", dirs[i]);
		if ((fds[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
			int e = errno;
			snprintf(err, errlen, "open %s: %s", path, strerror(e));
			for (int j = 0; j < i; j++)
				if (fds[j] >= 0)
					close(fds[j]);
			return -e;
		}
	}
	return 0;
}

static uint64_t field(const char *text, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, key, kl) && p[kl] == ' ')
			return strtoull(p + kl + 1, NULL, 10);
	return 0;
}

int sbp_cgroup_usage(const struct sbp_cgroup *cg, uint64_t *cpu_ns, uint64_t *mem_bytes,
                     uint32_t *oom_kills)
{
	char buf[1024];
	if (cg->kind == SBP_CG_NONE || !cg->mem[0])
		return -ENOENT;
	if (cg->kind == SBP_CG_V2) {
		if (read_file(cg->mem, "cpu.stat", buf, sizeof buf) == 0)
			*cpu_ns = field(buf, "usage_usec") * 1000;
		if (read_file(cg->mem, "memory.current", buf, sizeof buf) == 0)
			*mem_bytes = strtoull(buf, NULL, 10);
		if (read_file(cg->mem, "memory.events", buf, sizeof buf) == 0)
			*oom_kills = (uint32_t)field(buf, "oom_kill");
		return 0;
	}
	/* Without cpuacct *cpu_ns keeps what the caller put there (from /proc). */
	if (cg->cpu[0] && read_file(cg->cpu, "cpuacct.usage", buf, sizeof buf) == 0)
		*cpu_ns = strtoull(buf, NULL, 10);
	if (read_file(cg->mem, "memory.usage_in_bytes", buf, sizeof buf) == 0)
		*mem_bytes = strtoull(buf, NULL, 10);
	if (read_file(cg->mem, "memory.oom_control", buf, sizeof buf) == 0)
		*oom_kills = (uint32_t)field(buf, "oom_kill");
	return 0;
}

void sbp_cgroup_remove(struct sbp_cgroup *cg)
{
	char *dirs[3] = { cg->mem, cg->cpu, cg->pids };
	for (int i = 0; i < 3; i++) {
		if (!dirs[i][0])
			continue;
		/* The last task may still be leaving the group right after the reap. */
		for (int tries = 0; rmdir(dirs[i]) < 0 && errno == EBUSY && tries < 50; tries++) {
			struct timespec ts = { 0, 1000000 };
			nanosleep(&ts, NULL);
		}
		if (access(dirs[i], F_OK) == 0)
			sbp_log(1, "sandbox: could not remove cgroup %s: %s", dirs[i], strerror(errno));
		dirs[i][0] = 0;
	}
}
