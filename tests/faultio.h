/* faultio.h — a simulated disk behind the engine's I/O seam (struct kvio), for tests.
 *
 * An in-memory filesystem that remembers, besides what a reader sees now, what a power cut
 * would leave: each file's durable contents (as of its last successful fdatasync) and each
 * directory's durable entries (as of its last fsync_dir). faultio_crash() turns the disk into
 * what survives a crash; fault injection fails chosen calls, cuts writes short, fills the disk,
 * or freezes the "process" at any call number so a crash can be simulated there.
 *
 * The model, precisely:
 * - Paths are absolute ("/sim/store/wal-1.log"); "." and ".." are resolved by name; "/" always
 *   exists. A relative path is -EINVAL. Names over NAME_MAX, paths over PATH_MAX:
 *   -ENAMETOOLONG. Files are at most FIO_MAX_FILE bytes (-EFBIG beyond).
 * - File data: every pwrite, ftruncate, O_TRUNC and size-extending fallocate since the last
 *   successful fdatasync is an unsynced event of the file. A successful fdatasync makes the
 *   current contents and size durable. The file's name is NOT made durable by fdatasync.
 * - Failed fdatasync (like Linux): the file's unsynced writes are marked clean but not durable.
 *   Readers still see their bytes (they are in the page cache, and stay there across
 *   FIO_CRASH_KILL), but no later fdatasync and no power-loss mode ever puts those bytes into
 *   the durable contents; only the file length they implied can become durable (the region
 *   then reads as the old durable bytes or zeros). Truncations and extensions stay pending and
 *   a later successful fdatasync makes them durable.
 * - Directory entries: mkdir, rmdir, creating open, unlink and rename change the current entries at
 *   once and queue the change for durability. fsync_dir(D) (or fdatasync on an fd of D) makes
 *   every queued change of D durable, in the order they happened. A rename between two
 *   directories is one atomic change: it becomes durable only once BOTH directories have been
 *   fsync'd after it (in either order); until then a crash leaves the file under its old name
 *   only. Changes of a directory queued after such a rename wait behind it (each directory's
 *   changes become durable in order). A new directory's own entries need fsync_dir of the new
 *   directory; its name needs fsync_dir of its parent. A failed fsync_dir changes nothing and
 *   leaves the changes queued, so a later fsync_dir can still make them durable.
 * - fds are numbers from FIO_FD_BASE up, lowest free first; never real OS descriptors. Each open
 *   is its own open file description. unlink of an open file keeps the inode for its fds.
 * - drop_cache forgets cached pages: what a reader sees becomes the durable contents with the
 *   unsynced events replayed on top, except writes lost to a failed fdatasync, whose bytes go
 *   (the old durable bytes, or zeros past the durable size, show through) — as Linux's
 *   page cache serves such pages until they are dropped.
 * - lock is flock-like: an exclusive lock belongs to one fd; locking an inode held through
 *   another fd is -EWOULDBLOCK; close and crash release it.
 * - fallocate behaves as posix_fallocate: it extends the size to off+len when that is larger
 *   (so a file's allocated size is its size); len 0 is -EINVAL.
 * - Capacity: the sum of the sizes of all files that are named or open may not exceed it;
 *   growth past it by pwrite, ftruncate, fallocate is -ENOSPC and changes nothing. Unlinking
 *   (once closed) frees the space. Shrinking never fails. Names cost nothing.
 * - Read-only fds refuse pwrite (-EBADF) and ftruncate (-EINVAL); write-only fds refuse pread
 *   (-EBADF). Directories open O_RDONLY only (-EISDIR otherwise); pread on them is -EISDIR.
 *
 * Thread safety: every function takes one mutex, so the engine may call from any thread.
 * faultio_compare locks both disks in address order. faultio_destroy must not race anything. */
#ifndef KVFS_TESTS_FAULTIO_H
#define KVFS_TESTS_FAULTIO_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "kvio.h"

#define FIO_FD_BASE 4096                /* above the default fd limit: a stray close() is harmless */
#define FIO_MAX_FILE (1ull << 30)
#define FIO_SECTOR 512u

struct faultio;                          /* opaque */

enum fio_op {
	FIO_OP_OPEN,
	FIO_OP_CLOSE,
	FIO_OP_PREAD,
	FIO_OP_PWRITE,
	FIO_OP_FDATASYNC,
	FIO_OP_FTRUNCATE,
	FIO_OP_FALLOCATE,
	FIO_OP_FSIZE,
	FIO_OP_RENAME,
	FIO_OP_UNLINK,
	FIO_OP_MKDIR,
	FIO_OP_FSYNC_DIR,
	FIO_OP_LIST_DIR,
	FIO_OP_LOCK,
	FIO_OP_DROP_CACHE,
	FIO_OP_RMDIR,
	FIO_OP_ANY,                      /* every call, whatever its op; also the number of ops */
};

/* What survives faultio_crash. The power-loss modes (all but FIO_CRASH_KILL) revert the
 * namespace to the durable directory entries (names never fsync_dir'd vanish, so do inodes left
 * without a name) and start each file from its durable contents; the mode says what happens to
 * the file's unsynced events on top of that. Afterwards current == durable everywhere. */
enum fio_crash {
	FIO_CRASH_DROP,    /* power loss: unsynced data and size changes lost */
	FIO_CRASH_KEEP,    /* power loss after data writeback: unsynced events kept, in order */
	FIO_CRASH_TEAR,    /* as KEEP, but each file's last unsynced write persists only up to a
			    * seed-chosen 512-byte sector boundary (possibly none of it), and
			    * nothing of that file after it */
	FIO_CRASH_ZERO,    /* as KEEP, but every unsynced written range reads as zeros */
	FIO_CRASH_GARBAGE, /* as KEEP, but every unsynced written range holds seeded random bytes */
	FIO_CRASH_KILL,    /* kill -9 of the process, the kernel survives: the disk is untouched,
			    * unsynced data and names stay visible and stay unsynced (a later
			    * power-loss crash can still lose them); only the process's state goes */
};

/* Which state faultio_compare and faultio_read_durable look at. */
enum fio_view {
	FIO_VIEW_CURRENT, /* what readers see now */
	FIO_VIEW_DURABLE, /* what FIO_CRASH_DROP would leave */
};

/* Lifecycle. A new disk holds only "/". */
int  faultio_create(struct faultio **out);
void faultio_destroy(struct faultio *f);
/* The seam over this disk; its ctx points to f. Valid until faultio_destroy. */
const struct kvio *faultio_kvio(struct faultio *f);

/* A crash and restart, see enum fio_crash; seed picks tear points and garbage. In every mode
 * the process's state goes: every fd becomes invalid for good (-EBADF; new fds never reuse
 * the numbers), locks are released, every fault (faultio_fail, faultio_short_write,
 * faultio_crash_at) is cleared. Counters, capacity and the list seed stay. The same faultio
 * (and its kvio) can then be handed to the engine to recover. -ENOMEM leaves it unchanged. */
int faultio_crash(struct faultio *f, enum fio_crash mode, uint64_t seed);

/* Faults. Calls are counted in the order they happen, from 1, per op and in total (every call
 * counts, failed ones too). Precedence: faultio_crash_at, then faultio_fail, then
 * faultio_short_write. An injected error changes nothing, except that a failed close still
 * releases the fd (as on Linux) and a failed fdatasync marks the file's unsynced writes clean
 * but never durable (see the model above). err must be a negative errno. */
int faultio_fail(struct faultio *f, enum fio_op op, uint64_t nth, int err, bool persistent);
/* The nth pwrite stores only its first keep_bytes (as unsynced data), then returns err. */
int faultio_short_write(struct faultio *f, uint64_t nth_pwrite, size_t keep_bytes, int err);
/* From the call numbered call_no on (as faultio_calls counts), every call returns -EIO and
 * changes nothing: the process is as good as dead. Follow with faultio_crash. 0: off. */
void faultio_crash_at(struct faultio *f, uint64_t call_no);
void faultio_clear_faults(struct faultio *f);
/* While paused, calls are neither counted nor faulted: a test reads a store's state back
 * (which does I/O, since values live in the log) without moving its crash and fault schedule.
 * Reads change nothing on disk, so nothing is missed by not crashing inside them. */
void faultio_pause(struct faultio *f, bool paused);
/* Total bytes of named or open files may not exceed bytes; 0 = unlimited (the default). */
void faultio_set_capacity(struct faultio *f, uint64_t bytes);
/* list_dir order: seed 0 = sorted by name (the default), else a seeded shuffle per call, to
 * catch code that depends on directory order. */
void faultio_set_list_seed(struct faultio *f, uint64_t seed);

/* Counters (op may be FIO_OP_ANY). faultio_fail compares against them, so resetting them
 * re-arms its rules. */
uint64_t faultio_count(struct faultio *f, enum fio_op op);
uint64_t faultio_calls(struct faultio *f);
void     faultio_reset_counts(struct faultio *f);
const char *faultio_op_name(enum fio_op op);

/* Direct access for tests: not counted, no faults, no capacity limit. The helpers that change
 * the disk act like an outside tool that syncs: data they write is durable at once, and names
 * they create or remove are made durable with fsync_dir of the parent. Meant for a quiet disk
 * (before the engine opens it, or after faultio_crash). */
/* The current contents, malloc'd with one extra NUL byte (not counted in *len). */
int faultio_read_file(struct faultio *f, const char *path, void **data, size_t *len);
/* The durable contents under the durable name: what FIO_CRASH_DROP would leave there. */
int faultio_read_durable(struct faultio *f, const char *path, void **data, size_t *len);
/* Create or replace a file (parent must exist) with data. */
int faultio_write_file(struct faultio *f, const char *path, const void *data, size_t len);
/* Overwrite bytes in place, in both the current and the durable contents, like media damage;
 * [off, off+len) must lie inside the current size (-EINVAL otherwise). */
int faultio_overwrite(struct faultio *f, const char *path, uint64_t off, const void *data,
		      size_t len);
int faultio_flip(struct faultio *f, const char *path, uint64_t off, uint8_t xor_mask);
/* Set the size of both the current and the durable contents. */
int faultio_truncate(struct faultio *f, const char *path, uint64_t len);
/* Remove a file or an empty directory. */
int faultio_remove(struct faultio *f, const char *path);
/* mkdir -p. */
int faultio_mkdirs(struct faultio *f, const char *path);
bool faultio_exists(struct faultio *f, const char *path);
int faultio_stat(struct faultio *f, const char *path, bool *is_dir, uint64_t *size);
/* 1 when path's name (every component) and, for a file, its contents are durable; for a
 * directory also all its entries. 0 when not, -errno when path does not resolve. */
int faultio_is_durable(struct faultio *f, const char *path);
/* Current names in dir, sorted; free with faultio_free_names (or kvio_free_names). */
int  faultio_list(struct faultio *f, const char *dir, char ***names, size_t *count);
void faultio_free_names(char **names, size_t count);
/* A new disk with the same state: namespace and contents (current and durable), unsynced
 * events, queued directory changes, capacity and list seed. No fds, faults or counts: the
 * copy is the disk, not the process. A crash with the same mode and seed gives both the same
 * result. */
int faultio_clone(struct faultio *f, struct faultio **out);
/* 0 when both disks hold the same tree (names, types, file contents) in the given view,
 * 1 when not (why, if not NULL, names the first difference), -ENOMEM. */
int faultio_compare(struct faultio *a, struct faultio *b, enum fio_view view, char *why,
		    size_t whylen);
#endif
