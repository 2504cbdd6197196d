/* simstore.h — helpers shared by the engine suites: a store on a simulated disk. */
#ifndef KVFS_TESTS_SIMSTORE_H
#define KVFS_TESTS_SIMSTORE_H
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultio.h"
#include "kv.h"

#define SIM_DIR "/sim/store"

static inline struct faultio *sim_disk(void)
{
	struct faultio *f;
	ck_assert_int_eq(faultio_create(&f), 0);
	ck_assert_int_eq(faultio_mkdirs(f, "/sim"), 0);
	return f;
}

/* The engine's operator messages (recovery reports, flush failures): the tests assert on the
 * report instead, so keep the output readable. */
static inline void sim_quiet_log(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

/* Options for tests: no background flusher (deterministic), small segments. */
static inline struct kv_options sim_options(struct faultio *f)
{
	struct kv_options o;
	kv_options_default(&o);
	o.io = faultio_kvio(f);
	o.sync = KV_SYNC_NONE;
	o.segment_bytes = 16 * 1024;
	o.checkpoint_bytes = 1ull << 40; /* no automatic checkpoints unless a test asks */
	o.cleaner = 0;                    /* no background I/O: call counts stay deterministic */
	o.log = sim_quiet_log;
	return o;
}

static inline struct kv *sim_open(struct faultio *f, struct kv_report *rep)
{
	struct kv_options o = sim_options(f);
	struct kv_report local;
	struct kv *s = NULL;
	int rc = kv_open(&s, SIM_DIR, &o, rep ? rep : &local);
	ck_assert_msg(rc == 0, "kv_open: %s (%s)", strerror(-rc), rep ? rep->message : local.message);
	return s;
}

static inline void put_str(struct kv *s, const char *k, const char *v)
{
	int rc = kv_put(s, k, strlen(k), v, strlen(v));
	ck_assert_msg(rc == 0, "put %s: %s", k, strerror(-rc));
}

/* Asserts key holds exactly v (v NULL: absent). */
static inline void expect_str(struct kv *s, const char *k, const char *v)
{
	void *got = NULL;
	uint64_t len = 0;
	int rc = kv_get(s, k, strlen(k), &got, &len);
	if (!v) {
		ck_assert_msg(rc == -ENOENT, "%s should be absent, got rc %d", k, rc);
		return;
	}
	ck_assert_msg(rc == 0, "get %s: %s", k, strerror(-rc));
	ck_assert_msg(len == strlen(v) && !memcmp(got, v, len), "%s: want '%s' got '%.*s'", k, v,
		      (int)len, (char *)got);
	free(got);
}

static inline uint64_t store_keys(struct kv *s)
{
	struct kv_stats st;
	kv_stats(s, &st);
	return st.keys;
}

static inline int run_suite(Suite *su)
{
	SRunner *sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
#endif
