/* Zips a function directory in memory with libzip, for CreateFunction's
 * Code.ZipFile.  Files are added in sorted order with their Unix modes;
 * __pycache__, *.pyc and dot-files are left out (they are build litter). */
#include "zipdir.h"
#include "nexus.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zip.h>

static bool skipped(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || strcmp(name, "__pycache__") == 0 || (n > 4 && strcmp(name + n - 4, ".pyc") == 0);
}

/* Adds everything under dir/rel (rel = "" at the top) to the archive. */
static int add_tree(zip_t *za, const char *dir, const char *rel, size_t *count)
{
    char *path = *rel ? xasprintf("%s/%s", dir, rel) : xstrdup(dir);
    struct dirent **ents;
    int n = scandir(path, &ents, NULL, alphasort);
    if (n < 0) {
        nx_err("cannot read %s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (rc == 0 && !skipped(name)) {
            char *full = xasprintf("%s/%s", path, name);
            char *zname = *rel ? xasprintf("%s/%s", rel, name) : xstrdup(name);
            struct stat st;
            if (stat(full, &st) < 0) {
                nx_warn("skipping %s: %s", full, strerror(errno));
            } else if (S_ISDIR(st.st_mode)) {
                rc = add_tree(za, dir, zname, count);
            } else if (S_ISREG(st.st_mode)) {
                zip_source_t *src = zip_source_file(za, full, 0, -1);
                zip_int64_t idx = src ? zip_file_add(za, zname, src, ZIP_FL_ENC_UTF_8) : -1;
                if (idx < 0) {
                    nx_err("cannot add %s to the zip: %s", full, zip_strerror(za));
                    zip_source_free(src);
                    rc = -1;
                } else {
                    zip_file_set_external_attributes(za, (zip_uint64_t)idx, 0, ZIP_OPSYS_UNIX,
                                                     (zip_uint32_t)(S_IFREG | (st.st_mode & 0777)) << 16);
                    (*count)++;
                }
            }
            free(full);
            free(zname);
        }
        free(ents[i]);
    }
    free(ents);
    free(path);
    return rc;
}

int zip_directory(const char *dir, unsigned char **out, size_t *out_len, size_t *files)
{
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *buf = zip_source_buffer_create(NULL, 0, 0, &ze);
    if (!buf) {
        nx_err("libzip: %s", zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return -1;
    }
    zip_source_keep(buf);   /* survives zip_close so we can read the bytes back */
    zip_t *za = zip_open_from_source(buf, ZIP_TRUNCATE, &ze);
    if (!za) {
        nx_err("libzip: %s", zip_error_strerror(&ze));
        zip_source_free(buf);
        zip_error_fini(&ze);
        return -1;
    }
    *files = 0;
    if (add_tree(za, dir, "", files) < 0) {
        zip_discard(za);
        zip_source_free(buf);
        return -1;
    }
    if (*files == 0) {
        nx_err("%s holds no files to deploy: put the handler's module (e.g. app.py) in it", dir);
        zip_discard(za);
        zip_source_free(buf);
        return -1;
    }
    if (zip_close(za) < 0) {
        nx_err("cannot write the zip of %s: %s", dir, zip_strerror(za));
        zip_discard(za);
        zip_source_free(buf);
        return -1;
    }
    zip_stat_t st;
    int rc = -1;
    if (zip_source_stat(buf, &st) == 0 && zip_source_open(buf) == 0) {
        *out = xmalloc(st.size);
        zip_int64_t got = zip_source_read(buf, *out, st.size);
        zip_source_close(buf);
        if (got == (zip_int64_t)st.size) {
            *out_len = st.size;
            rc = 0;
        } else {
            free(*out);
        }
    }
    if (rc < 0)
        nx_err("cannot read back the zip of %s: %s", dir, zip_error_strerror(zip_source_error(buf)));
    zip_source_free(buf);
    zip_error_fini(&ze);
    return rc;
}
