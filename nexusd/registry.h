/* SPDX-License-Identifier: MIT */
/*
 * The function registry: every deployed function's configuration and code,
 * persisted under <state-dir>/functions/<name>.json with the extracted code in
 * <state-dir>/code/<name>.<random>/ so that a restart keeps them.
 *
 * A struct nxd_function is an immutable, reference-counted snapshot: an
 * update publishes a new snapshot and the old one lives on while instances
 * started from it still hold it (its code directory is removed with the last
 * reference).  Lookups are thread-safe.
 */
#ifndef NEXUSD_REGISTRY_H
#define NEXUSD_REGISTRY_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "sandbox.h"

struct nxd_kv {
	char *key, *val;
};

struct nxd_function {
	atomic_int refs;
	uint64_t gen;                 /* unique per snapshot; instances of older ones retire */
	char name[65];
	char runtime[32];
	char handler[128];
	char role[256];
	char description[256];
	unsigned memory_mb, timeout_s;
	struct nxd_kv *env; size_t nenv;
	struct nxd_kv *tags; size_t ntags;
	char code_dir[4096];          /* absolute path of the extracted code */
	uint64_t code_size;           /* bytes of the zip */
	char code_sha256[48];         /* base64 */
	char last_modified[40];
	char revision_id[40];

	/* Derived from the above at load time. */
	enum nx_mode mode;
	const struct nx_sandbox_driver *driver;
	bool vm_snapshot;             /* vm: cold starts from a function snapshot (nexus:snapshot) */
	unsigned max_instances;
	char **buckets;               /* NULL-terminated allow-list */
	char **envp;                  /* sandbox environment, NULL-terminated */
	const char *argv[4];          /* sandbox command */
	char *ready_meta;             /* READY completion meta JSON */
	char arn[160];

	bool obsolete;                /* replaced or deleted: remove code_dir when freed */
};

int  nxd_registry_init(void);     /* loads <state-dir>/functions/ */
void nxd_registry_shutdown(void);

/* Returns a new reference or NULL. */
struct nxd_function *nxd_fn_get(const char *name);
void nxd_fn_ref(struct nxd_function *f);
void nxd_fn_unref(struct nxd_function *f);

/* A snapshot of every function (new references); free with nxd_fn_list_free. */
struct nxd_function **nxd_fn_list(size_t *n);
void nxd_fn_list_free(struct nxd_function **v, size_t n);

/* Lambda-shaped FunctionConfiguration / Tags objects (new references). */
json_t *nxd_fn_config_json(const struct nxd_function *f);
json_t *nxd_fn_tags_json(const struct nxd_function *f);

/* Errors carry the HTTP status and Lambda error type for the API layer. */
struct nxd_error {
	int http;
	const char *type;             /* e.g. "InvalidParameterValueException" */
	char message[512];
};

/* CreateFunction: req is the parsed request body.  On success returns a new
 * reference to the published function. */
struct nxd_function *nxd_fn_create(json_t *req, struct nxd_error *err);
/* UpdateFunctionCode. */
struct nxd_function *nxd_fn_update_code(const char *name, json_t *req, struct nxd_error *err);
/* UpdateFunctionConfiguration (Handler, Runtime, MemorySize, Timeout,
 * Environment, Description, Role). */
struct nxd_function *nxd_fn_update_config(const char *name, json_t *req, struct nxd_error *err);
/* TagResource / UntagResource: set and remove tags (nexus:* tags take
 * effect for new instances; running ones retire). */
struct nxd_function *nxd_fn_update_tags(const char *name, json_t *set, const char *const *unset, size_t nunset,
                                        struct nxd_error *err);
/* DeleteFunction: returns the removed snapshot (reference) or NULL. */
struct nxd_function *nxd_fn_delete(const char *name, struct nxd_error *err);

/* Lambda-style tag lookup; NULL when absent. */
const char *nxd_fn_tag(const struct nxd_function *f, const char *key);

/* The sandbox driver called name ("process", "vm"), or NULL when this
 * nexusd has none by that name. */
const struct nx_sandbox_driver *nxd_sandbox_driver(const char *name);
extern const char *nxd_default_sandbox;   /* "vm" where real guests run, else "process" */

/* Where the per-function log lives. */
void nxd_fn_log_path(const char *name, char *out, size_t cap);

/* Accept "name", a function ARN or a partial ARN; copy the bare name into out.
 * Returns 0 or -1 when it is not a valid name. */
int nxd_fn_name_from_arg(const char *arg, char *out, size_t cap);

#endif
