/* Corruption sweeps: a small store (a snapshot and a few 4 KiB log segments) is damaged in every
 * way we can enumerate — the last segment cut at every byte, every bit of the log and the
 * snapshot flipped, every 512-byte sector zeroed, garbage appended — and each case must end in
 * either a clean open whose state is a prefix of the written history that lost only the damaged
 * tail (and says so), or a refusal that changed nothing on disk. kv_check must agree with open,
 * and after a refusal kv_salvage must leave a store that opens strictly, holding exactly the
 * records before the first damaged one, with the damaged files kept aside.
 *
 * Below the snapshot: a second store keeps on disk the log segments its snapshot covers (as a
 * crash or a failed unlink right after a snapshot leaves them), and damage in records the
 * snapshot covers — a flipped bit, a zeroed sector, a cut or missing segment — may cost nothing:
 * a strict open succeeds with every record, and salvage keeps every record too, the damaged bytes
 * still on disk. Damage in its records after the snapshot follows the rules above.
 *
 * A segment wholly before the snapshot that still holds live values: damage that reaches its
 * header makes open read those values, so kv_check and a strict open give the same verdict;
 * past a good header only check (and a read) find damaged value bytes.
 *
 * Seeded (the garbage, and which bit of each byte the one-bit-per-byte sweeps flip): rerun with
 * KV_SEED=N. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"
#include "simstore.h"
#include "testutil.h"

#define NREC 190   /* records written in all */
#define NSNAP 40   /* records the snapshot covers */
#define C_NREC 120 /* the same for the store that keeps its covered segments */
#define C_NSNAP 80
#define MAXFILES 32
#define MAXRECS 128 /* records in one segment */

static unsigned long cases;
static uint64_t seed;
/* the store under test: records written, records its snapshot covers */
static int nrec_now, nsnap_now;

/* Under a sanitizer each case costs several times more: the bit-flip sweeps then take every
 * bit of every FLIP_STRIDE-th byte, from a seeded start, so successive runs cover every byte. */
#if defined(__SANITIZE_ADDRESS__)
#define FLIP_STRIDE 3
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FLIP_STRIDE 3
#endif
#endif
#ifndef FLIP_STRIDE
#define FLIP_STRIDE 1
#endif

static void key_of(char *k, size_t len, int i)
{
	snprintf(k, len, "k%03d", i);
}

/* Values long enough that the log spans a few segments, each distinct so a misread shows. */
static void val_of(char *v, size_t len, int i)
{
	snprintf(v, len, "value%03d-%032d", i, i * 7919);
}

/* The store a case starts from: nsnap records, a snapshot, the rest, a clean close. With
 * keep_covered the snapshot cannot unlink the segments it covers (their unlink fails), so they
 * stay on disk beside it. */
static struct faultio *build_store(int nrec, int nsnap, bool keep_covered)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	struct kv *s = NULL;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	char k[16], v[64];
	for (int i = 0; i < nrec; i++) {
		if (i == nsnap) {
			if (keep_covered)
				ck_assert_int_eq(faultio_fail(f, FIO_OP_UNLINK,
							      faultio_count(f, FIO_OP_UNLINK) + 1, -EIO, true), 0);
			ck_assert_int_eq(kv_snapshot(s), 0);
			faultio_clear_faults(f);
		}
		key_of(k, sizeof k, i);
		val_of(v, sizeof v, i);
		put_str(s, k, v);
	}
	/* The covered records' values live on in the log until rewritten: the store that keeps
	 * its covered segments writes them again (the same values), so that those segments hold
	 * nothing any key still reads and damage there costs nothing. */
	for (int i = 0; keep_covered && i < nsnap; i++) {
		key_of(k, sizeof k, i);
		val_of(v, sizeof v, i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

struct files {
	char snap[300];
	char seg[MAXFILES][300];
	int nseg;
	/* each segment's records, as written */
	struct sim_rec rec[MAXFILES][MAXRECS];
	size_t nrec[MAXFILES];
};

static void list_files(struct faultio *f, struct files *fl)
{
	char **names;
	size_t n;
	memset(fl, 0, sizeof *fl);
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(names[i], "wal-", 4) && strstr(names[i], ".log") &&
		    !strstr(names[i], ".damaged")) {
			ck_assert_int_lt(fl->nseg, MAXFILES);
			snprintf(fl->seg[fl->nseg++], sizeof fl->seg[0], SIM_DIR "/%s", names[i]);
		} else if (!strncmp(names[i], "ckpt-", 5) && strlen(names[i]) == 25) {
			snprintf(fl->snap, sizeof fl->snap, SIM_DIR "/%s", names[i]);
		}
	}
	faultio_free_names(names, n);
	for (int i = 0; i < fl->nseg; i++)
		fl->nrec[i] = sim_records(f, fl->seg[i], fl->rec[i], MAXRECS);
}

struct prefix_arg {
	int count;
	int bad;
};

/* count: one past the highest key number (keys are "k" and digits); bad: another key */
static int count_entry(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		       size_t mlen)
{
	struct prefix_arg *a = arg;
	const char *k = key;
	int n = 0;
	(void)size, (void)meta, (void)mlen;
	if (klen < 2 || k[0] != 'k')
		a->bad = 1;
	for (size_t i = 1; i < klen; i++) {
		if (k[i] < '0' || k[i] > '9')
			a->bad = 1;
		n = n * 10 + (k[i] - '0');
	}
	if (n + 1 > a->count)
		a->count = n + 1;
	return 0;
}

/* The number p of records whose state the store holds (keys k000..k(p-1), exactly their
 * values, nothing else), or -1 when its state is not the state after any prefix. A key salvage
 * deleted (its bytes were lost) counts as held when lost is not NULL; *lost gets how many. */
/* the highest key number state_prefix_lost found deleted (-1: none) */
static int max_lost_key;

static int state_prefix_lost(struct kv *s, int *lost)
{
	struct prefix_arg a = { 0, 0 };
	ck_assert_int_eq(kv_scan(s, "", 0, count_entry, &a), 0);
	if (lost)
		*lost = 0;
	if (a.count > nrec_now || a.bad)
		return -1;
	char k[16], v[64];
	for (int i = 0; i < a.count; i++) {
		key_of(k, sizeof k, i);
		val_of(v, sizeof v, i);
		void *got = NULL;
		uint64_t len = 0;
		int rc = kv_get(s, k, strlen(k), &got, &len);
		if (rc == -ENOENT && lost) { /* salvage deleted it: its bytes were lost */
			(*lost)++;
			if (i > max_lost_key)
				max_lost_key = i;
			continue;
		}
		if (rc != 0)
			return -1;
		int same = len == strlen(v) && !memcmp(got, v, len);
		free(got);
		if (!same)
			return -1;
	}
	return a.count;
}

static int state_prefix(struct kv *s)
{
	return state_prefix_lost(s, NULL);
}

static int open_strict(struct faultio *f, struct kv **s, struct kv_report *rep)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	o.recovery = KV_RECOVERY_STRICT;
	*s = NULL;
	return kv_open(s, SIM_DIR, &o, rep);
}

static int damaged_aside(struct faultio *f)
{
	char **names;
	size_t n;
	int found = 0;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strstr(names[i], ".damaged"))
			found = 1;
	faultio_free_names(names, n);
	return found;
}

/* The verdict on one damaged disk (f is consumed). Returns the records a clean open kept, -1
 * after a refusal. silent_loss_ok: the damage is a cut, which at a record boundary is
 * indistinguishable from a shorter history, so losing records needs no report then.
 * salvage_keeps: after a refusal, the records salvage must keep (those before the first
 * damaged one); -1 when any prefix will do. */
static int judge(struct faultio *f, const char *what, int silent_loss_ok, int salvage_keeps,
		 struct kv_report *out)
{
	int kept = -1;
	struct faultio *before;
	char why[256];
	struct kv_report crep, orep;
	struct kv *s;
	cases++;
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	int crc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep);
	ck_assert_msg(crc == 0 || crc == -EUCLEAN, "%s: kv_check %d", what, crc);
	/* check must be read-only whatever it decides */
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0,
		      "%s: kv_check changed the disk: %s", what, why);
	int orc = open_strict(f, &s, &orep);
	ck_assert_msg(orc == 0 || orc == -EUCLEAN, "%s: kv_open %d (%s)", what, orc, tu_report(&orep));
	ck_assert_msg(crc == orc, "%s: kv_check %d but kv_open %d (%s / %s)", what, crc, orc,
		      tu_report(&crep), tu_report(&orep));
	if (orc == 0) {
		int p = state_prefix(s);
		ck_assert_msg(p >= 0, "%s: open state is not a prefix of the history", what);
		/* a clean open may only lose the damaged tail, and must say it did; the snapshot's
		 * records are never in the tail */
		ck_assert_msg(p >= nsnap_now, "%s: clean open lost snapshot records (%d)", what, p);
		if (p < nrec_now && !silent_loss_ok)
			ck_assert_msg(orep.tail_bytes_cut > 0,
				      "%s: %d records lost without a report", what, nrec_now - p);
		ck_assert_int_eq(kv_close(s), 0);
		kept = p;
	} else {
		ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0,
			      "%s: refusal changed the disk: %s", what, why);
		ck_assert_msg(orep.damaged == 1, "%s: refused without damage reported", what);
		struct kv_report srep;
		int src = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &srep);
		ck_assert_msg(src == 0, "%s: kv_salvage %d (%s)", what, src, tu_report(&srep));
		ck_assert_msg(damaged_aside(f), "%s: salvage kept nothing aside", what);
		/* values whose bytes the damage took are deleted (their bytes stay in the copy set
		 * aside) and salvage names them: then a strict open succeeds */
		int lost = 0;
		orc = open_strict(f, &s, &orep);
		ck_assert_msg(orc == 0, "%s: after salvage kv_open %d (%s)", what, orc, tu_report(&orep));
		int p = state_prefix_lost(s, &lost);
		ck_assert_msg(p >= 0, "%s: salvaged state is not a prefix", what);
		ck_assert_msg((uint64_t)lost <= srep.lost_keys, "%s: %d values gone, salvage named %"
			      PRIu64, what, lost, srep.lost_keys);
		if (salvage_keeps >= 0)
			ck_assert_msg(p == salvage_keeps, "%s: salvage kept %d records, not the %d before "
				      "the damage", what, p, salvage_keeps);
		ck_assert_int_eq(kv_close(s), 0);
	}
	faultio_destroy(before);
	faultio_destroy(f);
	if (out)
		*out = orep;
	return kept;
}

static struct faultio *base;
static struct files base_files;

static void setup(void)
{
	nrec_now = NREC;
	nsnap_now = NSNAP;
	base = build_store(NREC, NSNAP, false);
	list_files(base, &base_files);
	ck_assert_int_ge(base_files.nseg, 3);
	ck_assert(base_files.snap[0]);
}

/* The store whose snapshot's covered segments stay on disk. */
static void setup_covered(void)
{
	nrec_now = C_NREC;
	nsnap_now = C_NSNAP;
	base = build_store(C_NREC, C_NSNAP, true);
	list_files(base, &base_files);
	ck_assert(base_files.snap[0]);
	/* the precondition of every case: a segment the snapshot wholly covers, then one that
	 * holds covered records and later ones */
	ck_assert_int_ge(base_files.nseg, 3);
	ck_assert_uint_ge(base_files.nrec[0], 1);
	ck_assert_msg(base_files.rec[0][0].lsn == 1, "the covered segments should still be there");
	ck_assert_int_le(base_files.rec[0][base_files.nrec[0] - 1].lsn, C_NSNAP);
	ck_assert_int_le(base_files.rec[1][0].lsn, C_NSNAP);
	ck_assert_int_gt(base_files.rec[1][base_files.nrec[1] - 1].lsn, C_NSNAP);
}

static void teardown(void)
{
	faultio_destroy(base);
}

static size_t file_size(const char *path)
{
	bool dir;
	uint64_t size;
	ck_assert_int_eq(faultio_stat(base, path, &dir, &size), 0);
	return (size_t)size;
}

/* The bytes of every value as stored: the last VLEN bytes of its record (one PUT each). */
#define VLEN 41

/* What salvage must keep after damage from byte off of path on: the records before the first
 * record of that segment that reaches past off (a damaged header loses the whole segment), or
 * when none does, every record of it. -1 (any prefix) for a file that is not a segment, and
 * when that first damaged record is one the snapshot covers: what then happens is the business
 * of the below-the-snapshot tests. one_byte: the damage is that byte alone; when it is a value
 * byte of a record after the snapshot, every record is kept (every record here was synced before
 * the next was written, so each is vouched for) and only that record's key is lost: then the
 * highest key held is the last one, unless the damaged record is that key's. */
static int salvage_keeps(const char *path, uint64_t off, int one_byte)
{
	for (int i = 0; i < base_files.nseg; i++) {
		uint64_t lsn = 0;
		if (strcmp(path, base_files.seg[i]))
			continue;
		for (size_t r = 0; r < base_files.nrec[i] && !lsn; r++)
			if (base_files.rec[i][r].off + base_files.rec[i][r].size > off) {
				const struct sim_rec *rc = &base_files.rec[i][r];
				lsn = rc->lsn;
				if (one_byte && lsn > (uint64_t)nsnap_now && rc->size > REC_HDR_SIZE + VLEN &&
				    off >= rc->off + rc->size - VLEN && off >= rc->off)
					/* (records past nrec_now rewrite keys below the snapshot's) */
					return lsn == (uint64_t)nrec_now ? nrec_now - 1 : nrec_now;
			}
		if (!lsn && i + 1 < base_files.nseg && base_files.nrec[i + 1])
			lsn = base_files.rec[i + 1][0].lsn;
		if (!lsn)
			return nrec_now;
		/* (the covered store's rewrites of covered keys come last: losing them loses nothing) */
		return lsn <= (uint64_t)nsnap_now ? -1 : (int)(lsn - 1 < (uint64_t)nrec_now ? lsn - 1 : (uint64_t)nrec_now);
	}
	return -1;
}

START_TEST(undamaged_store_opens_whole)
{
	struct faultio *f;
	ck_assert_int_eq(faultio_clone(base, &f), 0);
	struct kv *s;
	struct kv_report rep;
	ck_assert_int_eq(open_strict(f, &s, &rep), 0);
	ck_assert_int_eq(state_prefix(s), NREC);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(last_segment_cut_at_every_offset_recovers_a_prefix)
{
	const char *last = base_files.seg[base_files.nseg - 1];
	size_t size = file_size(last);
	char what[400];
	int prev = 0;
	for (size_t off = 0; off < size; off++) {
		struct faultio *f;
		struct kv_report rep;
		ck_assert_int_eq(faultio_clone(base, &f), 0);
		ck_assert_int_eq(faultio_truncate(f, last, off), 0);
		snprintf(what, sizeof what, "%s cut at %zu", last, off);
		int p = judge(f, what, 1, -1, &rep);
		/* a cut is never damage, and a longer file never recovers less */
		ck_assert_msg(p >= 0, "%s: refused (%s)", what, tu_report(&rep));
		ck_assert_msg(p >= prev, "%s: kept %d records, a shorter cut kept %d", what, p, prev);
		/* a cut inside a record is reported as exactly the bytes from that record on (a cut
		 * inside the header deletes the segment, and then the previous segment's unused
		 * preallocation is what gets cut) */
		if (rep.tail_bytes_cut > 0 && !strcmp(rep.tail_file, last + strlen(SIM_DIR "/")))
			ck_assert_msg(rep.tail_offset + rep.tail_bytes_cut == off,
				      "%s: reported cut %" PRIu64 "+%" PRIu64, what, rep.tail_offset,
				      rep.tail_bytes_cut);
		prev = p;
	}
	/* the longest cut tears only the close mark after the last record */
	ck_assert_int_eq(prev, NREC);
}
END_TEST

/* A file other than the last segment has intact records after it, so damage there may never
 * end in a clean open that lost records: refused, or (harmless bits) everything kept. */
static void expect_whole_or_refused(int kept, const char *path, const char *what)
{
	if (strcmp(path, base_files.seg[base_files.nseg - 1]))
		ck_assert_msg(kept < 0 || kept == nrec_now, "%s: clean open kept only %d records", what,
			      kept);
}

static void flip_every_bit(const char *path)
{
	size_t size = file_size(path);
	char what[400];
	for (size_t off = (size_t)(seed % FLIP_STRIDE); off < size; off += FLIP_STRIDE)
		for (int bit = 0; bit < 8; bit++) {
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << bit)), 0);
			snprintf(what, sizeof what, "%s bit %d of byte %zu flipped", path, bit, off);
			expect_whole_or_refused(judge(f, what, 0, salvage_keeps(path, off, 1), NULL), path,
						what);
		}
}

/* Every bit of one middle segment, the last one and the snapshot: the other segments are read
 * by the same code, and all of them would take minutes under ASan. */
START_TEST(bit_flip_in_middle_segment_is_refused_or_cut)
{
	flip_every_bit(base_files.seg[base_files.nseg / 2]);
}
END_TEST

START_TEST(bit_flip_in_last_segment_is_refused_or_cut)
{
	flip_every_bit(base_files.seg[base_files.nseg - 1]);
}
END_TEST

START_TEST(bit_flip_in_snapshot_is_refused)
{
	flip_every_bit(base_files.snap);
}
END_TEST

/* The first byte of path's [off, off + len) that is not zero (zeroing it is damage), or the end
 * of the file when there is none (zeroing zeros damages nothing). */
static uint64_t first_nonzero(const char *path, uint64_t off, size_t len)
{
	void *data;
	size_t size;
	ck_assert_int_eq(faultio_read_file(base, path, &data, &size), 0);
	const uint8_t *p = data;
	uint64_t at = size;
	for (uint64_t i = off; i < off + len && i < size; i++)
		if (p[i]) {
			at = i;
			break;
		}
	free(data);
	return at;
}

static void zero_every_sector(const char *path)
{
	size_t size = file_size(path);
	static const uint8_t zeros[FIO_SECTOR];
	char what[400];
	for (size_t off = 0; off < size; off += FIO_SECTOR) {
		size_t len = size - off < FIO_SECTOR ? size - off : FIO_SECTOR;
		struct faultio *f;
		ck_assert_int_eq(faultio_clone(base, &f), 0);
		ck_assert_int_eq(faultio_overwrite(f, path, off, zeros, len), 0);
		snprintf(what, sizeof what, "%s sector at %zu zeroed", path, off);
		expect_whole_or_refused(judge(f, what, 0, salvage_keeps(path, first_nonzero(path, off, len), 0),
					      NULL), path, what);
	}
}

START_TEST(zeroed_sector_anywhere_is_refused_or_cut)
{
	for (int i = 0; i < base_files.nseg; i++)
		zero_every_sector(base_files.seg[i]);
	zero_every_sector(base_files.snap);
}
END_TEST

START_TEST(garbage_after_last_segment_is_cut_as_torn_tail)
{
	uint64_t rs = seed;
	const char *last = base_files.seg[base_files.nseg - 1];
	char what[400];
	static const size_t lens[] = { 1, 2, 16, 17, 100, 511, 512, 513, 4096 };
	for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++)
		for (int round = 0; round < 8; round++) {
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			void *data;
			size_t len;
			ck_assert_int_eq(faultio_read_file(f, last, &data, &len), 0);
			uint8_t *grown = malloc(len + lens[li]);
			ck_assert_ptr_nonnull(grown);
			memcpy(grown, data, len);
			for (size_t j = 0; j < lens[li]; j++)
				grown[len + j] = (uint8_t)tu_rand(&rs);
			ck_assert_int_eq(faultio_write_file(f, last, grown, len + lens[li]), 0);
			free(grown);
			free(data);
			snprintf(what, sizeof what, "%zu garbage bytes (round %d) after %s", lens[li],
				 round, last);
			judge(f, what, 0, nrec_now, NULL);
		}
}
END_TEST

/* ---- below the snapshot ---- */

/* A damage to try: the disk it leaves (consumed by the callee), the file it hit, a name. */
typedef void (*damage_fn)(struct faultio *f, const char *path, const char *what);

/* The bytes of segment i that only covered records occupy: all of a segment the snapshot
 * wholly covers (its header and unused tail included: nothing in it is needed), else from the
 * header to the end of its last covered record. */
static uint64_t covered_end(int i, bool *whole)
{
	const struct sim_rec *r = base_files.rec[i];
	size_t n = base_files.nrec[i], k = 0;
	*whole = n && r[n - 1].lsn <= (uint64_t)C_NSNAP;
	if (*whole)
		return file_size(base_files.seg[i]);
	while (k < n && r[k].lsn <= (uint64_t)C_NSNAP)
		k++;
	return k ? r[k - 1].off + r[k - 1].size : 0;
}

/* Every damage confined to records the snapshot covers: every byte of those records flipped
 * (one bit per byte, chosen by seed and offset; every 16th byte of wholly covered segments,
 * which the log does not need at all), every 512-byte sector of them zeroed, a wholly covered
 * segment cut at each record boundary and inside records, or missing. */
static void for_each_damage_below_the_snapshot(damage_fn fn)
{
	static const uint8_t zeros[FIO_SECTOR];
	char what[400];
	for (int i = 0; i < base_files.nseg; i++) {
		const char *path = base_files.seg[i];
		bool whole;
		uint64_t end = covered_end(i, &whole);
		uint64_t from = whole ? 0 : SEG_HDR_SIZE;
		if (end <= from)
			continue;
		for (uint64_t off = from + seed % FLIP_STRIDE; off < end;
		     off += whole ? 16 * FLIP_STRIDE : FLIP_STRIDE) {
			struct faultio *f;
			int bit = (int)((seed + off) % 8);
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << bit)), 0);
			snprintf(what, sizeof what, "%s bit %d of byte %" PRIu64 " flipped (below the "
				 "snapshot)", path, bit, off);
			fn(f, path, what);
		}
		for (uint64_t sec = 0; sec < end; sec += FIO_SECTOR) {
			uint64_t a = sec > from ? sec : from;
			uint64_t b = sec + FIO_SECTOR < end ? sec + FIO_SECTOR : end;
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_overwrite(f, path, a, zeros, (size_t)(b - a)), 0);
			snprintf(what, sizeof what, "%s bytes %" PRIu64 "..%" PRIu64 " zeroed (below the "
				 "snapshot)", path, a, b);
			fn(f, path, what);
		}
		if (!whole)
			continue;
		for (size_t r = 0; r <= base_files.nrec[i]; r++) {
			/* at the record's start, and inside its header and its payload */
			uint64_t at = r < base_files.nrec[i] ? base_files.rec[i][r].off : end;
			uint64_t cuts[3] = { at, at + 5, at + REC_HDR_SIZE + 3 };
			for (int c = 0; c < 3 && cuts[c] < end; c++) {
				struct faultio *f;
				ck_assert_int_eq(faultio_clone(base, &f), 0);
				ck_assert_int_eq(faultio_truncate(f, path, cuts[c]), 0);
				snprintf(what, sizeof what, "%s cut at %" PRIu64 " (below the snapshot)", path,
					 cuts[c]);
				fn(f, path, what);
				if (r == base_files.nrec[i])
					break;
			}
		}
		struct faultio *f;
		ck_assert_int_eq(faultio_clone(base, &f), 0);
		ck_assert_int_eq(faultio_remove(f, path), 0);
		snprintf(what, sizeof what, "%s missing (below the snapshot)", path);
		fn(f, path, what);
	}
}

static void expect_strict_open_whole(struct faultio *f, const char *path, const char *what)
{
	struct faultio *before;
	struct kv_report rep;
	struct kv *s;
	char why[256];
	(void)path;
	cases++;
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	/* check agrees with the strict open (the store is sound: no value has bytes there), and
	 * reads and changes nothing */
	int crc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep);
	ck_assert_msg(crc == 0, "%s: kv_check: %s (%s), but the damage costs no value", what,
		      strerror(-crc), tu_report(&rep));
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0,
		      "%s: kv_check changed the disk: %s", what, why);
	int rc = open_strict(f, &s, &rep);
	ck_assert_msg(rc == 0, "%s: a strict open refused: %s (%s)", what, strerror(-rc), tu_report(&rep));
	int p = state_prefix(s);
	ck_assert_msg(p == C_NREC, "%s: a strict open kept %d of the %d records", what, p, C_NREC);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(before);
	faultio_destroy(f);
}

START_TEST(damage_below_the_snapshot_never_blocks_a_strict_open)
{
	for_each_damage_below_the_snapshot(expect_strict_open_whole);
}
END_TEST

/* After salvage every record is there, and the damaged file's bytes are still on disk: under
 * its own name or set aside as NAME.damaged*. */
static void expect_salvage_keeps_all(struct faultio *f, const char *path, const char *what)
{
	struct kv_report rep;
	struct kv *s;
	void *damaged = NULL;
	size_t dlen = 0;
	int missing = !faultio_exists(f, path);
	cases++;
	if (!missing)
		ck_assert_int_eq(faultio_read_file(f, path, &damaged, &dlen), 0);
	int rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
	ck_assert_msg(rc == 0, "%s: kv_salvage: %s (%s)", what, strerror(-rc), tu_report(&rep));
	/* salvage deletes nothing: the damaged bytes are still there, under their name or set
	 * aside (a later strict open may delete a segment the snapshot covers: it is not needed) */
	if (!missing) {
		char **names, name[320];
		size_t n;
		int kept = 0;
		const char *base_name = path + strlen(SIM_DIR "/");
		ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
		for (size_t i = 0; i < n && !kept; i++) {
			if (strcmp(names[i], base_name) && (strncmp(names[i], base_name, strlen(base_name)) ||
							    strncmp(names[i] + strlen(base_name), ".damaged", 8)))
				continue;
			void *data;
			size_t len;
			snprintf(name, sizeof name, SIM_DIR "/%s", names[i]);
			ck_assert_int_eq(faultio_read_file(f, name, &data, &len), 0);
			kept = len == dlen && !memcmp(data, damaged, len);
			free(data);
		}
		faultio_free_names(names, n);
		ck_assert_msg(kept, "%s: salvage kept the damaged bytes nowhere (as %s or %s.damaged*)",
			      what, base_name, base_name);
	}
	rc = open_strict(f, &s, &rep);
	ck_assert_msg(rc == 0, "%s: a strict open after salvage: %s (%s)", what, strerror(-rc),
		      tu_report(&rep));
	int p = state_prefix(s);
	ck_assert_msg(p == C_NREC, "%s: salvage kept %d of the %d records", what, p, C_NREC);
	ck_assert_int_eq(kv_close(s), 0);
	free(damaged);
	faultio_destroy(f);
}

START_TEST(salvage_keeps_every_record_after_damage_below_the_snapshot)
{
	for_each_damage_below_the_snapshot(expect_salvage_keeps_all);
}
END_TEST

/* The records after the snapshot in the segment that holds covered ones too, and the next
 * segment: flipped bits and zeroed sectors follow the rules of the store without covered
 * segments (refused or cut, and salvage keeps exactly what precedes the damage). */
START_TEST(damage_above_the_snapshot_beside_covered_segments_is_refused_or_cut)
{
	static const uint8_t zeros[FIO_SECTOR];
	char what[400];
	for (int i = 1; i <= 2; i++) {
		const char *path = base_files.seg[i];
		bool whole;
		uint64_t from = i == 1 ? covered_end(i, &whole) : 0, size = file_size(path);
		for (uint64_t off = from + seed % FLIP_STRIDE; off < size; off += FLIP_STRIDE) {
			struct faultio *f;
			int bit = (int)((seed + off) % 8);
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << bit)), 0);
			snprintf(what, sizeof what, "%s bit %d of byte %" PRIu64 " flipped", path, bit, off);
			expect_whole_or_refused(judge(f, what, 0, salvage_keeps(path, off, 1), NULL), path,
						what);
		}
		for (uint64_t sec = from / FIO_SECTOR * FIO_SECTOR; sec < size; sec += FIO_SECTOR) {
			uint64_t a = sec > from ? sec : from;
			uint64_t b = sec + FIO_SECTOR < size ? sec + FIO_SECTOR : size;
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_overwrite(f, path, a, zeros, (size_t)(b - a)), 0);
			snprintf(what, sizeof what, "%s bytes %" PRIu64 "..%" PRIu64 " zeroed", path, a, b);
			int keeps = salvage_keeps(path, first_nonzero(path, a, (size_t)(b - a)), 0);
			expect_whole_or_refused(judge(f, what, 0, keeps, NULL), path, what);
		}
	}
}
END_TEST

/* ---- a segment wholly before the snapshot that still holds live values ---- */

#define L_KEYS 8 /* keys whose values stay in segment 1 */

/* Keys k000..k007 in segment 1, the snapshot at their last record, then a value bigger than a
 * segment, which starts the next one: segment 1 lies wholly before the snapshot (no open reads
 * its records) and holds every live value but that one. */
static struct faultio *store_with_live_values_below_the_snapshot(void)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	struct kv *s = NULL;
	char k[16], v[64];
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	for (int i = 0; i < L_KEYS; i++) {
		key_of(k, sizeof k, i);
		val_of(v, sizeof v, i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	static char big[5000];
	memset(big, 'B', sizeof big - 1);
	put_str(s, "big", big);
	ck_assert_int_eq(kv_close(s), 0);
	return f;
}

/* One damaged disk (consumed): kv_check and a strict open give the same verdict when the
 * damage reaches the segment's header (open then reads the live values there, as check does);
 * past a good header open reads none of them, so it opens, and what check finds is what a
 * read finds: the key check names fails with EIO. */
static void expect_open_and_check_agree(struct faultio *f, int header_hit, const char *what)
{
	struct kv_report crep, orep;
	struct kv *s = NULL;
	cases++;
	int crc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep);
	ck_assert_msg(crc == 0 || crc == -EUCLEAN, "%s: kv_check: %s", what, strerror(-crc));
	int orc = open_strict(f, &s, &orep);
	ck_assert_msg(orc == 0 || orc == -EUCLEAN, "%s: kv_open: %s (%s)", what, strerror(-orc),
		      tu_report(&orep));
	if (header_hit) {
		ck_assert_msg(crc == orc, "%s: kv_check %d but kv_open %d (%s / %s)", what, crc, orc,
			      tu_report(&crep), tu_report(&orep));
		if (orc)
			ck_assert_msg(!strcmp(crep.data_damage_key, orep.data_damage_key), "%s: check "
				      "names '%s', open '%s'", what, crep.data_damage_key,
				      orep.data_damage_key);
	} else {
		ck_assert_msg(orc == 0, "%s: a strict open refused: %s", what, tu_report(&orep));
		if (crc) {
			void *got = NULL;
			uint64_t len;
			int grc = kv_get(s, crep.data_damage_key, strlen(crep.data_damage_key), &got, &len);
			free(got);
			ck_assert_msg(grc == -EIO, "%s: check names '%s', whose read gives %d, not EIO",
				      what, crep.data_damage_key, grc);
		}
	}
	if (s)
		ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}

START_TEST(open_and_check_agree_on_damage_to_a_segment_below_the_snapshot_that_holds_live_values)
{
	static const uint8_t zeros[FIO_SECTOR];
	struct faultio *b = store_with_live_values_below_the_snapshot();
	const char *path = SIM_DIR "/wal-0000000000000001.log";
	char what[400];
	bool dir;
	uint64_t size;
	ck_assert_msg(faultio_exists(b, SIM_DIR "/wal-0000000000000009.log"),
		      "the big value should have started segment 9");
	ck_assert_int_eq(faultio_stat(b, path, &dir, &size), 0);
	for (uint64_t off = seed % FLIP_STRIDE; off < size; off += FLIP_STRIDE)
		for (int bit = 0; bit < 8; bit++) {
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(b, &f), 0);
			ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << bit)), 0);
			snprintf(what, sizeof what, "%s bit %d of byte %" PRIu64 " flipped", path, bit, off);
			expect_open_and_check_agree(f, off < SEG_HDR_SIZE, what);
		}
	for (uint64_t sec = 0; sec < size; sec += FIO_SECTOR) {
		uint64_t n = size - sec < FIO_SECTOR ? size - sec : FIO_SECTOR;
		struct faultio *f;
		ck_assert_int_eq(faultio_clone(b, &f), 0);
		ck_assert_int_eq(faultio_overwrite(f, path, sec, zeros, (size_t)n), 0);
		snprintf(what, sizeof what, "%s bytes %" PRIu64 "..%" PRIu64 " zeroed", path, sec, sec + n);
		expect_open_and_check_agree(f, sec == 0, what);
	}
	faultio_destroy(b);
}
END_TEST

/* ---- below the snapshot, values still live ---- */

/* The bytes of segment i of the sweeps' store (its covered keys never written again, so their
 * values still live in the covered records) that records the snapshot holds occupy, from the
 * segment's first byte (its header included); 0 when it holds none. */
static uint64_t live_covered_end(int i)
{
	const struct sim_rec *r = base_files.rec[i];
	size_t n = base_files.nrec[i], k = 0;
	while (k < n && r[k].lsn <= (uint64_t)nsnap_now)
		k++;
	return k ? r[k - 1].off + r[k - 1].size : 0;
}

/* One damaged disk of the sweep below: whatever a strict open decides, kv_check agrees (judge);
 * a clean open holds every record; after a refusal salvage keeps every record and deletes only
 * keys the snapshot holds. */
static void expect_only_covered_keys_lost(struct faultio *f, const char *what)
{
	max_lost_key = -1;
	int kept = judge(f, what, 0, nrec_now, NULL);
	ck_assert_msg(kept < 0 || kept == nrec_now, "%s: a clean open kept %d of %d records", what,
		      kept, nrec_now);
	ck_assert_msg(max_lost_key < nsnap_now, "%s: salvage deleted k%03d, written after the "
		      "snapshot", what, max_lost_key);
}

/* Issue 10, bug 3, with values on disk (DURABILITY 4.5): damage in records the snapshot holds
 * whose values are still live costs those values' keys and nothing after them. Every byte of
 * those records and of their segments' headers flipped (one seeded bit each), every sector of
 * them zeroed. */
START_TEST(damage_below_the_snapshot_in_live_values_costs_only_their_keys)
{
	static const uint8_t zeros[FIO_SECTOR];
	char what[400];
	int any = 0;
	for (int i = 0; i < base_files.nseg; i++) {
		const char *path = base_files.seg[i];
		uint64_t end = live_covered_end(i);
		if (!end)
			continue;
		any = 1;
		for (uint64_t off = seed % FLIP_STRIDE; off < end; off += FLIP_STRIDE) {
			struct faultio *f;
			int bit = (int)((seed + off) % 8);
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << bit)), 0);
			snprintf(what, sizeof what, "%s bit %d of byte %" PRIu64 " flipped (below the "
				 "snapshot, a live value)", path, bit, off);
			expect_only_covered_keys_lost(f, what);
		}
		for (uint64_t sec = 0; sec < end; sec += FIO_SECTOR) {
			uint64_t b = sec + FIO_SECTOR < end ? sec + FIO_SECTOR : end;
			struct faultio *f;
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			ck_assert_int_eq(faultio_overwrite(f, path, sec, zeros, (size_t)(b - sec)), 0);
			snprintf(what, sizeof what, "%s bytes %" PRIu64 "..%" PRIu64 " zeroed (below the "
				 "snapshot, a live value)", path, sec, b);
			expect_only_covered_keys_lost(f, what);
		}
	}
	ck_assert_msg(any, "no segment holds records the snapshot covers");
}
END_TEST

/* ---- damage in the cleaner's RELOCATE records (the sixth attack, finding 1) ---- */

#define R_KEYS 64   /* keys of ~4 KB written; every 4th stays live and is relocated */
#define R_SMALL 10  /* small keys written after the cleaner */
#define R_VMAX 4200
#define R_MAXOPS 64
#define R_FLIP_STRIDE 61 /* the byte sweep over a relocation record: ~1,000 cases */

/* Key i of that store, its value (distinct letters), and its length. */
static void rkey_of(char *k, size_t n, int i)
{
	snprintf(k, n, "r%03d", i);
}

static size_t rval_of(char *v, int i)
{
	size_t len = 4000 + (size_t)(i * 37) % 200;
	for (size_t j = 0; j < len; j++)
		v[j] = (char)('a' + (i * 131 + j * 7 + j / 13) % 26);
	v[len] = '\0';
	return len;
}

/* The process dies (kill -9) with s open: every later call of it fails, the disk stays. */
static void kill_with_store_open(struct faultio *f, struct kv *s)
{
	faultio_crash_at(f, faultio_calls(f) + 1);
	ck_assert_int_ne(kv_close(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
}

/* 64 keys of ~4 KB in 64 KiB segments, flushed; 3 of every 4 deleted, flushed; a forced cleaner
 * pass moves the 16 live values into RELOCATE operations of one record; then 10 small PUTs.
 * covered: the pass's checkpoint is taken (its victims deleted), the store closed cleanly: the
 * record lies below the checkpoint. pending: the pass's checkpoint fails at its rename and the
 * process is killed (a kill between the relocations and the checkpoint); a second process PUTs
 * the small keys, flushes and is killed: the record lies after the checkpoint (there is none).
 * pending 2: the same with a checkpoint taken before the pass, so that the relocations' sources
 * lie below it (an open reads them only for the values it must check) and the record after it.
 * pending 3: as 2, and the second process renames r000 to R_RENAMED before its PUTs. */
#define R_RENAMED "r000-renamed"
static struct faultio *cleaned_store(int pending)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.segment_bytes = 65536;
	struct kv *s = sim_open_with(&o, NULL);
	char k[16], v[R_VMAX + 1];
	for (int i = 0; i < R_KEYS; i++) {
		rkey_of(k, sizeof k, i);
		size_t len = rval_of(v, i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, len), 0);
	}
	ck_assert_int_eq(kv_flush(s), 0);
	for (int i = 0; i < R_KEYS; i++)
		if (i % 4) {
			rkey_of(k, sizeof k, i);
			ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
		}
	ck_assert_int_eq(kv_flush(s), 0);
	if (pending >= 2)
		ck_assert_int_eq(kv_snapshot(s), 0);
	if (pending)
		ck_assert_int_eq(faultio_fail(f, FIO_OP_RENAME, faultio_count(f, FIO_OP_RENAME) + 1, -EIO,
					      false), 0);
	uint64_t moved = 0;
	int rc = kv_clean(s, 1, &moved);
	if (pending) {
		ck_assert_int_ne(rc, 0);
		kill_with_store_open(f, s);
		s = sim_open_with(&o, NULL);
		if (pending == 3) {
			struct kv_batch *b;
			ck_assert_int_eq(kv_batch_new(&b), 0);
			ck_assert_int_eq(kv_batch_rename(b, "r000", 4, R_RENAMED, strlen(R_RENAMED)), 0);
			ck_assert_int_eq(kv_apply(s, b, NULL), 0);
			kv_batch_free(b);
		}
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_uint_gt(moved, 0);
	}
	for (int i = 0; i < R_SMALL; i++) {
		snprintf(k, sizeof k, "s%03d", i);
		snprintf(v, sizeof v, "small-%d", i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_flush(s), 0);
	if (pending)
		kill_with_store_open(f, s);
	else
		ck_assert_int_eq(kv_close(s), 0);
	return f;
}

/* One RELOCATE operation found in a segment: file offsets of its record, its key, its first
 * piece descriptor, its chunk checksums and its data; the first piece's source (the segment
 * file and offset its bytes were copied from). */
struct reloc_at {
	char path[128];
	char key[16];
	uint64_t rec, key_at, piece_at, crc_at, data_at, dlen;
	char src_path[128];
	uint64_t src_pos;
};

struct relocations {
	const char *path; /* the segment being walked */
	struct reloc_at *out;
	size_t n, max;
};

static int note_relocation(void *ctx, uint64_t rec, const uint8_t *pl, const struct rec_op_view *op)
{
	struct relocations *rs = ctx;
	struct reloc_piece pc;
	char sname[32];
	uint64_t at0 = rec + REC_HDR_SIZE;

	if (op->op != REC_OP_RELOCATE)
		return 0;
	ck_assert_uint_lt(rs->n, rs->max);
	struct reloc_at *a = &rs->out[rs->n++];
	snprintf(a->path, sizeof a->path, "%s", rs->path);
	snprintf(a->key, sizeof a->key, "%.*s", (int)op->klen, (const char *)op->key);
	a->rec = rec;
	a->key_at = at0 + (uint64_t)(op->key - pl);
	a->piece_at = at0 + (uint64_t)(op->pieces - pl);
	a->crc_at = at0 + (uint64_t)(op->crcs - pl);
	a->data_at = at0 + op->data_at;
	a->dlen = op->dlen;
	reloc_piece_at(op, 0, &pc);
	seg_name(sname, sizeof sname, pc.src_seg);
	snprintf(a->src_path, sizeof a->src_path, SIM_DIR "/%s", sname);
	a->src_pos = pc.src_pos;
	return 0;
}

static size_t find_relocations(struct faultio *f, struct reloc_at *out, size_t max)
{
	char **names;
	size_t nnames;
	struct relocations rs = { .out = out, .max = max };
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &nnames), 0);
	for (size_t i = 0; i < nnames; i++) {
		size_t nl = strlen(names[i]);
		if (strncmp(names[i], "wal-", 4) || nl < 4 || strcmp(names[i] + nl - 4, ".log"))
			continue;
		char path[128];
		snprintf(path, sizeof path, SIM_DIR "/%s", names[i]);
		rs.path = path;
		ck_assert_int_eq(sim_each_op(f, path, note_relocation, &rs), 0);
	}
	faultio_free_names(names, nnames);
	return rs.n;
}

static int listed_key(const char *k, const char *const *may, size_t nmay)
{
	for (size_t i = 0; i < nmay; i++)
		if (!strcmp(k, may[i]))
			return 1;
	return 0;
}

/* Every key of the cleaned store holds its value; a key of may may be absent instead. Returns
 * how many are absent. */
static uint64_t expect_cleaned_values(struct kv *s, const char *const *may, size_t nmay, const char *what)
{
	char k[16], v[R_VMAX + 1];
	uint64_t absent = 0;
	for (int i = 0; i < R_KEYS + R_SMALL; i++) {
		size_t len;
		if (i < R_KEYS) {
			rkey_of(k, sizeof k, i);
			len = i % 4 ? 0 : rval_of(v, i);
		} else {
			snprintf(k, sizeof k, "s%03d", i - R_KEYS);
			len = (size_t)snprintf(v, sizeof v, "small-%d", i - R_KEYS);
		}
		void *got = NULL;
		uint64_t glen = 0;
		int rc = kv_get(s, k, strlen(k), &got, &glen);
		if (!len) {
			ck_assert_msg(rc == -ENOENT, "%s: deleted %s is back (%d)", what, k, rc);
			continue;
		}
		if (rc == -ENOENT && listed_key(k, may, nmay)) {
			absent++;
			continue;
		}
		ck_assert_msg(rc == 0, "%s: get %s: %s", what, k, strerror(-rc));
		ck_assert_msg(glen == len && !memcmp(got, v, len), "%s: %s holds other bytes", what, k);
		free(got);
	}
	return absent;
}

/* How every salvaged case of the cleaned store ends (f consumed): kv_check takes the salvaged
 * store, and a second salvage loses nothing, sets nothing aside and changes no file. */
static void expect_salvage_settled(struct faultio *f, const char *what)
{
	struct kv_report crep, srep;
	struct faultio *before;
	char why[256];
	ck_assert_msg(kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep) == 0, "%s: kv_check after "
		      "salvage: %s", what, tu_report(&crep));
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &srep), 0);
	ck_assert_msg(srep.lost_keys == 0 && srep.set_aside == 0, "%s: a second salvage lost %" PRIu64
		      " key(s), set %u file(s) aside", what, srep.lost_keys, (unsigned)srep.set_aside);
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0,
		      "%s: a second salvage changed the store: %s", what, why);
	faultio_destroy(before);
	faultio_destroy(f);
}

/* One damaged disk of the cleaned store (consumed): kv_check and a strict open agree; a refusal
 * names a key of may; salvage deletes only keys of may (all of must of them, the keys whose own
 * bytes fail their checksums) and every other key keeps its bytes; then a strict open and
 * kv_check succeed, and a second salvage finds nothing to do and changes no file. */
static void expect_relocated_keys_lost_alone(struct faultio *f, const char *const *may, size_t nmay,
					     size_t must, const char *what)
{
	struct kv_report crep, orep, srep;
	struct kv *s = NULL;
	cases++;
	int crc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep);
	int orc = open_strict(f, &s, &orep);
	ck_assert_msg(crc == orc, "%s: kv_check %d but kv_open %d (%s / %s)", what, crc, orc,
		      tu_report(&crep), tu_report(&orep));
	if (!orc) {
		ck_assert_msg(!must, "%s: %s's bytes fail their checksum, yet a strict open took the "
			      "store", what, may[0]);
		ck_assert_uint_eq(expect_cleaned_values(s, NULL, 0, what), 0);
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
		return;
	}
	ck_assert_msg(orc == -EUCLEAN, "%s: kv_open: %s (%s)", what, strerror(-orc), tu_report(&orep));
	const char *named = orep.lost_keys ? orep.lost_key : orep.data_damage_key;
	ck_assert_msg(listed_key(named, may, nmay), "%s: a strict open names '%s' (%s)", what, named,
		      tu_report(&orep));
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &srep), 0);
	ck_assert_msg(srep.lost_keys >= must && srep.lost_keys <= nmay, "%s: salvage lost %" PRIu64
		      " key(s), the first '%s' (%zu at most)", what, srep.lost_keys, srep.lost_key, nmay);
	ck_assert_int_eq(open_strict(f, &s, &orep), 0);
	uint64_t absent = expect_cleaned_values(s, may, nmay, what);
	ck_assert_msg(absent == srep.lost_keys, "%s: salvage said %" PRIu64 " key(s) lost, %" PRIu64
		      " are absent", what, srep.lost_keys, absent);
	ck_assert_int_eq(kv_close(s), 0);
	expect_salvage_settled(f, what);
}

/* Where the damage of a case lies: the keys with bytes there, the segment, the byte range. */
struct damage_at {
	const char *const *may;
	size_t nmay;
	const char *path;
	uint64_t lo, hi;
};

/* rep (of who: kv_check, a strict open, salvage) tells of the damage d read back from the
 * sources: as many keys as d hit, the first among them, its failing chunk in d's segment and
 * over d's bytes; and it reports no damage, nothing lost. */
static void expect_read_back(const struct kv_report *rep, const struct damage_at *d, const char *who,
			     const char *what)
{
	const char *seg = strrchr(d->path, '/') + 1;
	ck_assert_msg(rep->reloc_damaged_keys == d->nmay && listed_key(rep->reloc_damage_key, d->may, d->nmay),
		      "%s: %s says %" PRIu64 " key(s) read back from their sources, the first '%s' "
		      "(%zu hit, the first '%s')", what, who, rep->reloc_damaged_keys, rep->reloc_damage_key,
		      d->nmay, d->nmay ? d->may[0] : "");
	ck_assert_msg(!strcmp(rep->reloc_damage_file, seg) && rep->reloc_damage_offset < d->hi &&
		      rep->reloc_damage_offset + DATA_CHUNK > d->lo, "%s: %s places the damage read back "
		      "at %s offset %" PRIu64, what, who, rep->reloc_damage_file, rep->reloc_damage_offset);
	ck_assert_msg(!rep->damaged && !rep->lost_keys && !rep->data_damaged_keys, "%s: %s: %s", what,
		      who, tu_report(rep));
}

/* One damaged disk of the pending cleaned store (consumed) whose damage d lies only in the
 * relocations' copies, their sources intact: kv_check finds nothing lost, a strict open takes
 * the store with every key's bytes, and so does a salvage (it loses no key and sets nothing
 * aside), each reporting the keys read back from their sources and where their copies failed;
 * then a strict open (which still reports them, or the damage as covered once salvage's
 * checkpoint holds the record) and kv_check succeed, and a second salvage changes no file. */
static void expect_relocated_keys_kept(struct faultio *f, const struct damage_at *d, const char *what)
{
	struct kv_report crep, orep, srep;
	struct kv *s = NULL;
	struct faultio *g;
	cases++;
	ck_assert_int_eq(faultio_clone(f, &g), 0);
	int crc = kv_check(SIM_DIR, faultio_kvio(f), NULL, &crep);
	ck_assert_msg(crc == 0 && crep.lost_keys == 0, "%s: kv_check %d (%s)", what, crc, tu_report(&crep));
	expect_read_back(&crep, d, "kv_check", what);
	int orc = open_strict(g, &s, &orep);
	ck_assert_msg(orc == 0, "%s: a strict open: %s (%s)", what, strerror(-orc), tu_report(&orep));
	expect_read_back(&orep, d, "a strict open", what);
	ck_assert_uint_eq(expect_cleaned_values(s, NULL, 0, what), 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(g);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &srep), 0);
	ck_assert_msg(srep.lost_keys == 0 && srep.set_aside == 0, "%s: salvage lost %" PRIu64 " key(s), "
		      "the first '%s', set %u file(s) aside", what, srep.lost_keys, srep.lost_key,
		      (unsigned)srep.set_aside);
	expect_read_back(&srep, d, "salvage", what);
	orc = open_strict(f, &s, &orep);
	ck_assert_msg(orc == 0, "%s: a strict open after salvage: %s (%s)", what, strerror(-orc),
		      tu_report(&orep));
	ck_assert_msg(orep.reloc_damaged_keys == d->nmay || orep.covered_damage, "%s: a strict open "
		      "after salvage reports the damage neither read back nor covered (%s)", what,
		      tu_report(&orep));
	ck_assert_uint_eq(expect_cleaned_values(s, NULL, 0, what), 0);
	ck_assert_int_eq(kv_close(s), 0);
	expect_salvage_settled(f, what);
}

/* The keys whose chunk checksums or data bytes lie in [lo, hi) of path. */
static size_t keys_in(const struct reloc_at *ops, size_t nops, const char *path, uint64_t lo,
		      uint64_t hi, const char **may)
{
	size_t n = 0;
	for (size_t i = 0; i < nops; i++)
		if (!strcmp(ops[i].path, path) && ops[i].crc_at < hi && ops[i].data_at + ops[i].dlen > lo)
			may[n++] = ops[i].key;
	return n;
}

/* The damage of one RELOCATE operation's case: a byte flipped (sector 0) or a sector zeroed. */
static void relocated_case(struct faultio *rbase, const struct reloc_at *ops, size_t nops,
			   const char *path, uint64_t at, int sector, const char *kind, int pending)
{
	static const uint8_t zeros[FIO_SECTOR];
	const char *may[R_MAXOPS];
	char what[300];
	struct faultio *f;
	uint64_t lo = sector ? at / FIO_SECTOR * FIO_SECTOR : at, hi = sector ? lo + FIO_SECTOR : at + 1;
	size_t nmay = keys_in(ops, nops, path, lo, hi, may);
	ck_assert_int_eq(faultio_clone(rbase, &f), 0);
	if (sector)
		ck_assert_int_eq(faultio_overwrite(f, path, lo, zeros, FIO_SECTOR), 0);
	else
		ck_assert_int_eq(faultio_flip(f, path, at, 0x20), 0);
	snprintf(what, sizeof what, "%s store, %s: %s %s %" PRIu64,
		 pending == 2 ? "pending (sources below a checkpoint)" : pending ? "pending" : "covered",
		 kind, path, sector ? "sector zeroed at" : "byte flipped at", lo);
	struct damage_at d = { may, nmay, path, lo, hi };
	if (pending) /* the relocations' sources are still there and check: nothing is lost */
		expect_relocated_keys_kept(f, &d, what);
	else /* a flipped byte of a key's data or checksums costs that key: its chunk fails */
		expect_relocated_keys_lost_alone(f, may, nmay, sector ? 0 : nmay, what);
}

/* Covered: a flipped byte in a RELOCATE record's head, a key, a piece descriptor costs no key
 * (the checkpoint holds where every extent lies, and each chunk checks against its own
 * checksum); in a chunk checksum or a value byte it costs the key whose chunk it is; a zeroed
 * sector of the record costs the keys with bytes in it, nothing more. Pending (the record after
 * the checkpoint, its sources still there): a flipped value byte, a zeroed sector in a value
 * cost nothing, the key's bytes are read from its source (recover.c relocation_sources). Both:
 * salvage leaves a store a strict open takes, and a second salvage changes nothing. */
static void relocation_sweep(int pending)
{
	struct faultio *rbase = cleaned_store(pending);
	static struct reloc_at ops[R_MAXOPS];
	size_t nops = find_relocations(rbase, ops, R_MAXOPS);
	ck_assert_uint_ge(nops, R_KEYS / 4 - 1);
	if (pending) {
		char **names;
		size_t n, ckpts = 0;
		ck_assert_int_eq(faultio_list(rbase, SIM_DIR, &names, &n), 0);
		for (size_t i = 0; i < n; i++)
			ckpts += !strncmp(names[i], "ckpt-", 5);
		ck_assert_msg(ckpts == (pending == 2), "pending %d: %zu checkpoint(s)", pending, ckpts);
		faultio_free_names(names, n);
	}
	for (size_t i = 0; i < nops; i++) {
		const struct reloc_at *o = &ops[i];
		uint64_t mid = o->data_at + o->dlen / 2;
		relocated_case(rbase, ops, nops, o->path, o->data_at, 0, "first value byte", pending);
		relocated_case(rbase, ops, nops, o->path, mid, 0, "middle value byte", pending);
		relocated_case(rbase, ops, nops, o->path, o->data_at + o->dlen - 1, 0, "last value byte", pending);
		relocated_case(rbase, ops, nops, o->path, mid, 1, "a sector in its value", pending);
		if (pending) {
			/* every sector wholly inside its value */
			for (uint64_t sec = (o->data_at + FIO_SECTOR - 1) / FIO_SECTOR * FIO_SECTOR;
			     sec + FIO_SECTOR <= o->data_at + o->dlen; sec += FIO_SECTOR)
				relocated_case(rbase, ops, nops, o->path, sec, 1, "a sector of its value", pending);
			continue; /* after the checkpoint, framing damage costs every later record (4.2) */
		}
		relocated_case(rbase, ops, nops, o->path, o->crc_at, 0, "chunk checksum", pending);
		relocated_case(rbase, ops, nops, o->path, o->key_at, 0, "key", pending);
		for (int field = 0; field < 4; field++)
			relocated_case(rbase, ops, nops, o->path, o->piece_at + 8 * (uint64_t)field + 1, 0,
				       "piece descriptor", pending);
		if (i == 0 || o->rec != ops[i - 1].rec)
			for (uint64_t h = 0; h < REC_HDR_SIZE; h += 3)
				relocated_case(rbase, ops, nops, o->path, o->rec + h, 0, "record head", pending);
	}
	if (!pending) {
		/* every sector the records span, the one holding the segment's header too (zeros
		 * over it and the record's head: the salt is found again from the small records
		 * after the checkpoint, though as many false record images lie among them) */
		uint64_t lo = ops[0].rec / FIO_SECTOR * FIO_SECTOR;
		uint64_t hi = ops[nops - 1].data_at + ops[nops - 1].dlen;
		/* a byte every R_FLIP_STRIDE from a seeded start, head to last value byte */
		for (uint64_t at = ops[0].rec + seed % R_FLIP_STRIDE; at < hi; at += R_FLIP_STRIDE)
			if (!strcmp(ops[0].path, ops[nops - 1].path))
				relocated_case(rbase, ops, nops, ops[0].path, at, 0, "a byte of the records",
					       pending);
		/* (a sector reaching past them takes the first record after the checkpoint) */
		for (uint64_t sec = lo; sec + FIO_SECTOR <= hi; sec += FIO_SECTOR)
			if (!strcmp(ops[0].path, ops[nops - 1].path))
				relocated_case(rbase, ops, nops, ops[0].path, sec, 1, "a sector of the records",
					       pending);
	}
	faultio_destroy(rbase);
}

START_TEST(damage_in_a_covered_relocate_record_costs_only_the_keys_whose_own_bytes_fail)
{
	relocation_sweep(0);
}
END_TEST

START_TEST(damage_in_a_pending_relocate_record_s_values_costs_nothing_while_their_sources_check)
{
	relocation_sweep(1);
	relocation_sweep(2);
}
END_TEST

/* The pending store whose sources lie below its checkpoint (an open reads them only to check a
 * value), the first relocated key's copy damaged (a flipped value byte), and with both (the
 * same byte of its source flipped too). */
static struct faultio *pending_damaged(int source_too, struct reloc_at *o)
{
	static struct reloc_at ops[R_MAXOPS];
	struct faultio *f = cleaned_store(2);
	size_t nops = find_relocations(f, ops, R_MAXOPS);
	ck_assert_uint_ge(nops, 1);
	*o = ops[0];
	ck_assert_int_eq(faultio_flip(f, o->path, o->data_at, 0x20), 0);
	if (source_too)
		ck_assert_int_eq(faultio_flip(f, o->src_path, o->src_pos, 0x20), 0);
	return f;
}

/* A pending relocation's copy and its source both damaged: the key's bytes are nowhere, so a
 * strict open and kv_check refuse naming it, and salvage loses it alone (every other key keeps
 * its bytes) and is final. */
START_TEST(a_pending_relocation_damaged_in_its_copy_and_its_source_costs_its_key)
{
	struct reloc_at o;
	struct faultio *f = pending_damaged(1, &o);
	const char *may[1] = { o.key };
	char what[400];
	snprintf(what, sizeof what, "pending store: %s flipped at %" PRIu64 " and its source %s at %" PRIu64,
		 o.path, o.data_at, o.src_path, o.src_pos);
	ck_assert_str_ne(o.path, o.src_path);
	expect_relocated_keys_lost_alone(f, may, 1, 1, what);
}
END_TEST

/* The reports of kv_check, a strict open and a salvage of the store f (each on its own copy of
 * it; f is consumed), and their return codes. */
static void three_reports(struct faultio *f, struct kv_report rep[3], int rc[3])
{
	struct faultio *g;
	struct kv *s = NULL;
	ck_assert_int_eq(faultio_clone(f, &g), 0);
	rc[0] = kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep[0]);
	rc[1] = open_strict(g, &s, &rep[1]);
	if (!rc[1])
		ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(g);
	rc[2] = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep[2]);
	faultio_destroy(f);
}

static const char *const three_who[3] = { "kv_check", "a strict open", "salvage" };

/* A pending relocation's copy damaged (a flipped first value byte), its source intact: kv_check,
 * a strict open and salvage each take the store and report, as data, the key read back from its
 * source, the copy's segment and the failing chunk's offset (the op's first data byte); no
 * damage, nothing lost. */
START_TEST(a_pending_copy_read_back_from_its_source_is_reported_by_check_open_and_salvage)
{
	struct reloc_at o;
	struct kv_report rep[3];
	int rc[3];
	three_reports(pending_damaged(0, &o), rep, rc);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(rc[i] == 0, "%s: %d (%s)", three_who[i], rc[i], tu_report(&rep[i]));
		ck_assert_msg(rep[i].reloc_damaged_keys == 1 && !strcmp(rep[i].reloc_damage_key, o.key),
			      "%s: %" PRIu64 " key(s) read back, the first '%s' (not '%s')", three_who[i],
			      rep[i].reloc_damaged_keys, rep[i].reloc_damage_key, o.key);
		ck_assert_str_eq(rep[i].reloc_damage_file, strrchr(o.path, '/') + 1);
		ck_assert_uint_eq(rep[i].reloc_damage_offset, o.data_at);
		ck_assert_msg(!rep[i].damaged && !rep[i].lost_keys && !rep[i].data_damaged_keys &&
			      !rep[i].set_aside, "%s: %s", three_who[i], tu_report(&rep[i]));
	}
}
END_TEST

/* The same pending store undamaged: nothing read back, every field of it zero. */
START_TEST(an_intact_pending_relocation_reports_nothing_read_back)
{
	struct kv_report rep[3];
	int rc[3];
	three_reports(cleaned_store(2), rep, rc);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(rc[i] == 0, "%s: %d (%s)", three_who[i], rc[i], tu_report(&rep[i]));
		ck_assert_msg(rep[i].reloc_damaged_keys == 0 && !rep[i].reloc_damage_key[0] &&
			      !rep[i].reloc_damage_file[0] && rep[i].reloc_damage_offset == 0,
			      "%s: %" PRIu64 " key(s) read back, '%s' at %s offset %" PRIu64, three_who[i],
			      rep[i].reloc_damaged_keys, rep[i].reloc_damage_key, rep[i].reloc_damage_file,
			      rep[i].reloc_damage_offset);
	}
}
END_TEST

/* The copy and its source both damaged: nothing was read back, so nothing is reported as read
 * back; the key is reported as damaged (kv_check, a strict open) and lost (salvage). */
START_TEST(a_pending_copy_whose_source_fails_too_is_reported_lost_not_read_back)
{
	struct reloc_at o;
	struct kv_report rep[3];
	int rc[3];
	three_reports(pending_damaged(1, &o), rep, rc);
	ck_assert_int_eq(rc[0], -EUCLEAN);
	ck_assert_int_eq(rc[1], -EUCLEAN);
	ck_assert_int_eq(rc[2], 0);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(rep[i].reloc_damaged_keys == 0 && !rep[i].reloc_damage_key[0],
			      "%s: %" PRIu64 " key(s) read back, the first '%s'", three_who[i],
			      rep[i].reloc_damaged_keys, rep[i].reloc_damage_key);
		ck_assert_msg(rep[i].lost_keys == 1 && !strcmp(rep[i].lost_key, o.key), "%s: %s",
			      three_who[i], tu_report(&rep[i]));
	}
	ck_assert_str_eq(rep[0].data_damage_key, o.key);
	ck_assert_str_eq(rep[1].data_damage_key, o.key);
}
END_TEST

/* Two pending copies damaged (the first value byte of two relocated keys): both are counted, the
 * first in key order named, with its own copy's segment and chunk. */
START_TEST(two_pending_copies_read_back_are_counted_naming_the_first_key)
{
	static struct reloc_at ops[R_MAXOPS];
	struct faultio *f = cleaned_store(2);
	size_t nops = find_relocations(f, ops, R_MAXOPS);
	ck_assert_uint_ge(nops, 2);
	const struct reloc_at *a = &ops[nops - 1], *b = &ops[0];
	ck_assert_str_ne(a->key, b->key);
	ck_assert_int_eq(faultio_flip(f, a->path, a->data_at, 0x20), 0);
	ck_assert_int_eq(faultio_flip(f, b->path, b->data_at, 0x20), 0);
	const struct reloc_at *first = strcmp(a->key, b->key) < 0 ? a : b;
	struct kv_report rep[3];
	int rc[3];
	three_reports(f, rep, rc);
	for (int i = 0; i < 3; i++) {
		ck_assert_msg(rc[i] == 0, "%s: %d (%s)", three_who[i], rc[i], tu_report(&rep[i]));
		ck_assert_msg(rep[i].reloc_damaged_keys == 2 && !strcmp(rep[i].reloc_damage_key, first->key),
			      "%s: %" PRIu64 " key(s) read back, the first '%s' (not '%s')", three_who[i],
			      rep[i].reloc_damaged_keys, rep[i].reloc_damage_key, first->key);
		ck_assert_str_eq(rep[i].reloc_damage_file, strrchr(first->path, '/') + 1);
		ck_assert_uint_eq(rep[i].reloc_damage_offset, first->data_at);
	}
}
END_TEST

struct pending_keeps {
	const char *key; /* the key whose copy is damaged */
	int source_too;	 /* its source damaged too: it is lost */
};

/* Every key byte for byte, but the damaged one when its source is damaged too (the only key a
 * salvage left alone says it lost); a strict open takes the store. */
static void pending_salvage_keeps(void *ctx, struct faultio *f, const struct kv_report *rep,
				  uint64_t at, const char *what)
{
	const struct pending_keeps *pk = ctx;
	const char *may[1] = { pk->key };
	struct kv_report orep;
	struct kv *s;

	if (!at) {
		ck_assert_uint_eq(rep->lost_keys, (uint64_t)pk->source_too);
		return;
	}
	cases++;
	int rc = open_strict(f, &s, &orep);
	ck_assert_msg(rc == 0, "%s: a strict open: %s (%s)", what, strerror(-rc), tu_report(&orep));
	uint64_t absent = expect_cleaned_values(s, may, pk->source_too ? 1 : 0, what);
	ck_assert_msg(absent == (uint64_t)pk->source_too, "%s: %" PRIu64 " key(s) absent", what, absent);
	ck_assert_int_eq(kv_close(s), 0);
}

/* A salvage of a pending relocation whose copy is damaged (its source intact, or damaged too)
 * cut by a crash at each of its I/O calls, kill or power loss, then salvage again: the second
 * salvage reaches the same result as one left alone (every key byte for byte; or every key but
 * that one, lost), and a strict open takes it. */
static void crash_through_pending_salvage(int source_too)
{
	struct reloc_at o;
	struct faultio *damaged = pending_damaged(source_too, &o);
	struct pending_keeps pk = { o.key, source_too };

	sim_crash_every_io_call_of_salvage(damaged, pending_salvage_keeps, &pk,
					   source_too ? "source damaged" : "source intact");
	faultio_destroy(damaged);
}

/* A pending relocation's copy damaged, its key renamed after it: the value under its new name
 * gets its bytes back from the source (found by where its bytes are, not by name), in a strict
 * open, kv_check and salvage alike. */
START_TEST(a_key_renamed_after_its_pending_relocation_keeps_its_bytes_from_the_source)
{
	static struct reloc_at ops[R_MAXOPS];
	struct faultio *f = cleaned_store(3);
	size_t nops = find_relocations(f, ops, R_MAXOPS), i = 0;
	while (i < nops && strcmp(ops[i].key, "r000"))
		i++;
	ck_assert_uint_lt(i, nops);
	ck_assert_int_eq(faultio_flip(f, ops[i].path, ops[i].data_at + ops[i].dlen / 2, 0x20), 0);
	char v[R_VMAX + 1];
	size_t len = rval_of(v, 0);
	struct kv_report rep;
	ck_assert_msg(kv_check(SIM_DIR, faultio_kvio(f), NULL, &rep) == 0, "kv_check: %s", tu_report(&rep));
	ck_assert_str_eq(rep.reloc_damage_key, R_RENAMED); /* the name it has, not the one R gave */
	for (int round = 0; round < 2; round++) { /* a strict open; then salvage and a strict open */
		struct kv *s;
		if (round) {
			ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
			ck_assert_msg(rep.lost_keys == 0, "salvage: %s", tu_report(&rep));
		}
		int rc = open_strict(f, &s, &rep);
		ck_assert_msg(rc == 0, "round %d: a strict open: %s (%s)", round, strerror(-rc), tu_report(&rep));
		void *got = NULL;
		uint64_t glen = 0;
		ck_assert_int_eq(kv_get(s, "r000", 4, &got, &glen), -ENOENT);
		rc = kv_get(s, R_RENAMED, strlen(R_RENAMED), &got, &glen);
		ck_assert_msg(rc == 0, "round %d: get " R_RENAMED ": %s", round, strerror(-rc));
		ck_assert_msg(glen == len && !memcmp(got, v, len), "round %d: " R_RENAMED " holds other bytes", round);
		free(got);
		ck_assert_int_eq(kv_close(s), 0);
	}
	faultio_destroy(f);
}
END_TEST

START_TEST(a_crash_at_every_io_call_of_a_pending_relocation_salvage_then_salvage_keeps_the_key)
{
	crash_through_pending_salvage(0);
}
END_TEST

START_TEST(a_crash_at_every_io_call_of_a_pending_relocation_salvage_then_salvage_loses_only_the_key)
{
	crash_through_pending_salvage(1);
}
END_TEST

int main(void)
{
	seed = tu_seed();
	Suite *su = suite_create("corruption");
	TCase *tc = tcase_create("sweeps");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, undamaged_store_opens_whole);
	tcase_add_test(tc, last_segment_cut_at_every_offset_recovers_a_prefix);
	tcase_add_test(tc, bit_flip_in_middle_segment_is_refused_or_cut);
	tcase_add_test(tc, bit_flip_in_last_segment_is_refused_or_cut);
	tcase_add_test(tc, bit_flip_in_snapshot_is_refused);
	tcase_add_test(tc, zeroed_sector_anywhere_is_refused_or_cut);
	tcase_add_test(tc, garbage_after_last_segment_is_cut_as_torn_tail);
	tcase_add_test(tc, damage_below_the_snapshot_in_live_values_costs_only_their_keys);
	suite_add_tcase(su, tc);
	TCase *below = tcase_create("below_snapshot");
	tcase_add_checked_fixture(below, setup_covered, teardown);
	tcase_set_timeout(below, 600);
	tcase_add_test(below, damage_below_the_snapshot_never_blocks_a_strict_open);
	tcase_add_test(below, salvage_keeps_every_record_after_damage_below_the_snapshot);
	tcase_add_test(below, damage_above_the_snapshot_beside_covered_segments_is_refused_or_cut);
	suite_add_tcase(su, below);
	TCase *live = tcase_create("live_below_snapshot");
	tcase_set_timeout(live, 600);
	tcase_add_test(live, open_and_check_agree_on_damage_to_a_segment_below_the_snapshot_that_holds_live_values);
	suite_add_tcase(su, live);
	TCase *reloc = tcase_create("relocated");
	tcase_set_timeout(reloc, 600);
	tcase_add_test(reloc, damage_in_a_covered_relocate_record_costs_only_the_keys_whose_own_bytes_fail);
	tcase_add_test(reloc, damage_in_a_pending_relocate_record_s_values_costs_nothing_while_their_sources_check);
	tcase_add_test(reloc, a_pending_relocation_damaged_in_its_copy_and_its_source_costs_its_key);
	tcase_add_test(reloc, a_key_renamed_after_its_pending_relocation_keeps_its_bytes_from_the_source);
	tcase_add_test(reloc, a_pending_copy_read_back_from_its_source_is_reported_by_check_open_and_salvage);
	tcase_add_test(reloc, an_intact_pending_relocation_reports_nothing_read_back);
	tcase_add_test(reloc, a_pending_copy_whose_source_fails_too_is_reported_lost_not_read_back);
	tcase_add_test(reloc, two_pending_copies_read_back_are_counted_naming_the_first_key);
	tcase_add_test(reloc, a_crash_at_every_io_call_of_a_pending_relocation_salvage_then_salvage_keeps_the_key);
	tcase_add_test(reloc, a_crash_at_every_io_call_of_a_pending_relocation_salvage_then_salvage_loses_only_the_key);
	suite_add_tcase(su, reloc);
	/* one process, so the case count adds up across tests; every case builds its own disk,
	 * so the tests share nothing else */
	SRunner *sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("corruption cases: %lu\n", cases);
	fflush(stdout); /* before a sanitizer's exit report can abort the process */
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
