/* CRC-32C: known answers, every implementation against a bitwise reference, the incremental
 * property the log reader relies on, and crc32c_combine.
 *
 * KVFS_CRC32C_BENCH=1 build/tests/test_crc32c prints the speed of each implementation (MB/s at
 * 64 B, 4 KiB and 1 MiB, and crc32c_combine's ns per call) in alternating rounds, and runs no
 * test: timing never decides one. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "crc32c.h"
#include "testutil.h"

static uint64_t seed;

/* The definition, a bit at a time: register starts at ~crc, reflected polynomial 0x82F63B78. */
static uint32_t crc_bitwise(uint32_t crc, const unsigned char *p, size_t len)
{
	uint32_t r = ~crc;
	for (size_t i = 0; i < len; i++) {
		r ^= p[i];
		for (int k = 0; k < 8; k++)
			r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1u)));
	}
	return ~r;
}

static void fill_random(unsigned char *p, size_t len, uint64_t *state)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t w = tu_rand(state);
		memcpy(p + i, &w, len - i < 8 ? len - i : 8);
	}
}

static const char *impl_name(enum crc32c_impl i)
{
	return i == CRC32C_TABLE ? "table" : i == CRC32C_SSE42 ? "sse4.2" : "sse4.2+pclmul";
}

/* The implementations this CPU has, slowest first: limit crc32c to each in turn. A test that
 * loops over them covers the paths a machine without the instructions takes, too. */
#define FOR_EACH_IMPL(i)                                                               \
	for (enum crc32c_impl i = CRC32C_TABLE; i <= crc32c_best_impl();                   \
	     i = (enum crc32c_impl)(i + 1))                                                \
		if (crc32c_limit_impl(i), 1)

START_TEST(known_answer_123456789)
{
	/* the standard check value of CRC-32C */
	FOR_EACH_IMPL(i)
	ck_assert_msg(crc32c(0, "123456789", 9) == 0xE3069283u, "%s", impl_name(i));
}
END_TEST

START_TEST(known_answer_32_zero_bytes)
{
	unsigned char z[32] = { 0 };
	FOR_EACH_IMPL(i)
	ck_assert_msg(crc32c(0, z, sizeof z) == 0x8A9136AAu, "%s", impl_name(i));
}
END_TEST

START_TEST(empty_input_is_zero)
{
	FOR_EACH_IMPL(i)
	ck_assert_msg(crc32c(0, "", 0) == 0, "%s", impl_name(i));
}
END_TEST

START_TEST(limit_impl_returns_the_previous_limit)
{
	enum crc32c_impl was = crc32c_limit_impl(CRC32C_TABLE);
	ck_assert_int_eq(crc32c_limit_impl(CRC32C_SSE42), CRC32C_TABLE);
	ck_assert_int_eq(crc32c_limit_impl(was), CRC32C_SSE42);
}
END_TEST

START_TEST(every_impl_matches_the_definition_at_every_length_0_to_4096_and_alignment)
{
	enum { N = 4096 };
	static unsigned char src[N], buf[N + 8];
	static uint32_t want[N + 1];
	uint64_t st = seed ^ 0x1111;
	uint32_t s = (uint32_t)tu_rand(&st);

	fill_random(src, N, &st);
	for (int pass = 0; pass < 2; pass++) {
		uint32_t init = pass ? s : 0; /* from 0, and continuing from a random CRC */
		uint32_t r = ~init;
		for (size_t len = 0;; len++) {
			want[len] = ~r;
			if (len == N)
				break;
			r ^= src[len];
			for (int k = 0; k < 8; k++)
				r = (r >> 1) ^ (0x82F63B78u & (0u - (r & 1u)));
		}
		for (size_t a = 0; a < 8; a++) {
			memcpy(buf + a, src, N);
			FOR_EACH_IMPL(i)
			for (size_t len = 0; len <= N; len++)
				if (crc32c(init, buf + a, len) != want[len])
					ck_abort_msg("%s: crc32c(0x%08x, %zu bytes at alignment %zu) is 0x%08x, "
						     "not 0x%08x (seed %llu)", impl_name(i), init, len, a,
						     crc32c(init, buf + a, len), want[len],
						     (unsigned long long)seed);
		}
	}
}
END_TEST

/* Lengths at which the three-lane path changes how it cuts a buffer: it starts at 128 bytes,
 * cuts lanes of len/24 words up to 8 KiB each (rounds of 24 KiB), and leaves a tail under 128
 * bytes to one chain. */
static const size_t edge_lengths[] = {
	127, 128, 129, 135, 136, 143, 144, 151, 152, 255, 256, 257, 263, 264, 279, 280, 511, 512,
	767, 768, 769, 24575, 24576, 24577, 24583, 24599, 24600, 24576 + 127, 24576 + 128,
	24576 + 129, 49151, 49152, 49153, 49152 + 127, 49152 + 128, 3 * 24576 + 23, 4096, 65536,
	1 << 20, (1 << 20) + 1, (1 << 20) - 1,
};

START_TEST(every_impl_matches_the_definition_on_long_buffers_and_near_lane_edges)
{
	enum { MAX = 6 << 20 };
	unsigned char *buf = malloc(MAX + 8);
	uint64_t st = seed ^ 0x2222;
	size_t n_edge = sizeof edge_lengths / sizeof edge_lengths[0];

	ck_assert_ptr_nonnull(buf);
	fill_random(buf, MAX + 8, &st);
	for (size_t t = 0; t < n_edge + 6; t++) {
		/* edge lengths at alignments 0..7 in turn, then random lengths up to 6 MiB */
		size_t len = t < n_edge ? edge_lengths[t] : 1 + tu_rand(&st) % MAX;
		size_t a = t < n_edge ? t % 8 : tu_rand(&st) % 8;
		uint32_t init = (uint32_t)tu_rand(&st);
		uint32_t want = crc_bitwise(init, buf + a, len);
		FOR_EACH_IMPL(i)
		ck_assert_msg(crc32c(init, buf + a, len) == want,
			      "%s: %zu bytes at alignment %zu from 0x%08x (seed %llu)", impl_name(i), len,
			      a, init, (unsigned long long)seed);
	}
	free(buf);
}
END_TEST

START_TEST(incremental_equals_one_shot_at_every_split)
{
	unsigned char buf[1301];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)(i * 131 + 7);
	FOR_EACH_IMPL(i)
	{
		uint32_t whole = crc32c(0, buf, sizeof buf);
		for (size_t cut = 0; cut <= sizeof buf; cut++)
			ck_assert_msg(crc32c(crc32c(0, buf, cut), buf + cut, sizeof buf - cut) == whole,
				      "%s: cut at %zu", impl_name(i), cut);
	}
}
END_TEST

START_TEST(unaligned_start_gives_same_answer)
{
	unsigned char buf[80];
	for (size_t i = 0; i < sizeof buf; i++)
		buf[i] = (unsigned char)i;
	uint32_t ref = crc32c(0, buf + 8, 64);
	for (size_t a = 0; a < 8; a++) {
		unsigned char copy[80];
		memcpy(copy + a, buf + 8, 64);
		ck_assert_uint_eq(crc32c(0, copy + a, 64), ref);
	}
}
END_TEST

START_TEST(combine_equals_crc_of_the_concatenation_at_random_splits)
{
	enum { MAX = 1 << 20 };
	unsigned char *buf = malloc(MAX);
	uint64_t st = seed ^ 0x3333;

	ck_assert_ptr_nonnull(buf);
	fill_random(buf, MAX, &st);
	for (int t = 0; t < 200; t++) {
		size_t len = t < 100 ? tu_rand(&st) % 2048 : tu_rand(&st) % (MAX + 1);
		/* the first split of each kind is at an end: an empty A, then an empty B */
		size_t cut = t % 100 == 0 ? 0 : t % 100 == 1 ? len : tu_rand(&st) % (len + 1);
		FOR_EACH_IMPL(i)
		{
			uint32_t whole = crc32c(0, buf, len);
			uint32_t got = crc32c_combine(crc32c(0, buf, cut), crc32c(0, buf + cut, len - cut),
						      len - cut);
			ck_assert_msg(got == whole, "%s: %zu bytes cut at %zu (seed %llu)", impl_name(i),
				      len, cut, (unsigned long long)seed);
		}
	}
	free(buf);
}
END_TEST

START_TEST(combine_over_zero_bytes_is_the_crc_itself_xored)
{
	uint64_t st = seed ^ 0x4444;
	FOR_EACH_IMPL(i)
	for (int t = 0; t < 100; t++) {
		uint32_t a = (uint32_t)tu_rand(&st), b = (uint32_t)tu_rand(&st);
		ck_assert_msg(crc32c_combine(a, b, 0) == (a ^ b), "%s", impl_name(i));
	}
}
END_TEST

START_TEST(combine_over_huge_lengths_composes_and_every_impl_agrees)
{
	/* No buffer that long exists, so: shifting over m then n bytes is shifting over m + n, and
	 * the implementations, whose arithmetic differs, give the same answers. */
	uint64_t st = seed ^ 0x5555;
	for (int t = 0; t < 300; t++) {
		int bits = 1 + (int)(tu_rand(&st) % 62);
		uint64_t m = tu_rand(&st) >> (64 - bits), n = tu_rand(&st) >> (64 - bits);
		if (t == 0)
			m = n = UINT64_C(1) << 62; /* the sum's top bit */
		uint32_t a = (uint32_t)tu_rand(&st), b = (uint32_t)tu_rand(&st);
		uint32_t want_ab = 0, want_shift = 0;
		FOR_EACH_IMPL(i)
		{
			uint32_t ab = crc32c_combine(a, b, m + n);
			uint32_t shift = crc32c_combine(crc32c_combine(a, 0, m), 0, n);
			ck_assert_msg(shift == crc32c_combine(a, 0, m + n),
				      "%s: over %llu then %llu bytes (seed %llu)", impl_name(i),
				      (unsigned long long)m, (unsigned long long)n,
				      (unsigned long long)seed);
			if (i == CRC32C_TABLE) {
				want_ab = ab;
				want_shift = shift;
			}
			ck_assert_msg(ab == want_ab && shift == want_shift,
				      "%s differs from the table over %llu bytes (seed %llu)", impl_name(i),
				      (unsigned long long)(m + n), (unsigned long long)seed);
		}
	}
}
END_TEST

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Speed, printed only: rounds alternate the implementations so load from other processes falls
 * on all of them alike; each figure is the median and the best of the rounds. */
enum { BENCH_ROUNDS = 9, BENCH_SIZES = 3 };

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void bench(void)
{
	static const size_t sizes[BENCH_SIZES] = { 64, 4096, 1 << 20 };
	static double mbs[3][BENCH_SIZES + 1][BENCH_ROUNDS]; /* [impl][size, then combine][round] */
	size_t total = 16 << 20;
	unsigned char *buf = malloc(1 << 20);
	double load[3] = { -1, -1, -1 };
	uint32_t sink = 0;
	uint64_t st = 42;

	if (!buf)
		return;
	fill_random(buf, 1 << 20, &st);
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	printf("load average %.2f %.2f %.2f before\n", load[0], load[1], load[2]);
	for (int round = 0; round < BENCH_ROUNDS; round++) {
		FOR_EACH_IMPL(i)
		{
			for (size_t z = 0; z < BENCH_SIZES; z++) {
				size_t reps = total / sizes[z];
				double t0 = now_s();
				for (size_t r = 0; r < reps; r++)
					sink += crc32c(sink, buf, sizes[z]);
				mbs[i][z][round] = (double)(reps * sizes[z]) / (now_s() - t0) / 1e6;
			}
			/* lengths of up to 1 MiB, as record.c joins a value's chunk CRCs */
			double t0 = now_s();
			for (uint32_t r = 0; r < 200000; r++)
				sink = crc32c_combine(sink, r, 1 + (r * 2654435761u) % (1u << 20));
			mbs[i][BENCH_SIZES][round] = (now_s() - t0) * 1e9 / 200000; /* ns per call */
		}
	}
	FOR_EACH_IMPL(i)
	{
		printf("%-14s", impl_name(i));
		for (size_t z = 0; z <= BENCH_SIZES; z++) {
			qsort(mbs[i][z], BENCH_ROUNDS, sizeof(double), cmp_double);
			if (z < BENCH_SIZES)
				printf("  %7zu B %6.0f (best %6.0f) MB/s", sizes[z], mbs[i][z][BENCH_ROUNDS / 2],
				       mbs[i][z][BENCH_ROUNDS - 1]);
			else
				printf("  combine %5.0f (best %5.0f) ns\n", mbs[i][z][BENCH_ROUNDS / 2],
				       mbs[i][z][0]);
		}
	}
	if (getloadavg(load, 3) < 0)
		load[0] = -1;
	printf("load average %.2f %.2f %.2f after (sink %08x)\n", load[0], load[1], load[2], sink);
	free(buf);
}

static Suite *crc_suite(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, known_answer_123456789);
	tcase_add_test(tc, known_answer_32_zero_bytes);
	tcase_add_test(tc, empty_input_is_zero);
	tcase_add_test(tc, limit_impl_returns_the_previous_limit);
	tcase_add_test(tc, every_impl_matches_the_definition_at_every_length_0_to_4096_and_alignment);
	tcase_add_test(tc, every_impl_matches_the_definition_on_long_buffers_and_near_lane_edges);
	tcase_add_test(tc, incremental_equals_one_shot_at_every_split);
	tcase_add_test(tc, unaligned_start_gives_same_answer);
	tcase_add_test(tc, combine_equals_crc_of_the_concatenation_at_random_splits);
	tcase_add_test(tc, combine_over_zero_bytes_is_the_crc_itself_xored);
	tcase_add_test(tc, combine_over_huge_lengths_composes_and_every_impl_agrees);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	if (getenv("KVFS_CRC32C_BENCH")) {
		bench();
		return EXIT_SUCCESS;
	}
	seed = tu_seed();
	printf("crc32c: this CPU's fastest implementation is %s\n", impl_name(crc32c_best_impl()));
	SRunner *sr = srunner_create(crc_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
