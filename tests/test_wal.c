/* Group commit, sticky errors and a full disk, seen through the I/O seam. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "le.h"
#include "logfmt.h"
#include "simstore.h"

/* A seam that passes everything to the simulated disk, except that while the gate is closed
 * an fdatasync waits at it: the test decides when the disk "finishes" a flush. */
struct gated_io {
	struct kvio io;
	const struct kvio *inner;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int closed, waiting;
};

static struct gated_io gate;

#define FWD(name, params, args)                                                     \
	static int g_##name params                                                   \
	{                                                                            \
		(void)io;                                                            \
		return gate.inner->name args;                                        \
	}
FWD(open, (const struct kvio *io, const char *p, int fl, mode_t m, int *fd), (gate.inner, p, fl, m, fd))
FWD(close, (const struct kvio *io, int fd), (gate.inner, fd))
FWD(pread, (const struct kvio *io, int fd, void *b, size_t l, uint64_t o, size_t *g), (gate.inner, fd, b, l, o, g))
FWD(pwrite, (const struct kvio *io, int fd, const void *b, size_t l, uint64_t o), (gate.inner, fd, b, l, o))
FWD(ftruncate, (const struct kvio *io, int fd, uint64_t l), (gate.inner, fd, l))
FWD(fallocate, (const struct kvio *io, int fd, uint64_t o, uint64_t l), (gate.inner, fd, o, l))
FWD(fsize, (const struct kvio *io, int fd, uint64_t *sz), (gate.inner, fd, sz))
FWD(rename, (const struct kvio *io, const char *a, const char *b), (gate.inner, a, b))
FWD(unlink, (const struct kvio *io, const char *p), (gate.inner, p))
FWD(mkdir, (const struct kvio *io, const char *p, mode_t m), (gate.inner, p, m))
FWD(fsync_dir, (const struct kvio *io, const char *p), (gate.inner, p))
FWD(list_dir, (const struct kvio *io, const char *p, char ***n, size_t *c), (gate.inner, p, n, c))
FWD(lock, (const struct kvio *io, int fd, int sh), (gate.inner, fd, sh))

static int g_fdatasync(const struct kvio *io, int fd)
{
	(void)io;
	pthread_mutex_lock(&gate.mu);
	gate.waiting++;
	pthread_cond_broadcast(&gate.cv);
	while (gate.closed)
		pthread_cond_wait(&gate.cv, &gate.mu);
	gate.waiting--;
	pthread_mutex_unlock(&gate.mu);
	return gate.inner->fdatasync(gate.inner, fd);
}

static const struct kvio *gated(struct faultio *f)
{
	gate = (struct gated_io){
		.io = { g_open, g_close, g_pread, g_pwrite, g_fdatasync, g_ftruncate, g_fallocate, g_fsize,
			g_rename, g_unlink, g_mkdir, g_fsync_dir, g_list_dir, g_lock, NULL },
		.inner = faultio_kvio(f),
	};
	pthread_mutex_init(&gate.mu, NULL);
	pthread_cond_init(&gate.cv, NULL);
	return &gate.io;
}

struct flusher {
	struct kv *s;
	int id;
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	int *appended;
	int rc;
};

static void *put_and_flush(void *p)
{
	struct flusher *a = p;
	char k[16];
	snprintf(k, sizeof k, "t%d", a->id);
	a->rc = kv_put(a->s, k, strlen(k), "v", 1);
	pthread_mutex_lock(a->mu);
	(*a->appended)++;
	pthread_cond_broadcast(a->cv);
	pthread_mutex_unlock(a->mu);
	if (!a->rc)
		a->rc = kv_flush(a->s);
	return NULL;
}

START_TEST(group_commit_shares_one_fdatasync_among_waiters)
{
	/* Thread 0 writes and flushes; its fdatasync is held at the gate. Meanwhile threads 1..7
	 * write and flush: they must wait for the round in progress and then share ONE more
	 * fdatasync, not queue seven. */
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.io = gated(f);
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	struct kv_stats before, after;
	kv_stats(s, &before);

	pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
	int appended = 0;
	pthread_t t[8];
	struct flusher a[8];
	gate.closed = 1;
	for (int i = 0; i < 8; i++)
		a[i] = (struct flusher){ s, i, &mu, &cv, &appended, 0 };
	pthread_create(&t[0], NULL, put_and_flush, &a[0]);
	pthread_mutex_lock(&gate.mu);
	while (gate.waiting == 0) /* thread 0 is inside its fdatasync */
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	for (int i = 1; i < 8; i++)
		pthread_create(&t[i], NULL, put_and_flush, &a[i]);
	pthread_mutex_lock(&mu);
	while (appended < 8)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
	pthread_mutex_lock(&gate.mu);
	gate.closed = 0;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		ck_assert_int_eq(a[i].rc, 0);
	}
	kv_stats(s, &after);
	ck_assert_uint_eq(after.flush_requests - before.flush_requests, 8);
	ck_assert_uint_eq(after.fdatasyncs - before.fdatasyncs, 2);
	ck_assert_uint_eq(after.durable_lsn, 8);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(flush_makes_every_earlier_write_durable)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	put_str(s, "b", "2");
	ck_assert_int_eq(kv_flush(s), 0);
	put_str(s, "c", "3"); /* not flushed */
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s); /* the process is gone; its close fails on dead descriptors */
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	expect_str(s, "b", "2");
	expect_str(s, "c", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(sync_always_makes_each_write_durable_before_it_returns)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.sync = KV_SYNC_ALWAYS;
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	put_str(s, "a", "1");
	put_str(s, "b", "2");
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	expect_str(s, "b", "2");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(batch_mode_flushes_in_the_background)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.sync = KV_SYNC_BATCH;
	o.commit_ms = 5;
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	put_str(s, "a", "1");
	struct kv_stats st;
	/* nobody flushes; the background flusher must (the bound only guards a hang) */
	for (int i = 0; i < 60000; i++) {
		kv_stats(s, &st);
		if (st.durable_lsn == 1)
			break;
		usleep(1000);
	}
	ck_assert_uint_eq(st.durable_lsn, 1);
	ck_assert_uint_eq(st.flush_requests, 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(background_flush_covers_a_write_made_during_its_round)
{
	/* The flusher's round for "a" is held at the gate while "b" is written. Once the round
	 * ends, "b" still needs a round of its own: nobody flushes, so the flusher must see it. */
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.io = gated(f);
	o.sync = KV_SYNC_BATCH;
	o.commit_ms = 5;
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	gate.closed = 1;
	put_str(s, "a", "1");
	pthread_mutex_lock(&gate.mu);
	while (gate.waiting == 0) /* the flusher is inside its fdatasync for "a" */
		pthread_cond_wait(&gate.cv, &gate.mu);
	pthread_mutex_unlock(&gate.mu);
	put_str(s, "b", "2");
	pthread_mutex_lock(&gate.mu);
	gate.closed = 0;
	pthread_cond_broadcast(&gate.cv);
	pthread_mutex_unlock(&gate.mu);
	struct kv_stats st;
	for (int i = 0; i < 60000; i++) { /* the bound only guards a hang */
		kv_stats(s, &st);
		if (st.durable_lsn == 2)
			break;
		usleep(1000);
	}
	ck_assert_uint_eq(st.durable_lsn, 2);
	ck_assert_uint_eq(st.flush_requests, 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(failed_fdatasync_is_sticky_and_store_goes_read_only)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_a_flushed_then_b_failed(f);
	/* the disk works again, but the lost data cannot be vouched for */
	ck_assert_int_eq(kv_flush(s), -EIO);
	ck_assert_int_eq(kv_put(s, "c", 1, "3", 1), -EROFS);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_int_eq(st.read_only, 1);
	ck_assert_int_eq(st.error, -EIO);
	ck_assert_uint_eq(st.durable_lsn, 1);
	expect_str(s, "a", "1"); /* reads still work */
	ck_assert_int_eq(kv_close(s), -EIO);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	expect_str(s, "b", NULL); /* never acknowledged durable, and Linux dropped it */
	put_str(s, "c", "3");     /* reopened: writable again */
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(failed_log_write_is_sticky)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	/* a record is written when the call makes it: the failure is that call's */
	ck_assert_int_eq(faultio_fail(f, FIO_OP_PWRITE, faultio_count(f, FIO_OP_PWRITE) + 1, -EIO, false), 0);
	ck_assert_int_eq(kv_put(s, "b", 1, "2", 1), -EIO);
	expect_str(s, "b", NULL);
	ck_assert_int_eq(kv_put(s, "c", 1, "3", 1), -EROFS);
	ck_assert_int_eq(kv_flush(s), -EIO);
	ck_assert_int_eq(kv_flush(s), -EIO);
	kv_close(s);
	faultio_destroy(f);
}
END_TEST

START_TEST(enospc_fails_the_write_that_cannot_be_logged_and_loses_nothing)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL); /* 16 KiB segments, preallocated */
	char k[16], v[200];
	memset(v, 'v', sizeof v - 1);
	v[sizeof v - 1] = 0;
	/* room for what is there now and not one more segment */
	faultio_set_capacity(f, 20 * 1024);
	int i, rc = 0;
	for (i = 0; i < 1000; i++) {
		snprintf(k, sizeof k, "k%04d", i);
		rc = kv_put(s, k, strlen(k), v, strlen(v));
		if (rc)
			break;
	}
	ck_assert_int_eq(rc, -ENOSPC);
	ck_assert_int_gt(i, 10);
	int acked = i;
	/* not sticky: everything acknowledged flushes fine, and the store stays writable */
	ck_assert_int_eq(kv_flush(s), 0);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_int_eq(st.read_only, 0);
	/* space freed: writes go on */
	faultio_set_capacity(f, 0);
	put_str(s, "after", "space");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s);
	s = sim_open(f, NULL);
	ck_assert_uint_eq(store_keys(s), (uint64_t)acked + 1);
	snprintf(k, sizeof k, "k%04d", acked - 1);
	expect_str(s, k, v);
	expect_str(s, "after", "space");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(log_rotates_into_new_segments_and_replays_across_them)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16];
	char *big = malloc(40000); /* bigger than a segment: gets a segment of its own size */
	memset(big, 'b', 40000);
	for (int i = 0; i < 200; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "0123456789012345678901234567890123456789");
	}
	ck_assert_int_eq(kv_put(s, "big", 3, big, 40000), 0);
	put_str(s, "last", "1");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	kv_close(s);
	struct kv_report rep;
	s = sim_open(f, &rep);
	ck_assert_uint_gt(rep.segments, 2);
	ck_assert_uint_eq(rep.records_replayed, 202);
	void *got;
	uint64_t len;
	ck_assert_int_eq(kv_get(s, "big", 3, &got, &len), 0);
	ck_assert_uint_eq(len, 40000);
	ck_assert(!memcmp(got, big, 40000));
	free(got);
	free(big);
	expect_str(s, "last", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The LSN and type of the record at off of the segment bytes d (0 when no record starts there),
 * and where it ends. */
static uint64_t record_at(const uint8_t *d, size_t len, uint64_t off, uint8_t *type, uint64_t *end)
{
	if (off + REC_HDR_SIZE > len || (le_get32(d + off) == 0 && le_get32(d + off + REC_OFF_LEN) == 0))
		return 0;
	*type = d[off + REC_OFF_TYPE];
	*end = off + REC_HDR_SIZE + le_get32(d + off + REC_OFF_LEN);
	return le_get64(d + off + REC_OFF_LSN);
}

static int zeros_between(const uint8_t *d, uint64_t from, uint64_t to)
{
	for (uint64_t i = from; i < to; i++)
		if (d[i])
			return 0;
	return 1;
}

/* Records lie back to back, flush rounds or not; the close mark starts on a new 4 KiB block,
 * zeros before it, and its payload says where the records before it end (docs/FORMAT.md 3.3):
 * so no block holds a record and the mark that vouches for it. A reopened store goes on right
 * after the mark. */
START_TEST(only_the_close_mark_starts_a_new_block)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	put_str(s, "b", "2");
	ck_assert_int_eq(kv_flush(s), 0);
	put_str(s, "c", "3");
	ck_assert_int_eq(kv_flush(s), 0);
	put_str(s, "d", "4");
	ck_assert_int_eq(kv_close(s), 0); /* a flush, then the close mark */
	uint8_t *d, type;
	size_t len;
	uint64_t a_end, b_end, c_end, d_end, m_end, e_end, m2_end;
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000001.log", (void **)&d, &len), 0);
	ck_assert_uint_eq(le_get32(d + SEG_OFF_VERSION), 3);
	ck_assert_uint_eq(record_at(d, len, SEG_HDR_SIZE, &type, &a_end), 1);
	ck_assert_uint_eq(record_at(d, len, a_end, &type, &b_end), 2);
	ck_assert_uint_eq(record_at(d, len, b_end, &type, &c_end), 3); /* a new round: no padding */
	ck_assert_uint_eq(record_at(d, len, c_end, &type, &d_end), 4);
	ck_assert_uint_lt(d_end, LOG_BLOCK);
	ck_assert(zeros_between(d, d_end, LOG_BLOCK));
	ck_assert_uint_eq(record_at(d, len, LOG_BLOCK, &type, &m_end), 5);
	ck_assert_uint_eq(type, REC_TYPE_MARK);
	ck_assert_uint_eq(m_end, LOG_BLOCK + REC_HDR_SIZE + MARK_PAYLOAD);
	ck_assert_uint_eq(le_get64(d + LOG_BLOCK + REC_HDR_SIZE), d_end); /* records_end */
	ck_assert_uint_eq(len, m_end); /* the clean close cut the file after the mark */
	free(d);
	/* it all reads back, the padding skipped; the next record follows the mark directly */
	struct kv_report rep;
	s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.records_replayed, 4);
	ck_assert_uint_eq(rep.tail_bytes_cut, 0);
	ck_assert_int_eq(rep.damaged, 0);
	expect_str(s, "a", "1");
	expect_str(s, "d", "4");
	put_str(s, "e", "5");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/wal-0000000000000001.log", (void **)&d, &len), 0);
	ck_assert_uint_eq(record_at(d, len, m_end, &type, &e_end), 6);
	ck_assert_uint_eq(type, REC_TYPE_OPS);
	ck_assert(zeros_between(d, e_end, 2 * LOG_BLOCK));
	ck_assert_uint_eq(record_at(d, len, 2 * LOG_BLOCK, &type, &m2_end), 7);
	ck_assert_uint_eq(type, REC_TYPE_MARK);
	ck_assert_uint_eq(le_get64(d + 2 * LOG_BLOCK + REC_HDR_SIZE), e_end);
	ck_assert_uint_eq(len, m2_end);
	free(d);
	s = sim_open(f, &rep);
	ck_assert_int_eq(rep.damaged, 0);
	expect_str(s, "e", "5");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("wal");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, group_commit_shares_one_fdatasync_among_waiters);
	tcase_add_test(tc, flush_makes_every_earlier_write_durable);
	tcase_add_test(tc, sync_always_makes_each_write_durable_before_it_returns);
	tcase_add_test(tc, batch_mode_flushes_in_the_background);
	tcase_add_test(tc, background_flush_covers_a_write_made_during_its_round);
	tcase_add_test(tc, failed_fdatasync_is_sticky_and_store_goes_read_only);
	tcase_add_test(tc, failed_log_write_is_sticky);
	tcase_add_test(tc, enospc_fails_the_write_that_cannot_be_logged_and_loses_nothing);
	tcase_add_test(tc, log_rotates_into_new_segments_and_replays_across_them);
	tcase_add_test(tc, only_the_close_mark_starts_a_new_block);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
