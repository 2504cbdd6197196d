/* cleaner.c — reclaiming space (see cleaner.h).
 * Model: tests/model/values_on_disk.pml stands for pick_victims, collect, move_batch and
 * clean_pass (the cleaner process: relocate, then checkpoint, then delete). */
#include "cleaner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "index.h"
#include "kv.h"
#include "progress.h"
#include "record.h"
#include "segtab.h"
#include "store_internal.h"

#define BATCH_BYTES (4u << 20)  /* relocated bytes per record */
#define PIECE_MAX (1u << 20)    /* one piece of a relocation */
#define FRAG_EXTENTS 16         /* a value with more extents than this ... */
#define FRAG_AVG (64u << 10)    /* ... averaging less than this is merged into one run */
#define FRAG_BUDGET (32u << 20) /* bytes merged per pass */
#define FULL_DISK_PASSES 16     /* full-disk passes per write that found no room */

/* A piece to move: the key (in the arena), the file range, and where its bytes are now. */
struct piece {
	size_t key_no;  /* which key, in collection order (the empty key takes no arena bytes, so
			 * key_at alone does not tell two keys apart) */
	size_t key_at;
	size_t klen;
	struct kvext e; /* the current extent, cut to the piece */
	long victim;    /* the victim it empties (index), or -1: it merges a fragmented value */
};

/* A segment to empty, what its live bytes take, and what relocating them would write. */
struct victim {
	uint64_t seg, size, live, cost;
};

struct plan {
	struct piece *p;
	size_t n, cap;
	size_t keys; /* keys collected so far */
	uint8_t *arena;
	size_t alen, acap;
};

static void plan_free(struct plan *pl)
{
	free(pl->p);
	free(pl->arena);
}

static int arena_key(struct plan *pl, const void *key, size_t klen, size_t *at)
{
	/* allocated even for the empty key: pieces point into it (memcpy and pointer arithmetic on
	 * a NULL arena are undefined, even for 0 bytes) */
	if (!pl->arena || pl->alen + klen > pl->acap) {
		size_t cap = pl->acap ? pl->acap * 2 : 1u << 16;
		while (cap < pl->alen + klen)
			cap *= 2;
		uint8_t *a = realloc(pl->arena, cap);
		if (!a)
			return -ENOMEM;
		pl->arena = a;
		pl->acap = cap;
	}
	memcpy(pl->arena + pl->alen, key, klen);
	*at = pl->alen;
	pl->alen += klen;
	return 0;
}

/* The extent e, in pieces of at most PIECE_MAX. */
static int add_extent(struct plan *pl, size_t key_at, size_t klen, const struct kvext *e, long victim)
{
	for (uint64_t done = 0; done < e->len; done += PIECE_MAX) {
		if (pl->n == pl->cap) {
			size_t cap = pl->cap ? pl->cap * 2 : 256;
			struct piece *p = realloc(pl->p, cap * sizeof(*p));
			if (!p)
				return -ENOMEM;
			pl->p = p;
			pl->cap = cap;
		}
		struct kvext part = *e;
		part.off += done;
		part.pos += done;
		part.len = (uint32_t)(e->len - done < PIECE_MAX ? e->len - done : PIECE_MAX);
		pl->p[pl->n++] = (struct piece){ .key_no = pl->keys, .key_at = key_at, .klen = klen, .e = part,
						 .victim = victim };
	}
	return 0;
}

/* The index of seg among the victims (sorted by segment), or -1. */
static long victim_of(const struct victim *v, size_t n, uint64_t seg)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].seg < seg)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].seg == seg ? (long)lo : -1;
}

static int cmp_ratio(const void *a, const void *b)
{
	const struct seg_info *x = a, *y = b;
	/* live / size ascending, without division: x.live * y.size < y.live * x.size */
	unsigned __int128 l = (unsigned __int128)x->live * y->size, r = (unsigned __int128)y->live * x->size;
	return l < r ? -1 : l > r;
}

static int cmp_seg(const void *a, const void *b)
{
	uint64_t x = ((const struct victim *)a)->seg, y = ((const struct victim *)b)->seg;
	return x < y ? -1 : x > y;
}


/* The segments to empty (ascending first LSN). PICK_ALL: every sealed segment holding live
 * bytes. PICK_POLICY: the emptiest ones under half live, as many as bring the disk use back
 * under the bound (twice the live bytes plus a segment) — unless the last pass found none worth
 * moving and nothing was written since. PICK_FULL_DISK: the emptiest segments holding any dead
 * bytes whose live bytes fit in budget together (the room the reserve has; a segment too big
 * for what is left is skipped, never started: half moved, it would free nothing and take
 * room). *dead: sealed segments with nothing live (a checkpoint deletes them). */
enum pick { PICK_POLICY, PICK_FULL_DISK, PICK_ALL };

static int pick_victims(struct kv *s, enum pick how, uint64_t budget, struct victim **out, size_t *nout,
			int *dead)
{
	struct seg_info *info;
	struct wal_stats ws;
	size_t n, k = 0;
	uint64_t bytes = 0, live = 0;
	int rc = segtab_list(s->segs, &info, &n);

	*out = NULL;
	*nout = 0;
	*dead = 0;
	if (rc)
		return rc;
	wal_get_stats(s->wal, &ws);
	for (size_t i = 0; i < n; i++) {
		bytes += info[i].size;
		live += info[i].live;
	}
	/* candidates first */
	for (size_t i = 0; i < n; i++) {
		const struct seg_info *g = &info[i];
		if (g->first_lsn == ws.seg_first_lsn || !g->last_lsn)
			continue;
		if (!g->live) {
			*dead = 1;
			continue;
		}
		if (how == PICK_ALL || g->live * 2 < g->size || (how == PICK_FULL_DISK && g->live < g->size))
			info[k++] = *g;
	}
	int needed = how != PICK_POLICY || (bytes > 2 * live + s->opt.segment_bytes &&
					    (!s->clean_fruitless ||
					     ws.appended_bytes >= s->clean_fruitless_at + s->opt.segment_bytes));
	if (!needed || !k) {
		free(info);
		return 0;
	}
	qsort(info, k, sizeof(*info), cmp_ratio);
	struct victim *v = calloc(k, sizeof(*v));
	if (!v) {
		free(info);
		return -ENOMEM;
	}
	size_t m = 0;
	uint64_t moving = 0;
	for (size_t i = 0; i < k; i++) {
		/* a full disk: only as much as the room there is to write it */
		if (how == PICK_FULL_DISK && moving + info[i].live > budget)
			continue;
		moving += info[i].live;
		v[m++] = (struct victim){ .seg = info[i].first_lsn, .size = info[i].size, .live = info[i].live };
		/* emptying it frees size - live (the live bytes are written again elsewhere) */
		bytes -= info[i].size - info[i].live;
		if (how == PICK_POLICY && bytes <= 2 * live + s->opt.segment_bytes)
			break;
	}
	qsort(v, m, sizeof(*v), cmp_seg);
	free(info);
	*out = v;
	*nout = m;
	return 0;
}

/* Everything the victims hold that the index references, and fragmented values to merge, from
 * a view (writers go on meanwhile; what they overwrite makes its relocation a no-op). */
static int collect(struct kv *s, struct victim *victims, size_t nv, int defrag, struct plan *pl)
{
	struct kvview *view = NULL;
	struct kvcursor *c = NULL;
	const void *key;
	size_t klen;
	const struct kvval *v;
	uint64_t budget = defrag ? FRAG_BUDGET : 0;
	int rc;

	pthread_mutex_lock(&s->apply_mu);
	rc = kvindex_view(s->ix, &view);
	pthread_mutex_unlock(&s->apply_mu);
	if (rc)
		return rc;
	rc = kvcursor_open_view(view, NULL, 0, &c);
	while (!rc && kvcursor_next(c, &key, &klen, &v) == 1) {
		uint32_t n;
		const struct kvext *e = kvval_extents(v, &n);
		uint64_t size = kvval_size(v);
		size_t key_at = SIZE_MAX;
		long last = -1;
		int merge = n > FRAG_EXTENTS && size / n < FRAG_AVG && size <= budget;
		if (merge)
			budget -= size;
		for (uint32_t i = 0; !rc && i < n; i++) {
			long vi = victim_of(victims, nv, e[i].seg);
			if (!merge && vi < 0)
				continue;
			if (vi >= 0) {
				/* one operation per key and victim (pieces of a key in a run share it) */
				victims[vi].cost += relocate_op_size(vi == last ? 0 : klen, 1, e[i].len) -
						    (vi == last ? 3 + 4 : 0);
				last = vi;
			}
			if (key_at == SIZE_MAX) {
				rc = arena_key(pl, key, klen, &key_at);
				pl->keys++;
			}
			if (!rc)
				rc = add_extent(pl, key_at, klen, &e[i], merge ? -1 : vi);
		}
	}
	if (c)
		kvcursor_close(c);
	kvview_release(view);
	return rc;
}

/* Keep the victims whose relocation pays — it writes at most three quarters of what it frees
 * (a full disk: seven eighths): a segment of small values, all live, is mostly framing, and
 * relocated into records no denser it would be moved again and again — and drop the pieces of
 * the others. Returns how many victims are kept. */
static size_t keep_paying(enum pick how, struct victim *v, size_t nv, struct plan *pl)
{
	size_t kept = 0, m = 0;
	for (size_t i = 0; i < nv; i++) {
		int pays = how == PICK_ALL || (how == PICK_POLICY ? v[i].cost * 4 < v[i].size * 3
								  : v[i].cost * 8 < v[i].size * 7);
		if (pays)
			kept++;
		else
			v[i].seg = 0; /* no segment is 0: its pieces go below */
	}
	for (size_t i = 0; i < pl->n; i++)
		if (pl->p[i].victim < 0 || v[pl->p[i].victim].seg)
			pl->p[m++] = pl->p[i];
	pl->n = m;
	return kept;
}

/* Read one batch of pieces [from, to) and log them as RELOCATE records (one operation per run
 * of pieces of the same key). Pieces whose bytes cannot be read (their segment went away — its
 * bytes were moved already — or a checksum failed) are left where they are. */
static int move_batch(struct kv *s, struct plan *pl, size_t from, size_t to, uint64_t *moved)
{
	struct kv_batch *b = NULL;
	struct reloc_piece *rp = NULL;
	uint8_t *data = NULL;
	uint64_t total = 0;
	int rc;

	for (size_t i = from; i < to; i++)
		total += pl->p[i].e.len;
	data = malloc(total ? (size_t)total : 1);
	rp = malloc((to - from) * sizeof(*rp));
	rc = data && rp ? kv_batch_new(&b) : -ENOMEM;
	if (rc)
		goto out;
	uint64_t at = 0, run_at = 0;
	size_t run = 0, nops = 0;
	for (size_t i = from; i < to; i++) {
		struct piece *p = &pl->p[i];
		uint64_t bseg = 0, boff = 0;
		int rrc = segtab_read(s->segs, &p->e, 0, data + at, p->e.len, &bseg, &boff);
		if (rrc == -ENOENT || rrc == -EIO) {
			if (rrc == -EIO)
				kv_log(s, "%s/wal-%016" PRIx64 ".log: the cleaner cannot read value bytes at offset %"
				       PRIu64 " (checksum or short file); they stay where they are", s->dir, bseg, boff);
		} else if (rrc) {
			rc = rrc;
			goto out;
		} else {
			rp[run++] = (struct reloc_piece){ .off = p->e.off, .len = p->e.len, .src_seg = p->e.seg,
							  .src_pos = p->e.pos };
			at += p->e.len;
		}
		/* a run ends at the last piece or where the key changes */
		int last = i + 1 == to || pl->p[i + 1].key_no != p->key_no;
		if (last && run) {
			rc = batch_relocate(b, pl->arena + p->key_at, p->klen, rp, (uint32_t)run, data + run_at);
			if (rc)
				goto out;
			nops++;
			run_at = at;
			run = 0;
		} else if (last) {
			run_at = at;
		}
	}
	if (nops) {
		rc = store_apply(s, b, NULL);
		if (!rc)
			*moved += at;
	}
out:
	kv_batch_free(b);
	free(rp);
	free(data);
	return rc;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Writers outrun a throttled cleaner: past half again the bound, it works flat out. */
static int far_behind(struct kv *s)
{
	uint64_t bytes, live;
	segtab_totals(s->segs, &bytes, &live);
	return bytes > 3 * live + 2 * s->opt.segment_bytes;
}

/* One pass: pick, collect, move, checkpoint. With throttle, the pass sleeps as long as it
 * worked after every batch (half the time at most goes to cleaning). clean_mu held. */
static int clean_pass(struct kv *s, enum pick how, uint64_t budget, int throttle, const int *stop,
		      uint64_t *moved)
{
	int force = how == PICK_ALL;
	/* a full disk: records small enough for the room there is */
	uint64_t batch_max = how == PICK_FULL_DISK && budget / 4 < BATCH_BYTES ? budget / 4 : BATCH_BYTES;
	struct victim *victims = NULL;
	size_t nv = 0;
	int dead = 0, rc, room_rc = 0;
	struct plan pl = { 0 };

	*moved = 0;
	rc = pick_victims(s, how, budget, &victims, &nv, &dead);
	if (rc)
		return rc;
	if (nv || force) {
		struct progress meter;
		uint64_t live = 0;
		/* merging fragmented values takes room: not when the disk is full */
		rc = collect(s, victims, nv, how != PICK_FULL_DISK && (force || nv), &pl);
		if (!rc && !(nv = keep_paying(how, victims, nv, &pl)) && how == PICK_POLICY) {
			struct wal_stats ws;
			wal_get_stats(s->wal, &ws);
			s->clean_fruitless = 1; /* not again until a segment's worth is written */
			s->clean_fruitless_at = ws.appended_bytes;
		}
		for (size_t i = 0; i < pl.n; i++)
			live += pl.p[i].e.len;
		progress_start(&meter, &s->opt.progress, KV_WORK_CLEANER, live);
		for (size_t i = 0; !rc && i < pl.n;) {
			size_t j = i;
			uint64_t bytes = 0;
			while (j < pl.n && (j == i || bytes + pl.p[j].e.len <= batch_max))
				bytes += pl.p[j++].e.len;
			uint64_t t0 = now_ns();
			rc = move_batch(s, &pl, i, j, moved);
			if (kvio_no_room(rc) && how == PICK_FULL_DISK) {
				/* less room than the reserve promised (other writers, rounding): the
				 * checkpoint below still frees the victims emptied so far */
				room_rc = rc;
				rc = 0;
				break;
			}
			progress_add(&meter, bytes);
			i = j;
			if (stop && __atomic_load_n(stop, __ATOMIC_RELAXED))
				break;
			if (throttle && !far_behind(s)) {
				uint64_t spent = now_ns() - t0;
				struct timespec ts = { .tv_sec = (time_t)(spent / 1000000000u),
						       .tv_nsec = (long)(spent % 1000000000u) };
				nanosleep(&ts, NULL);
			}
		}
		progress_end(&meter);
	}
	size_t pieces = pl.n;
	plan_free(&pl);
	free(victims);
	if (!rc && (nv || pieces || dead || force)) {
		__atomic_add_fetch(&s->cleaner_passes, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&s->cleaner_moved, *moved, __ATOMIC_RELAXED);
		/* the victims are empty now in the live index: a checkpoint lets them go — not for
		 * dead segments alone while a backup holds every file (it would free nothing, and
		 * each pass would leave one more checkpoint behind until the backup ends) */
		pthread_mutex_lock(&s->ckpt_mu);
		if (nv || pieces || force || !s->holds)
			rc = checkpoint_locked(s, NULL);
		pthread_mutex_unlock(&s->ckpt_mu);
	}
	return rc ? rc : room_rc;
}

void cleaner_run(struct kv *s, const int *stop)
{
	uint64_t moved;
	pthread_mutex_lock(&s->clean_mu);
	int rc = clean_pass(s, PICK_POLICY, 0, 1, stop, &moved);
	pthread_mutex_unlock(&s->clean_mu);
	if (!rc || rc == -EROFS)
		return;
	struct wal_stats ws;
	wal_get_stats(s->wal, &ws);
	if (ws.error || s->failed)
		/* a failed log write leaves the log's end unknown: no caller hears it, so say what
		 * it did to the store (attack6 finding 2) */
		kv_log(s, "%s: cleaner pass failed: %s; the store is now read-only (writes fail with "
		       "EROFS until it is reopened; writes since the last successful flush may be lost)",
		       s->dir, strerror(-rc));
	else
		kv_log(s, "%s: cleaner pass failed: %s (space is reclaimed later)", s->dir, strerror(-rc));
}

int kv_clean(struct kv *s, int force, uint64_t *moved)
{
	uint64_t m = 0;
	if (s->opt.read_only)
		return -EROFS;
	pthread_mutex_lock(&s->clean_mu);
	int rc = clean_pass(s, force ? PICK_ALL : PICK_POLICY, 0, 0, NULL, &m);
	pthread_mutex_unlock(&s->clean_mu);
	if (moved)
		*moved = m;
	return rc;
}

/* The live bytes of the sealed segments that hold dead ones: what a full-disk pass might move. */
static int movable_bytes(struct kv *s, uint64_t *bytes)
{
	struct seg_info *info;
	struct wal_stats ws;
	size_t n;
	int rc = segtab_list(s->segs, &info, &n);
	*bytes = 0;
	if (rc)
		return rc;
	wal_get_stats(s->wal, &ws);
	for (size_t i = 0; i < n; i++)
		if (info[i].first_lsn != ws.seg_first_lsn && info[i].last_lsn && info[i].live < info[i].size)
			*bytes += info[i].live;
	free(info);
	return 0;
}

int cleaner_make_room(struct kv *s)
{
	int rc = 0;
	/* Each pass moves what fits in the reserve's room, and its checkpoint deletes the victims
	 * and takes the reserve back: the room freed grows pass by pass, and a later pass may
	 * find a bigger segment worth emptying. Stop when a pass frees nothing. */
	for (int pass = 0; pass < FULL_DISK_PASSES && !rc; pass++) {
		uint64_t movable;
		rc = movable_bytes(s, &movable);
		if (rc || !movable)
			break;
		pthread_mutex_lock(&s->ckpt_mu);
		/* the free space beyond the reserve, taken into it for the pass and given back after */
		reserve_probe(s, movable + movable / 3);
		/* a sixteenth kept back: the records' framing, the segments' headers and rounding */
		uint64_t budget = reserve_room(s) - reserve_room(s) / 16;
		pthread_mutex_unlock(&s->ckpt_mu);
		uint64_t deleted = __atomic_load_n(&s->segments_deleted, __ATOMIC_RELAXED), moved;
		if (budget)
			rc = clean_pass(s, PICK_FULL_DISK, budget, 0, NULL, &moved);
		pthread_mutex_lock(&s->ckpt_mu);
		reserve_unprobe(s);
		pthread_mutex_unlock(&s->ckpt_mu);
		if (!budget)
			break;
		if (__atomic_load_n(&s->segments_deleted, __ATOMIC_RELAXED) == deleted)
			break;
	}
	return rc;
}
