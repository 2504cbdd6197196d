/* segtab.h — the log segments of an open store, as the value store: which exist, how many of
 * their bytes the live index still uses, and reading value bytes out of them.
 *
 * Every value byte lives in a log record (the log is the value store); the index maps a value's
 * ranges to extents (struct kvext, index.h) naming a segment by its first LSN. The table keeps,
 * per segment: its size, its last LSN once sealed, the live bytes (bytes some key of the live
 * index references, kept current by segtab_account), and a read-only descriptor shared by every
 * reader. A reader pins the segment while it reads, so a segment deleted meanwhile (only ever one
 * the live index no longer references: see segtab_take_deletable) closes its descriptor after the
 * last reader is done, never under one.
 *
 * Thread safety: every function may be called from any thread; one mutex inside, held only for
 * memory (the lazy open of a descriptor excepted), never across a read. */
#ifndef KVFS_SEGTAB_H
#define KVFS_SEGTAB_H
#include <stddef.h>
#include <stdint.h>

#include "index.h"
#include "kvio.h"

struct segtab;

struct seg_info {
	uint64_t first_lsn;
	uint64_t last_lsn; /* 0 while it is the segment being appended to */
	uint64_t size;     /* bytes of header and records */
	uint64_t live;     /* value bytes the live index references */
};

int segtab_new(struct segtab **out, const struct kvio *io, const char *dir);
void segtab_free(struct segtab *t);

/* A segment that exists on disk (recovery) or was just created (the log). Segments are added in
 * LSN order. */
int segtab_add(struct segtab *t, uint64_t first_lsn, uint64_t size);
/* The log moved on from this segment: it is complete with records up to last_lsn. */
void segtab_seal(struct segtab *t, uint64_t first_lsn, uint64_t size, uint64_t last_lsn);
/* The live index started (delta > 0) or stopped (delta < 0) referencing delta bytes of a segment.
 * Called by the index on every extent it adds or drops (kvindex_set_account). */
void segtab_account(void *t, uint64_t seg, int64_t delta);

/* Copy value bytes out of the log: the range [pos, pos + len) of segment seg, which belongs to the
 * data of one operation starting at cbase and dlen bytes long (so its chunk checksums can be
 * found and checked: every 4 KiB chunk touched is verified). -EIO for a checksum that does not
 * match or a short file (*bad_seg, *bad_off say where), -ENOENT for a segment that is gone, or
 * an I/O error. */
int segtab_read(struct segtab *t, const struct kvext *e, uint64_t from, void *buf, size_t len,
		uint64_t *bad_seg, uint64_t *bad_off);

/* Drop a segment from the table without touching the file (recovery deleted or moved it). */
void segtab_forget(struct segtab *t, uint64_t first_lsn);
/* Every live count to zero (recovery starts over from another checkpoint). */
void segtab_reset_live(struct segtab *t);

/* A copy of every segment's info, ascending (*n entries, malloc'd). */
int segtab_list(struct segtab *t, struct seg_info **out, size_t *n);
uint64_t segtab_count(struct segtab *t);
/* Totals: bytes of all segments, and live bytes. */
void segtab_totals(struct segtab *t, uint64_t *bytes, uint64_t *live);
/* The size of the biggest segment (0: none). */
uint64_t segtab_largest(struct segtab *t);

/* Delete segment first_lsn: unlink it (the caller has checked the rules of docs/DESIGN.md §4)
 * and forget it; its descriptor closes once no reader holds it. */
int segtab_delete(struct segtab *t, uint64_t first_lsn);
#endif
