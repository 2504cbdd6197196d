/* The store's operations: what each write does, reads, scans, snapshots and reopen. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "simstore.h"
#include "testutil.h"

START_TEST(put_then_get_returns_value)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "x", "100");
	expect_str(s, "x", "100");
	expect_str(s, "y", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(keys_and_values_are_binary_safe)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	const char k1[] = { 'a', 0, 'b' }, k2[] = { 'a', 0, 'c' };
	const char v[] = { 0, 1, 0, (char)0xff };
	ck_assert_int_eq(kv_put(s, k1, 3, v, 4), 0);
	ck_assert_int_eq(kv_put(s, k2, 3, "z", 1), 0);
	void *got;
	uint64_t len;
	ck_assert_int_eq(kv_get(s, k1, 3, &got, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert(!memcmp(got, v, 4));
	free(got);
	ck_assert_int_eq(kv_get(s, "a", 1, &got, &len), -ENOENT);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(delete_of_absent_key_is_enoent_and_logs_nothing)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_stats a, b;
	kv_stats(s, &a);
	ck_assert_int_eq(kv_del(s, "nope", 4), -ENOENT);
	kv_stats(s, &b);
	ck_assert_uint_eq(a.last_lsn, b.last_lsn);
	put_str(s, "k", "v");
	ck_assert_int_eq(kv_del(s, "k", 1), 0);
	expect_str(s, "k", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(key_over_limit_is_refused_with_enametoolong)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char *k = malloc(KV_MAX_KEY + 1);
	memset(k, 'k', KV_MAX_KEY + 1);
	ck_assert_int_eq(kv_put(s, k, KV_MAX_KEY + 1, "v", 1), -ENAMETOOLONG);
	ck_assert_int_eq(kv_put(s, k, KV_MAX_KEY, "v", 1), 0);
	ck_assert_uint_eq(store_keys(s), 1);
	free(k);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(value_over_limit_is_refused_with_efbig)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "k", "v");
	ck_assert_int_eq(kv_write(s, "k", 1, KV_MAX_VALUE, "x", 1), -EFBIG);
	ck_assert_int_eq(kv_truncate(s, "k", 1, KV_MAX_VALUE + 1), -EFBIG);
	expect_str(s, "k", "v");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(range_write_and_truncate_edit_in_place)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "f", "hello world");
	ck_assert_int_eq(kv_write(s, "f", 1, 6, "WORLD", 5), 0);
	expect_str(s, "f", "hello WORLD");
	ck_assert_int_eq(kv_truncate(s, "f", 1, 5), 0);
	expect_str(s, "f", "hello");
	ck_assert_int_eq(kv_write(s, "f", 1, 8, "!", 1), 0); /* a hole reads as zeros */
	char buf[16];
	size_t got;
	ck_assert_int_eq(kv_read(s, "f", 1, 0, buf, sizeof buf, &got), 0);
	ck_assert_uint_eq(got, 9);
	ck_assert(!memcmp(buf, "hello\0\0\0!", 9));
	ck_assert_int_eq(kv_write(s, "missing", 7, 0, "x", 1), -ENOENT);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(batch_applies_all_operations_under_one_lsn)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_batch *b;
	uint64_t lsn;
	put_str(s, "dir/a", "1");
	put_str(s, "dir/b", "2");
	put_str(s, "dir", "");
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_rename_prefix(b, "dir/", 4, "new/", 4), 0);
	ck_assert_int_eq(kv_batch_rename(b, "dir", 3, "new", 3), 0);
	ck_assert_int_eq(kv_apply(s, b, &lsn), 0);
	kv_batch_free(b);
	ck_assert_uint_eq(lsn, 4);
	expect_str(s, "new/a", "1");
	expect_str(s, "new/b", "2");
	expect_str(s, "dir/a", NULL);
	expect_str(s, "dir", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	/* and the same after replay */
	s = sim_open(f, NULL);
	expect_str(s, "new/a", "1");
	expect_str(s, "dir/b", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_prefix_rename_that_would_lengthen_a_key_made_earlier_in_its_batch_is_refused)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_batch *b;
	struct kv_stats st;
	char *longkey = malloc(KV_MAX_KEY), prefix[128];
	/* "a/" + 4000 bytes: within the limit; moved under a 101-byte prefix it would not be */
	memcpy(longkey, "a/", 2);
	memset(longkey + 2, 'x', 4000);
	memset(prefix, 'b', 100);
	prefix[100] = '/';
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, longkey, 4002, NULL, 0, "v", 1), 0);
	ck_assert_int_eq(kv_batch_rename_prefix(b, "a/", 2, prefix, 101), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), -ENAMETOOLONG);
	kv_batch_free(b);
	/* nothing of it was logged or applied */
	kv_stats(s, &st);
	ck_assert_uint_eq(st.last_lsn, 0);
	ck_assert_uint_eq(st.keys, 0);
	/* the same through a rename of the key first, and through an earlier prefix rename */
	ck_assert_int_eq(kv_batch_new(&b), 0);
	longkey[0] = 'c';
	ck_assert_int_eq(kv_batch_put(b, longkey, 4002, NULL, 0, "v", 1), 0);
	longkey[0] = 'a';
	ck_assert_int_eq(kv_batch_rename(b, "c/" , 2, "zz", 2), 0);        /* absent: a no-op */
	ck_assert_int_eq(kv_batch_rename_prefix(b, "c/", 2, "a/", 2), 0);  /* moves it under a/ */
	ck_assert_int_eq(kv_batch_rename_prefix(b, "a/", 2, prefix, 101), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), -ENAMETOOLONG);
	kv_batch_free(b);
	kv_stats(s, &st);
	ck_assert_uint_eq(st.last_lsn, 0);
	/* a short key made earlier in the batch moves as asked */
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_put(b, "a/k", 3, NULL, 0, "v", 1), 0);
	ck_assert_int_eq(kv_batch_rename_prefix(b, "a/", 2, prefix, 101), 0);
	ck_assert_int_eq(kv_apply(s, b, NULL), 0);
	kv_batch_free(b);
	char moved[128];
	memcpy(moved, prefix, 101);
	memcpy(moved + 101, "k", 2);
	expect_str(s, moved, "v");
	expect_str(s, "a/k", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	free(longkey);
	faultio_destroy(f);
}
END_TEST

START_TEST(meta_is_kept_and_replayed)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "k", "v");
	ck_assert_int_eq(kv_setmeta(s, "k", 1, "mode=644", 8), 0);
	ck_assert_int_eq(kv_setmeta(s, "none", 4, "m", 1), -ENOENT);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open(f, NULL);
	char meta[32];
	size_t mlen = sizeof meta;
	uint64_t size;
	ck_assert_int_eq(kv_stat(s, "k", 1, &size, meta, &mlen), 0);
	ck_assert_uint_eq(size, 1);
	ck_assert_uint_eq(mlen, 8);
	ck_assert(!memcmp(meta, "mode=644", 8));
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

struct collect {
	char keys[16][8];
	int n;
};

static int collect_fn(void *arg, const void *key, size_t klen, uint64_t size, const void *meta, size_t mlen)
{
	struct collect *c = arg;
	(void)size, (void)meta, (void)mlen;
	if (klen < 2 || memcmp(key, "b/", 2))
		return 1; /* past the prefix: stop */
	snprintf(c->keys[c->n++], 8, "%.*s", (int)klen, (const char *)key);
	return 0;
}

START_TEST(scan_walks_a_prefix_in_key_order)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	const char *keys[] = { "b/3", "a", "b/1", "c", "b/2" };
	for (int i = 0; i < 5; i++)
		put_str(s, keys[i], "v");
	struct collect c = { .n = 0 };
	ck_assert_int_eq(kv_scan(s, "b/", 2, collect_fn, &c), 1);
	ck_assert_int_eq(c.n, 3);
	ck_assert_str_eq(c.keys[0], "b/1");
	ck_assert_str_eq(c.keys[1], "b/2");
	ck_assert_str_eq(c.keys[2], "b/3");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(reopen_after_clean_close_keeps_everything)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16], v[16];
	for (int i = 0; i < 500; i++) { /* several segments of 16 KiB */
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "v%d", i * 7);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_del(s, "k007", 4), 0);
	ck_assert_int_eq(kv_close(s), 0);
	struct kv_report rep;
	s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.records_replayed, 501);
	ck_assert_uint_eq(rep.tail_bytes_cut, 0);
	ck_assert_uint_eq(store_keys(s), 499);
	expect_str(s, "k123", "v861");
	expect_str(s, "k007", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(snapshot_then_reopen_replays_only_the_log_after_it)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16];
	for (int i = 0; i < 300; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "before");
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	put_str(s, "k000", "after");
	put_str(s, "new", "x");
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_eq(st.snapshot_lsn, 300);
	ck_assert_int_eq(kv_close(s), 0);
	struct kv_report rep;
	s = sim_open(f, &rep);
	ck_assert_uint_eq(rep.snapshot_lsn, 300);
	ck_assert_uint_eq(rep.snapshot_keys, 300);
	ck_assert_uint_eq(rep.records_replayed, 2);
	expect_str(s, "k000", "after");
	expect_str(s, "k299", "before");
	expect_str(s, "new", "x");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

static size_t count_files(struct faultio *f, const char *prefix)
{
	char **names;
	size_t n, count = 0;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		count += !strncmp(names[i], prefix, strlen(prefix));
	faultio_free_names(names, n);
	return count;
}

/* The log holds the values: a checkpoint deletes only the segments nothing references any more
 * (every byte in them overwritten or deleted), and keeps those holding live values. */
START_TEST(a_checkpoint_deletes_the_segments_whose_values_are_all_gone)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	char k[16];
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof k, "k%04d", i);
		put_str(s, k, "0123456789");
	}
	size_t segs_full = count_files(f, "wal-");
	ck_assert_uint_gt(segs_full, 2);
	char current[64] = "", **all;
	size_t nall;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &all, &nall), 0);
	for (size_t i = 0; i < nall; i++) /* sorted: the last segment is the one written to */
		if (!strncmp(all[i], "wal-", 4))
			snprintf(current, sizeof current, "%s", all[i]);
	faultio_free_names(all, nall);
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_uint_eq(count_files(f, "wal-"), segs_full); /* all of it is live */
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_eq(st.wal_bytes, 0);
	for (int i = 0; i < 1000; i++) {
		snprintf(k, sizeof k, "k%04d", i);
		if (i % 2)
			ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
		else
			put_str(s, k, "x");
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	/* the segments before the rewrites held only old values: all gone, but the one that was
	 * being written (it holds new records too) */
	char **names;
	size_t n;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(names[i], "wal-", 4))
			ck_assert_str_ge(names[i], current);
	faultio_free_names(names, n);
	ck_assert_uint_eq(count_files(f, "ckpt-"), 1);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open(f, NULL);
	ck_assert_uint_eq(store_keys(s), 500);
	expect_str(s, "k0998", "x");
	expect_str(s, "k0999", NULL);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(automatic_snapshot_when_log_passes_threshold)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.checkpoint_bytes = 8192;
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	char k[16];
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "0123456789");
	}
	/* the snapshot runs in the background; wait for it (the bound only guards a hang) */
	struct kv_stats st;
	for (int i = 0; i < 60000; i++) {
		kv_stats(s, &st);
		if (st.snapshots)
			break;
		usleep(1000);
	}
	ck_assert_uint_ge(st.snapshots, 1);
	ck_assert_int_eq(kv_close(s), 0);
	struct kv_report rep;
	s = sim_open(f, &rep);
	ck_assert_uint_gt(rep.snapshot_lsn, 0);
	ck_assert_uint_eq(store_keys(s), 400);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* A checkpoint writes the index, not the data: its size follows the keys and extents. */
START_TEST(a_checkpoint_costs_the_keys_not_the_bytes)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	struct kv *s;
	char *big = calloc(1, 1u << 20);

	o.segment_bytes = 4u << 20;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	for (int i = 0; i < 3; i++) {
		char k[8];
		snprintf(k, sizeof k, "big%d", i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), big, 1u << 20), 0);
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/ckpt-0000000000000003.kvc", &data, &len), 0);
	ck_assert_uint_lt(len, 512); /* three keys and three extents */
	free(data);
	ck_assert_int_eq(kv_close(s), 0);
	free(big);
	faultio_destroy(f);
}
END_TEST

/* Checkpoints of a big index come no oftener than every twice their size of log: writing them
 * never costs more than half the log's bytes, whatever checkpoint_bytes says. */
START_TEST(automatic_checkpoints_of_a_big_index_wait_for_twice_their_size_of_log)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	o.checkpoint_bytes = 4096;
	o.cleaner = 0;
	struct kv *s;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	struct kv_batch *b;
	ck_assert_int_eq(kv_batch_new(&b), 0);
	char k[32];
	for (int i = 0; i < 2000; i++) {
		snprintf(k, sizeof k, "some/longer/key/%06d", i);
		ck_assert_int_eq(kv_batch_put(b, k, strlen(k), NULL, 0, "v", 1), 0);
	}
	ck_assert_int_eq(kv_apply(s, b, NULL), 0); /* one record: no automatic checkpoint races */
	kv_batch_free(b);
	ck_assert_int_eq(kv_snapshot(s), 0);
	struct kv_stats st;
	kv_stats(s, &st);
	char name[64];
	snprintf(name, sizeof name, SIM_DIR "/ckpt-%016" PRIx64 ".kvc", st.snapshot_lsn);
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_file(f, name, &data, &len), 0);
	free(data);
	ck_assert_uint_gt(len, 4096);
	ck_assert_uint_eq(st.snapshot_due, st.wal_bytes + 2 * len);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Writers keep going while a snapshot is written from a view. */
struct writer_arg {
	struct kv *s;
	int id, n;
};

static void *writer_main(void *p)
{
	struct writer_arg *a = p;
	char k[32], v[32];
	for (int i = 0; i < a->n; i++) {
		snprintf(k, sizeof k, "w%d/%05d", a->id, i);
		snprintf(v, sizeof v, "%d", i);
		if (kv_put(a->s, k, strlen(k), v, strlen(v)))
			return (void *)1;
	}
	return NULL;
}

START_TEST(snapshots_and_writers_run_concurrently_and_reopen_agrees)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	pthread_t t[4];
	struct writer_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct writer_arg){ s, i, 2000 };
		pthread_create(&t[i], NULL, writer_main, &a[i]);
	}
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(kv_snapshot(s), 0);
	for (int i = 0; i < 4; i++) {
		void *r;
		pthread_join(t[i], &r);
		ck_assert_ptr_null(r);
	}
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open(f, NULL);
	ck_assert_uint_eq(store_keys(s), 8000);
	expect_str(s, "w3/01999", "1999");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(stats_report_keys_bytes_and_memory)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "ab", "1234");
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_uint_eq(st.keys, 1);
	ck_assert_uint_eq(st.bytes, 6);
	ck_assert_uint_gt(st.mem_bytes, 6);
	ck_assert_uint_eq(st.last_lsn, 1);
	ck_assert_uint_eq(st.durable_lsn, 0);
	ck_assert_int_eq(kv_flush(s), 0);
	kv_stats(s, &st);
	ck_assert_uint_eq(st.durable_lsn, 1);
	ck_assert_int_eq(st.read_only, 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(four_kib_write_into_1_gib_value_costs_o_4_kib)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "big", "");
	ck_assert_int_eq(kv_truncate(s, "big", 3, KV_MAX_VALUE), 0); /* a 1 GiB hole */
	char page[4096];
	memset(page, 'p', sizeof page);
	struct kv_stats a, b;
	kv_stats(s, &a);
	ck_assert_int_eq(kv_write(s, "big", 3, 512u << 20, page, sizeof page), 0);
	kv_stats(s, &b);
	/* log: the 4 KiB and a record header; memory: at most one value page more */
	ck_assert_uint_le(b.wal_bytes - a.wal_bytes, sizeof page + 64);
	ck_assert_uint_le(b.mem_bytes - a.mem_bytes, 2 * 65536 + sizeof page);
	char back[4096];
	size_t got;
	ck_assert_int_eq(kv_read(s, "big", 3, (512u << 20) - 2048, back, sizeof back, &got), 0);
	ck_assert_uint_eq(got, sizeof back);
	for (int i = 0; i < 2048; i++)
		ck_assert_int_eq(back[i], 0);
	ck_assert(!memcmp(back + 2048, page, 2048));
	uint64_t size;
	ck_assert_int_eq(kv_stat(s, "big", 3, &size, NULL, NULL), 0);
	ck_assert_uint_eq(size, KV_MAX_VALUE);
	kv_close(s);
	faultio_destroy(f);
}
END_TEST

/* A whole 1 GiB value (the most one PUT carries) through the log, replay, a checkpoint and a
 * reload, on the real disk.
 * Heavy (several GiB of memory): skipped under the sanitizers (KV_SKIP_HUGE). */
START_TEST(value_of_1_gib_round_trips_through_log_and_snapshot)
{
	if (getenv("KV_SKIP_HUGE"))
		return;
	char dir[256];
	ck_assert_int_eq(tu_tmpdir(dir, sizeof dir), 0);
	strcat(dir, "/store");
	struct kv_options o;
	kv_options_default(&o);
	o.sync = KV_SYNC_NONE;
	o.log = sim_quiet_log;
	o.checkpoint_bytes = 1ull << 40; /* this test decides when to snapshot */
	struct kv *s;
	uint8_t *v = malloc(KV_MAX_WRITE);
	for (uint64_t i = 0; i < KV_MAX_WRITE; i += 8) {
		uint64_t x = i * 0x9E3779B97F4A7C15ull;
		memcpy(v + i, &x, 8);
	}
	ck_assert_int_eq(kv_open(&s, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(s, "g", 1, v, KV_MAX_WRITE), 0);
	ck_assert_int_eq(kv_put(s, "h", 1, v, KV_MAX_WRITE + 1), -EFBIG);
	ck_assert_int_eq(kv_close(s), 0);
	uint64_t replayed_to = 0;
	for (int round = 0; round < 2; round++) {
		/* round 0 replays the log (the put; a close mark if its segment had room); round 1
		 * loads the snapshot taken at the end of round 0 */
		struct kv_report rep;
		ck_assert_int_eq(kv_open(&s, dir, &o, &rep), 0);
		if (!round)
			replayed_to = rep.last_lsn;
		ck_assert_uint_ge(replayed_to, 1);
		ck_assert_uint_eq(rep.snapshot_lsn, round ? replayed_to : 0u);
		uint8_t *chunk = malloc(1 << 20);
		for (uint64_t off = 0; off < KV_MAX_WRITE; off += 1 << 20) {
			size_t got;
			ck_assert_int_eq(kv_read(s, "g", 1, off, chunk, 1 << 20, &got), 0);
			ck_assert_uint_eq(got, 1 << 20);
			ck_assert(!memcmp(chunk, v + off, 1 << 20));
		}
		free(chunk);
		if (round == 0)
			ck_assert_int_eq(kv_snapshot(s), 0);
		ck_assert_int_eq(kv_close(s), 0);
	}
	free(v);
	ck_assert_int_eq(tu_rmrf(dir), 0);
}
END_TEST

START_TEST(options_parse_and_reject)
{
	struct kv_options o;
	char err[256];
	kv_options_default(&o);
	ck_assert_int_eq(kv_options_parse(&o, "sync=always,commit_ms=5,recovery=point_in_time,segment_bytes=1M", err, sizeof err), 0);
	ck_assert_int_eq(o.sync, KV_SYNC_ALWAYS);
	ck_assert_uint_eq(o.commit_ms, 5);
	ck_assert_int_eq(o.recovery, KV_RECOVERY_POINT_IN_TIME);
	ck_assert_uint_eq(o.segment_bytes, 1 << 20);
	ck_assert_int_eq(kv_options_parse(&o, "sync=sometimes", err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "sometimes"));
	ck_assert_int_eq(kv_options_parse(&o, "bogus=1", err, sizeof err), -EINVAL);
	ck_assert_int_eq(kv_options_parse(&o, "commit_ms=0", err, sizeof err), -EINVAL);
	ck_assert_int_eq(kv_options_parse(&o, "ro", err, sizeof err), 0);
	ck_assert_int_eq(o.read_only, 1);
	ck_assert_int_eq(kv_options_parse(&o, "ro=1", err, sizeof err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "takes no value"));
}
END_TEST

/* ---- read-only opens ---- */

/* Every call that would change the disk fails, as on a read-only filesystem. */
static void make_disk_read_only(struct faultio *f)
{
	static const enum fio_op writes[] = { FIO_OP_PWRITE, FIO_OP_FDATASYNC, FIO_OP_FTRUNCATE,
					      FIO_OP_FALLOCATE, FIO_OP_RENAME, FIO_OP_UNLINK,
					      FIO_OP_MKDIR, FIO_OP_FSYNC_DIR };
	for (size_t i = 0; i < sizeof(writes) / sizeof(writes[0]); i++)
		ck_assert_int_eq(faultio_fail(f, writes[i], 1, -EROFS, true), 0);
}

static struct kv *open_ro(struct faultio *f, struct kv_report *rep, int *rc)
{
	struct kv_options o = sim_options(f);
	struct kv *s = NULL;
	o.read_only = 1;
	*rc = kv_open(&s, SIM_DIR, &o, rep);
	return s;
}

START_TEST(a_read_only_open_reads_everything_and_changes_nothing_even_after_a_kill)
{
	struct faultio *f = sim_disk(), *before;
	struct kv *s = sim_open(f, NULL);
	struct kv_report rep;
	struct kv_stats st;
	char k[16], v[16], why[256];
	int rc;

	for (int i = 0; i < 300; i++) { /* several segments, a checkpoint among them */
		snprintf(k, sizeof k, "k%03d", i);
		snprintf(v, sizeof v, "v%d", i);
		put_str(s, k, v);
		if (i == 100)
			ck_assert_int_eq(kv_snapshot(s), 0);
	}
	ck_assert_int_eq(kv_del(s, "k007", 4), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0); /* a tail to cut, nothing synced */
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	make_disk_read_only(f);

	s = open_ro(f, &rep, &rc);
	ck_assert_msg(rc == 0, "read-only open: %s (%s)", strerror(-rc), tu_report(&rep));
	ck_assert_uint_eq(store_keys(s), 299);
	expect_str(s, "k299", "v299");
	expect_str(s, "k007", NULL);
	ck_assert_int_eq(kv_put(s, "x", 1, "y", 1), -EROFS);
	ck_assert_int_eq(kv_del(s, "k001", 4), -EROFS);
	ck_assert_int_eq(kv_write(s, "k001", 4, 0, "z", 1), -EROFS);
	ck_assert_int_eq(kv_truncate(s, "k001", 4, 0), -EROFS);
	ck_assert_int_eq(kv_setmeta(s, "k001", 4, "m", 1), -EROFS);
	ck_assert_int_eq(kv_snapshot(s), -EROFS);
	ck_assert_int_eq(kv_clean(s, 1, NULL), -EROFS);
	ck_assert_int_eq(kv_flush(s), 0); /* nothing written here, nothing to make durable */
	kv_stats(s, &st);
	ck_assert_int_eq(st.read_only, 1);
	ck_assert_int_eq(st.error, 0);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0, "%s", why);
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_DURABLE, why, sizeof why) == 0, "%s", why);

	/* and a writable open afterwards recovers the same store */
	faultio_clear_faults(f);
	s = sim_open(f, NULL);
	ck_assert_uint_eq(store_keys(s), 299);
	expect_str(s, "k123", "v123");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

START_TEST(readers_share_a_store_and_exclude_a_writer)
{
	struct faultio *f = sim_disk();
	struct kv *w = sim_open(f, NULL), *r1, *r2;
	struct kv_options o = sim_options(f);
	struct kv_report rep;
	int rc;

	put_str(w, "a", "1");
	ck_assert_ptr_null(open_ro(f, &rep, &rc));
	ck_assert_int_eq(rc, -EWOULDBLOCK);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_LOCKED);
	ck_assert_int_eq(kv_close(w), 0);

	r1 = open_ro(f, &rep, &rc);
	ck_assert_int_eq(rc, 0);
	r2 = open_ro(f, &rep, &rc);
	ck_assert_int_eq(rc, 0);
	expect_str(r2, "a", "1");
	w = NULL;
	ck_assert_int_eq(kv_open(&w, SIM_DIR, &o, &rep), -EWOULDBLOCK);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_LOCKED);
	ck_assert_int_eq(kv_close(r1), 0);
	ck_assert_int_eq(kv_open(&w, SIM_DIR, &o, &rep), -EWOULDBLOCK);
	ck_assert_int_eq(kv_close(r2), 0);
	w = sim_open(f, NULL);
	ck_assert_int_eq(kv_close(w), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_read_only_open_of_a_missing_directory_creates_nothing)
{
	struct faultio *f = sim_disk();
	struct kv_report rep;
	int rc;

	ck_assert_ptr_null(open_ro(f, &rep, &rc));
	ck_assert_int_eq(rc, -ENOENT);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_DIR);
	ck_assert(!faultio_exists(f, SIM_DIR));
	faultio_destroy(f);
}
END_TEST

START_TEST(a_read_only_open_refuses_damage_in_strict_mode_and_shows_the_salvage_otherwise)
{
	struct faultio *f = sim_disk(), *before;
	struct kv *s = sim_open(f, NULL);
	struct kv_options o = sim_options(f);
	struct kv_report rep;
	char why[256];
	int rc;

	for (int i = 0; i < 300; i++) {
		char k[16];
		snprintf(k, sizeof k, "k%03d", i);
		put_str(s, k, "value");
	}
	ck_assert_int_eq(kv_close(s), 0);
	/* a value byte in the oldest segment */
	ck_assert_int_eq(faultio_flip(f, SIM_DIR "/wal-0000000000000001.log", SEG_HDR_SIZE + 40, 0x55), 0);
	ck_assert_int_eq(faultio_clone(f, &before), 0);
	make_disk_read_only(f);

	ck_assert_ptr_null(open_ro(f, &rep, &rc));
	ck_assert_int_eq(rc, -EUCLEAN);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_DAMAGE);
	o.read_only = 1;
	o.recovery = KV_RECOVERY_POINT_IN_TIME;
	s = NULL;
	rc = kv_open(&s, SIM_DIR, &o, &rep);
	ck_assert_msg(rc == 0, "%s (%s)", strerror(-rc), tu_report(&rep));
	ck_assert(rep.damaged);
	ck_assert_uint_lt(store_keys(s), 300);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_msg(faultio_compare(before, f, FIO_VIEW_CURRENT, why, sizeof why) == 0, "%s", why);
	faultio_destroy(before);
	faultio_destroy(f);
}
END_TEST

/* ---- where a store is made ---- */

START_TEST(a_directory_holding_other_files_is_not_made_a_store)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	struct kv_report rep;
	struct kv *s = NULL;
	char **names;
	size_t n;

	ck_assert_int_eq(faultio_mkdirs(f, SIM_DIR), 0);
	ck_assert_int_eq(faultio_write_file(f, SIM_DIR "/photo.jpg", "jpeg", 4), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -ENOTEMPTY);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_NOT_A_STORE);
	ck_assert_str_eq(rep.file, "photo.jpg");
	o.read_only = 1;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -ENOTEMPTY);
	ck_assert_int_eq(kv_check(SIM_DIR, o.io, NULL, &rep), -ENOTEMPTY);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_NOT_A_STORE);
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	ck_assert_uint_eq(n, 1); /* nothing was added */
	faultio_free_names(names, n);

	/* an empty directory becomes a store; a store keeps opening with other files in it */
	ck_assert_int_eq(faultio_remove(f, SIM_DIR "/photo.jpg"), 0);
	s = sim_open(f, NULL);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_write_file(f, SIM_DIR "/notes.txt", "mine", 4), 0);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- a creating open that fails ---- */

/* The names in SIM_DIR now (FIO_VIEW_CURRENT), or after a power cut; 0 when it is missing. */
static size_t names_in_store_dir(struct faultio *f)
{
	char **names;
	size_t n;
	if (!faultio_exists(f, SIM_DIR))
		return 0;
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, "left in " SIM_DIR ": %s\n", names[i]);
	faultio_free_names(names, n);
	return n;
}

/* The calls a creating open makes on the simulated disk, when none fails. */
static uint64_t calls_of_a_creating_open(void)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	uint64_t calls = faultio_calls(f);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
	return calls;
}

/* After a refused open, and after a power cut: a disk with room makes a fresh store there. */
static void a_fresh_store_opens(struct faultio *f)
{
	struct kv_report rep;
	struct kv *s = sim_open(f, &rep);
	ck_assert_uint_eq(store_keys(s), 0);
	ck_assert_uint_eq(rep.records_replayed, 0);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
}

START_TEST(a_creating_open_that_fails_at_any_call_leaves_nothing_behind)
{
	static const int errs[] = { -ENOSPC, -EIO };
	uint64_t calls = calls_of_a_creating_open();
	int refused = 0;

	ck_assert_uint_gt(calls, 5);
	for (size_t e = 0; e < sizeof errs / sizeof errs[0]; e++) {
		for (uint64_t n = 1; n <= calls; n++) {
			struct faultio *f = sim_disk();
			struct kv_options o = sim_options(f);
			struct kv_report rep;
			struct kv *s = NULL;
			int rc;

			ck_assert_int_eq(faultio_fail(f, FIO_OP_ANY, n, errs[e], false), 0);
			rc = kv_open(&s, SIM_DIR, &o, &rep);
			if (rc == 0) { /* a call whose failure the open outlives (a reserve it goes without) */
				ck_assert_int_eq(kv_close(s), 0);
				faultio_destroy(f);
				continue;
			}
			refused++;
			ck_assert_msg(names_in_store_dir(f) == 0, "%s at call %" PRIu64 " left files (%s)",
				      strerror(-errs[e]), n, tu_report(&rep));
			ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KEEP, 1), 0); /* and a power cut now */
			ck_assert_msg(names_in_store_dir(f) == 0, "%s at call %" PRIu64 ": files come back "
				      "after a power cut", strerror(-errs[e]), n);
			a_fresh_store_opens(f);
			faultio_destroy(f);
		}
	}
	ck_assert_int_gt(refused, 2 * 5); /* the loop tried real failures, not only tolerated ones */
}
END_TEST

/* Its removals cut short by a crash (kill or power cut) at any call leave what the next open
 * makes afresh: never a directory that a later open refuses, or takes for a store with history. */
START_TEST(a_creating_open_whose_cleanup_is_cut_short_leaves_a_store_the_next_open_makes_afresh)
{
	static const enum fio_crash modes[] = { FIO_CRASH_KILL, FIO_CRASH_DROP, FIO_CRASH_KEEP,
						FIO_CRASH_TEAR };
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	struct kv *s = NULL;
	uint64_t fail_at, end;

	/* the segment's creation fails for room: the last file this open makes */
	faultio_set_capacity(f, 16);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), -ENOSPC);
	end = faultio_calls(f);
	faultio_destroy(f);
	f = sim_disk();
	faultio_set_capacity(f, 16);
	o = sim_options(f);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), -ENOSPC);
	ck_assert_uint_eq(faultio_calls(f), end); /* deterministic */
	faultio_destroy(f);
	/* the first failed call: the calls after it are the cleanup's */
	for (fail_at = 1; fail_at < end; fail_at++) {
		f = sim_disk();
		faultio_set_capacity(f, 16);
		faultio_crash_at(f, fail_at + 1);
		o = sim_options(f);
		int rc = kv_open(&s, SIM_DIR, &o, NULL);
		faultio_destroy(f);
		if (rc == -ENOSPC)
			break;
	}
	ck_assert_uint_lt(fail_at, end - 1); /* removals follow it */
	for (uint64_t at = fail_at + 1; at <= end; at++) {
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			f = sim_disk();
			faultio_set_capacity(f, 16);
			faultio_crash_at(f, at);
			o = sim_options(f);
			ck_assert_int_lt(kv_open(&s, SIM_DIR, &o, NULL), 0);
			ck_assert_int_eq(faultio_crash(f, modes[m], at), 0);
			faultio_set_capacity(f, 0);
			a_fresh_store_opens(f);
			faultio_destroy(f);
		}
	}
}
END_TEST

START_TEST(a_new_store_on_a_disk_without_room_for_its_first_segment_is_refused_naming_it)
{
	struct faultio *f = sim_disk();
	struct kv_options o = sim_options(f);
	struct kv_report rep;
	struct kv *s = NULL;

	faultio_set_capacity(f, 16); /* LOCK's pid fits; not even a segment's header */
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -ENOSPC);
	ck_assert_int_eq(rep.problem, KV_PROBLEM_FILE);
	ck_assert_str_eq(rep.file, "wal-0000000000000001.log");
	/* the directory it made goes too, and stays gone after a power cut */
	ck_assert(!faultio_exists(f, SIM_DIR));
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, SIM_DIR));

	/* a directory that was there (a mount point, say) stays, as empty as it was */
	ck_assert_int_eq(faultio_mkdirs(f, SIM_DIR), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), -ENOSPC);
	ck_assert(faultio_exists(f, SIM_DIR));
	ck_assert_uint_eq(names_in_store_dir(f), 0);
	faultio_set_capacity(f, 0);
	a_fresh_store_opens(f);
	faultio_destroy(f);
}
END_TEST

/* A program that gives up on a store it just created (a mount that failed) leaves the disk as it
 * found it: no files, and no directory when the open made it — durably. */
START_TEST(an_abandoned_new_store_goes_with_the_directory_its_open_made)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);

	ck_assert(faultio_exists(f, SIM_DIR "/LOCK"));
	ck_assert_int_eq(kv_abandon(s), 0);
	ck_assert(!faultio_exists(f, SIM_DIR));
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert(!faultio_exists(f, SIM_DIR));
	a_fresh_store_opens(f);
	faultio_destroy(f);
}
END_TEST

/* ...but a directory that was there stays (empty, as it was), and a store that holds a write or
 * was there before is closed as by kv_close, nothing removed. */
START_TEST(an_abandoned_store_that_was_there_or_holds_a_write_stays)
{
	struct faultio *f = sim_disk();
	struct kv *s;

	ck_assert_int_eq(faultio_mkdirs(f, SIM_DIR), 0);
	s = sim_open(f, NULL);
	ck_assert_int_eq(kv_abandon(s), 0);
	ck_assert(faultio_exists(f, SIM_DIR));
	ck_assert_uint_eq(names_in_store_dir(f), 0);
	faultio_destroy(f);

	f = sim_disk();
	s = sim_open(f, NULL);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_abandon(s), 0);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_abandon(s), 0); /* a store with history, nothing written this time */
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Only a creating open removes files: one that fails on a store with history removes none. */
START_TEST(a_failed_open_of_a_store_with_history_removes_none_of_it)
{
	uint64_t calls = 0;
	int refused = 0;

	for (uint64_t n = 0; n <= calls; n++) { /* n = 0: count the calls of a reopen */
		struct faultio *f = sim_disk();
		struct kv_options o = sim_options(f);
		struct kv *s = sim_open(f, NULL);
		int rc;

		put_str(s, "a", "1");
		ck_assert_int_eq(kv_close(s), 0);
		faultio_reset_counts(f);
		if (n)
			ck_assert_int_eq(faultio_fail(f, FIO_OP_ANY, n, -EIO, false), 0);
		s = NULL;
		rc = kv_open(&s, SIM_DIR, &o, NULL);
		if (!n)
			calls = faultio_calls(f);
		if (rc == 0)
			ck_assert_int_eq(kv_close(s), 0);
		refused += rc != 0;
		faultio_clear_faults(f);
		ck_assert(faultio_exists(f, SIM_DIR "/LOCK"));
		ck_assert(faultio_exists(f, SIM_DIR "/wal-0000000000000001.log"));
		s = sim_open(f, NULL);
		expect_str(s, "a", "1");
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
	ck_assert_int_gt(refused, 5);
}
END_TEST

/* R14: a directory this open made that someone filled meanwhile (a file copied in while the
 * mount failed) keeps their file: kv_abandon removes only the store's own files, and the
 * directory stays since rmdir refuses it. */
START_TEST(an_abandoned_new_store_keeps_a_file_someone_put_in_its_directory_meanwhile)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	void *data;
	size_t len;

	ck_assert_int_eq(faultio_write_file(f, SIM_DIR "/notes.txt", "mine", 4), 0);
	ck_assert_int_eq(kv_abandon(s), 0);
	ck_assert(faultio_exists(f, SIM_DIR));
	ck_assert_int_eq(faultio_read_file(f, SIM_DIR "/notes.txt", &data, &len), 0);
	ck_assert_uint_eq(len, 4);
	ck_assert(!memcmp(data, "mine", 4));
	free(data);
	ck_assert(!faultio_exists(f, SIM_DIR "/LOCK"));
	ck_assert(!faultio_exists(f, SIM_DIR "/wal-0000000000000001.log"));
	faultio_destroy(f);
}
END_TEST

/* The calls kv_abandon makes on a new store (with_write 0) or on one holding a flushed write. */
static uint64_t calls_of_an_abandon(int with_write)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	if (with_write) {
		put_str(s, "a", "1");
		ck_assert_int_eq(kv_flush(s), 0);
	}
	uint64_t before = faultio_calls(f);
	ck_assert_int_eq(kv_abandon(s), 0);
	uint64_t calls = faultio_calls(f) - before;
	faultio_destroy(f);
	return calls;
}

/* R14: kv_abandon cut short by a crash (kill or power cut) at any of its calls: a store that
 * holds a flushed write still holds it, and an abandoned new one leaves what the next open makes
 * a fresh store in (never a directory an open refuses). */
START_TEST(an_abandon_cut_short_at_any_call_keeps_a_flushed_write_and_leaves_a_usable_directory)
{
	static const enum fio_crash modes[] = { FIO_CRASH_KILL, FIO_CRASH_DROP, FIO_CRASH_KEEP,
						FIO_CRASH_TEAR };
	for (int with_write = 0; with_write < 2; with_write++) {
		uint64_t calls = calls_of_an_abandon(with_write);
		ck_assert_uint_gt(calls, 2);
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
			for (uint64_t n = 1; n <= calls + 1; n++) {
				struct faultio *f = sim_disk();
				struct kv *s = sim_open(f, NULL);
				if (with_write) {
					put_str(s, "a", "1");
					ck_assert_int_eq(kv_flush(s), 0);
				}
				faultio_crash_at(f, faultio_calls(f) + n);
				(void)kv_abandon(s); /* its result is the close's; the disk is what counts */
				ck_assert_int_eq(faultio_crash(f, modes[m], n), 0);
				struct kv_report rep;
				s = sim_open(f, &rep);
				if (with_write)
					expect_str(s, "a", "1");
				else
					ck_assert_uint_eq(store_keys(s), 0);
				ck_assert_int_eq(kv_close(s), 0);
				faultio_destroy(f);
			}
	}
}
END_TEST

/* ---- the space files at open: the reserve and the promise file ---- */

#define RESERVE SIM_DIR "/space.reserve"
#define PROMISE SIM_DIR "/space.promise"

static uint64_t file_size(struct faultio *f, const char *path)
{
	uint64_t size = 0;
	bool dir;
	ck_assert_int_eq(faultio_stat(f, path, &dir, &size), 0);
	return size;
}

static uint64_t durable_size(struct faultio *f, const char *path)
{
	void *data;
	size_t len;
	ck_assert_int_eq(faultio_read_durable(f, path, &data, &len), 0);
	free(data);
	return len;
}

/* A new simulated disk with a store holding "a" = "1", closed; *want is the size its reserve was
 * taken at when it was made (nothing checkpointed: 4 MiB and half a segment). A reopen wants a
 * little less, half the segment the close trimmed. Then the reserve is made halves halves of
 * *want long, as by an older version, a copy or a hand. */
static struct faultio *a_small_store(uint64_t *want, uint64_t halves)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	put_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	*want = file_size(f, RESERVE);
	ck_assert_int_eq(faultio_truncate(f, RESERVE, *want * halves / 2), 0);
	return f;
}

/* Made by an older version with a larger RESERVE_MAX, when the checkpoint was bigger, or by hand:
 * the writable open cuts it back to what the store wants, durably, and loses nothing. */
START_TEST(an_oversized_reserve_is_cut_back_at_a_writable_open)
{
	uint64_t want;
	struct faultio *f = a_small_store(&want, 16); /* 8 * want */

	ck_assert_uint_ge(want, 4u << 20);
	struct kv *s = sim_open(f, NULL);
	uint64_t cut = file_size(f, RESERVE);
	ck_assert_msg(cut <= want && cut >= 4u << 20, "cut back to %" PRIu64 " (taken at %" PRIu64 ")",
		      cut, want);
	ck_assert_uint_eq(durable_size(f, RESERVE), cut);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_crash(f, FIO_CRASH_DROP, 1), 0);
	ck_assert_uint_eq(file_size(f, RESERVE), cut);
	s = sim_open(f, NULL);
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* Up to twice what it wants a reserve stays as it is (here half as much again): a checkpoint
 * whose size wavers does not cut and regrow it every time. */
START_TEST(a_reserve_up_to_twice_what_the_store_wants_is_left_as_it_is)
{
	uint64_t want;
	struct faultio *f = a_small_store(&want, 3); /* want + want / 2 */

	faultio_reset_counts(f);
	struct kv *s = sim_open(f, NULL);
	ck_assert_uint_eq(file_size(f, RESERVE), want + want / 2);
	ck_assert_uint_eq(faultio_count(f, FIO_OP_FTRUNCATE), 1); /* LOCK's pid, nothing else */
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_read_only_open_leaves_an_oversized_reserve_as_it_is)
{
	uint64_t want;
	struct faultio *f = a_small_store(&want, 16); /* 8 * want */
	struct kv_report rep;
	int rc;

	struct kv *s = open_ro(f, &rep, &rc);
	ck_assert_msg(rc == 0, "read-only open: %s (%s)", strerror(-rc), tu_report(&rep));
	expect_str(s, "a", "1");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_uint_eq(file_size(f, RESERVE), 8 * want);
	faultio_destroy(f);
}
END_TEST

/* Puts (or deletes) n small keys, a thousand to a batch, then checkpoints. */
static void small_keys_then_checkpoint(struct kv *s, int n, int del)
{
	char k[32];

	for (int i = 0; i < n; i += 1000) {
		struct kv_batch *b;
		ck_assert_int_eq(kv_batch_new(&b), 0);
		for (int j = i; j < n && j < i + 1000; j++) {
			snprintf(k, sizeof k, "small/%08d", j);
			ck_assert_int_eq(del ? kv_batch_del(b, k, strlen(k)) :
					       kv_batch_put(b, k, strlen(k), NULL, 0, "v", 1), 0);
		}
		ck_assert_int_eq(kv_apply(s, b, NULL), 0);
		kv_batch_free(b);
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
}

/* The reserve follows the checkpoint down as well as up: a checkpoint of a store that deleted
 * most of its keys cuts it back, in the same process. */
START_TEST(a_checkpoint_that_shrinks_a_lot_cuts_the_reserve_back)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open_seg(f, 1u << 20, NULL);
	uint64_t small = file_size(f, RESERVE), big;

	small_keys_then_checkpoint(s, 60000, 0);
	big = file_size(f, RESERVE);
	ck_assert_msg(big > 2 * small, "the reserve grew from %" PRIu64 " to %" PRIu64 " only", small, big);
	small_keys_then_checkpoint(s, 60000, 1);
	uint64_t after = file_size(f, RESERVE);
	ck_assert_msg(after < big / 2 && after >= small, "reserve %" PRIu64 " after the big checkpoint, "
		      "%" PRIu64 " after the small one (a new store's: %" PRIu64 ")", big, after, small);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The promise file holding more than its owner's count at open (the count went down while a
 * crash kept the file's old size) gives the rest back when the count is set. */
START_TEST(a_promise_file_above_the_count_set_at_open_is_cut_back_to_it)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);

	ck_assert_int_eq(kv_promise(s, 8u << 20), 0);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_uint_eq(file_size(f, PROMISE), 8u << 20);
	s = sim_open(f, NULL);
	ck_assert_int_eq(kv_promise_set(s, 1u << 20), 0);
	ck_assert_uint_eq(file_size(f, PROMISE), 1u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- progress of long work ---- */

struct progress_log {
	int starts[8], ends[8], calls[8];
	uint64_t last_done[8], total[8], end_done[8];
	int backwards;
};

static void log_progress(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end)
{
	struct progress_log *l = arg;
	if (done == 0 && !end) {
		l->starts[what]++;
		l->last_done[what] = 0;
		l->total[what] = total;
		return;
	}
	l->calls[what]++;
	if (done < l->last_done[what] || total != l->total[what])
		l->backwards = 1;
	l->last_done[what] = done;
	if (end) {
		l->ends[what]++;
		l->end_done[what] = done;
	}
}

START_TEST(long_work_reports_progress_from_start_to_a_complete_end)
{
	struct faultio *f = sim_disk();
	struct progress_log l;
	struct kv_options o = sim_options(f);
	struct kv_report rep;
	struct kv_backup_info info;
	struct kv *s;
	char k[16], v[600];

	memset(&l, 0, sizeof l);
	o.progress = (struct kv_progress){ log_progress, &l };
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	memset(v, 'v', sizeof v);
	for (int i = 0; i < 400; i++) {
		snprintf(k, sizeof k, "k%03d", i % 200);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, sizeof v), 0);
	}
	ck_assert_int_eq(kv_snapshot(s), 0);
	ck_assert_int_eq(kv_clean(s, 1, NULL), 0);
	ck_assert_int_eq(kv_backup(s, "/sim/copy", &info), 0);
	for (int i = 0; i < 100; i++)
		put_str(s, "after", "the checkpoint");
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0); /* replays 100 records */
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(kv_check(SIM_DIR, o.io, &o.progress, &rep), 0);

	static const enum kv_work works[] = { KV_WORK_RECOVERY, KV_WORK_CHECKPOINT, KV_WORK_CLEANER,
					      KV_WORK_CHECK, KV_WORK_BACKUP };
	for (size_t i = 0; i < sizeof works / sizeof works[0]; i++) {
		enum kv_work w = works[i];
		ck_assert_msg(l.starts[w] > 0 && l.ends[w] == l.starts[w], "work %d: %d starts, %d ends",
			      w, l.starts[w], l.ends[w]);
		ck_assert_msg(l.end_done[w] == l.total[w] && l.total[w] > 0, "work %d ended at %" PRIu64
			      " of %" PRIu64, w, l.end_done[w], l.total[w]);
	}
	ck_assert_msg(!l.backwards, "progress went backwards or its total changed");
	ck_assert_int_eq(l.total[KV_WORK_CHECKPOINT], 200); /* keys */
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("store");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, put_then_get_returns_value);
	tcase_add_test(tc, a_prefix_rename_that_would_lengthen_a_key_made_earlier_in_its_batch_is_refused);
	tcase_add_test(tc, keys_and_values_are_binary_safe);
	tcase_add_test(tc, delete_of_absent_key_is_enoent_and_logs_nothing);
	tcase_add_test(tc, key_over_limit_is_refused_with_enametoolong);
	tcase_add_test(tc, value_over_limit_is_refused_with_efbig);
	tcase_add_test(tc, range_write_and_truncate_edit_in_place);
	tcase_add_test(tc, batch_applies_all_operations_under_one_lsn);
	tcase_add_test(tc, meta_is_kept_and_replayed);
	tcase_add_test(tc, scan_walks_a_prefix_in_key_order);
	tcase_add_test(tc, reopen_after_clean_close_keeps_everything);
	tcase_add_test(tc, a_read_only_open_reads_everything_and_changes_nothing_even_after_a_kill);
	tcase_add_test(tc, readers_share_a_store_and_exclude_a_writer);
	tcase_add_test(tc, long_work_reports_progress_from_start_to_a_complete_end);
	tcase_add_test(tc, a_directory_holding_other_files_is_not_made_a_store);
	tcase_add_test(tc, a_creating_open_that_fails_at_any_call_leaves_nothing_behind);
	tcase_add_test(tc, a_creating_open_whose_cleanup_is_cut_short_leaves_a_store_the_next_open_makes_afresh);
	tcase_add_test(tc, a_new_store_on_a_disk_without_room_for_its_first_segment_is_refused_naming_it);
	tcase_add_test(tc, a_failed_open_of_a_store_with_history_removes_none_of_it);
	tcase_add_test(tc, an_abandoned_new_store_goes_with_the_directory_its_open_made);
	tcase_add_test(tc, an_abandoned_store_that_was_there_or_holds_a_write_stays);
	tcase_add_test(tc, an_abandoned_new_store_keeps_a_file_someone_put_in_its_directory_meanwhile);
	tcase_add_test(tc, an_abandon_cut_short_at_any_call_keeps_a_flushed_write_and_leaves_a_usable_directory);
	tcase_add_test(tc, a_read_only_open_of_a_missing_directory_creates_nothing);
	tcase_add_test(tc, a_read_only_open_refuses_damage_in_strict_mode_and_shows_the_salvage_otherwise);
	tcase_add_test(tc, snapshot_then_reopen_replays_only_the_log_after_it);
	tcase_add_test(tc, a_checkpoint_deletes_the_segments_whose_values_are_all_gone);
	tcase_add_test(tc, automatic_snapshot_when_log_passes_threshold);
	tcase_add_test(tc, a_checkpoint_costs_the_keys_not_the_bytes);
	tcase_add_test(tc, automatic_checkpoints_of_a_big_index_wait_for_twice_their_size_of_log);
	tcase_add_test(tc, snapshots_and_writers_run_concurrently_and_reopen_agrees);
	tcase_add_test(tc, stats_report_keys_bytes_and_memory);
	tcase_add_test(tc, four_kib_write_into_1_gib_value_costs_o_4_kib);
	tcase_add_test(tc, value_of_1_gib_round_trips_through_log_and_snapshot);
	tcase_add_test(tc, options_parse_and_reject);
	tcase_add_test(tc, an_oversized_reserve_is_cut_back_at_a_writable_open);
	tcase_add_test(tc, a_reserve_up_to_twice_what_the_store_wants_is_left_as_it_is);
	tcase_add_test(tc, a_read_only_open_leaves_an_oversized_reserve_as_it_is);
	tcase_add_test(tc, a_checkpoint_that_shrinks_a_lot_cuts_the_reserve_back);
	tcase_add_test(tc, a_promise_file_above_the_count_set_at_open_is_cut_back_to_it);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
