/* futil.h — the few directory operations replication needs around the store: removing a
 * directory tree, making a directory's entries durable. 0 or a negative errno. */
#ifndef KVFS_REPL_FUTIL_H
#define KVFS_REPL_FUTIL_H
#include <stddef.h>

/* rm -rf without following symlinks; a missing path is fine. */
int futil_rmtree(const char *path);
/* fsync the directory, so that the creations, renames and removals in it are durable. */
int futil_sync_dir(const char *dir);
/* "%s/%s" into buf: -ENAMETOOLONG when it does not fit. */
int futil_join(char *buf, size_t len, const char *dir, const char *name);
#endif
