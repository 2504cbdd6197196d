/* The in-memory index: ordering, extents and holes, copy-on-write views, renames, limits, memory
 * accounting, all-or-nothing failure, and a randomised run against a plain sorted-array model. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
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

/* ck_assert for hot loops: Check records every passing ck_assert as a checkpoint (a write to
 * a file), which dominates loops over thousands of entries; this one costs nothing unless it
 * fails. */
#define require(cond)                                                                     \
	do {                                                                              \
		if (!(cond))                                                              \
			ck_abort_msg("%s:%d: %s", __FILE__, __LINE__, #cond);             \
	} while (0)
#define require_msg(cond, ...)                                                            \
	do {                                                                              \
		if (!(cond))                                                              \
			ck_abort_msg(__VA_ARGS__);                                        \
	} while (0)

/* ---- a memory log ------------------------------------------------------------------------ */

/* The index holds extents, not bytes: the log is the value store. These tests write and read
 * bytes, so a memory log stands in for the log segments: written data is appended to it (as
 * segment 1) and extents point into it; reads resolve extents against it, holes as zeros. The
 * space is reserved once, so that readers on other threads never see it move. */
#include <sys/mman.h>

#define MLOG_SEG 1
#define MLOG_RESERVE (16ull << 30)
static uint8_t *mlog;
static uint64_t mlog_len;
static pthread_mutex_t mlog_mu = PTHREAD_MUTEX_INITIALIZER;

static struct kvext mlog_append(uint64_t off, const void *data, uint64_t len)
{
	pthread_mutex_lock(&mlog_mu);
	if (!mlog) {
		mlog = mmap(NULL, MLOG_RESERVE, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		require(mlog != MAP_FAILED);
	}
	require(mlog_len + len <= MLOG_RESERVE);
	uint64_t pos = mlog_len;
	if (len)
		memcpy(mlog + pos, data, len);
	mlog_len += len;
	pthread_mutex_unlock(&mlog_mu);
	return (struct kvext){ .off = off, .seg = MLOG_SEG, .pos = pos, .cbase = pos, .len = (uint32_t)len,
			       .dlen = (uint32_t)len };
}

static int t_put(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
		 const void *val, uint64_t vlen)
{
	if (vlen > KV_MAX_WRITE)
		return -EFBIG;
	struct kvext e = mlog_append(0, val, vlen);
	return kvindex_put(ix, key, klen, meta, mlen, vlen, vlen ? &e : NULL);
}

/* Writes longer than one extent may be are split, as the store's callers would. */
static int t_write(struct kvindex *ix, const void *key, size_t klen, uint64_t off, const void *data,
		   uint64_t len)
{
	if (!len)
		return kvindex_write(ix, key, klen, NULL);
	if (len > KV_MAX_VALUE || off > KV_MAX_VALUE - len)
		return -EFBIG;
	for (uint64_t done = 0; done < len;) {
		uint64_t n = len - done < KV_MAX_WRITE ? len - done : KV_MAX_WRITE;
		struct kvext e = mlog_append(off + done, (const uint8_t *)data + done, n);
		int rc = kvindex_write(ix, key, klen, &e);
		if (rc)
			return rc;
		done += n;
	}
	return 0;
}

/* Like the old kvval_read: bytes copied, 0 at or past the end. */
static size_t t_read(const struct kvval *v, uint64_t off, void *buf, size_t len)
{
	uint64_t size = kvval_size(v);
	if (off >= size)
		return 0;
	size_t n = size - off < len ? (size_t)(size - off) : len;
	uint32_t ne;
	const struct kvext *e = kvval_extents(v, &ne);
	memset(buf, 0, n);
	for (uint32_t i = 0; i < ne; i++) {
		uint64_t lo = e[i].off > off ? e[i].off : off;
		uint64_t hi = e[i].off + e[i].len < off + n ? e[i].off + e[i].len : off + n;
		if (lo < hi)
			memcpy((uint8_t *)buf + (lo - off), mlog + e[i].pos + (lo - e[i].off), hi - lo);
	}
	return n;
}

/* ---- helpers ---------------------------------------------------------------------------- */

static struct kvindex *new_index(void)
{
	struct kvindex *ix;

	ck_assert_int_eq(kvindex_create(&ix), 0);
	return ix;
}

static void put_str(struct kvindex *ix, const char *key, const char *val)
{
	require(t_put(ix, key, strlen(key), NULL, 0, val, strlen(val)) == 0);
}

/* The whole value, malloc'd (at least one byte so an empty value is not NULL). */
static unsigned char *read_all(const struct kvval *v)
{
	uint64_t size = kvval_size(v);
	unsigned char *buf = malloc(size ? size : 1);

	require(buf);
	require(t_read(v, 0, buf, size) == size);
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
		require(d->buf);
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

	ck_assert_int_eq(t_put(ix, "alpha", 5, "M", 1, "first value", 11), 0);
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

	ck_assert_int_eq(t_put(ix, "k", 1, "meta-one", 8, "a long first value", 18), 0);
	ck_assert_int_eq(t_put(ix, "k", 1, "m2", 2, "v2", 2), 0);
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
	ck_assert_int_eq(t_put(ix, "", 0, NULL, 0, "empty", 5), 0);
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
		require(t_put(ix, r->b, r->len, NULL, 0, &j, sizeof(j)) == 0);
	}
	ck_assert_uint_eq(kvindex_count(ix), n);
	qsort(keys, n, sizeof(*keys), rkey_cmp);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	while (kvcursor_next(c, &k, &kl, &v)) {
		require(i < n && kl == keys[i].len && (!kl || !memcmp(k, keys[i].b, kl)));
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
		ck_assert_int_eq(t_put(ix, order[i].k, order[i].len, NULL, 0, "v", 1), 0);
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

	ck_assert_int_eq(t_put(ix, "a", 1, NULL, 0, "1", 1), 0);
	ck_assert_int_eq(t_put(ix, "a\0", 2, NULL, 0, "2", 1), 0);
	ck_assert_int_eq(t_put(ix, "a\0b", 3, NULL, 0, "3", 1), 0);
	ck_assert_int_eq(t_put(ix, "a\0c", 3, NULL, 0, "4", 1), 0);
	ck_assert_int_eq(t_put(ix, "\0", 1, NULL, 0, "5", 1), 0);
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

		require(t_put(ix, key, 200 + n, NULL, 0, &i, sizeof(i)) == 0);
	}
	for (unsigned i = 0; i < 5000; i++) {
		int n = snprintf(key + 200, 100, "%u", i);
		const struct kvval *v = kvindex_find(ix, key, 200 + n);

		require(v);
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
		require(next < n);
		snprintf(key, sizeof(key), "key%08u", next);
		require(kl == strlen(key) && !memcmp(k, key, kl));
		next++;
		seen++;
	}
	kvcursor_close(c);
	ck_assert_uint_eq(seen, expected);
	for (unsigned i = 0; i < n; i += 97) {
		snprintf(key, sizeof(key), "key%08u", i);
		require((kvindex_find(ix, key, strlen(key)) != NULL) == present[i]);
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
		require(kvindex_del(ix, key, strlen(key)) == 0);
		present[i] = false;
	}
	expect_exactly(ix, present, N);
	for (i = 5000; i < 25000; i++) {        /* a contiguous run: whole subtrees empty */
		snprintf(key, sizeof(key), "key%08u", i);
		require(kvindex_del(ix, key, strlen(key)) == (present[i] ? 0 : -ENOENT));
		present[i] = false;
	}
	expect_exactly(ix, present, N);
	for (unsigned j = 0; j < 3 * N; j++) {  /* random deletes and re-inserts */
		i = tu_rand(&rs) % N;
		snprintf(key, sizeof(key), "key%08u", i);
		if (present[i] && tu_rand(&rs) % 4) {
			require(kvindex_del(ix, key, strlen(key)) == 0);
			present[i] = false;
		} else if (!present[i] && !(tu_rand(&rs) % 8)) {
			put_str(ix, key, "again");
			present[i] = true;
		}
	}
	expect_exactly(ix, present, N);
	for (i = 0; i < N; i++) {
		snprintf(key, sizeof(key), "key%08u", i);
		require(kvindex_del(ix, key, strlen(key)) == (present[i] ? 0 : -ENOENT));
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
	ck_assert_int_eq(t_write(ix, "abc", 3, 10, "xy", 2), 0);  /* size 12 */
	ck_assert_uint_eq(kvindex_bytes(ix), 15);
	ck_assert_int_eq(t_write(ix, "new", 3, 0, "q", 1), 0);
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

/* Keys put in ascending order go to the end without a search (a checkpoint's load); one that
 * equals the last key replaces it, one that sorts before goes to its place: the order, the
 * count and every value stay right whichever way a key came in. */
START_TEST(ascending_puts_append_and_an_equal_or_smaller_key_still_finds_its_place)
{
	struct kvindex *ix = new_index();
	char k[32], v[32];
	enum { N = 20000 };

	for (unsigned i = 0; i < N; i += 2) {
		snprintf(k, sizeof k, "key%08u", i);
		snprintf(v, sizeof v, "v%u", i);
		put_str(ix, k, v);
	}
	put_str(ix, "key00019998", "again");            /* equal to the last */
	put_str(ix, "key00000001", "odd");              /* before the last */
	ck_assert_uint_eq(kvindex_count(ix), N / 2 + 1);
	expect_str(ix, "key00019998", "again");
	expect_str(ix, "key00000001", "odd");
	expect_str(ix, "key00010000", "v10000");
	struct kvcursor *c;
	const void *key, *prev = NULL;
	size_t kl, pl = 0;
	const struct kvval *val;
	unsigned seen = 0;
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	while (kvcursor_next(c, &key, &kl, &val)) {
		require(!prev || ref_cmp(prev, pl, key, kl) < 0);
		prev = key;
		pl = kl;
		seen++;
	}
	kvcursor_close(c);
	ck_assert_uint_eq(seen, N / 2 + 1);
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

	ck_assert_int_eq(t_write(ix, "f", 1, 10, "xyz", 3), 0);
	v = kvindex_find(ix, "f", 1);
	ck_assert_ptr_nonnull(v);
	kvval_meta(v, &mlen);
	ck_assert_uint_eq(mlen, 0);
	ck_assert_uint_eq(kvval_size(v), 13);
	got = read_all(v);
	ck_assert(all_zero(got, 10));
	ck_assert(!memcmp(got + 10, "xyz", 3));
	free(got);
	ck_assert_int_eq(t_write(ix, "f", 1, 20, "!", 1), 0);
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

	ck_assert_int_eq(t_write(ix, "e", 1, 5000, NULL, 0), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "e", 1)), 0);
	put_str(ix, "f", "abc");
	ck_assert_int_eq(t_write(ix, "f", 1, 100, NULL, 0), 0);
	expect_str(ix, "f", "abc");
	kvindex_destroy(ix);
}
END_TEST

START_TEST(appends_cost_one_extent_each_amortised)
{
	enum { CHUNK = 37, COUNT = 1500 };
	struct kvindex *ix = new_index();
	unsigned char *all = malloc(CHUNK * COUNT);
	uint64_t mem;

	fill_pattern(all, CHUNK * COUNT, 3);
	for (unsigned i = 0; i < COUNT; i++)
		require(t_write(ix, "log", 3, (uint64_t)i * CHUNK, all + i * CHUNK, CHUNK) ==
			0);
	expect_value(ix, "log", 3, all, CHUNK * COUNT);
	mem = kvindex_mem(ix);
	ck_assert_uint_le(mem, COUNT * 64 + 4096); /* 40-byte extents, the table grown by a quarter */
	free(all);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(a_write_far_past_the_end_leaves_a_hole_that_holds_nothing)
{
	struct kvindex *ix = new_index();
	unsigned char small[1000], *got;

	fill_pattern(small, sizeof(small), 1);
	ck_assert_int_eq(t_put(ix, "f", 1, "m", 1, small, sizeof(small)), 0);
	ck_assert_int_eq(t_write(ix, "f", 1, 300000, "tail", 4), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "f", 1)), 300004);
	got = read_all(kvindex_find(ix, "f", 1));
	ck_assert(!memcmp(got, small, sizeof(small)));
	ck_assert(all_zero(got + sizeof(small), 300000 - sizeof(small)));
	ck_assert(!memcmp(got + 300000, "tail", 4));
	free(got);
	uint32_t n;
	kvval_extents(kvindex_find(ix, "f", 1), &n);
	ck_assert_uint_eq(n, 2);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(holes_read_as_zeros)
{
	struct kvindex *ix = new_index();
	unsigned char buf[8192], data[4096];
	const struct kvval *v;
	uint64_t mem0, mem1;

	ck_assert_int_eq(kvindex_truncate(ix, "sparse", 6, KV_MAX_VALUE), 0);
	mem0 = kvindex_mem(ix);
	ck_assert_uint_lt(mem0, 256 * KIB);    /* a page table, no pages */
	v = kvindex_find(ix, "sparse", 6);
	ck_assert_uint_eq(kvval_size(v), KV_MAX_VALUE);
	ck_assert_uint_eq(t_read(v, 0, buf, sizeof(buf)), sizeof(buf));
	ck_assert(all_zero(buf, sizeof(buf)));
	ck_assert_uint_eq(t_read(v, KV_MAX_VALUE - 100, buf, sizeof(buf)), 100);
	ck_assert(all_zero(buf, 100));

	fill_pattern(data, sizeof(data), 9);
	ck_assert_int_eq(t_write(ix, "sparse", 6, 512 * MIB + 1000, data, sizeof(data)), 0);
	mem1 = kvindex_mem(ix);
	ck_assert_uint_le(mem1 - mem0, 70 * KIB);      /* one page */
	v = kvindex_find(ix, "sparse", 6);
	ck_assert_uint_eq(t_read(v, 512 * MIB, buf, sizeof(buf)), sizeof(buf));
	ck_assert(all_zero(buf, 1000));
	ck_assert(!memcmp(buf + 1000, data, sizeof(data)));
	ck_assert(all_zero(buf + 1000 + sizeof(data), sizeof(buf) - 1000 - sizeof(data)));

	/* writing far past the end leaves a hole, not zero pages */
	ck_assert_int_eq(t_write(ix, "w", 1, 100 * MIB, "end", 3), 0);
	ck_assert_uint_le(kvindex_mem(ix) - mem1, 70 * KIB + 2 * KIB * 8);
	ck_assert_uint_eq(t_read(kvindex_find(ix, "w", 1), 50 * MIB, buf, 10), 10);
	ck_assert(all_zero(buf, 10));
	kvindex_destroy(ix);
}
END_TEST

START_TEST(a_write_into_a_value_shared_with_a_view_copies_only_its_extent_table)
{
	const size_t size = 16 * MIB;
	struct kvindex *ix = new_index();
	unsigned char *big = malloc(size), *got, patch[4096];
	struct kvview *view;
	uint64_t mem0, mem1;

	fill_pattern(big, size, 5);
	memset(patch, 0xab, sizeof(patch));
	ck_assert_int_eq(t_put(ix, "big", 3, NULL, 0, big, size), 0);
	fill_numbered(ix, 2000, "other%05u");

	/* alone: the write splits one extent into three, a table of a few extents */
	mem0 = kvindex_mem(ix);
	ck_assert_int_eq(t_write(ix, "big", 3, 3 * MIB + 100, patch, sizeof(patch)), 0);
	ck_assert_uint_le(kvindex_mem(ix), mem0 + 256);
	memcpy(big + 3 * MIB + 100, patch, sizeof(patch));

	/* shared with a view: a new table and the path to the key, never the value's bytes */
	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	mem0 = kvindex_mem(ix);
	ck_assert_int_eq(t_write(ix, "big", 3, 8 * MIB - 2048, patch, sizeof(patch)), 0);
	mem1 = kvindex_mem(ix);
	ck_assert_uint_le(mem1 - mem0, 16 * KIB);
	ck_assert_int_eq(t_write(ix, "big", 3, 8 * MIB - 1000, "zz", 2), 0);
	ck_assert_uint_le(kvindex_mem(ix), mem1 + 256);

	{       /* the view still has the old bytes */
		struct kvcursor *c;
		const void *k;
		size_t kl;
		const struct kvval *v;

		ck_assert_int_eq(kvcursor_open_view(view, "big", 3, &c), 0);
		ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
		got = read_all(v);
		ck_assert(!memcmp(got, big, size));
		free(got);
		kvcursor_close(c);
	}
	memcpy(big + 8 * MIB - 2048, patch, sizeof(patch));
	memcpy(big + 8 * MIB - 1000, "zz", 2);
	expect_value(ix, "big", 3, big, size);
	kvview_release(view);
	ck_assert_uint_le(kvindex_mem(ix), mem0 + 512);   /* what only the view held went with it */
	free(big);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(truncate_down_and_up)
{
	struct kvindex *ix = new_index();
	unsigned char *big = malloc(300 * KIB), *got;

	put_str(ix, "s", "hello world");
	ck_assert_int_eq(kvindex_truncate(ix, "s", 1, 5), 0);
	expect_str(ix, "s", "hello");
	ck_assert_int_eq(kvindex_truncate(ix, "s", 1, 8), 0);
	expect_value(ix, "s", 1, "hello\0\0\0", 8);

	/* paged: bytes cut off come back as zeros, not as the old bytes */
	fill_pattern(big, 300 * KIB, 2);
	ck_assert_int_eq(t_put(ix, "p", 1, NULL, 0, big, 300 * KIB), 0);
	ck_assert_int_eq(kvindex_truncate(ix, "p", 1, 100007), 0);
	ck_assert_int_eq(kvindex_truncate(ix, "p", 1, 300 * KIB), 0);
	got = read_all(kvindex_find(ix, "p", 1));
	ck_assert(!memcmp(got, big, 100007));
	ck_assert(all_zero(got + 100007, 300 * KIB - 100007));
	free(got);

	/* paged down to small and back */
	ck_assert_int_eq(t_put(ix, "q", 1, NULL, 0, big, 300 * KIB), 0);
	ck_assert_int_eq(kvindex_truncate(ix, "q", 1, 1000), 0);
	expect_value(ix, "q", 1, big, 1000);
	ck_assert_int_eq(kvindex_truncate(ix, "q", 1, 200 * KIB), 0);
	got = read_all(kvindex_find(ix, "q", 1));
	ck_assert(!memcmp(got, big, 1000));
	ck_assert(all_zero(got + 1000, 200 * KIB - 1000));
	free(got);

	/* to nothing and back; absent keys are created */
	ck_assert_int_eq(kvindex_truncate(ix, "q", 1, 0), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "q", 1)), 0);
	ck_assert_int_eq(kvindex_truncate(ix, "new", 3, 10), 0);
	expect_value(ix, "new", 3, "\0\0\0\0\0\0\0\0\0\0", 10);
	free(big);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(read_past_end_is_short_then_zero)
{
	struct kvindex *ix = new_index();
	const struct kvval *v;
	char buf[16];

	put_str(ix, "k", "0123456789");
	v = kvindex_find(ix, "k", 1);
	ck_assert_uint_eq(t_read(v, 7, buf, sizeof(buf)), 3);
	ck_assert(!memcmp(buf, "789", 3));
	ck_assert_uint_eq(t_read(v, 10, buf, sizeof(buf)), 0);
	ck_assert_uint_eq(t_read(v, UINT64_MAX, buf, sizeof(buf)), 0);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(setmeta_replaces_only_meta)
{
	struct kvindex *ix = new_index();
	unsigned char *big = malloc(200 * KIB);
	struct kvview *view;
	const struct kvval *v;
	const void *k;
	size_t mlen, kl;
	struct kvcursor *c;

	ck_assert_int_eq(kvindex_setmeta(ix, "a", 1, "m", 1), -ENOENT);
	put_str(ix, "a", "value");
	ck_assert_int_eq(kvindex_setmeta(ix, "a", 1, "meta", 4), 0);      /* other length */
	ck_assert_int_eq(kvindex_setmeta(ix, "a", 1, "ATEM", 4), 0);      /* same length */
	expect_str(ix, "a", "value");
	ck_assert(!memcmp(kvval_meta(kvindex_find(ix, "a", 1), &mlen), "ATEM", 4));
	ck_assert_uint_eq(mlen, 4);

	fill_pattern(big, 200 * KIB, 4);
	ck_assert_int_eq(t_put(ix, "b", 1, "old", 3, big, 200 * KIB), 0);
	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	ck_assert_int_eq(kvindex_setmeta(ix, "b", 1, "new", 3), 0);
	ck_assert_int_eq(kvindex_setmeta(ix, "a", 1, "", 0), 0);
	expect_value(ix, "b", 1, big, 200 * KIB);
	ck_assert(!memcmp(kvval_meta(kvindex_find(ix, "b", 1), &mlen), "new", 3));
	ck_assert_uint_eq(kvval_meta(kvindex_find(ix, "a", 1), &mlen) != NULL, 1);
	ck_assert_uint_eq(mlen, 0);
	ck_assert_int_eq(kvcursor_open_view(view, "b", 1, &c), 0);
	ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
	ck_assert(!memcmp(kvval_meta(v, &mlen), "old", 3));
	kvcursor_close(c);
	kvview_release(view);
	free(big);
	kvindex_destroy(ix);
}
END_TEST

/* ---- views ------------------------------------------------------------------------------ */

START_TEST(view_is_frozen_while_live_changes)
{
	struct kvindex *ix = new_index();
	struct kvview *view;
	struct dump before, after, live_before, live_after;
	char key[32];

	fill_numbered(ix, 5000, "key%05u");
	ck_assert_int_eq(kvindex_truncate(ix, "paged", 5, 500 * KIB), 0);
	ck_assert_int_eq(t_write(ix, "paged", 5, 70000, "data", 4), 0);
	live_before = dump_live(ix);
	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	before = dump_view(view);
	ck_assert(dump_eq(&before, &live_before));

	for (unsigned i = 0; i < 5000; i += 3) {
		snprintf(key, sizeof(key), "key%05u", i);
		require(kvindex_del(ix, key, strlen(key)) == 0);
		snprintf(key, sizeof(key), "key%05u", i + 1);
		require(t_write(ix, key, strlen(key), 2, "XX", 2) == 0);
		snprintf(key, sizeof(key), "new%05u", i);
		put_str(ix, key, "fresh");
	}
	ck_assert_int_eq(t_write(ix, "paged", 5, 69990, "0123456789abcdef", 16), 0);
	ck_assert_int_eq(kvindex_truncate(ix, "paged", 5, 10), 0);
	ck_assert_int_eq(kvindex_setmeta(ix, "key00002", 8, "meta", 4), 0);
	ck_assert_int_eq(kvindex_rename(ix, "key00004", 8, "zzz", 3), 0);
	ck_assert_int_eq(kvindex_rename_prefix(ix, "key01", 5, "moved", 5), 0);

	after = dump_view(view);
	ck_assert(dump_eq(&before, &after));
	ck_assert_uint_eq(kvview_count(view), 5001);
	live_after = dump_live(ix);
	ck_assert(!dump_eq(&before, &live_after));
	kvview_release(view);
	expect_str(ix, "new00003", "fresh");
	ck_assert_ptr_null(kvindex_find(ix, "key00003", 8));
	free(before.buf);
	free(after.buf);
	free(live_before.buf);
	free(live_after.buf);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(view_outlives_the_index)
{
	struct kvindex *ix = new_index();
	struct kvview *view;
	struct dump before, after;

	fill_numbered(ix, 3000, "k%05u");
	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	before = dump_view(view);
	put_str(ix, "k00001", "changed");
	kvindex_destroy(ix);
	after = dump_view(view);
	ck_assert(dump_eq(&before, &after));
	kvview_release(view);
	free(before.buf);
	free(after.buf);
}
END_TEST

START_TEST(view_cursor_outlives_its_view)
{
	struct kvindex *ix = new_index();
	struct kvview *view;
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;
	unsigned n = 0;

	fill_numbered(ix, 2000, "k%05u");
	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	ck_assert_int_eq(kvcursor_open_view(view, NULL, 0, &c), 0);
	kvview_release(view);
	for (unsigned i = 0; i < 2000; i += 2) {
		char key[16];

		snprintf(key, sizeof(key), "k%05u", i);
		require(kvindex_del(ix, key, strlen(key)) == 0);
	}
	while (kvcursor_next(c, &k, &kl, &v))
		n++;
	ck_assert_uint_eq(n, 2000);
	kvcursor_close(c);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(empty_view_is_empty)
{
	struct kvindex *ix = new_index();
	struct kvview *view;
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;

	ck_assert_int_eq(kvindex_view(ix, &view), 0);
	put_str(ix, "a", "b");
	ck_assert_uint_eq(kvview_count(view), 0);
	ck_assert_int_eq(kvcursor_open_view(view, NULL, 0, &c), 0);
	ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 0);
	kvcursor_close(c);
	kvview_release(view);
	kvindex_destroy(ix);
}
END_TEST

struct view_job {
	struct kvview *view;
	const struct dump *expected;
	unsigned rounds;
	int ok;
};

/* Reads the view over and over while the main thread mutates the live index, then drops it. */
static void *view_reader(void *arg)
{
	struct view_job *job = arg;

	job->ok = 1;
	for (unsigned r = 0; r < job->rounds; r++) {
		struct dump d = dump_view(job->view);

		if (!dump_eq(&d, job->expected))
			job->ok = 0;
		free(d.buf);
	}
	kvview_release(job->view);
	return NULL;
}

static void churn(struct kvindex *ix, uint64_t *rs, unsigned ops)
{
	char key[32];
	unsigned char data[300];

	memset(data, 'c', sizeof(data));
	for (unsigned i = 0; i < ops; i++) {
		unsigned n = tu_rand(rs) % 4000;

		snprintf(key, sizeof(key), "key%05u", n);
		switch (tu_rand(rs) % 5) {
		case 0:
			kvindex_del(ix, key, strlen(key));
			break;
		case 1:
			require(t_write(ix, key, strlen(key), tu_rand(rs) % 100000, data,
					      1 + tu_rand(rs) % sizeof(data)) == 0);
			break;
		case 2:
			require(kvindex_truncate(ix, key, strlen(key), tu_rand(rs) % 80000) == 0);
			break;
		case 3:
			kvindex_setmeta(ix, key, strlen(key), "mm", 2);
			break;
		default:
			put_str(ix, key, "churned");
		}
	}
}

START_TEST(view_released_on_other_thread)
{
	struct kvindex *ix = new_index();
	uint64_t rs = tu_seed() ^ 0x7777;
	struct view_job job;
	struct dump expected;
	pthread_t t;

	fill_numbered(ix, 4000, "key%05u");
	churn(ix, &rs, 2000);
	ck_assert_int_eq(kvindex_view(ix, &job.view), 0);
	expected = dump_view(job.view);
	job.expected = &expected;
	job.rounds = 1;
	churn(ix, &rs, 3000);
	ck_assert_int_eq(pthread_create(&t, NULL, view_reader, &job), 0);
	churn(ix, &rs, 5000);   /* while the other thread reads and releases */
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(job.ok, 1);
	churn(ix, &rs, 2000);
	free(expected.buf);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(view_reads_race_free_with_live_mutations)
{
	struct kvindex *ix = new_index();
	uint64_t rs = tu_seed() ^ 0x8888;
	struct view_job jobs[2];
	struct dump expected[2];
	pthread_t t[2];

	fill_numbered(ix, 4000, "key%05u");
	churn(ix, &rs, 1000);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kvindex_view(ix, &jobs[i].view), 0);
		expected[i] = dump_view(jobs[i].view);
		jobs[i].expected = &expected[i];
		jobs[i].rounds = 4;
		ck_assert_int_eq(pthread_create(&t[i], NULL, view_reader, &jobs[i]), 0);
		churn(ix, &rs, 3000);
	}
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
		ck_assert_int_eq(jobs[i].ok, 1);
		free(expected[i].buf);
	}
	kvindex_destroy(ix);
}
END_TEST

/* ---- cursors ---------------------------------------------------------------------------- */

static void expect_next_key(struct kvcursor *c, const char *key)
{
	const void *k;
	size_t kl;
	const struct kvval *v;

	if (!key) {
		ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 0);
		return;
	}
	ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
	ck_assert_uint_eq(kl, strlen(key));
	ck_assert(!memcmp(k, key, kl));
}

START_TEST(cursor_from_start_key)
{
	struct kvindex *ix = new_index();
	struct kvcursor *c;
	char key[32];

	fill_numbered(ix, 3000, "k%05u0");      /* k000000, k000010, ... */
	ck_assert_int_eq(kvcursor_open_live(ix, "k012340", 7, &c), 0);        /* exact */
	expect_next_key(c, "k012340");
	expect_next_key(c, "k012350");
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "k01234", 6, &c), 0);         /* prefix: before */
	expect_next_key(c, "k012340");
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "k012345", 7, &c), 0);        /* between */
	expect_next_key(c, "k012350");
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "a", 1, &c), 0);              /* before all */
	expect_next_key(c, "k000000");
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "k029990", 7, &c), 0);        /* the last */
	expect_next_key(c, "k029990");
	expect_next_key(c, NULL);
	expect_next_key(c, NULL);
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "l", 1, &c), 0);              /* past all */
	expect_next_key(c, NULL);
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);             /* everything */
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "k%05u0", i);
		expect_next_key(c, key);
	}
	expect_next_key(c, NULL);
	kvcursor_close(c);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(cursor_on_empty_index_returns_nothing)
{
	struct kvindex *ix = new_index();
	struct kvcursor *c;

	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	expect_next_key(c, NULL);
	kvcursor_close(c);
	ck_assert_int_eq(kvcursor_open_live(ix, "x", 1, &c), 0);
	expect_next_key(c, NULL);
	kvcursor_close(c);
	kvindex_destroy(ix);
}
END_TEST

/* ---- renames ---------------------------------------------------------------------------- */

START_TEST(rename_replaces_target)
{
	struct kvindex *ix = new_index();
	size_t mlen;

	ck_assert_int_eq(t_put(ix, "from", 4, "meta", 4, "moving", 6), 0);
	put_str(ix, "to", "replaced");
	put_str(ix, "other", "stays");
	ck_assert_int_eq(kvindex_rename(ix, "from", 4, "to", 2), 0);
	ck_assert_ptr_null(kvindex_find(ix, "from", 4));
	expect_str(ix, "to", "moving");
	ck_assert(!memcmp(kvval_meta(kvindex_find(ix, "to", 2), &mlen), "meta", 4));
	expect_str(ix, "other", "stays");
	ck_assert_uint_eq(kvindex_count(ix), 2);
	ck_assert_int_eq(kvindex_rename(ix, "to", 2, "fresh", 5), 0);   /* to an absent key */
	expect_str(ix, "fresh", "moving");
	ck_assert_uint_eq(kvindex_count(ix), 2);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(rename_to_itself_is_a_noop_and_absent_is_enoent)
{
	struct kvindex *ix = new_index();

	ck_assert_int_eq(kvindex_rename(ix, "a", 1, "b", 1), -ENOENT);
	put_str(ix, "a", "v");
	ck_assert_int_eq(kvindex_rename(ix, "a", 1, "a", 1), 0);
	expect_str(ix, "a", "v");
	ck_assert_int_eq(kvindex_rename(ix, "zz", 2, "a", 1), -ENOENT);
	expect_str(ix, "a", "v");
	ck_assert_uint_eq(kvindex_count(ix), 1);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(rename_moves_a_large_value_without_copying_it)
{
	const size_t size = 8 * MIB;
	struct kvindex *ix = new_index();
	unsigned char *big = malloc(size);
	struct kvview *view;
	uint64_t mem0;

	fill_pattern(big, size, 6);
	ck_assert_int_eq(t_put(ix, "a/big", 5, NULL, 0, big, size), 0);
	fill_numbered(ix, 1000, "n%05u");
	mem0 = kvindex_mem(ix);
	ck_assert_int_eq(kvindex_rename(ix, "a/big", 5, "b/big", 5), 0);
	ck_assert_uint_le(kvindex_mem(ix), mem0 + 4 * KIB);
	ck_assert_int_eq(kvindex_view(ix, &view), 0);   /* also while a view shares it */
	mem0 = kvindex_mem(ix);
	ck_assert_int_eq(kvindex_rename_prefix(ix, "b/", 2, "c/", 2), 0);
	ck_assert_uint_le(kvindex_mem(ix), mem0 + 16 * KIB);
	expect_value(ix, "c/big", 5, big, size);
	kvview_release(view);
	free(big);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(rename_prefix_moves_subtree)
{
	struct kvindex *ix = new_index();

	put_str(ix, "dir/a", "1");
	put_str(ix, "dir/b/c", "2");
	put_str(ix, "dir/", "3");
	put_str(ix, "dirx", "4");
	put_str(ix, "dj", "5");
	put_str(ix, "new/a", "old");
	put_str(ix, "new/z", "kept");
	ck_assert_int_eq(kvindex_rename_prefix(ix, "dir/", 4, "new/", 4), 0);
	ck_assert_ptr_null(kvindex_find(ix, "dir/a", 5));
	ck_assert_ptr_null(kvindex_find(ix, "dir/", 4));
	expect_str(ix, "new/a", "1");
	expect_str(ix, "new/b/c", "2");
	expect_str(ix, "new/", "3");
	expect_str(ix, "new/z", "kept");
	expect_str(ix, "dirx", "4");
	expect_str(ix, "dj", "5");
	ck_assert_uint_eq(kvindex_count(ix), 6);
	ck_assert_int_eq(kvindex_rename_prefix(ix, "nothing", 7, "x", 1), 0);
	ck_assert_uint_eq(kvindex_count(ix), 6);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(rename_prefix_into_and_out_of_its_own_subtree)
{
	struct kvindex *ix = new_index();
	char key[32];

	/* to extends from: each key moves once, never again */
	put_str(ix, "a1", "x");
	put_str(ix, "ab1", "y");
	put_str(ix, "b", "z");
	ck_assert_int_eq(kvindex_rename_prefix(ix, "a", 1, "ab", 2), 0);
	expect_str(ix, "ab1", "x");
	expect_str(ix, "abb1", "y");
	expect_str(ix, "b", "z");
	ck_assert_ptr_null(kvindex_find(ix, "a1", 2));
	ck_assert_uint_eq(kvindex_count(ix), 3);

	/* from extends to */
	ck_assert_int_eq(kvindex_rename_prefix(ix, "ab", 2, "a", 1), 0);
	expect_str(ix, "a1", "x");
	expect_str(ix, "ab1", "y");
	ck_assert_uint_eq(kvindex_count(ix), 3);

	/* many keys, so the moves span many leaves */
	for (unsigned i = 0; i < 3000; i++) {
		snprintf(key, sizeof(key), "d/%05u", i);
		put_str(ix, key, key);
	}
	ck_assert_int_eq(kvindex_rename_prefix(ix, "d/", 2, "d/d/", 4), 0);
	ck_assert_uint_eq(kvindex_count(ix), 3003);
	for (unsigned i = 0; i < 3000; i += 7) {
		char val[32];

		snprintf(key, sizeof(key), "d/d/%05u", i);
		snprintf(val, sizeof(val), "d/%05u", i);
		expect_str(ix, key, val);
	}
	ck_assert_int_eq(kvindex_rename_prefix(ix, "d/", 2, "", 0), 0);
	expect_str(ix, "d/00005", "d/00005");
	ck_assert_uint_eq(kvindex_count(ix), 3003);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(rename_prefix_too_long_is_einval_and_moves_nothing)
{
	struct kvindex *ix = new_index();
	char *longkey = malloc(KV_MAX_KEY);
	struct dump before, after;

	memset(longkey, 'p', KV_MAX_KEY);
	memcpy(longkey, "pre/", 4);
	ck_assert_int_eq(t_put(ix, longkey, KV_MAX_KEY - 1, NULL, 0, "v", 1), 0);
	put_str(ix, "pre/short", "s");
	before = dump_live(ix);
	ck_assert_int_eq(kvindex_rename_prefix(ix, "pre/", 4, "prefix/", 7), -EINVAL);
	after = dump_live(ix);
	ck_assert(dump_eq(&before, &after));
	ck_assert_int_eq(kvindex_rename_prefix(ix, "pre/", 4, "pref/", 5), 0);  /* exactly fits */
	expect_str(ix, "pref/short", "s");
	free(before.buf);
	free(after.buf);
	free(longkey);
	kvindex_destroy(ix);
}
END_TEST

/* ---- limits and memory ------------------------------------------------------------------ */

START_TEST(limits_return_einval_and_efbig)
{
	struct kvindex *ix = new_index();
	char *key = calloc(1, KV_MAX_KEY + 1), *meta = calloc(1, KV_MAX_META + 1);
	struct dump before, after;

	ck_assert_int_eq(t_put(ix, key, KV_MAX_KEY, meta, KV_MAX_META, "v", 1), 0);
	before = dump_live(ix);
	ck_assert_int_eq(t_put(ix, key, KV_MAX_KEY + 1, NULL, 0, "v", 1), -EINVAL);
	ck_assert_int_eq(t_put(ix, "k", 1, meta, KV_MAX_META + 1, "v", 1), -EINVAL);
	ck_assert_int_eq(t_put(ix, "k", 1, NULL, 0, "v", KV_MAX_VALUE + 1), -EFBIG);
	ck_assert_int_eq(kvindex_del(ix, key, KV_MAX_KEY + 1), -EINVAL);
	ck_assert_int_eq(t_write(ix, key, KV_MAX_KEY + 1, 0, "v", 1), -EINVAL);
	ck_assert_int_eq(t_write(ix, "k", 1, KV_MAX_VALUE, "v", 1), -EFBIG);
	ck_assert_int_eq(t_write(ix, "k", 1, UINT64_MAX, "v", 1), -EFBIG);
	ck_assert_int_eq(kvindex_truncate(ix, key, KV_MAX_KEY + 1, 0), -EINVAL);
	ck_assert_int_eq(kvindex_truncate(ix, "k", 1, KV_MAX_VALUE + 1), -EFBIG);
	ck_assert_int_eq(kvindex_setmeta(ix, key, KV_MAX_KEY, meta, KV_MAX_META + 1), -EINVAL);
	ck_assert_int_eq(kvindex_setmeta(ix, key, KV_MAX_KEY + 1, "m", 1), -EINVAL);
	ck_assert_int_eq(kvindex_rename(ix, key, KV_MAX_KEY, key, KV_MAX_KEY + 1), -EINVAL);
	ck_assert_int_eq(kvindex_rename_prefix(ix, key, KV_MAX_KEY + 1, "", 0), -EINVAL);
	after = dump_live(ix);
	ck_assert(dump_eq(&before, &after));
	ck_assert_ptr_null(kvindex_find(ix, "k", 1));

	/* exactly at the limits is fine */
	ck_assert_int_eq(t_write(ix, "k", 1, KV_MAX_VALUE - 1, "v", 1), 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "k", 1)), KV_MAX_VALUE);
	ck_assert_int_eq(t_write(ix, "k", 1, KV_MAX_VALUE - 1, "vw", 2), -EFBIG);
	ck_assert_int_eq(kvindex_truncate(ix, "t", 1, KV_MAX_VALUE), 0);
	free(before.buf);
	free(after.buf);
	free(key);
	free(meta);
	kvindex_destroy(ix);
}
END_TEST

START_TEST(memory_per_small_entry_is_under_200_bytes)
{
	enum { N = 200000 };
	struct kvindex *ix = new_index();
	uint64_t rs = tu_seed() ^ 0x5151;
	unsigned char key[16], val[100];

	memset(val, 'v', sizeof(val));
	for (unsigned i = 0; i < N; i++) {
		uint64_t a = tu_rand(&rs), b = tu_rand(&rs);

		memcpy(key, &a, 8);
		memcpy(key + 8, &b, 8);
		require(t_put(ix, key, 16, NULL, 0, val, sizeof(val)) == 0);
	}
	ck_assert_uint_le(kvindex_mem(ix) / kvindex_count(ix), 200);
	kvindex_destroy(ix);
}
END_TEST

/* ---- all or nothing --------------------------------------------------------------------- */

typedef int (*mutation_fn)(struct kvindex *ix, void *arg);

/* Fail the 1st, 2nd, ... allocation of fn until it succeeds; every failure must be -ENOMEM
 * and leave the index exactly as it was. Returns how many failure points there were. */
static unsigned fail_each_allocation(struct kvindex *ix, mutation_fn fn, void *arg)
{
	struct dump before = dump_live(ix);
	uint64_t count = kvindex_count(ix), bytes = kvindex_bytes(ix);
	unsigned nth;
	int rc;

	for (nth = 1;; nth++) {
		struct dump after;

		kvindex_fail_alloc(ix, nth);
		rc = fn(ix, arg);
		kvindex_fail_alloc(ix, 0);
		if (rc != -ENOMEM)
			break;
		after = dump_live(ix);
		require_msg(dump_eq(&before, &after), "failed allocation %u changed the index", nth);
		require(kvindex_count(ix) == count && kvindex_bytes(ix) == bytes);
		free(after.buf);
	}
	require_msg(rc == 0, "rc %d after %u failure points", rc, nth - 1);
	free(before.buf);
	return nth - 1;
}

static unsigned char big_buf[300 * 1024];

static int do_put_new(struct kvindex *ix, void *arg)
{
	(void)arg;
	return t_put(ix, "key01234x", 9, "m", 1, "new", 3);
}

static int do_put_big(struct kvindex *ix, void *arg)
{
	(void)arg;
	return t_put(ix, "key00100", 8, "m", 1, big_buf, sizeof(big_buf));
}

static int do_del(struct kvindex *ix, void *arg)
{
	(void)arg;
	return kvindex_del(ix, "key00777", 8);
}

static int do_write_paged(struct kvindex *ix, void *arg)
{
	(void)arg;
	return t_write(ix, "paged", 5, 60000, big_buf, 200000);
}

static int do_write_new(struct kvindex *ix, void *arg)
{
	(void)arg;
	return t_write(ix, "zz-new", 6, 100000, "data", 4);
}

static int do_truncate(struct kvindex *ix, void *arg)
{
	(void)arg;
	return kvindex_truncate(ix, "paged", 5, 70001);
}

static int do_setmeta(struct kvindex *ix, void *arg)
{
	(void)arg;
	return kvindex_setmeta(ix, "key00200", 8, "longer meta", 11);
}

static int do_rename(struct kvindex *ix, void *arg)
{
	(void)arg;
	return kvindex_rename(ix, "key00300", 8, "key00400", 8);
}

static int do_rename_prefix(struct kvindex *ix, void *arg)
{
	(void)arg;
	return kvindex_rename_prefix(ix, "key001", 6, "moved/", 6);
}

START_TEST(failed_allocation_leaves_index_unchanged)
{
	static const mutation_fn ops[] = { do_put_new, do_put_big, do_del, do_write_paged,
					   do_write_new, do_truncate, do_setmeta, do_rename,
					   do_rename_prefix };
	for (int with_view = 0; with_view < 2; with_view++) {
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			struct kvindex *ix = new_index();
			struct kvview *view = NULL;
			unsigned points;

			fill_pattern(big_buf, sizeof(big_buf), (unsigned)i);
			/* full leaves, so that inserts split up to a new root */
			for (unsigned k = 0; k < 4096; k++) {
				char key[16];

				snprintf(key, sizeof(key), "key%05u", k);
				put_str(ix, key, "v");
			}
			ck_assert_int_eq(t_put(ix, "paged", 5, NULL, 0, big_buf, 150000), 0);
			if (with_view)
				ck_assert_int_eq(kvindex_view(ix, &view), 0);
			points = fail_each_allocation(ix, ops[i], NULL);
			if (with_view)  /* at least the path to the key is copied */
				ck_assert_uint_ge(points, 1);
			kvview_release(view);
			kvindex_destroy(ix);
		}
	}
}
END_TEST

static int do_put_key(struct kvindex *ix, void *arg)
{
	return t_put(ix, arg, strlen(arg), NULL, 0, "v", 1);
}

START_TEST(failed_allocation_while_splitting_leaves_index_unchanged)
{
	uint64_t rs = tu_seed() ^ 0x5911;

	for (int with_view = 0; with_view < 2; with_view++) {
		struct kvindex *ix = new_index();
		struct kvview *view = NULL;
		unsigned most = 0;
		char key[32];

		fill_numbered(ix, 3000, "key%05u");
		for (unsigned i = 0; i < 400; i++) {
			unsigned points;

			if (with_view && i % 50 == 0) {
				kvview_release(view);
				ck_assert_int_eq(kvindex_view(ix, &view), 0);
			}
			snprintf(key, sizeof(key), "key%05u%c", (unsigned)(tu_rand(&rs) % 3000),
				 (int)('a' + i % 26));
			points = fail_each_allocation(ix, do_put_key, key);
			most = points > most ? points : most;
		}
		/* some insert split a leaf: entry, leaf, separator at least */
		ck_assert_uint_ge(most, 3);
		kvview_release(view);
		kvindex_destroy(ix);
	}
}
END_TEST

/* ---- randomised, against a model -------------------------------------------------------- */

struct ment {
	unsigned char *key, *meta, *val;
	size_t klen, mlen, vlen;
};

struct model {
	struct ment *e;
	size_t n, cap;
};

static unsigned char *dup_bytes(const void *p, size_t n)
{
	unsigned char *d = malloc(n ? n : 1);

	require(d);
	if (n)
		memcpy(d, p, n);
	return d;
}

/* Index of the first entry >= key. */
static size_t model_pos(const struct model *m, const void *key, size_t klen, bool *found)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;

		if (ref_cmp(m->e[mid].key, m->e[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < m->n && !ref_cmp(m->e[lo].key, m->e[lo].klen, key, klen);
	return lo;
}

static void ment_free(struct ment *e)
{
	free(e->key);
	free(e->meta);
	free(e->val);
}

/* Takes ownership of e's buffers. */
static void model_set(struct model *m, struct ment e)
{
	bool found;
	size_t i = model_pos(m, e.key, e.klen, &found);

	if (found) {
		ment_free(&m->e[i]);
		m->e[i] = e;
		return;
	}
	if (m->n == m->cap) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->e = realloc(m->e, m->cap * sizeof(*m->e));
		require(m->e);
	}
	memmove(&m->e[i + 1], &m->e[i], (m->n - i) * sizeof(*m->e));
	m->e[i] = e;
	m->n++;
}

static void model_remove_at(struct model *m, size_t i)
{
	ment_free(&m->e[i]);
	memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof(*m->e));
	m->n--;
}

static struct model model_clone(const struct model *m)
{
	struct model c = { malloc((m->n ? m->n : 1) * sizeof(*m->e)), m->n, m->n };

	for (size_t i = 0; i < m->n; i++) {
		c.e[i] = m->e[i];
		c.e[i].key = dup_bytes(m->e[i].key, m->e[i].klen);
		c.e[i].meta = dup_bytes(m->e[i].meta, m->e[i].mlen);
		c.e[i].val = dup_bytes(m->e[i].val, m->e[i].vlen);
	}
	return c;
}

static void model_free(struct model *m)
{
	for (size_t i = 0; i < m->n; i++)
		ment_free(&m->e[i]);
	free(m->e);
	m->e = NULL;
	m->n = m->cap = 0;
}

static uint64_t model_bytes(const struct model *m)
{
	uint64_t b = 0;

	for (size_t i = 0; i < m->n; i++)
		b += m->e[i].klen + m->e[i].vlen;
	return b;
}

/* Every entry of the cursor against the model, with a partial read at a random offset. */
static void model_check_cursor(const struct model *m, struct kvcursor *c, uint64_t *rs,
			       unsigned long op)
{
	const void *k, *meta;
	size_t kl, ml, i = 0;
	const struct kvval *v;
	unsigned char buf[512];

	while (kvcursor_next(c, &k, &kl, &v)) {
		const struct ment *e;
		uint64_t off;
		size_t got;

		require_msg(i < m->n, "op %lu: more entries than the model", op);
		e = &m->e[i++];
		require_msg(!ref_cmp(k, kl, e->key, e->klen), "op %lu: key %zu differs", op, i - 1);
		meta = kvval_meta(v, &ml);
		require_msg(ml == e->mlen && (!ml || !memcmp(meta, e->meta, ml)),
			      "op %lu: meta differs", op);
		require_msg(kvval_size(v) == e->vlen, "op %lu: size %llu, model %zu", op,
			      (unsigned long long)kvval_size(v), e->vlen);
		off = e->vlen ? tu_rand(rs) % (e->vlen + 1) : 0;
		got = t_read(v, off, buf, sizeof(buf));
		require(got == (e->vlen - off < sizeof(buf) ? e->vlen - off : sizeof(buf)));
		require_msg(!got || !memcmp(buf, e->val + off, got), "op %lu: value differs", op);
		if (e->vlen <= 4096) {
			unsigned char *all = read_all(v);

			require_msg(!e->vlen || !memcmp(all, e->val, e->vlen), "op %lu: value", op);
			free(all);
		}
	}
	require_msg(i == m->n, "op %lu: %zu entries, model %zu", op, i, m->n);
	kvcursor_close(c);
}

static void model_check_live(const struct model *m, const struct kvindex *ix, uint64_t *rs,
			     unsigned long op)
{
	struct kvcursor *c;

	ck_assert_msg(kvindex_count(ix) == m->n, "op %lu: count %llu, model %zu", op,
		      (unsigned long long)kvindex_count(ix), m->n);
	ck_assert_uint_eq(kvindex_bytes(ix), model_bytes(m));
	ck_assert_int_eq(kvcursor_open_live(ix, NULL, 0, &c), 0);
	model_check_cursor(m, c, rs, op);
	for (size_t i = 0; i < m->n; i++)
		require_msg(kvindex_find(ix, m->e[i].key, m->e[i].klen), "op %lu: find", op);
	if (m->n) {     /* a cursor from the middle starts at the right entry */
		size_t i = tu_rand(rs) % m->n;
		const void *k;
		size_t kl;
		const struct kvval *v;

		ck_assert_int_eq(kvcursor_open_live(ix, m->e[i].key, m->e[i].klen, &c), 0);
		ck_assert_int_eq(kvcursor_next(c, &k, &kl, &v), 1);
		ck_assert(!ref_cmp(k, kl, m->e[i].key, m->e[i].klen));
		kvcursor_close(c);
	}
}

static size_t random_key(uint64_t *rs, const struct model *m, unsigned char *key)
{
	static const unsigned char alphabet[] = { 0x00, 'a', 'b', '/', 0xff };
	uint64_t r = tu_rand(rs) % 100;
	size_t len = 0, n;

	if (m->n && r < 55) {                   /* an existing key */
		const struct ment *e = &m->e[tu_rand(rs) % m->n];

		memcpy(key, e->key, e->klen);
		return e->klen;
	}
	if (r < 70) {                           /* under a long shared prefix */
		memset(key, 'p', 70);
		len = 60 + tu_rand(rs) % 11;
	} else if (r < 72) {                    /* very long */
		len = KV_MAX_KEY - tu_rand(rs) % 8;
		memset(key, 'L', len - 8);
		len -= 8;
	} else if (r < 85) {
		memcpy(key, "dir/", 4);
		len = 4;
	}
	n = tu_rand(rs) % 7;
	for (size_t i = 0; i < n && len < KV_MAX_KEY; i++)
		key[len++] = alphabet[tu_rand(rs) % sizeof(alphabet)];
	return len;
}

/* An offset or size: mostly small, sometimes across the small/paged boundary. */
static uint64_t random_extent(uint64_t *rs, uint64_t around)
{
	uint64_t r = tu_rand(rs) % 100;

	if (r < 70)
		return tu_rand(rs) % (around + 300);
	if (r < 95)
		return tu_rand(rs) % (200 * 1024);
	return 60 * 1024 + tu_rand(rs) % (10 * 1024);
}

static void random_bytes(uint64_t *rs, unsigned char *p, size_t n)
{
	uint64_t x = tu_rand(rs);

	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(x + i * 0x9e37u);
}

struct snapshot {
	struct kvview *view;
	struct model model;
	unsigned long taken;
};

/* KV_INDEX_OPS=N runs longer (a soak; add CK_FORK=no to lift the timeout); the default keeps
 * the suite quick. */
static unsigned long random_ops(void)
{
	const char *env = getenv("KV_INDEX_OPS");

	return env && *env ? strtoul(env, NULL, 0) : 20000;
}

START_TEST(random_operations_match_a_sorted_array_model)
{
	const unsigned long ops = random_ops();
	uint64_t seed = tu_seed(), rs = seed;
	struct kvindex *ix = new_index();
	struct model m = { NULL, 0, 0 };
	struct snapshot snaps[3] = { { NULL, { NULL, 0, 0 }, 0 } };
	unsigned char *key = malloc(KV_MAX_KEY), *key2 = malloc(KV_MAX_KEY);
	unsigned char *data = malloc(300 * 1024), meta[64];
	unsigned long enomem = 0;

	for (unsigned long op = 0; op < ops; op++) {
		size_t klen = random_key(&rs, &m, key), k2len, mlen = tu_rand(&rs) % 12;
		unsigned kind = tu_rand(&rs) % 100;
		bool armed = tu_rand(&rs) % 8 == 0, found;
		size_t pos = model_pos(&m, key, klen, &found);
		uint64_t cur = found ? m.e[pos].vlen : 0;
		int rc;

		random_bytes(&rs, meta, mlen);
		if (armed)
			kvindex_fail_alloc(ix, 1 + tu_rand(&rs) % 6);
		if (kind < 25) {                                        /* put */
			uint64_t vlen = tu_rand(&rs) % 10 ? tu_rand(&rs) % 300 : random_extent(&rs, 0);

			random_bytes(&rs, data, vlen);
			rc = t_put(ix, key, klen, meta, mlen, data, vlen);
			if (!rc)
				model_set(&m, (struct ment){ dup_bytes(key, klen), dup_bytes(meta, mlen),
							     dup_bytes(data, vlen), klen, mlen, vlen });
		} else if (kind < 40) {                                 /* del */
			rc = kvindex_del(ix, key, klen);
			if (!found)
				require(rc == -ENOENT);
			else if (!rc)
				model_remove_at(&m, pos);
		} else if (kind < 62) {                                 /* write */
			uint64_t off = random_extent(&rs, cur), len = 1 + tu_rand(&rs) % 700;

			if (tu_rand(&rs) % 20 == 0)
				len = 1 + tu_rand(&rs) % (100 * 1024);
			random_bytes(&rs, data, len);
			rc = t_write(ix, key, klen, off, data, len);
			if (!rc) {
				uint64_t size = off + len > cur ? off + len : cur;
				unsigned char *v = calloc(1, size ? size : 1);

				if (found)
					memcpy(v, m.e[pos].val, cur);
				memcpy(v + off, data, len);
				model_set(&m, (struct ment){ dup_bytes(key, klen),
							     found ? dup_bytes(m.e[pos].meta, m.e[pos].mlen) :
								     dup_bytes("", 0),
							     v, klen, found ? m.e[pos].mlen : 0, size });
			}
		} else if (kind < 74) {                                 /* truncate */
			uint64_t size = random_extent(&rs, cur);

			rc = kvindex_truncate(ix, key, klen, size);
			if (!rc) {
				unsigned char *v = calloc(1, size ? size : 1);

				if (found)
					memcpy(v, m.e[pos].val, cur < size ? cur : size);
				model_set(&m, (struct ment){ dup_bytes(key, klen),
							     found ? dup_bytes(m.e[pos].meta, m.e[pos].mlen) :
								     dup_bytes("", 0),
							     v, klen, found ? m.e[pos].mlen : 0, size });
			}
		} else if (kind < 84) {                                 /* setmeta */
			rc = kvindex_setmeta(ix, key, klen, meta, mlen);
			if (!found) {
				require(rc == -ENOENT);
			} else if (!rc) {
				free(m.e[pos].meta);
				m.e[pos].meta = dup_bytes(meta, mlen);
				m.e[pos].mlen = mlen;
			}
		} else if (kind < 95) {                                 /* rename */
			k2len = random_key(&rs, &m, key2);
			rc = kvindex_rename(ix, key, klen, key2, k2len);
			if (!found) {
				require(rc == -ENOENT);
			} else if (!rc && ref_cmp(key, klen, key2, k2len)) {
				struct ment e = m.e[pos];

				memmove(&m.e[pos], &m.e[pos + 1], (m.n - pos - 1) * sizeof(*m.e));
				m.n--;
				free(e.key);
				e.key = dup_bytes(key2, k2len);
				e.klen = k2len;
				model_set(&m, e);
			}
		} else {                                                /* rename_prefix */
			size_t flen = klen ? tu_rand(&rs) % (klen + 1) : 0, first, n = 0;
			bool too_long = false;

			switch (tu_rand(&rs) % 4) {
			case 0:                 /* into its own subtree */
				memcpy(key2, key, flen);
				key2[flen] = 'b';
				k2len = flen + 1;
				break;
			case 1:                 /* out of it */
				k2len = flen ? flen - 1 : 0;
				memcpy(key2, key, k2len);
				break;
			default:
				k2len = random_key(&rs, &m, key2) % 12;
			}
			first = model_pos(&m, key, flen, &found);
			while (first + n < m.n && m.e[first + n].klen >= flen &&
			       !memcmp(m.e[first + n].key, key, flen)) {
				too_long |= k2len + m.e[first + n].klen - flen > KV_MAX_KEY;
				n++;
			}
			rc = kvindex_rename_prefix(ix, key, flen, key2, k2len);
			if (too_long) {
				require(rc == -EINVAL);
			} else if (!rc && n) {
				struct ment *moving = malloc(n * sizeof(*moving));

				memcpy(moving, &m.e[first], n * sizeof(*moving));
				memmove(&m.e[first], &m.e[first + n], (m.n - first - n) * sizeof(*m.e));
				m.n -= n;
				for (size_t i = 0; i < n; i++) {
					unsigned char *nk = malloc(k2len + moving[i].klen - flen + 1);

					memcpy(nk, key2, k2len);
					memcpy(nk + k2len, moving[i].key + flen, moving[i].klen - flen);
					free(moving[i].key);
					moving[i].key = nk;
					moving[i].klen = k2len + moving[i].klen - flen;
					model_set(&m, moving[i]);
				}
				free(moving);
			}
		}
		kvindex_fail_alloc(ix, 0);
		if (rc == -ENOMEM) {
			require_msg(armed, "op %lu: -ENOMEM without an injected failure", op);
			enomem++;
		} else {
			require_msg(rc == 0 || rc == -ENOENT || rc == -EINVAL,
				      "op %lu kind %u: rc %d", op, kind, rc);
		}
		if (rc == -ENOMEM || op % 500 == 0)
			model_check_live(&m, ix, &rs, op);

		if (op % 700 == 350) {                  /* views, checked long after */
			struct snapshot *s = &snaps[(op / 700) % 3];

			if (s->view) {
				struct kvcursor *c;

				ck_assert_uint_eq(kvview_count(s->view), s->model.n);
				ck_assert_int_eq(kvcursor_open_view(s->view, NULL, 0, &c), 0);
				model_check_cursor(&s->model, c, &rs, s->taken);
				kvview_release(s->view);
				model_free(&s->model);
			}
			ck_assert_int_eq(kvindex_view(ix, &s->view), 0);
			s->model = model_clone(&m);
			s->taken = op;
		}
	}
	model_check_live(&m, ix, &rs, ops);
	for (int i = 0; i < 3; i++) {
		if (snaps[i].view) {
			struct kvcursor *c;

			ck_assert_int_eq(kvcursor_open_view(snaps[i].view, NULL, 0, &c), 0);
			model_check_cursor(&snaps[i].model, c, &rs, snaps[i].taken);
			kvview_release(snaps[i].view);
			model_free(&snaps[i].model);
		}
	}
	ck_assert_uint_gt(enomem, 0);
	model_free(&m);
	free(key);
	free(key2);
	free(data);
	kvindex_destroy(ix);
}
END_TEST

static TCase *add_case(Suite *su, const char *name)
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, 600);
	suite_add_tcase(su, tc);
	return tc;
}

/* ---- extents: relocation, holes, accounting ------------------------------------------------ */

/* Per-segment live bytes as the accounting hook reports them. */
static int64_t acct[8];
static void acct_fn(void *arg, uint64_t seg, int64_t delta)
{
	(void)arg;
	require(seg < 8);
	acct[seg] += delta;
	require(acct[seg] >= 0);
}

/* What the live index really references, per segment. */
static void acct_recount(const struct kvindex *ix, int64_t *out)
{
	struct kvcursor *c;
	const void *k;
	size_t kl;
	const struct kvval *v;
	memset(out, 0, 8 * sizeof(*out));
	require(kvcursor_open_live(ix, NULL, 0, &c) == 0);
	while (kvcursor_next(c, &k, &kl, &v) == 1) {
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);
		for (uint32_t i = 0; i < n; i++)
			out[e[i].seg] += e[i].len;
	}
	kvcursor_close(c);
}

static struct kvext ext_at(uint64_t seg, uint64_t off, uint64_t pos, uint32_t len)
{
	return (struct kvext){ .off = off, .seg = seg, .pos = pos, .cbase = pos, .len = len, .dlen = len };
}

START_TEST(relocate_moves_only_what_is_still_at_its_source)
{
	struct kvindex *ix = new_index();
	struct kvext a = ext_at(2, 0, 1000, 300), b = ext_at(3, 100, 5000, 50), moved;
	uint32_t n;
	const struct kvext *e;

	kvindex_set_account(ix, acct_fn, NULL);
	memset(acct, 0, sizeof acct);
	ck_assert_int_eq(kvindex_put(ix, "k", 1, NULL, 0, 300, &a), 0); /* [0,300) at seg 2 */
	ck_assert_int_eq(kvindex_write(ix, "k", 1, &b), 0);             /* [100,150) at seg 3 */
	/* the cleaner read [0,300) from seg 2 at 1000 before the write: moving it to seg 4 moves
	 * [0,100) and [150,300) only */
	moved = ext_at(4, 0, 70000, 300);
	ck_assert_int_eq(kvindex_relocate(ix, "k", 1, 2, 1000, &moved), 0);
	e = kvval_extents(kvindex_find(ix, "k", 1), &n);
	ck_assert_uint_eq(n, 3);
	ck_assert(e[0].seg == 4 && e[0].off == 0 && e[0].len == 100 && e[0].pos == 70000);
	ck_assert(e[1].seg == 3 && e[1].off == 100 && e[1].len == 50);
	ck_assert(e[2].seg == 4 && e[2].off == 150 && e[2].len == 150 && e[2].pos == 70150);
	ck_assert_int_eq(acct[2], 0);
	ck_assert_int_eq(acct[3], 50);
	ck_assert_int_eq(acct[4], 250);
	/* a second, stale relocation of the same source changes nothing */
	moved = ext_at(5, 0, 0, 300);
	ck_assert_int_eq(kvindex_relocate(ix, "k", 1, 2, 1000, &moved), 0);
	ck_assert_int_eq(acct[5], 0);
	/* an absent key: -ENOENT, nothing created */
	ck_assert_int_eq(kvindex_relocate(ix, "nokey", 5, 2, 1000, &moved), -ENOENT);
	ck_assert_ptr_null(kvindex_find(ix, "nokey", 5));
	kvindex_destroy(ix);
}
END_TEST

START_TEST(punch_makes_a_hole_and_keeps_the_size)
{
	struct kvindex *ix = new_index();
	struct kvext a = ext_at(1, 0, 0, 1000);
	uint32_t n;
	const struct kvext *e;

	kvindex_set_account(ix, acct_fn, NULL);
	memset(acct, 0, sizeof acct);
	ck_assert_int_eq(kvindex_put(ix, "k", 1, NULL, 0, 5000, &a), 0); /* 1000 bytes, then a hole */
	ck_assert_int_eq(kvindex_punch(ix, "k", 1, 200, 300), 0);
	e = kvval_extents(kvindex_find(ix, "k", 1), &n);
	ck_assert_uint_eq(n, 2);
	ck_assert(e[0].off == 0 && e[0].len == 200 && e[1].off == 500 && e[1].len == 500 && e[1].pos == 500);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "k", 1)), 5000);
	ck_assert_int_eq(acct[1], 700);
	ck_assert_int_eq(kvindex_punch(ix, "k", 1, 0, 1ull << 30), 0); /* past the end: all of it */
	kvval_extents(kvindex_find(ix, "k", 1), &n);
	ck_assert_uint_eq(n, 0);
	ck_assert_uint_eq(kvval_size(kvindex_find(ix, "k", 1)), 5000);
	ck_assert_int_eq(acct[1], 0);
	ck_assert_int_eq(kvindex_punch(ix, "x", 1, 0, 1), -ENOENT);
	kvindex_destroy(ix);
}
END_TEST

/* Random edits (puts, writes, truncates, punches, relocations, deletes, renames, prefix renames,
 * with and without views): the accounting hook's running totals always equal what the live
 * index references. */
START_TEST(accounting_follows_every_extent_the_live_index_gains_and_drops)
{
	uint64_t rs = tu_seed() ^ 0xacc7;
	struct kvindex *ix = new_index();
	struct kvview *view = NULL;
	int64_t real[8];
	char k[8], k2[8];

	kvindex_set_account(ix, acct_fn, NULL);
	memset(acct, 0, sizeof acct);
	for (int op = 0; op < 20000; op++) {
		uint64_t x = tu_rand(&rs), seg = 1 + x % 7, off = (x >> 8) % 4000, len = 1 + (x >> 20) % 900;
		struct kvext e = ext_at(seg, off, (x >> 32) % 100000, (uint32_t)len);
		snprintf(k, sizeof k, "d/k%u", (unsigned)((x >> 40) % 6));
		snprintf(k2, sizeof k2, "d/k%u", (unsigned)((x >> 44) % 6));
		switch ((x >> 48) % 10) {
		case 0: e.off = 0; require(kvindex_put(ix, k, strlen(k), NULL, 0, len + off, &e) == 0); break;
		case 1: case 2: require(kvindex_write(ix, k, strlen(k), &e) == 0); break;
		case 3: require(kvindex_truncate(ix, k, strlen(k), off) == 0); break;
		case 4: kvindex_punch(ix, k, strlen(k), off, len); break;
		case 5: kvindex_relocate(ix, k, strlen(k), seg, e.pos, &e); break;
		case 6: kvindex_del(ix, k, strlen(k)); break;
		case 7: kvindex_rename(ix, k, strlen(k), k2, strlen(k2)); break;
		case 8: kvindex_rename_prefix(ix, "d/", 2, (x & 1) ? "e/" : "d/", 2);
			kvindex_rename_prefix(ix, "e/", 2, "d/", 2); break;
		default:
			kvview_release(view);
			view = NULL;
			if (x & 1)
				require(kvindex_view(ix, &view) == 0);
		}
		acct_recount(ix, real);
		for (int sgi = 0; sgi < 8; sgi++)
			require_msg(acct[sgi] == real[sgi], "op %d: segment %d accounted %" PRId64
				    ", referenced %" PRId64, op, sgi, acct[sgi], real[sgi]);
	}
	kvview_release(view);
	kvindex_destroy(ix);
}
END_TEST

/* The cleaner merges a fragmented value by copying its extents into one operation's data and
 * relocating them one call per extent: the pieces join into one extent, in place and (with a
 * view holding the table) on a copy, as pushing every extent one by one would. */
START_TEST(relocating_a_fragmented_value_extent_by_extent_onto_one_operation_leaves_one_extent)
{
	for (int with_view = 0; with_view < 2; with_view++) {
		struct kvindex *ix = new_index();
		struct kvview *view = NULL;
		unsigned char data[1000];
		struct kvext old[10];
		uint32_t n;

		for (int i = 0; i < 10; i++) { /* ten operations: ten extents */
			random_bytes(&(uint64_t){ (uint64_t)i + 1 }, data + i * 100, 100);
			require(t_write(ix, "f", 1, (uint64_t)i * 100, data + i * 100, 100) == 0);
		}
		memcpy(old, kvval_extents(kvindex_find(ix, "f", 1), &n), sizeof old);
		ck_assert_uint_eq(n, 10);
		struct kvext whole = mlog_append(0, data, sizeof data); /* the cleaner's copy */
		for (int i = 0; i < 10; i++) {
			struct kvext piece = whole;
			piece.off = (uint64_t)i * 100;
			piece.pos = whole.pos + (uint64_t)i * 100;
			piece.len = 100;
			if (with_view) {
				kvview_release(view);
				ck_assert_int_eq(kvindex_view(ix, &view), 0);
			}
			ck_assert_int_eq(kvindex_relocate(ix, "f", 1, old[i].seg, old[i].pos, &piece), 0);
		}
		const struct kvval *v = kvindex_find(ix, "f", 1);
		const struct kvext *e = kvval_extents(v, &n);
		ck_assert_msg(n == 1, "with_view %d: %u extents", with_view, n);
		ck_assert_uint_eq(e[0].len, 1000);
		ck_assert_uint_eq(kvval_allocated(v), 1000);
		expect_value(ix, "f", 1, data, sizeof data);
		kvview_release(view);
		kvindex_destroy(ix);
	}
}
END_TEST

/* A value of thousands of extents under random writes, punches, cuts and relocations, with
 * views now and then (so edits are made in place and on copies) and allocations that fail: after
 * every edit its allocated bytes (kvval_allocated, a running sum, not a recount) are exactly the
 * bytes a byte model says it holds, its bytes are the model's, and the per-segment accounting is
 * what it references. An edit walks only the extents it touches, so a mistake in the part it
 * skips shows here. KV_SEED reruns a failure. */
START_TEST(a_values_allocated_bytes_stay_exact_under_random_edits_of_many_extents)
{
	enum { CAP = 96 * 1024, START = 3000, OPS = 20000 };
	uint64_t seed = tu_seed(), rs = seed ^ 0xa110c;
	struct kvindex *ix = new_index();
	struct kvview *view = NULL;
	unsigned char *model = calloc(1, CAP), *held = calloc(1, CAP), data[256];
	uint64_t size = 0;
	int64_t real[8];
	uint32_t least = UINT32_MAX;
	const char *k = "many";

	require(model && held);
	kvindex_set_account(ix, acct_fn, NULL);
	memset(acct, 0, sizeof acct);
	for (uint64_t i = 0; i < START; i++) { /* one extent per write: each its own operation */
		random_bytes(&rs, data, 16);
		require(t_write(ix, k, 4, i * 16, data, 16) == 0);
		memcpy(model + i * 16, data, 16);
		memset(held + i * 16, 1, 16);
	}
	size = START * 16;
	for (int op = 0; op < OPS; op++) {
		uint64_t x = tu_rand(&rs), off = tu_rand(&rs) % (size + 64), len = 1 + (x >> 8) % 24;
		unsigned kind = (unsigned)(x % 100);
		bool armed = (x >> 40) % 16 == 0;
		int rc;

		if (off + len > CAP - 1)
			off = 0;
		if (armed) /* a failed edit changes nothing: the model is updated only on success */
			kvindex_fail_alloc(ix, 1);
		if (kind < 45) {
			random_bytes(&rs, data, len);
			rc = t_write(ix, k, 4, off, data, len);
			if (!rc) {
				memcpy(model + off, data, len);
				memset(held + off, 1, len);
				size = off + len > size ? off + len : size;
			}
		} else if (kind < 60) {
			rc = kvindex_punch(ix, k, 4, off, len);
			if (!rc) {
				uint64_t end = off + len < size ? off + len : size;
				if (off < end) {
					memset(model + off, 0, end - off);
					memset(held + off, 0, end - off);
				}
			}
		} else if (kind < 64) {
			uint64_t to = size - tu_rand(&rs) % (size < 32 ? size + 1 : 32);
			if (x & (1u << 20))
				to = size + len; /* longer: a hole */
			if (to > CAP - 256)
				to = CAP - 256;
			rc = kvindex_truncate(ix, k, 4, to);
			if (!rc) {
				if (to < size) {
					memset(model + to, 0, size - to);
					memset(held + to, 0, size - to);
				}
				size = to;
			}
		} else if (kind < 90) {
			/* move a piece of a random extent (its bytes copied to a new place in the log);
			 * now and then from a stale source, which must change nothing */
			uint32_t n;
			const struct kvext *e = kvval_extents(kvindex_find(ix, k, 4), &n);
			if (!n) {
				rc = 0;
			} else {
				struct kvext src = e[tu_rand(&rs) % n];
				uint64_t a = src.off + tu_rand(&rs) % src.len;
				uint64_t b = a + 1 + tu_rand(&rs) % (src.off + src.len - a);
				uint64_t from = src.pos + (a - src.off);
				struct kvext moved = mlog_append(a, mlog + from, b - a);
				if ((x >> 24) % 8 == 0)
					from += 1 + (x >> 28) % 7; /* stale: those bytes are not there */
				rc = kvindex_relocate(ix, k, 4, MLOG_SEG, from, &moved);
			}
		} else {
			kvview_release(view);
			view = NULL;
			rc = kvindex_view(ix, &view);
		}
		kvindex_fail_alloc(ix, 0);
		require_msg(rc == 0 || (armed && rc == -ENOMEM), "op %d (kind %u): %d (KV_SEED=%" PRIu64 ")",
			    op, kind, rc, seed);
		const struct kvval *v = kvindex_find(ix, k, 4);
		uint64_t want = 0, sum = 0;
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);
		for (uint64_t i = 0; i < size; i++)
			want += held[i];
		for (uint32_t i = 0; i < n; i++)
			sum += e[i].len;
		require_msg(kvval_size(v) == size && kvval_allocated(v) == want && sum == want,
			    "op %d (kind %u): size %" PRIu64 " (model %" PRIu64 "), allocated %" PRIu64
			    ", extents hold %" PRIu64 ", model holds %" PRIu64 " (KV_SEED=%" PRIu64 ")", op,
			    kind, kvval_size(v), size, kvval_allocated(v), sum, want, seed);
		unsigned char *got = read_all(v);
		require_msg(!memcmp(got, model, size), "op %d (kind %u): bytes differ (KV_SEED=%" PRIu64 ")",
			    op, kind, seed);
		free(got);
		acct_recount(ix, real);
		for (int sgi = 0; sgi < 8; sgi++)
			require_msg(acct[sgi] == real[sgi], "op %d: segment %d accounted %" PRId64
				    ", referenced %" PRId64 " (KV_SEED=%" PRIu64 ")", op, sgi, acct[sgi],
				    real[sgi], seed);
		least = n < least ? n : least;
	}
	/* the premise: it stayed a value of many extents throughout (hundreds: the count drifts) */
	ck_assert_msg(least >= START / 4, "only %u extents at the least (KV_SEED=%" PRIu64 ")", least, seed);
	kvview_release(view);
	kvindex_destroy(ix);
	free(model);
	free(held);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("index");
	TCase *tc;
	SRunner *sr;
	int failed;

	tu_seed();
	tc = add_case(su, "extents");
	tcase_add_test(tc, relocate_moves_only_what_is_still_at_its_source);
	tcase_add_test(tc, punch_makes_a_hole_and_keeps_the_size);
	tcase_add_test(tc, accounting_follows_every_extent_the_live_index_gains_and_drops);
	tcase_add_test(tc, a_values_allocated_bytes_stay_exact_under_random_edits_of_many_extents);
	tcase_add_test(tc, relocating_a_fragmented_value_extent_by_extent_onto_one_operation_leaves_one_extent);
	tc = add_case(su, "order");
	tcase_add_test(tc, put_then_find_returns_value);
	tcase_add_test(tc, find_absent_returns_null);
	tcase_add_test(tc, put_replaces_value_and_meta_wholesale);
	tcase_add_test(tc, empty_key_is_a_key_and_sorts_first);
	tcase_add_test(tc, keys_iterate_in_memcmp_order);
	tcase_add_test(tc, shorter_prefix_sorts_first);
	tcase_add_test(tc, binary_keys_with_nul_are_distinct);
	tcase_add_test(tc, keys_sharing_long_prefixes_are_found);
	tcase_add_test(tc, delete_removes_entry_and_absent_is_enoent);
	tcase_add_test(tc, delete_rebalances_and_keeps_order);
	tcase_add_test(tc, count_and_bytes_follow_every_mutation);
	tcase_add_test(tc, ascending_puts_append_and_an_equal_or_smaller_key_still_finds_its_place);
	tc = add_case(su, "values");
	tcase_add_test(tc, write_creates_empty_entry_and_zero_fills_gap);
	tcase_add_test(tc, zero_length_write_creates_entry_and_changes_nothing);
	tcase_add_test(tc, appends_cost_one_extent_each_amortised);
	tcase_add_test(tc, a_write_far_past_the_end_leaves_a_hole_that_holds_nothing);
	tcase_add_test(tc, holes_read_as_zeros);
	tcase_add_test(tc, a_write_into_a_value_shared_with_a_view_copies_only_its_extent_table);
	tcase_add_test(tc, truncate_down_and_up);
	tcase_add_test(tc, read_past_end_is_short_then_zero);
	tcase_add_test(tc, setmeta_replaces_only_meta);
	tc = add_case(su, "views");
	tcase_add_test(tc, view_is_frozen_while_live_changes);
	tcase_add_test(tc, view_outlives_the_index);
	tcase_add_test(tc, view_cursor_outlives_its_view);
	tcase_add_test(tc, empty_view_is_empty);
	tcase_add_test(tc, view_released_on_other_thread);
	tcase_add_test(tc, view_reads_race_free_with_live_mutations);
	tcase_add_test(tc, cursor_from_start_key);
	tcase_add_test(tc, cursor_on_empty_index_returns_nothing);
	tc = add_case(su, "renames");
	tcase_add_test(tc, rename_replaces_target);
	tcase_add_test(tc, rename_to_itself_is_a_noop_and_absent_is_enoent);
	tcase_add_test(tc, rename_moves_a_large_value_without_copying_it);
	tcase_add_test(tc, rename_prefix_moves_subtree);
	tcase_add_test(tc, rename_prefix_into_and_out_of_its_own_subtree);
	tcase_add_test(tc, rename_prefix_too_long_is_einval_and_moves_nothing);
	tc = add_case(su, "limits");
	tcase_add_test(tc, limits_return_einval_and_efbig);
	tcase_add_test(tc, memory_per_small_entry_is_under_200_bytes);
	tc = add_case(su, "faults");
	tcase_add_test(tc, failed_allocation_leaves_index_unchanged);
	tcase_add_test(tc, failed_allocation_while_splitting_leaves_index_unchanged);
	tc = add_case(su, "random");
	tcase_add_test(tc, random_operations_match_a_sorted_array_model);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
