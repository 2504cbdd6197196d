/* The in-memory index: ordering, values and holes, copy-on-write views, renames, limits, memory
 * accounting, all-or-nothing failure, and a randomised run against a plain sorted-array model. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"
#include "testutil.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* ---- helpers ---------------------------------------------------------------------------- */

static struct kvindex *new_index(void)
{
	struct kvindex *ix;

	ck_assert_int_eq(kvindex_create(&ix), 0);
	return ix;
}

static void put_str(struct kvindex *ix, const char *key, const char *val)
{
	ck_assert_int_eq(kvindex_put(ix, key, strlen(key), NULL, 0, val, strlen(val)), 0);
}

/* The whole value, malloc'd (at least one byte so an empty value is not NULL). */
static unsigned char *read_all(const struct kvval *v)
{
	uint64_t size = kvval_size(v);
	unsigned char *buf = malloc(size ? size : 1);

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(kvval_read(v, 0, buf, size), size);
	return buf;
}

static void expect_value(const struct kvindex *ix, const void *key, size_t klen, const void *val,
			 size_t vlen)
{
	const struct kvval *v = kvindex_find(ix, key, klen);
	unsigned char *got;

	ck_assert_msg(v != NULL, "key of %zu bytes missing", klen);
	ck_assert_uint_eq(kvval_size(v), vlen);
	got = read_all(v);
	ck_assert_msg(!memcmp(got, val, vlen), "value differs");
	free(got);
}

static void expect_str(const struct kvindex *ix, const char *key, const char *val)
{
	expect_value(ix, key, strlen(key), val, strlen(val));
}

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void fill_pattern(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)((i * 131 + seed * 7 + (i >> 13)) | 1);
}

/* memcmp order, a proper prefix first: what the index promises. */
static int ref_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

/* A canonical dump of every entry (key, meta, value, in order) for before/after comparisons. */
struct dump {
	unsigned char *buf;
	size_t len, cap;
};

static void dump_add(struct dump *d, const void *p, size_t n)
{
	if (d->len + n + 8 > d->cap) {
		d->cap = (d->len + n + 8) * 2;
		d->buf = realloc(d->buf, d->cap);
		ck_assert_ptr_nonnull(d->buf);
	}
	memcpy(d->buf + d->len, &n, sizeof(n));
	memcpy(d->buf + d->len + sizeof(n), p, n);
	d->len += sizeof(n) + n;
}

static struct dump dump_cursor(struct kvcursor *c)
{
	struct dump d = { NULL, 0, 0 };
	const void *k;
	size_t kl, ml;
	const struct kvval *v;

	while (kvcursor_next(c, &k, &kl, &v)) {
		const void *meta = kvval_meta(v, &ml);
		unsigned char *val = read_all(v);

		dump_add(&d, k, kl);
		dump_add(&d, meta, ml);
		dump_add(&d, val, kvval_size(v));
		free(val);
	}
	kvcursor_close(c);
	return d;
}

static struct dump dump_live(const struct kvindex *ix)
{
	struct kvcursor *c;

	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	return dump_cursor(c);
}

static struct dump dump_view(const struct kvview *v)
{
	struct kvcursor *c;

	ck_assert_int_eq(kvcursor_open_view(v, NULL, 0, &c), 0);
	return dump_cursor(c);
}

static bool dump_eq(const struct dump *a, const struct dump *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->buf, b->buf, a->len));
}

static void fill_numbered(struct kvindex *ix, unsigned n, const char *fmt)
{
	char key[64], val[64];

	for (unsigned i = 0; i < n; i++) {
		snprintf(key, sizeof(key), fmt, i);
		snprintf(val, sizeof(val), "value-%u", i);
		put_str(ix, key, val);
	}
}

/* ---- basic behaviour -------------------------------------------------------------------- */

START_TEST(put_then_find_returns_value)
{
	struct kvindex *ix = new_index();
	const struct kvval *v;
	size_t mlen;

	ck_assert_int_eq(kvindex_put(ix, "alpha", 5, "M", 1, "first value", 11), 0);
	v = kvindex_find(ix, "alpha", 5);
	ck_assert_ptr_nonnull(v);
	ck_assert_uint_eq(kvval_size(v), 11);
	ck_assert(!memcmp(kvval_meta(v, &mlen), "M", 1));
	ck_assert_uint_eq(mlen, 1);
	expect_str(ix, "alpha", "first value");
	ck_assert_uint_eq(kvindex_count(ix), 1);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(find_absent_returns_null)
{
	struct kvindex *ix = new_index();

	ck_assert_ptr_null(kvindex_find(ix, "x", 1));
	fill_numbered(ix, 1000, "k%05u");
	ck_assert_ptr_null(kvindex_find(ix, "k", 1));
	ck_assert_ptr_null(kvindex_find(ix, "k00010x", 7));
	ck_assert_ptr_null(kvindex_find(ix, "", 0));
	ck_assert_ptr_null(kvindex_find(ix, "zzz", 3));
	kvindex_destroy(ix);
}
END_TEST

START_TEST(put_replaces_value_and_meta_wholesale)
{
	struct kvindex *ix = new_index();
	size_t mlen;

	ck_assert_int_eq(kvindex_put(ix, "k", 1, "meta-one", 8, "a long first value", 18), 0);
	ck_assert_int_eq(kvindex_put(ix, "k", 1, "m2", 2, "v2", 2), 0);
	expect_str(ix, "k", "v2");
	ck_assert(!memcmp(kvval_meta(kvindex_find(ix, "k", 1), &mlen), "m2", 2));
	ck_assert_uint_eq(mlen, 2);
	ck_assert_uint_eq(kvindex_count(ix), 1);
	ck_assert_uint_eq(kvindex_bytes(ix), 1 + 2);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(empty_key_is_a_key_and_sorts_first)
{
	struct kvindex *ix = new_index();
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;

	put_str(ix, "a", "A");
	ck_assert_int_eq(kvindex_put(ix, "", 0, NULL, 0, "empty", 5), 0);
	expect_value(ix, "", 0, "empty", 5);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
	ck_assert_uint_eq(kl, 0);
	ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
	ck_assert_uint_eq(kl, 1);
	kvcursor_close(c);
	ck_assert_int_eq(kvindex_del(ix, "", 0), 0);
	ck_assert_ptr_null(kvindex_find(ix, "", 0));
	kvindex_destroy(ix);
}
END_TEST

struct rkey {
	unsigned char b[24];
	size_t len;
};

static int rkey_cmp(const void *a, const void *b)
{
	const struct rkey *x = a, *y = b;

	return ref_cmp(x->b, x->len, y->b, y->len);
}

START_TEST(keys_iterate_in_memcmp_order)
{
	enum { N = 20000 };
	struct kvindex *ix = new_index();
	struct rkey *keys = malloc(N * sizeof(*keys));
	uint64_t rs = tu_seed() ^ 0x1234;
	size_t n = 0, i = 0;
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;

	for (size_t j = 0; j < N; j++) {
		struct rkey *r = &keys[n];

		r->len = tu_rand(&rs) % 20;
		for (size_t b = 0; b < r->len; b++)   /* few distinct bytes: many shared prefixes */
			r->b[b] = "\x00\x01\x7f\x80\xff"[tu_rand(&rs) % 5];
		if (!kvindex_find(ix, r->b, r->len))
			n++;
		ck_assert_int_eq(kvindex_put(ix, r->b, r->len, NULL, 0, &j, sizeof(j)), 0);
	}
	ck_assert_uint_eq(kvindex_count(ix), n);
	qsort(keys, n, sizeof(*keys), rkey_cmp);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	while (kvcursor_next(c, &k, &kl, &v)) {
		ck_assert_uint_lt(i, n);
		ck_assert_uint_eq(kl, keys[i].len);
		ck_assert(!kl || !memcmp(k, keys[i].b, kl));
		i++;
	}
	ck_assert_uint_eq(i, n);
	kvcursor_close(c);
	free(keys);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(shorter_prefix_sorts_first)
{
	static const struct {
		const char *k;
		size_t len;
	} order[] = { { "ab", 2 }, { "ab\0", 3 }, { "ab\0\0", 4 }, { "ab\x01", 3 }, { "abc", 3 },
		      { "abc\xff", 4 }, { "abd", 3 } };
	struct kvindex *ix = new_index();
	struct kvcursor *c;
	const void *k;
	size_t kl, i;
	const struct kvval *v;

	for (i = sizeof(order) / sizeof(order[0]); i-- > 0;)
		ck_assert_int_eq(kvindex_put(ix, order[i].k, order[i].len, NULL, 0, "v", 1), 0);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	for (i = 0; kvcursor_next(c, &k, &kl, &v); i++) {
		ck_assert_uint_eq(kl, order[i].len);
		ck_assert(!memcmp(k, order[i].k, kl));
	}
	ck_assert_uint_eq(i, sizeof(order) / sizeof(order[0]));
	kvcursor_close(c);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(binary_keys_with_nul_are_distinct)
{
	struct kvindex *ix = new_index();

	ck_assert_int_eq(kvindex_put(ix, "a", 1, NULL, 0, "1", 1), 0);
	ck_assert_int_eq(kvindex_put(ix, "a\0", 2, NULL, 0, "2", 1), 0);
	ck_assert_int_eq(kvindex_put(ix, "a\0b", 3, NULL, 0, "3", 1), 0);
	ck_assert_int_eq(kvindex_put(ix, "a\0c", 3, NULL, 0, "4", 1), 0);
	ck_assert_int_eq(kvindex_put(ix, "\0", 1, NULL, 0, "5", 1), 0);
	ck_assert_uint_eq(kvindex_count(ix), 5);
	expect_value(ix, "a", 1, "1", 1);
	expect_value(ix, "a\0", 2, "2", 1);
	expect_value(ix, "a\0b", 3, "3", 1);
	expect_value(ix, "a\0c", 3, "4", 1);
	expect_value(ix, "\0", 1, "5", 1);
	ck_assert_ptr_null(kvindex_find(ix, "a\0\0", 3));
	kvindex_destroy(ix);
}
END_TEST

START_TEST(keys_sharing_long_prefixes_are_found)
{
	/* longer shared prefixes than a node keeps inline */
	struct kvindex *ix = new_index();
	char key[300];

	memset(key, 'p', 200);
	for (unsigned i = 0; i < 5000; i++) {
		int n = snprintf(key + 200, 100, "%u", i * 7919 % 5000);

		ck_assert_int_eq(kvindex_put(ix, key, 200 + n, NULL, 0, &i, sizeof(i)), 0);
	}
	for (unsigned i = 0; i < 5000; i++) {
		int n = snprintf(key + 200, 100, "%u", i);
		const struct kvval *v = kvindex_find(ix, key, 200 + n);

		ck_assert_ptr_nonnull(v);
	}
	ck_assert_uint_eq(kvindex_count(ix), 5000);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(delete_removes_entry_and_absent_is_enoent)
{
	struct kvindex *ix = new_index();

	ck_assert_int_eq(kvindex_del(ix, "a", 1), -ENOENT);
	put_str(ix, "a", "1");
	put_str(ix, "b", "2");
	ck_assert_int_eq(kvindex_del(ix, "a", 1), 0);
	ck_assert_ptr_null(kvindex_find(ix, "a", 1));
	ck_assert_int_eq(kvindex_del(ix, "a", 1), -ENOENT);
	expect_str(ix, "b", "2");
	ck_assert_uint_eq(kvindex_count(ix), 1);
	kvindex_destroy(ix);
}
END_TEST

static void expect_exactly(const struct kvindex *ix, const bool *present, unsigned n)
{
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;
	char key[32];
	unsigned expected = 0, seen = 0, next = 0;

	for (unsigned i = 0; i < n; i++)
		expected += present[i];
	ck_assert_uint_eq(kvindex_count(ix), expected);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	while (kvcursor_next(c, &k, &kl, &v)) {
		while (next < n && !present[next])
			next++;
		ck_assert_uint_lt(next, n);
		snprintf(key, sizeof(key), "key%08u", next);
		ck_assert_uint_eq(kl, strlen(key));
		ck_assert(!memcmp(k, key, kl));
		next++;
		seen++;
	}
	kvcursor_close(c);
	ck_assert_uint_eq(seen, expected);
	for (unsigned i = 0; i < n; i += 97) {
		snprintf(key, sizeof(key), "key%08u", i);
		ck_assert((kvindex_find(ix, key, strlen(key)) != NULL) == present[i]);
	}
}

START_TEST(delete_rebalances_and_keeps_order)
{
	enum { N = 30000 };
	struct kvindex *ix = new_index();
	bool *present = calloc(N, sizeof(*present));
	uint64_t rs = tu_seed() ^ 0xde1e7e;
	char key[32];
	unsigned i;

	fill_numbered(ix, N, "key%08u");
	for (i = 0; i < N; i++)
		present[i] = true;
	for (i = 0; i < N; i += 2) {    /* every other key */
		snprintf(key, sizeof(key), "key%08u", i);
		ck_assert_int_eq(kvindex_del(ix, key, strlen(key)), 0);
		present[i] = false;
	}
	expect_exactly(ix, present, N);
	for (i = 5000; i < 25000; i++) {        /* a contiguous run: whole subtrees empty */
		snprintf(key, sizeof(key), "key%08u", i);
		ck_assert_int_eq(kvindex_del(ix, key, strlen(key)), present[i] ? 0 : -ENOENT);
		present[i] = false;
	}
	expect_exactly(ix, present, N);
	for (unsigned j = 0; j < 3 * N; j++) {  /* random deletes and re-inserts */
		i = tu_rand(&rs) % N;
		snprintf(key, sizeof(key), "key%08u", i);
		if (present[i] && tu_rand(&rs) % 4) {
			ck_assert_int_eq(kvindex_del(ix, key, strlen(key)), 0);
			present[i] = false;
		} else if (!present[i] && !(tu_rand(&rs) % 8)) {
			put_str(ix, key, "again");
			present[i] = true;
		}
	}
	expect_exactly(ix, present, N);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key%08u", i);
		ck_assert_int_eq(kvindex_del(ix, key, strlen(key)), present[i] ? 0 : -ENOENT);
		present[i] = false;
	}
	expect_exactly(ix, present, N);
	ck_assert_uint_eq(kvindex_bytes(ix), 0);
	ck_assert_uint_eq(kvindex_mem(ix), 0);
	free(present);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(count_and_bytes_follow_every_mutation)
{
	struct kvindex *ix = new_index();

	ck_assert_uint_eq(kvindex_count(ix), 0);
	ck_assert_uint_eq(kvindex_bytes(ix), 0);
	put_str(ix, "abc", "12345");                    /* 3 + 5 */
	ck_assert_uint_eq(kvindex_bytes(ix), 8);
	ck_assert_int_eq(kvindex_write(ix, "abc", 3, 10, "xy", 2), 0);  /* size 12 */
	ck_assert_uint_eq(kvindex_bytes(ix), 15);
	ck_assert_int_eq(kvindex_write(ix, "new", 3, 0, "q", 1), 0);
	ck_assert_uint_eq(kvindex_count(ix), 2);
	ck_assert_uint_eq(kvindex_bytes(ix), 15 + 4);
	ck_assert_int_eq(kvindex_truncate(ix, "abc", 3, 200000), 0);
	ck_assert_uint_eq(kvindex_bytes(ix), 3 + 200000 + 4);
	ck_assert_int_eq(kvindex_rename(ix, "abc", 3, "abcdef", 6), 0);
	ck_assert_uint_eq(kvindex_bytes(ix), 6 + 200000 + 4);
	ck_assert_int_eq(kvindex_rename(ix, "new", 3, "abcdef", 6), 0);    /* replaces */
	ck_assert_uint_eq(kvindex_count(ix), 1);
	ck_assert_uint_eq(kvindex_bytes(ix), 6 + 1);
	ck_assert_int_eq(kvindex_truncate(ix, "t", 1, 0), 0);
	ck_assert_uint_eq(kvindex_count(ix), 2);
	ck_assert_uint_eq(kvindex_bytes(ix), 6 + 1 + 1);
	ck_assert_int_eq(kvindex_del(ix, "abcdef", 6), 0);
	ck_assert_int_eq(kvindex_del(ix, "t", 1), 0);
	ck_assert_uint_eq(kvindex_count(ix), 0);
	ck_assert_uint_eq(kvindex_bytes(ix), 0);
	ck_assert_uint_eq(kvindex_mem(ix), 0);
	kvindex_destroy(ix);
}
END_TEST

/* ---- values ----------------------------------------------------------------------------- */

START_TEST(write_creates_empty_entry_and_zero_fills_gap)
{
	struct kvindex *ix = new_index();
	const struct kvval *v;
	unsigned char *got;
	size_t mlen;

	ck_assert_int_eq(kvindex_write(ix, "f", 1, 10, "xyz", 3), 0);
	v = kvindex_find(ix, "f", 1);
	ck_assert_ptr_nonnull(v);
	kvval_meta(v, &mlen);
	ck_assert_uint_eq(mlen, 0);
	ck_assert_uint_eq(kvval_size(v), 13);
	got = read_all(v);
	ck_assert(all_zero(got, 10));
	ck_assert(!memcmp(got + 10, "xyz", 3));
	free(got);
	ck_assert_int_eq(kvindex_write(ix, "f", 1, 20, "!", 1), 0);
	got = read_all(kvindex_find(ix, "f", 1));
	ck_assert(all_zero(got + 13, 7));
	ck_assert_int_eq(got[20], '!');
	free(got);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(zero_length_write_creates_entry_and_changes_nothing)
{
	struct kvindex *ix = new_index();

	ck_assert_int_eq(kvindex_write(ix, "e", 1, 5000, NULL, 0), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "e", 1)), 0);
	put_str(ix, "f", "abc");
	ck_assert_int_eq(kvindex_write(ix, "f", 1, 100, NULL, 0), 0);
	expect_str(ix, "f", "abc");
	kvindex_destroy(ix);
}
END_TEST

START_TEST(appends_grow_a_small_value_geometrically)
{
	enum { CHUNK = 37, COUNT = 1500 };
	struct kvindex *ix = new_index();
	unsigned char *all = malloc(CHUNK * COUNT);
	uint64_t mem;

	fill_pattern(all, CHUNK * COUNT, 3);
	for (unsigned i = 0; i < COUNT; i++)
		ck_assert_int_eq(kvindex_write(ix, "log", 3, (uint64_t)i * CHUNK, all + i * CHUNK,
					       CHUNK), 0);
	expect_value(ix, "log", 3, all, CHUNK * COUNT);
	mem = kvindex_mem(ix);
	ck_assert_uint_le(mem, 2 * CHUNK * COUNT + 4096);       /* room at most doubles */
	free(all);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(write_past_small_limit_moves_value_into_pages_intact)
{
	struct kvindex *ix = new_index();
	unsigned char small[1000], *got;

	fill_pattern(small, sizeof(small), 1);
	ck_assert_int_eq(kvindex_put(ix, "f", 1, "m", 1, small, sizeof(small)), 0);
	ck_assert_int_eq(kvindex_write(ix, "f", 1, 300000, "tail", 4), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "f", 1)), 300004);
	got = read_all(kvindex_find(ix, "f", 1));
	ck_assert(!memcmp(got, small, sizeof(small)));
	ck_assert(all_zero(got + sizeof(small), 300000 - sizeof(small)));
	ck_assert(!memcmp(got + 300000, "tail", 4));
	free(got);
	kvindex_destroy(ix);
}
END_TEST
