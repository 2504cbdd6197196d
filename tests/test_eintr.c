/* The OS seam (engine/kvio_posix.c) against interrupted and short system calls.
 *
 * The simulated disk (faultio) stands in for kvio_posix everywhere else, so the retry loops of
 * kvio_posix itself are tested here: this binary is linked with --wrap for pread, pwrite, open,
 * ftruncate, posix_fallocate (their 64-bit names) and fdatasync, and the wrappers make the real calls fail with EINTR
 * or move fewer bytes than asked, on a seeded schedule. A store on a real directory must then
 * work exactly as if nothing happened: every interrupted call retried, every short transfer
 * finished. fdatasync is the exception: an interrupted fdatasync is not retried (after a failed
 * sync the kernel may have dropped the dirty pages, docs/DURABILITY.md 5.2), so it fails the
 * flush and the store goes read-only. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "kv.h"
#include "kvio.h"
#include "testutil.h"

/* The real calls, as the linker's --wrap names them. Built with _FILE_OFFSET_BITS=64 (meson's
 * default), the engine calls the 64-bit names. */
ssize_t __real_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __real_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __real_open64(const char *path, int flags, ...);
int __real_ftruncate64(int fd, off_t len);
int __real_posix_fallocate64(int fd, off_t off, off_t len);
int __real_fdatasync(int fd);
ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off);
ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off);
int __wrap_open64(const char *path, int flags, ...);
int __wrap_ftruncate64(int fd, off_t len);
int __wrap_posix_fallocate64(int fd, off_t off, off_t len);
int __wrap_fdatasync(int fd);

static int armed;             /* inject only while a test wants it */
static int fail_fdatasyncs;   /* the next this many fdatasyncs fail with EINTR */
static uint64_t rng = 1;
static uint64_t interrupted, shortened;

/* 1 in 3 calls is interrupted before it does anything. */
static int interrupt(void)
{
	if (!armed || tu_rand(&rng) % 3)
		return 0;
	__atomic_add_fetch(&interrupted, 1, __ATOMIC_RELAXED);
	errno = EINTR;
	return 1;
}

/* 1 in 3 transfers of more than one byte moves only part of it, as a signal arriving mid-way
 * would make it. */
static size_t shorten(size_t len)
{
	if (!armed || len < 2 || tu_rand(&rng) % 3)
		return len;
	__atomic_add_fetch(&shortened, 1, __ATOMIC_RELAXED);
	return 1 + (size_t)(tu_rand(&rng) % (len - 1));
}

ssize_t __wrap_pread64(int fd, void *buf, size_t len, off_t off)
{
	return interrupt() ? -1 : __real_pread64(fd, buf, shorten(len), off);
}

ssize_t __wrap_pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return interrupt() ? -1 : __real_pwrite64(fd, buf, shorten(len), off);
}

int __wrap_open64(const char *path, int flags, ...)
{
	mode_t mode = 0;

	if (flags & O_CREAT) {
		va_list ap;

		va_start(ap, flags);
		mode = (mode_t)va_arg(ap, int);
		va_end(ap);
	}
	return interrupt() ? -1 : __real_open64(path, flags, mode);
}

int __wrap_ftruncate64(int fd, off_t len)
{
	return interrupt() ? -1 : __real_ftruncate64(fd, len);
}

int __wrap_posix_fallocate64(int fd, off_t off, off_t len)
{
	/* reports its error as the return value, not in errno */
	if (interrupt())
		return EINTR;
	return __real_posix_fallocate64(fd, off, len);
}

int __wrap_fdatasync(int fd)
{
	if (armed && __atomic_load_n(&fail_fdatasyncs, __ATOMIC_RELAXED) > 0) {
		__atomic_sub_fetch(&fail_fdatasyncs, 1, __ATOMIC_RELAXED);
		errno = EINTR;
		return -1;
	}
	return __real_fdatasync(fd);
}

static char tmp[256], dir[300];

static void setup(void)
{
	ck_assert_int_eq(tu_tmpdir(tmp, sizeof(tmp)), 0);
	snprintf(dir, sizeof(dir), "%s/store", tmp);
	rng = tu_seed();
	interrupted = shortened = 0;
	fail_fdatasyncs = 0;
	armed = 0;
}

static void teardown(void)
{
	armed = 0;
	tu_rmrf(tmp);
}

static struct kv_options options(enum kv_sync sync)
{
	struct kv_options o;

	kv_options_default(&o);
	o.sync = sync;
	o.segment_bytes = 256 << 10; /* several segments: creates, preallocations, rotations */
	return o;
}

/* Value i: its length and bytes follow from i. */
static size_t value_len(int i)
{
	return i % 10 == 0 ? (size_t)(300 << 10) : (size_t)(1 + i * 37 % 3000);
}

static void fill_value(char *v, int i)
{
	for (size_t k = 0; k < value_len(i); k++)
		v[k] = (char)(i * 31 + (int)k);
}

static void expect_values(struct kv *s, int n)
{
	char k[16], *want = malloc(300 << 10);

	ck_assert_ptr_nonnull(want);
	for (int i = 0; i < n; i++) {
		void *got;
		uint64_t len;

		snprintf(k, sizeof(k), "k%04d", i);
		ck_assert_int_eq(kv_get(s, k, strlen(k), &got, &len), 0);
		fill_value(want, i);
		ck_assert_uint_eq(len, value_len(i));
		ck_assert_msg(memcmp(got, want, len) == 0, "%s differs", k);
		free(got);
	}
	free(want);
}

START_TEST(interrupted_and_short_calls_are_retried_and_nothing_changes)
{
	struct kv_options o = options(KV_SYNC_ALWAYS);
	struct kv_report rep;
	struct kv *s;
	char k[16], *v = malloc(300 << 10);
	const int n = 120;

	ck_assert_ptr_nonnull(v);
	armed = 1;
	ck_assert_int_eq(kv_open(&s, dir, &o, &rep), 0);
	for (int i = 0; i < n; i++) {
		snprintf(k, sizeof(k), "k%04d", i);
		fill_value(v, i);
		ck_assert_int_eq(kv_put(s, k, strlen(k), v, value_len(i)), 0);
		if (i == n / 2)
			ck_assert_int_eq(kv_snapshot(s), 0); /* a snapshot's writes and renames too */
	}
	ck_assert_int_eq(kv_close(s), 0);
	/* recovery reads the snapshot and the log through the same interrupted calls */
	ck_assert_int_eq(kv_open(&s, dir, &o, &rep), 0);
	ck_assert_str_eq(tu_report(&rep), "");
	expect_values(s, n);
	ck_assert_int_eq(kv_close(s), 0);
	armed = 0;
	ck_assert_int_eq(kv_check(dir, NULL, NULL, &rep), 0);
	fprintf(stderr, "interrupted calls: %" PRIu64 ", short transfers: %" PRIu64 "\n",
		interrupted, shortened);
	/* hundreds of calls, one in three hit: these only prove the injection ran */
	ck_assert_uint_gt(interrupted, 10);
	ck_assert_uint_gt(shortened, 10);
	free(v);
}
END_TEST

START_TEST(an_interrupted_fdatasync_fails_the_flush_and_is_never_retried)
{
	struct kv_options o = options(KV_SYNC_NONE);
	struct kv_stats st;
	struct kv *s;

	ck_assert_int_eq(kv_open(&s, dir, &o, NULL), 0);
	ck_assert_int_eq(kv_put(s, "kept", 4, "flushed", 7), 0);
	ck_assert_int_eq(kv_flush(s), 0);
	ck_assert_int_eq(kv_put(s, "lost", 4, "unflushed", 9), 0);
	armed = 1;
	fail_fdatasyncs = 1;
	ck_assert_int_eq(kv_flush(s), -EINTR);
	/* the failed sync is sticky: a second flush does not vouch for the same data */
	ck_assert_int_ne(kv_flush(s), 0);
	kv_stats(&*s, &st);
	ck_assert_int_eq(st.read_only, 1);
	ck_assert_int_eq(kv_put(s, "more", 4, "x", 1), -EROFS);
	armed = 0;
	ck_assert_int_ne(kv_close(s), 0); /* it could not flush */
	ck_assert_int_eq(kv_open(&s, dir, &o, NULL), 0);
	void *got;
	uint64_t len;
	ck_assert_int_eq(kv_get(s, "kept", 4, &got, &len), 0);
	ck_assert_uint_eq(len, 7);
	free(got);
	ck_assert_int_eq(kv_close(s), 0);
}
END_TEST

/* pread_around (a small read that, when cold, has the kernel read around it first) hands back
 * exactly what pread would: cold and warm, across the read-around window's edges, at the end of
 * the file and past it; interrupted and short calls on the way are retried. */
START_TEST(pread_around_reads_what_pread_reads_cold_warm_and_at_the_end_of_the_file)
{
	const struct kvio *io = &kvio_posix;
	char path[4200];
	size_t size = 300 * 1024 + 77, len = 4000;
	uint8_t *data = malloc(size), buf[4000];
	uint64_t x = 5;
	int fd;

	ck_assert_ptr_nonnull(data);
	for (size_t i = 0; i < size; i++)
		data[i] = (uint8_t)tu_rand(&x);
	snprintf(path, sizeof path, "%s/f", tmp);
	ck_assert_int_eq(io->open(io, path, O_RDWR | O_CREAT, 0600, &fd), 0);
	ck_assert_int_eq(io->pwrite(io, fd, data, size, 0), 0);
	ck_assert_int_eq(io->fdatasync(io, fd), 0);
	const uint64_t offs[] = { 0, 4095, (128u << 10) - 10, 200000, size - 100, size - 1, size, size + 4096 };
	armed = 1;
	for (int warm = 0; warm < 2; warm++)
		for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
			size_t got = 12345, want = offs[k] >= size ? 0 : size - offs[k] < len ? size - offs[k] : len;
			if (!warm)
				ck_assert_int_eq(io->drop_cache(io, fd), 0);
			ck_assert_int_eq(io->pread_around(io, fd, buf, len, offs[k], 128u << 10, &got), 0);
			ck_assert_msg(got == want, "at %" PRIu64 " (%s): got %zu, not %zu", offs[k],
				      warm ? "warm" : "cold", got, want);
			ck_assert(!memcmp(buf, data + (offs[k] < size ? offs[k] : 0), got));
		}
	armed = 0;
	ck_assert_int_eq(io->close(io, fd), 0);
	free(data);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("eintr");
	TCase *tc = tcase_create("posix");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, interrupted_and_short_calls_are_retried_and_nothing_changes);
	tcase_add_test(tc, an_interrupted_fdatasync_fails_the_flush_and_is_never_retried);
	tcase_add_test(tc, pread_around_reads_what_pread_reads_cold_warm_and_at_the_end_of_the_file);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
