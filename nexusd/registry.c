/* SPDX-License-Identifier: MIT */
/*
 * Function registry.  Every function is described by a "spec": a JSON object
 * with Lambda's field names (FunctionName, Runtime, Handler, Role,
 * Description, MemorySize, Timeout, Environment, Tags) plus where its code is
 * (CodeDir, CodeSize, CodeSha256) and LastModified/RevisionId.  The spec is
 * what is persisted; reg_fn_from_spec() (registry_spec.c) validates it and derives everything the
 * instance manager needs, so create, update and restart share one path.
 */
#include "registry.h"
#include "registry_priv.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codezip.h"
#include "file_atomic.h"
#include "config.h"
#include "util.h"

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct nxd_function **reg;
static size_t nreg, reg_cap;

/* --------------------------------------------------------------- paths */

static void spec_path(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/functions/%s.json", nxd_cfg.state_dir, name);
}

void nxd_fn_log_path(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/logs/%s.log", nxd_cfg.state_dir, name);
}

int nxd_fn_name_from_arg(const char *arg, char *out, size_t cap)
{
	/* arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER] or ACCOUNT:function:NAME */
	const char *p = strstr(arg, "function:");
	const char *name = p ? p + 9 : arg;
	size_t len = strcspn(name, ":");
	if (len == 0 || len >= cap)
		return -1;
	memcpy(out, name, len);
	out[len] = 0;
	return nxd_valid_name(out) ? 0 : -1;
}

static int persist(const struct nxd_function *f, struct nxd_error *e)
{
	json_t *spec = reg_fn_spec(f);
	char *text = spec ? json_dumps(spec, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	json_decref(spec);
	if (!text)
		return reg_fail(e, 500, "ServiceException", "out of memory");
	char path[4200];
	spec_path(f->name, path, sizeof path);
	int r = nx_write_file_atomic(path, text, strlen(text), 0600, true);
	free(text);
	if (r < 0)
		return reg_fail(e, 500, "ServiceException", "cannot save function: %s: %s", path, strerror(-r));
	return 0;
}

/* ------------------------------------------------------------ registry */

static ssize_t find_locked(const char *name)
{
	for (size_t i = 0; i < nreg; i++)
		if (!strcmp(reg[i]->name, name))
			return (ssize_t)i;
	return -1;
}

static int insert_locked(struct nxd_function *f)
{
	if (nreg == reg_cap) {
		size_t cap = reg_cap ? reg_cap * 2 : 16;
		struct nxd_function **n = realloc(reg, cap * sizeof *n);
		if (!n)
			return -ENOMEM;
		reg = n;
		reg_cap = cap;
	}
	reg[nreg++] = f;
	return 0;
}

struct nxd_function *nxd_fn_get(const char *name)
{
	pthread_mutex_lock(&reg_mu);
	ssize_t i = find_locked(name);
	struct nxd_function *f = i >= 0 ? reg[i] : NULL;
	if (f)
		nxd_fn_ref(f);
	pthread_mutex_unlock(&reg_mu);
	return f;
}

struct nxd_function **nxd_fn_list(size_t *n)
{
	pthread_mutex_lock(&reg_mu);
	struct nxd_function **v = calloc(nreg + 1, sizeof *v);
	*n = 0;
	if (v) {
		for (size_t i = 0; i < nreg; i++) {
			nxd_fn_ref(reg[i]);
			v[i] = reg[i];
		}
		*n = nreg;
	}
	pthread_mutex_unlock(&reg_mu);
	return v;
}

void nxd_fn_list_free(struct nxd_function **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		nxd_fn_unref(v[i]);
	free(v);
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(struct nxd_function *const *)a)->name, (*(struct nxd_function *const *)b)->name);
}

/* Decode Code.ZipFile / ZipFile, extract it into a fresh code directory and
 * record where in spec. */
static int unpack_code(json_t *spec, const char *name, json_t *zipfile, struct nxd_error *e)
{
	if (!json_is_string(zipfile))
		return BAD(e, "Code.ZipFile (base64 zip) is required; S3 and image code locations are not supported");
	size_t zlen = 0;
	uint8_t *zip = nxd_base64_decode(json_string_value(zipfile), json_string_length(zipfile), &zlen);
	if (!zip)
		return BAD(e, "Could not decode ZipFile: it is not valid base64");
	if (zlen > NXD_ZIP_MAX) {
		free(zip);
		return reg_fail(e, 413, "RequestEntityTooLargeException",
		            "Zipped size must be smaller than %u bytes", NXD_ZIP_MAX);
	}
	char rnd[17], dirname[128], dir[4200], why[512];
	nxd_rand_hex(rnd);
	snprintf(dirname, sizeof dirname, "%s.%s", name, rnd);
	if (snprintf(dir, sizeof dir, "%s/code/%s", nxd_cfg.state_dir, dirname) >= (int)sizeof dir) {
		free(zip);
		return reg_fail(e, 500, "ServiceException", "state directory path is too long");
	}
	if (nxd_zip_extract(zip, zlen, dir, why, sizeof why) < 0) {
		free(zip);
		return BAD(e, "%s", why);
	}
	char sha[48], now[40], rev[40];
	nxd_sha256_b64(zip, zlen, sha, sizeof sha);
	free(zip);
	nxd_lambda_time(now, sizeof now);
	nxd_uuid(rev);
	json_object_set_new(spec, "CodeDir", json_string(dirname));
	json_object_set_new(spec, "CodeSize", json_integer((json_int_t)zlen));
	json_object_set_new(spec, "CodeSha256", json_string(sha));
	json_object_set_new(spec, "LastModified", json_string(now));
	json_object_set_new(spec, "RevisionId", json_string(rev));
	return 0;
}

static void discard_code(json_t *spec)
{
	const char *d = json_string_value(json_object_get(spec, "CodeDir"));
	if (d) {
		char dir[4200];
		snprintf(dir, sizeof dir, "%s/code/%s", nxd_cfg.state_dir, d);
		nxd_rm_rf(dir);
	}
}

/* Unpacks `zipfile` into a new code directory recorded in `spec` and makes the function; consumes
 * spec.  NULL with `e` set (and the new directory removed) if either step fails. */
static struct nxd_function *fn_with_new_code(json_t *spec, const char *name, json_t *zipfile,
                                             struct nxd_error *e)
{
	if (unpack_code(spec, name, zipfile, e) < 0) {
		json_decref(spec);
		return NULL;
	}
	struct nxd_function *f = reg_fn_from_spec(spec, e);
	if (!f)
		discard_code(spec);
	json_decref(spec);
	return f;
}

/* Copies the request's members named in keys[] (those present) into spec. */
static void copy_members(json_t *spec, json_t *req, const char *const *keys, size_t nkeys)
{
	for (size_t i = 0; i < nkeys; i++) {
		json_t *v = json_object_get(req, keys[i]);
		if (v)
			json_object_set(spec, keys[i], v);
	}
}

struct nxd_function *nxd_fn_create(json_t *req, struct nxd_error *e)
{
	if (!json_is_object(req)) {
		BAD(e, "request body must be a JSON object");
		return NULL;
	}
	char name[80];
	json_t *jn = json_object_get(req, "FunctionName");
	if (!json_is_string(jn) || nxd_fn_name_from_arg(json_string_value(jn), name, sizeof name) < 0) {
		BAD(e, "FunctionName is missing or invalid: use 1-64 letters, digits, '-' or '_'");
		return NULL;
	}
	struct nxd_function *old = nxd_fn_get(name);
	if (old) {
		nxd_fn_unref(old);
		reg_fail(e, 409, "ResourceConflictException", "Function already exist: %s", name);
		return NULL;
	}
	json_t *pt = json_object_get(req, "PackageType");
	if (pt && json_is_string(pt) && strcmp(json_string_value(pt), "Zip")) {
		BAD(e, "PackageType %.32s is not supported; use Zip", json_string_value(pt));
		return NULL;
	}
	json_t *spec = json_object();
	static const char *const keep[] = {"Runtime", "Handler", "Role", "Description", "MemorySize",
	                                   "Timeout", "Environment", "Tags"};
	copy_members(spec, req, keep, sizeof keep / sizeof keep[0]);
	json_object_set_new(spec, "FunctionName", json_string(name));
	/* Validate everything but the code first, so a bad request costs no unzip. */
	json_object_set_new(spec, "CodeDir", json_string("-"));
	struct nxd_function *probe = reg_fn_from_spec(spec, e);
	if (!probe) {
		json_decref(spec);
		return NULL;
	}
	reg_fn_free(probe);
	json_t *code = json_object_get(req, "Code");
	struct nxd_function *f =
		fn_with_new_code(spec, name, json_is_object(code) ? json_object_get(code, "ZipFile") : NULL, e);
	if (!f)
		return NULL;
	pthread_mutex_lock(&reg_mu);
	if (find_locked(name) >= 0) {
		pthread_mutex_unlock(&reg_mu);
		f->obsolete = true;
		nxd_fn_unref(f);
		reg_fail(e, 409, "ResourceConflictException", "Function already exist: %s", name);
		return NULL;
	}
	if (persist(f, e) < 0 || insert_locked(f) < 0) {
		pthread_mutex_unlock(&reg_mu);
		f->obsolete = true;
		nxd_fn_unref(f);
		if (!e->type)
			reg_fail(e, 500, "ServiceException", "out of memory");
		return NULL;
	}
	nxd_fn_ref(f);
	pthread_mutex_unlock(&reg_mu);
	nxd_info("function %s created (%s, %s, %u MB, %u s)", f->name, f->runtime, f->handler, f->memory_mb,
	         f->timeout_s);
	return f;
}

static void not_found(struct nxd_error *e, const char *name)
{
	reg_fail(e, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:%s:%s:function:%s",
	     nxd_cfg.s3.region, nxd_cfg.account_id, name);
}

/* The spec of the registered function `name` (a new reference), for an update to edit; NULL with
 * a 404 in `e` when there is none. */
static json_t *current_spec(const char *name, struct nxd_error *e)
{
	struct nxd_function *old = nxd_fn_get(name);
	if (!old) {
		not_found(e, name);
		return NULL;
	}
	json_t *spec = reg_fn_spec(old);
	nxd_fn_unref(old);
	return spec;
}

/* Persists `f` and puts it in the place of the registered function `name`.  `new_code`: f brought
 * its own code directory, which is removed if f does not get in and which makes the previous
 * version's obsolete; otherwise the previous version's directory is obsolete only if the code
 * changed meanwhile.  Returns 0 (the registry holds its own reference; the caller keeps its own),
 * or -1 with `e` set and the caller's reference dropped. */
static int replace(const char *name, struct nxd_function *f, bool new_code, struct nxd_error *e)
{
	pthread_mutex_lock(&reg_mu);
	ssize_t i = find_locked(name);
	if (i < 0 || persist(f, e) < 0) {
		pthread_mutex_unlock(&reg_mu);
		if (i < 0)
			not_found(e, name);
		f->obsolete = new_code; /* a new code directory goes with f; a shared one stays */
		nxd_fn_unref(f);
		return -1;
	}
	struct nxd_function *prev = reg[i];
	reg[i] = f;
	nxd_fn_ref(f);
	prev->obsolete = new_code || strcmp(prev->code_dir, f->code_dir) != 0;
	pthread_mutex_unlock(&reg_mu);
	nxd_fn_unref(prev);
	return 0;
}

/* An update that keeps the code: the function made from the edited `spec` (consumed) takes the
 * place of `name`.  NULL with `e` set if the spec is invalid or the function is gone. */
static struct nxd_function *replace_from_spec(const char *name, json_t *spec, struct nxd_error *e)
{
	struct nxd_function *f = reg_fn_from_spec(spec, e);
	json_decref(spec);
	if (!f || replace(name, f, false, e) < 0)
		return NULL;
	return f;
}

struct nxd_function *nxd_fn_update_code(const char *name, json_t *req, struct nxd_error *e)
{
	json_t *spec = current_spec(name, e);
	if (!spec)
		return NULL;
	if (!json_is_object(req)) {
		BAD(e, "request body must be a JSON object");
		json_decref(spec);
		return NULL;
	}
	struct nxd_function *f = fn_with_new_code(spec, name, json_object_get(req, "ZipFile"), e);
	if (!f)
		return NULL;
	if (replace(name, f, true, e) < 0)
		return NULL;
	nxd_info("function %s: code updated (%llu bytes)", name, (unsigned long long)f->code_size);
	return f;
}

struct nxd_function *nxd_fn_update_config(const char *name, json_t *req, struct nxd_error *e)
{
	if (!json_is_object(req)) {
		BAD(e, "request body must be a JSON object");
		return NULL;
	}
	json_t *spec = current_spec(name, e);
	if (!spec)
		return NULL;
	static const char *const keys[] = {"Runtime", "Handler", "Role", "Description", "MemorySize", "Timeout",
	                                   "Environment"};
	copy_members(spec, req, keys, sizeof keys / sizeof keys[0]);
	char now[40], rev[40];
	nxd_lambda_time(now, sizeof now);
	nxd_uuid(rev);
	json_object_set_new(spec, "LastModified", json_string(now));
	json_object_set_new(spec, "RevisionId", json_string(rev));
	struct nxd_function *f = replace_from_spec(name, spec, e);
	if (!f)
		return NULL;
	nxd_info("function %s: configuration updated", name);
	return f;
}

struct nxd_function *nxd_fn_update_tags(const char *name, json_t *set, const char *const *unset, size_t nunset,
                                        struct nxd_error *e)
{
	json_t *spec = current_spec(name, e);
	if (!spec)
		return NULL;
	json_t *tags = json_object_get(spec, "Tags");
	if (json_is_object(set))
		json_object_update(tags, set);
	for (size_t i = 0; i < nunset; i++)
		json_object_del(tags, unset[i]);
	struct nxd_function *f = replace_from_spec(name, spec, e);
	if (!f)
		return NULL;
	nxd_info("function %s: tags updated", name);
	return f;
}

struct nxd_function *nxd_fn_delete(const char *name, struct nxd_error *e)
{
	pthread_mutex_lock(&reg_mu);
	ssize_t i = find_locked(name);
	if (i < 0) {
		pthread_mutex_unlock(&reg_mu);
		not_found(e, name);
		return NULL;
	}
	struct nxd_function *f = reg[i];
	reg[i] = reg[--nreg];
	char path[4200];
	spec_path(name, path, sizeof path);
	unlink(path);
	f->obsolete = true;
	pthread_mutex_unlock(&reg_mu);
	nxd_fn_log_path(name, path, sizeof path);
	unlink(path);
	nxd_info("function %s deleted", name);
	return f; /* the registry's reference becomes the caller's */
}

/* ----------------------------------------------------------- start-up */

static int referenced(const char *codedir)
{
	for (size_t i = 0; i < nreg; i++) {
		const char *d = strrchr(reg[i]->code_dir, '/');
		if (d && !strcmp(d + 1, codedir))
			return 1;
	}
	return 0;
}

int nxd_registry_init(void)
{
	char dir[4200];
	const char *subs[] = {"functions", "code", "logs"};
	for (int i = 0; i < 3; i++) {
		snprintf(dir, sizeof dir, "%s/%s", nxd_cfg.state_dir, subs[i]);
		int r = nxd_mkdir_p(dir);
		if (r < 0) {
			nxd_err("cannot create %s: %s", dir, strerror(-r));
			return -1;
		}
	}
	snprintf(dir, sizeof dir, "%s/functions", nxd_cfg.state_dir);
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json"))
			continue;
		char path[4400];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		json_error_t je;
		json_t *spec = json_load_file(path, 0, &je);
		struct nxd_error e = {0};
		struct nxd_function *f = spec ? reg_fn_from_spec(spec, &e) : NULL;
		json_decref(spec);
		struct stat st;
		if (!f) {
			nxd_warn("ignoring %s: %s", path, spec ? e.message : je.text);
			continue;
		}
		if (stat(f->code_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
			nxd_warn("ignoring function %s: its code directory %s is missing", f->name, f->code_dir);
			nxd_fn_unref(f);
			continue;
		}
		pthread_mutex_lock(&reg_mu);
		if (find_locked(f->name) >= 0 || insert_locked(f) < 0) {
			pthread_mutex_unlock(&reg_mu);
			nxd_fn_unref(f);
			continue;
		}
		pthread_mutex_unlock(&reg_mu);
	}
	closedir(d);
	/* Remove code directories no function refers to (left by a crash). */
	snprintf(dir, sizeof dir, "%s/code", nxd_cfg.state_dir);
	if ((d = opendir(dir))) {
		while ((de = readdir(d))) {
			if (de->d_name[0] == '.' || referenced(de->d_name))
				continue;
			char path[4400];
			if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) < (int)sizeof path)
				nxd_rm_rf(path);
		}
		closedir(d);
	}
	if (nreg)
		qsort(reg, nreg, sizeof *reg, cmp_name);
	nxd_info("registry: %zu function(s) loaded from %s", nreg, nxd_cfg.state_dir);
	return 0;
}

void nxd_registry_shutdown(void)
{
	pthread_mutex_lock(&reg_mu);
	for (size_t i = 0; i < nreg; i++)
		nxd_fn_unref(reg[i]);
	free(reg);
	reg = NULL;
	nreg = reg_cap = 0;
	pthread_mutex_unlock(&reg_mu);
}
