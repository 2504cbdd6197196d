/* promise: promised space in the engine (engine/space.h) on the simulated disk
 * (faultio_set_capacity) — what posix_fallocate through the mount stands on (FILESYSTEM.md §4,
 * DESIGN.md §6; the mount's own tests are test_prealloc.c). A promise is held on the disk when
 * it is made, or refused; a write consuming it goes through on a full disk where any other write
 * fails; releasing it gives the room back; the count set at a reopen is held again. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simstore.h"
#include "testutil.h"

#define CAPACITY (8u << 20)
#define SEGMENT (64u << 10)
#define PIECE (64u << 10)

static uint8_t piece[PIECE];

/* Values of PIECE bytes under "fill%04d" until ENOSPC; how many went in. */
static int fill_the_disk(struct kv *s)
{
	char k[16];
	int n = 0, rc;

	memset(piece, 'f', sizeof(piece));
	for (;; n++) {
		snprintf(k, sizeof k, "fill%04d", n);
		rc = kv_put(s, k, strlen(k), piece, PIECE);
		if (rc)
			break;
		ck_assert_msg(n < 10000, "the disk never filled");
	}
	ck_assert_msg(rc == -ENOSPC, "filling the disk ended with %s, not ENOSPC", strerror(-rc));
	return n;
}

/* The write of PIECE bytes at off into key "f", through kv_apply_promised with `promised`. */
static int write_piece(struct kv *s, uint64_t off, uint64_t promised)
{
	struct kv_batch *b = NULL;
	int rc;

	memset(piece, 'p', sizeof(piece));
	ck_assert_int_eq(kv_batch_new(&b), 0);
	ck_assert_int_eq(kv_batch_write(b, "f", 1, off, piece, PIECE), 0);
	rc = kv_apply_promised(s, b, promised, NULL);
	kv_batch_free(b);
	return rc;
}

/* A store on a disk of CAPACITY with the empty file "f" and cost bytes promised to it. */
static struct kv *promised_to_f(struct faultio *f, uint64_t cost)
{
	faultio_set_capacity(f, CAPACITY);
	struct kv *s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_put(s, "f", 1, NULL, 0), 0);
	ck_assert_int_eq(kv_promise(s, cost), 0);
	return s;
}

/* Pieces from..n-1 of "f", each consuming each bytes of the promise: every one goes through
 * (when names the moment in a failure's words). */
static void consume(struct kv *s, int from, int n, uint64_t each, const char *when)
{
	for (int i = from; i < n; i++) {
		int rc = write_piece(s, (uint64_t)i * PIECE, each);
		ck_assert_msg(rc == 0, "consuming write %d%s: %s", i, when, strerror(-rc));
	}
}

START_TEST(a_promise_beyond_the_free_space_is_refused_and_holds_nothing)
{
	struct faultio *f = sim_disk();
	uint64_t promised, held;

	faultio_set_capacity(f, CAPACITY);
	struct kv *s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_promise(s, 2ull * CAPACITY), -ENOSPC);
	kv_promise_stats(s, &promised, &held);
	ck_assert_uint_eq(promised, 0);
	ck_assert_uint_eq(held, 0);
	ck_assert_int_eq(kv_put(s, "after", 5, "v", 1), 0); /* the refusal took no room */
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(a_write_consuming_a_promise_goes_through_on_a_full_disk_and_no_other_does)
{
	struct faultio *f = sim_disk();
	uint64_t cost = kv_promise_cost(4 * PIECE, 1, 0), promised, held;

	struct kv *s = promised_to_f(f, cost);
	ck_assert_int_gt(fill_the_disk(s), 0);
	ck_assert_int_eq(write_piece(s, 0, 0), -ENOSPC); /* not consuming: an ordinary write */
	consume(s, 0, 4, cost / 4, " on the full disk");
	kv_promise_stats(s, &promised, &held); /* consumed; the margin the writes did not need went back */
	ck_assert_uint_eq(promised, 0);
	ck_assert_uint_eq(held, 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The first consuming write on the full disk makes a segment of a chunk from the promise file;
 * its room beyond that record is still promised, and another write may not take it. */
START_TEST(the_room_a_consuming_write_took_stays_promised_to_the_next_ones)
{
	struct faultio *f = sim_disk();
	uint64_t cost = kv_promise_cost(8 * PIECE, 1, 0) + KV_PROMISE_SLACK;

	struct kv *s = promised_to_f(f, cost);
	ck_assert_int_gt(fill_the_disk(s), 0);
	ck_assert_int_eq(write_piece(s, 0, cost / 8), 0);
	memset(piece, 'o', sizeof(piece));
	ck_assert_int_eq(kv_put(s, "other", 5, piece, PIECE), -ENOSPC);
	consume(s, 1, 8, cost / 8, " on the full disk");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(releasing_a_promise_gives_its_room_to_other_writes)
{
	struct faultio *f = sim_disk();

	faultio_set_capacity(f, CAPACITY);
	struct kv *s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_promise(s, 1u << 20), 0);
	ck_assert_int_gt(fill_the_disk(s), 0);
	kv_promise_release(s, 1u << 20);
	ck_assert_int_eq(kv_put(s, "after", 5, piece, PIECE), 0);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The promise file keeps its room while the store is closed; the owner's count is held again. */
START_TEST(the_count_set_at_a_reopen_is_held_again_on_a_disk_that_filled)
{
	struct faultio *f = sim_disk();
	uint64_t cost = kv_promise_cost(4 * PIECE, 1, 0), promised, held;

	struct kv *s = promised_to_f(f, cost);
	ck_assert_int_gt(fill_the_disk(s), 0);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_promise_set(s, cost), 0);
	kv_promise_stats(s, &promised, &held);
	ck_assert_uint_eq(promised, cost);
	ck_assert_uint_eq(held, cost);
	consume(s, 0, 4, cost / 4, " after the reopen");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The promise file marks a store whose owner must sum its records at open, also once nothing is
 * promised any more: a crash may lose the release's record, and its promise must come back. */
START_TEST(a_store_that_ever_promised_says_so_after_a_reopen)
{
	struct faultio *f = sim_disk();

	struct kv *s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_promise_ever(s), 0);
	ck_assert_int_eq(kv_promise(s, 1u << 20), 0);
	kv_promise_release(s, 1u << 20);
	ck_assert_int_eq(kv_close(s), 0);
	s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_promise_ever(s), 1);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

/* The operator's lines, kept for a test to read. */
static char said[4096];

static void keep_log(void *arg, const char *line)
{
	(void)arg;
	snprintf(said + strlen(said), sizeof(said) - strlen(said), "%s\n", line);
}

/* The file deleted while the store was closed (attack5 finding 2): the owner's count makes it
 * again, holding all of it, and the store says the file was missing — what it held may have gone
 * to other files meanwhile. (The owner knows to sum by a record of its own: the file's absence
 * reads as "never promised", kv_promise_ever 0.) */
START_TEST(a_count_set_after_the_promise_file_was_deleted_makes_it_again_and_says_so)
{
	struct faultio *f = sim_disk();
	uint64_t cost = kv_promise_cost(4 * PIECE, 1, 0), promised, held, size = 0;
	struct kv_options o;
	struct kv_report rep;
	bool dir;

	struct kv *s = promised_to_f(f, cost);
	ck_assert_int_eq(kv_close(s), 0);
	ck_assert_int_eq(faultio_remove(f, SIM_DIR "/" "space.promise"), 0);

	o = sim_options(f);
	o.segment_bytes = SEGMENT;
	o.log = keep_log;
	said[0] = '\0';
	s = sim_open_with(&o, &rep);
	ck_assert_int_eq(kv_promise_ever(s), 0);
	ck_assert_int_eq(kv_promise_set(s, cost), 0);
	ck_assert_msg(strstr(said, "space.promise was missing"), "the store said: '%s'", said);
	ck_assert_int_eq(faultio_stat(f, SIM_DIR "/space.promise", &dir, &size), 0);
	ck_assert_uint_ge(size, cost);
	kv_promise_stats(s, &promised, &held);
	ck_assert_uint_eq(held, cost);
	ck_assert_int_gt(fill_the_disk(s), 0);
	consume(s, 0, 4, cost / 4, "");
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

START_TEST(allocated_range_counts_only_the_bytes_holding_data)
{
	struct faultio *f = sim_disk();
	uint64_t bytes;

	struct kv *s = sim_open_seg(f, SEGMENT, NULL);
	ck_assert_int_eq(kv_put(s, "f", 1, NULL, 0), 0);
	ck_assert_int_eq(kv_write(s, "f", 1, 4096, "abcd", 4), 0);
	ck_assert_int_eq(kv_write(s, "f", 1, 10000, "xy", 2), 0);
	ck_assert_int_eq(kv_allocated_range(s, "f", 1, 0, 4096, &bytes), 0);
	ck_assert_uint_eq(bytes, 0);
	ck_assert_int_eq(kv_allocated_range(s, "f", 1, 4098, 8000, &bytes), 0);
	ck_assert_uint_eq(bytes, 2 + 2);
	ck_assert_int_eq(kv_allocated_range(s, "f", 1, 0, 1u << 20, &bytes), 0);
	ck_assert_uint_eq(bytes, 6);
	ck_assert_int_eq(kv_allocated_range(s, "g", 1, 0, 1, &bytes), -ENOENT);
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("promise");
	TCase *tc = tcase_create("promise");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, a_promise_beyond_the_free_space_is_refused_and_holds_nothing);
	tcase_add_test(tc, a_write_consuming_a_promise_goes_through_on_a_full_disk_and_no_other_does);
	tcase_add_test(tc, the_room_a_consuming_write_took_stays_promised_to_the_next_ones);
	tcase_add_test(tc, releasing_a_promise_gives_its_room_to_other_writes);
	tcase_add_test(tc, the_count_set_at_a_reopen_is_held_again_on_a_disk_that_filled);
	tcase_add_test(tc, a_store_that_ever_promised_says_so_after_a_reopen);
	tcase_add_test(tc, a_count_set_after_the_promise_file_was_deleted_makes_it_again_and_says_so);
	tcase_add_test(tc, allocated_range_counts_only_the_bytes_holding_data);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
