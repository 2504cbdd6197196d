/* store_internal.h — what store.c shares with the cleaner (cleaner.c): the store itself and the
 * write and checkpoint paths the cleaner goes through like any writer. Not for outside eyes. */
#ifndef KVFS_STORE_INTERNAL_H
#define KVFS_STORE_INTERNAL_H
#include <limits.h>
#include <pthread.h>
#include <stdint.h>

#include "ckpt.h"
#include "index.h"
#include "kv.h"
#include "segtab.h"
#include "wal.h"

struct kv {
	const struct kvio *io;
	struct kv_options opt;
	char dir[PATH_MAX];
	int lock_fd;
	int creating; /* a writable open found no store here: a failed one removes what it made */
	int made_dir; /* the open created the directory: it goes too, when empty after that */

	pthread_mutex_t apply_mu;
	pthread_rwlock_t ix_lock;
	struct kvindex *ix;
	struct segtab *segs;
	struct wal *wal;
	uint64_t applied_lsn; /* apply_mu */
	int tail_unvouched;   /* recovery replayed records no close mark vouches for */
	int failed;           /* apply_mu: memory no longer matches the log (ENOMEM mid-record) */

	pthread_mutex_t clean_mu;
	pthread_mutex_t ckpt_mu;
	uint64_t ckpt_lsn;         /* the newest durable checkpoint; ckpt_mu to change, read atomically */
	struct ckpt_refs refs;     /* ckpt_mu: the segments it references */
	uint64_t ckpt_file_bytes;  /* ckpt_mu: its size (the reserve is sized from it) */
	uint64_t wal_base;         /* appended_bytes at the last checkpoint, minus replayed bytes */
	uint64_t reserve_bytes;    /* ckpt_mu: the space reserve's size (0: none) */
	int reserve_lent;          /* ckpt_mu to change, apply_mu too: given to writes that free space;
				    * other writes may take no new space until it is back */
	uint64_t reserve_probed;   /* ckpt_mu: how much of it reserve_probe took (held only) */
	uint64_t lent_bytes;       /* ckpt_mu: the reserve's size when it was last lent */
	uint64_t lent_room;        /* apply_mu: of it, what writes carrying no value bytes may take */
	uint64_t lent_used;        /* apply_mu: what segments made while it is lent took */
	uint64_t lent_seg;         /* apply_mu: a segment made while it was lent (its room is the reserve's) */
	uint64_t room_lsn;         /* ckpt_mu: applied LSN at make_room's last checkpoint */
	unsigned holds;            /* ckpt_mu: backups copying files; no file is deleted meanwhile */
	struct space *space;       /* promised space (space.h): made at its first use, atomically */

	/* background work: automatic checkpoints and the cleaner */
	pthread_mutex_t bg_mu;
	pthread_cond_t bg_cv;
	pthread_t bg_thread;
	int bg_running, bg_stop, bg_wanted;
	uint64_t ckpt_next_at;     /* wal bytes at which the next automatic checkpoint is due */
	int clean_fruitless;         /* clean_mu: a policy pass found no victim worth moving, */
	uint64_t clean_fruitless_at; /* when this many log bytes had been appended */

	/* counters, atomic */
	uint64_t flush_requests, written_bytes, read_errors, checkpoints;
	uint64_t cleaner_passes, cleaner_moved, segments_deleted;
};

/* One line for the operator (kv_options.log). */
void kv_log(const struct kv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The write path: log and apply a batch (no precondition). */
int store_apply(struct kv *s, const struct kv_batch *b, uint64_t *lsn_out);
/* Where a checkpoint stands in the log: its LSN, and the segment being appended to then with
 * the end of its last record (LSN's record or an earlier one). */
struct ckpt_point {
	uint64_t lsn, seg_first_lsn, seg_end;
};
/* A checkpoint and the deletions it allows; ckpt_mu held. at (may be NULL) gets its point. */
int checkpoint_locked(struct kv *s, struct ckpt_point *at);
/* The space reserve, ckpt_mu held: give it to the writes that free space (and the cleaner's),
 * blocking every other write from new space until reserve_restore gets it back (1 when there
 * was one to give). */
int reserve_lend(struct kv *s);
void reserve_restore(struct kv *s);
/* Grow the held reserve by up to more bytes — as much of it as the disk has free, halving
 * down to 64 KiB: how the full-disk cleaner learns the room it may relocate into (the engine has
 * no statfs); reserve_unprobe gives it back (a lend gives it all). ckpt_mu held. */
void reserve_probe(struct kv *s, uint64_t more);
void reserve_unprobe(struct kv *s);
/* What the reserve (held or lent) holds beyond what the next checkpoint needs: the room a
 * full-disk cleaner pass may relocate into. ckpt_mu held. */
uint64_t reserve_room(const struct kv *s);
/* Create dir if missing and make its name durable in its parent. */
int store_ensure_dir(const struct kvio *io, const char *dir);
#endif
