/* I/O errors: a fixed small workload on the simulated disk, with -EIO and -ENOSPC injected at
 * every call of every I/O op in turn (once and persistently) and every pwrite cut short. The
 * kv_* call that hit the error must report it; after a failed log write or fdatasync the store
 * is read-only for good (writes -EROFS, flushes never succeed again); and after a power cut the
 * reopened store holds every acknowledged write and is a prefix of the history.
 *
 * EINTR is not modelled: faultio never returns it, because the POSIX seam (kvio_posix) retries
 * interrupted calls itself and the engine never sees EINTR (kvio.h: "short writes and EINTR are
 * the implementation's problem"). Short writes are modelled here, as the seam's own failure
 * mode after a partial write: part of the data lands, then an error.
 *
 * The power cut's seed (for garbage/tear modes; DROP ignores it) comes from tu_seed. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simstore.h"
#include "testutil.h"

#define NKEYS 30
#define MAXMUT 128
#define VLEN 64

struct model {
	int present[NKEYS];
	char val[NKEYS][VLEN];
};

/* states[j]: the model after the first j mutations of the workload. */
static struct model states[MAXMUT + 1];
static int nstates;

static uint64_t counts[FIO_OP_ANY];
static size_t pwrite_len[4096];
static uint64_t npwrites;
static unsigned long injected;
static uint64_t seed;
/* The counting run goes through a recorder in front of the disk. */
static const struct kvio *io_override;

static void key_of(char *k, size_t len, int i)
{
	snprintf(k, len, "k%02d", i);
}

/* A run of the workload: what it did and how far the store acknowledged it. */
struct run {
	int err;       /* the first non-zero kv_* result, 0 when none */
	char where[64];/* which call returned it */
	int mutations; /* mutations the store accepted (returned 0) */
	int acked;     /* mutations covered by the last successful flush, snapshot or close */
	int log_call;  /* the failing call was a write or flush, i.e. on the log's path */
	int sticky_ok; /* checked the read-only state after the error */
};

static void model_step(struct model *m, int j)
{
	states[j + 1] = *m;
}

/* Runs the workload until the first error, recording in r how far the store acknowledged it;
 * when building is set (the clean counting run) it also records the model's states. After an
 * error, once or persistent, a store that says it is read-only must stay so. */
static void workload(struct faultio *f, struct run *r, int building)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	if (io_override)
		o.io = io_override;
	struct kv *s = NULL;
	struct model m;
	char k[8], v[VLEN];
	int j = 0;
	memset(r, 0, sizeof *r);
	memset(&m, 0, sizeof m);
	if (building) {
		states[0] = m;
		nstates = 1;
	}
	int rc = kv_open(&s, SIM_DIR, &o, NULL);
	if (rc) {
		r->err = rc;
		snprintf(r->where, sizeof r->where, "kv_open");
		return;
	}
#define STEP(call, name, logpath)                                                              \
	do {                                                                                   \
		rc = (call);                                                                   \
		if (rc) {                                                                      \
			r->err = rc;                                                           \
			r->log_call = (logpath);                                               \
			snprintf(r->where, sizeof r->where, "%s", name);                       \
			goto failed;                                                           \
		}                                                                              \
	} while (0)
#define MUT(call, name, apply)                                                                 \
	do {                                                                                   \
		STEP(call, name, 1);                                                           \
		apply;                                                                         \
		if (building)                                                                  \
			model_step(&m, j), nstates = j + 2;                                    \
		r->mutations = ++j;                                                            \
	} while (0)
	for (int i = 0; i < 10; i++) {
		key_of(k, sizeof k, i);
		snprintf(v, sizeof v, "first-%02d-%040d", i, i);
		MUT(kv_put(s, k, strlen(k), v, strlen(v)), "kv_put", (m.present[i] = 1, strcpy(m.val[i], v)));
	}
	key_of(k, sizeof k, 3);
	MUT(kv_del(s, k, strlen(k)), "kv_del", m.present[3] = 0);
	key_of(k, sizeof k, 5);
	MUT(kv_write(s, k, strlen(k), 4, "RANGE", 5), "kv_write", memcpy(m.val[5] + 4, "RANGE", 5));
	STEP(kv_flush(s), "kv_flush", 1);
	r->acked = j;
	/* past one 4 KiB segment, so the log rotates and the snapshot has a segment to delete */
	for (int i = 0; i < 60; i++) {
		int key = 10 + i % 20;
		key_of(k, sizeof k, key);
		snprintf(v, sizeof v, "second-%02d-%040d", i, i);
		MUT(kv_put(s, k, strlen(k), v, strlen(v)), "kv_put",
		    (m.present[key] = 1, strcpy(m.val[key], v)));
	}
	STEP(kv_flush(s), "kv_flush", 1);
	r->acked = j;
	STEP(kv_snapshot(s), "kv_snapshot", 0);
	r->acked = j;
	/* enough to roll over into new 4 KiB segments */
	for (int i = 20; i < 30; i++) {
		key_of(k, sizeof k, i);
		snprintf(v, sizeof v, "third-%02d-%040d", i, i);
		MUT(kv_put(s, k, strlen(k), v, strlen(v)), "kv_put", (m.present[i] = 1, strcpy(m.val[i], v)));
		key_of(k, sizeof k, i - 20);
		MUT(kv_put(s, k, strlen(k), v, strlen(v)), "kv_put",
		    (m.present[i - 20] = 1, strcpy(m.val[i - 20], v)));
	}
	STEP(kv_flush(s), "kv_flush", 1);
	r->acked = j;
	rc = kv_close(s);
	if (rc) {
		r->err = rc;
		r->log_call = 1;
		snprintf(r->where, sizeof r->where, "kv_close");
		return;
	}
	r->acked = j;
	return;
failed:;
	/* the store must say it went read-only, and stay so: no write is accepted and no flush
	 * claims success for data that may be lost */
	struct kv_stats st;
	kv_stats(s, &st);
	if (st.read_only) {
		ck_assert_int_ne(st.error, 0);
		key_of(k, sizeof k, 0);
		ck_assert_int_eq(kv_put(s, k, strlen(k), "x", 1), -EROFS);
		ck_assert_int_ne(kv_flush(s), 0);
		ck_assert_int_ne(kv_flush(s), 0);
		ck_assert_int_ne(kv_close(s), 0);
		r->sticky_ok = 1;
	} else {
		/* not read-only: whatever close flushes only adds to the history's prefix */
		kv_close(s);
	}
#undef STEP
#undef MUT
}

/* Which prefix of the history the reopened store holds; -1 when none. */
static int recovered_prefix(struct kv *s, int lo, int hi)
{
	char k[8];
	for (int j = hi; j >= lo; j--) {
		const struct model *m = &states[j];
		int same = 1;
		uint64_t n = 0;
		for (int i = 0; i < NKEYS && same; i++) {
			void *got = NULL;
			uint64_t len = 0;
			key_of(k, sizeof k, i);
			int rc = kv_get(s, k, strlen(k), &got, &len);
			if (!m->present[i]) {
				same = rc == -ENOENT;
			} else {
				n++;
				same = rc == 0 && len == strlen(m->val[i]) && !memcmp(got, m->val[i], len);
			}
			free(got);
		}
		if (same && store_keys(s) == n)
			return j;
	}
	return -1;
}

/* The counting run: how many calls of each op the workload makes, and each pwrite's length. */
static const struct kvio *inner_io;
static int rec_pwrite(const struct kvio *io, int fd, const void *buf, size_t len, uint64_t off)
{
	(void)io;
	if (npwrites < sizeof pwrite_len / sizeof pwrite_len[0])
		pwrite_len[npwrites] = len;
	npwrites++;
	return inner_io->pwrite(inner_io, fd, buf, len, off);
}

static void count_calls(void)
{
	npwrites = 0;
	struct faultio *f = sim_disk();
	struct kvio rec = *faultio_kvio(f);
	inner_io = faultio_kvio(f);
	rec.pwrite = rec_pwrite;
	io_override = &rec;
	struct run r;
	workload(f, &r, 1);
	io_override = NULL;
	ck_assert_msg(r.err == 0, "clean workload failed in %s: %d", r.where, r.err);
	ck_assert_int_eq(r.acked, nstates - 1);
	ck_assert_uint_eq(npwrites, faultio_count(f, FIO_OP_PWRITE));
	for (int op = 0; op < FIO_OP_ANY; op++)
		counts[op] = faultio_count(f, (enum fio_op)op);
	faultio_destroy(f);
}

/* One case on a fresh disk: arm it, run, power cut, reopen, check. */
static void one_case(int op, uint64_t nth, int err, int persistent, size_t short_keep)
{
	struct faultio *f = sim_disk();
	char what[128];
	if (short_keep != (size_t)-1) {
		ck_assert_int_eq(faultio_short_write(f, nth, short_keep, err), 0);
		snprintf(what, sizeof what, "pwrite #%" PRIu64 " cut short to %zu, %s", nth,
			 short_keep, strerror(-err));
	} else {
		ck_assert_int_eq(faultio_fail(f, (enum fio_op)op, nth, err, persistent), 0);
		snprintf(what, sizeof what, "%s #%" PRIu64 " %s %s", faultio_op_name((enum fio_op)op),
			 nth, strerror(-err), persistent ? "persistent" : "once");
	}
	struct run r;
	workload(f, &r, 0);
	uint64_t hit_count = faultio_count(f, short_keep != (size_t)-1 ? FIO_OP_PWRITE : (enum fio_op)op);
	if (hit_count >= nth)
		injected++;
	if (getenv("KV_FAULTS_VERBOSE"))
		fprintf(stderr, "%s: hit %d, %s -> %d, acked %d/%d\n", what, hit_count >= nth,
			r.where, r.err, r.acked, r.mutations);
	/* Every fault the workload reached must be reported by some kv_* call, except where the
	 * engine may absorb it: a failed close (the data was synced), and the clean-up after a
	 * snapshot or at close (removing covered segments, listing them, syncing the directory
	 * after it), giving back the unused preallocation of a segment already synced (a failed
	 * ftruncate costs space, not data), and no space (a smaller segment is made instead, or
	 * the write that needs a segment makes room with a checkpoint and tries once more) — those
	 * cases are still held to every acknowledgement by the state check. */
	if (hit_count >= nth && r.err == 0)
		ck_assert_msg(op == FIO_OP_CLOSE || op == FIO_OP_UNLINK || op == FIO_OP_LIST_DIR ||
			      op == FIO_OP_FSYNC_DIR || op == FIO_OP_FTRUNCATE || err == -ENOSPC,
			      "%s: no kv_* call reported the error", what);
	/* A failed flush of the log (its pwrite or fdatasync) must turn the store read-only for
	 * good. A write that fails while moving to a new segment leaves the store writable when
	 * only the new segment's creation failed (the old one was synced first, nothing is
	 * lost); the engine decides, and workload() checks the sticky state whenever it says
	 * read-only. kv_close frees the store whatever it returns, so it is only held to
	 * reporting the error and to what the reopen finds. */
	if (r.err && !strcmp(r.where, "kv_flush"))
		ck_assert_msg(r.sticky_ok, "%s: kv_flush failed (%d) but the store is not read-only",
			      what, r.err);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, seed), 0);
	struct kv_report rep;
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	struct kv *s = NULL;
	int rc = kv_open(&s, SIM_DIR, &o, &rep);
	ck_assert_msg(rc == 0, "%s (failed in %s with %d): reopen %d (%s)", what, r.where, r.err, rc,
		      tu_report(&rep));
	int p = recovered_prefix(s, 0, nstates - 1);
	ck_assert_msg(p >= 0, "%s (failed in %s with %d): state is no prefix of the history", what,
		      r.where, r.err);
	ck_assert_msg(p >= r.acked, "%s (failed in %s with %d): %d acknowledged, only %d recovered",
		      what, r.where, r.err, r.acked, p);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}

START_TEST(every_nth_call_failing_reports_and_loses_nothing_acknowledged)
{
	static const int errs[] = { -EIO, -ENOSPC };
	for (int op = 0; op < FIO_OP_ANY; op++)
		for (uint64_t n = 1; n <= counts[op]; n++)
			for (int e = 0; e < 2; e++)
				for (int pers = 0; pers < 2; pers++)
					one_case(op, n, errs[e], pers, (size_t)-1);
}
END_TEST

START_TEST(short_write_reports_and_loses_nothing_acknowledged)
{
	for (uint64_t n = 1; n <= counts[FIO_OP_PWRITE]; n++)
		one_case(FIO_OP_PWRITE, n, -EIO, 0, n <= npwrites ? pwrite_len[n - 1] / 2 : 0);
}
END_TEST

/* A write that has to move to a new segment runs several I/O calls (flush the old segment,
 * create, write and sync the new one, sync the directory). Whichever of them fails, the store
 * either goes read-only or stays fully usable: writes it accepts afterwards and a flush that
 * returns 0 must survive a power cut, and the failed write must not appear. */
START_TEST(failure_while_moving_to_a_new_segment_keeps_accepted_writes)
{
	static const enum fio_op ops[] = { FIO_OP_OPEN, FIO_OP_PWRITE, FIO_OP_FDATASYNC,
					   FIO_OP_FALLOCATE, FIO_OP_FSYNC_DIR };
	static const int errs[] = { -EIO, -ENOSPC };
	for (size_t oi = 0; oi < sizeof ops / sizeof ops[0]; oi++)
		for (int e = 0; e < 2; e++)
			for (uint64_t k = 1; k <= 3; k++) {
				struct faultio *f = sim_disk();
				struct kv_options o = sim_options(f);
				o.segment_bytes = 4096;
				struct kv *s = NULL;
				ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
				/* with sync=none only a move to a new segment does I/O in a put */
				uint64_t nth = faultio_count(f, ops[oi]) + k;
				ck_assert_int_eq(faultio_fail(f, ops[oi], nth, errs[e], false), 0);
				int accepted[100], failed_at = -1;
				char key[16], v[VLEN];
				for (int i = 0; i < 100; i++) {
					snprintf(key, sizeof key, "r%03d", i);
					snprintf(v, sizeof v, "rotating-%03d-%040d", i, i);
					int rc = kv_put(s, key, strlen(key), v, strlen(v));
					accepted[i] = rc == 0;
					if (rc && failed_at < 0)
						failed_at = i;
					if (rc && failed_at != i)
						ck_assert_int_eq(rc, -EROFS);
				}
				int frc = kv_flush(s);
				/* count only faults the workload reached */
				if (faultio_count(f, ops[oi]) >= nth)
					injected++;
				struct kv_stats st;
				kv_stats(s, &st);
				ck_assert_msg(frc == 0 || st.read_only, "%s #+%" PRIu64 ": flush %d but not read-only",
					      faultio_op_name(ops[oi]), k, frc);
				kv_close(s);
				ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, seed), 0);
				ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
				for (int i = 0; i < 100; i++) {
					void *got = NULL;
					uint64_t len;
					snprintf(key, sizeof key, "r%03d", i);
					int rc = kv_get(s, key, strlen(key), &got, &len);
					free(got);
					if (!accepted[i])
						ck_assert_msg(rc == -ENOENT, "%s #+%" PRIu64 ": refused %s is there",
							      faultio_op_name(ops[oi]), k, key);
					else if (frc == 0)
						ck_assert_msg(rc == 0, "%s #+%" PRIu64 ": flushed %s lost (failure at %d)",
							      faultio_op_name(ops[oi]), k, key, failed_at);
				}
				ck_assert_int_eq(kv_close(s), 0);
				faultio_destroy(f);
			}
}
END_TEST

/* What the store said, from its background thread. */
static pthread_mutex_t said_mu = PTHREAD_MUTEX_INITIALIZER;
static char said[4096];

static void keep_line(void *arg, const char *line)
{
	(void)arg;
	pthread_mutex_lock(&said_mu);
	snprintf(said + strlen(said), sizeof(said) - strlen(said), "%s\n", line);
	pthread_mutex_unlock(&said_mu);
}

static int store_said(const char *what)
{
	pthread_mutex_lock(&said_mu);
	int yes = strstr(said, what) != NULL;
	pthread_mutex_unlock(&said_mu);
	return yes;
}

/* A log write of the background cleaner fails: no caller hears it, so the store must say that
 * it is now read-only, not that space is reclaimed later (attack6 finding 2). */
START_TEST(a_failed_cleaner_write_says_the_store_is_read_only)
{
	struct faultio *f = sim_disk(), *dry;
	struct kv_options o = sim_options(f);
	struct kv *s;
	char v[4096];

	o.segment_bytes = 64u << 10;
	memset(v, 'c', sizeof(v));
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	for (int i = 0; i < 64; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof(v)), 0);
	}
	for (int i = 0; i < 64; i++) {
		char k[16];
		snprintf(k, sizeof(k), "k%03d", i);
		if (i % 4)
			ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
	}
	ck_assert_int_eq(kv_close(s), 0); /* three quarters dead: the cleaner has work */

	/* how many writes an open makes (a copy of the disk, no cleaner): the next is the
	 * background thread's, the cleaner's relocation */
	ck_assert_int_eq(faultio_clone(f, &dry), 0);
	struct kv_options d = sim_options(dry);
	d.segment_bytes = o.segment_bytes;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &d, NULL), 0);
	uint64_t open_writes = faultio_count(dry, FIO_OP_PWRITE);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(dry);

	faultio_reset_counts(f);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_PWRITE, open_writes + 1, -EIO, true), 0);
	o.cleaner = 1;
	o.log = keep_line;
	said[0] = '\0';
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	for (int waited = 0; !store_said("cleaner pass failed"); waited++) {
		ck_assert_msg(waited < 6000, "no cleaner pass failed in a minute; the store said: '%s'", said);
		usleep(10000);
	}
	ck_assert_msg(store_said("the store is now read-only"), "the store said: '%s'", said);
	ck_assert_msg(!store_said("space is reclaimed later"), "the store said: '%s'", said);
	ck_assert_int_eq(kv_put(s, "after", 5, "x", 1), -EROFS);
	ck_assert_int_ne(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- failures while cutting back the space files at open ----
 * A seam in front of the disk fails one op (ftruncate or fdatasync) on one file only: the space
 * file named by `target`, through the descriptor the engine opened it by. */

static const char *target;
static int target_fd = -1;
static enum fio_op target_op;
static const struct kvio *disk_io;

static int aim_open(const struct kvio *io, const char *path, int flags, mode_t mode, int *fd)
{
	int rc = disk_io->open(io, path, flags, mode, fd);
	size_t n = strlen(path), t = strlen(target);
	if (!rc && n >= t && !strcmp(path + n - t, target))
		target_fd = *fd;
	return rc;
}

static int aim_close(const struct kvio *io, int fd)
{
	if (fd == target_fd)
		target_fd = -1;
	return disk_io->close(io, fd);
}

static int aim_ftruncate(const struct kvio *io, int fd, uint64_t len)
{
	if (fd == target_fd && target_op == FIO_OP_FTRUNCATE)
		return -EIO;
	return disk_io->ftruncate(io, fd, len);
}

static int aim_fdatasync(const struct kvio *io, int fd)
{
	if (fd == target_fd && target_op == FIO_OP_FDATASYNC)
		return -EIO;
	return disk_io->fdatasync(io, fd);
}

/* The disk f behind a seam failing op on the file named name. */
static struct kvio aimed_at(struct faultio *f, const char *name, enum fio_op op)
{
	struct kvio io = *faultio_kvio(f);
	disk_io = faultio_kvio(f);
	target = name;
	target_op = op;
	target_fd = -1;
	io.open = aim_open;
	io.close = aim_close;
	io.ftruncate = aim_ftruncate;
	io.fdatasync = aim_fdatasync;
	return io;
}

static uint64_t size_of(struct faultio *f, const char *path)
{
	uint64_t size = 0;
	bool dir;
	ck_assert_int_eq(faultio_stat(f, path, &dir, &size), 0);
	return size;
}

#define RESERVE SIM_DIR "/space.reserve"

/* A reserve of 8 times its size (an older version's, say): the cut-back at the next open fails
 * at its ftruncate or its fdatasync. The open goes ahead, says so, loses nothing, and the
 * reserve is at least what it was taken at; the next open, on a sound disk, cuts it. */
START_TEST(a_failed_cut_back_of_the_reserve_leaves_the_open_working_and_says_so)
{
	static const enum fio_op ops[] = { FIO_OP_FTRUNCATE, FIO_OP_FDATASYNC };

	for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
		struct faultio *f = sim_disk();
		struct kv_options o = sim_options(f);
		struct kv *s = NULL;
		char k[16];

		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
		for (int j = 0; j < 100; j++) {
			snprintf(k, sizeof k, "k%03d", j);
			put_str(s, k, k);
		}
		ck_assert_int_eq(kv_close(s), 0);
		uint64_t taken = size_of(f, RESERVE);
		ck_assert_int_eq(faultio_truncate(f, RESERVE, 8 * taken), 0);

		struct kvio io = aimed_at(f, "/space.reserve", ops[i]);
		o.io = &io;
		o.log = keep_line;
		said[0] = '\0';
		int rc = kv_open(&s, SIM_DIR, &o, NULL);
		ck_assert_msg(rc == 0, "%s failing: open %s", faultio_op_name(ops[i]), strerror(-rc));
		ck_assert_msg(store_said("space.reserve: cannot be cut back"), "%s failing: the store "
			      "said '%s'", faultio_op_name(ops[i]), said);
		ck_assert_uint_ge(size_of(f, RESERVE), taken / 2);
		for (int j = 0; j < 100; j++) {
			snprintf(k, sizeof k, "k%03d", j);
			expect_str(s, k, k);
		}
		put_str(s, "after", "1");
		ck_assert_int_eq(kv_close(s), 0);

		ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0); /* what the cut left durable */
		ck_assert_uint_ge(size_of(f, RESERVE), taken / 2);
		s = sim_open(f, NULL);
		ck_assert_uint_le(size_of(f, RESERVE), taken);
		expect_str(s, "k099", "k099");
		expect_str(s, "after", "1");
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
}
END_TEST

/* R14: kv_abandon of a new store with each of its calls failing in turn (EIO, ENOSPC): it
 * returns 0, what it could not remove is said, never a crash or a leak, and what it leaves is a
 * directory the next open makes a fresh store in. */
START_TEST(an_abandon_whose_calls_fail_one_by_one_leaves_a_directory_the_next_open_uses)
{
	static const int errs[] = { -EIO, -ENOSPC };
	uint64_t calls;
	{
		struct faultio *f = sim_disk();
		struct kv *s = sim_open(f, NULL);
		uint64_t before = faultio_calls(f);
		ck_assert_int_eq(kv_abandon(s), 0);
		calls = faultio_calls(f) - before;
		faultio_destroy(f);
	}
	ck_assert_uint_gt(calls, 2);
	for (size_t e = 0; e < sizeof errs / sizeof errs[0]; e++)
		for (uint64_t n = 1; n <= calls; n++) {
			struct faultio *f = sim_disk();
			struct kv_options o = sim_options(f);
			struct kv *s = NULL;
			o.log = keep_line;
			said[0] = '\0';
			ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
			ck_assert_int_eq(faultio_fail(f, FIO_OP_ANY, faultio_calls(f) + n, errs[e], false), 0);
			ck_assert_int_eq(kv_abandon(s), 0);
			faultio_clear_faults(f);
			ck_assert_msg(!faultio_exists(f, SIM_DIR "/wal-0000000000000001.log") || store_said(SIM_DIR),
				      "%s at call %" PRIu64 " of the abandon: its segment left, unsaid",
				      strerror(-errs[e]), n);
			s = sim_open(f, NULL);
			ck_assert_uint_eq(store_keys(s), 0);
			put_str(s, "a", "1");
			ck_assert_int_eq(kv_close(s), 0);
			s = sim_open(f, NULL);
			expect_str(s, "a", "1");
			ck_assert_int_eq(kv_close(s), 0);
			faultio_destroy(f);
		}
}
END_TEST

/* The promise file above the count set at a mount: its cut-back failing leaves every promise held
 * (and more), so kv_promise_set goes ahead and says so rather than failing the mount. */
START_TEST(a_failed_cut_back_of_the_promise_file_is_said_and_not_fatal)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	uint64_t promised, held;
	struct kv *s = sim_open(f, NULL);

	ck_assert_int_eq(kv_promise(s, 8u << 20), 0);
	ck_assert_int_eq(kv_close(s), 0);
	struct kvio io = aimed_at(f, "/space.promise", FIO_OP_FTRUNCATE);
	o.io = &io;
	o.log = keep_line;
	said[0] = '\0';
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	ck_assert_int_eq(kv_promise_set(s, 1u << 20), 0);
	ck_assert_msg(store_said("space.promise: cannot be cut back"), "the store said '%s'", said);
	kv_promise_stats(s, &promised, &held);
	ck_assert_uint_eq(promised, 1u << 20);
	ck_assert_uint_eq(held, 1u << 20);
	ck_assert_uint_eq(size_of(f, SIM_DIR "/space.promise"), 8u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	seed = tu_seed();
	Suite *su = suite_create("faults");
	TCase *tc = tcase_create("io_errors");
	tcase_set_timeout(tc, 600);
	/* before each test (it is quick): asserts need a running test */
	tcase_add_checked_fixture(tc, count_calls, NULL);
	tcase_add_test(tc, every_nth_call_failing_reports_and_loses_nothing_acknowledged);
	tcase_add_test(tc, short_write_reports_and_loses_nothing_acknowledged);
	tcase_add_test(tc, failure_while_moving_to_a_new_segment_keeps_accepted_writes);
	tcase_add_test(tc, a_failed_cleaner_write_says_the_store_is_read_only);
	suite_add_tcase(su, tc);
	tc = tcase_create("space_files");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, a_failed_cut_back_of_the_reserve_leaves_the_open_working_and_says_so);
	tcase_add_test(tc, a_failed_cut_back_of_the_promise_file_is_said_and_not_fatal);
	tcase_add_test(tc, an_abandon_whose_calls_fail_one_by_one_leaves_a_directory_the_next_open_uses);
	suite_add_tcase(su, tc);
	/* one process, so the count adds up over the tests */
	SRunner *sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("injected errors: %lu\n", injected);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
