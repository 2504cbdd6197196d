/* Attack 7: what the seventh adversarial review (R14: S13's reserve cut-back and kv_abandon,
 * F7's pending relocation read back from its source) found. Each test is the smallest
 * deterministic reproduction of one finding of tests/attack7/FINDINGS.md and states what the
 * contract promises (design.md §2: a bad input gets a clear error and loses nothing); each FAILS
 * until the engine is fixed, so the suite is 'attack7', outside the default run
 * (`meson test -C build --setup attack7 --suite attack7`). */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kv.h"
#include "testutil.h"

/* ---- finding 1: space.reserve is opened following symlinks, and cut ----
 * engine/store.c reserve_take opens DIR/space.reserve with O_RDWR | O_CREAT (no O_NOFOLLOW, no
 * check that it is a regular file), reads its size and, when it is over twice what the store
 * wants (reserve_oversized), reserve_cut ftruncates it to that. A space.reserve that is a symlink
 * (a store copied with cp -s or rsync -l from a layout that linked it, an operator who moved the
 * reserve to another disk, anyone who can write the store directory) has its TARGET cut: a file
 * outside the store loses everything past a few MiB. Before S13 the same open only fallocated
 * (a full disk also truncated the target to 0: the failed try "shrinks it back" to
 * reserve_bytes, 0 at open). */
#define BIG (96u << 20) /* more than twice what a new store wants (4 MiB + half a segment) */

static void make_store(const char *dir)
{
	struct kv_options o;
	struct kv_report rep;
	struct kv *s = NULL;
	kv_options_default(&o);
	o.segment_bytes = 1u << 20;
	o.cleaner = 0;
	memset(&rep, 0, sizeof(rep));
	ck_assert_int_eq(kv_open(&s, dir, &o, &rep), 0);
	ck_assert_int_eq(kv_put(s, "a", 1, "1", 1), 0);
	ck_assert_int_eq(kv_close(s), 0);
}

static int reopen(const char *dir)
{
	struct kv_options o;
	struct kv_report rep;
	struct kv *s = NULL;
	kv_options_default(&o);
	o.segment_bytes = 1u << 20;
	o.cleaner = 0;
	memset(&rep, 0, sizeof(rep));
	int rc = kv_open(&s, dir, &o, &rep);
	if (!rc)
		ck_assert_int_eq(kv_close(s), 0);
	return rc;
}

START_TEST(attack7_a_reserve_that_is_a_symlink_never_cuts_the_file_it_names)
{
	char tmp[256], dir[300], victim[300], link[340];
	struct stat st;
	static const char tail[] = "the last bytes of someone's file";

	ck_assert_int_eq(tu_tmpdir(tmp, sizeof(tmp)), 0);
	snprintf(dir, sizeof(dir), "%s/store", tmp);
	snprintf(victim, sizeof(victim), "%s/precious.img", tmp);
	snprintf(link, sizeof(link), "%s/space.reserve", dir);
	make_store(dir);

	/* a file outside the store, BIG bytes, its last ones written */
	int fd = open(victim, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, BIG), 0);
	ck_assert_int_eq(pwrite(fd, tail, sizeof(tail), BIG - sizeof(tail)), (ssize_t)sizeof(tail));
	ck_assert_int_eq(close(fd), 0);
	ck_assert_int_eq(unlink(link), 0);
	ck_assert_int_eq(symlink(victim, link), 0);

	int rc = reopen(dir);
	/* refusing the open (naming the file) or leaving the target alone both keep the promise */
	int src = stat(victim, &st);
	ck_assert_int_eq(tu_rmrf(tmp), 0);
	ck_assert_int_eq(src, 0);
	ck_assert_msg((uint64_t)st.st_size == BIG,
		      "kv_open (rc %d) cut the file space.reserve links to from %u to %lld bytes",
		      rc, BIG, (long long)st.st_size);
}
END_TEST

/* ---- finding 2: a sparse reserve that is kept is not allocated, yet counted whole ----
 * engine/store.c reserve_take at open: s->reserve_bytes = the file's size (have), kept when up to
 * twice what is wanted, but the fallocate that should make "a reserve a copy made sparse hold its
 * room again" (DESIGN.md, the space reserve) covers only [0, min(have, want)). A reserve that
 * cp --sparse, rsync -S or a backup tool left sparse, between want and 2 * want bytes long, stays
 * partly a hole: unlinking it (reserve_lend) frees less than s->lent_bytes says, and the
 * full-disk cleaner's budget (cleaner.c cleaner_make_room: reserve_room() = reserve_bytes -
 * floor) and the lent room (store.c set_lent) count room that is not there — up to want bytes
 * too many, the very over-spending that wedged a full disk before (FINDINGS.md 2, 3). */
START_TEST(attack7_an_open_allocates_all_of_the_sparse_reserve_it_keeps)
{
	char tmp[256], dir[300], res[340];
	struct stat st;

	ck_assert_int_eq(tu_tmpdir(tmp, sizeof(tmp)), 0);
	snprintf(dir, sizeof(dir), "%s/store", tmp);
	snprintf(res, sizeof(res), "%s/space.reserve", dir);
	make_store(dir);
	ck_assert_int_eq(stat(res, &st), 0);
	uint64_t taken = (uint64_t)st.st_size; /* about what a reopen wants */

	/* the same size and a half, all a hole: kept (not over twice), to be allocated again */
	uint64_t size = taken + taken / 2;
	ck_assert_int_eq(unlink(res), 0);
	int fd = open(res, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	ck_assert_int_eq(close(fd), 0);

	int rc = reopen(dir);
	int src = stat(res, &st);
	ck_assert_int_eq(tu_rmrf(tmp), 0);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_eq(src, 0);
	ck_assert_msg((uint64_t)st.st_size <= 2 * taken, "the reserve was %" PRIu64 ", now %lld bytes",
		      size, (long long)st.st_size);
	ck_assert_msg((uint64_t)st.st_blocks * 512 >= (uint64_t)st.st_size,
		      "the open kept a %lld-byte reserve with only %lld bytes of it allocated",
		      (long long)st.st_size, (long long)st.st_blocks * 512);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("attack7");
	TCase *tc = tcase_create("attack7");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, attack7_a_reserve_that_is_a_symlink_never_cuts_the_file_it_names);
	tcase_add_test(tc, attack7_an_open_allocates_all_of_the_sparse_reserve_it_keeps);
	suite_add_tcase(su, tc);
	return tu_run_suite(su);
}
