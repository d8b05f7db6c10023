/* Whole-file replacement shared by nexusd and the nexus CLI. */
#ifndef NEXUS_COMMON_FILE_ATOMIC_H
#define NEXUS_COMMON_FILE_ATOMIC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * Writes DATA to a temporary file beside PATH and renames it over PATH, so a
 * reader sees the old file or the new one, never half of one.  With DURABLE
 * the data is fsync()ed before the rename (nexusd's registry must survive a
 * crash; the CLI's config and downloads need not pay for that).
 * Returns 0, or -errno with nothing left behind.
 */
int nx_write_file_atomic(const char *path, const void *data, size_t len, mode_t mode, bool durable);

#endif
