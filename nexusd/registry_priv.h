/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by registry.c (the store) and registry_spec.c (spec
 * validation and derivation).  Not an interface for the rest of nexusd.
 */
#ifndef NEXUSD_REGISTRY_PRIV_H
#define NEXUSD_REGISTRY_PRIV_H

#include <jansson.h>
#include "registry.h"

/* Fill e (HTTP status, Lambda error type, message); returns -1. */
int reg_fail(struct nxd_error *e, int http, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
#define BAD(e, ...) reg_fail(e, 400, "InvalidParameterValueException", __VA_ARGS__)

/* Validate a spec and build a snapshot (1 reference) from it; NULL + e. */
struct nxd_function *reg_fn_from_spec(json_t *spec, struct nxd_error *e);
/* The persisted form of a snapshot. */
json_t *reg_fn_spec(const struct nxd_function *f);
/* Free a snapshot (refs already 0); removes its code if obsolete. */
void reg_fn_free(struct nxd_function *f);

#endif
