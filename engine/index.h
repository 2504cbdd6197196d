/* index.h — the in-memory ordered index: keys (byte strings, memcmp order) to entries
 * (a value of up to KV_MAX_VALUE bytes plus a small metadata blob).
 *
 * A copy-on-write B+tree with reference-counted nodes, keys and values. A view (kvindex_view)
 * freezes the whole index in O(1); later mutations copy only what they touch while a view
 * shares it, so a snapshot can be written from a view while writers go on.
 *
 * Thread safety: the live index has one writer at a time and readers that do not overlap a
 * mutation (the store serialises with a rwlock). A view may be read by any thread at any time,
 * concurrently with mutations of the live index, and released from any thread.
 *
 * Values are paged: writing len bytes at an offset of a large value costs O(len) (plus, once per
 * view that shares the value, a copy of its page table), never a copy of the whole value. */
#ifndef KVFS_INDEX_H
#define KVFS_INDEX_H
#include <stddef.h>
#include <stdint.h>

#define KV_MAX_KEY 4096u
#define KV_MAX_META 1024u
#define KV_MAX_VALUE (1ull << 30)

struct kvindex;
struct kvview;
struct kvval;    /* one entry's value and metadata; read-only through this header */
struct kvcursor;

int  kvindex_create(struct kvindex **out);
void kvindex_destroy(struct kvindex *ix);

/* Mutations. Each returns 0, -ENOENT where it says so, -EFBIG past KV_MAX_VALUE, -EINVAL for a
 * key or meta over its limit, or -ENOMEM (the index is then unchanged). */
int kvindex_put(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
		const void *val, uint64_t vlen);
int kvindex_del(struct kvindex *ix, const void *key, size_t klen);                  /* -ENOENT */
/* Write into the value at off, zero-filling any gap; creates an empty entry when absent. */
int kvindex_write(struct kvindex *ix, const void *key, size_t klen, uint64_t off,
		  const void *data, uint64_t len);
/* Set the value's size, cutting or zero-extending; creates an empty entry when absent. */
int kvindex_truncate(struct kvindex *ix, const void *key, size_t klen, uint64_t size);
int kvindex_setmeta(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen); /* -ENOENT */
/* Move the entry at from to to, replacing any entry at to. -ENOENT when from is absent. */
int kvindex_rename(struct kvindex *ix, const void *from, size_t flen, const void *to, size_t tlen);
/* Move every entry whose key starts with from to the key with that prefix replaced by to,
 * replacing entries already there. Keys that would exceed KV_MAX_KEY: -EINVAL, nothing moved. */
int kvindex_rename_prefix(struct kvindex *ix, const void *from, size_t flen, const void *to, size_t tlen);

/* Lookups on the live index (caller excludes mutations while using the result). */
const struct kvval *kvindex_find(const struct kvindex *ix, const void *key, size_t klen);
uint64_t kvindex_count(const struct kvindex *ix);
uint64_t kvindex_bytes(const struct kvindex *ix);     /* sum of key and value lengths */
/* Heap bytes allocated for the live index (nodes, keys, values, pages), plus what only its views
 * still hold. */
uint64_t kvindex_mem(const struct kvindex *ix);
/* Testing: the nth allocation the index makes from now on fails (n >= 1; 0: none). Call it
 * with no mutation running. */
void kvindex_fail_alloc(struct kvindex *ix, uint64_t nth);

/* Entries. */
uint64_t kvval_size(const struct kvval *v);
const void *kvval_meta(const struct kvval *v, size_t *mlen);
/* Copy up to len bytes from off into buf (holes read as zeros); returns bytes copied, 0 at or
 * past the end. */
size_t kvval_read(const struct kvval *v, uint64_t off, void *buf, size_t len);

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
