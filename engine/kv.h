/* kv.h — the kvfs store: the engine's public interface, used by kv_cli and the FUSE layer.
 *
 * A store is a directory holding a LOCK file, write-ahead log segments and snapshots. All state
 * lives in memory; the log and snapshots make it durable. Every write is one log record (one
 * LSN), applied to the index in LSN order, visible to readers as soon as the call returns, and
 * durable once a flush covering it returns (see docs/DURABILITY.md).
 *
 * Thread safety: every function may be called from any thread, except kv_close.
 * Errors: 0 or a negative errno. After a failed write or fdatasync of logged records every write
 * returns -EROFS and every flush the original error, until the store is reopened. Failing to
 * create a new log segment (no space to preallocate it, an error writing its header) fails only
 * the write that needed it, before anything of it is logged: the log is untouched. */
#ifndef KVFS_KV_H
#define KVFS_KV_H
#include <stddef.h>
#include <stdint.h>
#include "index.h"
#include "kvio.h"

#define KV_VERSION "0.1.0"

enum kv_sync {
	KV_SYNC_BATCH,  /* default: a background flush at most commit_ms after a write */
	KV_SYNC_ALWAYS, /* every write returns only once durable */
	KV_SYNC_NONE,   /* durable only at explicit flushes, snapshots and close */
};

enum kv_recovery {
	KV_RECOVERY_STRICT,        /* damage other than a torn tail: refuse to open */
	KV_RECOVERY_POINT_IN_TIME, /* keep everything before the first damage, set the rest aside */
};

struct kv_options {
	enum kv_sync sync;
	unsigned commit_ms;          /* batch mode's flush bound */
	uint64_t snapshot_wal_bytes; /* automatic snapshot once the log since the last one is this big */
	uint64_t segment_bytes;      /* log segment size (preallocated) */
	enum kv_recovery recovery;
	const struct kvio *io;       /* NULL: kvio_posix */
	/* What an operator must know that no call returns to anyone: a failed background flush
	 * (the switch to read-only), a failed automatic snapshot. NULL: one line on stderr. The
	 * recovery report is not logged: kv_open returns it in kv_report for the caller to print. */
	void (*log)(void *arg, const char *line);
	void *log_arg;
};

void kv_options_default(struct kv_options *o);
/* Parse "name=value[,name=value...]" (sync, commit_ms, snapshot_wal_bytes, segment_bytes,
 * recovery) into o. Unknown names or bad values: -EINVAL with a reason in err. */
int kv_options_parse(struct kv_options *o, const char *opts, char *err, size_t errlen);
const char *kv_sync_name(enum kv_sync s);

/* What open, check and salvage found. message: one line for a person (empty when clean). */
struct kv_report {
	uint64_t snapshot_lsn;      /* 0: no snapshot */
	uint64_t snapshot_keys;
	uint64_t records_replayed;  /* log records applied after the snapshot */
	uint64_t segments;
	uint64_t last_lsn;
	uint64_t tail_bytes_cut;    /* torn or zero tail removed from the last segment */
	int tail_torn;              /* it held non-zero bytes (a torn write), not just
				     * preallocated zeros */
	uint64_t tail_torn_bytes;   /* of tail_bytes_cut, up to the last non-zero byte */
	uint64_t tail_offset;       /* where it started */
	char tail_file[256];
	/* damage in records the snapshot already holds: reported, not needed, loses nothing */
	uint64_t covered_damage;    /* places found */
	char covered_file[256];     /* the first */
	uint64_t covered_offset;
	uint64_t bytes_checksummed; /* bytes recovery ran a CRC over (its work, bounded by tests) */
	int damaged;                /* damage other than a torn tail was found */
	char damage_file[256];
	uint64_t damage_offset;
	unsigned set_aside;         /* files moved aside by salvage */
	char message[1024];
};

struct kv;

/* Creates dir (0700) when missing, takes the lock, recovers. -EWOULDBLOCK when another process
 * (or another kv_open) holds the store; -EUCLEAN for damage in strict mode. rep may be NULL. */
int kv_open(struct kv **out, const char *dir, const struct kv_options *o, struct kv_report *rep);
/* Flushes, stops background work, releases everything; returns the flush result. */
int kv_close(struct kv *s);

/* Verify without changing anything: 0 clean (maybe with a torn tail), -EUCLEAN damaged. */
int kv_check(const char *dir, const struct kvio *io, struct kv_report *rep);
/* Keep everything before the first damage; set damaged files aside as NAME.damaged (then
 * NAME.damaged-2, -3, ... if taken), never deleting them. */
int kv_salvage(const char *dir, const struct kvio *io, struct kv_report *rep);

/* An atomic group of operations: one log record under one LSN, so after a crash either all of
 * it or none of it is there. Operations apply in order; one whose precondition does not hold
 * when it runs (renaming an absent key, say) is skipped the same way live and on replay. */
struct kv_batch;
int  kv_batch_new(struct kv_batch **out);
void kv_batch_free(struct kv_batch *b);
int  kv_batch_put(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen,
		  const void *val, uint64_t vlen);
int  kv_batch_del(struct kv_batch *b, const void *key, size_t klen);
int  kv_batch_write(struct kv_batch *b, const void *key, size_t klen, uint64_t off, const void *data,
		    uint64_t len);
int  kv_batch_truncate(struct kv_batch *b, const void *key, size_t klen, uint64_t size);
int  kv_batch_setmeta(struct kv_batch *b, const void *key, size_t klen, const void *meta, size_t mlen);
int  kv_batch_rename(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen);
int  kv_batch_rename_prefix(struct kv_batch *b, const void *from, size_t flen, const void *to, size_t tlen);
/* Log and apply. lsn_out (may be NULL) gets the record's LSN. */
int  kv_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out);

/* One-operation conveniences. kv_del: -ENOENT when absent (nothing logged). kv_write,
 * kv_truncate, kv_setmeta: -ENOENT when absent. */
int kv_put(struct kv *s, const void *key, size_t klen, const void *val, uint64_t vlen);
int kv_del(struct kv *s, const void *key, size_t klen);
int kv_write(struct kv *s, const void *key, size_t klen, uint64_t off, const void *data, uint64_t len);
int kv_truncate(struct kv *s, const void *key, size_t klen, uint64_t size);
int kv_setmeta(struct kv *s, const void *key, size_t klen, const void *meta, size_t mlen);

/* Reads never wait for the disk. kv_get: a malloc'd copy of the value (NUL-terminated for
 * convenience, not counted in vlen). */
int kv_get(struct kv *s, const void *key, size_t klen, void **val, uint64_t *vlen);
int kv_read(struct kv *s, const void *key, size_t klen, uint64_t off, void *buf, size_t len, size_t *got);
/* Size and metadata (copied into meta, up to *mlen bytes; *mlen set to its length). */
int kv_stat(struct kv *s, const void *key, size_t klen, uint64_t *size, void *meta, size_t *mlen);
/* Calls fn for each entry with key >= start in order until fn returns non-zero (returned) or the
 * end (0). fn runs under the index's read lock: it must not call into the store. */
typedef int (*kv_scan_fn)(void *arg, const void *key, size_t klen, uint64_t size,
			  const void *meta, size_t mlen);
int kv_scan(struct kv *s, const void *start, size_t slen, kv_scan_fn fn, void *arg);

/* Returns once every write issued before the call is durable, or the sticky error. */
int kv_flush(struct kv *s);
/* Returns once a snapshot of the current state is durable and the log before it removed. */
int kv_snapshot(struct kv *s);

struct kv_stats {
	uint64_t keys, bytes, mem_bytes;
	uint64_t wal_bytes;      /* log bytes on disk since the last snapshot */
	uint64_t last_lsn, durable_lsn, snapshot_lsn;
	uint64_t flush_requests; /* kv_flush calls and sync=always waits */
	uint64_t flushes;        /* log write+fdatasync rounds */
	uint64_t fdatasyncs;     /* every fdatasync the log issued */
	uint64_t snapshots;
	/* wal_bytes at which the next automatic snapshot is due: snapshot_wal_bytes, or the data
	 * (keys and values) the last snapshot held if that is more */
	uint64_t snapshot_due;
	enum kv_sync sync;
	unsigned commit_ms;
	int read_only;           /* a log write or sync failed */
	int error;               /* that failure, negative errno; 0 */
};
void kv_stats(struct kv *s, struct kv_stats *st);
#endif
