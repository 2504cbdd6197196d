/* kvio.h — the I/O seam: the only door through which the engine touches files.
 * The default (kvio_posix) calls the OS; tests substitute one that tears writes, fails calls
 * with EIO or ENOSPC, and forgets data that was never synced.
 * Every call returns 0 or a negative errno. pwrite writes all of len or fails; short writes
 * and EINTR are the implementation's problem, never the caller's. */
#ifndef KVFS_KVIO_H
#define KVFS_KVIO_H
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct kvio {
	int (*open)(const struct kvio *io, const char *path, int flags, mode_t mode, int *fd_out);
	int (*close)(const struct kvio *io, int fd);
	/* Reads up to len bytes at off; *got < len only at end of file. */
	int (*pread)(const struct kvio *io, int fd, void *buf, size_t len, uint64_t off, size_t *got);
	int (*pwrite)(const struct kvio *io, int fd, const void *buf, size_t len, uint64_t off);
	int (*fdatasync)(const struct kvio *io, int fd);
	int (*ftruncate)(const struct kvio *io, int fd, uint64_t len);
	/* Reserve [off, off+len) so later writes there cannot fail for lack of space. */
	int (*fallocate)(const struct kvio *io, int fd, uint64_t off, uint64_t len);
	int (*fsize)(const struct kvio *io, int fd, uint64_t *size);
	int (*rename)(const struct kvio *io, const char *from, const char *to);
	int (*unlink)(const struct kvio *io, const char *path);
	int (*mkdir)(const struct kvio *io, const char *path, mode_t mode);
	/* Make the directory's entries (creations, renames, removals) durable. */
	int (*fsync_dir)(const struct kvio *io, const char *dir);
	/* Names in dir (not . or ..), each and the array malloc'd; the caller frees them. */
	int (*list_dir)(const struct kvio *io, const char *dir, char ***names, size_t *count);
	/* Advisory lock on an open file, not waiting: exclusive (a writer) or shared (readers);
	 * -EWOULDBLOCK when a conflicting lock is held elsewhere. */
	int (*lock)(const struct kvio *io, int fd, int shared);
	/* Forget the file's cached pages (call it after a successful fdatasync, when none is dirty),
	 * so that the next reads come from the disk: after a failed fdatasync Linux keeps serving
	 * pages that never reached it, and recovery must not take them for durable.
	 * Model: tests/model/failed_sync.pml. */
	int (*drop_cache)(const struct kvio *io, int fd);
	/* Optional (NULL: not offered; callers use pread): pread for a small read at a random
	 * place. When its bytes are not all in the page cache, the kernel is first asked to read
	 * the aligned `around` bytes that hold them, as a fault on a mapped file reads around it;
	 * so a cold store that fits in memory comes in through a few large reads rather than one
	 * 4 KiB read per get. Otherwise as pread. */
	int (*pread_around)(const struct kvio *io, int fd, void *buf, size_t len, uint64_t off,
			    size_t around, size_t *got);
	/* Optional (NULL: not offered; a directory the engine made then stays): remove an empty
	 * directory, -ENOTEMPTY (or -EEXIST) when it holds anything. The removal of its name is
	 * durable once the parent is fsync_dir'd. */
	int (*rmdir)(const struct kvio *io, const char *path);
	void *ctx; /* for the implementation */
};

extern const struct kvio kvio_posix;

/* Helpers built on the seam. */
/* No room: a full disk, or the owner's quota reached. */
static inline int kvio_no_room(int rc)
{
	return rc == -ENOSPC || rc == -EDQUOT;
}
void kvio_free_names(char **names, size_t count);
/* Close a descriptor nothing was written through (or whose writes were already synced): a
 * failed close loses nothing, so it is neither retried (Linux frees the descriptor anyway) nor
 * reported. */
void kvio_close_quiet(const struct kvio *io, int fd);
/* Close a descriptor after work whose result is rc: rc when that already failed, else the
 * close's own result (a failed close after writes may mean they were lost). */
int kvio_close_after(const struct kvio *io, int fd, int rc);
#endif
