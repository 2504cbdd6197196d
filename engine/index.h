/* index.h — the in-memory ordered index: keys (byte strings, memcmp order) to entries (a
 * small metadata blob, a size, and the extents saying where in the log the value's bytes are).
 *
 * A copy-on-write B+tree with reference-counted nodes, keys and extent tables. A view
 * (kvindex_view) freezes the whole index in O(1); later mutations copy only what they touch while
 * a view shares it, so a checkpoint can be written from a view while writers go on.
 *
 * The index holds no value bytes: the log does (the log is the value store, segtab.h). An extent
 * maps a file range of a value to bytes of one operation's data in one log segment; a range no
 * extent covers is a hole and reads as zeros.
 *
 * Thread safety: the live index has one writer at a time and readers that do not overlap a
 * mutation (the store serialises with a rwlock). A view may be read by any thread at any time,
 * concurrently with mutations of the live index, and released from any thread. */
#ifndef KVFS_INDEX_H
#define KVFS_INDEX_H
#include <stddef.h>
#include <stdint.h>

#include "kv.h"

/* Value bytes [off, off + len) are the log bytes [pos, pos + len) of segment seg (named by its
 * first LSN). Those bytes are part of one operation's data, which starts at cbase and is dlen
 * bytes long: its chunk checksums are found from those two (record.h). */
struct kvext {
	uint64_t off;
	uint64_t seg;
	uint64_t pos;
	uint64_t cbase;
	uint32_t len;
	uint32_t dlen;
};

struct kvindex;
struct kvview;
struct kvval;    /* one entry's value and metadata; read-only through this header */
struct kvcursor;

int  kvindex_create(struct kvindex **out);
void kvindex_destroy(struct kvindex *ix);

/* Mutations. Each returns 0, -ENOENT where it says so, -EFBIG past KV_MAX_VALUE or for an
 * extent that is not one (empty, longer than its operation's data), -EINVAL for a key or meta over
 * its limit, or -ENOMEM (the index is then unchanged). */
/* Replace the entry: size bytes, all of them in ext, or none (ext NULL: a hole, or empty). */
int kvindex_put(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
		uint64_t size, const struct kvext *ext);
/* The same with any number of extents (ascending, disjoint, inside size): a checkpoint's entry. */
int kvindex_put_extents(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
			uint64_t size, const struct kvext *ext, uint32_t n);
/* 0 when ext[0..n) are extents kvindex_put_extents takes for a value of size bytes, else -EFBIG. */
int kvindex_check_extents(uint64_t size, const struct kvext *ext, uint32_t n);
int kvindex_del(struct kvindex *ix, const void *key, size_t klen);                  /* -ENOENT */
/* Bytes [ext->off, ext->off + ext->len) of the value are now ext's; the size grows to cover them
 * (a gap reads as zeros). Creates an empty entry when absent. ext NULL: write nothing (only
 * that creation). */
int kvindex_write(struct kvindex *ix, const void *key, size_t klen, const struct kvext *ext);
/* Make [off, off + len) of the value a hole, its size unchanged. -ENOENT when absent. */
int kvindex_punch(struct kvindex *ix, const void *key, size_t klen, uint64_t off, uint64_t len);
/* Set the value's size, cutting or extending with a hole; creates an empty entry when absent. */
int kvindex_truncate(struct kvindex *ix, const void *key, size_t klen, uint64_t size);
/* The cleaner moved bytes: in the range [ext->off, ext->off + ext->len), every part whose bytes
 * are still at src_seg, position src_pos + (its offset - ext->off), is now ext's; any other part
 * (rewritten since, a hole) stays as it is. -ENOENT when the key is absent. */
int kvindex_relocate(struct kvindex *ix, const void *key, size_t klen, uint64_t src_seg,
		     uint64_t src_pos, const struct kvext *ext);
int kvindex_setmeta(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen); /* -ENOENT */
/* Move the entry at from to to, replacing any entry at to. -ENOENT when from is absent. */
int kvindex_rename(struct kvindex *ix, const void *from, size_t flen, const void *to, size_t tlen);
/* Move every entry whose key starts with from to the key with that prefix replaced by to,
 * replacing entries already there. Keys that would exceed KV_MAX_KEY: -EINVAL, nothing moved. */
int kvindex_rename_prefix(struct kvindex *ix, const void *from, size_t flen, const void *to, size_t tlen);
/* Called with every extent byte count the live index gains (delta > 0) or drops (< 0), per
 * segment, inside the mutation that does it. */
void kvindex_set_account(struct kvindex *ix, void (*fn)(void *arg, uint64_t seg, int64_t delta), void *arg);

/* Lookups on the live index (caller excludes mutations while using the result). */
const struct kvval *kvindex_find(const struct kvindex *ix, const void *key, size_t klen);
uint64_t kvindex_count(const struct kvindex *ix);
uint64_t kvindex_bytes(const struct kvindex *ix);     /* sum of key and value sizes */
/* Heap bytes allocated for the live index (nodes, keys, entries, extent tables), plus what only
 * its views still hold. */
uint64_t kvindex_mem(const struct kvindex *ix);
/* Testing: the nth allocation the index makes from now on fails (n >= 1; 0: none). Call it
 * with no mutation running. */
void kvindex_fail_alloc(struct kvindex *ix, uint64_t nth);

/* Entries. */
uint64_t kvval_size(const struct kvval *v);
const void *kvval_meta(const struct kvval *v, size_t *mlen);
/* The bytes the value's extents hold (the rest is holes): their lengths' sum, kept by every
 * edit, O(1). */
uint64_t kvval_allocated(const struct kvval *v);
/* The value's extents, ascending and disjoint (*n of them; NULL when none). */
const struct kvext *kvval_extents(const struct kvval *v, uint32_t *n);

/* Views: an immutable picture of the index, valid until released. -ENOMEM only. */
int  kvindex_view(struct kvindex *ix, struct kvview **out);
void kvview_release(struct kvview *v);
uint64_t kvview_count(const struct kvview *v);

/* Cursors walk entries in key order from the first key >= start (start NULL: from the first).
 * A live cursor is valid only while no mutation runs; a view cursor as long as its view. */
int  kvcursor_open_live(const struct kvindex *ix, const void *start, size_t slen, struct kvcursor **out);
int  kvcursor_open_view(const struct kvview *v, const void *start, size_t slen, struct kvcursor **out);
/* 1 and the next entry, or 0 at the end. Pointers stay valid as long as the cursor is. */
int  kvcursor_next(struct kvcursor *c, const void **key, size_t *klen, const struct kvval **val);
void kvcursor_close(struct kvcursor *c);
#endif
