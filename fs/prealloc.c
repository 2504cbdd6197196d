/* prealloc.c — a file's preallocated range and the space the store promises it
 * (docs/FILESYSTEM.md §4), with the semantics of a copy-on-write filesystem (btrfs): bytes
 * preallocated and not yet written are promised log room; the first write into each of them
 * cannot fail for lack of space (it consumes the promise); later writes are ordinary writes.
 *
 * Each file keeps, in its node blob (meta.h), one range [pa_lo, pa_hi) — the hull of what was
 * preallocated —, how many of its bytes were never written (pa_unwritten) and the log bytes
 * still promised to them (pa_promised). "Never written" is "a hole": the engine's extent map
 * says which bytes of the range hold data, so an overwrite consumes nothing. The store-wide
 * count is the sum over the files, set at mount (kvfs_fs_load_promises) and moved by every
 * change after its record is applied, so a crash at any point leaves the records and the next
 * mount's sum in agreement.
 *
 * A store whose files were ever promised space says so in a key of its own, PROMISED_KEY
 * (docs/FORMAT.md 10.1), put in the record of the first change that promises: the mount sums the
 * node blobs only when it or `space.promise` is there (a pass over every key), and the key, unlike
 * that file, is in every state that holds a promise — a crash cannot separate them, and deleting
 * the file by hand no longer makes the mount forget the promises (attack5 finding 2).
 *
 * Releases (a truncation, the file's deletion, the last unwritten byte written) wait in the
 * calling thread's `pending` until the change's record is applied (kvfs_prealloc_settle, from
 * the one place batches are applied), so a change that fails releases nothing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs_internal.h"

/* Empty value, no metadata; never deleted by the tree. */
#define PROMISED_KEY KVFS_PROMISED_KEY
#define PROMISED_KLEN (sizeof(PROMISED_KEY) - 1)

static __thread uint64_t pending;

/* 1 when the store holds PROMISED_KEY, 0 when not, or a negative errno. */
static int marked(struct kv *kv)
{
	int rc = kv_stat(kv, PROMISED_KEY, PROMISED_KLEN, NULL, NULL, NULL);

	return rc == 0 ? 1 : rc == -ENOENT ? 0 : rc;
}

/* The change being built promises space: it puts PROMISED_KEY too, unless the store has it. */
static int mark(struct kvfs_txn *t)
{
	struct kv_batch *b;
	int rc = marked(t->fs->kv);

	if (rc)
		return rc < 0 ? rc : 0;
	rc = kvfs_txn_batch(t, &b);
	return rc ? rc : kv_batch_put(b, PROMISED_KEY, PROMISED_KLEN, NULL, 0, NULL, 0);
}

/* The log bytes `bytes` of first writes may take at key. */
static uint64_t cost(const struct kvfs_txn *t, uint64_t bytes)
{
	return kv_promise_cost(bytes, t->klen, KVFS_META_LEN);
}

/* Bytes of [lo, hi) that hold no data. */
static int holes(struct kvfs_txn *t, uint64_t lo, uint64_t hi, uint64_t *out)
{
	uint64_t data = 0;
	int rc;

	*out = 0;
	if (hi <= lo)
		return 0;
	rc = kv_allocated_range(t->fs->kv, t->key, t->klen, lo, hi - lo, &data);
	if (rc == -ENOENT)
		rc = 0, data = 0; /* a file not yet in the store: all holes */
	if (!rc)
		*out = hi - lo - data;
	return rc;
}

static void clear(struct kvfs_meta *m)
{
	m->pa_lo = m->pa_hi = m->pa_unwritten = m->pa_promised = 0;
}

/* Promise what the range's holes need beyond what the file already has; the meta follows. */
static int promise_holes(struct kvfs_txn *t, uint64_t unwritten, uint64_t *promised)
{
	struct kvfs_meta *m = &t->st.meta;
	uint64_t more = 0;
	int rc;

	*promised = 0;
	if (unwritten > m->pa_unwritten)
		more = cost(t, unwritten - m->pa_unwritten) + (m->pa_unwritten ? 0 : KV_PROMISE_SLACK);
	rc = more ? mark(t) : 0;
	if (!rc)
		rc = kv_promise(t->fs->kv, more);
	if (rc)
		return rc; /* -ENOSPC: the disk cannot hold the promise; nothing changed */
	*promised = more;
	m->pa_unwritten = unwritten;
	m->pa_promised += more;
	return 0;
}

int kvfs_prealloc_range(struct kvfs_txn *t, uint64_t off, uint64_t end, int zero, uint64_t *promised)
{
	struct kvfs_meta *m = &t->st.meta;
	uint64_t lo = off, hi = end, h, zeroed = 0;
	int rc;

	*promised = 0;
	if (t->fs->writer.apply)
		return 0; /* a node of a group: no promises (docs/FILESYSTEM.md §4) */
	if (m->pa_hi > m->pa_lo) {
		lo = m->pa_lo < lo ? m->pa_lo : lo;
		hi = m->pa_hi > hi ? m->pa_hi : hi;
	}
	rc = holes(t, lo, hi, &h);
	if (!rc && zero) /* the zeroed range's data becomes holes too */
		rc = holes(t, off, end, &zeroed);
	if (!rc && zero)
		h += (end - off) - zeroed, h = h > hi - lo ? hi - lo : h;
	if (rc)
		return rc;
	rc = promise_holes(t, h, promised);
	if (rc)
		return rc;
	m->pa_lo = lo;
	m->pa_hi = hi;
	if (m->pa_unwritten == 0) { /* every byte of the range holds data: nothing to promise */
		pending += m->pa_promised;
		clear(m);
	}
	return 0;
}

int kvfs_prealloc_punch(struct kvfs_txn *t, uint64_t off, uint64_t end, uint64_t *promised)
{
	struct kvfs_meta *m = &t->st.meta;
	uint64_t data = 0, lo, hi;
	int rc;

	*promised = 0;
	if (m->pa_hi <= m->pa_lo)
		return 0;
	lo = off > m->pa_lo ? off : m->pa_lo;
	hi = end < m->pa_hi ? end : m->pa_hi;
	if (hi <= lo)
		return 0;
	/* a hole punched in the range stays preallocated, as if zeroed: its bytes are promised
	 * again (the range is one interval; it cannot leave a gap) */
	rc = kv_allocated_range(t->fs->kv, t->key, t->klen, lo, hi - lo, &data);
	if (rc == -ENOENT)
		rc = 0, data = 0;
	return rc ? rc : promise_holes(t, m->pa_unwritten + data, promised);
}

int kvfs_prealloc_write(struct kvfs_txn *t, uint64_t off, uint64_t len, uint64_t *consume)
{
	struct kvfs_meta *m = &t->st.meta;
	uint64_t lo, hi, h, c;
	int rc;

	*consume = 0;
	if (m->pa_hi <= m->pa_lo || len == 0)
		return 0;
	lo = off > m->pa_lo ? off : m->pa_lo;
	hi = off + len < m->pa_hi ? off + len : m->pa_hi;
	rc = holes(t, lo, hi, &h);
	if (rc || h == 0)
		return rc; /* outside the range, or an overwrite: an ordinary write */
	if (h > m->pa_unwritten)
		h = m->pa_unwritten;
	c = cost(t, h);
	*consume = c < m->pa_promised ? c : m->pa_promised;
	m->pa_promised -= *consume;
	m->pa_unwritten -= h;
	if (m->pa_unwritten == 0) {
		/* the range is written: what small writes left of the margin goes back */
		pending += m->pa_promised;
		clear(m);
	}
	return 0;
}

int kvfs_prealloc_truncate(struct kvfs_txn *t, uint64_t size)
{
	struct kvfs_meta *m = &t->st.meta;
	uint64_t h, keep;
	int rc;

	if (m->pa_hi <= m->pa_lo || size >= m->pa_hi)
		return 0; /* growing keeps the range, as cutting past its end does */
	if (size <= m->pa_lo) {
		pending += m->pa_promised;
		clear(m);
		return 0;
	}
	rc = holes(t, m->pa_lo, size, &h);
	if (rc)
		return rc;
	if (h > m->pa_unwritten)
		h = m->pa_unwritten;
	keep = cost(t, h) < m->pa_promised ? cost(t, h) : m->pa_promised;
	pending += m->pa_promised - keep;
	m->pa_hi = size;
	m->pa_unwritten = h;
	m->pa_promised = keep;
	if (h == 0) {
		pending += m->pa_promised;
		clear(m);
	}
	return 0;
}

void kvfs_prealloc_gone(const struct kvfs_meta *m)
{
	pending += m->pa_promised;
}

void kvfs_prealloc_settle(struct kvfs_fs *fs, int applied)
{
	if (applied && pending)
		kv_promise_release(fs->kv, pending);
	pending = 0;
}

void kvfs_prealloc_forget(void)
{
	pending = 0;
}

/* kv_scan's callback: the promises recorded in node blobs. */
static int sum_promises(void *arg, const void *key, size_t klen, uint64_t size, const void *meta,
			size_t mlen)
{
	struct kvfs_meta m;
	uint64_t link;

	(void)key, (void)klen, (void)size;
	if (mlen >= KVFS_META_LEN && kvfs_blob_decode(meta, mlen, &m, &link) == KVFS_BLOB_IS_NODE)
		*(uint64_t *)arg += m.pa_promised;
	return 0;
}

int kvfs_fs_load_promises(struct kvfs_fs *fs, uint64_t *promised)
{
	uint64_t sum = 0;
	int rc;

	*promised = 0;
	rc = marked(fs->kv);
	if (rc < 0)
		return rc;
	if (!rc && !kv_promise_ever(fs->kv))
		return 0; /* a store that never preallocated: no pass over its keys */
	if (!rc) {
		/* a store that promised before the key existed (it has only the file): marked now.
		 * No room for the record leaves it to the next mount; the file still marks it. */
		rc = kv_put(fs->kv, PROMISED_KEY, PROMISED_KLEN, NULL, 0);
		if (rc && rc != -ENOSPC && rc != -EDQUOT)
			return rc;
	}
	rc = kv_scan(fs->kv, "", 0, sum_promises, &sum);
	*promised = sum;
	return rc < 0 ? rc : kv_promise_set(fs->kv, sum);
}
