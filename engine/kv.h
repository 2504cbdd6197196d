/* kv.h — the kvfs store: the engine's public interface, used by kv_cli and the FUSE layer.
 *
 * A store is a directory holding a LOCK file, log segments and checkpoints. The log is the
 * value store: every write is one log record (one LSN) carrying its bytes, and the bytes stay
 * there; memory holds only the index (keys, metadata, and where each value's bytes are in the
 * log). A checkpoint writes that index down so that recovery replays only the log after it; a
 * cleaner copies the live bytes out of mostly dead segments so that space comes back. Every
 * write is applied in LSN order, visible to readers as soon as the call returns, and durable once
 * a flush covering it returns (see docs/DURABILITY.md, docs/DESIGN.md).
 *
 * Thread safety: every function may be called from any thread, except kv_close.
 * Errors: 0 or a negative errno. After a failed write or fdatasync of the log every write
 * returns -EROFS and every flush the original error, until the store is reopened. Failing to
 * create a new log segment (no space to preallocate it, an error writing its header) fails only
 * the write that needed it, before anything of it is logged: the log is untouched. */
#ifndef KVFS_KV_H
#define KVFS_KV_H
#include <stddef.h>
#include <stdint.h>
#include "kvio.h"

#define KV_MAX_KEY 4096u
#define KV_MAX_META 1024u
#define KV_MAX_VALUE (1ull << 40)  /* 1 TiB: the largest value (file) */
#define KV_MAX_WRITE (1ull << 30)  /* 1 GiB: the most one PUT or one write may carry */

#define KV_VERSION "0.2.0"

enum kv_sync {
	KV_SYNC_BATCH,  /* default: a background flush at most commit_ms after a write */
	KV_SYNC_ALWAYS, /* every write returns only once durable */
	KV_SYNC_NONE,   /* durable only at explicit flushes, snapshots and close */
};

enum kv_recovery {
	KV_RECOVERY_STRICT,        /* damage other than a torn tail: refuse to open */
	KV_RECOVERY_POINT_IN_TIME, /* what kv_salvage keeps, without a separate step */
};

/* Long work, for progress reports. */
enum kv_work {
	KV_WORK_RECOVERY,   /* opening: reading the log after the checkpoint (bytes) */
	KV_WORK_CHECKPOINT, /* writing a checkpoint (keys) */
	KV_WORK_CLEANER,    /* a cleaner pass moving live bytes (bytes) */
	KV_WORK_CHECK,      /* kv_check reading every value byte (bytes) */
	KV_WORK_BACKUP,     /* kv_backup copying files (bytes) */
	KV_WORK_SALVAGE,    /* kv_salvage reading every value byte, after its recovery (bytes) */
};
#define KV_WORK_KINDS (KV_WORK_SALVAGE + 1)
/* Called from the thread doing the work: once at its start (done 0), about a hundred times
 * along, once at its end with end set (done == total when it completed, less when it failed).
 * Never under a lock that a write or a read waits on (apply_mu, the index lock): a slow hook
 * slows only the work it reports on (a checkpoint holds only its own mutex; on a full disk a
 * write that needs that checkpoint waits for it anyway). */
struct kv_progress {
	void (*fn)(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end);
	void *arg;
};

struct kv_options {
	enum kv_sync sync;
	unsigned commit_ms;          /* batch mode's flush bound */
	uint64_t checkpoint_bytes;   /* automatic checkpoint once the log since the last one is this big */
	uint64_t segment_bytes;      /* log segment size (preallocated) */
	enum kv_recovery recovery;
	int cleaner;                 /* 1: reclaim space in the background (the default) */
	int read_only;               /* change nothing on disk; writes fail with -EROFS */
	const struct kvio *io;       /* NULL: kvio_posix */
	/* What an operator must know that no call returns to anyone: a failed background flush
	 * (the switch to read-only), a failed automatic checkpoint, a damaged read. NULL: one line
	 * on stderr. The recovery report is not logged: kv_open returns it in kv_report for the
	 * caller to print. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
	/* Long work's progress, for a terminal or a log (fn NULL: none). */
	struct kv_progress progress;
};

void kv_options_default(struct kv_options *o);
/* The store's options, one row each, for the programs' option parsing and --help. */
struct kv_option_desc {
	const char *name;
	const char *values;  /* e.g. "batch|always|none", "N (bytes, K/M/G/T)" */
	const char *help;
};
const struct kv_option_desc *kv_option_table(size_t *n);
/* Parse "name=value[,name=value...]" into o. Unknown names or bad values: -EINVAL with a reason
 * in err (naming the option and, for a number, its range). */
int kv_options_parse(struct kv_options *o, const char *opts, char *err, size_t errlen);
/* 1 when name (of length len) is one of the store's options. */
int kv_option_known(const char *name, size_t len);
const char *kv_sync_name(enum kv_sync s);

/* What went wrong opening, checking or salvaging a store: data (a kind, a file, an offset, an
 * errno). The programs turn it into words in one place (mount/report.c). */
enum kv_problem {
	KV_PROBLEM_NONE,
	KV_PROBLEM_DIR,         /* the store directory cannot be created (err), or, read-only,
				 * does not exist */
	KV_PROBLEM_LOCKED,      /* another process holds the store (holder: its pid as text, or "") */
	KV_PROBLEM_FILE,        /* a store file cannot be read or written (file, err) */
	KV_PROBLEM_DAMAGE,      /* damage (damage, damage_file, damage_offset) */
	KV_PROBLEM_NOT_A_STORE, /* the directory holds files but none of a store's (file: one of
				 * them); a store is made only in a missing or empty directory */
};

enum kv_damage {
	KV_DAMAGE_NONE,
	KV_DAMAGE_BAD_RECORD,        /* a bad record that valid records follow (and it is no hole) */
	KV_DAMAGE_BAD_HEADER,        /* a bad segment header that valid data follows */
	KV_DAMAGE_LSN_GAP,           /* a record whose LSN is not the previous one's + 1 */
	KV_DAMAGE_SEGMENT_GAP,       /* a segment that does not start where the log before it ended */
	KV_DAMAGE_CHECKPOINT_GAP,    /* the log starts after the checkpoint's LSN + 1 */
	KV_DAMAGE_MISSING_RECORDS,   /* damage took records the checkpoint does not hold */
	KV_DAMAGE_MALFORMED,         /* a record whose checksums hold but whose payload does not parse */
	KV_DAMAGE_UNKNOWN_TYPE,      /* a record of a type this version does not know */
	KV_DAMAGE_SEGMENT_VERSION,   /* a log segment of another format version */
	KV_DAMAGE_CHECKPOINT,        /* a damaged checkpoint */
	KV_DAMAGE_CHECKPOINT_VERSION,/* a checkpoint of another format version */
	KV_DAMAGE_FORMAT_1,          /* a store of kvfs 0.1's format, not read by this version */
	KV_DAMAGE_LOST_VALUES,       /* values still have bytes where the log is lost (lost_keys) */
	KV_DAMAGE_VALUE_BYTES,       /* kv_check: value bytes that fail their checksum */
	KV_DAMAGE_LOG_END_LOST,      /* the log ends before the checkpoint's LSN: what followed it
				      * is gone (a missing last segment, synced records lost) */
};

struct kv_report {
	enum kv_problem problem;
	int err;                    /* KV_PROBLEM_DIR, _FILE: the negative errno */
	char file[256];             /* KV_PROBLEM_FILE: the file, in the store directory */
	char holder[32];            /* KV_PROBLEM_LOCKED */
	uint64_t snapshot_lsn;      /* the checkpoint's LSN; 0: no checkpoint */
	uint64_t snapshot_keys;
	uint64_t records_replayed;  /* log records applied after the checkpoint */
	uint64_t segments;
	uint64_t last_lsn;
	uint64_t tail_bytes_cut;    /* torn or zero tail removed from the last segment */
	int tail_torn;              /* it held non-zero bytes (a torn write), not just
				     * preallocated zeros */
	uint64_t tail_torn_bytes;   /* of tail_bytes_cut, up to the last non-zero byte */
	uint64_t tail_offset;       /* where it started */
	char tail_file[256];
	int log_marked;             /* the log read ends in a close mark (or holds no record after
				     * the checkpoint): with nothing cut, a clean close vouches for
				     * every record; without, nothing vouches for the last ones */
	/* damage in records the checkpoint already holds: reported, not needed, loses nothing unless
	 * values have bytes there (then also lost_keys) */
	uint64_t covered_damage;    /* places found */
	char covered_file[256];     /* the first */
	uint64_t covered_offset;
	uint64_t bytes_checksummed; /* bytes recovery ran a CRC over (its work, bounded by tests) */
	int damaged;                /* damage other than a torn tail was found */
	enum kv_damage damage;      /* the first (the one that decided) */
	char damage_file[256];
	uint64_t damage_offset;
	int salvaged;               /* salvage kept what the damage left provable (kv_salvage) */
	unsigned set_aside;         /* files moved (or copied) aside by salvage */
	uint64_t files_removed;     /* segments and checkpoints the newest checkpoint made unneeded */
	/* keys whose bytes are lost (a segment the checkpoint references gone, damage where values
	 * still have bytes): their reads fail with EIO. The first of them. */
	uint64_t lost_keys;
	char lost_key[256];
	/* salvage of a checkpoint with damaged entries: the entries lost with their keys (the
	 * header's count less those whose checksums hold; also counted in lost_keys), and the keys
	 * the first damaged place lies between (has_after 0: before the first key; has_before 0:
	 * to the end). A key written again in the log after the checkpoint is back. */
	uint64_t ckpt_lost_entries;
	int ckpt_lost_has_after, ckpt_lost_has_before;
	char ckpt_lost_after[256], ckpt_lost_before[256];
	/* salvage of a checkpoint whose header (its count and salt) is damaged: the LSN is the
	 * name's, the entries that check are kept (snapshot_keys); lost_unknown: some may be lost,
	 * how many is unknown (ckpt_lost_entries stays 0) */
	int ckpt_header_damaged, ckpt_lost_unknown;
	/* kv_check reads every value byte: keys whose bytes failed their checksum, the first one */
	uint64_t data_damaged_keys;
	char data_damage_key[256];
	/* value bytes that fail their checksum in a cleaner's copy whose RELOCATE record lies after
	 * the newest checkpoint (a pending relocation), read back from the segment they were copied
	 * from, where they check: nothing lost, but the disk damaged written bytes (DURABILITY 4.4).
	 * Keys whose every damaged byte there was read back so (a key with bytes that could not be
	 * is counted in data_damaged_keys and lost_keys instead), the first of them, and its first
	 * failing chunk: the copy's segment and the chunk's offset in it. Strict open, kv_check and
	 * salvage fill it alike, and every open does again until a checkpoint covers the record
	 * (then it is covered damage). */
	uint64_t reloc_damaged_keys;
	char reloc_damage_key[256];
	char reloc_damage_file[256];
	uint64_t reloc_damage_offset;
	/* salvage that failed while copying damaged files aside (a full disk; file, err say which
	 * and why): the bytes its copies need free (0: unknown), and 1 when it took away every
	 * copy it had begun, so that nothing on disk was changed */
	uint64_t aside_bytes;
	int aside_unchanged;
};

struct kv;

/* Creates dir (0700) when missing, takes the lock, recovers. -EWOULDBLOCK when another process
 * (or another kv_open) holds the store; -EUCLEAN for damage in strict mode. rep may be NULL. */
int kv_open(struct kv **out, const char *dir, const struct kv_options *o, struct kv_report *rep);
/* Flushes, stops background work, releases everything; returns the flush result. */
int kv_close(struct kv *s);
/* For a program that opened a store and then failed before using it (a mount that could not be
 * made): when this open created the store and nothing was written to it since, closes it and
 * removes it — its files, and the directory when the open made it — as a refused open would,
 * so that the disk is left as it was found; returns 0. Otherwise it is kv_close: a store that
 * was there, or holds a write, stays. */
int kv_abandon(struct kv *s);

/* Verify without changing anything: 0 clean (maybe with a torn tail), -EUCLEAN damaged.
 * io NULL: kvio_posix; progress may be NULL. */
int kv_check(const char *dir, const struct kvio *io, const struct kv_progress *progress,
	     struct kv_report *rep);
/* Keep what the damage left provable and set damaged files aside as NAME.damaged (then
 * NAME.damaged-2, -3, ... if taken), never deleting them. What is kept depends on the damage
 * (DURABILITY 4.4): damaged framing of a log record costs every record after it; value bytes
 * that fail their chunk checksums cost only the keys holding them; a damaged checkpoint entry
 * costs its key, a damaged checkpoint header only the entries that cannot be proven; the log
 * after the checkpoint is replayed in every case. rep says what was lost. */
int kv_salvage(const char *dir, const struct kvio *io, const struct kv_progress *progress,
	       struct kv_report *rep);

/* An atomic group of operations: one log record under one LSN, so after a crash either all of
 * it or none of it is there. Operations apply in order; one whose precondition does not hold
 * when it runs (renaming an absent key, say) is skipped the same way live and on replay.
 * The data given to kv_batch_put and kv_batch_write is not copied: it must stay valid and
 * unchanged until kv_apply returns or the batch is freed. */
struct kv_batch;
int  kv_batch_new(struct kv_batch **out);
void kv_batch_free(struct kv_batch *b);
int  kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen,
		  const void *val, uint64_t vlen);
int  kv_batch_del(struct kv_batch *b, const void *key, size_t klen);
int  kv_batch_write(struct kv_batch *b, const void *key, size_t klen, uint64_t off, const void *data,
		    uint64_t len);
int  kv_batch_truncate(struct kv_batch *b, const void *key, size_t klen, uint64_t size);
/* Make [off, off + len) a hole (reads as zeros, holds no space); the size stays. */
int  kv_batch_punch(struct kv_batch *b, const void *key, size_t klen, uint64_t off, uint64_t len);
int  kv_batch_setmeta(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen);
int  kv_batch_rename(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen);
int  kv_batch_rename_prefix(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen);
/* Log and apply. lsn_out (may be NULL) gets the record's LSN. */
int  kv_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out);

/* A batch as one self-contained byte string, to carry it to another store (a replicated log):
 * exactly the log record payload it would become (docs/FORMAT.md section 4), data and chunk
 * checksums included. kv_batch_encoded_len is its length; kv_batch_encode writes it into dst,
 * which must hold exactly that many bytes (-EINVAL otherwise). */
uint64_t kv_batch_encoded_len(const struct kv_batch *b);
int  kv_batch_encode(const struct kv_batch *b, void *dst, uint64_t len);
/* The batch such bytes stand for. -EBADMSG when they are malformed or a data chunk fails its
 * checksum (bytes damaged on the way); -EINVAL for an operation that means something only to
 * the store that logged it (the cleaner's RELOCATE names that store's segments). The batch
 * refers to data inside buf: buf must stay valid and unchanged until the batch is freed. */
int  kv_batch_decode(struct kv_batch **out, const void *buf, uint64_t len);

/* One-operation conveniences. kv_del: -ENOENT when absent (nothing logged). kv_write,
 * kv_truncate, kv_setmeta: -ENOENT when absent. */
int kv_put(struct kv *s, const void *key, size_t klen, const void *val, uint64_t vlen);
int kv_del(struct kv *s, const void *key, size_t klen);
int kv_write(struct kv *s, const void *key, size_t klen, uint64_t off, const void *data, uint64_t len);
int kv_truncate(struct kv *s, const void *key, size_t klen, uint64_t size);
int kv_setmeta(struct kv *s, const void *key, size_t klen, const void *meta, size_t mlen);

/* Reads may wait for the disk (value bytes are read from the log), never for a flush or another
 * writer. A log read whose checksum does not match fails with -EIO (and is logged); it never
 * returns wrong bytes. kv_get: a malloc'd copy of the value (NUL-terminated for convenience,
 * not counted in vlen). */
int kv_get(struct kv *s, const void *key, size_t klen, void **val, uint64_t *vlen);
int kv_read(struct kv *s, const void *key, size_t klen, uint64_t off, void *buf, size_t len, size_t *got);
/* Size and metadata (copied into meta, up to *mlen bytes; *mlen set to its length). */
int kv_stat(struct kv *s, const void *key, size_t klen, uint64_t *size, void *meta, size_t *mlen);
/* The value's bytes that hold data (holes excluded): what st_blocks counts. */
int kv_allocated(struct kv *s, const void *key, size_t klen, uint64_t *bytes);
/* Of [off, off + len) of the value, the bytes that hold data (holes and bytes past its end
 * excluded). */
int kv_allocated_range(struct kv *s, const void *key, size_t klen, uint64_t off, uint64_t len,
		       uint64_t *bytes);

/* Promised space (posix_fallocate through the mount; engine/space.h says how it is held).
 * Counts are log bytes. kv_promise_cost: the log bytes that writing `bytes` file bytes may take
 * in records of at least a page each, with the key and a metadata blob of the given lengths in
 * every record, and segments of a chunk (engine/space.c); linear in bytes but for the pages, so
 * that writes consume their share of it.
 * kv_promise: promise `bytes` more, held on the disk before it returns; -ENOSPC (nothing
 * promised) when the disk has no room for them beside the promises already made.
 * kv_promise_release: those bytes are no longer promised; their room goes back to the disk.
 * kv_promise_set: the count at mount, from its owner's records (-ENOSPC: set, but the disk
 * could not hold it all: the disk filled while the store was closed; the rest is held as room
 * comes back). kv_apply_promised: kv_apply of a write that consumes up to `promised` of them:
 * it may use their room when the disk has no other, and on success they are no longer
 * promised (on failure nothing changed). kv_promise_stats: the count, and what the disk holds
 * for it (less only after kv_promise_set's -ENOSPC or a failed give-back). */
uint64_t kv_promise_cost(uint64_t bytes, size_t klen, size_t mlen);
#define KV_PROMISE_SLACK 4160u /* what a promise for a new range adds once: a block, a segment header */
int  kv_promise(struct kv *s, uint64_t bytes);
void kv_promise_release(struct kv *s, uint64_t bytes);
int  kv_promise_set(struct kv *s, uint64_t bytes);
int  kv_apply_promised(struct kv *s, const struct kv_batch *b, uint64_t promised, uint64_t *lsn_out);
void kv_promise_stats(struct kv *s, uint64_t *promised, uint64_t *held);
/* 1 when the store's promise file exists, which a store that ever promised space keeps: its
 * owner must then sum its records at open and kv_promise_set the count (which makes the file
 * again, and logs so, when it went missing while the store was closed). A file deleted by hand
 * reads as 0: an owner that may have promised must also mark that in its own records (the
 * mounted tree keeps a key, docs/FORMAT.md 10.1). */
int  kv_promise_ever(struct kv *s);

/* Calls fn for each entry with key >= start in order until fn returns non-zero (returned) or the
 * end (0). fn runs under the index's read lock: it must not call into the store. */
typedef int (*kv_scan_fn)(void *arg, const void *key, size_t klen, uint64_t size,
			  const void *meta, size_t mlen);
int kv_scan(struct kv *s, const void *start, size_t slen, kv_scan_fn fn, void *arg);

/* Returns once every write issued before the call is durable, or the sticky error. */
int kv_flush(struct kv *s);
/* Returns once a checkpoint of the current state is durable (the index only: keys, metadata and
 * where each value's bytes are), and the segments and older checkpoints it makes unneeded are
 * deleted. (Named for the seed's snapshot: SNAP and `echo snapshot > MNT/.kvfs` call it.) */
int kv_snapshot(struct kv *s);
/* One cleaner pass now: copy the live bytes out of the segments the policy picks (all of them
 * with force), then checkpoint and delete what that freed. *moved (may be NULL): bytes copied. */
int kv_clean(struct kv *s, int force, uint64_t *moved);
/* A consistent point-in-time copy of the store in dest (missing or an empty directory; made
 * mode 0700), which opens as a store: a checkpoint, copied, and the log segments it references,
 * copied up to where the log ended when it was taken. Writers go on meanwhile; no segment or
 * checkpoint is deleted until it is done. Everything is durable when it returns. A copy cut
 * short by a crash does not open (the checkpoint names the missing segments); make it again.
 * A read-only store copies its files as they are. -ENOTEMPTY: dest holds something. */
struct kv_backup_info {
	uint64_t lsn;   /* the copy holds every write up to this LSN */
	uint64_t files; /* files copied */
	uint64_t bytes; /* bytes copied */
};
int kv_backup(struct kv *s, const char *dest, struct kv_backup_info *info);

struct kv_stats {
	uint64_t keys, bytes, mem_bytes;
	uint64_t wal_bytes;      /* log bytes written since the last checkpoint */
	uint64_t last_lsn, durable_lsn, snapshot_lsn; /* snapshot_lsn: the last checkpoint's */
	uint64_t flush_requests; /* kv_flush calls and sync=always waits */
	uint64_t flushes;        /* fdatasync rounds of the log */
	uint64_t fdatasyncs;     /* every fdatasync the log issued */
	uint64_t snapshots;      /* checkpoints written */
	uint64_t snapshot_due;   /* wal_bytes at which the next automatic checkpoint is due */
	uint64_t segments;       /* log segments on disk */
	uint64_t disk_bytes;     /* their bytes, preallocated ones included */
	uint64_t live_bytes;     /* value bytes the index references (what the disk must hold) */
	uint64_t written_bytes;  /* value bytes written by callers since open */
	uint64_t cleaner_passes, cleaner_moved_bytes, segments_deleted;
	uint64_t read_errors;    /* reads that failed a checksum or the disk */
	enum kv_sync sync;
	unsigned commit_ms;
	int read_only;           /* opened read-only, or a log write or sync failed (error) */
	int error;               /* that failure, negative errno; 0 */
};
void kv_stats(struct kv *s, struct kv_stats *st);
#endif
