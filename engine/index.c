/* index.c — the in-memory index (index.h): a copy-on-write B+tree of reference-counted nodes.
 *
 * Shape
 *   Leaves hold up to FANOUT entries (struct kvval: key, meta and value in one object), inner
 *   nodes up to FANOUT children and FANOUT-1 separators (struct kvkey). Every key in child[i]
 *   is < sep[i] <= every key in child[i+1]. A leaf split makes its separator the shortest prefix
 *   of the right half's first key that still sorts after the left half's last key, so separators
 *   stay short; inner splits and rebalancing only move separators. All leaves are at one depth.
 *   No node is ever empty: the root is NULL for an empty index, an inner root has at least two
 *   children, and a node left empty by a delete is removed at once. A non-root node that falls
 *   below MIN_FILL is merged with a sibling when both fit in one node, else the two share their
 *   contents evenly; sharing needs memory (a copy of a shared sibling, a new separator) and is
 *   skipped when there is none, leaving a small node, never a wrong tree.
 *
 * Search
 *   Every node keeps plen: all its keys start with pfx[0, plen) (plen <= PFX_MAX, kept in the
 *   node itself), and per key the 8 bytes after that prefix as a big-endian number (its head,
 *   zero-padded). Keys whose heads differ are ordered by their heads, so a search touches a key
 *   object only among the (usually zero or one) keys whose head equals the searched key's.
 *   plen is computed from the node's own keys when it is rebuilt (split, merge, share) and
 *   shrunk when a key that does not share the prefix is added.
 *
 * Sharing (copy-on-write)
 *   refs counts what points at an object: for a node, parent slots, views and view cursors; for
 *   an entry, leaf slots; for a page table, entries; for a page, page tables; for a separator,
 *   inner-node slots. A view takes a reference on the root and nothing else. A mutation walks
 *   down from the live root and replaces every node on its path whose refs > 1 by a copy; the
 *   copy takes a reference on everything the original points to, and the live parent's
 *   reference moves from the original to the copy. Walking top-down, an object whose holder is
 *   exclusive to the live index and whose refs == 1 cannot be reached from any view, so it is
 *   changed in place; anything else is copied first. The same rule goes down through entries
 *   and extent tables. Hence: an object reachable from a view is never modified.
 *   Only the writer adds references to objects the live index can reach (view cursors add one
 *   to a root their view already holds), so refs == 1 cannot rise behind the writer's back.
 *   Counts drop from any thread: decrements are acq_rel, so everything a thread did with an
 *   object happens before whoever frees it; the writer's refs == 1 test is an acquire load, so a
 *   view's last reads happen before the writer's first in-place write.
 *
 * Lifetimes
 *   A view holds a reference on its root and on the meter, so it stays readable after
 *   kvindex_destroy. A view cursor holds the same references of its own, so it may outlive its
 *   view. A live cursor holds nothing: it is valid until the next mutation.
 *
 * Values
 *   An entry holds its key, metadata and size, and a pointer to an extent table: the value's
 *   bytes live in the log (segtab.h), the table says where. Extents are sorted by file offset
 *   and never overlap; a gap is a hole that reads as zeros; bytes past the last extent up to the
 *   size are a hole too. A table is shared (refcounted) by entries that differ only in key or
 *   metadata and by views; an edit of a shared table builds a new one. Every extent the live
 *   index gains or drops is reported to the accounting hook (kvindex_set_account), which keeps
 *   the per-segment live byte counts the cleaner and segment deletion go by.

 * Failure
 *   A mutation allocates everything it may need before changing anything a reader can see;
 *   what follows cannot fail. Copying shared nodes on the way down is invisible (the copy equals
 *   the original), so a mutation that fails after such copies has still changed nothing. Bulk
 *   renames keep a reference on the old root and put it back if anything fails.
 *
 * Accounting
 *   A meter shared by the index, its views and view cursors counts the heap bytes of every
 *   node, separator, entry and extent table alive (malloc's chunk sizes: glibc adds an
 *   8-byte header and rounds to 16), whoever frees them. kvindex_mem is its value: the live
 *   index plus whatever only its views still hold.
 */
#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "index.h"

#define FANOUT 64              /* entries per leaf, children per inner node */
#define MIN_FILL (FANOUT / 4)  /* below this a non-root node is merged or refilled */
#define MAX_DEPTH 16           /* levels: a node that splits keeps >= 32, so each level has at
				* most 1/32 as many nodes as the one below: 16 is > 2^70 keys */
#define PFX_MAX 55             /* prefix bytes kept in a node: fills its header to 64 bytes */

_Static_assert(KV_MAX_KEY <= UINT16_MAX && KV_MAX_META <= UINT16_MAX, "lengths fit in 16 bits");
_Static_assert(KV_MAX_WRITE <= UINT32_MAX, "an extent's length fits in 32 bits");

/* Counts the index's heap bytes; shared with views and view cursors, which may free objects
 * after the index is gone. */
struct meter {
	atomic_uint refs;       /* the index, each view, each view cursor */
	_Atomic uint64_t bytes; /* chunk sizes of every object alive */
	uint64_t fail_in;       /* testing: allocations until one fails, 0 = never; writer only */
};

struct kvkey {                  /* a separator */
	atomic_uint refs;       /* inner-node slots holding it, in every version of the tree */
	uint32_t len;
	unsigned char bytes[];
};

struct exttab {
	atomic_uint refs;       /* entries holding it */
	uint32_t n, cap;
	uint64_t bytes;         /* the sum of e[].len: what the value holds (st_blocks), kept by
				 * every edit so that asking costs nothing */
	struct kvext e[];       /* ascending off, disjoint */
};

struct kvval {
	atomic_uint refs;       /* leaf slots holding it, in every version of the tree */
	uint16_t klen, mlen;
	uint64_t size;          /* value bytes */
	struct exttab *ext;     /* NULL: no extents (all hole) */
	unsigned char bytes[];  /* key, then meta */
};

struct node {
	atomic_uint refs;       /* parent slots, views and view cursors holding it */
	uint16_t n;             /* leaf: entries; inner: children */
	uint16_t plen;          /* every key in the node starts with pfx[0, plen) */
	uint8_t leaf;
	unsigned char pfx[PFX_MAX];
};
_Static_assert(sizeof(struct node) == 64, "a node's header is one cache line");

/* A leaf keeps each entry's head beside its pointer: the scan of the heads brings in the
 * pointer it needs, one cache miss fewer on the way to the entry. */
struct slot {
	uint64_t head;          /* see "Search" above */
	struct kvval *ent;
};

struct leaf {
	struct node h;
	struct slot s[FANOUT];
};

struct inner {
	struct node h;
	uint64_t head[FANOUT - 1];      /* per separator */
	struct kvkey *sep[FANOUT - 1];
	struct node *child[FANOUT];
};

struct kvindex {
	struct node *root;      /* NULL when empty */
	struct meter *m;
	unsigned height;        /* levels: 0 empty, 1 a lone leaf */
	uint64_t count, bytes;
	void (*account)(void *arg, uint64_t seg, int64_t delta);
	void *account_arg;
};

struct kvview {
	struct node *root;      /* holds a reference */
	struct meter *m;        /* holds a reference */
	uint64_t count;
};

/* The way from the root to a key's place in its leaf. */
struct path {
	unsigned depth;                 /* inner nodes above the leaf */
	struct inner *in[MAX_DEPTH];
	unsigned idx[MAX_DEPTH];        /* the child taken at in[i] */
	struct leaf *leaf;
	unsigned pos;                   /* the first entry >= key */
	bool found;                     /* ... and it is equal */
};

struct kvcursor {
	struct node *pin;       /* view cursors: a reference on the view's root, dropped at close */
	struct meter *m;        /* view cursors: a reference on the meter, for that last release */
	unsigned depth;         /* nodes on path[], the last a leaf; 0 once past the end */
	struct {
		const struct node *nd;
		unsigned idx;   /* inner: child being walked; leaf: next entry */
	} path[MAX_DEPTH];
};

/* ---- references ------------------------------------------------------------------------- */

static void ref_init(atomic_uint *r)
{
	atomic_init(r, 1);
}

/* The caller already holds a reference, so the object cannot go away meanwhile. */
static void ref_get(atomic_uint *r)
{
	atomic_fetch_add_explicit(r, 1, memory_order_relaxed);
}

/* true when that was the last reference: the caller frees. */
static bool ref_put(atomic_uint *r)
{
	return atomic_fetch_sub_explicit(r, 1, memory_order_acq_rel) == 1;
}

/* true when the caller's reference is the only one (see "Sharing" above). */
static bool ref_sole(atomic_uint *r)
{
	return atomic_load_explicit(r, memory_order_acquire) == 1;
}

/* ---- memory ----------------------------------------------------------------------------- */

static size_t heap_chunk(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return c < 32 ? 32 : c;
}

static void *meter_alloc(struct meter *m, size_t n)
{
	void *p;

	if (m->fail_in && --m->fail_in == 0)
		return NULL;
	p = malloc(n);
	if (p)
		atomic_fetch_add_explicit(&m->bytes, heap_chunk(n), memory_order_relaxed);
	return p;
}

/* Like realloc: on failure p is untouched. */
static void meter_free(struct meter *m, void *p, size_t n)
{
	if (!p)
		return;
	atomic_fetch_sub_explicit(&m->bytes, heap_chunk(n), memory_order_relaxed);
	free(p);
}

static void meter_put(struct meter *m)
{
	if (ref_put(&m->refs))
		free(m);
}

static void copy_bytes(void *dst, const void *src, size_t n)
{
	if (n)
		memcpy(dst, src, n);
}

/* ---- keys ------------------------------------------------------------------------------- */

/* memcmp order, a proper prefix first. */
static int key_cmp(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c)
		return c;
	return (alen > blen) - (alen < blen);
}

static size_t common_prefix(const unsigned char *a, size_t alen, const unsigned char *b,
			    size_t blen)
{
	size_t n = alen < blen ? alen : blen, i = 0;

	while (i < n && a[i] == b[i])
		i++;
	return i;
}

/* Bytes [off, off + 8) of the key, big-endian, zero past its end. */
static uint64_t key_head(const unsigned char *k, size_t klen, size_t off)
{
	const unsigned char *p = k + off;
	uint64_t h = 0;

	if (off < klen && klen - off >= 8)
		return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40 |
		       (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
		       (uint64_t)p[6] << 8 | (uint64_t)p[7];
	for (size_t i = 0; i < 8; i++)
		h = h << 8 | (off + i < klen ? p[i] : 0);
	return h;
}

static size_t key_size(size_t len)
{
	return sizeof(struct kvkey) + len;
}

static struct kvkey *key_new(struct meter *m, const unsigned char *bytes, size_t len)
{
	struct kvkey *k = meter_alloc(m, key_size(len));

	if (!k)
		return NULL;
	ref_init(&k->refs);
	k->len = (uint32_t)len;
	copy_bytes(k->bytes, bytes, len);
	return k;
}

static void key_put(struct meter *m, struct kvkey *k)
{
	if (ref_put(&k->refs))
		meter_free(m, k, key_size(k->len));
}

/* ---- values: extent tables ---------------------------------------------------------------- */

static size_t val_bytes(size_t klen, size_t mlen)
{
	return sizeof(struct kvval) + klen + mlen;
}

static size_t val_alloc_size(const struct kvval *v)
{
	return val_bytes(v->klen, v->mlen);
}

static size_t exttab_size(uint32_t cap)
{
	return sizeof(struct exttab) + (size_t)cap * sizeof(struct kvext);
}

static void exttab_put(struct meter *m, struct exttab *t)
{
	if (t && ref_put(&t->refs))
		meter_free(m, t, exttab_size(t->cap));
}

static struct exttab *exttab_new(struct meter *m, uint32_t cap)
{
	struct exttab *t = meter_alloc(m, exttab_size(cap));
	if (!t)
		return NULL;
	ref_init(&t->refs);
	t->n = 0;
	t->cap = cap;
	t->bytes = 0;
	return t;
}

static void val_put(struct meter *m, struct kvval *v)
{
	if (!ref_put(&v->refs))
		return;
	exttab_put(m, v->ext);
	meter_free(m, v, val_alloc_size(v));
}

/* A new entry (refs 1, size 0, no extents) holding key and meta. */
static struct kvval *val_alloc(struct meter *m, const void *key, size_t klen, const void *meta,
			       size_t mlen)
{
	struct kvval *v = meter_alloc(m, val_bytes(klen, mlen));

	if (!v)
		return NULL;
	ref_init(&v->refs);
	v->klen = (uint16_t)klen;
	v->mlen = (uint16_t)mlen;
	v->size = 0;
	v->ext = NULL;
	copy_bytes(v->bytes, key, klen);
	copy_bytes(v->bytes + klen, meta, mlen);
	return v;
}

/* The same value (extent table shared) under another key and meta. */
static struct kvval *val_clone(struct meter *m, const struct kvval *v, const void *key, size_t klen,
			       const void *meta, size_t mlen)
{
	struct kvval *nv = val_alloc(m, key, klen, meta, mlen);

	if (!nv)
		return NULL;
	nv->size = v->size;
	nv->ext = v->ext;
	if (nv->ext)
		ref_get(&nv->ext->refs);
	return nv;
}

static struct kvval *val_rekey(struct meter *m, const struct kvval *v, const void *key, size_t klen)
{
	return val_clone(m, v, key, klen, v->bytes + v->klen, v->mlen);
}

static int val_setmeta(struct meter *m, struct kvval **vp, const void *meta, size_t mlen)
{
	struct kvval *v = *vp, *nv;

	if (ref_sole(&v->refs) && mlen == v->mlen) {
		copy_bytes(v->bytes + v->klen, meta, mlen);
		return 0;
	}
	nv = val_clone(m, v, v->bytes, v->klen, meta, mlen);
	if (!nv)
		return -ENOMEM;
	val_put(m, v);
	*vp = nv;
	return 0;
}

/* The live index stops or starts referencing [lo, hi) of file range of extent e. */
static void account_piece(const struct kvindex *ix, const struct kvext *e, uint64_t lo, uint64_t hi,
			  int sign)
{
	if (ix->account && hi > lo)
		ix->account(ix->account_arg, e->seg, sign * (int64_t)(hi - lo));
}

static void account_all(const struct kvindex *ix, const struct kvval *v, int sign)
{
	for (uint32_t i = 0; v->ext && i < v->ext->n; i++)
		account_piece(ix, &v->ext->e[i], 0, v->ext->e[i].len, sign);
}

/* e cut down to the file range [lo, hi) (which must lie inside it). */
static struct kvext ext_slice(const struct kvext *e, uint64_t lo, uint64_t hi)
{
	struct kvext s = *e;
	s.pos = e->pos + (lo - e->off);
	s.off = lo;
	s.len = (uint32_t)(hi - lo);
	return s;
}

/* Extents being laid down in order: e[0, n), bytes their lengths' sum. */
struct pieces {
	struct kvext *e;
	uint32_t n;
	uint64_t bytes;
};

/* b continues a in the file and in the log (same operation's data, next bytes): one extent. */
static bool ext_continues(const struct kvext *a, const struct kvext *b)
{
	return a->off + a->len == b->off && a->seg == b->seg && a->cbase == b->cbase &&
	       a->dlen == b->dlen && a->pos + a->len == b->pos;
}

/* Append e to p (room reserved by the caller), merging it into the last extent when it
 * continues it. */
static void piece_push(struct pieces *p, const struct kvext *e)
{
	p->bytes += e->len;
	if (p->n && ext_continues(&p->e[p->n - 1], e)) {
		p->e[p->n - 1].len += e->len;
		return;
	}
	p->e[p->n++] = *e;
}

/* Join an edit's pieces to the extents kept on either side where they continue them, as
 * pushing every extent one by one would: left is the last one before (NULL: none), right the
 * first one after (NULL: none). Returns whether right was taken into the piece (or left) before
 * it. This is how the cleaner's relocations of a fragmented value, one extent per call, become
 * one extent. The byte sum does not change. */
static bool pieces_join(struct kvext *left, struct pieces *p, const struct kvext *right)
{
	if (left && p->n && ext_continues(left, &p->e[0])) {
		left->len += p->e[0].len;
		memmove(&p->e[0], &p->e[1], (size_t)(p->n - 1) * sizeof(p->e[0]));
		p->n--;
	}
	struct kvext *last = p->n ? &p->e[p->n - 1] : left;
	if (last && right && ext_continues(last, right)) {
		last->len += right->len;
		return true;
	}
	return false;
}

static void ext_push(struct exttab *t, const struct kvext *e)
{
	struct pieces p = { t->e, t->n, t->bytes };
	piece_push(&p, e);
	t->n = p.n;
	t->bytes = p.bytes;
}

/* What an edit does to one value's extents, all in file offsets:
 *   size: everything at or past it goes (a truncate; UINT64_MAX: nothing);
 *   [lo, hi): the range written (lo == hi: none), by new: replaced by new; without new (a
 *         punch): dropped, a hole; relocate: only the parts whose bytes now sit at
 *         src_seg/src_pos + (x - lo) are replaced by the same parts of new, the rest stays. */
struct edit {
	uint64_t size;
	uint64_t lo, hi;
	const struct kvext *new;
	bool relocate;
	uint64_t src_seg, src_pos;
};

/* The part of old extent o starting at file offset a, inside the edit's range: replaced (1) or
 * left alone (0). */
static int piece_replaced(const struct edit *ed, const struct kvext *o, uint64_t a)
{
	if (!ed->relocate)
		return 1;
	return o->seg == ed->src_seg && o->pos + (a - o->off) == ed->src_pos + (a - ed->lo);
}

/* The extents of old an edit may change, [*first, *last): every one before ends at or before
 * the edit's start (where its range or its cut begins), every one after starts at or past the
 * end of its range (a cut reaches to the end). Those outside are kept as they are, so an edit
 * costs O(log n) plus what it touches, not O(n): a file of 35,000 extents (SQLite's database
 * through the mount) is written a page at a time. Extents are sorted and disjoint, so their
 * ends ascend too: both bounds are binary searches. */
static void edit_window(const struct exttab *old, const struct edit *ed, uint32_t *first,
			uint32_t *last)
{
	uint32_t n = old ? old->n : 0, lo = 0, hi = n;
	bool range = ed->lo < ed->hi;
	uint64_t start = range && ed->lo < ed->size ? ed->lo : ed->size;

	while (lo < hi) { /* the first extent that ends past start */
		uint32_t mid = lo + (hi - lo) / 2;
		if (old->e[mid].off + old->e[mid].len > start)
			hi = mid;
		else
			lo = mid + 1;
	}
	*first = lo;
	if (ed->size != UINT64_MAX || !range) { /* a cut (or nothing): to the end */
		*last = n;
		return;
	}
	hi = n;
	while (lo < hi) { /* the first extent that starts at or past the range's end */
		uint32_t mid = lo + (hi - lo) / 2;
		if (old->e[mid].off >= ed->hi)
			hi = mid;
		else
			lo = mid + 1;
	}
	*last = lo;
}

/* Walk old extents [first, last) (edit_window's) against the edit, appending to out (when not
 * NULL) every piece that survives and whatever replaces the rest. With account set, account in
 * the live index what is dropped (-) and added (+). Returns the number of extents it would
 * append (before merging). */
static uint32_t edit_walk(const struct kvindex *ix, const struct exttab *old, uint32_t first,
			  uint32_t last, const struct edit *ed, struct pieces *out, bool account)
{
	uint32_t count = 0;
	bool new_done = !ed->new || ed->relocate; /* a plain write's extent, emitted once */

	for (uint32_t i = first; i < last; i++) {
		const struct kvext *o = &old->e[i];
		uint64_t lo = o->off, hi = o->off + o->len;

		if (hi > ed->size) { /* cut */
			if (account)
				account_piece(ix, o, ed->size > lo ? ed->size - lo : 0, o->len, -1);
			hi = ed->size > lo ? ed->size : lo;
		}
		if (!new_done && lo >= ed->lo) { /* a plain write that lands before this extent */
			if (out)
				piece_push(out, ed->new);
			if (account)
				account_piece(ix, ed->new, 0, ed->new->len, +1);
			count++;
			new_done = true;
		}
		/* up to three pieces: before the range, inside it, after it */
		uint64_t cut[4] = { lo, hi, hi, hi }; /* no range: all of it is "before" */
		if (ed->lo < ed->hi) {
			cut[1] = ed->lo > lo ? (ed->lo < hi ? ed->lo : hi) : lo;
			cut[2] = ed->hi > lo ? (ed->hi < hi ? ed->hi : hi) : lo;
			if (cut[2] < cut[1])
				cut[2] = cut[1];
		}
		for (int p = 0; p < 3; p++) {
			uint64_t a = cut[p], b = cut[p + 1];
			if (a >= b)
				continue;
			if (p == 1 && piece_replaced(ed, o, a)) {
				if (account) {
					account_piece(ix, o, a - o->off, b - o->off, -1);
					if (ed->relocate)
						account_piece(ix, ed->new, a - ed->lo, b - ed->lo, +1);
				}
				if (ed->relocate) {
					struct kvext s = ext_slice(ed->new, a, b);
					if (out)
						piece_push(out, &s);
					count++;
				} else if (!new_done) {
					if (out)
						piece_push(out, ed->new);
					if (account)
						account_piece(ix, ed->new, 0, ed->new->len, +1);
					count++;
					new_done = true;
				}
				continue;
			}
			struct kvext s = ext_slice(o, a, b);
			if (out)
				piece_push(out, &s);
			count++;
		}
	}
	if (!new_done) {
		if (out)
			piece_push(out, ed->new);
		if (account)
			account_piece(ix, ed->new, 0, ed->new->len, +1);
		count++;
	}
	return count;
}

/* Pieces an in-place edit may build aside: a write or a punch makes at most three. */
#define SPLICE_MAX 8

/* Apply an edit to *vp's extents, setting its size to new_size. All or nothing: on -ENOMEM
 * *vp is as it was. When the entry or its table is shared with a view, *vp becomes a new entry
 * or table (the caller's reference to the old one is dropped); otherwise it is changed in place.
 * Only the extents in the edit's window are walked and accounted; the others are moved or copied
 * whole, and the table's byte sum changes by what the window lost and gained. */
static int val_edit(struct kvindex *ix, struct kvval **vp, uint64_t new_size, const struct edit *ed,
		    bool account)
{
	struct meter *m = ix->m;
	struct kvval *v = *vp, *nv = v;
	struct exttab *old = v->ext, *nt;
	bool v_sole = ref_sole(&v->refs), t_sole = v_sole && (!old || ref_sole(&old->refs));
	uint32_t n = old ? old->n : 0, first, last, k, need;
	uint64_t gone = 0;

	/* the common streaming case: appending past every extent, in place */
	if (t_sole && old && ed->new && !ed->relocate && ed->size >= v->size && n &&
	    old->e[n - 1].off + old->e[n - 1].len <= ed->lo && n < old->cap) {
		if (account)
			account_piece(ix, ed->new, 0, ed->new->len, +1);
		ext_push(old, ed->new);
		v->size = new_size;
		return 0;
	}
	edit_window(old, ed, &first, &last);
	k = edit_walk(ix, old, first, last, ed, NULL, false);
	need = first + k + (n - last);
	for (uint32_t i = first; i < last; i++)
		gone += old->e[i].len;
	/* in place when the table is ours alone, the result fits and still fills a quarter of it:
	 * the window's pieces are built aside, then the extents after it shifted into place */
	if (t_sole && old && need && k <= SPLICE_MAX && need <= old->cap && need >= old->cap / 4) {
		struct kvext aside[SPLICE_MAX];
		struct pieces p = { aside, 0, 0 };
		edit_walk(ix, old, first, last, ed, &p, account);
		uint32_t after = last + pieces_join(first ? &old->e[first - 1] : NULL, &p,
						    last < n ? &old->e[last] : NULL);
		memmove(&old->e[first + p.n], &old->e[after], (size_t)(n - after) * sizeof(old->e[0]));
		memcpy(&old->e[first], aside, (size_t)p.n * sizeof(old->e[0]));
		old->n = first + p.n + (n - after);
		old->bytes = old->bytes - gone + p.bytes;
		v->size = new_size;
		return 0;
	}
	nt = NULL;
	if (need) {
		uint32_t cap = need < 4 ? 4 : need + need / 4;
		nt = exttab_new(m, cap);
		if (!nt)
			return -ENOMEM;
	}
	if (!v_sole) {
		nv = val_alloc(m, v->bytes, v->klen, v->bytes + v->klen, v->mlen);
		if (!nv) {
			exttab_put(m, nt);
			return -ENOMEM;
		}
	}
	/* commit: nothing below fails */
	if (nt) {
		struct pieces p = { nt->e + first, 0, 0 };
		if (first)
			memcpy(nt->e, old->e, (size_t)first * sizeof(old->e[0]));
		edit_walk(ix, old, first, last, ed, &p, account);
		uint32_t after = last + pieces_join(first ? &nt->e[first - 1] : NULL, &p,
						    last < n ? &old->e[last] : NULL);
		if (n > after)
			memcpy(&nt->e[first + p.n], &old->e[after], (size_t)(n - after) * sizeof(old->e[0]));
		nt->n = first + p.n + (n - after);
		nt->bytes = (old ? old->bytes - gone : 0) + p.bytes;
	} else {
		edit_walk(ix, old, first, last, ed, NULL, account);
	}
	nv->ext = nt;
	nv->size = new_size;
	if (nv != v) {
		val_put(m, v);
	} else {
		exttab_put(m, old);
	}
	*vp = nv;
	return 0;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static size_t node_size(const struct node *nd)
{
	return nd->leaf ? sizeof(struct leaf) : sizeof(struct inner);
}

static struct node *node_new(struct meter *m, bool leaf)
{
	struct node *nd = meter_alloc(m, leaf ? sizeof(struct leaf) : sizeof(struct inner));

	if (!nd)
		return NULL;
	ref_init(&nd->refs);
	nd->n = 0;
	nd->plen = 0;
	nd->leaf = leaf;
	return nd;
}

/* Free a sole node whose contents have moved elsewhere (or that has none). */
static void node_free_shell(struct meter *m, struct node *nd)
{
	assert(ref_sole(&nd->refs));
	meter_free(m, nd, node_size(nd));
}

static void node_put(struct meter *m, struct node *nd)
{
	if (!nd || !ref_put(&nd->refs))
		return;
	if (nd->leaf) {
		struct leaf *lf = (struct leaf *)nd;

		for (unsigned i = 0; i < nd->n; i++)
			val_put(m, lf->s[i].ent);
	} else {
		struct inner *in = (struct inner *)nd;

		for (unsigned i = 0; i < nd->n; i++) {
			if (i)
				key_put(m, in->sep[i - 1]);
			node_put(m, in->child[i]);
		}
	}
	meter_free(m, nd, node_size(nd));
}

static unsigned node_nkeys(const struct node *nd)
{
	if (nd->leaf)
		return nd->n;
	return nd->n ? nd->n - 1u : 0u;
}

static const unsigned char *node_key(const struct node *nd, unsigned i, size_t *len)
{
	if (nd->leaf) {
		const struct kvval *v = ((const struct leaf *)nd)->s[i].ent;

		*len = v->klen;
		return v->bytes;
	}
	const struct kvkey *k = ((const struct inner *)nd)->sep[i];

	*len = k->len;
	return k->bytes;
}

static uint64_t *node_head(struct node *nd, unsigned i)
{
	if (nd->leaf)
		return &((struct leaf *)nd)->s[i].head;
	return &((struct inner *)nd)->head[i];
}

static uint64_t node_head_at(const struct node *nd, unsigned i)
{
	if (nd->leaf)
		return ((const struct leaf *)nd)->s[i].head;
	return ((const struct inner *)nd)->head[i];
}

/* A copy of a shared node for the live tree: it takes a reference on everything it points to.
 * The original's fields are only read: views may be reading them too. */
static struct node *node_copy(struct meter *m, const struct node *src)
{
	struct node *nd = node_new(m, src->leaf);

	if (!nd)
		return NULL;
	nd->n = src->n;
	nd->plen = src->plen;
	memcpy(nd->pfx, src->pfx, src->plen);
	if (src->leaf) {
		const struct leaf *s = (const struct leaf *)src;
		struct leaf *d = (struct leaf *)nd;

		/* The entries lie all over the heap: ask for every reference count first so the
		 * cache misses overlap (a copy is the first write into a leaf after a snapshot's
		 * view, and sits in the write's latency). */
		for (unsigned i = 0; i < src->n; i++)
			__builtin_prefetch(&s->s[i].ent->refs, 1);
		for (unsigned i = 0; i < src->n; i++) {
			d->s[i] = s->s[i];
			ref_get(&d->s[i].ent->refs);
		}
	} else {
		const struct inner *s = (const struct inner *)src;
		struct inner *d = (struct inner *)nd;

		memcpy(d->head, s->head, node_nkeys(src) * sizeof(d->head[0]));
		for (unsigned i = 0; i < src->n; i++) {
			__builtin_prefetch(&s->child[i]->refs, 1);
			if (i)
				__builtin_prefetch(&s->sep[i - 1]->refs, 1);
		}
		for (unsigned i = 0; i < src->n; i++) {
			if (i) {
				d->sep[i - 1] = s->sep[i - 1];
				ref_get(&d->sep[i - 1]->refs);
			}
			d->child[i] = s->child[i];
			ref_get(&d->child[i]->refs);
		}
	}
	return nd;
}

/* <0 when key sorts before every key the node can hold under its prefix, >0 after, 0 when the
 * key starts with the prefix. */
static int node_prefix_cmp(const struct node *nd, const unsigned char *key, size_t klen)
{
	size_t p = nd->plen, n = klen < p ? klen : p;
	int c = n ? memcmp(key, nd->pfx, n) : 0;

	if (c)
		return c;
	return klen < p ? -1 : 0;
}

static void node_rehead(struct node *nd)
{
	unsigned nk = node_nkeys(nd);

	for (unsigned i = 0; i < nk; i++) {
		size_t len;
		const unsigned char *k = node_key(nd, i, &len);

		*node_head(nd, i) = key_head(k, len, nd->plen);
	}
}

/* Shrink the prefix, if need be, so that key (about to be added) shares it. */
static void node_fit(struct node *nd, const unsigned char *key, size_t klen)
{
	size_t p = common_prefix(key, klen, nd->pfx, nd->plen);

	if (p < nd->plen) {
		nd->plen = (uint16_t)p;
		node_rehead(nd);
	}
}

/* Recompute the prefix of a rebuilt node from its keys: being sorted, the first and last bound
 * it. hp: every key starts with src[0, hp) and the heads were computed at hp (SIZE_MAX: not
 * known). When the first and last heads differ in their first byte the prefix is exactly hp. */
static void node_reprefix(struct node *nd, size_t hp, const unsigned char *src)
{
	unsigned nk = node_nkeys(nd);
	const unsigned char *first, *last;
	size_t flen, llen, p;

	if (nk == 0) {
		nd->plen = 0;
		return;
	}
	if (hp != SIZE_MAX && nk > 1 && (node_head_at(nd, 0) ^ node_head_at(nd, nk - 1)) >> 56) {
		if (src != nd->pfx)
			memcpy(nd->pfx, src, hp);
		nd->plen = (uint16_t)hp;
		return;
	}
	first = node_key(nd, 0, &flen);
	last = node_key(nd, nk - 1, &llen);
	p = common_prefix(first, flen, last, llen);
	if (p > PFX_MAX)
		p = PFX_MAX;
	memcpy(nd->pfx, first, p);
	nd->plen = (uint16_t)p;
	if (p != hp)
		node_rehead(nd);
}

/* Prefix length two nodes' heads can be combined at: their prefixes are the same bytes. */
static size_t shared_hp(const struct node *a, const struct node *b)
{
	if (a->plen == b->plen && !memcmp(a->pfx, b->pfx, a->plen))
		return a->plen;
	return SIZE_MAX;
}

/* How many of the node's heads are < h (*lo) and <= h (*hi). A branch-free count over them
 * all: their cache lines load in parallel, which beats a binary search's chain of dependent
 * misses. */
static void leaf_heads_range(const struct leaf *lf, uint64_t h, unsigned *lo, unsigned *hi)
{
	unsigned lt = 0, le = 0;

	for (unsigned i = 0; i < lf->h.n; i++) {
		lt += lf->s[i].head < h;
		le += lf->s[i].head <= h;
	}
	*lo = lt;
	*hi = le;
}

static void inner_heads_range(const struct inner *in, uint64_t h, unsigned *lo, unsigned *hi)
{
	unsigned lt = 0, le = 0;

	for (unsigned i = 0; i + 1u < in->h.n; i++) {
		lt += in->head[i] < h;
		le += in->head[i] <= h;
	}
	*lo = lt;
	*hi = le;
}

/* The first entry >= key; *found when it is equal. */
static unsigned leaf_search(const struct leaf *lf, const unsigned char *key, size_t klen,
			    bool *found)
{
	const struct node *nd = &lf->h;
	unsigned lo, hi;
	int c = node_prefix_cmp(nd, key, klen);

	*found = false;
	if (c)
		return c < 0 ? 0 : nd->n;
	leaf_heads_range(lf, key_head(key, klen, nd->plen), &lo, &hi);
	while (lo < hi) {       /* entries with the key's head: ordered by the keys themselves */
		unsigned mid = lo + (hi - lo) / 2;
		const struct kvval *v = lf->s[mid].ent;
		int d;

		/* most likely the entry sought, whose value is read next: fetch its next lines
		 * alongside the first rather than after the comparison */
		__builtin_prefetch((const char *)v + 64);
		__builtin_prefetch((const char *)v + 128);
		d = key_cmp(v->bytes, v->klen, key, klen);

		if (d < 0) {
			lo = mid + 1;
		} else {
			*found = d == 0;
			hi = mid;
		}
	}
	return lo;
}

/* The child whose range holds key: the number of separators <= key. */
static unsigned inner_route(const struct inner *in, const unsigned char *key, size_t klen)
{
	const struct node *nd = &in->h;
	unsigned nk = nd->n - 1u, lo, hi;
	int c = node_prefix_cmp(nd, key, klen);

	if (c)
		return c < 0 ? 0 : nk;
	inner_heads_range(in, key_head(key, klen, nd->plen), &lo, &hi);
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct kvkey *s = in->sep[mid];

		if (key_cmp(s->bytes, s->len, key, klen) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void leaf_insert_at(struct leaf *lf, unsigned pos, struct kvval *e)
{
	unsigned n = lf->h.n;

	node_fit(&lf->h, e->bytes, e->klen);
	memmove(&lf->s[pos + 1], &lf->s[pos], (n - pos) * sizeof(lf->s[0]));
	lf->s[pos].ent = e;
	lf->s[pos].head = key_head(e->bytes, e->klen, lf->h.plen);
	lf->h.n++;
}

/* Separator s goes in at index ci, its right child c at ci + 1. */
static void inner_insert_at(struct inner *in, unsigned ci, struct kvkey *s, struct node *c)
{
	unsigned n = in->h.n;

	node_fit(&in->h, s->bytes, s->len);
	memmove(&in->sep[ci + 1], &in->sep[ci], (n - 1 - ci) * sizeof(in->sep[0]));
	memmove(&in->head[ci + 1], &in->head[ci], (n - 1 - ci) * sizeof(in->head[0]));
	memmove(&in->child[ci + 2], &in->child[ci + 1], (n - 1 - ci) * sizeof(in->child[0]));
	in->sep[ci] = s;
	in->head[ci] = key_head(s->bytes, s->len, in->h.plen);
	in->child[ci + 1] = c;
	in->h.n++;
}

/* Take separator si and child ci (si == ci - 1 or si == ci) out of an inner node. */
static void inner_remove(struct inner *in, unsigned si, unsigned ci)
{
	unsigned n = in->h.n;

	if (n > 1) {
		memmove(&in->sep[si], &in->sep[si + 1], (n - 2 - si) * sizeof(in->sep[0]));
		memmove(&in->head[si], &in->head[si + 1], (n - 2 - si) * sizeof(in->head[0]));
	}
	memmove(&in->child[ci], &in->child[ci + 1], (n - 1 - ci) * sizeof(in->child[0]));
	in->h.n--;
}

/* Separator i of an inner node was replaced. */
static void inner_sep_changed(struct inner *in, unsigned i)
{
	const struct kvkey *s = in->sep[i];

	node_fit(&in->h, s->bytes, s->len);
	in->head[i] = key_head(s->bytes, s->len, in->h.plen);
}

/* ---- tree: lookups ---------------------------------------------------------------------- */

/* The leaf's lines are about to be scanned: ask for all of them at once, before the loads
 * that need its header are even issued. */
static void leaf_prefetch(const struct node *nd)
{
	for (size_t off = 0; off < sizeof(struct leaf); off += 64)
		__builtin_prefetch((const char *)nd + off);
}

/* Descend by level count rather than by each node's leaf flag, so the walk never waits on a
 * node's header just to learn what it is. */
static const struct kvval *tree_find(const struct node *nd, unsigned height,
				     const unsigned char *key, size_t klen)
{
	bool found;
	unsigned pos;

	if (!nd)
		return NULL;
	for (unsigned level = 1; level < height; level++) {
		const struct inner *in = (const struct inner *)nd;

		nd = in->child[inner_route(in, key, klen)];
		if (level + 1 == height)
			leaf_prefetch(nd);
	}
	pos = leaf_search((const struct leaf *)nd, key, klen, &found);
	return found ? ((const struct leaf *)nd)->s[pos].ent : NULL;
}

/* The path to key in a non-empty tree; nothing is copied yet. */
static void path_find(const struct kvindex *ix, const unsigned char *key, size_t klen,
		      struct path *p)
{
	struct node *nd = ix->root;

	p->depth = 0;
	while (p->depth + 1 < ix->height) {
		struct inner *in = (struct inner *)nd;
		unsigned i = inner_route(in, key, klen);

		p->in[p->depth] = in;
		p->idx[p->depth++] = i;
		nd = in->child[i];
		if (p->depth + 1 == ix->height)
			leaf_prefetch(nd);
	}
	p->leaf = (struct leaf *)nd;
	p->pos = leaf_search(p->leaf, key, klen, &p->found);
}

/* The way to the end of the index, when key sorts after its last key: no search, one key
 * compared (a checkpoint's entries are loaded in ascending order; so are sequential fills).
 * false when it does not sort last. The index is not empty. */
static bool path_last(const struct kvindex *ix, const unsigned char *key, size_t klen,
		      struct path *p)
{
	struct node *nd = ix->root;

	p->depth = 0;
	while (p->depth + 1 < ix->height) {
		struct inner *in = (struct inner *)nd;

		p->in[p->depth] = in;
		p->idx[p->depth++] = in->h.n - 1u;
		nd = in->child[in->h.n - 1u];
	}
	p->leaf = (struct leaf *)nd;
	const struct kvval *last = p->leaf->s[nd->n - 1u].ent;
	if (key_cmp(last->bytes, last->klen, key, klen) >= 0)
		return false;
	p->pos = nd->n;
	p->found = false;
	return true;
}

/* Copy every shared node along p, top-down, so the whole path belongs to the live index alone
 * and may be changed in place. The copies equal what they replace, so stopping half-way on
 * -ENOMEM changes nothing anyone can see. */
static int path_own(struct kvindex *ix, struct path *p)
{
	struct node **slot = &ix->root;

	for (unsigned d = 0; d <= p->depth; d++) {
		struct node *nd = *slot;

		if (!ref_sole(&nd->refs)) {
			struct node *cp = node_copy(ix->m, nd);

			if (!cp)
				return -ENOMEM;
			*slot = cp;
			node_put(ix->m, nd);
			nd = cp;
		}
		if (d == p->depth) {
			p->leaf = (struct leaf *)nd;
		} else {
			p->in[d] = (struct inner *)nd;
			slot = &p->in[d]->child[p->idx[d]];
		}
	}
	return 0;
}

/* ---- tree: insertion -------------------------------------------------------------------- */

/* Entry i of the leaf's entries with e added at pos. */
static struct kvval *leaf_plus(const struct leaf *lf, unsigned pos, struct kvval *e, unsigned i)
{
	if (i < pos)
		return lf->s[i].ent;
	return i == pos ? e : lf->s[i - 1].ent;
}

/* The shortest key k with lo < k <= hi (lo < hi): a prefix of hi. */
static struct kvkey *key_between(struct meter *m, const struct kvval *lo, const struct kvval *hi)
{
	return key_new(m, hi->bytes, common_prefix(lo->bytes, lo->klen, hi->bytes, hi->klen) + 1);
}

/* Split the full leaf with e added at pos: entries [cut, FANOUT] go to the empty leaf rt. */
static void leaf_split(struct leaf *lf, unsigned pos, struct kvval *e, struct leaf *rt,
		       unsigned cut)
{
	struct slot all[FANOUT + 1];
	size_t hp;

	node_fit(&lf->h, e->bytes, e->klen);
	hp = lf->h.plen;
	memcpy(all, lf->s, pos * sizeof(all[0]));
	all[pos].ent = e;
	all[pos].head = key_head(e->bytes, e->klen, hp);
	memcpy(all + pos + 1, lf->s + pos, (FANOUT - pos) * sizeof(all[0]));
	memcpy(lf->s, all, cut * sizeof(all[0]));
	lf->h.n = (uint16_t)cut;
	memcpy(rt->s, all + cut, (FANOUT + 1 - cut) * sizeof(all[0]));
	rt->h.n = (uint16_t)(FANOUT + 1 - cut);
	node_reprefix(&rt->h, hp, lf->h.pfx);
	node_reprefix(&lf->h, hp, lf->h.pfx);
}

/* Split the full inner node with separator s added at ci and child c at ci + 1: the upper
 * children go to the empty node rt. Returns the separator that now divides in from rt. */
static struct kvkey *inner_split(struct inner *in, unsigned ci, struct kvkey *s, struct node *c,
				 struct inner *rt)
{
	struct node *kids[FANOUT + 1];
	struct kvkey *seps[FANOUT];
	uint64_t heads[FANOUT];
	unsigned total = FANOUT + 1, cut, i;
	size_t hp;

	node_fit(&in->h, s->bytes, s->len);
	hp = in->h.plen;
	for (i = 0; i < total; i++)
		kids[i] = i <= ci ? in->child[i] : (i == ci + 1 ? c : in->child[i - 1]);
	for (i = 0; i < FANOUT; i++) {
		seps[i] = i < ci ? in->sep[i] : (i == ci ? s : in->sep[i - 1]);
		heads[i] = i < ci ? in->head[i] :
				    (i == ci ? key_head(s->bytes, s->len, hp) : in->head[i - 1]);
	}
	/* Appending at the node's end (ascending inserts) leaves the left node nearly full. */
	cut = ci + 1 == FANOUT ? FANOUT - 1 : total / 2;
	memcpy(in->child, kids, cut * sizeof(kids[0]));
	memcpy(in->sep, seps, (cut - 1) * sizeof(seps[0]));
	memcpy(in->head, heads, (cut - 1) * sizeof(heads[0]));
	in->h.n = (uint16_t)cut;
	memcpy(rt->child, kids + cut, (total - cut) * sizeof(kids[0]));
	memcpy(rt->sep, seps + cut, (total - cut - 1) * sizeof(seps[0]));
	memcpy(rt->head, heads + cut, (total - cut - 1) * sizeof(heads[0]));
	rt->h.n = (uint16_t)(total - cut);
	node_reprefix(&rt->h, hp, in->h.pfx);
	node_reprefix(&in->h, hp, in->h.pfx);
	return seps[cut - 1];
}

/* Add e at p (owned, not found) when the leaf is full: it splits, and so does every full inner
 * node above it, up to a new root. The nodes and the one new separator are allocated first. */
static int insert_split(struct kvindex *ix, struct path *p, struct kvval *e)
{
	struct node *fresh[MAX_DEPTH + 1] = { NULL };
	struct leaf *lf = p->leaf;
	unsigned full = 0, need = 0, cut, i;
	struct kvkey *up = NULL;
	struct node *right;
	bool grow;
	int rc = -ENOMEM;

	while (full < p->depth && p->in[p->depth - 1 - full]->h.n == FANOUT)
		full++;
	grow = full == p->depth;
	if (grow && ix->height >= MAX_DEPTH)
		goto out;
	need = 1 + full + grow;
	for (i = 0; i < need; i++) {
		fresh[i] = node_new(ix->m, i == 0);
		if (!fresh[i])
			goto out;
	}
	/* Appending at the leaf's end (ascending inserts) leaves the left leaf nearly full. */
	cut = p->pos == FANOUT ? FANOUT - 1 : (FANOUT + 1) / 2;
	up = key_between(ix->m, leaf_plus(lf, p->pos, e, cut - 1), leaf_plus(lf, p->pos, e, cut));
	if (!up)
		goto out;

	leaf_split(lf, p->pos, e, (struct leaf *)fresh[0], cut);
	right = fresh[0];
	for (i = 0; i < full; i++) {
		unsigned d = p->depth - 1 - i;
		struct inner *rt = (struct inner *)fresh[1 + i];

		up = inner_split(p->in[d], p->idx[d], up, right, rt);
		right = &rt->h;
	}
	if (grow) {
		struct inner *root = (struct inner *)fresh[1 + full];

		root->child[0] = ix->root;
		root->child[1] = right;
		root->sep[0] = up;
		root->h.n = 2;
		node_reprefix(&root->h, SIZE_MAX, NULL);
		ix->root = &root->h;
		ix->height++;
	} else {
		unsigned d = p->depth - 1 - full;

		inner_insert_at(p->in[d], p->idx[d], up, right);
	}
	return 0;
out:
	for (i = 0; i < need; i++)
		if (fresh[i])
			node_free_shell(ix->m, fresh[i]);
	return rc;
}

/* Put e (refs 1) at its key. On success the tree owns e, and the entry it replaced, if any, is
 * handed back in *old (out of the tree; the caller drops it). On -ENOMEM nothing changed and e
 * is still the caller's. */
static int tree_insert(struct kvindex *ix, struct kvval *e, struct kvval **old)
{
	struct path p;
	int rc;

	*old = NULL;
	if (!ix->root) {
		struct leaf *lf = (struct leaf *)node_new(ix->m, true);

		if (!lf)
			return -ENOMEM;
		lf->s[0].ent = e;
		lf->h.n = 1;
		node_reprefix(&lf->h, SIZE_MAX, NULL);
		ix->root = &lf->h;
		ix->height = 1;
		return 0;
	}
	if (!path_last(ix, e->bytes, e->klen, &p))
		path_find(ix, e->bytes, e->klen, &p);
	rc = path_own(ix, &p);
	if (rc)
		return rc;
	if (p.found) {
		*old = p.leaf->s[p.pos].ent;
		p.leaf->s[p.pos].ent = e;
		return 0;
	}
	if (p.leaf->h.n < FANOUT) {
		leaf_insert_at(p.leaf, p.pos, e);
		return 0;
	}
	return insert_split(ix, &p, e);
}

/* ---- tree: removal ---------------------------------------------------------------------- */

/* Merge child left + 1 into child left (both sole, their contents fit one node). */
static void pair_merge(struct meter *m, struct inner *parent, unsigned left)
{
	struct node *l = parent->child[left], *r = parent->child[left + 1];
	unsigned ln = l->n, rn = r->n;

	if (l->leaf) {
		size_t hp = shared_hp(l, r);

		memcpy(&((struct leaf *)l)->s[ln], ((struct leaf *)r)->s, rn * sizeof(struct slot));
		l->n = (uint16_t)(ln + rn);
		node_reprefix(l, hp, l->pfx);
		key_put(m, parent->sep[left]);
	} else {
		struct inner *li = (struct inner *)l, *ri = (struct inner *)r;

		li->sep[ln - 1] = parent->sep[left];    /* moves down, with its reference */
		memcpy(&li->sep[ln], ri->sep, (rn - 1) * sizeof(ri->sep[0]));
		memcpy(&li->child[ln], ri->child, rn * sizeof(ri->child[0]));
		l->n = (uint16_t)(ln + rn);
		node_reprefix(l, SIZE_MAX, NULL);
	}
	inner_remove(parent, left, left + 1);
	node_free_shell(m, r);
}

/* Share the contents of children left and left + 1 (both sole, too many for one node) evenly.
 * A leaf pair needs a new separator: without memory for it nothing changes. */
static void pair_share(struct meter *m, struct inner *parent, unsigned left)
{
	struct node *l = parent->child[left], *r = parent->child[left + 1];
	unsigned ln = l->n, rn = r->n, tot = ln + rn, cut = tot / 2;

	if (l->leaf) {
		struct leaf *ll = (struct leaf *)l, *rl = (struct leaf *)r;
		struct slot all[2 * FANOUT];
		size_t hp = shared_hp(l, r);
		unsigned char pfx[PFX_MAX];
		struct kvkey *sep;

		memcpy(all, ll->s, ln * sizeof(all[0]));
		memcpy(all + ln, rl->s, rn * sizeof(all[0]));
		sep = key_between(m, all[cut - 1].ent, all[cut].ent);
		if (!sep)
			return;
		memcpy(pfx, l->pfx, l->plen);
		memcpy(ll->s, all, cut * sizeof(all[0]));
		l->n = (uint16_t)cut;
		memcpy(rl->s, all + cut, (tot - cut) * sizeof(all[0]));
		r->n = (uint16_t)(tot - cut);
		node_reprefix(l, hp, pfx);
		node_reprefix(r, hp, pfx);
		key_put(m, parent->sep[left]);
		parent->sep[left] = sep;
	} else {
		struct inner *li = (struct inner *)l, *ri = (struct inner *)r;
		struct node *kids[2 * FANOUT];
		struct kvkey *seps[2 * FANOUT - 1];

		memcpy(kids, li->child, ln * sizeof(kids[0]));
		memcpy(kids + ln, ri->child, rn * sizeof(kids[0]));
		memcpy(seps, li->sep, (ln - 1) * sizeof(seps[0]));
		seps[ln - 1] = parent->sep[left];
		memcpy(seps + ln, ri->sep, (rn - 1) * sizeof(seps[0]));
		memcpy(li->child, kids, cut * sizeof(kids[0]));
		memcpy(li->sep, seps, (cut - 1) * sizeof(seps[0]));
		l->n = (uint16_t)cut;
		memcpy(ri->child, kids + cut, (tot - cut) * sizeof(kids[0]));
		memcpy(ri->sep, seps + cut, (tot - cut - 1) * sizeof(seps[0]));
		r->n = (uint16_t)(tot - cut);
		node_reprefix(l, SIZE_MAX, NULL);
		node_reprefix(r, SIZE_MAX, NULL);
		parent->sep[left] = seps[cut - 1];
	}
	inner_sep_changed(parent, left);
}

/* Child ci of parent (both sole) is below MIN_FILL but not empty: merge it with a sibling or
 * share with one. Returns true when the parent lost a child. Best effort: when a shared sibling
 * cannot be copied nothing changes. */
static bool pair_rebalance(struct meter *m, struct inner *parent, unsigned ci)
{
	unsigned si, left;
	struct node *sib;

	if (parent->h.n < 2)
		return false;
	si = ci + 1 < parent->h.n ? ci + 1 : ci - 1;
	sib = parent->child[si];
	if (!ref_sole(&sib->refs)) {
		struct node *cp = node_copy(m, sib);

		if (!cp)
			return false;
		parent->child[si] = cp;
		node_put(m, sib);
	}
	left = ci < si ? ci : si;
	if (parent->child[left]->n + parent->child[left + 1]->n <= FANOUT) {
		pair_merge(m, parent, left);
		return true;
	}
	pair_share(m, parent, left);
	return false;
}

/* An inner root with one child gives way to it; an empty root leaves an empty index. */
static void root_shrink(struct kvindex *ix)
{
	for (;;) {
		struct node *r = ix->root;

		if (!r || r->n > 1 || (r->leaf && r->n == 1))
			return;
		ix->root = !r->leaf && r->n == 1 ? ((struct inner *)r)->child[0] : NULL;
		node_free_shell(ix->m, r);
		ix->height = ix->root ? ix->height - 1 : 0;
	}
}

/* Take the entry at p (found, owned) out of the tree and hand it back; then restore fill from
 * the leaf up. Cannot fail. */
static struct kvval *tree_take(struct kvindex *ix, struct path *p)
{
	struct leaf *lf = p->leaf;
	struct kvval *v = lf->s[p->pos].ent;
	unsigned rest = lf->h.n - p->pos - 1, d = p->depth;
	struct node *nd = &lf->h;

	memmove(&lf->s[p->pos], &lf->s[p->pos + 1], rest * sizeof(lf->s[0]));
	lf->h.n--;
	while (d > 0 && nd->n < MIN_FILL) {
		struct inner *parent = p->in[--d];
		unsigned ci = p->idx[d];

		if (nd->n == 0) {       /* an empty node leaves, with the separator bounding it */
			if (parent->h.n > 1)
				key_put(ix->m, parent->sep[ci ? ci - 1 : 0]);
			inner_remove(parent, ci ? ci - 1 : 0, ci);
			node_free_shell(ix->m, nd);
		} else if (!pair_rebalance(ix->m, parent, ci)) {
			break;
		}
		nd = &parent->h;
	}
	root_shrink(ix);
	return v;
}

/* ---- self-check (cc -DKVINDEX_CHECK: after every mutation, abort on a broken invariant) --- */

#ifdef KVINDEX_CHECK
#include <stdio.h>

#define CHECK_THAT(cond)                                                                  \
	do {                                                                              \
		if (!(cond)) {                                                            \
			fprintf(stderr, "index.c:%d: invariant broken: %s\n", __LINE__, #cond); \
			abort();                                                          \
		}                                                                         \
	} while (0)

struct check_sum {
	uint64_t count, bytes, mem;
	unsigned leaf_depth;
};

static void check_value(const struct kvval *v, struct check_sum *s)
{
	CHECK_THAT(atomic_load(&v->refs) >= 1);
	CHECK_THAT(v->klen <= KV_MAX_KEY && v->mlen <= KV_MAX_META && v->size <= KV_MAX_VALUE);
	s->mem += heap_chunk(val_alloc_size(v));
	if (!v->ext)
		return;
	const struct exttab *t = v->ext;
	CHECK_THAT(t->n >= 1 && t->n <= t->cap && atomic_load(&t->refs) >= 1);
	/* a table shared by several entries is counted once per holder: mem is a bound then */
	s->mem += heap_chunk(exttab_size(t->cap));
	uint64_t bytes = 0;
	for (uint32_t i = 0; i < t->n; i++) {
		bytes += t->e[i].len;
		CHECK_THAT(t->e[i].len > 0 && t->e[i].off + t->e[i].len <= v->size);
		CHECK_THAT(i == 0 || t->e[i - 1].off + t->e[i - 1].len <= t->e[i].off);
		CHECK_THAT(t->e[i].pos >= t->e[i].cbase && t->e[i].pos + t->e[i].len <= t->e[i].cbase + t->e[i].dlen);
	}
	CHECK_THAT(bytes == t->bytes);
}

/* Keys of nd lie in [lo, hi) (NULL: unbounded). */
static void check_node(const struct node *nd, const unsigned char *lo, size_t lolen,
		       const unsigned char *hi, size_t hilen, unsigned depth, bool root,
		       struct check_sum *s)
{
	unsigned nk = node_nkeys(nd);

	CHECK_THAT(atomic_load(&nd->refs) >= 1);
	CHECK_THAT(nd->n >= 1 && nd->n <= FANOUT && nd->plen <= PFX_MAX);
	CHECK_THAT(!root || nd->leaf || nd->n >= 2);
	s->mem += heap_chunk(node_size(nd));
	for (unsigned i = 0; i < nk; i++) {
		size_t len, plen;
		const unsigned char *k = node_key(nd, i, &len);

		CHECK_THAT(len >= nd->plen && !memcmp(k, nd->pfx, nd->plen));
		CHECK_THAT(node_head_at(nd, i) == key_head(k, len, nd->plen));
		CHECK_THAT(!lo || key_cmp(lo, lolen, k, len) <= 0);
		CHECK_THAT(!hi || key_cmp(k, len, hi, hilen) < 0);
		if (i) {
			const unsigned char *prev = node_key(nd, i - 1, &plen);

			CHECK_THAT(key_cmp(prev, plen, k, len) < 0);
		}
		if (!nd->leaf)
			s->mem += heap_chunk(key_size(len));
	}
	if (nd->leaf) {
		const struct leaf *lf = (const struct leaf *)nd;

		if (!s->leaf_depth)
			s->leaf_depth = depth;
		CHECK_THAT(s->leaf_depth == depth);
		for (unsigned i = 0; i < nd->n; i++) {
			check_value(lf->s[i].ent, s);
			s->count++;
			s->bytes += lf->s[i].ent->klen + (uint64_t)lf->s[i].ent->size;
		}
		return;
	}
	const struct inner *in = (const struct inner *)nd;

	for (unsigned i = 0; i < nd->n; i++) {
		const unsigned char *clo = i ? in->sep[i - 1]->bytes : lo;
		size_t clolen = i ? in->sep[i - 1]->len : lolen;
		const unsigned char *chi = i + 1 < nd->n ? in->sep[i]->bytes : hi;
		size_t chilen = i + 1 < nd->n ? in->sep[i]->len : hilen;

		check_node(in->child[i], clo, clolen, chi, chilen, depth + 1, false, s);
	}
}

static void index_check(const struct kvindex *ix)
{
	struct check_sum s = { 0, 0, 0, 0 };

	if (ix->root)
		check_node(ix->root, NULL, 0, NULL, 0, 1, true, &s);
	CHECK_THAT(s.leaf_depth == ix->height);
	CHECK_THAT(s.count == ix->count && s.bytes == ix->bytes);
	/* with no views, every object alive is reachable exactly once */
	if (atomic_load(&ix->m->refs) == 1)
		CHECK_THAT(s.mem == atomic_load(&ix->m->bytes));
}
#define INDEX_CHECK(ix) index_check(ix)
#else
#define INDEX_CHECK(ix) ((void)0)
#endif

/* ---- the index -------------------------------------------------------------------------- */

int kvindex_create(struct kvindex **out)
{
	struct kvindex *ix = calloc(1, sizeof(*ix));
	struct meter *m = malloc(sizeof(*m));

	if (!ix || !m) {
		free(ix);
		free(m);
		return -ENOMEM;
	}
	ref_init(&m->refs);
	atomic_init(&m->bytes, 0);
	m->fail_in = 0;
	ix->m = m;
	*out = ix;
	return 0;
}

void kvindex_destroy(struct kvindex *ix)
{
	if (!ix)
		return;
	node_put(ix->m, ix->root);
	meter_put(ix->m);
	free(ix);
}

void kvindex_fail_alloc(struct kvindex *ix, uint64_t nth)
{
	ix->m->fail_in = nth;
}

void kvindex_set_account(struct kvindex *ix, void (*fn)(void *arg, uint64_t seg, int64_t delta), void *arg)
{
	ix->account = fn;
	ix->account_arg = arg;
}

static bool ext_valid(const struct kvext *e)
{
	return e->len > 0 && e->len <= KV_MAX_WRITE && e->pos >= e->cbase &&
	       e->pos - e->cbase <= e->dlen && e->len <= e->dlen - (e->pos - e->cbase) &&
	       e->off <= KV_MAX_VALUE - e->len;
}

int kvindex_check_extents(uint64_t size, const struct kvext *ext, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		if (!ext_valid(&ext[i]) || ext[i].off + ext[i].len > size)
			return -EFBIG;
		if (i && ext[i - 1].off + ext[i - 1].len > ext[i].off)
			return -EFBIG;
	}
	return 0;
}

int kvindex_put_extents(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
			uint64_t size, const struct kvext *ext, uint32_t n)
{
	struct kvval *e, *old;
	int rc;

	if (klen > KV_MAX_KEY || mlen > KV_MAX_META)
		return -EINVAL;
	if (size > KV_MAX_VALUE || kvindex_check_extents(size, ext, n))
		return -EFBIG;
	e = val_alloc(ix->m, key, klen, meta, mlen);
	if (!e)
		return -ENOMEM;
	if (n) {
		e->ext = exttab_new(ix->m, n);
		if (!e->ext) {
			rc = -ENOMEM;
			goto out;
		}
		for (uint32_t i = 0; i < n; i++)
			ext_push(e->ext, &ext[i]);
	}
	e->size = size;
	rc = tree_insert(ix, e, &old);
	if (rc)
		goto out;
	account_all(ix, e, +1);
	if (old) {
		ix->bytes -= old->klen + old->size;
		account_all(ix, old, -1);
		val_put(ix->m, old);
	} else {
		ix->count++;
	}
	ix->bytes += klen + size;
	e = NULL;
out:
	if (e)
		val_put(ix->m, e);
	INDEX_CHECK(ix);
	return rc;
}

int kvindex_put(struct kvindex *ix, const void *key, size_t klen, const void *meta, size_t mlen,
		uint64_t size, const struct kvext *ext)
{
	return kvindex_put_extents(ix, key, klen, meta, mlen, size, ext, ext ? 1 : 0);
}

int kvindex_del(struct kvindex *ix, const void *key, size_t klen)
{
	struct kvval *v;
	struct path p;
	int rc;

	if (klen > KV_MAX_KEY)
		return -EINVAL;
	if (!ix->root)
		return -ENOENT;
	path_find(ix, key, klen, &p);
	if (!p.found)
		return -ENOENT;
	rc = path_own(ix, &p);
	if (rc)
		goto out;
	v = tree_take(ix, &p);
	ix->count--;
	ix->bytes -= v->klen + v->size;
	account_all(ix, v, -1);
	val_put(ix->m, v);
out:
	INDEX_CHECK(ix);
	return rc;
}

/* Apply ed to the entry at key, giving it size new_size (or, with grow, at least its old size
 * and new_size); create an empty entry first when absent and create is set (-ENOENT else). */
static int entry_edit(struct kvindex *ix, const void *key, size_t klen, bool create, bool grow,
		      uint64_t new_size, const struct edit *ed)
{
	struct kvval *fresh = NULL, **slot, *old;
	uint64_t oldsize = 0, size;
	struct path p;
	int rc = 0;

	if (ix->root)
		path_find(ix, key, klen, &p);
	if (ix->root && p.found) {
		rc = path_own(ix, &p);
		if (rc)
			goto out;
		slot = &p.leaf->s[p.pos].ent;
		oldsize = (*slot)->size;
	} else if (!create) {
		return -ENOENT;
	} else {
		fresh = val_alloc(ix->m, key, klen, NULL, 0);
		if (!fresh) {
			rc = -ENOMEM;
			goto out;
		}
		slot = &fresh;
	}
	size = grow && oldsize > new_size ? oldsize : new_size;
	/* a fresh entry gets its extents before it goes into the tree, and is accounted once it
	 * is in: a failure anywhere leaves the index as it was */
	rc = val_edit(ix, slot, size, ed, !fresh);
	if (rc)
		goto out;
	if (fresh) {
		rc = tree_insert(ix, fresh, &old);
		if (rc)
			goto out;
		assert(!old);
		account_all(ix, fresh, +1);
		ix->count++;
		ix->bytes += klen;
		fresh = NULL;
	}
	ix->bytes = ix->bytes - oldsize + size;
out:
	if (fresh)
		val_put(ix->m, fresh);
	INDEX_CHECK(ix);
	return rc;
}

int kvindex_write(struct kvindex *ix, const void *key, size_t klen, const struct kvext *ext)
{
	struct edit ed = { .size = UINT64_MAX };

	if (klen > KV_MAX_KEY)
		return -EINVAL;
	if (!ext) /* writing nothing: an empty entry when absent, else no change at all */
		return entry_edit(ix, key, klen, true, true, 0, &ed);
	if (!ext_valid(ext))
		return -EFBIG;
	ed.lo = ext->off;
	ed.hi = ext->off + ext->len;
	ed.new = ext;
	return entry_edit(ix, key, klen, true, true, ext->off + ext->len, &ed);
}

int kvindex_punch(struct kvindex *ix, const void *key, size_t klen, uint64_t off, uint64_t len)
{
	struct edit ed = { .size = UINT64_MAX, .lo = off, .hi = off + len };

	if (klen > KV_MAX_KEY)
		return -EINVAL;
	if (off > KV_MAX_VALUE || len > KV_MAX_VALUE - off)
		return -EFBIG;
	return entry_edit(ix, key, klen, false, true, 0, &ed);
}

int kvindex_truncate(struct kvindex *ix, const void *key, size_t klen, uint64_t size)
{
	struct edit ed = { .size = size };

	if (klen > KV_MAX_KEY)
		return -EINVAL;
	if (size > KV_MAX_VALUE)
		return -EFBIG;
	return entry_edit(ix, key, klen, true, false, size, &ed);
}

/* Model: tests/model/values_on_disk.pml (the cleaner's relocation losing a race is a no-op). */
int kvindex_relocate(struct kvindex *ix, const void *key, size_t klen, uint64_t src_seg,
		     uint64_t src_pos, const struct kvext *ext)
{
	struct edit ed = { .size = UINT64_MAX, .lo = ext->off, .hi = ext->off + ext->len, .new = ext,
			   .relocate = true, .src_seg = src_seg, .src_pos = src_pos };

	if (klen > KV_MAX_KEY)
		return -EINVAL;
	if (!ext_valid(ext))
		return -EFBIG;
	return entry_edit(ix, key, klen, false, true, 0, &ed);
}

int kvindex_setmeta(struct kvindex *ix, const void *key, size_t klen, const void *meta,
		    size_t mlen)
{
	struct path p;
	int rc;

	if (klen > KV_MAX_KEY || mlen > KV_MAX_META)
		return -EINVAL;
	if (!ix->root)
		return -ENOENT;
	path_find(ix, key, klen, &p);
	if (!p.found)
		return -ENOENT;
	rc = path_own(ix, &p);
	if (rc)
		goto out;
	rc = val_setmeta(ix->m, &p.leaf->s[p.pos].ent, meta, mlen);
out:
	INDEX_CHECK(ix);
	return rc;
}

int kvindex_rename(struct kvindex *ix, const void *from, size_t flen, const void *to,
		   size_t tlen)
{
	struct kvval *moved = NULL, *v, *old;
	struct path p;
	int rc;

	if (flen > KV_MAX_KEY || tlen > KV_MAX_KEY)
		return -EINVAL;
	if (!ix->root)
		return -ENOENT;
	path_find(ix, from, flen, &p);
	if (!p.found)
		return -ENOENT;
	if (!key_cmp(from, flen, to, tlen))
		return 0;
	moved = val_rekey(ix->m, p.leaf->s[p.pos].ent, to, tlen);
	if (!moved)
		return -ENOMEM;
	/* Own from's path before inserting: the insert may split nodes on it, but whatever it
	 * creates or moves stays ours alone, so the walk to take from afterwards copies nothing
	 * and cannot fail. */
	rc = path_own(ix, &p);
	if (rc)
		goto out;
	rc = tree_insert(ix, moved, &old);
	if (rc)
		goto out;
	moved = NULL;
	path_find(ix, from, flen, &p);
	rc = path_own(ix, &p);
	assert(rc == 0 && p.found);
	v = tree_take(ix, &p);
	ix->bytes = ix->bytes - flen + tlen;
	if (old) {
		ix->count--;
		ix->bytes -= old->klen + old->size;
		account_all(ix, old, -1);
		val_put(ix->m, old);
	}
	val_put(ix->m, v);
out:
	if (moved)
		val_put(ix->m, moved);
	INDEX_CHECK(ix);
	return rc;
}

static bool has_prefix(const struct kvval *v, const void *pfx, size_t plen)
{
	return v->klen >= plen && (!plen || !memcmp(v->bytes, pfx, plen));
}

int kvindex_rename_prefix(struct kvindex *ix, const void *from, size_t flen, const void *to,
			  size_t tlen)
{
	unsigned char keybuf[KV_MAX_KEY];
	struct kvval **src = NULL, **moved = NULL, **replaced = NULL, *old;
	struct node *saved = NULL;
	uint64_t saved_count = ix->count, saved_bytes = ix->bytes;
	unsigned saved_height = ix->height;
	size_t n = 0, i, arr_bytes = 0, nreplaced = 0;
	struct kvcursor *c = NULL;
	const struct kvval *v;
	const void *k;
	size_t kl;
	struct path p;
	int rc;

	if (flen > KV_MAX_KEY || tlen > KV_MAX_KEY)
		return -EINVAL;
	/* Collect first: moving while walking would meet moved keys again when one prefix
	 * extends the other. */
	rc = kvcursor_open_live(ix, from, flen, &c);
	if (rc)
		return rc;
	while (kvcursor_next(c, &k, &kl, &v) && has_prefix(v, from, flen)) {
		if (tlen + (kl - flen) > KV_MAX_KEY) {
			rc = -EINVAL;
			goto out;
		}
		n++;
	}
	if (n == 0 || !key_cmp(from, flen, to, tlen))
		goto out;
	arr_bytes = n * sizeof(*src);
	moved = meter_alloc(ix->m, arr_bytes);
	if (moved)
		memset(moved, 0, arr_bytes);
	src = meter_alloc(ix->m, arr_bytes);
	replaced = meter_alloc(ix->m, arr_bytes);
	if (!src || !moved || !replaced) {
		rc = -ENOMEM;
		goto out;
	}
	kvcursor_close(c);
	c = NULL;
	rc = kvcursor_open_live(ix, from, flen, &c);
	if (rc)
		goto out;
	for (i = 0; i < n; i++) {
		kvcursor_next(c, &k, &kl, &v);
		src[i] = (struct kvval *)v;
	}
	for (i = 0; i < n; i++) {
		copy_bytes(keybuf, to, tlen);
		copy_bytes(keybuf + tlen, src[i]->bytes + flen, src[i]->klen - flen);
		moved[i] = val_rekey(ix->m, src[i], keybuf, tlen + src[i]->klen - flen);
		if (!moved[i]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	/* All sources leave before any destination is filled, so a key that is both sees its
	 * new entry. The old root, held meanwhile, is what a failure puts back. */
	saved = ix->root;
	ref_get(&saved->refs);
	for (i = 0; i < n; i++) {
		path_find(ix, src[i]->bytes, src[i]->klen, &p);
		assert(p.found);
		rc = path_own(ix, &p);
		if (rc)
			goto out;
		old = tree_take(ix, &p);
		ix->count--;
		ix->bytes -= old->klen + old->size;
		val_put(ix->m, old);
	}
	for (i = 0; i < n; i++) {
		rc = tree_insert(ix, moved[i], &old);
		if (rc)
			goto out;
		ix->count++;
		ix->bytes += moved[i]->klen + moved[i]->size;
		moved[i] = NULL;
		if (old) {
			ix->count--;
			ix->bytes -= old->klen + old->size;
			replaced[nreplaced++] = old; /* accounted once nothing can fail */
		}
	}
out:
	if (saved && rc) {
		node_put(ix->m, ix->root);
		ix->root = saved;
		ix->count = saved_count;
		ix->bytes = saved_bytes;
		ix->height = saved_height;
	} else if (saved) {
		node_put(ix->m, saved);
	}
	for (i = 0; moved && i < n; i++)
		if (moved[i])
			val_put(ix->m, moved[i]);
	/* entries the moves replaced: gone from the live index only if it all went through */
	for (i = 0; i < nreplaced; i++) {
		if (!rc)
			account_all(ix, replaced[i], -1);
		val_put(ix->m, replaced[i]);
	}
	if (replaced)
		meter_free(ix->m, replaced, arr_bytes);
	if (src)
		meter_free(ix->m, src, arr_bytes);
	if (moved)
		meter_free(ix->m, moved, arr_bytes);
	kvcursor_close(c);
	INDEX_CHECK(ix);
	return rc;
}

const struct kvval *kvindex_find(const struct kvindex *ix, const void *key, size_t klen)
{
	if (klen > KV_MAX_KEY)
		return NULL;
	return tree_find(ix->root, ix->height, key, klen);
}

uint64_t kvindex_count(const struct kvindex *ix)
{
	return ix->count;
}

uint64_t kvindex_bytes(const struct kvindex *ix)
{
	return ix->bytes;
}

uint64_t kvindex_mem(const struct kvindex *ix)
{
	return atomic_load_explicit(&ix->m->bytes, memory_order_relaxed);
}

/* ---- entries ---------------------------------------------------------------------------- */

uint64_t kvval_size(const struct kvval *v)
{
	return v->size;
}

const void *kvval_meta(const struct kvval *v, size_t *mlen)
{
	*mlen = v->mlen;
	return v->bytes + v->klen;
}

uint64_t kvval_allocated(const struct kvval *v)
{
	return v->ext ? v->ext->bytes : 0;
}

const struct kvext *kvval_extents(const struct kvval *v, uint32_t *n)
{
	*n = v->ext ? v->ext->n : 0;
	return v->ext ? v->ext->e : NULL;
}

/* ---- views ------------------------------------------------------------------------------ */

int kvindex_view(struct kvindex *ix, struct kvview **out)
{
	struct kvview *v = malloc(sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->root = ix->root;
	if (v->root)
		ref_get(&v->root->refs);
	v->m = ix->m;
	ref_get(&v->m->refs);
	v->count = ix->count;
	*out = v;
	return 0;
}

void kvview_release(struct kvview *v)
{
	if (!v)
		return;
	node_put(v->m, v->root);
	meter_put(v->m);
	free(v);
}

uint64_t kvview_count(const struct kvview *v)
{
	return v->count;
}

/* ---- cursors ---------------------------------------------------------------------------- */

static int cursor_open(const struct node *root, const void *start, size_t slen,
		       struct kvcursor **out)
{
	struct kvcursor *c = malloc(sizeof(*c));
	const struct node *nd = root;

	if (!c)
		return -ENOMEM;
	c->pin = NULL;
	c->m = NULL;
	c->depth = 0;
	while (nd) {
		unsigned idx = 0;
		bool found;

		assert(c->depth < MAX_DEPTH);
		if (nd->leaf) {
			if (start)
				idx = leaf_search((const struct leaf *)nd, start, slen, &found);
		} else if (start) {
			idx = inner_route((const struct inner *)nd, start, slen);
		}
		c->path[c->depth].nd = nd;
		c->path[c->depth++].idx = idx;
		nd = nd->leaf ? NULL : ((const struct inner *)nd)->child[idx];
	}
	*out = c;
	return 0;
}

int kvcursor_open_live(const struct kvindex *ix, const void *start, size_t slen,
		       struct kvcursor **out)
{
	return cursor_open(ix->root, start, slen, out);
}

/* The cursor holds its own references, so it stays valid even after its view is released. */
int kvcursor_open_view(const struct kvview *v, const void *start, size_t slen,
		       struct kvcursor **out)
{
	int rc = cursor_open(v->root, start, slen, out);

	if (rc)
		return rc;
	(*out)->pin = v->root;
	if (v->root)
		ref_get(&v->root->refs);
	(*out)->m = v->m;
	ref_get(&v->m->refs);
	return 0;
}

/* Move to the first entry of the next leaf; false at the end. */
static bool cursor_next_leaf(struct kvcursor *c)
{
	unsigned d = c->depth - 1;

	while (d-- > 0) {
		if (c->path[d].idx + 1u < c->path[d].nd->n) {
			c->path[d].idx++;
			for (unsigned l = d + 1; l < c->depth; l++) {
				const struct inner *up = (const struct inner *)c->path[l - 1].nd;

				c->path[l].nd = up->child[c->path[l - 1].idx];
				c->path[l].idx = 0;
			}
			return true;
		}
	}
	return false;
}

int kvcursor_next(struct kvcursor *c, const void **key, size_t *klen, const struct kvval **val)
{
	while (c->depth) {
		const struct leaf *lf = (const struct leaf *)c->path[c->depth - 1].nd;
		unsigned *idx = &c->path[c->depth - 1].idx;

		if (*idx < lf->h.n) {
			const struct kvval *v = lf->s[(*idx)++].ent;

			*key = v->bytes;
			*klen = v->klen;
			*val = v;
			return 1;
		}
		if (!cursor_next_leaf(c))
			c->depth = 0;
	}
	return 0;
}

void kvcursor_close(struct kvcursor *c)
{
	if (!c)
		return;
	if (c->m) {
		node_put(c->m, c->pin);
		meter_put(c->m);
	}
	free(c);
}
