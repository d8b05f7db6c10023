/* SPDX-License-Identifier: MIT */
/*
 * Per-function microVM snapshots for the `vm` driver (README-vm.md,
 * "Snapshots").  The first cold start of a function boots fresh; once its
 * runtime has said READY and gone quiet (imported the handler, asleep on the
 * channel waiting for its first invocation), this file pauses the VM, has
 * nexus-vmm write the snapshot into a temporary directory, renames it to
 * <state-dir>/snapshots/<function>-<hash>/ (atomic), and resumes the VM,
 * which then serves the invocation.  Later cold starts restore from it
 * (sandbox_vm.c) with a fresh region whose generation differs, so the guest's
 * libnexus re-attaches.
 *
 * The hash covers everything the snapshot depends on: the code (CodeSha256
 * and the code directory's names/sizes/mtimes), the configuration (sandbox
 * argv, environment, memory), the runtime directory, the guest kernel, the
 * root image and nexus-vmm (path, size, mtime).  A change to any of them is a
 * new key; once a function's new snapshot is taken, its other keys' snapshots
 * and disks are removed (a deleted function's stay until nexusd's state dir is
 * cleaned).  Temporary directories a crash left behind go at the first start.  The code and runtime disk images that go with a key live in
 * <key>.disks/ and are built once and never replaced, because a snapshot's
 * page cache must match the disks it is restored with byte for byte.
 *
 * Threads: the key and the checks run on the launcher thread (driver start);
 * the snapshot itself on a thread of its own per instance, so the loop keeps
 * serving; counters are atomics.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>

#include <nexus/channel.h>
#include "config.h"
#include "metrics.h"
#include "sandbox_vm.h"
#include "util.h"

#define SNAP_QUIESCE_MS   60000   /* READY to "asleep on the channel" (the import runs in between) */
#define SNAP_CMD_MS       120000  /* pause / snapshot / resume replies (TCG is slow) */

static atomic_uint_fast64_t counters[VMS__N];

void vm_snap_count(enum vm_snap_counter c)
{
	atomic_fetch_add(&counters[c], 1);
}

void nx_vm_snapshot_metrics(FILE *f)
{
	static const char *const names[VMS__N][2] = {
		[VMS_RESTORES] = { "nexus_vm_snapshot_restores_total", "vm cold starts restored from a function snapshot." },
		[VMS_FALLBACKS] = { "nexus_vm_snapshot_fallbacks_total",
		                    "Snapshots refused at restore (corrupt, mismatched, no re-attach): deleted, booted fresh." },
		[VMS_TAKES] = { "nexus_vm_snapshot_takes_total", "Function snapshots taken." },
		[VMS_TAKE_FAILS] = { "nexus_vm_snapshot_take_failures_total",
		                     "Snapshots not taken (the guest did not go quiet, or the monitor failed)." },
		[VMS_FRESH_BOOTS] = { "nexus_vm_fresh_boots_total", "vm instances booted fresh (no usable snapshot)." },
		[VMS_WS_SAVES] = { "nexus_vm_snapshot_ws_saves_total",
		                   "Working sets recorded (first invocation of a restored instance, ws-save)." },
		[VMS_WS_SAVE_FAILS] = { "nexus_vm_snapshot_ws_save_failures_total",
		                        "Working sets not recorded (no INVOKE_DONE seen, or ws-save failed)." },
		[VMS_WS_RESTORES] = { "nexus_vm_snapshot_ws_restores_total",
		                      "Restores given the snapshot's working set (--ws: its pages pre-faulted)." },
		[VMS_MEM_VERIFIED] = { "nexus_vm_snapshot_memory_verified_total",
		                       "Restores whose memory file nexus-vmm verified first (snapshots this nexusd did not write)." },
	};
	for (int i = 0; i < VMS__N; i++)
		nxd_metric_one(f, names[i][0], "counter", names[i][1], atomic_load(&counters[i]));
}

/* ------------------------------------------------------------------ key */

static _Thread_local EVP_MD_CTX *tree_md;

static int tree_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag; (void)f;
	char line[PATH_MAX + 96];
	int n = snprintf(line, sizeof line, "%s %lld %lld.%09ld\n", p, (long long)st->st_size,
	                 (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);
	EVP_DigestUpdate(tree_md, line, (size_t)(n > 0 ? n : 0));
	return 0;
}

static void hash_str(EVP_MD_CTX *md, const char *what, const char *s)
{
	EVP_DigestUpdate(md, what, strlen(what));
	EVP_DigestUpdate(md, "=", 1);
	if (s)
		EVP_DigestUpdate(md, s, strlen(s) + 1);
}

static void hash_file(EVP_MD_CTX *md, const char *what, const char *path)
{
	struct stat st;
	char line[PATH_MAX + 96] = "";
	if (stat(path, &st) == 0)
		snprintf(line, sizeof line, "%s %lld %lld.%09ld %llu", path, (long long)st.st_size,
		         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino);
	hash_str(md, what, line);
}

static void hash_tree(EVP_MD_CTX *md, const char *what, const char *dir)
{
	hash_str(md, what, dir);
	tree_md = md;
	nftw(dir, tree_one, 16, FTW_PHYS);   /* nftw walks in a stable order for an unchanged tree */
	tree_md = NULL;
}

void vm_snap_key(const struct nx_sandbox_spec *spec, const char *vmm, const char *kernel, const char *image,
                 const struct vmm_caps *caps, char *key, size_t cap)
{
	key[0] = 0;
	const char *env = getenv("NEXUS_VM_SNAPSHOT");   /* "off": node-wide switch (README-vm.md) */
	if (!spec->snapshot || !caps->restore || !*nxd_cfg.state_dir || !spec->function_name ||
	    (env && !strcmp(env, "off")))
		return;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
		EVP_MD_CTX_free(md);
		return;
	}
	hash_str(md, "function", spec->function_name);
	hash_str(md, "code_id", spec->code_id);
	hash_tree(md, "code", spec->code_dir);
	hash_tree(md, "runtime", spec->runtime_dir);
	for (const char *const *a = spec->argv; a && *a; a++)
		hash_str(md, "argv", *a);
	for (const char *const *e = spec->envp; e && *e; e++)
		hash_str(md, "env", *e);
	char mem[32];
	snprintf(mem, sizeof mem, "%u %d", spec->memory_mb, (int)spec->mode);
	hash_str(md, "memory", mem);
	hash_file(md, "kernel", kernel);
	hash_file(md, "image", image);
	hash_file(md, "vmm", vmm);
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dl = 0;
	EVP_DigestFinal_ex(md, d, &dl);
	EVP_MD_CTX_free(md);
	char hex[17];
	for (int i = 0; i < 8; i++)
		snprintf(hex + 2 * i, 3, "%02x", d[i]);
	snprintf(key, cap, "%s-%s", spec->function_name, hex);
}

void vm_snap_path(const char *key, const char *suffix, char *out, size_t cap)
{
	snprintf(out, cap, "%s/snapshots/%s%s", nxd_cfg.state_dir, key, suffix ? suffix : "");
}

/* "ino size mtime" of the key's two disk images: a snapshot is only good with
 * the very images it was taken with. */
static void disks_sig(const char *key, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	static const char *const names[] = { ".disks/runtime.ext4", ".disks/code.ext4" };
	for (int i = 0; i < 2; i++) {
		char p[PATH_MAX];
		struct stat st;
		vm_snap_path(key, names[i], p, sizeof p);
		if (stat(p, &st) < 0)
			continue;
		n += (size_t)snprintf(out + n, cap - n, "%llu:%lld:%lld.%09ld;", (unsigned long long)st.st_ino,
		                      (long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
		if (n >= cap)
			break;
	}
}

bool vm_snap_present(const char *key, uint64_t *gen)
{
	char dir[PATH_MAX], p[PATH_MAX + 16];
	vm_snap_path(key, NULL, dir, sizeof dir);
	snprintf(p, sizeof p, "%s/nexus.json", dir);
	json_t *j = json_load_file(p, 0, NULL);
	if (!j)
		return false;   /* nothing there (the monitor checks vmstate/memory itself) */
	json_t *g = json_object_get(j, "generation");
	const char *sig = json_string_value(json_object_get(j, "disks"));
	char now[256];
	disks_sig(key, now, sizeof now);
	bool ok = json_is_integer(g) && sig && !strcmp(sig, now);
	if (ok)
		*gen = (uint64_t)json_integer_value(g);
	json_decref(j);
	if (!ok)
		vm_snap_refuse(key, "its nexus.json does not match (generation missing, or the disk images changed)");
	return ok;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)f;
	if (flag == FTW_DP)
		rmdir(p);
	else
		unlink(p);
	return 0;
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Calls fn(name, path, arg) for every entry of <state-dir>/snapshots/. */
static void for_each_entry(void (*fn)(const char *name, const char *path, void *arg), void *arg)
{
	char dir[PATH_MAX];
	vm_snap_path("", NULL, dir, sizeof dir);
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char p[PATH_MAX + 300];
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		fn(e->d_name, p, arg);
	}
	closedir(d);
}

static void cleanup_one(const char *name, const char *path, void *arg)
{
	(void)arg;
	if (strstr(name, ".tmp-")) {
		rm_tree(path);
	} else if (strstr(name, ".disks")) {
		static const char *const imgs[] = { "runtime.ext4.tmp", "code.ext4.tmp" };
		for (int i = 0; i < 2; i++) {
			char q[PATH_MAX + 340];
			snprintf(q, sizeof q, "%s/%s", path, imgs[i]);
			unlink(q);
		}
	}
}

/* Temporary directories and images of a snapshot or image build that a
 * crash interrupted (called once, before this nexusd takes any). */
static void vm_snap_cleanup_tmp_now(void)
{
	for_each_entry(cleanup_one, NULL);
}

void vm_snap_refuse(const char *key, const char *why)
{
	char dir[PATH_MAX];
	vm_snap_path(key, NULL, dir, sizeof dir);
	nxd_warn("vm snapshot %s refused: %s; deleted it, booting fresh instead", key, why);
	rm_tree(dir);
	vm_snap_trust(key, false);
	vm_snap_count(VMS_FALLBACKS);
}

/* Is NAME "<function>-<16 hex>" or that + ".disks" / ".tmp-XXXXXX"? */
static bool is_key_of(const char *name, const char *function, size_t *hash_off)
{
	size_t n = strlen(function);
	if (strncmp(name, function, n) || name[n] != '-')
		return false;
	for (int i = 1; i <= 16; i++)
		if (!isxdigit((unsigned char)name[n + (size_t)i]) || isupper((unsigned char)name[n + (size_t)i]))
			return false;
	const char *rest = name + n + 17;
	*hash_off = n + 1;
	return !*rest || !strcmp(rest, ".disks") || !strncmp(rest, ".tmp-", 5);
}

struct drop { const char *function, *keep; };

static void drop_one(const char *name, const char *path, void *arg)
{
	const struct drop *x = arg;
	size_t off;
	if (!is_key_of(name, x->function, &off) || (x->keep && !strncmp(name, x->keep, strlen(x->keep))))
		return;
	if (strstr(name, ".tmp-"))
		return;   /* maybe another instance's snapshot in progress */
	rm_tree(path);
	nxd_info("vm snapshot: removed %s (function %s %s)", name, x->function,
	         x->keep ? "has a newer snapshot" : "was deleted");
}

/* Remove the snapshots and disks of FUNCTION's keys other than KEEP (after a new
 * snapshot of it was taken: code or configuration changed), or all of them when
 * KEEP is NULL (the function was deleted).  A VM still running on an old key's
 * disks keeps them open; unlinking them does not disturb it. */
static void drop_other_keys(const char *function, const char *keep)
{
	struct drop x = { function, keep };
	for_each_entry(drop_one, &x);
}

void nx_vm_snapshot_forget(const char *function)
{
	drop_other_keys(function, NULL);
}

void vm_snap_cleanup_tmp(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, vm_snap_cleanup_tmp_now);
}

/* ----------------------------------------------------------------- trust */

/* Keys whose memory file is known good in this process: written by it, or
 * verified by nexus-vmm once.  Verifying reads the whole file (it defeats the
 * lazy MAP_PRIVATE loading), so it is done once per snapshot and nexusd run,
 * not per restore.  Bounded: a key pushed out is verified again, no harm. */
#define TRUST_MAX 256
static pthread_mutex_t trust_mu = PTHREAD_MUTEX_INITIALIZER;
static char trusted[TRUST_MAX][80];
static unsigned trust_next;

bool vm_snap_trusted(const char *key)
{
	bool yes = false;
	pthread_mutex_lock(&trust_mu);
	for (int i = 0; i < TRUST_MAX && !yes; i++)
		yes = trusted[i][0] && !strcmp(trusted[i], key);
	pthread_mutex_unlock(&trust_mu);
	return yes;
}

void vm_snap_trust(const char *key, bool on)
{
	pthread_mutex_lock(&trust_mu);
	int at = -1;
	for (int i = 0; i < TRUST_MAX; i++)
		if (trusted[i][0] && !strcmp(trusted[i], key))
			at = i;
	if (on && at < 0)
		snprintf(trusted[trust_next++ % TRUST_MAX], sizeof trusted[0], "%s", key);
	else if (!on && at >= 0)
		trusted[at][0] = 0;
	pthread_mutex_unlock(&trust_mu);
}

/* ---------------------------------------------------------------- claims */

#define CLAIMS_MAX 64
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static char claims[CLAIMS_MAX][96];   /* "<key>" or "<key>/ws" */

bool vm_snap_claim(const char *key)
{
	bool ok = false;
	pthread_mutex_lock(&claim_mu);
	int free_slot = -1;
	for (int i = 0; i < CLAIMS_MAX; i++) {
		if (!strcmp(claims[i], key))
			goto out;
		if (!claims[i][0] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot >= 0) {
		snprintf(claims[free_slot], sizeof claims[free_slot], "%s", key);
		ok = true;
	}
out:
	pthread_mutex_unlock(&claim_mu);
	return ok;
}

void vm_snap_unclaim(const char *key)
{
	pthread_mutex_lock(&claim_mu);
	for (int i = 0; i < CLAIMS_MAX; i++)
		if (!strcmp(claims[i], key))
			claims[i][0] = 0;
	pthread_mutex_unlock(&claim_mu);
}

/* ------------------------------------------------------------- taking it */

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The guest is asleep on the channel (its runtime waits for the first
 * invocation) and nexusd has consumed all it posted: then nothing is in
 * flight and a restored clone only has to re-attach.  Read from nexusd's own
 * view of the region; the words are the guest's, so this is only a hint of
 * when to pause, never trusted for anything else. */
static bool wait_quiet(struct nx_sandbox *sb)
{
	size_t len = NX_ARENAS_OFF;
	const uint8_t *r = mmap(NULL, len, PROT_READ, MAP_SHARED, sb->region_fd, 0);
	if (r == MAP_FAILED)
		return false;
	const struct nx_ring *to_host = (const void *)(r + NX_TO_HOST_RING_OFF);
	const struct nx_ring *to_guest = (const void *)(r + NX_TO_GUEST_RING_OFF);
	uint64_t end = mono_ms() + SNAP_QUIESCE_MS;
	int calm = 0;
	bool ok = false;
	while (!sb->snap_cancel && mono_ms() < end) {
		bool q = __atomic_load_n(&to_guest->consumer_sleeping, __ATOMIC_ACQUIRE) == 1 &&
		         __atomic_load_n(&to_guest->head, __ATOMIC_ACQUIRE) ==
		                 __atomic_load_n(&to_guest->tail, __ATOMIC_ACQUIRE) &&
		         __atomic_load_n(&to_host->head, __ATOMIC_ACQUIRE) ==
		                 __atomic_load_n(&to_host->tail, __ATOMIC_ACQUIRE);
		calm = q ? calm + 1 : 0;
		if (calm >= 5) {   /* 50 ms asleep */
			ok = true;
			break;
		}
		usleep(10000);
	}
	munmap((void *)r, len);
	return ok;
}

/* fsync a directory (its entries: the files created or renamed in it). */
static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int r = fsync(fd) < 0 ? -errno : 0;
	close(fd);
	return r;
}

/* nexus.json, written and fsynced: it is the last file of the snapshot
 * (nexus-vmm fsyncs vmstate and memory before it answers). */
static int write_meta(const char *dir, const struct nx_sandbox *sb, double ms, uint64_t mem_bytes)
{
	char p[PATH_MAX + 16], sig[256];
	disks_sig(sb->key, sig, sizeof sig);
	snprintf(p, sizeof p, "%s/nexus.json", dir);
	json_t *j = json_pack("{s:s,s:I,s:s,s:f,s:I,s:I}", "key", sb->key, "generation", (json_int_t)sb->region_gen,
	                      "disks", sig, "snapshot_ms", ms, "memory_bytes", (json_int_t)mem_bytes, "taken_at",
	                      (json_int_t)time(NULL));
	int fd = j ? open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600) : -1;
	int r = fd >= 0 && json_dumpfd(j, fd, JSON_COMPACT) == 0 && fsync(fd) == 0 ? 0 : -EIO;
	if (fd >= 0)
		close(fd);
	json_decref(j);
	return r;
}

/* Publish the snapshot in tmp as dir, durably: its files and its own entries
 * are on disk before the rename, and the rename is on disk before the
 * snapshot is used, so a host crash leaves either no snapshot or a whole one
 * (a crash before the rename leaves a .tmp- directory, removed at start). */
static int publish(const char *tmp, const char *dir)
{
	int r = fsync_dir(tmp);
	if (r < 0)
		return r;
	if (rename(tmp, dir) < 0)
		return -errno;
	char parent[PATH_MAX];
	snprintf(parent, sizeof parent, "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash)
		*slash = 0;
	r = fsync_dir(parent);
	if (r < 0)
		rm_tree(dir);   /* published but maybe not durably: not ours to restore from */
	return r;
}

static void *snap_main(void *arg)
{
	struct nx_sandbox *sb = arg;
	uint64_t t0 = mono_ms();
	char reply[512], dir[PATH_MAX], tmp[PATH_MAX], cmd[PATH_MAX + 64];
	bool taken = false;
	vm_snap_path(sb->key, NULL, dir, sizeof dir);
	if (!wait_quiet(sb)) {
		nxd_warn("vm snapshot %s not taken: the guest did not go quiet within %d s after READY", sb->key,
		         SNAP_QUIESCE_MS / 1000);
		goto out;
	}
	uint64_t t_quiet = mono_ms();
	if (vmm_command(sb->ctl, "{\"cmd\":\"pause\"}", SNAP_CMD_MS, reply, sizeof reply) < 0) {
		nxd_warn("vm snapshot %s not taken: pause: %s", sb->key, reply);
		goto out;
	}
	vm_snap_path(sb->key, ".tmp-XXXXXX", tmp, sizeof tmp);
	if (!mkdtemp(tmp)) {
		nxd_warn("vm snapshot %s not taken: mkdtemp %s: %s", sb->key, tmp, strerror(errno));
	} else {
		snprintf(cmd, sizeof cmd, "{\"cmd\":\"snapshot\",\"dir\":\"%s\"}", tmp);   /* state-dir paths have no '"' */
		uint64_t t1 = mono_ms();
		if (vmm_command(sb->ctl, cmd, SNAP_CMD_MS, reply, sizeof reply) < 0) {
			nxd_warn("vm snapshot %s not taken: the monitor said: %s", sb->key, reply);
			rm_tree(tmp);
		} else {
			json_t *j = json_loads(reply, 0, NULL);
			uint64_t mem = j ? (uint64_t)json_integer_value(json_object_get(j, "memory_bytes")) : 0;
			json_decref(j);
			int pr = write_meta(tmp, sb, (double)(mono_ms() - t1), mem);
			if (pr == 0)
				pr = publish(tmp, dir);   /* atomic and durable: restores see all of it or nothing */
			if (pr < 0) {
				nxd_warn("vm snapshot %s: writing nexus.json / publishing as %s: %s", sb->key, dir,
				         strerror(-pr));
				rm_tree(tmp);
			} else {
				taken = true;
				vm_snap_trust(sb->key, true);   /* we wrote it: no need to verify its memory */
				drop_other_keys(sb->function, sb->key);
				nxd_info("vm snapshot %s taken in %llu ms (%.1f MiB of RAM written; guest quiet %llu ms after READY)",
				         sb->key, (unsigned long long)(mono_ms() - t1), (double)mem / 1048576.0,
				         (unsigned long long)(t_quiet - t0));
			}
		}
	}
	if (vmm_command(sb->ctl, "{\"cmd\":\"resume\"}", SNAP_CMD_MS, reply, sizeof reply) < 0)
		nxd_warn("vm snapshot %s: resume failed: %s (the instance will not answer)", sb->key, reply);
out:
	vm_snap_count(taken ? VMS_TAKES : VMS_TAKE_FAILS);
	vm_snap_unclaim(sb->key);
	sb->snap_done(sb->snap_arg);
	return NULL;
}

/* ----------------------------------------------------------- working set */

#define WS_WAIT_MS (10 * 60 * 1000)   /* a restored instance gets its first invocation long before */

bool vm_snap_ws_on(void)
{
	const char *env = getenv("NEXUS_VM_SNAPSHOT_WS");   /* "off": node-wide switch (README-vm.md) */
	return !(env && !strcmp(env, "off"));
}

void vm_snap_ws_path(const char *key, char *out, size_t cap)
{
	vm_snap_path(key, "/ws", out, cap);
}

/* Has the guest posted its first INVOKE_DONE?  Scans the to-host ring's new
 * descriptors as they appear.  The words are the guest's, so this only
 * decides *when* to ask the monitor for the working set (whose contents come
 * from the monitor's page tables); nothing else trusts it. */
static bool wait_first_done(struct nx_sandbox *sb, int region_fd)
{
	size_t len = NX_ARENAS_OFF;
	const uint8_t *r = mmap(NULL, len, PROT_READ, MAP_SHARED, region_fd, 0);
	if (r == MAP_FAILED)
		return false;
	const struct nx_ring *to_host = (const void *)(r + NX_TO_HOST_RING_OFF);
	/* From the start of the region (fresh for every restore: indexes begin at
	 * 0): READY, and maybe the whole first invocation, can come and go before
	 * this thread runs (seen in the rig). */
	uint32_t seen = 0;
	uint64_t end = mono_ms() + WS_WAIT_MS;
	bool found = false;
	while (!found && !sb->snap_cancel && mono_ms() < end) {
		uint32_t head = __atomic_load_n(&to_host->head, __ATOMIC_ACQUIRE);
		if (head - seen > NX_RING_ENTRIES)   /* lapped (or nonsense): look at the last ring's worth */
			seen = head - NX_RING_ENTRIES;
		for (; seen != head && !found; seen++)
			found = __atomic_load_n(&to_host->desc[seen & (NX_RING_ENTRIES - 1)].opcode, __ATOMIC_RELAXED) ==
			        NX_OP_INVOKE_DONE;
		if (!found)
			usleep(5000);
	}
	munmap((void *)r, len);
	return found;
}

struct ws_job {
	struct nx_sandbox *sb;
	int region_fd;
};

static void *ws_main(void *arg)
{
	struct ws_job *job = arg;
	struct nx_sandbox *sb = job->sb;
	char reply[512], ws[PATH_MAX], tmp[PATH_MAX + 32], cmd[PATH_MAX + 96], claim[96];
	uint64_t t0 = mono_ms();
	bool saved = false;
	snprintf(claim, sizeof claim, "%s/ws", sb->key);
	vm_snap_ws_path(sb->key, ws, sizeof ws);
	snprintf(tmp, sizeof tmp, "%s.tmp-%d", ws, (int)sb->pid);
	if (!wait_first_done(sb, job->region_fd)) {
		if (!sb->snap_cancel)
			nxd_warn("vm snapshot %s: no INVOKE_DONE within %d s of the restore: working set not recorded",
			         sb->key, WS_WAIT_MS / 1000);
		goto out;
	}
	uint64_t t_done = mono_ms();
	snprintf(cmd, sizeof cmd, "{\"cmd\":\"ws-save\",\"file\":\"%s\"}", tmp);   /* state-dir paths have no '"' */
	if (vmm_command(sb->ctl, cmd, SNAP_CMD_MS, reply, sizeof reply) < 0) {
		nxd_warn("vm snapshot %s: ws-save: %s", sb->key, reply);
		unlink(tmp);
		goto out;
	}
	json_t *j = json_loads(reply, 0, NULL);
	long long pages = j ? (long long)json_integer_value(json_object_get(j, "pages")) : -1;
	json_decref(j);
	/* Durable and atomic like the snapshot: a torn ws file would fail the restore. */
	int fd = open(tmp, O_RDONLY | O_CLOEXEC);
	int r = fd >= 0 && fsync(fd) == 0 ? 0 : -EIO;
	if (fd >= 0)
		close(fd);
	if (r == 0 && rename(tmp, ws) < 0)
		r = -errno;
	char dir[PATH_MAX];
	vm_snap_path(sb->key, NULL, dir, sizeof dir);
	if (r == 0)
		r = fsync_dir(dir);
	if (r < 0) {
		nxd_warn("vm snapshot %s: storing the working set as %s: %s", sb->key, ws, strerror(-r));
		unlink(tmp);
		unlink(ws);
		goto out;
	}
	saved = true;
	nxd_info("vm snapshot %s: working set of the first invocation saved (%lld pages, %.1f MiB; ws-save %llu ms "
	         "after INVOKE_DONE, %llu ms after the restore); later restores pre-fault it (--ws)",
	         sb->key, pages, (double)pages * 4096.0 / 1048576.0, (unsigned long long)(mono_ms() - t_done),
	         (unsigned long long)(t_done - t0));
out:
	vm_snap_count(saved ? VMS_WS_SAVES : VMS_WS_SAVE_FAILS);
	vm_snap_unclaim(claim);
	close(job->region_fd);
	free(job);
	return NULL;
}

void vm_snap_ws_record(struct nx_sandbox *sb, int region_fd)
{
	char claim[96];
	snprintf(claim, sizeof claim, "%s/ws", sb->key);
	if (sb->ctl < 0 || sb->snap_running || !vm_snap_claim(claim))
		return;   /* another restored instance is recording it */
	struct ws_job *job = malloc(sizeof *job);
	if (job)
		job->region_fd = fcntl(region_fd, F_DUPFD_CLOEXEC, 3);
	if (!job || job->region_fd < 0) {
		free(job);
		vm_snap_unclaim(claim);
		return;
	}
	job->sb = sb;
	sb->snap_cancel = false;
	if (pthread_create(&sb->snap_thread, NULL, ws_main, job) != 0) {
		close(job->region_fd);
		free(job);
		vm_snap_unclaim(claim);
		return;
	}
	sb->snap_running = true;
}

int vm_snap_after_ready(struct nx_sandbox *sb, void (*done)(void *), void *arg)
{
	if (!sb->want_snapshot || sb->ctl < 0 || sb->region_fd < 0 || sb->snap_running)
		return 0;
	sb->want_snapshot = false;
	char dir[PATH_MAX];
	vm_snap_path(sb->key, NULL, dir, sizeof dir);
	if (access(dir, F_OK) == 0 || !vm_snap_claim(sb->key))
		return 0;   /* another instance took it, or is taking it */
	sb->snap_done = done;
	sb->snap_arg = arg;
	sb->snap_cancel = false;
	if (pthread_create(&sb->snap_thread, NULL, snap_main, sb) != 0) {
		vm_snap_unclaim(sb->key);
		return 0;
	}
	sb->snap_running = true;
	return 1;
}

void vm_snap_join(struct nx_sandbox *sb)
{
	if (!sb->snap_running)
		return;
	sb->snap_cancel = true;
	pthread_join(sb->snap_thread, NULL);
	sb->snap_running = false;
}
