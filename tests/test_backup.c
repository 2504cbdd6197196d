/* kv_backup: the copy opens as the store at its LSN, also while writers, checkpoints and the
 * cleaner run; a crash at any call of it leaves a copy that is whole or refuses to open (never
 * a smaller store) and a source that lost nothing; a failed copy is taken away. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "simstore.h"
#include "testutil.h"

#define DEST "/sim/copy"

/* Everything a store holds, as one byte string: key, size, metadata and value of each key in
 * order. Two stores are equal when these are. */
struct image {
	uint8_t *p;
	size_t len, cap;
	struct kv *s;
};

static void image_add(struct image *im, const void *p, size_t n)
{
	if (im->len + n > im->cap) {
		im->cap = (im->len + n) * 2;
		im->p = realloc(im->p, im->cap);
		ck_assert_ptr_nonnull(im->p);
	}
	memcpy(im->p + im->len, p, n);
	im->len += n;
}

static int image_key(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		     size_t mlen)
{
	struct image *im = arg;
	void *val;
	uint64_t vlen;
	image_add(im, &klen, sizeof klen);
	image_add(im, key, klen);
	image_add(im, &size, sizeof size);
	image_add(im, &mlen, sizeof mlen);
	image_add(im, meta, mlen);
	int rc = kv_get(im->s, key, klen, &val, &vlen);
	ck_assert_msg(rc == 0, "get %.*s: %s", (int)klen, (const char *)key, strerror(-rc));
	image_add(im, val, vlen);
	free(val);
	return 0;
}

static struct image image_of(struct kv *s)
{
	struct image im = { .s = s };
	ck_assert_int_eq(kv_scan(s, "", 0, image_key, &im), 0);
	return im;
}

static int same(const struct image *a, const struct image *b)
{
	return a->len == b->len && !memcmp(a->p, b->p, a->len);
}

static struct kv *open_dir(struct faultio *f, const char *dir, int *rc_out, struct kv_report *rep)
{
	struct kv_options o = sim_options(f);
	struct kv *s = NULL;
	*rc_out = kv_open(&s, dir, &o, rep);
	return s;
}

/* Writes that leave values in several segments, some partly dead, with holes and metadata. */
static void fill_store(struct kv *s, int rounds)
{
	uint8_t buf[3000];
	char k[32];
	for (int i = 0; i < rounds; i++) {
		memset(buf, 'a' + i % 26, sizeof buf);
		snprintf(k, sizeof k, "key%03d", i % 40);
		ck_assert_int_eq(kv_put(s, k, strlen(k), buf, (uint64_t)(i * 37) % sizeof buf), 0);
		if (i % 7 == 0)
			ck_assert_int_eq(kv_write(s, k, strlen(k), 5000, "tail", 4), 0);
		if (i % 11 == 0)
			ck_assert_int_eq(kv_setmeta(s, k, strlen(k), "meta", 4), 0);
		if (i % 13 == 0)
			ck_assert_int_eq(kv_del(s, k, strlen(k)), 0);
	}
}

START_TEST(the_copy_opens_as_the_store_at_its_lsn_and_takes_writes)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL), *c;
	struct kv_backup_info info;
	struct kv_report rep;
	int rc;

	fill_store(s, 200);
	ck_assert_int_eq(kv_snapshot(s), 0);
	fill_store(s, 60); /* records after the checkpoint, in the segment being appended to */
	struct image want = image_of(s);
	struct kv_stats st;
	kv_stats(s, &st);
	ck_assert_int_eq(kv_backup(s, DEST, &info), 0);
	ck_assert_uint_eq(info.lsn, st.last_lsn);
	ck_assert_uint_ge(info.files, 2);
	put_str(s, "after", "the backup"); /* not in the copy */
	ck_assert_int_eq(kv_close(s), 0);

	c = open_dir(f, DEST, &rc, &rep);
	ck_assert_msg(rc == 0, "the copy does not open: %s (%s)", strerror(-rc), tu_report(&rep));
	struct image got = image_of(c);
	ck_assert_msg(same(&want, &got), "the copy differs from the store at its LSN");
	expect_str(c, "after", NULL);
	put_str(c, "new", "in the copy"); /* a copy is a store of its own */
	ck_assert_int_eq(kv_close(c), 0);
	c = open_dir(f, DEST, &rc, &rep);
	ck_assert_int_eq(rc, 0);
	expect_str(c, "new", "in the copy");
	ck_assert_int_eq(kv_close(c), 0);
	free(want.p);
	free(got.p);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_destination_that_holds_something_is_refused_and_left_alone)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_backup_info info;
	void *data;
	size_t len;

	put_str(s, "a", "1");
	ck_assert_int_eq(faultio_mkdirs(f, DEST), 0);
	ck_assert_int_eq(faultio_write_file(f, DEST "/notes.txt", "mine", 4), 0);
	ck_assert_int_eq(kv_backup(s, DEST, &info), -ENOTEMPTY);
	ck_assert_int_eq(faultio_read_file(f, DEST "/notes.txt", &data, &len), 0);
	ck_assert_uint_eq(len, 4);
	free(data);
	char **names;
	size_t n;
	ck_assert_int_eq(faultio_list(f, DEST, &names, &n), 0);
	ck_assert_uint_eq(n, 1);
	faultio_free_names(names, n);
	ck_assert_int_eq(faultio_write_file(f, "/sim/afile", "x", 1), 0);
	ck_assert_int_eq(kv_backup(s, "/sim/afile", &info), -ENOTDIR);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_failed_copy_is_taken_away_and_the_store_goes_on)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_backup_info info;
	char **names;
	size_t n;

	fill_store(s, 200);
	/* the third data write of the copy fails: the disk is full */
	uint64_t pw = faultio_count(f, FIO_OP_PWRITE);
	ck_assert_int_eq(faultio_fail(f, FIO_OP_PWRITE, pw + 3, -ENOSPC, false), 0);
	ck_assert_int_eq(kv_backup(s, DEST, &info), -ENOSPC);
	ck_assert_int_eq(faultio_list(f, DEST, &names, &n), -ENOENT); /* never stood there */
	ck_assert_int_eq(faultio_list(f, DEST ".unfinished", &names, &n), 0);
	ck_assert_msg(n == 0, "left behind: %s", n ? names[0] : "");
	faultio_free_names(names, n);
	put_str(s, "still", "writable");
	ck_assert_int_eq(kv_backup(s, DEST, &info), 0); /* and a second try succeeds */
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* ---- while the store works ---- */

struct churn {
	struct kv *s;
	int stop;
	uint64_t writes;
};

/* Each write i puts "n" = i and "k<i>" in one batch: a copy at any LSN holds k0..kn exactly. */
static void *writer(void *arg)
{
	struct churn *c = arg;
	char k[32], v[32];
	for (uint64_t i = 0; !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE); i++) {
		struct kv_batch *b;
		ck_assert_int_eq(kv_batch_new(&b), 0);
		snprintf(k, sizeof k, "k%06" PRIu64, i);
		snprintf(v, sizeof v, "%" PRIu64, i);
		ck_assert_int_eq(kv_batch_put(b, "n", 1, NULL, 0, v, strlen(v)), 0);
		ck_assert_int_eq(kv_batch_put(b, k, strlen(k), NULL, 0, v, strlen(v)), 0);
		ck_assert_int_eq(kv_apply(c->s, b, NULL), 0);
		kv_batch_free(b);
		if (i % 50 == 0) /* old values die: the cleaner has work */
			ck_assert_int_eq(kv_put(c->s, "big", 3, k, sizeof k), 0);
		__atomic_store_n(&c->writes, i + 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void *maintainer(void *arg)
{
	struct churn *c = arg;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int rc = kv_clean(c->s, 1, NULL);
		ck_assert_msg(rc == 0, "clean: %s", strerror(-rc));
		ck_assert_int_eq(kv_snapshot(c->s), 0);
	}
	return NULL;
}

static int count_key(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
		     size_t mlen)
{
	(void)size, (void)meta, (void)mlen;
	if (klen > 1 && ((const char *)key)[0] == 'k')
		(*(uint64_t *)arg)++;
	return 0;
}

START_TEST(copies_taken_while_writers_checkpoints_and_the_cleaner_run_are_consistent)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct churn c = { .s = s };
	pthread_t w, m;
	char dest[64];

	ck_assert_int_eq(pthread_create(&w, NULL, writer, &c), 0);
	ck_assert_int_eq(pthread_create(&m, NULL, maintainer, &c), 0);
	for (int round = 0; round < 20; round++) {
		struct kv_backup_info info;
		while (__atomic_load_n(&c.writes, __ATOMIC_ACQUIRE) < (uint64_t)(round + 1) * 40)
			sched_yield();
		snprintf(dest, sizeof dest, "/sim/copy%d", round);
		int rc = kv_backup(s, dest, &info);
		ck_assert_msg(rc == 0, "backup %d: %s", round, strerror(-rc));
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	pthread_join(w, NULL);
	pthread_join(m, NULL);
	ck_assert_int_eq(kv_close(s), 0);

	for (int round = 0; round < 20; round++) {
		struct kv_report rep;
		void *v;
		uint64_t vlen, ks = 0;
		int rc;
		snprintf(dest, sizeof dest, "/sim/copy%d", round);
		struct kv *b = open_dir(f, dest, &rc, &rep);
		ck_assert_msg(rc == 0, "copy %d does not open: %s (%s)", round, strerror(-rc),
			      tu_report(&rep));
		ck_assert_int_eq(kv_get(b, "n", 1, &v, &vlen), 0);
		uint64_t last = strtoull(v, NULL, 10);
		free(v);
		ck_assert_int_eq(kv_scan(b, "k", 1, count_key, &ks), 0);
		ck_assert_msg(ks == last + 1, "copy %d: n=%" PRIu64 " but %" PRIu64 " k keys", round,
			      last, ks);
		ck_assert_int_eq(kv_close(b), 0);
	}
	faultio_destroy(f);
}
END_TEST

START_TEST(a_read_only_store_is_copied_as_it_is)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL), *c;
	struct kv_options o = sim_options(f);
	struct kv_backup_info info;
	int rc;

	fill_store(s, 150);
	ck_assert_int_eq(kv_snapshot(s), 0);
	fill_store(s, 30);
	ck_assert_int_eq(kv_close(s), 0);
	o.read_only = 1;
	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	struct image want = image_of(s);
	ck_assert_int_eq(kv_backup(s, DEST, &info), 0);
	ck_assert_int_eq(kv_close(s), 0);
	c = open_dir(f, DEST, &rc, NULL);
	ck_assert_int_eq(rc, 0);
	struct image got = image_of(c);
	ck_assert(same(&want, &got));
	ck_assert_int_eq(kv_close(c), 0);
	free(want.p);
	free(got.p);
	faultio_destroy(f);
}
END_TEST

/* ---- crashes ---- */

static int has_store_files(struct faultio *f, const char *dir)
{
	char **names;
	size_t n;
	int found = 0;
	if (faultio_list(f, dir, &names, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		found |= ckpt_parse_name(names[i], &v) == 0 || seg_parse_name(names[i], &v) == 0;
	}
	faultio_free_names(names, n);
	return found;
}

START_TEST(a_crash_at_any_call_of_a_backup_leaves_a_whole_copy_or_none)
{
	static const enum fio_crash modes[] = { FIO_CRASH_DROP, FIO_CRASH_KEEP, FIO_CRASH_TEAR,
						FIO_CRASH_GARBAGE };
	struct faultio *base = sim_disk();
	struct kv *s = sim_open(base, NULL);
	struct kv_backup_info info;
	uint64_t calls;

	fill_store(s, 200);
	ck_assert_int_eq(kv_snapshot(s), 0);
	fill_store(s, 40);
	ck_assert_int_eq(kv_flush(s), 0);
	struct image want = image_of(s);
	ck_assert_int_eq(kv_close(s), 0);
	/* how many calls a whole backup makes */
	{
		struct faultio *f;
		ck_assert_int_eq(faultio_clone(base, &f), 0);
		s = sim_open(f, NULL);
		uint64_t before = faultio_calls(f);
		ck_assert_int_eq(kv_backup(s, DEST, &info), 0);
		calls = faultio_calls(f) - before;
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
	int whole = 0, refused = 0, none = 0;
	for (uint64_t at = 1; at <= calls + 1; at++) {
		struct faultio *f;
		struct kv_report rep;
		int rc;
		ck_assert_int_eq(faultio_clone(base, &f), 0);
		s = sim_open(f, NULL);
		faultio_crash_at(f, faultio_calls(f) + at);
		rc = kv_backup(s, DEST, &info);
		ck_assert_msg(rc != 0 || at > calls, "crash at call %" PRIu64 " but the backup succeeded", at);
		rc = kv_close(s);
		(void)rc; /* a dead process's close fails; what it frees is memory */
		ck_assert_int_eq(faultio_crash(f, modes[at % 4], at), 0);

		/* the source lost nothing */
		struct kv *src = open_dir(f, SIM_DIR, &rc, &rep);
		ck_assert_msg(rc == 0, "crash at %" PRIu64 ": the store does not open: %s (%s)", at,
			      strerror(-rc), tu_report(&rep));
		struct image got = image_of(src);
		ck_assert_msg(same(&want, &got), "crash at %" PRIu64 ": the store changed", at);
		free(got.p);
		ck_assert_int_eq(kv_close(src), 0);

		/* the copy is whole or not there (it stands at DEST only once whole) */
		if (!has_store_files(f, DEST)) {
			none++;
		} else {
			struct kv *c = open_dir(f, DEST, &rc, &rep);
			if (rc == 0) {
				got = image_of(c);
				ck_assert_msg(same(&want, &got), "crash at %" PRIu64 ": the copy opens "
					      "but differs", at);
				free(got.p);
				ck_assert_int_eq(kv_close(c), 0);
				whole++;
			} else {
				ck_assert_msg(rc == -EUCLEAN, "crash at %" PRIu64 ": %s (%s)", at,
					      strerror(-rc), tu_report(&rep));
				refused++;
			}
		}
		faultio_destroy(f);
	}
	ck_assert_int_gt(whole, 0);
	ck_assert_int_eq(refused, 0);
	ck_assert_int_gt(none, 0);
	free(want.p);
	faultio_destroy(base);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("backup");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, the_copy_opens_as_the_store_at_its_lsn_and_takes_writes);
	tcase_add_test(tc, a_destination_that_holds_something_is_refused_and_left_alone);
	tcase_add_test(tc, a_failed_copy_is_taken_away_and_the_store_goes_on);
	tcase_add_test(tc, copies_taken_while_writers_checkpoints_and_the_cleaner_run_are_consistent);
	tcase_add_test(tc, a_read_only_store_is_copied_as_it_is);
	tcase_add_test(tc, a_crash_at_any_call_of_a_backup_leaves_a_whole_copy_or_none);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
