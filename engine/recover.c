/* recover.c — scan a store directory and plan what recovery changes (see recover.h).
 *
 * The rules (docs/FORMAT.md, "Reading the log back"):
 * - The newest checkpoint must be whole; any damage in it is damage. Every segment it
 *   references must be there, with a good header and long enough for the bytes it references.
 * - Records must carry consecutive LSNs from the checkpoint on; a segment must start where the
 *   one before it ended. A gap is damage.
 * - A bad record (short, bad length, bad checksum) with nothing valid after it in the log is a
 *   torn tail: cut off and reported. Zeros after the last record are unused preallocation: also
 *   cut, reported as zeros. A bad record with a valid record anywhere after it is damage.
 * - A checksum-valid record whose payload does not parse is damage.
 * - Damage among records the checkpoint already holds is reported and skipped: it costs nothing,
 *   unless the log ends in it (it must reach the checkpoint). The live values with bytes there,
 *   or in a referenced segment with a damaged header, are read and checked: a key is lost only
 *   when its own chunks fail their checksums.
 * Models (docs/VERIFICATION.md): tests/model/group_commit.pml stands for on_bad_record,
 * zero_hole, segment_has_content, scan_segment and recovery_commit (what is cut, what is
 * synced before anything is called durable); tests/model/failed_sync.pml for scan_segment's
 * fdatasync and drop_cache; tests/model/values_on_disk.pml for recovery_scan, load_checkpoint,
 * check_references, assess_lost and recovery_commit (which checkpoint, which segments stay). */
#include "progress.h"
#include "recover.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "ckpt.h"
#include "le.h"
#include "logread.h"
#include "record.h"

#define SECTOR 512u /* the unit a disk writes whole (or not at all) */

struct seg {
	uint64_t first_lsn;
	uint64_t size;
	char name[32];
};

struct rplan {
	uint64_t next_lsn;
	uint64_t wal_bytes;
	/* the segment appends continue in, cut to its valid end */
	int have_resume;
	uint64_t resume_first, resume_end, resume_size;
	uint32_t resume_salt, resume_version;
	/* files removed on commit: empty trailing segments, temporaries */
	char **remove;
	size_t n_remove;
	/* files set aside on commit (salvage) */
	char **aside;
	size_t n_aside;
	/* files the newest checkpoint made unneeded (older checkpoints, segments wholly before it
	 * that it does not reference): removed on commit, once the directory fsync has made that
	 * checkpoint's name durable */
	char **covered;
	size_t n_covered;
	/* damaged files copied aside and kept in place: segments that hold values still in use
	 * (uncut), a segment whose valid prefix is kept (then cut to it: the resume segment), a
	 * checkpoint loaded past damage */
	char **copy;
	size_t n_copy;
	int salvage; /* planned in salvage mode */
	/* salvage loaded a checkpoint past damaged entries: a copy of it is set aside, the files
	 * only its lost entries may need are set aside too, and a new checkpoint replaces it */
	int ckpt_rewrite;
	int tail_marked; /* the last record replayed is a close mark (or none was replayed) */
	struct ckpt_refs refs;
	/* salvage: the keys whose values lost bytes (to be deleted once the store is open) */
	struct lost_key { uint8_t *key; size_t len; } *lost;
	size_t n_lost;
};

static int name_push(char ***list, size_t *n, const char *name)
{
	char **a = realloc(*list, (*n + 1) * sizeof(**list));
	if (!a)
		return -ENOMEM;
	*list = a;
	a[*n] = strdup(name);
	if (!a[*n])
		return -ENOMEM;
	(*n)++;
	return 0;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct seg *)a)->first_lsn, y = ((const struct seg *)b)->first_lsn;
	return x < y ? -1 : x > y;
}

static int cmp_u64_desc(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x > y ? -1 : x < y;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && !strcmp(s + n - m, suffix);
}

/* A relocation to undo if its copy is lost: key's bytes [src.off, src.off + src.len) were at src
 * before a RELOCATE record after the checkpoint copied them to segment seg, offset pos. */
struct undo {
	uint8_t *key;
	size_t klen;
	uint64_t seg, pos;
	struct kvext src;
};

struct scan {
	const struct kvio *io;
	const char *dir;
	enum recovery_mode mode;
	struct kvindex *ix;
	struct rplan *plan;
	struct kv_report *rep;
	struct seg *segs;
	size_t nsegs;
	uint8_t *buf;       /* segment contents, reused from segment to segment */
	size_t cap;
	uint64_t last_lsn;  /* LSN of the last record seen (applied or covered) */
	uint64_t expected;  /* next LSN to apply */
	struct segtab *segs_tab;
	/* segments the checkpoint references that are gone or cut short, and damaged ranges among
	 * records the checkpoint holds: replay does not need them, but values may still have
	 * bytes there (assess_lost) */
	uint64_t *lost;
	size_t nlost;
	struct region { uint64_t seg, lo, hi; } *dmg;
	size_t ndmg;
	/* value chunks that fail their checksums in records after the checkpoint whose every other
	 * byte is proven (value_damage): the records were applied, the keys still holding bytes
	 * there are named (assess_lost) */
	struct region *vdmg;
	size_t nvdmg;
	/* segments the checkpoint references whose header is damaged: what else the damage took
	 * is unknown, so the live values there are read and checked (assess_lost) */
	uint64_t *suspect;
	size_t nsuspect;
	/* the cleaner's relocations whose copies lie in failing chunks of records after the
	 * checkpoint, with where each key's bytes were before (relocation_sources): assess_lost
	 * moves a key back there when its source checks */
	struct undo *undo;
	size_t nundo;
	int readonly; /* sync nothing */
	struct progress meter; /* bytes of the segments replayed */
	uint32_t seg_version; /* the header's version of the segment being read (2 when damaged) */
	int seg_hdr_ok;       /* its header is valid: seg_version is known */
	char at[64];  /* the file being read: an I/O error names it */
};

static uint64_t *crc_work(struct scan *sc)
{
	return &sc->rep->bytes_checksummed;
}

/* Is the next record in sequence one the checkpoint already holds? */
static int in_covered(const struct scan *sc)
{
	return sc->last_lsn + 1 < sc->expected;
}

static void seg_path(struct scan *sc, const struct seg *sg, char *path, size_t len)
{
	snprintf(sc->at, sizeof(sc->at), "%s", sg->name);
	snprintf(path, len, "%s/%s", sc->dir, sg->name);
}

/* A whole segment in memory, for the searches after a bad record (rare: torn tails, damage). */
struct whole {
	uint8_t *buf;
	uint64_t size;
	struct logsearch q;
};

static int whole_read(struct scan *sc, const struct seg *sg, struct whole *w)
{
	char path[PATH_MAX];
	struct seg_header h;
	int rc;

	seg_path(sc, sg, path, sizeof(path));
	rc = log_read_file(sc->io, path, &w->buf, &w->size);
	if (rc)
		return rc;
	w->q = (struct logsearch){ .buf = w->buf, .size = w->size, .crc_bytes = crc_work(sc) };
	if (w->size >= SEG_HDR_SIZE && seg_header_decode(w->buf, &h) == 0 && h.first_lsn == sg->first_lsn) {
		w->q.salt = h.salt;
		w->q.salt_known = 1;
	}
	return 0;
}

/* Does segment sg hold anything valid at all (a good header or a valid record after last_lsn)? */
static int segment_has_content(struct scan *sc, const struct seg *sg, uint64_t last_lsn, int *has)
{
	struct whole w;
	int rc = whole_read(sc, sg, &w);
	if (rc)
		return rc;
	if (w.q.salt_known)
		/* a header alone, naming exactly the next LSN, is a segment created just before the
		 * crash: nothing in it was ever acknowledged */
		*has = sg->first_lsn != last_lsn + 1 || log_any_after(&w.q, SEG_HDR_SIZE, last_lsn);
	else
		*has = log_any_after(&w.q, 0, last_lsn);
	free(w.buf);
	return 0;
}

/* Does anything after segs[i] hold a record after last_lsn? */
static int later_segments_have_content(struct scan *sc, size_t i, uint64_t last_lsn, int *has)
{
	*has = 0;
	for (size_t j = i + 1; !*has && j < sc->nsegs; j++) {
		int rc = segment_has_content(sc, &sc->segs[j], last_lsn, has);
		if (rc)
			return rc;
	}
	return 0;
}

/* The first damage found decides what is reported. */
static void report_damage(struct kv_report *rep, const char *file, uint64_t off, enum kv_damage kind)
{
	if (rep->damaged)
		return;
	rep->damaged = 1;
	rep->problem = KV_PROBLEM_DAMAGE;
	rep->damage = kind;
	snprintf(rep->damage_file, sizeof(rep->damage_file), "%s", file);
	rep->damage_offset = off;
}

/* Damage in records the checkpoint already holds: reported, never needed, so it neither
 * blocks the open nor costs a record after it. The first such place is the one reported. */
static void report_covered_damage(struct scan *sc, size_t i, uint64_t off)
{
	if (sc->rep->covered_damage++)
		return;
	snprintf(sc->rep->covered_file, sizeof(sc->rep->covered_file), "%s", sc->segs[i].name);
	sc->rep->covered_offset = off;
}

/* Damage at segs[i] offset off: strict refuses; salvage keeps the prefix and sets aside
 * segment i (rewriting its valid prefix when there is one) and everything after it. */
static int on_damage(struct scan *sc, size_t i, uint64_t off, uint64_t valid_end, uint32_t salt,
		     enum kv_damage why)
{
	int rc;
	report_damage(sc->rep, sc->segs[i].name, off, why);
	if (sc->mode == RECOVER_STRICT)
		return -EUCLEAN;
	/* keep: values the checkpoint references live in it; rewrite: its valid prefix is kept */
	int keep = ckpt_refs_has(&sc->plan->refs, sc->segs[i].first_lsn) && in_covered(sc);
	int rewrite = !keep && valid_end > SEG_HDR_SIZE;
	for (size_t j = i + (size_t)(keep || rewrite); j < sc->nsegs; j++) {
		rc = name_push(&sc->plan->aside, &sc->plan->n_aside, sc->segs[j].name);
		if (rc)
			return rc;
	}
	if (keep || rewrite) {
		/* copied aside, kept in place: uncut (keep; the log goes on in a new segment), or
		 * cut to its valid prefix once the copy is durable (rewrite; the log goes on in it) */
		rc = name_push(&sc->plan->copy, &sc->plan->n_copy, sc->segs[i].name);
		if (rc)
			return rc;
	}
	if (rewrite) {
		sc->plan->have_resume = 1;
		sc->plan->resume_first = sc->segs[i].first_lsn;
		sc->plan->resume_salt = salt;
		sc->plan->resume_version = sc->seg_version;
		sc->plan->resume_end = valid_end;
		sc->plan->resume_size = UINT64_MAX; /* cut to valid_end once the copy is aside */
	}
	return 0;
}

static void plan_resume(struct scan *sc, size_t i, uint32_t salt, uint64_t end, uint64_t size)
{
	sc->plan->have_resume = 1;
	sc->plan->resume_first = sc->segs[i].first_lsn;
	sc->plan->resume_salt = salt;
	sc->plan->resume_version = sc->seg_version;
	sc->plan->resume_end = end;
	sc->plan->resume_size = size;
}

/* The bytes at off (not a valid record) of a version 3 segment are the padding before a close
 * mark (docs/FORMAT.md §3.3): zeros up to the next LOG_BLOCK boundary, where a whole valid close
 * mark with the next LSN in sequence starts. *next gets that boundary, or 0 (then the bytes are a
 * bad record, judged as any). The mark's records_end must then be off: mark_valid judges it. */
static int mark_padding(struct scan *sc, struct logseg *ls, uint64_t off, uint32_t salt, uint64_t *next)
{
	uint64_t b = (off + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
	struct rec_header rh;
	const uint8_t *payload;
	int zero, rc;

	*next = 0;
	if (sc->seg_version != SEG_VERSION || b == off || b >= ls->size)
		return 0;
	rc = logseg_zero_range(ls, off, b, &zero);
	if (rc || !zero)
		return rc;
	rc = logseg_record(ls, b, salt, &rh, &payload, crc_work(sc));
	if (rc < 0)
		return rc;
	if (rc == LOGREC_OK && rh.lsn == sc->last_lsn + 1 && rh.type == REC_TYPE_MARK)
		*next = b;
	return 0;
}

/* A close mark's payload: none in a version 2 segment; records_end (where the record before it
 * ends: rec_end, UINT64_MAX when a damaged stretch before it was stepped over) in version 3;
 * either when the header, and so the version, is lost. */
static int mark_valid(const struct scan *sc, const struct rec_header *rh, const uint8_t *payload,
		      uint64_t rec_end)
{
	int v3 = rh->len == MARK_PAYLOAD && (rec_end == UINT64_MAX || le_get64(payload) == rec_end);
	if (!sc->seg_hdr_ok)
		return rh->len == 0 || v3;
	return sc->seg_version == SEG_VERSION ? v3 : rh->len == 0;
}

/* The number of torn bytes in buf[off, size): up to the last non-zero one (the preallocated
 * zeros after them are not part of the torn write). */
static uint64_t nonzero_extent(const uint8_t *buf, uint64_t size, uint64_t off)
{
	uint64_t end = size;
	while (end > off && buf[end - 1] == 0)
		end--;
	return end - off;
}

/* Does [off, next) hold what a write that never reached the disk leaves in a preallocated
 * segment: zeros from off to the end of its sector, or a whole sector of zeros? */
static int zero_hole(const uint8_t *buf, uint64_t off, uint64_t next)
{
	uint64_t s = (off + SECTOR - 1) / SECTOR * SECTOR;
	int z = s > off;
	for (uint64_t i = off; z && i < s && i < next; i++)
		z = !buf[i];
	if (z && s <= next)
		return 1;
	for (; s + SECTOR <= next; s += SECTOR) {
		uint64_t i = s;
		while (i < s + SECTOR && !buf[i])
			i++;
		if (i == s + SECTOR)
			return 1;
	}
	return 0;
}

/* The bytes from off on in segs[i] are not a valid record. Decide: torn tail (plan the cut),
 * unused preallocation before the next segment (continue), or damage. w: the segment whole,
 * or NULL when the caller found only zeros from off on (then size is the file's). */
static int on_bad_record(struct scan *sc, size_t i, const struct whole *w, uint64_t size, uint64_t off,
			 uint32_t salt, int *stop)
{
	int later = 0, rc;
	int zeros = !w;

	*stop = 1;
	if (!zeros) {
		later = log_vouched_after(&w->q, off + 1, sc->last_lsn);
		/* Valid records after it that none vouches for: it was written in the last stretch
		 * before the crash, unsynced, as they were. A page of it that never reached the disk
		 * reads as the zeros the segment was preallocated with: that hole is cut with what
		 * follows. Anything else in the bad record (flipped bits, garbage) is damage. */
		uint64_t next = later ? size : log_next_after(&w->q, off + 1, sc->last_lsn);
		if (next < size && !zero_hole(w->buf, off, next))
			later = 1;
	}
	for (size_t j = i + 1; !later && j < sc->nsegs; j++) {
		rc = segment_has_content(sc, &sc->segs[j], sc->last_lsn, &later);
		if (rc)
			return rc;
		if (later && zeros && j == i + 1 && off >= SEG_HDR_SIZE) {
			/* zeros then a following segment: the preallocated end of a full segment */
			*stop = 0;
			plan_resume(sc, i, salt, off, size);
			return 0;
		}
	}
	if (later)
		return on_damage(sc, i, off, off, salt, KV_DAMAGE_BAD_RECORD);

	/* A tail: cut here, drop later segments (they hold nothing). */
	if (size > off) {
		sc->rep->tail_bytes_cut += size - off;
		sc->rep->tail_offset = off;
		snprintf(sc->rep->tail_file, sizeof(sc->rep->tail_file), "%s", sc->segs[i].name);
		if (!zeros) {
			sc->rep->tail_torn = 1;
			sc->rep->tail_torn_bytes = nonzero_extent(w->buf, size, off);
		}
	}
	for (size_t j = i + 1; j < sc->nsegs; j++) {
		rc = name_push(&sc->plan->remove, &sc->plan->n_remove, sc->segs[j].name);
		if (rc)
			return rc;
	}
	if (off < SEG_HDR_SIZE) {
		/* Not even a header survived: the segment goes, the previous one continues (and so
		 * stays, even when it lies wholly before the checkpoint: plan_before_checkpoint). */
		return name_push(&sc->plan->remove, &sc->plan->n_remove, sc->segs[i].name);
	}
	plan_resume(sc, i, salt, off, size);
	return 0;
}

/* The bytes from off on in segs[i] are not a valid record: on_bad_record decides, reading the
 * segment whole only when they are not all zeros (a torn tail or damage, both rare). */
static int bad_record_in(struct scan *sc, size_t i, struct logseg *ls, uint64_t off, uint32_t salt,
			 int *stop)
{
	struct whole w;
	int zero, rc = logseg_zero_from(ls, off, &zero);

	if (rc)
		return rc;
	if (zero)
		return on_bad_record(sc, i, NULL, ls->size, off, salt, stop);
	rc = whole_read(sc, &sc->segs[i], &w);
	if (rc)
		return rc;
	rc = on_bad_record(sc, i, &w, w.size, off < w.size ? off : w.size, salt, stop);
	free(w.buf);
	return rc;
}

/* Damage at damage_off of segs[i] (the segment header, or a record) where the records in
 * sequence are ones the checkpoint holds. Find where the log goes on: the first valid record at
 * or after from whose LSN is above the last one seen and at most the first one the checkpoint
 * lacks. *next_off gets its offset (scanning resumes there), or *stop is set when there is none:
 * damage either way (records the checkpoint lacks are missing, or the end of the log is). */
static int regions_push(struct region **list, size_t *n, uint64_t seg, uint64_t lo, uint64_t hi)
{
	struct region *a = realloc(*list, (*n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*list = a;
	a[(*n)++] = (struct region){ seg, lo, hi };
	return 0;
}

static int region_push(struct scan *sc, uint64_t seg, uint64_t lo, uint64_t hi)
{
	return regions_push(&sc->dmg, &sc->ndmg, seg, lo, hi);
}

static int resync_covered(struct scan *sc, size_t i, uint64_t damage_off, uint64_t from,
			  uint64_t *next_off, uint32_t *salt, int *stop)
{
	struct whole w;
	uint64_t lsn = 0;
	int later = 0, rc;

	report_covered_damage(sc, i, damage_off);
	*next_off = 0;
	*stop = 0;
	rc = whole_read(sc, &sc->segs[i], &w);
	if (rc)
		return rc;
	uint64_t at = from < w.size ? log_find(&w.q, from, sc->last_lsn + 1, sc->expected, &lsn) : w.size;
	rc = region_push(sc, sc->segs[i].first_lsn, damage_off, at);
	if (rc)
		goto out;
	if (at < w.size) {
		sc->last_lsn = lsn - 1;
		*next_off = at;
		/* with the header damaged, the record found says which salt the rest was written under */
		*salt = w.q.salt_known ? w.q.salt : log_salt_at(&w.q, at);
		goto out;
	}
	/* Nothing readable up to the checkpoint's LSN: the records the checkpoint holds were
	 * synced before it was written, so this is damage, not a crash's tail, and whatever the
	 * log held after it (flushed writes among them) cannot be told from nothing. */
	*stop = 1;
	later = from < w.size && log_vouched_after(&w.q, from, sc->expected - 1);
	if (!later) {
		rc = later_segments_have_content(sc, i, sc->expected - 1, &later);
		if (rc)
			goto out;
	}
	/* the prefix (records the checkpoint holds, and their values) stays where it is */
	rc = on_damage(sc, i, damage_off, damage_off, *salt,
		       later ? KV_DAMAGE_MISSING_RECORDS : KV_DAMAGE_LOG_END_LOST);
out:
	free(w.buf);
	return rc;
}

/* A cleaner's relocation whose copy is damaged before its checkpoint ("pending"): the key keeps
 * its bytes from the source. The sequence:
 * 1. The cleaner (cleaner.c) reads key k's live extents in a victim segment S, checking each
 *    chunk, and logs a RELOCATE record R holding their copy (pieces: file range, src_seg S,
 *    src_pos; then the bytes with their own chunk checksums). Applied, R moves each part of k
 *    still at S to R's copy (kvindex_relocate); a part rewritten since stays.
 * 2. A checkpoint C is written once R is durable; S is deleted only after C is durable and
 *    references none of S's bytes, and only when every record in S is at or below C's LSN
 *    (store.c release_segments, checkpoint_frees).
 * 3. Between 1 and 2 (a kill, a failed checkpoint) R lies after the newest checkpoint, and S is
 *    still there: that checkpoint, or the records replayed before R, put k's bytes in S, so the
 *    checkpoint references S (check_references marks it lost if it is gone) or S holds records
 *    after the checkpoint, which no deletion touches. S's bytes are as the cleaner read them: a
 *    segment is only ever appended to, under a name (its first LSN) never used before (wal.c
 *    seg_create), and only the last segment's tail is ever cut; a sealed S is neither.
 * 4. Damage in R's value chunks alone (value_damage: R's framing is proven) would cost k. So,
 *    before R is applied, relocation_sources remembers where k's bytes were for every piece of
 *    R that overlaps a failing chunk (exactly the parts R moves: at S, at src_pos's offset);
 *    R is then applied as written, so every record after it replays as it did live. Once the
 *    log is read, restore_sources (from assess_lost) takes each key that still has bytes in R's
 *    copy there (whatever its name now: a rename moves a value, never its offsets) and, when
 *    the source's bytes check chunk by chunk (segtab_read), relocates them
 *    back from the copy (kvindex_relocate: only what is still at the copy moves, so a later
 *    write, or a later relocation of the copy, stands). The key then holds exactly its bytes and
 *    is not lost; the report counts it (reloc_damaged_keys), since nothing else would say that
 *    the disk damaged bytes. A source that fails its checksums, is gone or cut short leaves the key where
 *    R put it: lost as before, named as value bytes that fail their checksum.
 * 5. Once a checkpoint covers R, S may be deleted at any moment, and the checkpoint no longer
 *    says where S's bytes were: damage in R is then covered damage (DURABILITY 4.5), with no
 *    fallback. A salvage changes no file for this. The next checkpoint (salvage's own at its
 *    close, when the log since the last one is long enough) covers R and references S for k, so
 *    S stays while k's bytes are there; until it is durable R is pending, and every open (or a
 *    salvage after a crash) does the same again.
 * Strict open, kv_check and salvage run the same steps: they agree, and none of them loses k. */
static int undo_push(struct scan *sc, const struct rec_op_view *op, uint64_t seg, uint64_t pos,
		     const struct kvext *src)
{
	struct undo *a = realloc(sc->undo, (sc->nundo + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	sc->undo = a;
	a[sc->nundo].key = malloc(op->klen ? op->klen : 1);
	if (!a[sc->nundo].key)
		return -ENOMEM;
	memcpy(a[sc->nundo].key, op->key, op->klen);
	a[sc->nundo].klen = op->klen;
	a[sc->nundo].seg = seg;
	a[sc->nundo].pos = pos;
	a[sc->nundo].src = *src;
	sc->nundo++;
	return 0;
}

/* The first of vdmg[from..] that [lo, hi) of segment seg overlaps, or NULL. */
static const struct region *vdmg_find(const struct scan *sc, size_t from, uint64_t seg,
				      uint64_t lo, uint64_t hi)
{
	for (size_t k = from; k < sc->nvdmg; k++)
		if (sc->vdmg[k].seg == seg && lo < sc->vdmg[k].hi && hi > sc->vdmg[k].lo)
			return &sc->vdmg[k];
	return NULL;
}

/* Step 4 above, before the record (payload at loc, its failing chunks vdmg[from..]) is applied:
 * for each RELOCATE piece overlapping a failing chunk, the parts of the key's value that the
 * piece moves (their bytes at its source, as the index holds them now) and where it moves them. */
static int relocation_sources(struct scan *sc, const uint8_t *payload, uint64_t len,
			      const struct rec_loc *loc, size_t from)
{
	struct rec_reader rr;
	struct rec_op_view op;
	int rc;

	if (!sc->ix || !sc->segs_tab || from == sc->nvdmg || rec_reader_init(&rr, payload, len))
		return 0; /* (a payload that does not parse is never applied: nothing to undo) */
	while ((rc = rec_reader_next(&rr, &op)) == 1) {
		if (op.op != REC_OP_RELOCATE)
			continue;
		const struct kvval *v = kvindex_find(sc->ix, op.key, op.klen);
		uint32_t ne = 0;
		const struct kvext *e = v ? kvval_extents(v, &ne) : NULL;
		uint64_t at = loc->pos + op.data_at; /* the piece's copy */
		for (uint32_t i = 0; i < op.npieces; i++) {
			struct reloc_piece pc;
			reloc_piece_at(&op, i, &pc);
			uint64_t copy = at;
			at += pc.len;
			if (!vdmg_find(sc, from, loc->seg, copy, copy + pc.len))
				continue;
			for (uint32_t j = 0; j < ne; j++) {
				uint64_t a = e[j].off > pc.off ? e[j].off : pc.off;
				uint64_t b = e[j].off + e[j].len < pc.off + pc.len ? e[j].off + e[j].len : pc.off + pc.len;
				if (e[j].seg != pc.src_seg || a >= b ||
				    e[j].pos + (a - e[j].off) != pc.src_pos + (a - pc.off))
					continue;
				struct kvext src = { .off = a, .seg = e[j].seg, .pos = e[j].pos + (a - e[j].off),
						     .cbase = e[j].cbase, .len = (uint32_t)(b - a), .dlen = e[j].dlen };
				int urc = undo_push(sc, &op, loc->seg, copy + (a - pc.off), &src);
				if (urc)
					return urc;
			}
		}
	}
	/* rc < 0: malformed, so apply_record refuses the record and applies nothing of it; the
	 * entries pushed name a copy that no key then holds */
	return 0;
}

struct vd_arg {
	struct scan *sc;
	uint64_t seg, pos; /* the payload's segment and file offset */
};

static int vd_push(void *arg, uint64_t at, uint64_t n)
{
	struct vd_arg *a = arg;
	return regions_push(&a->sc->vdmg, &a->sc->nvdmg, a->seg, a->pos + at, a->pos + at + n);
}

/* The record rh at off in segs[i] is framed (its head checksum holds, so do its length and
 * body_crc) but its payload fails body_crc. It is applied like a good one, its failing chunks
 * remembered as lost value bytes (assess_lost names the keys still holding bytes there), when
 * both are proven:
 * - the damage lies only in value chunks (rec_locate_damage: every other byte is as written, so
 *   a flipped byte in a key or a length is never applied as another key or length);
 * - the record had been synced before something after it was written: a record after it whose
 *   base reaches it, or a later segment (as on_bad_record judges). A crash leaves records that
 *   were never synced looking the same (a good head, chunks never written); they are a torn
 *   tail to cut, not damage.
 * It must also be the next record in sequence, after the checkpoint, of ops. *ok 0 otherwise:
 * on_bad_record decides, as for any bad record (docs/DURABILITY.md 4.2, 4.4). */
static int value_damage(struct scan *sc, size_t i, uint64_t off, const struct rec_header *rh,
			const uint8_t *payload, int *ok)
{
	struct vd_arg a = { sc, sc->segs[i].first_lsn, off + REC_HDR_SIZE };
	struct whole w;
	int later = 0, rc;

	*ok = 0;
	if (in_covered(sc) || rh->lsn != sc->last_lsn + 1 || rh->type != REC_TYPE_OPS)
		return 0;
	rc = whole_read(sc, &sc->segs[i], &w);
	if (rc)
		return rc;
	uint64_t end = off + REC_HDR_SIZE + rh->len;
	later = end < w.size && log_vouched_after(&w.q, end, sc->last_lsn);
	free(w.buf);
	if (!later) {
		rc = later_segments_have_content(sc, i, sc->last_lsn, &later);
		if (rc || !later)
			return rc;
	}
	size_t before = sc->nvdmg;
	rc = rec_locate_damage(payload, rh->len, rh->body_crc, vd_push, &a);
	if (rc == -EBADMSG) {
		sc->nvdmg = before;
		return 0;
	}
	if (rc < 0)
		return rc;
	*ok = 1;
	struct rec_loc loc = { a.seg, a.pos };
	return relocation_sources(sc, payload, rh->len, &loc, before);
}

/* Replay one segment. *stop set when the log ends (tail or damage) inside it. */
static int scan_segment(struct scan *sc, size_t i, int *stop)
{
	char path[PATH_MAX];
	struct logseg ls;
	struct seg_header h;
	uint64_t first = sc->segs[i].first_lsn, off = SEG_HDR_SIZE, counted = 0;
	uint64_t rec_end = SEG_HDR_SIZE; /* where the last record read ends (a mark's records_end) */
	int rc;

	*stop = 0;
	seg_path(sc, &sc->segs[i], path, sizeof(path));
	rc = logseg_open(&ls, sc->io, path, &sc->buf, &sc->cap, LOGSEG_WINDOW);
	if (rc)
		return rc;
	/* Read what the disk holds, not what the cache shows: sync what a killed process left
	 * unsynced, then drop the cached pages, among them any that a failed fdatasync marked
	 * clean without writing (Linux would go on serving them; they would pass for durable). */
	rc = sc->readonly ? 0 : sc->io->fdatasync(sc->io, ls.fd);
	if (!rc)
		rc = sc->io->drop_cache(sc->io, ls.fd);
	if (rc)
		goto out;
	int hrc = logseg_header(&ls, &h);
	sc->seg_hdr_ok = !hrc && h.first_lsn == first;
	sc->seg_version = sc->seg_hdr_ok ? h.version : SEG_VERSION_UNPADDED;
	if (hrc == -EPROTONOSUPPORT) {
		/* written by another version: never mistake it for a torn tail */
		rc = on_damage(sc, i, 0, 0, 0, KV_DAMAGE_SEGMENT_VERSION);
		*stop = 1;
		goto out;
	}
	if (hrc < 0 && hrc != -EBADMSG) {
		rc = hrc;
		goto out;
	}
	if ((hrc || h.first_lsn != first) && first < sc->expected) {
		/* a damaged header of a segment that starts among records the checkpoint holds */
		sc->last_lsn = first - 1;
		h.salt = 0;
		rc = resync_covered(sc, i, 0, SEG_HDR_SIZE, &off, &h.salt, stop);
		if (rc || *stop)
			goto out;
		rec_end = UINT64_MAX;
	} else if (hrc || h.first_lsn != first) {
		rc = bad_record_in(sc, i, &ls, 0, 0, stop);
		if (!rc && !*stop)
			rc = on_damage(sc, i, 0, 0, 0, KV_DAMAGE_BAD_HEADER), *stop = 1;
		goto out;
	} else if (first != sc->last_lsn + 1) {
		rc = on_damage(sc, i, 0, 0, h.salt, KV_DAMAGE_SEGMENT_GAP);
		*stop = 1;
		goto out;
	} else {
		sc->last_lsn = first - 1;
	}
	while (off < ls.size) {
		struct rec_header rh;
		const uint8_t *payload;
		rc = logseg_record(&ls, off, h.salt, &rh, &payload, crc_work(sc));
		if (rc < 0)
			goto out;
		if (rc == LOGREC_BODY_BAD) {
			int ok;
			rc = value_damage(sc, i, off, &rh, payload, &ok);
			if (rc)
				goto out;
			rc = ok ? LOGREC_OK : LOGREC_NONE;
		}
		if (rc == 0) {
			uint64_t next;
			rc = mark_padding(sc, &ls, off, h.salt, &next);
			if (rc)
				goto out;
			if (next) {
				if (!in_covered(sc))
					sc->plan->wal_bytes += next - off;
				progress_add(&sc->meter, next - off);
				counted += next - off;
				off = next;
				continue;
			}
		}
		if (rc == 0 && in_covered(sc)) {
			rc = resync_covered(sc, i, off, off + 1, &off, &h.salt, stop);
			if (rc || *stop)
				goto out;
			rec_end = UINT64_MAX;
			continue;
		}
		if (rc == 0) {
			rc = bad_record_in(sc, i, &ls, off, h.salt, stop);
			goto out;
		}
		rc = 0;
		int covered = rh.lsn < sc->expected;
		if (rh.lsn != sc->last_lsn + 1 && !(covered && rh.lsn > sc->last_lsn)) {
			/* (a jump forward among covered records skips only what the checkpoint holds) */
			rc = on_damage(sc, i, off, off, h.salt, KV_DAMAGE_LSN_GAP);
			*stop = 1;
			goto out;
		}
		struct rec_reader rr;
		struct rec_loc loc = { .seg = first, .pos = off + REC_HDR_SIZE };
		int mark = rh.type == REC_TYPE_MARK;
		int vrc = mark ? (mark_valid(sc, &rh, payload, rec_end) ? 0 : -EBADMSG)
			       : rh.type != REC_TYPE_OPS ? -EPROTO : rec_reader_init(&rr, payload, rh.len);
		if (!vrc && !mark)
			vrc = sc->ix && !covered ? apply_record(sc->ix, &rr, &loc)
						 : rec_validate(payload, rh.len, 0);
		if ((vrc == -EBADMSG || vrc == -EPROTO) && covered) {
			report_covered_damage(sc, i, off);
			vrc = region_push(sc, first, off, off + REC_HDR_SIZE + rh.len);
		}
		if (vrc == -EBADMSG || vrc == -EPROTO) {
			rc = on_damage(sc, i, off, off, h.salt,
				       vrc == -EPROTO ? KV_DAMAGE_UNKNOWN_TYPE : KV_DAMAGE_MALFORMED);
			*stop = 1;
			goto out;
		}
		if (vrc) {
			rc = vrc;
			goto out;
		}
		if (!covered) {
			sc->rep->records_replayed += !mark;
			sc->plan->wal_bytes += REC_HDR_SIZE + rh.len;
			sc->expected = rh.lsn + 1;
			sc->plan->tail_marked = mark;
		}
		sc->last_lsn = rh.lsn;
		off += REC_HDR_SIZE + rh.len;
		rec_end = off;
		progress_add(&sc->meter, REC_HDR_SIZE + rh.len);
		counted += REC_HDR_SIZE + rh.len;
	}
	/* a segment that ends exactly at its last record */
	plan_resume(sc, i, h.salt, ls.size, ls.size);
out:
	if (sc->segs[i].size > counted) /* its header, its unused preallocation, what was cut */
		progress_add(&sc->meter, sc->segs[i].size - counted);
	logseg_close(&ls);
	return rc;
}

static void key_text(char *dst, size_t len, const uint8_t *key, size_t klen)
{
	snprintf(dst, len, "%.*s", (int)(klen < len - 1 ? klen : len - 1), (const char *)key);
}

/* Salvage loaded the checkpoint name past damage: report it (the entries lost count as lost
 * keys), copy the file aside and have a new checkpoint replace it once the store is open. */
static int checkpoint_partial(struct scan *sc, const char *name, const struct ckpt_loss *loss)
{
	struct kv_report *rep = sc->rep;
	report_damage(rep, name, loss->first_off, KV_DAMAGE_CHECKPOINT);
	rep->ckpt_lost_entries = loss->entries;
	rep->ckpt_header_damaged = loss->header;
	rep->ckpt_lost_unknown = loss->unknown;
	rep->lost_keys += loss->entries;
	rep->ckpt_lost_has_after = loss->has_after;
	rep->ckpt_lost_has_before = loss->has_before;
	if (loss->has_after)
		key_text(rep->ckpt_lost_after, sizeof(rep->ckpt_lost_after), loss->after, loss->after_len);
	if (loss->has_before)
		key_text(rep->ckpt_lost_before, sizeof(rep->ckpt_lost_before), loss->before,
			 loss->before_len);
	sc->plan->ckpt_rewrite = 1;
	return name_push(&sc->plan->copy, &sc->plan->n_copy, name);
}

/* A checkpoint loaded past a damaged header that may have lost entries is passed over for an
 * older one when there is one (a crash between a checkpoint's rename and the deletion of the
 * older ones leaves two), or for the empty state when the log still starts at LSN 1 (nothing
 * was deleted below it yet): replaying from there may lose nothing. Otherwise the only one is
 * used for what can be proven of it, and the log after its name's LSN is replayed. */
static int loss_header_fallback(const struct scan *sc, const struct ckpt_loss *loss, size_t k, size_t ncks)
{
	return sc->mode == RECOVER_SALVAGE && loss->header && loss->unknown &&
	       (k + 1 < ncks || (sc->nsegs && sc->segs[0].first_lsn == 1));
}

/* Load the newest checkpoint; in salvage mode load what can be proven of it past damaged
 * entries or a damaged header (its LSN is its name's), or fall back to an older one when a
 * damaged header may have cost entries, setting damaged ones aside. */
static int load_checkpoint(struct scan *sc, struct kvindex **ix, uint64_t *cks, size_t ncks, uint64_t *ck_lsn)
{
	char name[64], path[PATH_MAX];
	int rc;

	*ck_lsn = 0;
	for (size_t k = 0; k < ncks; k++) {
		uint64_t lsn = 0, count = 0, bad;
		struct ckpt_loss loss;
		ckpt_name(name, sizeof(name), cks[k]);
		snprintf(sc->at, sizeof(sc->at), "%s", name);
		snprintf(path, sizeof(path), "%s/%s", sc->dir, name);
		rc = ckpt_load(sc->io, path, ix ? *ix : NULL, &lsn, &count, &bad, &sc->plan->refs,
			       sc->mode == RECOVER_SALVAGE ? &loss : NULL);
		if (rc == 0 && lsn == cks[k] && loss_header_fallback(sc, &loss, k, ncks)) {
			/* an older checkpoint and the log after it may still hold what is lost here */
			ckpt_loss_free(&loss);
			rc = -EBADMSG, bad = 0;
		} else if (rc == 0 && lsn == cks[k]) {
			*ck_lsn = lsn;
			sc->rep->snapshot_lsn = lsn;
			sc->rep->snapshot_keys = count;
			if (sc->mode == RECOVER_SALVAGE && (loss.places || loss.footer || loss.header))
				rc = checkpoint_partial(sc, name, &loss);
			if (sc->mode == RECOVER_SALVAGE)
				ckpt_loss_free(&loss);
			return rc;
		}
		if (rc == 0) {
			rc = -EBADMSG, bad = 16; /* the header's LSN is not the name's */
			if (sc->mode == RECOVER_SALVAGE)
				ckpt_loss_free(&loss);
		}
		ckpt_refs_free(&sc->plan->refs);
		if (rc != -EBADMSG && rc != -EPROTONOSUPPORT)
			return rc;
		report_damage(sc->rep, name, bad,
			      rc == -EPROTONOSUPPORT ? KV_DAMAGE_CHECKPOINT_VERSION : KV_DAMAGE_CHECKPOINT);
		if (sc->mode == RECOVER_STRICT)
			return -EUCLEAN;
		rc = name_push(&sc->plan->aside, &sc->plan->n_aside, name);
		if (rc)
			return rc;
		if (ix) {
			/* start over from an empty index (and no live bytes) for the next candidate */
			kvindex_destroy(*ix);
			*ix = NULL;
			rc = kvindex_create(ix);
			if (rc)
				return rc;
			if (sc->segs_tab) {
				segtab_reset_live(sc->segs_tab);
				kvindex_set_account(*ix, segtab_account, sc->segs_tab);
			}
		}
	}
	return 0;
}

static int listed(char *const *list, size_t n, const char *name);

static int u64_push(uint64_t **list, size_t *n, uint64_t v)
{
	uint64_t *a = realloc(*list, (*n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	*list = a;
	a[(*n)++] = v;
	return 0;
}

static int u64_has(const uint64_t *list, size_t n, uint64_t v)
{
	for (size_t k = 0; k < n; k++)
		if (list[k] == v)
			return 1;
	return 0;
}

static int lost_push(struct scan *sc, uint64_t seg)
{
	return u64_push(&sc->lost, &sc->nlost, seg);
}

static int is_lost(const struct scan *sc, uint64_t seg)
{
	return u64_has(sc->lost, sc->nlost, seg);
}

#define VERIFY_PIECE (256u << 10) /* bytes of a suspect extent read at a time */

/* Do the bytes of extent e (in a segment whose header is damaged, or reaching into a damaged
 * range among records the checkpoint holds) fail their checksums? The
 * first failing chunk's place is added to vdmg (*bad set), as for value damage after the
 * checkpoint. */
static int suspect_extent_bad(struct scan *sc, const struct kvext *e, uint8_t **buf, int *bad)
{
	*bad = 0;
	if (!*buf && !(*buf = malloc(VERIFY_PIECE)))
		return -ENOMEM;
	for (uint64_t at = 0; at < e->len; at += VERIFY_PIECE) {
		size_t len = e->len - at < VERIFY_PIECE ? (size_t)(e->len - at) : VERIFY_PIECE;
		uint64_t bseg = e->seg, boff = e->pos + at;
		int rc = segtab_read(sc->segs_tab, e, at, *buf, len, &bseg, &boff);
		if (rc == -EIO || rc == -ENOENT) {
			*bad = 1;
			return regions_push(&sc->vdmg, &sc->nvdmg, rc == -EIO ? bseg : e->seg, boff, boff + 1);
		}
		if (rc)
			return rc;
	}
	return 0;
}

/* Does value v still hold bytes of u's range at the copy (seg, pos for src.off)? */
static int still_at_copy(const struct kvval *v, const struct undo *u)
{
	uint32_t ne;
	const struct kvext *e = kvval_extents(v, &ne);
	for (uint32_t j = 0; j < ne; j++) {
		uint64_t a = e[j].off > u->src.off ? e[j].off : u->src.off;
		uint64_t b = e[j].off + e[j].len < u->src.off + u->src.len ? e[j].off + e[j].len
									  : u->src.off + u->src.len;
		if (e[j].seg == u->seg && a < b && e[j].pos + (a - e[j].off) == u->pos + (a - u->src.off))
			return 1;
	}
	return 0;
}

/* Do the source's bytes check, chunk by chunk? 0 and *good; I/O errors other than a failed
 * checksum, a short file or a gone segment are returned. */
static int source_checks(struct scan *sc, const struct kvext *e, uint8_t **buf, int *good)
{
	*good = 0;
	if (is_lost(sc, e->seg))
		return 0;
	if (!*buf && !(*buf = malloc(VERIFY_PIECE)))
		return -ENOMEM;
	for (uint64_t at = 0; at < e->len; at += VERIFY_PIECE) {
		size_t len = e->len - at < VERIFY_PIECE ? (size_t)(e->len - at) : VERIFY_PIECE;
		uint64_t bseg, boff;
		int rc = segtab_read(sc->segs_tab, e, at, *buf, len, &bseg, &boff);
		if (rc == -EIO || rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
	}
	*good = 1;
	return 0;
}

/* The first failing chunk (vdmg) that u's part of the copy overlaps, or NULL: a part of a piece
 * that overlaps one is moved back whole, its other bytes being as good at the source. */
static const struct region *undo_damage(const struct scan *sc, const struct undo *u)
{
	return vdmg_find(sc, 0, u->seg, u->pos, u->pos + u->src.len);
}

/* A key read back whole from its sources: the report says so (data, not words: a strict open
 * and kv_check take the store, so nothing else would tell that the disk damaged bytes). */
static void count_read_back(struct scan *sc, const struct lost_key *k, const struct region *g)
{
	struct kv_report *rep = sc->rep;
	if (rep->reloc_damaged_keys++)
		return;
	key_text(rep->reloc_damage_key, sizeof(rep->reloc_damage_key), k->key, k->len);
	seg_name(rep->reloc_damage_file, sizeof(rep->reloc_damage_file), g->seg);
	rep->reloc_damage_offset = g->lo;
}

/* Step 4 above, once the log is read: every key with bytes still at a remembered relocation's
 * damaged copy gets them back from the source when the source checks. Keys are found by where
 * their bytes are, not by the name R gave: a later rename moves the value, never its offsets.
 * A key each of whose parts in failing chunks came back is named in the report
 * (reloc_damaged_keys); one with a part that did not is left to assess_lost (lost). */
static int restore_sources(struct scan *sc)
{
	struct kvcursor *c;
	const void *key;
	size_t klen;
	const struct kvval *v;
	struct lost_key *found = NULL; /* (key, the undo entry) pairs, restored once the walk ends */
	size_t *which = NULL, nfound = 0;
	uint8_t *buf = NULL;
	int rc;

	if (!sc->nundo)
		return 0;
	rc = kvcursor_open_live(sc->ix, NULL, 0, &c);
	if (rc)
		return rc;
	while (!rc && kvcursor_next(c, &key, &klen, &v) == 1)
		for (size_t k = 0; !rc && k < sc->nundo; k++) {
			if (!still_at_copy(v, &sc->undo[k]))
				continue;
			struct lost_key *a = realloc(found, (nfound + 1) * sizeof(*a));
			size_t *w = a ? realloc(which, (nfound + 1) * sizeof(*w)) : NULL;
			if (a)
				found = a;
			if (w)
				which = w;
			if (!a || !w || !(found[nfound].key = malloc(klen ? klen : 1))) {
				rc = -ENOMEM;
				break;
			}
			memcpy(found[nfound].key, key, klen);
			found[nfound].len = klen;
			which[nfound++] = k;
		}
	kvcursor_close(c);
	/* found[] holds each key's entries together (one cursor step pushes them all) */
	const struct region *back = NULL; /* the key's first failing chunk read back */
	int stuck = 0;                    /* a part of the key in a failing chunk stays there */
	for (size_t f = 0; !rc && f < nfound; f++) {
		const struct undo *u = &sc->undo[which[f]];
		const struct region *g = undo_damage(sc, u);
		int good = 0;
		rc = source_checks(sc, &u->src, &buf, &good);
		if (!rc && good)
			rc = kvindex_relocate(sc->ix, found[f].key, found[f].len, u->seg, u->pos, &u->src);
		if (g && good)
			back = back ? back : g;
		else if (g)
			stuck = 1;
		if (f + 1 < nfound && found[f + 1].len == found[f].len &&
		    !memcmp(found[f + 1].key, found[f].key, found[f].len))
			continue; /* more of this key */
		if (!rc && back && !stuck)
			count_read_back(sc, &found[f], back);
		back = NULL, stuck = 0;
	}
	for (size_t f = 0; f < nfound; f++)
		free(found[f].key);
	free(found);
	free(which);
	free(buf);
	return rc;
}

static void undo_free(struct scan *sc)
{
	for (size_t k = 0; k < sc->nundo; k++)
		free(sc->undo[k].key);
	free(sc->undo);
}

/* Do value bytes still live where the log is lost (a referenced segment gone or short, a damaged
 * range among records the checkpoint holds)? Replay did not need those places, but a value whose
 * extent points there has lost bytes: strict refuses, naming the first such key; salvage opens
 * and says how many keys and which first (their reads fail with EIO, never return wrong bytes). */
static int lost_key_push(struct rplan *p, const void *key, size_t klen)
{
	struct lost_key *a = realloc(p->lost, (p->n_lost + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	p->lost = a;
	a[p->n_lost].key = malloc(klen ? klen : 1);
	if (!a[p->n_lost].key)
		return -ENOMEM;
	memcpy(a[p->n_lost].key, key, klen);
	a[p->n_lost++].len = klen;
	return 0;
}

/* Does extent e overlap a region of list (its data bytes; with checksums, also the chunk
 * checksums before its op's data)? */
static const struct region *ext_hits(const struct kvext *e, const struct region *list, size_t n,
				     int checksums)
{
	uint64_t lo = checksums ? e->cbase - 4 * data_chunks(e->dlen) : e->pos, hi = e->pos + e->len;
	for (size_t k = 0; k < n; k++)
		if (e->seg == list[k].seg && lo < list[k].hi && hi > list[k].lo)
			return &list[k];
	return NULL;
}

static void key_into(char *dst, size_t len, const void *key, size_t klen)
{
	snprintf(dst, len, "%.*s", (int)(klen < len - 1 ? klen : len - 1), (const char *)key);
}

/* Copy each segment of list aside (the original stays: its other values are read from it, and
 * the log may go on in it), unless it is already copied or set aside. */
static int copy_regions(struct scan *sc, const struct region *list, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		char name[32];
		seg_name(name, sizeof(name), list[k].seg);
		if (listed(sc->plan->copy, sc->plan->n_copy, name) || listed(sc->plan->aside, sc->plan->n_aside, name))
			continue;
		int rc = name_push(&sc->plan->copy, &sc->plan->n_copy, name);
		if (rc)
			return rc;
	}
	return 0;
}

/* Keys whose values still have bytes where the log is lost (lost): a referenced segment gone or
 * short. Keys whose values still have bytes in the failing chunks of records after the
 * checkpoint (value_damage), or whose chunks fail when read (in a damaged range among records
 * the checkpoint holds, or in a segment with a damaged header), are counted apart, as value
 * bytes that fail their checksum (data_damaged_keys). Strict refuses, naming the first
 * key; salvage lists them all (the store deletes them once open) and copies the damaged
 * segments aside. */
static int assess_lost(struct scan *sc)
{
	struct kvcursor *c;
	const void *key;
	size_t klen;
	const struct kvval *v;
	uint64_t first_seg = 0, first_off = 0, vseg = 0, voff = 0, lost = 0;
	uint8_t *piece = NULL; /* for reading suspect extents */
	int rc;

	if (!sc->nlost && !sc->ndmg && !sc->nvdmg && !sc->nsuspect)
		return 0;
	if (!sc->ix) {
		/* verifying without an index: no key to name, but failing value bytes of records
		 * after the checkpoint are damage all the same */
		if (!sc->nvdmg)
			return 0;
		char seg[32];
		seg_name(seg, sizeof(seg), sc->vdmg[0].seg);
		report_damage(sc->rep, seg, sc->vdmg[0].lo, KV_DAMAGE_VALUE_BYTES);
		return sc->mode == RECOVER_STRICT ? -EUCLEAN : 0;
	}
	/* a relocation's damaged copy whose source checks costs nothing (relocation_sources) */
	rc = restore_sources(sc);
	if (rc)
		return rc;
	rc = kvcursor_open_live(sc->ix, NULL, 0, &c);
	if (rc)
		return rc;
	while (kvcursor_next(c, &key, &klen, &v) == 1) {
		uint32_t ne;
		const struct kvext *e = kvval_extents(v, &ne);
		int hit = 0;
		const struct region *vhit = NULL;
		for (uint32_t i = 0; !hit && i < ne; i++) {
			if (is_lost(sc, e[i].seg)) {
				hit = 1, first_seg = first_seg ? first_seg : e[i].seg;
				continue;
			}
			const struct region *g = ext_hits(&e[i], sc->dmg, sc->ndmg, 1);
			if (g && !sc->segs_tab) {
				hit = 1;
				if (!first_seg)
					first_seg = g->seg, first_off = g->lo;
			}
			if (!vhit)
				vhit = ext_hits(&e[i], sc->vdmg, sc->nvdmg, 0);
		}
		/* An extent in a segment with a damaged header, or reaching into a damaged range
		 * among records the checkpoint holds, is read and checked chunk by chunk: the
		 * checkpoint says where its bytes and their checksums lie, so the damage costs it
		 * only when its own bytes (or their checksums) fail, never because the framing of
		 * the record around it, or another key's bytes in it, are damaged. */
		for (uint32_t i = 0; !hit && !vhit && sc->segs_tab && i < ne; i++) {
			int bad = 0;
			if (u64_has(sc->suspect, sc->nsuspect, e[i].seg) || ext_hits(&e[i], sc->dmg, sc->ndmg, 1))
				rc = suspect_extent_bad(sc, &e[i], &piece, &bad);
			if (rc)
				break;
			if (bad)
				vhit = &sc->vdmg[sc->nvdmg - 1];
		}
		if (rc)
			break;
		if (!hit && !vhit)
			continue;
		if (hit)
			lost++;
		else if (!sc->rep->data_damaged_keys++) {
			key_into(sc->rep->data_damage_key, sizeof(sc->rep->data_damage_key), key, klen);
			vseg = vhit->seg, voff = vhit->lo;
		}
		if (!sc->rep->lost_keys++)
			key_into(sc->rep->lost_key, sizeof(sc->rep->lost_key), key, klen);
		if (sc->mode == RECOVER_SALVAGE && !rc)
			rc = lost_key_push(sc->plan, key, klen);
	}
	kvcursor_close(c);
	free(piece);
	if (rc)
		return rc;
	if (!sc->rep->lost_keys)
		return 0;
	char name[32];
	if (lost) {
		seg_name(name, sizeof(name), first_seg);
		report_damage(sc->rep, name, first_off, KV_DAMAGE_LOST_VALUES);
	} else {
		seg_name(name, sizeof(name), vseg);
		report_damage(sc->rep, name, voff, KV_DAMAGE_VALUE_BYTES);
	}
	if (sc->mode == RECOVER_STRICT)
		return -EUCLEAN;
	rc = copy_regions(sc, sc->dmg, sc->ndmg);
	return rc ? rc : copy_regions(sc, sc->vdmg, sc->nvdmg);
}

/* Every segment the checkpoint references must be there, whole enough: present, at least as
 * long as the last byte it references, and a good header naming it, or else its live values are
 * read and checked (assess_lost). Reading the bytes behind a good header would make opening as
 * slow as the data is big; a damaged byte there is found by the read that needs it (EIO) and by
 * kv_check (docs/DURABILITY.md 4.5a). */
static int check_references(struct scan *sc)
{
	const struct ckpt_refs *r = &sc->plan->refs;
	size_t j = 0;
	for (size_t k = 0; k < r->n; k++) {
		while (j < sc->nsegs && sc->segs[j].first_lsn < r->seg[k])
			j++;
		char name[32];
		seg_name(name, sizeof(name), r->seg[k]);
		if (j == sc->nsegs || sc->segs[j].first_lsn != r->seg[k]) {
			int rc = lost_push(sc, r->seg[k]);
			if (rc)
				return rc;
			continue;
		}
		const struct seg *sg = &sc->segs[j];
		char path[PATH_MAX];
		struct logseg ls;
		struct seg_header h;
		uint8_t *buf = NULL;
		size_t cap = 0;
		seg_path(sc, sg, path, sizeof(path));
		int rc = logseg_open(&ls, sc->io, path, &buf, &cap, SEG_HDR_SIZE);
		if (rc)
			return rc;
		int hrc = logseg_header(&ls, &h);
		uint64_t size = ls.size;
		logseg_close(&ls);
		free(buf);
		if (hrc < 0 && hrc != -EBADMSG && hrc != -EPROTONOSUPPORT)
			return hrc;
		/* Value bytes carry their own checksums: a damaged header loses none of them, but
		 * the damage may reach past it (a zeroed first sector): the live values in the
		 * segment are read and checked (assess_lost), so that a strict open refuses what
		 * kv_check would, and salvage names the keys. */
		if (hrc || h.first_lsn != sg->first_lsn) {
			report_covered_damage(sc, j, 0);
			rc = u64_push(&sc->suspect, &sc->nsuspect, sg->first_lsn);
			if (rc)
				return rc;
		}
		if (size < r->end[k]) {
			rc = lost_push(sc, r->seg[k]);
			if (rc)
				return rc;
		}
	}
	return 0;
}

/* The segment files (with their sizes), checkpoints and temporaries in dir. */
static int list_store(struct scan *sc, char **names, size_t n, uint64_t *cks, size_t *ncks)
{
	int rc = 0;
	*ncks = 0;
	for (size_t k = 0; k < n && !rc; k++) {
		uint64_t v;
		if (seg_parse_name(names[k], &v) == 0) {
			struct seg *sg = &sc->segs[sc->nsegs++];
			sg->first_lsn = v;
			snprintf(sg->name, sizeof(sg->name), "%s", names[k]);
		} else if (ckpt_parse_name(names[k], &v) == 0) {
			cks[(*ncks)++] = v;
		} else if (ends_with(names[k], ".kvc.tmp")) {
			rc = name_push(&sc->plan->remove, &sc->plan->n_remove, names[k]);
		} else if (!strncmp(names[k], "snap-", 5) && ends_with(names[k], ".kvs")) {
			/* the whole-data snapshot of format 1 (kvfs 0.1) */
			report_damage(sc->rep, names[k], 0, KV_DAMAGE_FORMAT_1);
			rc = -EPROTONOSUPPORT;
		}
	}
	qsort(sc->segs, sc->nsegs, sizeof(*sc->segs), cmp_seg);
	qsort(cks, *ncks, sizeof(*cks), cmp_u64_desc);
	return rc;
}

/* Give segs every segment (its size now) and seal those before the last. */
static int register_segments(struct scan *sc, struct segtab *segs)
{
	for (size_t i = 0; i < sc->nsegs; i++) {
		char path[PATH_MAX];
		int fd, rc;
		seg_path(sc, &sc->segs[i], path, sizeof(path));
		rc = sc->io->open(sc->io, path, O_RDONLY, 0, &fd);
		if (!rc) {
			rc = sc->io->fsize(sc->io, fd, &sc->segs[i].size);
			kvio_close_quiet(sc->io, fd);
		}
		if (!rc && segs)
			rc = segtab_add(segs, sc->segs[i].first_lsn, sc->segs[i].size);
		if (rc)
			return rc;
		if (i && segs)
			segtab_seal(segs, sc->segs[i - 1].first_lsn, sc->segs[i - 1].size,
				    sc->segs[i].first_lsn - 1);
	}
	return 0;
}

/* The segment the log continues in: the one appends resume in, or else the last one kept that
 * holds the log's last record (LSN next - 1; a new segment starts after it). NULL when none
 * does (an empty log, or one that starts at next). */
static const struct seg *continues_in(const struct scan *sc)
{
	const struct rplan *p = sc->plan;
	const struct seg *in = NULL;
	for (size_t j = 0; j < sc->nsegs; j++) {
		const struct seg *sg = &sc->segs[j];
		if (p->have_resume ? sg->first_lsn == p->resume_first
				   : sg->first_lsn < sc->expected && !listed(p->remove, p->n_remove, sg->name) &&
				     !listed(p->aside, p->n_aside, sg->name))
			in = sg;
	}
	return in;
}

/* model: tests/model/values_on_disk.pml, recovery's segment removal */
/* What goes of the segments wholly before the checkpoint (segs[0, start)) that it does not
 * reference, and of the older checkpoints: removed once its name is durable (recovery_commit),
 * or, after a checkpoint loaded past damage, set aside instead (they may hold the values of its
 * lost entries, an older checkpoint their map). Decided after the scan, by one rule: the segment
 * the log continues in goes on neither list. It may lie wholly before the checkpoint (the
 * checkpoint's own LSN is its last record, and the segment after it lost its header or was
 * never made): without it the log would end short of the checkpoint until the next segment's
 * header is durable, and a power cut in between would leave a store that refuses to open. */
static int plan_before_checkpoint(struct scan *sc, size_t start, const uint64_t *cks, size_t ncks,
				  uint64_t ck_lsn)
{
	struct rplan *p = sc->plan;
	char ***gone = p->ckpt_rewrite ? &p->aside : &p->covered;
	size_t *ngone = p->ckpt_rewrite ? &p->n_aside : &p->n_covered;
	const struct seg *in = continues_in(sc);
	int rc;

	for (size_t j = 0; j < start && j < sc->nsegs; j++) {
		if (&sc->segs[j] == in || ckpt_refs_has(&p->refs, sc->segs[j].first_lsn))
			continue;
		rc = name_push(gone, ngone, sc->segs[j].name);
		if (rc)
			return rc;
	}
	for (size_t k = 0; k < ncks; k++) {
		char name[64];
		if (cks[k] >= ck_lsn)
			continue;
		ckpt_name(name, sizeof(name), cks[k]);
		if (listed(p->aside, p->n_aside, name))
			continue; /* damaged, already set aside */
		rc = name_push(gone, ngone, name);
		if (rc)
			return rc;
	}
	return 0;
}

int recovery_scan(const struct recovery_in *in, struct kvindex **ix, struct segtab *segs,
		  struct rplan **plan_out, struct kv_report *rep)
{
	const struct kvio *io = in->io;
	const char *dir = in->dir;
	enum recovery_mode mode = in->mode;
	struct scan sc = { .io = io, .dir = dir, .mode = mode, .rep = rep, .segs_tab = segs,
			   .readonly = in->readonly };
	char **names = NULL;
	size_t n = 0, ncks = 0;
	uint64_t *cks = NULL, ck_lsn = 0;
	int rc;

	memset(rep, 0, sizeof(*rep));
	sc.plan = calloc(1, sizeof(*sc.plan));
	if (!sc.plan)
		return -ENOMEM;
	sc.plan->salvage = mode == RECOVER_SALVAGE;
	sc.plan->tail_marked = 1;
	rc = io->list_dir(io, dir, &names, &n);
	if (rc)
		goto out;
	sc.segs = calloc(n ? n : 1, sizeof(*sc.segs));
	cks = calloc(n ? n : 1, sizeof(*cks));
	if (!sc.segs || !cks) {
		rc = -ENOMEM;
		goto out;
	}
	rc = list_store(&sc, names, n, cks, &ncks);
	if (rc == -EPROTONOSUPPORT) {
		rc = -EUCLEAN;
		goto out;
	}
	if (rc)
		goto out;
	if (sc.nsegs && sc.segs[0].first_lsn == 0) {
		/* LSNs start at 1: no segment of this store's making is named 0 (sorted first) */
		report_damage(rep, sc.segs[0].name, 0, KV_DAMAGE_BAD_HEADER);
		if (mode == RECOVER_STRICT) {
			rc = -EUCLEAN;
			goto out;
		}
		rc = name_push(&sc.plan->aside, &sc.plan->n_aside, sc.segs[0].name);
		if (rc)
			goto out;
		memmove(sc.segs, sc.segs + 1, --sc.nsegs * sizeof(*sc.segs));
	}
	rep->segments = sc.nsegs;
	rc = register_segments(&sc, segs);
	if (rc)
		goto out;

	rc = load_checkpoint(&sc, ix, cks, ncks, &ck_lsn);
	if (rc)
		goto out;
	sc.ix = ix ? *ix : NULL;
	sc.expected = ck_lsn + 1;
	rc = check_references(&sc);
	if (rc)
		goto out;

	/* Segments wholly before the checkpoint are not read (plan_before_checkpoint decides, once
	 * the scan has found where the log continues, which of them go). */
	size_t start = 0;
	while (start + 1 < sc.nsegs && sc.segs[start + 1].first_lsn <= sc.expected)
		start++;
	if (start < sc.nsegs && sc.segs[start].first_lsn > sc.expected) {
		struct seg *sg = &sc.segs[start];
		report_damage(rep, sg->name, 0, KV_DAMAGE_CHECKPOINT_GAP);
		if (mode == RECOVER_STRICT) {
			rc = -EUCLEAN;
			goto out;
		}
		for (size_t j = start; j < sc.nsegs; j++) {
			rc = name_push(&sc.plan->aside, &sc.plan->n_aside, sc.segs[j].name);
			if (rc)
				goto out;
		}
		sc.nsegs = start; /* nothing after the gap is replayed */
	}
	sc.last_lsn = start < sc.nsegs ? sc.segs[start].first_lsn - 1 : 0; /* no log: none yet */
	uint64_t to_read = 0;
	for (size_t i = start; i < sc.nsegs; i++)
		to_read += sc.segs[i].size;
	progress_start(&sc.meter, in->progress, KV_WORK_RECOVERY, to_read);
	for (size_t i = start; i < sc.nsegs; i++) {
		int stop;
		rc = scan_segment(&sc, i, &stop);
		if (rc)
			goto out;
		if (stop)
			break;
	}
	progress_end(&sc.meter);
	if (ck_lsn && sc.last_lsn < ck_lsn && !rep->damaged) {
		/* The segment appended to when the checkpoint was written holds its LSN (or starts
		 * right after it) and is never deleted while it is the last: a log that ends short of
		 * it lost its end (a missing last segment), and the writes after the checkpoint with it. */
		const char *file = sc.nsegs ? sc.segs[sc.nsegs - 1].name : "";
		char ck[64];
		if (!sc.nsegs) {
			ckpt_name(ck, sizeof(ck), ck_lsn);
			file = ck;
		}
		report_damage(rep, file, 0, KV_DAMAGE_LOG_END_LOST);
		if (mode == RECOVER_STRICT) {
			rc = -EUCLEAN;
			goto out;
		}
	}
	rep->last_lsn = sc.expected - 1;
	rep->log_marked = sc.plan->tail_marked;
	sc.plan->next_lsn = sc.expected;
	rc = assess_lost(&sc);
	if (rc)
		goto out;
	/* Continue in the last segment only if the log is contiguous up to the next LSN there. */
	if (sc.plan->have_resume && sc.last_lsn != sc.expected - 1)
		sc.plan->have_resume = 0;
	rc = plan_before_checkpoint(&sc, start, cks, ncks, ck_lsn);
	if (rc)
		goto out;
out:
	if (rc == -EUCLEAN)
		rep->last_lsn = sc.expected ? sc.expected - 1 : 0; /* what the log holds before the damage */
	else if (rc && rc != -ENOMEM && !rep->problem) {
		rep->problem = KV_PROBLEM_FILE;
		rep->err = rc;
		snprintf(rep->file, sizeof(rep->file), "%s", sc.at);
	}
	kvio_free_names(names, n);
	free(sc.buf);
	free(sc.segs);
	free(sc.lost);
	free(sc.dmg);
	free(sc.vdmg);
	free(sc.suspect);
	undo_free(&sc);
	free(cks);
	if (rc) {
		recovery_free(sc.plan);
		return rc;
	}
	*plan_out = sc.plan;
	return 0;
}

/* A name for a damaged file set aside: NAME.damaged, or NAME.damaged-2, -3... if taken. */
static int aside_path(const struct kvio *io, const char *dir, const char *name, char *out, size_t len)
{
	for (int k = 1; k < 1000; k++) {
		int fd;
		if (k == 1)
			snprintf(out, len, "%s/%s.damaged", dir, name);
		else
			snprintf(out, len, "%s/%s.damaged-%d", dir, name, k);
		int rc = io->open(io, out, O_RDONLY, 0, &fd);
		if (rc == -ENOENT)
			return 0;
		if (rc)
			return rc;
		rc = io->close(io, fd);
		if (rc)
			return rc;
	}
	return -EEXIST;
}

/* Remove a copy that salvage made, or began, before it gives up. 0 once its removal is durable. */
static int drop_copy(const struct kvio *io, const char *dir, const char *path)
{
	int rc = io->unlink(io, path);
	if (rc == -ENOENT)
		rc = 0;
	return rc ? rc : io->fsync_dir(io, dir);
}

/* Copy a file whole to `to` and make the copy durable: the damaged segment is kept aside
 * this way (not renamed) so that a crash at any point leaves either the original untouched or
 * a durable copy beside it before the original is cut to its valid prefix. A copy that fails
 * (a full disk, an I/O error) is removed again, so that no empty or partial `*.damaged` passes
 * for a copy; *left is set when even that failed. */
static int copy_aside(const struct kvio *io, const char *dir, const char *from, const char *to,
		      int *left)
{
	uint8_t *buf = NULL;
	uint64_t size;
	int fd = -1, rc;

	*left = 0;
	rc = log_read_file(io, from, &buf, &size);
	if (rc)
		return rc;
	rc = io->open(io, to, O_RDWR | O_CREAT | O_EXCL, 0600, &fd);
	if (rc)
		goto out; /* nothing made */
	rc = io->pwrite(io, fd, buf, (size_t)size, 0);
	if (!rc)
		rc = io->fdatasync(io, fd);
	rc = kvio_close_after(io, fd, rc);
	if (!rc)
		rc = io->fsync_dir(io, dir);
	if (rc)
		*left = drop_copy(io, dir, to) != 0;
out:
	free(buf);
	return rc;
}

/* The bytes of the files the plan copies aside: what a salvage needs free to make its copies. */
static int copies_bytes(const struct kvio *io, const char *dir, const struct rplan *plan, uint64_t *total)
{
	char path[PATH_MAX];
	*total = 0;
	for (size_t k = 0; k < plan->n_copy; k++) {
		uint64_t size = 0;
		int fd, rc;
		snprintf(path, sizeof(path), "%s/%s", dir, plan->copy[k]);
		rc = io->open(io, path, O_RDONLY, 0, &fd);
		if (rc)
			return rc;
		rc = io->fsize(io, fd, &size);
		kvio_close_quiet(io, fd);
		if (rc)
			return rc;
		*total += size;
	}
	return 0;
}

static int listed(char *const *list, size_t n, const char *name)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(list[k], name))
			return 1;
	return 0;
}

/* segs forgets a segment file the plan sets aside or deletes. */
static void forget(struct segtab *segs, const char *name)
{
	uint64_t first;
	if (segs && seg_parse_name(name, &first) == 0)
		segtab_forget(segs, first);
}

/* A copy failed (left: and it could not be removed): take away the copies made before it, so
 * that the refusal leaves the store as it found it, and say so in the report with the bytes
 * every copy needs (a full disk is the likely cause). */
static void undo_copies(const struct kvio *io, const char *dir, char **made, size_t n_made,
			const struct rplan *plan, struct kv_report *rep, int left)
{
	for (size_t k = 0; k < n_made; k++)
		left |= drop_copy(io, dir, made[k]) != 0;
	rep->set_aside = 0;
	rep->aside_unchanged = !left;
	if (copies_bytes(io, dir, plan, &rep->aside_bytes))
		rep->aside_bytes = 0; /* unknown: the words then give no figure */
}

int recovery_commit(const struct kvio *io, const char *dir, struct rplan *plan, struct segtab *segs,
		    struct kv_report *rep)
{
	char path[PATH_MAX], to[PATH_MAX], name[32];
	const char *at = ""; /* the file being changed: a failure names it */
	char **made = NULL;  /* the copies made so far */
	size_t n_made = 0;
	int rc = 0;

	/* Copies first, each durable with its name before any file is renamed aside: the
	 * renames take away the later segments that vouch for the damaged one (a later record
	 * or segment is what tells damage from a torn tail), so a crash between a rename and
	 * its copy would leave a damaged segment whose end passes for a crash's tail, cut by the
	 * next open with no copy kept anywhere (KV_SEED=7 KV_SALVAGE=2:77:kill). Nothing else is
	 * changed before every copy is made: a copy that fails (a full disk) takes the ones made
	 * before it away again, and the refusal says what the copies need (aside_bytes). */
	for (size_t k = 0; k < plan->n_copy; k++) {
		int left = 0;
		at = plan->copy[k];
		snprintf(path, sizeof(path), "%s/%s", dir, at);
		rc = aside_path(io, dir, at, to, sizeof(to));
		if (!rc)
			rc = name_push(&made, &n_made, to);
		if (!rc)
			rc = copy_aside(io, dir, path, to, &left); /* a rewrite is cut below, as the resume segment */
		if (rc) {
			undo_copies(io, dir, made, n_made, plan, rep, left);
			goto out;
		}
		rep->set_aside++;
	}
	for (size_t k = 0; k < plan->n_aside; k++) {
		at = plan->aside[k];
		snprintf(path, sizeof(path), "%s/%s", dir, at);
		rc = aside_path(io, dir, plan->aside[k], to, sizeof(to));
		if (!rc)
			rc = io->rename(io, path, to);
		if (rc)
			goto out;
		forget(segs, plan->aside[k]);
		rep->set_aside++;
	}
	if (plan->n_aside || plan->n_copy || plan->salvage)
		rep->salvaged = rep->damaged;
	for (size_t k = 0; k < plan->n_remove; k++) {
		at = plan->remove[k];
		snprintf(path, sizeof(path), "%s/%s", dir, at);
		rc = io->unlink(io, path);
		if (rc && rc != -ENOENT)
			goto out;
		forget(segs, plan->remove[k]);
	}
	if (plan->have_resume && plan->resume_size > plan->resume_end) {
		int fd;
		seg_name(name, sizeof(name), plan->resume_first);
		at = name;
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		rc = io->open(io, path, O_RDWR | O_NOFOLLOW, 0600, &fd);
		if (rc)
			goto out;
		rc = io->ftruncate(io, fd, plan->resume_end);
		if (!rc)
			rc = io->fdatasync(io, fd);
		rc = kvio_close_after(io, fd, rc);
		if (rc)
			goto out;
		plan->resume_size = plan->resume_end;
	}
	/* Everything replayed is about to be called durable: the scan synced every segment it
	 * read (a killed process may have left their last records in the page cache only); the
	 * directory, which holds the checkpoint's and the segments' names, is synced here. */
	at = "";
	rc = io->fsync_dir(io, dir);
	if (rc)
		goto out;
	/* Only now that the checkpoint's name is durable may what it replaces go. Salvage deletes
	 * nothing (the covered segments may hold the damage it reports), nor does an open that
	 * found damage. */
	if (rep->damaged || plan->salvage || !plan->n_covered)
		goto out;
	for (size_t k = 0; k < plan->n_covered; k++) {
		at = plan->covered[k];
		snprintf(path, sizeof(path), "%s/%s", dir, at);
		rc = io->unlink(io, path);
		if (rc && rc != -ENOENT)
			goto out;
		forget(segs, plan->covered[k]);
		rep->files_removed++;
	}
	at = "";
	rc = io->fsync_dir(io, dir);
out:
	if (rc) {
		rep->problem = KV_PROBLEM_FILE;
		rep->err = rc;
		snprintf(rep->file, sizeof(rep->file), "%s", at);
	}
	for (size_t k = 0; k < n_made; k++)
		free(made[k]);
	free(made);
	return rc;
}

int recovery_aside_bytes(const struct kvio *io, const char *dir, const struct rplan *plan, uint64_t *bytes)
{
	return copies_bytes(io, dir, plan, bytes);
}

void recovery_resume(const struct rplan *plan, uint64_t *next_lsn, struct wal_resume *resume,
		     int *resume_out, uint64_t *wal_bytes)
{
	*next_lsn = plan->next_lsn;
	*resume_out = plan->have_resume;
	resume->first_lsn = plan->resume_first;
	resume->end = plan->resume_end;
	resume->salt = plan->resume_salt;
	resume->version = plan->resume_version;
	*wal_bytes = plan->wal_bytes;
}

int recovery_tail_vouched(const struct rplan *plan)
{
	return plan->tail_marked;
}

int recovery_rewrites_checkpoint(const struct rplan *plan)
{
	return plan->ckpt_rewrite;
}

const struct ckpt_refs *recovery_refs(const struct rplan *plan)
{
	return &plan->refs;
}

void recovery_free(struct rplan *plan)
{
	if (!plan)
		return;
	for (size_t k = 0; k < plan->n_remove; k++)
		free(plan->remove[k]);
	for (size_t k = 0; k < plan->n_aside; k++)
		free(plan->aside[k]);
	for (size_t k = 0; k < plan->n_covered; k++)
		free(plan->covered[k]);
	for (size_t k = 0; k < plan->n_copy; k++)
		free(plan->copy[k]);
	free(plan->copy);
	free(plan->remove);
	free(plan->aside);
	free(plan->covered);
	for (size_t k = 0; k < plan->n_lost; k++)
		free(plan->lost[k].key);
	free(plan->lost);
	ckpt_refs_free(&plan->refs);
	free(plan);
}

size_t recovery_lost_keys(const struct rplan *plan, size_t i, const void **key, size_t *klen)
{
	if (i < plan->n_lost) {
		*key = plan->lost[i].key;
		*klen = plan->lost[i].len;
	}
	return plan->n_lost;
}
