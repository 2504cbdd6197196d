/* simstore.h — helpers shared by the engine suites: a store on a simulated disk. */
#ifndef KVFS_TESTS_SIMSTORE_H
#define KVFS_TESTS_SIMSTORE_H
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultio.h"
#include "testutil.h"
#include "kv.h"
#include "logfmt.h"
#include "record.h"

#define SIM_DIR "/sim/store"

static inline struct faultio *sim_disk(void)
{
	struct faultio *f;
	ck_assert_int_eq(faultio_create(&f), 0);
	ck_assert_int_eq(faultio_mkdirs(f, "/sim"), 0);
	return f;
}

/* The engine's operator messages (recovery reports, flush failures): the tests assert on the
 * report instead, so keep the output readable. */
static inline void sim_quiet_log(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* Options for tests: no background flusher (deterministic), small segments. */
static inline struct kv_options sim_options(struct faultio *f)
{
	struct kv_options o;
	kv_options_default(&o);
	o.io = faultio_kvio(f);
	o.sync = KV_SYNC_NONE;
	o.segment_bytes = 16 * 1024;
	o.checkpoint_bytes = 1ull << 40; /* no automatic checkpoints unless a test asks */
	o.cleaner = 0;                    /* no background I/O: call counts stay deterministic */
	o.log = sim_quiet_log;
	return o;
}

/* Opens the store on the simulated disk with o (sim_options with a test's changes); a failure
 * fails the test naming the error and the recovery report. rep: where the report goes, or NULL. */
static inline struct kv *sim_open_with(const struct kv_options *o, struct kv_report *rep)
{
	struct kv_report local;
	struct kv *s = NULL;
	if (!rep)
		rep = &local;
	int rc = kv_open(&s, SIM_DIR, o, rep);
	ck_assert_msg(rc == 0, "kv_open: %s (%s)", strerror(-rc), tu_report(rep));
	return s;
}

static inline struct kv *sim_open(struct faultio *f, struct kv_report *rep)
{
	struct kv_options o = sim_options(f);
	return sim_open_with(&o, rep);
}

/* sim_open with segments of segment_bytes (the sizes full-disk, space and torn-record tests
 * need). */
static inline struct kv *sim_open_seg(struct faultio *f, uint64_t segment_bytes, struct kv_report *rep)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = segment_bytes;
	return sim_open_with(&o, rep);
}

/* Bytes that never repeat a 64-byte run within a value (xorshift from seed), so a test can find
 * them in a segment; the same seed gives the same bytes, for checking them back. */
static inline void sim_fill(uint8_t *p, size_t n, unsigned seed)
{
	uint64_t x = 0x9E3779B97F4A7C15ull * (seed + 1);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Asserts k holds exactly the n bytes sim_fill makes from seed. */
static inline void sim_expect_fill(struct kv *s, const char *k, size_t n, unsigned seed)
{
	uint8_t *want = malloc(n);
	void *got = NULL;
	uint64_t len = 0;
	ck_assert_ptr_nonnull(want);
	sim_fill(want, n, seed);
	int rc = kv_get(s, k, strlen(k), &got, &len);
	ck_assert_msg(rc == 0, "get %s: %s", k, strerror(-rc));
	ck_assert_msg(len == n && !memcmp(got, want, n), "%s: %llu bytes, not the %zu of seed %u", k,
		      (unsigned long long)len, n, seed);
	free(got);
	free(want);
}

static inline void put_str(struct kv *s, const char *k, const char *v)
{
	int rc = kv_put(s, k, strlen(k), v, strlen(v));
	ck_assert_msg(rc == 0, "put %s: %s", k, strerror(-rc));
}

/* Asserts key holds exactly v (v NULL: absent). */
static inline void expect_str(struct kv *s, const char *k, const char *v)
{
	void *got = NULL;
	uint64_t len = 0;
	int rc = kv_get(s, k, strlen(k), &got, &len);
	if (!v) {
		ck_assert_msg(rc == -ENOENT, "%s should be absent, got rc %d", k, rc);
		return;
	}
	ck_assert_msg(rc == 0, "get %s: %s", k, strerror(-rc));
	ck_assert_msg(len == strlen(v) && !memcmp(got, v, len), "%s: want '%s' got '%.*s'", k, v,
		      (int)len, (char *)got);
	free(got);
}

/* The store opened on f with "a" = "1" flushed, then "b" = "2" written and its flush failed:
 * fdatasync answered EIO (once; the disk works again after). */
static inline struct kv *sim_a_flushed_then_b_failed(struct faultio *f)
{
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_flush(s), 0);
	put_str(s, "b", "2");
	ck_assert_int_eq(faultio_fail(f, FIO_OP_FDATASYNC, faultio_count(f, FIO_OP_FDATASYNC) + 1, -EIO, false), 0);
	ck_assert_int_eq(kv_flush(s), -EIO);
	return s;
}

static inline uint64_t store_keys(struct kv *s)
{
	struct kv_stats st;
	kv_stats(s, &st);
	return st.keys;
}

static inline int run_suite(Suite *su)
{
	return tu_run_suite(su);
}
/* A log record found by walking a segment file: where it starts, its bytes on disk, its LSN.
 * The walk reads the format of docs/FORMAT.md on its own (no CRC check), so that damage tests
 * can aim at one record of an undamaged store. */
struct sim_rec {
	uint64_t off, size, lsn;
};

static inline uint64_t sim_le(const uint8_t *p, int bytes)
{
	uint64_t v = 0;
	for (int i = bytes - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The first max records of the segment at path (current contents), from after its header to
 * the first length that overruns the file or the zeros of unused preallocation. */
static inline size_t sim_records(struct faultio *f, const char *path, struct sim_rec *out,
				 size_t max)
{
	void *data;
	size_t len, n = 0;
	uint64_t off = SEG_HDR_SIZE;
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	const uint8_t *p = data;
	while (n < max && off + REC_HDR_SIZE <= len) {
		uint64_t crc = sim_le(p + off, 4), plen = sim_le(p + off + 4, 4);
		if (crc == 0 && plen == 0) {
			/* the padding before the close mark (docs/FORMAT.md 3.3), or the end */
			uint64_t b = (off + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
			if (b == off || b + REC_HDR_SIZE > len || sim_le(p + b, 4) == 0)
				break;
			off = b;
			continue;
		}
		if (plen > len - off - REC_HDR_SIZE)
			break;
		out[n].off = off;
		out[n].size = REC_HDR_SIZE + plen;
		out[n].lsn = sim_le(p + off + 8, 8);
		n++;
		off += REC_HDR_SIZE + plen;
	}
	free(data);
	return n;
}

/* What sim_each_op calls for each operation: rec is its record's file offset, payload that
 * record's payload in memory (op's pointers point into it). Nonzero stops the walk. */
typedef int (*sim_op_fn)(void *ctx, uint64_t rec, const uint8_t *payload,
			 const struct rec_op_view *op);

/* Calls fn for every operation of every OPS record of the segment at path (its first 4096
 * records, by sim_records) until fn returns nonzero; returns that, or 0. */
static inline int sim_each_op(struct faultio *f, const char *path, sim_op_fn fn, void *ctx)
{
	static struct sim_rec recs[4096];
	void *data;
	size_t len, nr = sim_records(f, path, recs, 4096);
	int rc = 0;
	ck_assert_int_eq(faultio_read_file(f, path, &data, &len), 0);
	for (size_t r = 0; r < nr && !rc; r++) {
		const uint8_t *pl = (const uint8_t *)data + recs[r].off + REC_HDR_SIZE;
		struct rec_reader rr;
		struct rec_op_view op;
		if (((const uint8_t *)data)[recs[r].off + REC_OFF_TYPE] != REC_TYPE_OPS)
			continue;
		ck_assert_int_eq(rec_reader_init(&rr, pl, recs[r].size - REC_HDR_SIZE), 0);
		while (!rc && rec_reader_next(&rr, &op) == 1)
			rc = fn(ctx, recs[r].off, pl, &op);
	}
	free(data);
	return rc;
}

/* What every salvage of a damaged store must leave: keeps checks f after a salvage that ran to
 * its end (rep, its report); at is the I/O call the salvage before it was crashed at, 0 when
 * there was none; what names the run, for messages. */
typedef void (*sim_keeps_fn)(void *ctx, struct faultio *f, const struct kv_report *rep, uint64_t at,
			     const char *what);

/* Salvage of base (left as it is) run alone, then crashed at each of its I/O calls (killed, or a
 * power cut dropping what was not synced) and salvaged again: keeps judges every outcome. label
 * starts every message. */
static inline void sim_crash_every_io_call_of_salvage(struct faultio *base, sim_keeps_fn keeps,
						      void *ctx, const char *label)
{
	const enum fio_crash modes[] = { FIO_CRASH_KILL, FIO_CRASH_DROP };
	struct faultio *f;
	struct kv_report rep;
	char what[256];
	uint64_t calls;

	ck_assert_int_eq(faultio_clone(base, &f), 0);
	faultio_reset_counts(f);
	ck_assert_int_eq(kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep), 0);
	calls = faultio_calls(f);
	snprintf(what, sizeof what, "%s: a salvage left alone", label);
	keeps(ctx, f, &rep, 0, what);
	faultio_destroy(f);
	ck_assert_uint_gt(calls, 5);
	for (size_t m = 0; m < 2; m++)
		for (uint64_t at = 1; at <= calls; at++) {
			snprintf(what, sizeof what, "%s: crash %zu at call %" PRIu64 " of %" PRIu64, label, m,
				 at, calls);
			ck_assert_int_eq(faultio_clone(base, &f), 0);
			faultio_reset_counts(f);
			faultio_crash_at(f, at);
			/* it may fail or not: the crash decides, the next salvage judges */
			int rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
			ck_assert_int_eq(faultio_crash(f, modes[m], at), 0);
			rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
			ck_assert_msg(rc == 0, "%s: salvage %d (%s)", what, rc, tu_report(&rep));
			keeps(ctx, f, &rep, at, what);
			faultio_destroy(f);
		}
}

#endif
