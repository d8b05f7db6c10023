#ifndef NEXUS_CLI_ZIPDIR_H
#define NEXUS_CLI_ZIPDIR_H
#include <stddef.h>
/* Zips the tree under dir into a malloc'd buffer.  Prints what failed; -1 on error. */
int zip_directory(const char *dir, unsigned char **out, size_t *out_len, size_t *files);
#endif
