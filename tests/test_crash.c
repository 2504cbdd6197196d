/* Crash simulation on the simulated disk (tests/faultio.h): seeded workloads of writes, flushes
 * and snapshots, crashed and recovered in every way the disk model can die.
 *
 * A case is a sequence of lives. Each life is one process: it opens the store (recovering it),
 * runs its own seeded operations, and dies at a chosen I/O call (counted from the start of its
 * kv_open) or after its last operation, in a chosen way: killed (FIO_CRASH_KILL: the page cache
 * survives, unsynced bytes stay readable and stay unsynced) or by a power cut (the five
 * power-loss modes: unsynced data dropped, kept, torn at a sector, zeroed, garbage). A last
 * open recovers. The history is every operation of every life in order, each life continuing
 * from the prefix its own recovery found. Every recovery, not only the last, must give the
 * model after some prefix of that history which holds every operation a flush of any life
 * acknowledged (and under sync=always every write that returned): docs/DURABILITY.md 3.1 and
 * its item on sequences of crashes.
 *
 * What runs (the counts are printed at the end: `crash points:` and `crash sequences:`):
 * - one life crashed at every I/O call in each power-loss mode (KV_CRASH_SEEDS workloads, 30,
 *   20 under a sanitizer);
 * - the first life killed at every I/O call, then a second life that recovers and runs
 *   operations with flushes (sync=none or always, by seed) and dies by a power cut after its
 *   last operation or at a sampled call, or is killed at a sampled call before a third life
 *   that recovers, runs operations and dies by a power cut (KV_SEQ_SEEDS workloads each, 20,
 *   4 under a sanitizer);
 * - a crash of each of the six kinds at every I/O call of a recovery, after a crash of each
 *   kind at a sample of the first life's calls; a kill there is followed by a life with
 *   flushes and a power cut;
 * - a crash of each kind at every I/O call of a salvage of a damaged store, then another
 *   recovery: it gives what an uninterrupted salvage gives, the damaged files are kept aside
 *   byte for byte, and a power cut after that loses nothing of it;
 * - step by step, in each power-loss mode: issue 10's bug 1 (a record filling its segment,
 *   killed before its fdatasync, a recovery, a flush that returns, a power cut), and the same
 *   with the first process killed before the store directory's name was durable.
 *
 * Rerun (every failure prints its own line):
 *   KV_SEED=N                                 everything, same workloads and samples
 *   KV_SEED=N KV_SEQ=17:kill,end:drop         one sequence: per life, the call it dies at
 *                                             (or "end": after its last operation) and how
 *                                             (kill, drop, keep, tear, zero, garbage)
 *   KV_SEED=N KV_CRASH_AT=K KV_CRASH_MODE=M   one single crash (M: enum fio_crash, 0-4) and
 *                                             a crash at every call of its recovery
 *   KV_SEED=N KV_SALVAGE=D:J:MODE             damage D (0-2) of the salvage test, a crash at
 *                                             salvage call J
 *   KV_CRASH_SEEDS=N, KV_SEQ_SEEDS=N          more (or fewer) workloads */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simstore.h"
#include "testutil.h"

/* ck_assert without its cost: Check records the place of every assertion it evaluates with a
 * write(2), which in the loops here took most of the run time. Both abort the test on failure. */
#define require(cond, ...)                            \
	do {                                          \
		if (!(cond))                          \
			ck_abort_msg(__VA_ARGS__);    \
	} while (0)
/* call returns 0 or a negative errno */
#define must(call)                                                                     \
	do {                                                                           \
		int must_rc_ = (call);                                                 \
		if (must_rc_)                                                          \
			ck_abort_msg("line %d: %s: %s", __LINE__, #call, strerror(-must_rc_)); \
	} while (0)

#define NKEYS 6
#define MAXV 600
#define SEG_BYTES 4096 /* small segments: rotations happen often */
/* A BIG put's value is larger than a segment: its record gets a segment of its own, exactly
 * its size (no preallocated tail for recovery to cut). */
#define BIGV (SEG_BYTES + MAXV)
#define NOPS 48        /* operations of a workload's first life */
#define NOPS_LATER 16  /* of each later life */
#define MAXLIVES 6
#define MAXHIST (NOPS + (MAXLIVES - 1) * NOPS_LATER)

/* Under a sanitizer every case costs several times more: the sequences then sample sparser. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

enum wop { W_PUT, W_DEL, W_WRITE, W_TRUNC, W_RENAME, W_PAIR, W_FLUSH, W_SNAP, W_BIG };
static const char *const wop_name[] = { "PUT", "DEL", "WRITE", "TRUNCATE", "RENAME", "PAIR",
					 "FLUSH", "SNAPSHOT", "BIG PUT" };

struct op {
	enum wop kind;
	int a, b;
	uint32_t off, len;
	uint8_t fill;
};

struct state {
	int present[NKEYS];
	uint32_t len[NKEYS];
	uint8_t val[NKEYS][BIGV];
};

static void key_name(char *buf, int k)
{
	snprintf(buf, 8, "key%d", k);
}

static void gen_ops(uint64_t seed, struct op *ops, int n)
{
	uint64_t r = seed;
	for (int i = 0; i < n; i++) {
		uint64_t x = tu_rand(&r);
		struct op *o = &ops[i];
		o->a = (int)(x % NKEYS);
		o->b = (int)((x >> 8) % NKEYS);
		o->off = (uint32_t)((x >> 16) % MAXV);
		o->len = (uint32_t)((x >> 28) % MAXV);
		o->fill = (uint8_t)(x >> 40);
		switch ((x >> 48) % 17) {
		case 0: case 1: case 2: case 3: o->kind = W_PUT; break;
		case 4: o->kind = W_DEL; break;
		case 5: case 6: case 7: o->kind = W_WRITE; break;
		case 8: o->kind = W_TRUNC; break;
		case 9: o->kind = W_RENAME; break;
		case 10: case 11: o->kind = W_PAIR; break;
		case 12: case 13: case 14: o->kind = W_FLUSH; break;
		case 15: o->kind = W_SNAP; break;
		default:
			o->kind = W_BIG;
			o->len += SEG_BYTES;
			break;
		}
	}
}

static void fill_bytes(uint8_t *p, uint32_t len, uint8_t fill, uint32_t salt)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(fill + i * 31 + salt);
}

/* The model: what op does to state (matching the store's semantics). Returns 0 when the op
 * is a write the store accepts, 1 when the store refuses it (nothing logged), 2 for flush. */
static int model_apply(struct state *s, const struct op *o)
{
	switch (o->kind) {
	case W_PUT:
	case W_BIG:
		s->present[o->a] = 1;
		s->len[o->a] = o->len;
		fill_bytes(s->val[o->a], o->len, o->fill, 0);
		return 0;
	case W_DEL:
		if (!s->present[o->a])
			return 1;
		s->present[o->a] = 0;
		return 0;
	case W_WRITE:
		if (!s->present[o->a])
			return 1;
		if (o->len == 0) /* like pwrite(2): writing nothing changes nothing, not even the size */
			return 0;
		if (o->off > s->len[o->a])
			memset(s->val[o->a] + s->len[o->a], 0, o->off - s->len[o->a]);
		fill_bytes(s->val[o->a] + o->off, o->len, o->fill, 1);
		if (o->off + o->len > s->len[o->a])
			s->len[o->a] = o->off + o->len;
		return 0;
	case W_TRUNC:
		if (!s->present[o->a])
			return 1;
		if (o->off > s->len[o->a])
			memset(s->val[o->a] + s->len[o->a], 0, o->off - s->len[o->a]);
		s->len[o->a] = o->off;
		return 0;
	case W_RENAME: /* a batch of one rename: always logged; a no-op when a is absent */
		if (s->present[o->a] && o->a != o->b) {
			s->present[o->b] = 1;
			s->len[o->b] = s->len[o->a];
			memcpy(s->val[o->b], s->val[o->a], s->len[o->a]);
			s->present[o->a] = 0;
		}
		return 0;
	case W_PAIR: /* two puts in one record: both or neither */
		s->present[o->a] = s->present[o->b] = 1;
		s->len[o->a] = o->len;
		fill_bytes(s->val[o->a], o->len, o->fill, 2);
		s->len[o->b] = o->off;
		fill_bytes(s->val[o->b], o->off, o->fill, 3);
		return 0;
	case W_FLUSH:
	case W_SNAP:
		return 2;
	}
	return 1;
}

/* Run op against the store: 0 ok, else the error. */
static int store_apply(struct kv *s, const struct op *o)
{
	char ka[8], kb[8];
	static uint8_t buf[BIGV]; /* one test runs at a time */
	key_name(ka, o->a);
	key_name(kb, o->b);
	switch (o->kind) {
	case W_PUT:
	case W_BIG:
		fill_bytes(buf, o->len, o->fill, 0);
		return kv_put(s, ka, strlen(ka), buf, o->len);
	case W_DEL:
		return kv_del(s, ka, strlen(ka));
	case W_WRITE:
		fill_bytes(buf, o->len, o->fill, 1);
		return kv_write(s, ka, strlen(ka), o->off, buf, o->len);
	case W_TRUNC:
		return kv_truncate(s, ka, strlen(ka), o->off);
	case W_RENAME: {
		struct kv_batch *b;
		int rc = kv_batch_new(&b);
		if (!rc)
			rc = kv_batch_rename(b, ka, strlen(ka), kb, strlen(kb));
		if (!rc)
			rc = kv_apply(s, b, NULL);
		kv_batch_free(b);
		return rc;
	}
	case W_PAIR: {
		struct kv_batch *b;
		uint8_t buf2[MAXV];
		fill_bytes(buf, o->len, o->fill, 2);
		fill_bytes(buf2, o->off, o->fill, 3);
		int rc = kv_batch_new(&b);
		if (!rc)
			rc = kv_batch_put(b, ka, strlen(ka), NULL, 0, buf, o->len);
		if (!rc)
			rc = kv_batch_put(b, kb, strlen(kb), NULL, 0, buf2, o->off);
		if (!rc)
			rc = kv_apply(s, b, NULL);
		kv_batch_free(b);
		return rc;
	}
	case W_FLUSH:
		return kv_flush(s);
	case W_SNAP:
		return kv_snapshot(s);
	}
	return -EINVAL;
}

/* The store's state as a model state: every key read back. */
static void store_state(struct kv *s, struct state *got)
{
	uint64_t present = 0;
	memset(got, 0, sizeof *got);
	for (int k = 0; k < NKEYS; k++) {
		char key[8];
		void *v;
		uint64_t len;
		key_name(key, k);
		int rc = kv_get(s, key, strlen(key), &v, &len);
		if (rc == -ENOENT)
			continue;
		require(rc == 0, "kv_get %s: %s", key, strerror(-rc));
		require(len <= sizeof got->val[k], "%s: %" PRIu64 " bytes, more than any op writes", key, len);
		got->present[k] = 1;
		got->len[k] = (uint32_t)len;
		memcpy(got->val[k], v, len);
		free(v);
		present++;
	}
	require(store_keys(s) == present, "the store holds %" PRIu64 " keys besides key0..key%d",
		store_keys(s) - present, NKEYS - 1);
}

/* The number of keys on which two states differ; why (may be NULL) names them. */
static int state_diff(const struct state *got, const struct state *m, char *why, size_t whylen)
{
	int differ = 0;
	if (why && whylen)
		why[0] = '\0';
	for (int k = 0; k < NKEYS; k++) {
		if (got->present[k] == m->present[k] &&
		    (!m->present[k] ||
		     (got->len[k] == m->len[k] && !memcmp(got->val[k], m->val[k], m->len[k]))))
			continue;
		differ++;
		if (why) {
			size_t used = strlen(why);
			char mine[32], model[32];
			if (got->present[k])
				snprintf(mine, sizeof mine, "%u bytes", got->len[k]);
			else
				snprintf(mine, sizeof mine, "absent");
			if (m->present[k])
				snprintf(model, sizeof model, "%u bytes", m->len[k]);
			else
				snprintf(model, sizeof model, "absent");
			snprintf(why + used, whylen - used, "%skey%d: store %s, model %s%s", used ? "; " : "",
				 k, mine, model,
				 got->present[k] && m->present[k] && got->len[k] == m->len[k] ? " (other bytes)" : "");
		}
	}
	return differ;
}

/* ---- the history of a sequence of lives ---- */

struct hist {
	struct op op[MAXHIST];
	int life[MAXHIST];  /* which life ran it (from 1) */
	int nth[MAXHIST];   /* its index among that life's operations (from 0) */
	int len;            /* operations that may be in the store */
	int acked;          /* a flush acknowledged every operation before this one */
	int acked_by;       /* the history index of that flush (or write, under sync=always) */
};

static void model_at(const struct hist *h, int p, struct state *m)
{
	memset(m, 0, sizeof *m);
	for (int i = 0; i < p; i++)
		model_apply(m, &h->op[i]);
}

static void describe_op(char *buf, size_t len, const struct hist *h, int i)
{
	const struct op *o = &h->op[i];
	int n = snprintf(buf, len, "op %d of life %d: %s", h->nth[i], h->life[i], wop_name[o->kind]);
	size_t left = len - (size_t)n;
	switch (o->kind) {
	case W_PUT:
	case W_BIG: snprintf(buf + n, left, " key%d, %u bytes", o->a, o->len); break;
	case W_DEL: snprintf(buf + n, left, " key%d", o->a); break;
	case W_WRITE: snprintf(buf + n, left, " key%d at %u, %u bytes", o->a, o->off, o->len); break;
	case W_TRUNC: snprintf(buf + n, left, " key%d to %u", o->a, o->off); break;
	case W_RENAME: snprintf(buf + n, left, " key%d to key%d", o->a, o->b); break;
	case W_PAIR:
		snprintf(buf + n, left, " key%d (%u bytes) and key%d (%u bytes)", o->a, o->len, o->b,
			 o->off);
		break;
	case W_FLUSH:
	case W_SNAP:
		break;
	}
}

/* KV_CRASH_DEBUG: every prefix of the history beside the recovered state. */
static void debug_history(const struct hist *h, const struct state *got)
{
	struct state m;
	char op[160];
	memset(&m, 0, sizeof m);
	for (int p = 0; p <= h->len; p++) {
		if (p > 0) {
			model_apply(&m, &h->op[p - 1]);
			describe_op(op, sizeof op, h, p - 1);
		} else {
			snprintf(op, sizeof op, "nothing yet");
		}
		fprintf(stderr, "after %2d (%s)%s:", p, op, p == h->acked ? ", all acknowledged" : "");
		for (int k = 0; k < NKEYS; k++)
			if (m.present[k])
				fprintf(stderr, " key%d=%u", k, m.len[k]);
		fprintf(stderr, "\n");
	}
	fprintf(stderr, "recovered:");
	for (int k = 0; k < NKEYS; k++)
		if (got->present[k])
			fprintf(stderr, " key%d=%u", k, got->len[k]);
	fprintf(stderr, "\n");
}

/* KV_CRASH_DEBUG: the store directory as readers see it and as a power cut would leave it. */
static void debug_dir(struct faultio *f, const char *when)
{
	char **names, path[300];
	size_t n;
	if (!getenv("KV_CRASH_DEBUG"))
		return;
	fprintf(stderr, "-- %s\n", when);
	if (faultio_list(f, SIM_DIR, &names, &n)) {
		fprintf(stderr, "   (no %s)\n", SIM_DIR);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		void *d;
		size_t len, dlen = 0;
		snprintf(path, sizeof path, SIM_DIR "/%s", names[i]);
		must(faultio_read_file(f, path, &d, &len));
		free(d);
		int drc = faultio_read_durable(f, path, &d, &dlen);
		if (!drc)
			free(d);
		fprintf(stderr, "   %-32s %6zu bytes, durable: %s %zu\n", names[i], len,
			drc ? "no such name" : faultio_is_durable(f, path) == 1 ? "all," : "partly,", dlen);
	}
	faultio_free_names(names, n);
}

/* The store just recovered; its state must be the model after a prefix p of the history with
 * acked <= p <= len. Returns the smallest such p; fails saying what was lost otherwise. */
static int recovered_prefix(struct faultio *f, struct kv *s, const struct hist *h, const char *what)
{
	static struct state m, got; /* big; one test runs at a time */
	char why[600], a[160], b[160];
	int lost_at = -1, best = 0, best_diff = NKEYS + 1;

	faultio_pause(f, true); /* reading back is no part of the life's schedule */
	store_state(s, &got);
	faultio_pause(f, false);
	memset(&m, 0, sizeof m);
	for (int p = 0; p <= h->len; p++) {
		if (p > 0)
			model_apply(&m, &h->op[p - 1]);
		int d = state_diff(&got, &m, NULL, 0);
		if (d == 0 && p >= h->acked)
			return p;
		if (d == 0 && lost_at < 0)
			lost_at = p;
		if (d < best_diff) {
			best_diff = d;
			best = p;
		}
	}
	if (getenv("KV_CRASH_DEBUG"))
		debug_history(h, &got);
	if (lost_at >= 0) {
		/* name the first lost operation that changed the state (flushes, refused writes
		 * and renames of absent keys change nothing to lose) */
		static struct state before;
		int first = lost_at;
		model_at(h, lost_at, &m);
		for (; first < h->acked - 1; first++) {
			before = m;
			model_apply(&m, &h->op[first]);
			if (state_diff(&before, &m, NULL, 0))
				break;
		}
		describe_op(a, sizeof a, h, h->acked_by);
		describe_op(b, sizeof b, h, first);
		ck_abort_msg("%s: acknowledged operations lost: the store holds the first %d of %d "
			     "operations, but %d were acknowledged (by %s); the first one lost is %s",
			     what, lost_at, h->len, h->acked, a, b);
	}
	model_at(h, best, &m);
	state_diff(&got, &m, why, sizeof why);
	ck_abort_msg("%s: the recovered state is no prefix of the %d operations (%d acknowledged); "
		     "closest: after %d operations, where %s", what, h->len, h->acked, best, why);
	return -1;
}

/* ---- lives ---- */

static const char *const mode_name[] = {
	[FIO_CRASH_DROP] = "drop", [FIO_CRASH_KEEP] = "keep", [FIO_CRASH_TEAR] = "tear",
	[FIO_CRASH_ZERO] = "zero", [FIO_CRASH_GARBAGE] = "garbage", [FIO_CRASH_KILL] = "kill",
};
static const enum fio_crash power_modes[] = { FIO_CRASH_DROP, FIO_CRASH_KEEP, FIO_CRASH_TEAR,
					      FIO_CRASH_ZERO, FIO_CRASH_GARBAGE };
static const enum fio_crash all_modes[] = { FIO_CRASH_KILL, FIO_CRASH_DROP, FIO_CRASH_KEEP,
					    FIO_CRASH_TEAR, FIO_CRASH_ZERO, FIO_CRASH_GARBAGE };
#define NPOWER (sizeof power_modes / sizeof power_modes[0])
#define NMODES (sizeof all_modes / sizeof all_modes[0])

struct life {
	uint64_t at;        /* the I/O call (from 1 at its kv_open) it dies at; 0: after its last op */
	enum fio_crash mode;
};

struct seq {
	uint64_t seed;
	int n;
	struct life life[MAXLIVES];
};

/* What a life does besides dying follows from the seed and its number: its operations, their
 * count and its sync mode. The first life of a seed is the single-crash workload. A later life
 * starts with a flush one time in two: what recovery found is then acknowledged before the
 * life writes anything (issue 10's bug 1 needs that flush). */
struct life_plan {
	uint64_t ops_seed;
	int nops;
	enum kv_sync sync;
	bool flush_first;
};

static struct life_plan plan_of(uint64_t seed, int li)
{
	struct life_plan p = { seed, NOPS, KV_SYNC_NONE, false };
	if (li > 0) {
		uint64_t r = seed ^ (0x5851f42d4c957f2dull * (uint64_t)li);
		p.ops_seed = tu_rand(&r);
		p.nops = NOPS_LATER;
		p.sync = tu_rand(&r) % 3 == 0 ? KV_SYNC_ALWAYS : KV_SYNC_NONE;
		p.flush_first = tu_rand(&r) % 2 == 0;
	}
	return p;
}

static void seq_format(char *buf, size_t len, const struct seq *q)
{
	int n = snprintf(buf, len, "KV_SEED=%" PRIu64 " KV_SEQ=", q->seed);
	for (int i = 0; i < q->n && n > 0 && (size_t)n < len; i++) {
		if (q->life[i].at)
			n += snprintf(buf + n, len - (size_t)n, "%s%" PRIu64 ":%s", i ? "," : "",
				      q->life[i].at, mode_name[q->life[i].mode]);
		else
			n += snprintf(buf + n, len - (size_t)n, "%send:%s", i ? "," : "",
				      mode_name[q->life[i].mode]);
	}
}

static int seq_parse(const char *s, uint64_t seed, struct seq *q)
{
	memset(q, 0, sizeof *q);
	q->seed = seed;
	while (*s) {
		char word[16];
		size_t n = strcspn(s, ":");
		if (q->n == MAXLIVES || !s[n])
			return -EINVAL;
		struct life *l = &q->life[q->n++];
		l->at = strncmp(s, "end", 3) ? strtoull(s, NULL, 10) : 0;
		s += n + 1;
		n = strcspn(s, ",");
		snprintf(word, sizeof word, "%.*s", (int)n, s);
		size_t m;
		for (m = 0; m < NMODES; m++)
			if (!strcmp(word, mode_name[all_modes[m]]))
				break;
		if (m == NMODES)
			return -EINVAL;
		l->mode = all_modes[m];
		s += n + (s[n] == ',');
	}
	return q->n ? 0 : -EINVAL;
}

static struct kv_options crash_options(struct faultio *f, enum kv_sync sync)
{
	struct kv_options o = sim_options(f);
	o.segment_bytes = SEG_BYTES;
	o.sync = sync;
	return o;
}

/* Has the life that started at call base reached its crash point? */
static bool dead(struct faultio *f, uint64_t base, const struct life *l, bool probe)
{
	return l->at && !probe && faultio_calls(f) >= base + l->at;
}

/* Life li of q on disk f, continuing history h: open (recover), check the recovered state,
 * run the life's operations, die as q says. Returns the I/O calls the life made before its
 * death (or before its close); with probe set it closes cleanly instead of dying, and counts
 * the close too. */
static uint64_t run_life(struct faultio *f, const struct seq *q, int li, struct hist *h,
			 bool probe)
{
	const struct life *l = &q->life[li];
	struct life_plan p = plan_of(q->seed, li);
	struct op ops[NOPS];
	struct kv_options o = crash_options(f, p.sync);
	struct kv_report rep;
	struct kv *s = NULL;
	char what[300];
	uint64_t base = faultio_calls(f), calls;
	int n;

	n = snprintf(what, sizeof what, "life %d of ", li + 1);
	seq_format(what + n, sizeof what - (size_t)n, q);
	gen_ops(p.ops_seed, ops, p.nops);
	if (p.flush_first)
		ops[0].kind = W_FLUSH;
	if (l->at && !probe)
		faultio_crash_at(f, base + l->at);
	int rc = kv_open(&s, SIM_DIR, &o, &rep);
	if (rc) {
		require(dead(f, base, l, probe), "%s: recovery refused before the crash point: %s (%s)",
			what, strerror(-rc), tu_report(&rep));
		calls = faultio_calls(f) - base;
		goto die;
	}
	h->len = recovered_prefix(f, s, h, what);
	struct state m;
	model_at(h, h->len, &m);
	for (int i = 0; i < p.nops; i++) {
		int kind = model_apply(&m, &ops[i]);
		require(h->len < MAXHIST, "%s: history too long", what);
		h->op[h->len] = ops[i];
		h->life[h->len] = li + 1;
		h->nth[h->len] = i;
		h->len++;
		rc = store_apply(s, &ops[i]);
		if (kind == 1) {
			require(rc != 0, "%s: op %d: the store accepted what the model refuses", what, i);
			continue;
		}
		if (rc) {
			require(dead(f, base, l, probe), "%s: op %d (%s) failed before the crash point: %s",
				what, i, wop_name[ops[i].kind], strerror(-rc));
			break;
		}
		if (kind == 2 || p.sync == KV_SYNC_ALWAYS) {
			h->acked = h->len;
			h->acked_by = h->len - 1;
		}
	}
	calls = faultio_calls(f) - base;
	if (probe) {
		rc = kv_close(s);
		require(rc == 0, "%s: close: %s", what, strerror(-rc));
		return faultio_calls(f) - base;
	}
	if (!l->at)
		faultio_crash_at(f, faultio_calls(f) + 1);
	/* A crash point not reached yet lands inside the close (or after it). A dead process's
	 * close fails, and what it frees is only memory. */
	rc = kv_close(s);
	if (rc)
		require(dead(f, base, l, probe) || !l->at, "%s: close failed before the crash point: %s",
			what, strerror(-rc));
die:
	if (!probe) {
		must(faultio_crash(f, l->mode, q->seed ^ (l->at << 8) ^ (uint64_t)li));
		debug_dir(f, what);
	}
	return calls;
}

/* The recovery after the last life: it must open, to a prefix that holds every acked op. */
static int recover_last(struct faultio *f, const struct seq *q, const struct hist *h)
{
	struct kv_options o = crash_options(f, KV_SYNC_NONE);
	struct kv_report rep;
	struct kv *s = NULL;
	char what[300];
	int n = snprintf(what, sizeof what, "last recovery of ");
	seq_format(what + n, sizeof what - (size_t)n, q);
	int rc = kv_open(&s, SIM_DIR, &o, &rep);
	require(rc == 0, "%s: recovery refused: %s (%s); %d operations were acknowledged",
		what, strerror(-rc), tu_report(&rep), h->acked);
	int p = recovered_prefix(f, s, h, what);
	must(kv_close(s));
	return p;
}

/* Lives from..q->n-1 on f (consumed), then the last recovery. */
static int run_from(struct faultio *f, const struct seq *q, int from, struct hist h)
{
	for (int li = from; li < q->n; li++)
		run_life(f, q, li, &h, false);
	int p = recover_last(f, q, &h);
	faultio_destroy(f);
	return p;
}

/* A copy of f to run one continuation on. */
static struct faultio *fork_disk(struct faultio *f)
{
	struct faultio *g;
	must(faultio_clone(f, &g));
	return g;
}

/* The I/O calls a kv_open on (a copy of) f makes. */
static uint64_t open_calls(struct faultio *f)
{
	struct faultio *g = fork_disk(f);
	struct kv_options o = crash_options(g, KV_SYNC_NONE);
	struct kv *s;
	uint64_t c0 = faultio_calls(g);
	must(kv_open(&s, SIM_DIR, &o, NULL));
	uint64_t calls = faultio_calls(g) - c0;
	must(kv_close(s));
	faultio_destroy(g);
	return calls;
}

static uint64_t crash_points, recovery_crashes, sequences, seq_recovery, seq_salvage;

static int env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

/* ---- one crash ---- */

static void one_case(uint64_t seed, uint64_t k, enum fio_crash mode, bool crash_recovery)
{
	struct seq q = { .seed = seed, .n = 1, .life = { { k, mode } } };
	struct hist h0 = { .len = 0 };
	struct faultio *f = sim_disk();
	run_life(f, &q, 0, &h0, false);
	crash_points++;
	if (crash_recovery) {
		/* crash again at each call of the recovery itself, then recover for real */
		uint64_t rcalls = open_calls(f);
		q.n = 2;
		for (uint64_t j = 1; j <= rcalls; j++) {
			q.life[1] = (struct life){ j, FIO_CRASH_DROP };
			run_from(fork_disk(f), &q, 1, h0);
			recovery_crashes++;
		}
		q.n = 1;
	}
	/* recovering twice from the same files gives the same state */
	int p1 = run_from(fork_disk(f), &q, 1, h0);
	int p2 = run_from(f, &q, 1, h0);
	require(p1 == p2, "KV_SEED=%" PRIu64 " KV_CRASH_AT=%" PRIu64 " KV_CRASH_MODE=%d: the same "
		"files recovered to %d and to %d operations", seed, k, (int)mode, p1, p2);
}

START_TEST(crash_at_every_io_call_recovers_a_prefix_with_every_flushed_op)
{
	uint64_t seed0 = tu_seed();
	int nseeds = env_int("KV_CRASH_SEEDS", SANITIZED ? 20 : 30);
	for (int si = 0; si < nseeds; si++) {
		uint64_t seed = seed0 + (uint64_t)si;
		/* how many I/O calls the whole workload makes without a crash */
		struct seq q = { .seed = seed, .n = 1 };
		struct hist h = { .len = 0 };
		struct faultio *f = sim_disk();
		uint64_t total = run_life(f, &q, 0, &h, true);
		faultio_destroy(f);
		for (uint64_t k = 1; k <= total; k++)
			for (size_t m = 0; m < NPOWER; m++)
				one_case(seed, k, power_modes[m], si == 0 && k % 7 == 0 && m == 0);
	}
}
END_TEST

START_TEST(the_single_crash_in_kv_crash_at_recovers)
{
	one_case(tu_seed(), strtoull(getenv("KV_CRASH_AT"), NULL, 10),
		 (enum fio_crash)atoi(getenv("KV_CRASH_MODE")), true);
}
END_TEST

/* ---- sequences ---- */

/* The first life of seed killed at call k: its disk and history, to continue from. */
static struct faultio *killed_first_life(uint64_t seed, uint64_t k, enum fio_crash mode, struct hist *h)
{
	struct seq q = { .seed = seed, .n = 1, .life = { { k, mode } } };
	struct faultio *f = sim_disk();
	memset(h, 0, sizeof *h);
	run_life(f, &q, 0, h, false);
	return f;
}

static uint64_t first_life_calls(uint64_t seed)
{
	struct seq q = { .seed = seed, .n = 1 };
	struct hist h = { .len = 0 };
	struct faultio *f = sim_disk();
	uint64_t total = run_life(f, &q, 0, &h, true);
	faultio_destroy(f);
	return total;
}

/* A first life killed: its seed (the si-th of its test), the call k it was killed at, its disk
 * f (the callee's) and history h; r a generator seeded from the seed, for sampling. */
struct first_kill {
	uint64_t seed, k, *r;
	int si;
	struct faultio *f;
	struct hist h;
};

/* For KV_SEQ_SEEDS seeds from seed0, the first life killed at each of its I/O calls in turn,
 * each handed to then (which owns its disk). */
static void each_first_life_kill(uint64_t seed0, void (*then)(struct first_kill *c))
{
	int nseeds = env_int("KV_SEQ_SEEDS", SANITIZED ? 4 : 20);
	for (int si = 0; si < nseeds; si++) {
		uint64_t seed = seed0 + (uint64_t)si, r = seed;
		uint64_t total = first_life_calls(seed);
		for (uint64_t k = 1; k <= total; k++) {
			struct first_kill c = { .seed = seed, .k = k, .r = &r, .si = si };
			c.f = killed_first_life(seed, k, FIO_CRASH_KILL, &c.h);
			then(&c);
		}
	}
}

static void recovery_flushes_then_power_cut(struct first_kill *c)
{
	uint64_t k = c->k, si = (uint64_t)c->si;
	struct seq q = { .seed = c->seed, .n = 2 };
	q.life[0] = (struct life){ k, FIO_CRASH_KILL };
	/* the second life runs to its end, then the power goes */
	q.life[1] = (struct life){ 0, power_modes[(k + si) % NPOWER] };
	struct hist h2 = c->h;
	struct faultio *g = fork_disk(c->f);
	uint64_t calls2 = run_life(g, &q, 1, &h2, false);
	recover_last(g, &q, &h2);
	faultio_destroy(g);
	sequences++;
	/* the power goes at the second life's first I/O call after its recovery: all it did was
	 * recover and perhaps acknowledge a flush */
	q.life[1] = (struct life){ open_calls(c->f) + 1, power_modes[(k + si + 2) % NPOWER] };
	run_from(fork_disk(c->f), &q, 1, c->h);
	sequences++;
	/* the power goes at a sampled call of the second life */
	q.life[1] = (struct life){ 1 + tu_rand(c->r) % calls2, power_modes[tu_rand(c->r) % NPOWER] };
	run_from(fork_disk(c->f), &q, 1, c->h);
	sequences++;
	faultio_destroy(c->f);
}

START_TEST(kill_recovery_flushes_then_power_cut_keep_every_flushed_op)
{
	each_first_life_kill(tu_seed() + 1000, /* other workloads than the single crashes' */
			     recovery_flushes_then_power_cut);
}
END_TEST

static void a_second_kill_then_power_cut(struct first_kill *c)
{
	struct seq q = { .seed = c->seed, .n = 3 };
	q.life[0] = (struct life){ c->k, FIO_CRASH_KILL };
	q.life[1] = (struct life){ 0, FIO_CRASH_KILL };
	struct hist h2 = c->h;
	struct faultio *probe = fork_disk(c->f);
	uint64_t calls2 = run_life(probe, &q, 1, &h2, true);
	faultio_destroy(probe);
	/* killed anywhere in the second life, its close included; the third life runs to its end
	 * and the power goes */
	q.life[1] = (struct life){ 1 + tu_rand(c->r) % calls2, FIO_CRASH_KILL };
	q.life[2] = (struct life){ 0, power_modes[(c->k + (uint64_t)c->si) % NPOWER] };
	run_from(c->f, &q, 1, c->h);
	sequences++;
}

START_TEST(two_kills_then_power_cut_keep_every_flushed_op)
{
	each_first_life_kill(tu_seed() + 2000, a_second_kill_then_power_cut);
}
END_TEST

START_TEST(crash_of_each_kind_at_every_io_call_of_recovery_recovers)
{
	uint64_t seed0 = tu_seed() + 3000;
	int nseeds = env_int("KV_SEQ_SEEDS", SANITIZED ? 4 : 20) / 5 + 1;
	const uint64_t samples = SANITIZED ? 3 : 8; /* crash points of the first life, per seed */
	for (int si = 0; si < nseeds; si++) {
		uint64_t seed = seed0 + (uint64_t)si, r = seed;
		uint64_t total = first_life_calls(seed);
		for (uint64_t i = 0; i < samples; i++) {
			/* one crash point in each samples-th of the first life, of each kind in turn */
			uint64_t k = 1 + i * total / samples + tu_rand(&r) % (total / samples);
			enum fio_crash m1 = all_modes[(i + (uint64_t)si) % NMODES];
			struct hist h;
			struct faultio *f = killed_first_life(seed, k, m1, &h);
			uint64_t rcalls = open_calls(f);
			for (uint64_t c = 1; c <= rcalls; c++)
				for (size_t m = 0; m < NMODES; m++) {
					struct seq q = { .seed = seed, .n = 2 };
					q.life[0] = (struct life){ k, m1 };
					q.life[1] = (struct life){ c, all_modes[m] };
					if (all_modes[m] == FIO_CRASH_KILL) {
						/* killed while recovering: the next life flushes, then the
						 * power goes */
						q.n = 3;
						q.life[2] = (struct life){ 0, power_modes[(c + k) % NPOWER] };
					}
					run_from(fork_disk(f), &q, 1, h);
					sequences++;
					seq_recovery++;
				}
			faultio_destroy(f);
		}
	}
}
END_TEST

START_TEST(the_sequence_in_kv_seq_keeps_every_flushed_op)
{
	struct seq q;
	ck_assert_msg(seq_parse(getenv("KV_SEQ"), tu_seed(), &q) == 0,
		      "KV_SEQ=%s: want CALL:MODE[,CALL:MODE...], CALL a number or end, MODE one of "
		      "kill drop keep tear zero garbage", getenv("KV_SEQ"));
	struct hist h = { .len = 0 };
	run_from(sim_disk(), &q, 0, h);
	sequences++;
}
END_TEST

/* ---- issue 10, bug 1, step by step ---- */

/* The bytes of value that make a record of one put of key "big" end exactly at the end of a
 * fresh SEG_BYTES segment (measured, not computed from the format). */
static uint64_t value_filling_a_segment(void)
{
	struct faultio *f = sim_disk();
	struct kv *s = sim_open(f, NULL);
	struct kv_stats st;
	put_str(s, "big", "v");
	kv_stats(s, &st);
	uint64_t overhead = st.wal_bytes - 1;
	ck_assert_int_eq(kv_close(s), 0);
	faultio_destroy(f);
	return SEG_BYTES - SEG_HDR_SIZE - overhead;
}

START_TEST(record_filling_its_segment_killed_before_fdatasync_survives_a_power_cut_after_the_next_flush)
{
	uint64_t vlen = value_filling_a_segment();
	char *big = malloc(vlen + 1);
	ck_assert_ptr_nonnull(big);
	memset(big, 'Q', vlen);
	big[vlen] = '\0';
	for (size_t m = 0; m < NPOWER; m++) {
		struct faultio *f = sim_disk();
		struct kv *s;
		struct kv_report rep;
		const char *what = mode_name[power_modes[m]];

		/* life 1, sync=always: the put's record fills the first segment exactly; the
		 * process dies in the fdatasync that would have made it durable */
		struct kv_options o = crash_options(f, KV_SYNC_ALWAYS);
		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
		uint64_t pw = faultio_count(f, FIO_OP_PWRITE), fs = faultio_count(f, FIO_OP_FDATASYNC);
		faultio_crash_at(f, faultio_calls(f) + 2);
		ck_assert_int_ne(kv_put(s, "big", 3, big, vlen), 0);
		ck_assert_msg(faultio_count(f, FIO_OP_PWRITE) == pw + 1 &&
			      faultio_count(f, FIO_OP_FDATASYNC) == fs + 1,
			      "the put should be one pwrite and one (dying) fdatasync");
		ck_assert_int_ne(kv_close(s), 0);
		ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
		struct sim_rec rec[2];
		ck_assert_uint_eq(sim_records(f, SIM_DIR "/wal-0000000000000001.log", rec, 2), 1);
		ck_assert_msg(rec[0].off + rec[0].size == SEG_BYTES, "the record should end the "
			      "segment: it ends at %" PRIu64, rec[0].off + rec[0].size);

		/* life 2 sees the record (the page cache survived); its flush returns */
		o = crash_options(f, KV_SYNC_NONE);
		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), 0);
		ck_assert_uint_eq(store_keys(s), 1);
		put_str(s, "x", "1");
		ck_assert_int_eq(kv_flush(s), 0);
		faultio_crash_at(f, faultio_calls(f) + 1);
		ck_assert_int_ne(kv_close(s), 0);

		/* the power goes: everything that flush acknowledged is still there */
		ck_assert_int_eq(faultio_crash(f, power_modes[m], 7), 0);
		int rc = kv_open(&s, SIM_DIR, &o, &rep);
		ck_assert_msg(rc == 0, "power cut (%s) after the flush: recovery refused: %s", what,
			      tu_report(&rep));
		expect_str(s, "x", "1");
		expect_str(s, "big", big);
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
	free(big);
}
END_TEST

/* The same promise one step earlier: the first process dies between creating the store
 * directory and making its name durable in the parent; the next one opens the store and
 * acknowledges a flush. */
START_TEST(store_directory_made_by_a_killed_process_survives_a_power_cut_after_the_next_flush)
{
	for (size_t m = 0; m < NPOWER; m++) {
		struct faultio *f = NULL;
		struct kv *s;
		struct kv_report rep;
		struct kv_options o;

		/* life 1 dies at the first I/O call of kv_open at which the new directory exists but
		 * its name is not yet durable (the fsync of /sim that would make it so) */
		uint64_t c;
		for (c = 1; c < 20; c++) {
			if (f)
				faultio_destroy(f);
			f = sim_disk();
			o = crash_options(f, KV_SYNC_NONE);
			faultio_crash_at(f, faultio_calls(f) + c);
			ck_assert_int_ne(kv_open(&s, SIM_DIR, &o, &rep), 0);
			ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
			if (faultio_exists(f, SIM_DIR) && faultio_is_durable(f, SIM_DIR) == 0)
				break;
		}
		ck_assert_msg(c < 20, "no call of kv_open leaves a directory whose name is not durable");

		/* life 2 finds the directory and acknowledges a flush */
		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, &rep), 0);
		put_str(s, "x", "1");
		ck_assert_int_eq(kv_flush(s), 0);
		faultio_crash_at(f, faultio_calls(f) + 1);
		ck_assert_int_ne(kv_close(s), 0);

		ck_assert_int_eq(faultio_crash(f, power_modes[m], 7), 0);
		ck_assert_msg(faultio_exists(f, SIM_DIR), "power cut (%s) after the flush: the store "
			      "directory is gone", mode_name[power_modes[m]]);
		int rc = kv_open(&s, SIM_DIR, &o, &rep);
		ck_assert_msg(rc == 0, "power cut (%s) after the flush: recovery refused: %s",
			      mode_name[power_modes[m]], tu_report(&rep));
		expect_str(s, "x", "1");
		ck_assert_int_eq(kv_close(s), 0);
		faultio_destroy(f);
	}
}
END_TEST

/* Life 1 of the two tests below of the segment holding a checkpoint's LSN: ten keys flushed; a
 * value that takes a segment of its own, deleted (so that segment holds nothing the checkpoint
 * needs); a checkpoint; then a put too big for what is left of the segment, during which the
 * process is killed just after the next segment was created, before its header was written. The test fails when no call leaves that. */
static struct faultio *killed_after_creating_the_segment_past_a_checkpoint(void)
{
	size_t big = SEG_BYTES - 256;
	char *v = malloc(big + 1);
	ck_assert_ptr_nonnull(v);
	memset(v, 'B', big);
	v[big] = '\0';
	for (uint64_t c = 1; c < 400; c++) {
		struct faultio *f = sim_disk();
		struct kv_options o = crash_options(f, KV_SYNC_NONE);
		struct kv *s;
		char k[8], **names;
		size_t n;
		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
		for (int i = 0; i < 10; i++) {
			snprintf(k, sizeof k, "k%d", i);
			put_str(s, k, "flushed");
		}
		put_str(s, "pad", v);
		ck_assert_int_eq(kv_del(s, "pad", 3), 0);
		ck_assert_int_eq(kv_flush(s), 0);
		ck_assert_int_eq(kv_snapshot(s), 0);
		faultio_crash_at(f, faultio_calls(f) + c);
		int rc = kv_put(s, "big", 3, v, big);
		if (kv_close(s) == 0 && rc == 0) {
			faultio_destroy(f);
			break; /* the put ended before call c */
		}
		ck_assert_int_eq(faultio_crash(f, FIO_CRASH_KILL, 1), 0);
		ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
		const char *last_seg = NULL;
		for (size_t i = 0; i < n; i++)
			if (!strncmp(names[i], "wal-", 4) && (!last_seg || strcmp(names[i], last_seg) > 0))
				last_seg = names[i];
		char path[300];
		uint64_t size = SEG_HDR_SIZE;
		bool is_dir;
		if (last_seg) {
			snprintf(path, sizeof path, SIM_DIR "/%s", last_seg);
			ck_assert_int_eq(faultio_stat(f, path, &is_dir, &size), 0);
		}
		faultio_free_names(names, n);
		if (size < SEG_HDR_SIZE) {
			free(v);
			return f;
		}
		faultio_destroy(f);
	}
	free(v);
	ck_abort_msg("no call of the checkpoint is followed by a segment with no header yet");
	return NULL;
}

/* The newest checkpoint's name in SIM_DIR (into name), or fails the test. */
static void checkpoint_name(struct faultio *f, char *name, size_t len)
{
	char **names;
	size_t n;
	name[0] = '\0';
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (!strncmp(names[i], "ckpt-", 5) && strcmp(names[i], name) > 0)
			snprintf(name, len, "%s", names[i]);
	faultio_free_names(names, n);
	ck_assert_msg(name[0], "no checkpoint in " SIM_DIR);
}

/* The last segment in SIM_DIR that holds at least a header (into name). */
static void last_segment_with_a_header(struct faultio *f, char *name, size_t len)
{
	char **names, path[300];
	size_t n;
	name[0] = '\0';
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t size;
		bool is_dir;
		if (strncmp(names[i], "wal-", 4) || strstr(names[i], ".damaged"))
			continue;
		snprintf(path, sizeof path, SIM_DIR "/%s", names[i]);
		ck_assert_int_eq(faultio_stat(f, path, &is_dir, &size), 0);
		if (size >= SEG_HDR_SIZE && strcmp(names[i], name) > 0)
			snprintf(name, len, "%s", names[i]);
	}
	faultio_free_names(names, n);
	ck_assert_msg(name[0], "no segment with a header in " SIM_DIR);
}

/* Does the log still reach the checkpoint whose LSN is the last record of segment holder: is
 * holder in place, or a later segment with a header (where the log goes on)? */
static bool log_reaches(struct faultio *f, const char *holder)
{
	char later[64];
	char path[300];
	snprintf(path, sizeof path, SIM_DIR "/%s", holder);
	if (faultio_exists(f, path))
		return true;
	last_segment_with_a_header(f, later, sizeof later);
	return strcmp(later, holder) > 0;
}

/* What a crash interrupts in the tests of the segment holding a checkpoint's LSN. */
enum step { STEP_RECOVERY, STEP_SALVAGE };

/* The ten keys killed_after_creating_the_segment_past_a_checkpoint flushed. */
static void expect_the_ten_flushed(struct kv *s)
{
	for (int i = 0; i < 10; i++) {
		char k[8];
		snprintf(k, sizeof k, "k%d", i);
		expect_str(s, k, "flushed");
	}
}

/* After a salvage killed at its call j and a power cut in power_modes[m]: the log still reaches
 * the checkpoint held in segment holder, and a strict open opens, or refuses for the damaged
 * checkpoint alone and opens after another salvage. The last open's result. */
static int open_after_a_killed_salvage(struct faultio *g, const struct kv_options *o, struct kv **s,
				       struct kv_report *rep, uint64_t j, size_t m, const char *holder)
{
	ck_assert_msg(log_reaches(g, holder), "salvage killed at its call %" PRIu64
		      ", then a power cut (%s): the log ends short of the checkpoint (%s "
		      "is gone, no segment after it has a header)", j,
		      mode_name[power_modes[m]], holder);
	int rc = kv_open(s, SIM_DIR, o, rep);
	ck_assert_msg(rc != -EUCLEAN || rep->damage == KV_DAMAGE_CHECKPOINT,
		      "salvage killed at its call %" PRIu64 ", then a power cut (%s): a "
		      "strict open refused for more than the damaged checkpoint: %s", j,
		      mode_name[power_modes[m]], tu_report(rep));
	if (rc == -EUCLEAN) {
		debug_dir(g, "power cut");
		rc = kv_salvage(SIM_DIR, faultio_kvio(g), NULL, rep);
		debug_dir(g, "salvage again");
		ck_assert_msg(rc == 0, "salvage killed at its call %" PRIu64 ", then a power "
			      "cut (%s): salvage again refused: %s", j,
			      mode_name[power_modes[m]], tu_report(rep));
		rc = kv_open(s, SIM_DIR, o, rep);
	}
	return rc;
}

/* f (consumed) with step killed at each of its I/O calls in turn, until one runs to its end
 * before the call, then a power cut in each mode: the next open serves every flushed key (for
 * STEP_SALVAGE, open_after_a_killed_salvage's, with the checkpoint's segment holder). */
static void each_call_then_a_power_cut(struct faultio *f, enum step step, const char *holder)
{
	const char *what = step == STEP_SALVAGE ? "salvage" : "recovery";
	const char *next = step == STEP_SALVAGE ? "open" : "recovery";
	int done = 0;
	for (uint64_t j = 1; !done; j++) {
		for (size_t m = 0; m < NPOWER; m++) {
			struct faultio *g;
			struct kv *s;
			struct kv_report rep;
			int rc;
			ck_assert_int_eq(faultio_clone(f, &g), 0);
			struct kv_options o = crash_options(g, KV_SYNC_NONE);
			faultio_crash_at(g, faultio_calls(g) + j);
			if (step == STEP_SALVAGE) {
				if (kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep) == 0)
					done |= faultio_calls(g) < j;
				debug_dir(g, "salvage");
			} else if (kv_open(&s, SIM_DIR, &o, &rep) == 0) {
				done |= faultio_calls(g) < j;
				faultio_crash_at(g, faultio_calls(g) + 1);
				ck_assert_int_ne(kv_close(s), 0);
			}
			ck_assert_int_eq(faultio_crash(g, power_modes[m], 7), 0);
			if (step == STEP_SALVAGE)
				rc = open_after_a_killed_salvage(g, &o, &s, &rep, j, m, holder);
			else
				rc = kv_open(&s, SIM_DIR, &o, &rep);
			ck_assert_msg(rc == 0, "%s killed at its call %" PRIu64 ", then a power cut "
				      "(%s): the next %s refused: %s", what, j, mode_name[power_modes[m]],
				      next, tu_report(&rep));
			expect_the_ten_flushed(s);
			ck_assert_int_eq(kv_close(s), 0);
			faultio_destroy(g);
		}
	}
	faultio_destroy(f);
}

/* The segment holding a checkpoint's LSN is the one the log continues in when the segment after
 * it lost its header (a process killed as it created it): the recovery that removes the
 * headerless segment keeps it, so a power cut at any call of that recovery (before the new
 * segment's header is durable) still leaves a log that reaches the checkpoint. Found by the
 * sequence sweep: KV_SEQ=92:kill,45:garbage refused to open ("the log ends before the
 * checkpoint's last record"). */
START_TEST(segment_holding_the_checkpoint_lsn_outlives_a_headerless_successor_through_a_power_cut)
{
	struct faultio *f = killed_after_creating_the_segment_past_a_checkpoint();
	each_call_then_a_power_cut(f, STEP_RECOVERY, NULL);
}
END_TEST

/* The same through a salvage that rewrites a damaged checkpoint, which sets the segments wholly
 * before it aside (they may hold the values of its lost entries) rather than deleting them: the
 * segment holding the checkpoint's LSN is the one the log continues in, so it stays in place
 * there too. Its footer is the damage (every entry checks, so no key is lost): a power cut in
 * each mode at every call of that salvage leaves a store that a strict open opens with every
 * flushed key, or refuses for the damaged checkpoint alone (the salvage did not get to replace
 * it) and another salvage opens so; never a log that ends short of the checkpoint, and no segment
 * is set aside (the checkpoint is the only damaged file). */
START_TEST(segment_holding_the_checkpoint_lsn_outlives_a_headerless_successor_through_a_salvage_and_a_power_cut)
{
	struct faultio *f = killed_after_creating_the_segment_past_a_checkpoint();
	char ck[64], path[300];
	uint64_t size;
	bool is_dir;
	char holder[64];
	last_segment_with_a_header(f, holder, sizeof holder);
	checkpoint_name(f, ck, sizeof ck);
	snprintf(path, sizeof path, SIM_DIR "/%s", ck);
	ck_assert_int_eq(faultio_stat(f, path, &is_dir, &size), 0);
	ck_assert_int_eq(faultio_flip(f, path, size - 1, 0x01), 0); /* the footer's own checksum */
	debug_dir(f, "damaged checkpoint");
	each_call_then_a_power_cut(f, STEP_SALVAGE, holder);
}
END_TEST

/* ---- salvage ---- */

#define SALV_SNAP 20   /* records before the snapshot */
#define SALV_REC 100   /* records in all */

static void salv_key(char *k, size_t len, int i)
{
	snprintf(k, len, "s%03d", i);
}

static void salv_val(char *v, size_t len, int i)
{
	snprintf(v, len, "%03d-%0150d", i, i * 7919);
}

/* The number p of records whose state the store holds (keys s000..s(p-1), exactly their
 * values, nothing else), or -1 when it is not the state after any prefix. */
static int salv_prefix(struct kv *s)
{
	char k[16], v[200];
	int p = 0;
	for (; p < SALV_REC; p++) {
		void *got;
		uint64_t len;
		salv_key(k, sizeof k, p);
		if (kv_get(s, k, strlen(k), &got, &len))
			break;
		salv_val(v, sizeof v, p);
		int same = len == strlen(v) && !memcmp(got, v, len);
		free(got);
		if (!same)
			return -1;
	}
	return store_keys(s) == (uint64_t)p ? p : -1;
}

/* A store of SALV_REC puts (a snapshot after SALV_SNAP), closed cleanly, then damaged in a
 * record after the snapshot with valid records after it, so that a strict open refuses:
 * 0: a flipped bit inside a record in the middle of a segment (salvage keeps the segment's
 *    valid start: copies it aside and cuts it), 1: a flipped bit in the first record of a
 *    segment (salvage renames the segment aside), 2: a zeroed 512-byte sector.
 * *lost_from: the first damaged record's index, which is what salvage keeps. */
static struct faultio *damaged_store(uint64_t seed, int damage, int *lost_from)
{
	struct faultio *f = sim_disk();
	struct kv_options o = crash_options(f, KV_SYNC_NONE);
	struct kv *s;
	char k[16], v[200], path[300];
	uint64_t r = seed ^ (uint64_t)damage;

	ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
	for (int i = 0; i < SALV_REC; i++) {
		if (i == SALV_SNAP)
			ck_assert_int_eq(kv_snapshot(s), 0);
		salv_key(k, sizeof k, i);
		salv_val(v, sizeof v, i);
		put_str(s, k, v);
	}
	ck_assert_int_eq(kv_close(s), 0);

	/* a segment after the snapshot's, not the last */
	char **names;
	size_t n, nseg = 0;
	uint64_t firsts[64];
	ck_assert_int_eq(faultio_list(f, SIM_DIR, &names, &n), 0);
	for (size_t i = 0; i < n; i++) {
		uint64_t first;
		if (sscanf(names[i], "wal-%16" SCNx64 ".log", &first) == 1 && strlen(names[i]) == 24 &&
		    first > SALV_SNAP + 1 && nseg < 64)
			firsts[nseg++] = first;
	}
	faultio_free_names(names, n);
	ck_assert_uint_ge(nseg, 3);
	uint64_t first = firsts[1 + tu_rand(&r) % (nseg - 2)];
	snprintf(path, sizeof path, SIM_DIR "/wal-%016" PRIx64 ".log", first);
	struct sim_rec recs[64];
	size_t nrec = sim_records(f, path, recs, 64);
	ck_assert_uint_ge(nrec, 3);
	size_t victim = damage == 1 ? 0 : 1 + tu_rand(&r) % (nrec - 2);
	*lost_from = (int)recs[victim].lsn - 1;
	if (damage == 2) {
		static const uint8_t zeros[FIO_SECTOR];
		uint64_t sector = (recs[victim].off + recs[victim].size - 1) / FIO_SECTOR * FIO_SECTOR;
		bool is_dir;
		uint64_t size;
		ck_assert_int_eq(faultio_stat(f, path, &is_dir, &size), 0);
		/* a segment cut at its last record may end inside that sector */
		uint64_t len = size - sector < FIO_SECTOR ? size - sector : FIO_SECTOR;
		ck_assert_int_eq(faultio_overwrite(f, path, sector, zeros, len), 0);
		/* the first record the sector touches is the first one lost */
		for (size_t i = 0; i < nrec; i++)
			if (recs[i].off + recs[i].size > sector) {
				*lost_from = (int)recs[i].lsn - 1;
				break;
			}
	} else {
		/* in its payload's framing (count, op, key length, key): damage there makes the
		 * record unprovable, so salvage cuts at it; a flipped value byte alone would cost only
		 * its key (DURABILITY 4.4; recovery: a_crash_at_every_io_call_of_a_value_damage_...) */
		uint64_t off = recs[victim].off + REC_HDR_SIZE + tu_rand(&r) % 11;
		ck_assert_int_eq(faultio_flip(f, path, off, (uint8_t)(1u << (tu_rand(&r) % 8))), 0);
	}
	return f;
}

struct file_copy {
	char name[64];
	void *data;
	size_t len;
};

/* Every file of the store directory and its contents. */
static size_t dir_copy(struct faultio *f, struct file_copy *out, size_t max)
{
	char **names, path[300];
	size_t n, k = 0;
	must(faultio_list(f, SIM_DIR, &names, &n));
	for (size_t i = 0; i < n && k < max; i++) {
		/* the lock and the space reserve hold nothing salvage keeps or sets aside; the
		 * reserve is megabytes of zeros, and copying it at every case cost most of the run */
		if (!strcmp(names[i], "LOCK") || !strcmp(names[i], "space.reserve"))
			continue;
		snprintf(out[k].name, sizeof out[k].name, "%s", names[i]);
		snprintf(path, sizeof path, SIM_DIR "/%s", names[i]);
		must(faultio_read_file(f, path, &out[k].data, &out[k].len));
		k++;
	}
	faultio_free_names(names, n);
	return k;
}

static void dir_copy_free(struct file_copy *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(c[i].data);
}

/* Each file the reference salvage set aside must be in f, byte for byte, as NAME.damaged or
 * NAME.damaged-N. */
static void expect_kept_aside(struct faultio *f, const struct file_copy *orig, size_t norig,
			      const struct file_copy *ref, size_t nref, const char *what)
{
	struct file_copy now[128];
	size_t nnow = dir_copy(f, now, 128);
	for (size_t i = 0; i < norig; i++) {
		char aside[80];
		int was_set_aside = 0, kept = 0;
		snprintf(aside, sizeof aside, "%s.damaged", orig[i].name);
		for (size_t j = 0; j < nref; j++)
			if (!strcmp(ref[j].name, aside))
				was_set_aside = 1;
		if (!was_set_aside)
			continue;
		for (size_t j = 0; j < nnow; j++)
			if (!strncmp(now[j].name, aside, strlen(aside)) && now[j].len == orig[i].len &&
			    !memcmp(now[j].data, orig[i].data, orig[i].len))
				kept = 1;
		require(kept, "%s: %s is no longer kept anywhere (as %s*)", what, orig[i].name, aside);
	}
	dir_copy_free(now, nnow);
}

static int open_strict_prefix(struct faultio *f, int *p, struct kv_report *rep)
{
	struct kv_options o = crash_options(f, KV_SYNC_NONE);
	struct kv *s;
	int rc = kv_open(&s, SIM_DIR, &o, rep);
	if (rc)
		return rc;
	*p = salv_prefix(s);
	must(kv_close(s));
	return 0;
}

/* A salvage killed (its unsynced work still in the page cache), then a process that opens the
 * store (salvaging again if refused) and has a new write's flush acknowledged, then a power cut
 * in mode pm: that write and what salvage keeps are there (DURABILITY 3.5, 3.6). g is consumed. */
static void killed_salvage_then_flush_then_power_cut(struct faultio *g, enum fio_crash pm, uint64_t seed,
						    int keep, const char *what)
{
	struct kv_options o = crash_options(g, KV_SYNC_NONE);
	struct kv_report rep;
	struct kv *s;
	void *got = NULL;
	uint64_t len = 0;
	int p = -2, rc = kv_open(&s, SIM_DIR, &o, &rep);
	if (rc == -EUCLEAN) {
		rc = kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep);
		require(rc == 0, "%s: salvage again: %s (%s)", what, strerror(-rc), tu_report(&rep));
		rc = kv_open(&s, SIM_DIR, &o, &rep);
	}
	require(rc == 0, "%s: open after the killed salvage: %s (%s)", what, strerror(-rc),
		tu_report(&rep));
	put_str(s, "zz-after", "flushed");
	require(kv_flush(s) == 0, "%s: the flush after the killed salvage failed", what);
	faultio_crash_at(g, faultio_calls(g) + 1); /* the power goes before anything else */
	require(kv_close(s) != 0, "%s: the close should have met the power cut", what);
	must(faultio_crash(g, pm, seed));
	rc = kv_open(&s, SIM_DIR, &o, &rep);
	require(rc == 0, "%s, then a flush, then a power cut (%s): %s (%s)", what, mode_name[pm],
		strerror(-rc), tu_report(&rep));
	rc = kv_get(s, "zz-after", 8, &got, &len);
	require(rc == 0 && len == 7 && !memcmp(got, "flushed", 7), "%s, then a flush, then a power "
		"cut (%s): the flushed write is gone (%s)", what, mode_name[pm], strerror(-rc));
	free(got);
	must(kv_del(s, "zz-after", 8));
	must(kv_close(s));
	rc = open_strict_prefix(g, &p, &rep);
	require(rc == 0 && p == keep, "%s, then a flush, then a power cut (%s): %d records, not %d "
		"(%s)", what, mode_name[pm], p, keep, tu_report(&rep));
	faultio_destroy(g);
	seq_salvage++;
	sequences++;
}

/* Salvage of damage d crashed at salvage call j in mode m, then recovery. */
static void salvage_case(uint64_t seed, int d, uint64_t j, enum fio_crash m, struct faultio *damaged,
			 int keep, const struct file_copy *orig, size_t norig,
			 const struct file_copy *ref, size_t nref)
{
	char what[200];
	struct kv_report rep;
	int p = -2, rc;
	snprintf(what, sizeof what, "KV_SEED=%" PRIu64 " KV_SALVAGE=%d:%" PRIu64 ":%s", seed, d, j,
		 mode_name[m]);
	struct faultio *f = fork_disk(damaged);
	faultio_crash_at(f, faultio_calls(f) + j);
	debug_dir(f, "damaged");
	rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep); /* dies at call j; its result is moot */
	debug_dir(f, "salvage died");
	must(faultio_crash(f, m, seed ^ j));
	if (m == FIO_CRASH_KILL)
		killed_salvage_then_flush_then_power_cut(fork_disk(f), power_modes[(j + (uint64_t)d) % NPOWER],
							 seed ^ (j << 8), keep, what);

	/* a strict open refuses (the damage is still there) or gives what salvage keeps */
	rc = open_strict_prefix(f, &p, &rep);
	require(rc == 0 || rc == -EUCLEAN, "%s: strict open: %s (%s)", what, strerror(-rc),
		tu_report(&rep));
	if (rc == 0) {
		require(p == keep, "%s: a strict open after the crash kept %d records; salvage "
			"keeps %d", what, p, keep);
	} else {
		rc = kv_salvage(SIM_DIR, faultio_kvio(f), NULL, &rep);
		require(rc == 0, "%s: salvage again: %s (%s)", what, strerror(-rc), tu_report(&rep));
		rc = open_strict_prefix(f, &p, &rep);
		require(rc == 0, "%s: strict open after salvage: %s (%s)", what, strerror(-rc),
			tu_report(&rep));
		require(p == keep, "%s: salvage after the crash kept %d records, not %d", what, p,
			keep);
	}
	expect_kept_aside(f, orig, norig, ref, nref, what);
	debug_dir(f, "recovered");

	/* what recovery settled is durable: a power cut now changes nothing */
	must(faultio_crash(f, FIO_CRASH_DROP, seed));
	rc = open_strict_prefix(f, &p, &rep);
	require(rc == 0, "%s: after a power cut that followed the salvage: %s (%s)", what,
		strerror(-rc), tu_report(&rep));
	require(p == keep, "%s: after a power cut that followed the salvage: %d records, not %d",
		what, p, keep);
	faultio_destroy(f);
	seq_salvage++;
	sequences++;
}

static void salvage_damage(uint64_t seed, int d, uint64_t only_j, enum fio_crash only_m)
{
	int keep;
	struct kv_report rep;
	struct faultio *damaged = damaged_store(seed, d, &keep);
	struct file_copy orig[64], ref[64];
	size_t norig = dir_copy(damaged, orig, 64);

	/* the reference: an uninterrupted salvage keeps the records before the damage */
	struct faultio *g = fork_disk(damaged);
	int p, rc = open_strict_prefix(g, &p, &rep);
	ck_assert_msg(rc == -EUCLEAN, "damage %d: a strict open should refuse: %d", d, rc);
	uint64_t c0 = faultio_calls(g);
	must(kv_salvage(SIM_DIR, faultio_kvio(g), NULL, &rep));
	uint64_t scalls = faultio_calls(g) - c0;
	must(open_strict_prefix(g, &p, &rep));
	ck_assert_msg(p == keep, "damage %d: salvage kept %d records, not the %d before the damage",
		      d, p, keep);
	size_t nref = dir_copy(g, ref, 64);
	faultio_destroy(g);

	if (only_j)
		salvage_case(seed, d, only_j, only_m, damaged, keep, orig, norig, ref, nref);
	else
		for (uint64_t j = 1; j <= scalls; j++)
			for (size_t m = 0; m < NMODES; m++)
				salvage_case(seed, d, j, all_modes[m], damaged, keep, orig, norig, ref, nref);
	dir_copy_free(orig, norig);
	dir_copy_free(ref, nref);
	faultio_destroy(damaged);
}

START_TEST(crash_at_every_io_call_of_salvage_then_recovery_keeps_what_salvage_keeps)
{
	for (int d = 0; d < 3; d++)
		salvage_damage(tu_seed(), d, 0, FIO_CRASH_KILL);
}
END_TEST

START_TEST(the_salvage_crash_in_kv_salvage_recovers)
{
	int d;
	uint64_t j;
	char mode[16];
	size_t m;
	ck_assert_msg(sscanf(getenv("KV_SALVAGE"), "%d:%" SCNu64 ":%15s", &d, &j, mode) == 3,
		      "KV_SALVAGE=%s: want DAMAGE:CALL:MODE", getenv("KV_SALVAGE"));
	for (m = 0; m < NMODES; m++)
		if (!strcmp(mode, mode_name[all_modes[m]]))
			break;
	ck_assert_msg(m < NMODES && d >= 0 && d < 3 && j > 0, "KV_SALVAGE=%s: no such case",
		      getenv("KV_SALVAGE"));
	salvage_damage(tu_seed(), d, j, all_modes[m]);
}
END_TEST

int main(void)
{
	tu_seed();
	Suite *su = suite_create("crash");
	/* one case per kind of run, so that CK_RUN_CASE=NAME runs one kind alone */
	TCase *single = tcase_create("single"), *steps = tcase_create("steps");
	TCase *seqs = tcase_create("sequences"), *rec = tcase_create("recovery");
	TCase *salv = tcase_create("salvage");
	if (getenv("KV_SEQ")) {
		tcase_add_test(seqs, the_sequence_in_kv_seq_keeps_every_flushed_op);
	} else if (getenv("KV_CRASH_AT") && getenv("KV_CRASH_MODE")) {
		tcase_add_test(single, the_single_crash_in_kv_crash_at_recovers);
	} else if (getenv("KV_SALVAGE")) {
		tcase_add_test(salv, the_salvage_crash_in_kv_salvage_recovers);
	} else {
		tcase_add_test(single, crash_at_every_io_call_recovers_a_prefix_with_every_flushed_op);
		tcase_add_test(steps, record_filling_its_segment_killed_before_fdatasync_survives_a_power_cut_after_the_next_flush);
		tcase_add_test(steps, store_directory_made_by_a_killed_process_survives_a_power_cut_after_the_next_flush);
		tcase_add_test(steps, segment_holding_the_checkpoint_lsn_outlives_a_headerless_successor_through_a_power_cut);
		tcase_add_test(steps, segment_holding_the_checkpoint_lsn_outlives_a_headerless_successor_through_a_salvage_and_a_power_cut);
		tcase_add_test(seqs, kill_recovery_flushes_then_power_cut_keep_every_flushed_op);
		tcase_add_test(seqs, two_kills_then_power_cut_keep_every_flushed_op);
		tcase_add_test(rec, crash_of_each_kind_at_every_io_call_of_recovery_recovers);
		tcase_add_test(salv, crash_at_every_io_call_of_salvage_then_recovery_keeps_what_salvage_keeps);
	}
	TCase *all[] = { single, steps, seqs, rec, salv };
	for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
		tcase_set_timeout(all[i], 900);
		suite_add_tcase(su, all[i]);
	}
	/* one process, so the counts add up across tests; every case builds its own disk, so the
	 * tests share nothing else */
	SRunner *sr = srunner_create(su);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	printf("crash points: %" PRIu64 " (and %" PRIu64 " crashes during recovery)\n", crash_points,
	       recovery_crashes);
	printf("crash sequences: %" PRIu64 " (%" PRIu64 " with a crash during recovery, %" PRIu64
	       " during salvage)\n", sequences, seq_recovery, seq_salvage);
	fflush(stdout); /* before a sanitizer's exit report can abort the process */
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
