/* SPDX-License-Identifier: MIT */
/*
 * Function specs: validation of everything a client sends (names, handler,
 * sizes, environment, nexus:* tags) and what is derived from it once per
 * snapshot (sandbox argv and environment, bucket allow-list, READY meta),
 * plus Lambda's FunctionConfiguration shape.  See registry.c for the store.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "aio.h"
#include "registry_priv.h"
#include "sandbox_zygote.h"
#include "util.h"

static atomic_uint_fast64_t next_gen = 1;

/* The microVM driver joins by defining nx_sandbox_vm (a sandbox_vm file, linked
 * in by the nexusd wildcard): until then this weak reference is NULL
 * and "nexus:sandbox": "vm" is refused with a clear message. */
extern const struct nx_sandbox_driver nx_sandbox_vm __attribute__((weak));
extern const struct nx_sandbox_driver nx_sandbox_host;   /* sandbox_host.c: no sandbox, the floor */

/* Where no "nexus:sandbox" tag says otherwise: "vm" when main.c's probe found
 * that this machine runs real microVM guests, else "process". */
const char *nxd_default_sandbox = "process";

const struct nx_sandbox_driver *nxd_sandbox_driver(const char *name)
{
	if (!strcmp(name, nx_sandbox_process.name))
		return &nx_sandbox_process;
	if (&nx_sandbox_vm && !strcmp(name, nx_sandbox_vm.name))
		return &nx_sandbox_vm;
	if (nxd_cfg.allow_unsandboxed && !strcmp(name, nx_sandbox_host.name))
		return &nx_sandbox_host;
	return NULL;
}

/* ------------------------------------------------------------ lifetime */

static void free_strv(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static void free_kv(struct nxd_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].val);
	}
	free(kv);
}

void reg_fn_free(struct nxd_function *f)
{
	if (f->obsolete && f->code_dir[0]) {
		nxd_debug("removing code %s", f->code_dir);
		nxd_rm_rf(f->code_dir);
	}
	free_kv(f->env, f->nenv);
	free_kv(f->tags, f->ntags);
	free_strv(f->buckets);
	free_strv(f->envp);
	free(f->ready_meta);
	free(f);
}

void nxd_fn_ref(struct nxd_function *f)
{
	atomic_fetch_add(&f->refs, 1);
}

void nxd_fn_unref(struct nxd_function *f)
{
	if (f && atomic_fetch_sub(&f->refs, 1) == 1)
		reg_fn_free(f);
}

/* ---------------------------------------------------------- validation */

int reg_fail(struct nxd_error *e, int http, const char *type, const char *fmt, ...)
{
	e->http = http;
	e->type = type;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
	return -1;
}

static int get_str(json_t *spec, const char *key, char *dst, size_t cap, int required, struct nxd_error *e)
{
	json_t *v = json_object_get(spec, key);
	if (!v || json_is_null(v)) {
		if (required)
			return BAD(e, "%s is required", key);
		dst[0] = 0;
		return 0;
	}
	if (!json_is_string(v))
		return BAD(e, "%s must be a string", key);
	if (json_string_length(v) >= cap || strlen(json_string_value(v)) != json_string_length(v))
		return BAD(e, "%s is too long or contains NUL", key);
	strcpy(dst, json_string_value(v));
	return 0;
}

static int get_uint(json_t *spec, const char *key, unsigned def, unsigned lo, unsigned hi, unsigned *out,
                    struct nxd_error *e)
{
	json_t *v = json_object_get(spec, key);
	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
		return BAD(e, "%s must be an integer between %u and %u", key, lo, hi);
	*out = (unsigned)json_integer_value(v);
	return 0;
}

/* Copy a {string: string} object into a kv array. */
static int get_map(json_t *obj, const char *what, struct nxd_kv **out, size_t *n, struct nxd_error *e)
{
	*out = NULL;
	*n = 0;
	if (!obj || json_is_null(obj))
		return 0;
	if (!json_is_object(obj))
		return BAD(e, "%s must be an object of strings", what);
	size_t cnt = json_object_size(obj);
	if (cnt > 1000)
		return BAD(e, "%s has too many entries", what);
	struct nxd_kv *kv = calloc(cnt ? cnt : 1, sizeof *kv);
	if (!kv)
		return reg_fail(e, 500, "ServiceException", "out of memory");
	const char *k;
	json_t *v;
	size_t i = 0;
	json_object_foreach(obj, k, v) {
		if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) || !*k ||
		    strlen(k) > 256 || json_string_length(v) > 4096) {
			free_kv(kv, i);
			return BAD(e, "%s: '%.100s' must map to a string (no NUL, at most 4096 bytes)", what, k);
		}
		kv[i].key = strdup(k);
		kv[i].val = strdup(json_string_value(v));
		i++;
	}
	*out = kv;
	*n = i;
	return 0;
}

static int valid_env_key(const char *k)
{
	if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z')))
		return 0;
	for (const char *p = k; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

static int valid_bucket(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = b[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.'))
			return 0;
	}
	return 1;
}

const char *nxd_fn_tag(const struct nxd_function *f, const char *key)
{
	for (size_t i = 0; i < f->ntags; i++)
		if (!strcmp(f->tags[i].key, key))
			return f->tags[i].val;
	return NULL;
}

static char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = NULL;
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	return s;
}

/* Everything the nexus:* tags configure. */
static int derive_tags(struct nxd_function *f, struct nxd_error *e)
{
	const char *mode = nxd_fn_tag(f, "nexus:mode");
	if (!mode || !strcmp(mode, "nexus"))
		f->mode = NX_MODE_NEXUS;
	else if (!strcmp(mode, "baseline"))
		f->mode = NX_MODE_BASELINE;
	else
		return BAD(e, "tag nexus:mode must be 'nexus' or 'baseline', not '%.64s'", mode);

	const char *sb = nxd_fn_tag(f, "nexus:sandbox");
	/* Both modes run on both drivers (baseline on vm: sandbox_vm_net.c), so an
	 * untagged function follows the node's default in either mode: an A/B pair
	 * then compares the two modes on the same driver. */
	f->driver = nxd_sandbox_driver(sb ? sb : nxd_default_sandbox);
	if (!f->driver)
		return BAD(e, "tag nexus:sandbox '%.64s' is not available in this nexusd (available: process%s%s)", sb,
		           nxd_sandbox_driver("vm") ? ", vm" : "",
		           nxd_cfg.allow_unsandboxed ? ", host"
		           : sb && !strcmp(sb, "host") ? "; 'host' runs code unsandboxed and needs nexusd --allow-unsandboxed"
		                                       : "");
	if (f->driver == &nx_sandbox_host && f->mode != NX_MODE_NEXUS)
		return BAD(e, "tag nexus:sandbox 'host' (the benchmark floor) runs nexus mode only");

	f->max_instances = nxd_cfg.max_instances;
	const char *mi = nxd_fn_tag(f, "nexus:max-instances");
	if (mi) {
		char *end;
		long v = strtol(mi, &end, 10);
		if (*end || end == mi || v < 1 || v > 1024)
			return BAD(e, "tag nexus:max-instances must be an integer 1..1024, not '%.64s'", mi);
		f->max_instances = (unsigned)v;
	}

	const char *aio_bad = nx_aio_check_tags(nxd_fn_tag(f, "nexus:writeback"), nxd_fn_tag(f, "nexus:prefetch"));
	if (aio_bad)
		return BAD(e, "%s", aio_bad);

	const char *bl = nxd_fn_tag(f, "nexus:buckets");
	size_t nb = 0;
	f->buckets = calloc(bl ? strlen(bl) / 2 + 2 : 1, sizeof *f->buckets);
	if (!f->buckets)
		return reg_fail(e, 500, "ServiceException", "out of memory");
	for (const char *p = bl; p && *p;) {
		while (*p == ',' || *p == ' ')
			p++;
		size_t n = strcspn(p, ", ");
		if (!n)
			break;
		if (!valid_bucket(p, n))
			return BAD(e, "tag nexus:buckets: '%.*s' is not a valid bucket name", (int)(n > 64 ? 64 : n), p);
		f->buckets[nb++] = strndup(p, n);
		p += n;
	}
	return 0;
}

static int derive_runtime(struct nxd_function *f, struct nxd_error *e)
{
	if (!strncmp(f->runtime, "python3", 7)) {
		f->argv[0] = "/usr/bin/python3";
		f->argv[1] = "-u";
		f->argv[2] = "/opt/nexus/python/bootstrap.py";
		f->argv[3] = NULL;
	} else if (!strncmp(f->runtime, "provided", 8)) {
		/* Lambda's custom-runtime convention: an executable /var/task/bootstrap
		 * (e.g. a C function linked against libnexus). */
		f->argv[0] = "/var/task/bootstrap";
		f->argv[1] = NULL;
		/* A libnexus C function has no conventional-stack twin to compare with. */
		if (f->mode == NX_MODE_BASELINE)
			return BAD(e, "tag nexus:mode=baseline needs a python3.x runtime: a '%.64s' function talks "
			           "to storage through libnexus, which only nexus mode provides", f->runtime);
	} else {
		return BAD(e, "Runtime '%.64s' is not supported (use python3.x, or provided for a /var/task/bootstrap executable)",
		           f->runtime);
	}
	return 0;
}

static int derive_env(struct nxd_function *f, struct nxd_error *e)
{
	for (size_t i = 0; i < f->nenv; i++) {
		if (!valid_env_key(f->env[i].key))
			return BAD(e, "Environment variable name '%.100s' is invalid", f->env[i].key);
		if (!strncmp(f->env[i].key, "NEXUS_", 6))
			return BAD(e, "Reserved keys used in this request: %.100s", f->env[i].key);
	}
	const struct nx_s3_config *s3 = &nxd_cfg.s3;
	/* Ours first: getenv returns the first match, so user values cannot
	 * override these. */
	char *ours[24];
	size_t n = 0;
	ours[n++] = xasprintf("PATH=/usr/local/bin:/usr/bin:/bin");
	ours[n++] = xasprintf("LANG=C.UTF-8");
	ours[n++] = xasprintf("HOME=/tmp");
	ours[n++] = xasprintf("TZ=:UTC");
	ours[n++] = xasprintf("LAMBDA_TASK_ROOT=/var/task");
	ours[n++] = xasprintf("LAMBDA_RUNTIME_DIR=/opt/nexus");
	ours[n++] = xasprintf("_HANDLER=%s", f->handler);
	ours[n++] = xasprintf("AWS_LAMBDA_FUNCTION_NAME=%s", f->name);
	ours[n++] = xasprintf("AWS_LAMBDA_FUNCTION_MEMORY_SIZE=%u", f->memory_mb);
	ours[n++] = xasprintf("AWS_LAMBDA_FUNCTION_TIMEOUT=%u", f->timeout_s);
	ours[n++] = xasprintf("AWS_LAMBDA_FUNCTION_VERSION=$LATEST");
	ours[n++] = xasprintf("AWS_REGION=%s", s3->region);
	ours[n++] = xasprintf("AWS_DEFAULT_REGION=%s", s3->region);
	ours[n++] = xasprintf("NEXUS_MODE=%s", f->mode == NX_MODE_NEXUS ? "nexus" : "baseline");
	if (f->mode == NX_MODE_BASELINE) {
		/* The conventional stack, as Lambda runs it: the real SDK in the
		 * sandbox gets the endpoint and credentials in its environment. */
		if (*s3->endpoint)
			ours[n++] = xasprintf("AWS_ENDPOINT_URL_S3=%s", s3->endpoint);
		if (*s3->access_key)
			ours[n++] = xasprintf("AWS_ACCESS_KEY_ID=%s", s3->access_key);
		if (*s3->secret_key)
			ours[n++] = xasprintf("AWS_SECRET_ACCESS_KEY=%s", s3->secret_key);
	}
	/* Defaults a function may override.  glibc's malloc gives the top of
	 * the heap back at every free above 128 KiB and serves large buffers by
	 * mmap, so a handler that allocates an image per call faults its pages in
	 * again on every invocation, and page faults are dear in a sandbox (and
	 * dearer in a microVM).  Keeping up to 8 MiB costs at most that much PSS
	 * per idle instance; measured with bench/ab.py on image-rotate 100 KiB
	 * (nexus mode): p50 8.3 -> 6.1 ms, CPU 6.8 -> 4.8 ms per call, +1 MiB PSS.
	 * Both modes get it, so the A/B stays fair. */
	const char *defaults[] = {
		"GLIBC_TUNABLES=glibc.malloc.trim_threshold=8388608:glibc.malloc.top_pad=4194304:"
		"glibc.malloc.mmap_threshold=8388608",
	};
	size_t nd = sizeof defaults / sizeof defaults[0];
	/* glibc applies every GLIBC_TUNABLES it finds, the last one winning:
	 * add ours only when the function sets none. */
	for (size_t i = 0; i < f->nenv; i++)
		if (!strcmp(f->env[i].key, "GLIBC_TUNABLES"))
			nd = 0;
	f->envp = calloc(n + f->nenv + nd + 1, sizeof *f->envp);
	if (!f->envp) {
		for (size_t i = 0; i < n; i++)
			free(ours[i]);
		return reg_fail(e, 500, "ServiceException", "out of memory");
	}
	for (size_t i = 0; i < n; i++)
		f->envp[i] = ours[i];
	for (size_t i = 0; i < f->nenv; i++)
		f->envp[n + i] = xasprintf("%s=%s", f->env[i].key, f->env[i].val);
	for (size_t i = 0; i < nd; i++)
		f->envp[n + f->nenv + i] = xasprintf("%s", defaults[i]);
	for (size_t i = 0; i < n + f->nenv + nd; i++)
		if (!f->envp[i])
			return reg_fail(e, 500, "ServiceException", "out of memory");
	return 0;
}

/* "nexus:snapshot": how cold starts are served.
 *   vm functions: "vm" (the default) restores a per-function microVM snapshot
 *     (README-vm.md, "Snapshots"); "off" (or "none") boots every instance.
 *   process functions: "zygote" forks Python functions (nexus or baseline mode) from a
 *     per-function zygote (README-sandbox.md, "Zygote cold starts"); "none"
 *     (or "off", the default) starts every instance fresh. */
static int derive_snapshot(struct nxd_function *f, struct nxd_error *e)
{
	const char *snap = nxd_fn_tag(f, "nexus:snapshot");
	bool off = snap && (!strcmp(snap, "none") || !strcmp(snap, "off"));
	if (snap && !off && strcmp(snap, "zygote") && strcmp(snap, "vm"))
		return BAD(e, "tag nexus:snapshot must be 'vm', 'zygote' or 'off', not '%.64s'", snap);
	if (f->driver == nxd_sandbox_driver("vm")) {
		if (snap && !off && strcmp(snap, "vm"))
			return BAD(e, "tag nexus:snapshot '%.64s' is for the process sandbox; a vm function takes 'vm' "
			           "(the default) or 'off'", snap);
		f->vm_snapshot = !off;
		return 0;
	}
	if (!snap || off)
		return 0;
	if (!strcmp(snap, "vm"))
		return BAD(e, "tag nexus:snapshot 'vm' needs the vm sandbox (nexus:sandbox=vm)");
	if (f->driver != &nx_sandbox_process || strncmp(f->runtime, "python3", 7))
		return BAD(e, "tag nexus:snapshot 'zygote' needs a python3 function on the process sandbox");
	f->driver = &nx_sandbox_zygote;
	return 0;
}

/* Build a function snapshot from its spec. */
struct nxd_function *reg_fn_from_spec(json_t *spec, struct nxd_error *e)
{
	struct nxd_function *f = calloc(1, sizeof *f);
	if (!f) {
		reg_fail(e, 500, "ServiceException", "out of memory");
		return NULL;
	}
	atomic_init(&f->refs, 1);
	f->gen = atomic_fetch_add(&next_gen, 1);
	char codedir[256];
	if (get_str(spec, "FunctionName", f->name, sizeof f->name, 1, e) < 0)
		goto bad;
	if (!nxd_valid_name(f->name)) {
		BAD(e, "FunctionName '%.80s' is invalid: use 1-64 letters, digits, '-' or '_'", f->name);
		goto bad;
	}
	if (get_str(spec, "Runtime", f->runtime, sizeof f->runtime, 0, e) < 0 ||
	    get_str(spec, "Handler", f->handler, sizeof f->handler, 1, e) < 0 ||
	    get_str(spec, "Role", f->role, sizeof f->role, 0, e) < 0 ||
	    get_str(spec, "Description", f->description, sizeof f->description, 0, e) < 0 ||
	    get_str(spec, "CodeSha256", f->code_sha256, sizeof f->code_sha256, 0, e) < 0 ||
	    get_str(spec, "LastModified", f->last_modified, sizeof f->last_modified, 0, e) < 0 ||
	    get_str(spec, "RevisionId", f->revision_id, sizeof f->revision_id, 0, e) < 0 ||
	    get_str(spec, "CodeDir", codedir, sizeof codedir, 1, e) < 0 ||
	    get_uint(spec, "MemorySize", 128, 128, 10240, &f->memory_mb, e) < 0 ||
	    get_uint(spec, "Timeout", 3, 1, 900, &f->timeout_s, e) < 0)
		goto bad;
	if (!*f->runtime)
		strcpy(f->runtime, "python3.11");
	if (!*f->handler || strchr(f->handler, '"') || strchr(f->handler, '\\') || strchr(f->handler, '\n')) {
		BAD(e, "Handler '%.100s' is invalid", f->handler);
		goto bad;
	}
	json_t *cs = json_object_get(spec, "CodeSize");
	f->code_size = json_is_integer(cs) ? (uint64_t)json_integer_value(cs) : 0;
	json_t *env = json_object_get(spec, "Environment");
	if (get_map(json_is_object(env) ? json_object_get(env, "Variables") : NULL, "Environment.Variables",
	            &f->env, &f->nenv, e) < 0 ||
	    get_map(json_object_get(spec, "Tags"), "Tags", &f->tags, &f->ntags, e) < 0)
		goto bad;
	if (strchr(codedir, '/') || !strcmp(codedir, "..") || !strcmp(codedir, ".")) {
		BAD(e, "CodeDir is invalid");
		goto bad;
	}
	if (snprintf(f->code_dir, sizeof f->code_dir, "%s/code/%s", nxd_cfg.state_dir, codedir) >=
	        (int)sizeof f->code_dir ||
	    snprintf(f->arn, sizeof f->arn, "arn:aws:lambda:%s:%s:function:%s", nxd_cfg.s3.region, nxd_cfg.account_id,
	             f->name) >= (int)sizeof f->arn) {
		reg_fail(e, 500, "ServiceException", "path or ARN too long");
		goto bad;
	}
	if (derive_tags(f, e) < 0 || derive_runtime(f, e) < 0 || derive_snapshot(f, e) < 0 || derive_env(f, e) < 0)
		goto bad;
	f->ready_meta = xasprintf("{\"function_name\":\"%s\",\"handler\":\"%s\",\"memory_mb\":%u,\"timeout_s\":%u,"
	                          "\"mode\":\"%s\",\"version\":\"$LATEST\"}",
	                          f->name, f->handler, f->memory_mb, f->timeout_s,
	                          f->mode == NX_MODE_NEXUS ? "nexus" : "baseline");
	if (!f->ready_meta) {
		reg_fail(e, 500, "ServiceException", "out of memory");
		goto bad;
	}
	return f;
bad:
	reg_fn_free(f);
	return NULL;
}

/* The persisted form of a snapshot. */
json_t *reg_fn_spec(const struct nxd_function *f)
{
	json_t *vars = json_object(), *tags = json_object();
	for (size_t i = 0; i < f->nenv; i++)
		json_object_set_new(vars, f->env[i].key, json_string(f->env[i].val));
	for (size_t i = 0; i < f->ntags; i++)
		json_object_set_new(tags, f->tags[i].key, json_string(f->tags[i].val));
	const char *codedir = strrchr(f->code_dir, '/');
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:i,s:i,s:{s:o},s:o,s:s,s:I,s:s,s:s,s:s}", "FunctionName", f->name,
	                 "Runtime", f->runtime, "Handler", f->handler, "Role", f->role, "Description",
	                 f->description, "MemorySize", (int)f->memory_mb, "Timeout", (int)f->timeout_s,
	                 "Environment", "Variables", vars, "Tags", tags, "CodeDir", codedir ? codedir + 1 : "",
	                 "CodeSize", (json_int_t)f->code_size, "CodeSha256", f->code_sha256, "LastModified",
	                 f->last_modified, "RevisionId", f->revision_id);
}

/* ------------------------------------------------------ Lambda shapes */

json_t *nxd_fn_tags_json(const struct nxd_function *f)
{
	json_t *t = json_object();
	for (size_t i = 0; i < f->ntags; i++)
		json_object_set_new(t, f->tags[i].key, json_string(f->tags[i].val));
	return t;
}

json_t *nxd_fn_config_json(const struct nxd_function *f)
{
	json_t *vars = json_object();
	for (size_t i = 0; i < f->nenv; i++)
		json_object_set_new(vars, f->env[i].key, json_string(f->env[i].val));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:s,s:i,s:i,s:s,s:s,s:s,s:{s:o},s:{s:s},s:s,s:s,s:s,s:s,"
	                 "s:[s],s:{s:i}}",
	                 "FunctionName", f->name, "FunctionArn", f->arn, "Runtime", f->runtime, "Role", f->role,
	                 "Handler", f->handler, "CodeSize", (json_int_t)f->code_size, "Description", f->description,
	                 "Timeout", (int)f->timeout_s, "MemorySize", (int)f->memory_mb, "LastModified",
	                 f->last_modified, "CodeSha256", f->code_sha256, "Version", "$LATEST", "Environment",
	                 "Variables", vars, "TracingConfig", "Mode", "PassThrough", "RevisionId", f->revision_id,
	                 "State", "Active", "LastUpdateStatus", "Successful", "PackageType", "Zip",
	                 "Architectures", "x86_64", "EphemeralStorage", "Size", 512);
}

