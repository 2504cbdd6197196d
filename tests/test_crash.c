/* Crash simulation: a seeded workload on the simulated disk, crashed at every I/O call in
 * turn, in every crash mode; after recovery the state must equal the workload's model after
 * some prefix of its operations that holds every operation a flush acknowledged. A crash
 * during that recovery must itself recover to such a state.
 *
 * Rerun one seed: KV_SEED=N; one case: KV_SEED=N KV_CRASH_AT=K KV_CRASH_MODE=M. */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simstore.h"
#include "testutil.h"

#define NKEYS 6
#define MAXV 600
#define NOPS 48

enum wop { W_PUT, W_DEL, W_WRITE, W_TRUNC, W_RENAME, W_PAIR, W_FLUSH, W_SNAP };

struct op {
	enum wop kind;
	int a, b;
	uint32_t off, len;
	uint8_t fill;
};

struct state {
	int present[NKEYS];
	uint32_t len[NKEYS];
	uint8_t val[NKEYS][MAXV + MAXV];
};

static void key_name(char *buf, int k)
{
	snprintf(buf, 8, "key%d", k);
}

static void gen_ops(uint64_t seed, struct op *ops)
{
	uint64_t r = seed;
	for (int i = 0; i < NOPS; i++) {
		uint64_t x = tu_rand(&r);
		struct op *o = &ops[i];
		o->a = (int)(x % NKEYS);
		o->b = (int)((x >> 8) % NKEYS);
		o->off = (uint32_t)((x >> 16) % MAXV);
		o->len = (uint32_t)((x >> 28) % MAXV);
		o->fill = (uint8_t)(x >> 40);
		switch ((x >> 48) % 16) {
		case 0: case 1: case 2: case 3: o->kind = W_PUT; break;
		case 4: o->kind = W_DEL; break;
		case 5: case 6: case 7: o->kind = W_WRITE; break;
		case 8: o->kind = W_TRUNC; break;
		case 9: o->kind = W_RENAME; break;
		case 10: case 11: o->kind = W_PAIR; break;
		case 12: case 13: case 14: o->kind = W_FLUSH; break;
		default: o->kind = W_SNAP; break;
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
	uint8_t buf[MAXV];
	key_name(ka, o->a);
	key_name(kb, o->b);
	switch (o->kind) {
	case W_PUT:
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

static int state_matches(struct kv *s, const struct state *m)
{
	uint64_t present = 0;
	for (int k = 0; k < NKEYS; k++) {
		char key[8];
		void *v;
		uint64_t len;
		key_name(key, k);
		int rc = kv_get(s, key, strlen(key), &v, &len);
		if (rc == -ENOENT) {
			if (m->present[k])
				return 0;
			continue;
		}
		ck_assert_int_eq(rc, 0);
		int same = m->present[k] && len == m->len[k] && !memcmp(v, m->val[k], len);
		free(v);
		if (!same)
			return 0;
		present++;
	}
	return store_keys(s) == present;
}

struct outcome {
	int ran;          /* ops attempted (the last may have failed) */
	int acked;        /* ops covered by the last successful flush or snapshot */
};

/* Run the workload until the first error (the simulated process dies at the crash point). */
static struct outcome run_workload(struct faultio *f, const struct op *ops, uint64_t crash_at)
{
	struct outcome out = { 0, 0 };
	struct state m = { 0 };
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	struct kv *s;
	if (crash_at)
		faultio_crash_at(f, crash_at);
	if (kv_open(&s, SIM_DIR, &o, NULL))
		return out;
	for (int i = 0; i < NOPS; i++) {
		int kind = model_apply(&m, &ops[i]);
		int rc = store_apply(s, &ops[i]);
		out.ran = i + 1;
		if (kind == 1) {
			ck_assert_int_ne(rc, 0); /* refused, nothing logged */
			continue;
		}
		if (rc)
			break;
		if (kind == 2)
			out.acked = i + 1;
	}
	kv_close(s);
	return out;
}

/* Reopen after a crash; the state must be the model after some prefix p with
 * acked <= p <= ran. Returns that p. */
static int check_recovered(struct faultio *f, const struct op *ops, struct outcome out, const char *what)
{
	struct kv_report rep;
	struct kv_options o = sim_options(f);
	o.segment_bytes = 4096;
	struct kv *s;
	int rc = kv_open(&s, SIM_DIR, &o, &rep);
	ck_assert_msg(rc == 0, "%s: recovery refused: %s", what, rep.message);
	struct state m = { 0 };
	int found = -1;
	for (int p = 0; p <= out.ran; p++) {
		if (p > 0)
			model_apply(&m, &ops[p - 1]);
		if (p >= out.acked && state_matches(s, &m)) {
			found = p;
			break;
		}
	}
	if (found < 0 && getenv("KV_CRASH_DEBUG")) {
		struct state d = { 0 };
		for (int p = 0; p <= out.ran; p++) {
			if (p > 0)
				model_apply(&d, &ops[p - 1]);
			fprintf(stderr, "prefix %d (op kind %d a=%d b=%d off=%u len=%u):", p, p ? (int)ops[p - 1].kind : -1,
				p ? ops[p - 1].a : 0, p ? ops[p - 1].b : 0, p ? ops[p - 1].off : 0, p ? ops[p - 1].len : 0);
			for (int k = 0; k < NKEYS; k++)
				fprintf(stderr, " %d:%d/%u", k, d.present[k], d.len[k]);
			fprintf(stderr, "\n");
		}
		fprintf(stderr, "recovered:");
		for (int k = 0; k < NKEYS; k++) {
			char key[8];
			void *v;
			uint64_t len = 0;
			key_name(key, k);
			int grc = kv_get(s, key, strlen(key), &v, &len);
			fprintf(stderr, " %d:%d/%u", k, grc == 0, (unsigned)len);
			if (!grc)
				free(v);
		}
		fprintf(stderr, " last_lsn %" PRIu64 "\n", rep.last_lsn);
	}
	ck_assert_msg(found >= 0, "%s: recovered state is no prefix between %d (acked) and %d", what,
		      out.acked, out.ran);
	ck_assert_int_eq(kv_close(s), 0);
	return found;
}

static uint64_t crash_points, recovery_crashes;

static void one_case(uint64_t seed, const struct op *ops, uint64_t k, enum fio_crash mode, int crash_recovery)
{
	char what[160];
	struct faultio *f = sim_disk();
	uint64_t base = faultio_calls(f);
	struct outcome out = run_workload(f, ops, base + k);
	ck_assert_int_eq(faultio_crash(f, mode, seed ^ k), 0);
	snprintf(what, sizeof what, "KV_SEED=%" PRIu64 " KV_CRASH_AT=%" PRIu64 " KV_CRASH_MODE=%d", seed, k, (int)mode);
	crash_points++;
	if (crash_recovery) {
		/* crash again at each call of the recovery itself, then recover for real */
		struct faultio *probe;
		ck_assert_int_eq(faultio_clone(f, &probe), 0);
		uint64_t c0 = faultio_calls(probe);
		struct kv_options o = sim_options(probe);
		o.segment_bytes = 4096;
		struct kv *s;
		ck_assert_int_eq(kv_open(&s, SIM_DIR, &o, NULL), 0);
		uint64_t rcalls = faultio_calls(probe) - c0;
		kv_close(s);
		faultio_destroy(probe);
		for (uint64_t j = 1; j <= rcalls; j++) {
			struct faultio *g;
			ck_assert_int_eq(faultio_clone(f, &g), 0);
			faultio_crash_at(g, faultio_calls(g) + j);
			o = sim_options(g);
			o.segment_bytes = 4096;
			if (kv_open(&s, SIM_DIR, &o, NULL) == 0)
				kv_close(s);
			ck_assert_int_eq(faultio_crash(g, FIO_CRASH_DROP, j), 0);
			char w2[200];
			snprintf(w2, sizeof w2, "%s, then crash at recovery call %" PRIu64, what, j);
			check_recovered(g, ops, out, w2);
			recovery_crashes++;
			faultio_destroy(g);
		}
	}
	/* recovering twice from the same files gives the same state */
	struct faultio *twin;
	ck_assert_int_eq(faultio_clone(f, &twin), 0);
	int p1 = check_recovered(f, ops, out, what);
	int p2 = check_recovered(twin, ops, out, what);
	ck_assert_int_eq(p1, p2);
	faultio_destroy(twin);
	faultio_destroy(f);
}

START_TEST(crash_at_every_io_call_recovers_a_prefix_with_every_flushed_op)
{
	uint64_t seed0 = tu_seed();
	const char *at = getenv("KV_CRASH_AT"), *mode = getenv("KV_CRASH_MODE");
	const char *nseeds_env = getenv("KV_CRASH_SEEDS");
	int nseeds = nseeds_env ? atoi(nseeds_env) : 30;
	enum fio_crash modes[] = { FIO_CRASH_DROP, FIO_CRASH_KEEP, FIO_CRASH_TEAR, FIO_CRASH_ZERO,
				   FIO_CRASH_GARBAGE };
	struct op ops[NOPS];
	if (at && mode) {
		gen_ops(seed0, ops);
		one_case(seed0, ops, strtoull(at, NULL, 10), (enum fio_crash)atoi(mode), 1);
		return;
	}
	for (int si = 0; si < nseeds; si++) {
		uint64_t seed = seed0 + (uint64_t)si;
		gen_ops(seed, ops);
		/* how many I/O calls the whole workload makes without a crash */
		struct faultio *f = sim_disk();
		uint64_t c0 = faultio_calls(f);
		run_workload(f, ops, 0);
		uint64_t total = faultio_calls(f) - c0;
		faultio_destroy(f);
		for (uint64_t k = 1; k <= total; k++)
			for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
				one_case(seed, ops, k, modes[m], si == 0 && k % 7 == 0 && m == 0);
	}
	printf("crash points: %" PRIu64 " (and %" PRIu64 " crashes during recovery)\n", crash_points,
	       recovery_crashes);
}
END_TEST

int main(void)
{
	tu_seed();
	Suite *su = suite_create("crash");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 900);
	tcase_add_test(tc, crash_at_every_io_call_recovers_a_prefix_with_every_flushed_op);
	suite_add_tcase(su, tc);
	return run_suite(su);
}
