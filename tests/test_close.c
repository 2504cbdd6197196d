/* close: a clean kv_close writes a checkpoint when the log since the last one is big enough that
 * replaying it at the next open would cost more (docs/DESIGN.md §4, DURABILITY.md 5.4): at least
 * 1/64 of checkpoint_bytes (4 MiB by default) and at least the last checkpoint's size. Never
 * after a failed write or sync. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simstore.h"
#include "testutil.h"

#define VALUE (256u << 10)
#define SEGMENT (1u << 20)

static struct kv *open_store(struct faultio *f)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = SEGMENT;
	o.checkpoint_bytes = 256u << 20; /* the default: a close checkpoints after 4 MiB of log */
	return sim_open_with(&o, NULL);
}

/* The process is killed at the k-th I/O call (from 0) of the close of s: from there on it does
 * nothing to the disk. The close's result is the dead process's, and means nothing. */
static void close_killed_at(struct faultio *f, struct kv *s, uint64_t k)
{
	faultio_crash_at(f, faultio_calls(f) + 1 + k);
	int rc = kv_close(s); /* fails, unless the crash falls after its last call */
	(void)rc;
}

/* n values of VALUE bytes under "v%03d", each byte its index, then flushed. */
static void put_values(struct kv *s, int n)
{
	static uint8_t v[VALUE];
	char k[16];
	for (int i = 0; i < n; i++) {
		memset(v, i, sizeof v);
		snprintf(k, sizeof k, "v%03d", i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof v), 0);
	}
	ck_assert_int_eq(kv_flush(s), 0);
}

static void expect_values(struct kv *s, int n)
{
	char k[16];
	for (int i = 0; i < n; i++) {
		void *got = NULL;
		uint64_t len = 0;
		snprintf(k, sizeof k, "v%03d", i);
		ck_assert_int_eq(kv_get(s, k, strlen(k), &got, &len), 0);
		ck_assert_uint_eq(len, VALUE);
		ck_assert_int_eq(((uint8_t *)got)[VALUE - 1], (uint8_t)i);
		free(got);
	}
}

static uint64_t checkpoint_lsn(struct kv *s)
{
	struct kv_stats st;
	kv_stats(s, &st);
	return st.snapshot_lsn;
}

/* Opened again (and closed, and f destroyed), the store holds the n values of put_values, with a
 * checkpoint or (checkpointed 0) with none. */
static void reopened_holds(struct faultio *f, int n, int checkpointed)
{
	struct kv *s = open_store(f);
	if (checkpointed)
		ck_assert_uint_gt(checkpoint_lsn(s), 0);
	else
		ck_assert_uint_eq(checkpoint_lsn(s), 0);
	expect_values(s, n);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}

START_TEST(a_clean_close_after_more_log_than_the_threshold_writes_a_checkpoint)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_store(f);
	put_values(s, 20); /* 5 MiB of log */
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_eq(st.snapshot_lsn, 0);
	uint64_t last = st.last_lsn;
	ck_assert_int_eq(kv_close(s), 0);
	s = open_store(f);
	kv_stats(s, &st);
	ck_assert_uint_eq(st.snapshot_lsn, last);
	/* nothing replayed but the close mark and the padding before it (the mark starts a block:
	 * docs/FORMAT.md 3.3) */
	ck_assert_uint_lt(st.wal_bytes, 64 + 4096);
	expect_values(s, 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A store that asks for no automatic checkpoints (checkpoint_bytes huge, as the engine's tests
 * do) gets none at close either. */
START_TEST(a_store_without_automatic_checkpoints_gets_none_at_close)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open_seg(f, SEGMENT, NULL); /* sim_options: no automatic checkpoints */
	put_values(s, 20);
	ck_assert_int_eq(kv_close(s), 0);
	reopened_holds(f, 20, 0);
}
END_TEST

START_TEST(a_clean_close_after_little_log_writes_no_checkpoint)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_store(f);
	put_values(s, 4); /* 1 MiB */
	ck_assert_int_eq(kv_close(s), 0);
	reopened_holds(f, 4, 0);
}
END_TEST

/* The log replayed at open counts: a store opened and closed at once after a crash gets the
 * checkpoint its last life did not write. */
START_TEST(a_close_right_after_replaying_a_long_log_writes_a_checkpoint)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_store(f);
	put_values(s, 20);
	close_killed_at(f, s, 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
	s = open_store(f);
	ck_assert_uint_eq(checkpoint_lsn(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	reopened_holds(f, 20, 1);
}
END_TEST

/* After a failed fdatasync the store refuses writes: no checkpoint at close (it would stand for
 * records the disk may not hold). */
START_TEST(a_close_after_a_failed_sync_writes_no_checkpoint)
{
	struct faultio *f = sim_disk();
	struct kv *s = open_store(f);
	put_values(s, 20);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_FDATASYNC, faultio_count(f, FIO_OP_FDATASYNC) + 1, -EIO, true), 0);
	ck_assert_int_eq(kv_put(s, "late", 4, "x", 1), 0);
	ck_assert_int_eq(kv_flush(s), -EIO);
	ck_assert_int_eq(kv_close(s), -EIO);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0); /* clears the fault */
	char **names = NULL;
	size_t n = 0;
	ck_assert_int_eq(faultio_kvio(f)->list_dir(faultio_kvio(f), SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(strncmp(names[i], "ckpt-", 5), "a checkpoint after a failed sync: %s", names[i]);
	kvio_free_names(names, n);
	s = open_store(f);
	expect_values(s, 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Count the I/O calls of a close that checkpoints, then crash at each of them in turn, in each
 * crash mode: the store opens strictly with every flushed value. */
START_TEST(a_crash_at_each_io_call_of_the_close_checkpoint_recovers)
{
	uint64_t calls;
	{
		struct faultio *f = sim_disk();
		struct kv *s = open_store(f);
		put_values(s, 20);
		uint64_t c0 = faultio_calls(f);
		ck_assert_int_eq(kv_close(s), 0);
		calls = faultio_calls(f) - c0;
		faultio_destroy(f);
	}
	ck_assert_uint_gt(calls, 5);
	enum fio_crash modes[] = { FIO_CRASH_DROP, FIO_CRASH_KEEP, FIO_CRASH_TEAR, FIO_CRASH_GARBAGE };
	for (uint64_t k = 0; k < calls; k++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			struct faultio *f = sim_disk();
			struct kv *s = open_store(f);
			put_values(s, 20);
			close_killed_at(f, s, k);
			ck_assert_int_eq(faultio_crash(f, modes[m], k), 0);
			struct kv_options o = sim_options(f);
			struct kv_report rep;
			o.segment_bytes = SEGMENT;
			s = NULL;
			int orc = kv_open(&s, SIM_DIR, &o, &rep);
			ck_assert_msg(orc == 0, "crash at close call %" PRIu64 " of %" PRIu64 ", mode %zu: %s", k,
				      calls, m, tu_report(&rep));
			expect_values(s, 20);
			ck_assert_int_eq(kv_close(s), 0);
			faultio_destroy(f);
		}
	}
}
END_TEST

int main(void)
{
	Suite *su = suite_create("close");
	TCase *tc = tcase_create("close_checkpoint");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, a_clean_close_after_more_log_than_the_threshold_writes_a_checkpoint);
	tcase_add_test(tc, a_clean_close_after_little_log_writes_no_checkpoint);
	tcase_add_test(tc, a_store_without_automatic_checkpoints_gets_none_at_close);
	tcase_add_test(tc, a_close_right_after_replaying_a_long_log_writes_a_checkpoint);
	tcase_add_test(tc, a_close_after_a_failed_sync_writes_no_checkpoint);
	tcase_add_test(tc, a_crash_at_each_io_call_of_the_close_checkpoint_recovers);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
