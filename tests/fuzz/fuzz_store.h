/* fuzz_store.h — the small real store the seed corpus is cut from (gen_corpus.c) and that
 * fuzz_checkpoint puts its inputs next to. Deterministic apart from the segments' salts: the
 * same operations give the same LSNs, the same segment names and the same record positions on
 * every run, so a checkpoint image taken from one run references the segments of another.
 *
 * Two stages, each ending in a clean close:
 *   fz_store_log:  every kind of operation (puts with metadata, binary and empty keys, a value
 *                  larger than a segment, range writes past the end, truncates up and down, a
 *                  punched hole, renames, a prefix rename, deletes, a two-key batch), all in the
 *                  log (16 KiB segments, no checkpoint);
 *   fz_store_ckpt: then a forced cleaner pass (RELOCATE records, a checkpoint, segments it made
 *                  unneeded deleted) and a few writes after it, so the checkpoint is followed by
 *                  log. */
#ifndef KVFS_FUZZ_STORE_H
#define KVFS_FUZZ_STORE_H
#include "fuzz_common.h"

static inline void fz_ok(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "fuzz store: %s: %s\n", what, strerror(-rc));
		abort();
	}
}

static inline void fz_pattern(uint8_t *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

static inline void fz_store_log(struct faultio *f)
{
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT);
	struct kv *s = NULL;
	struct kv_batch *b = NULL;
	static uint8_t big[20000], mid[5000];
	char key[32];

	fz_pattern(big, sizeof(big), 1);
	fz_pattern(mid, sizeof(mid), 2);
	fz_ok(kv_open(&s, FZ_DIR, &o, NULL), "open");
	for (int i = 0; i < 8; i++) {
		snprintf(key, sizeof(key), "dir/k%02d", i);
		fz_ok(kv_put(s, key, strlen(key), mid + i, (uint64_t)(i * 37)), "put");
	}
	fz_ok(kv_put(s, "", 0, "empty key", 9), "put empty key");
	fz_ok(kv_put(s, "bin\0\xff\n", 6, "\0\1\2", 3), "put binary key");
	fz_ok(kv_put(s, "big", 3, big, sizeof(big)), "put big");
	fz_ok(kv_setmeta(s, "dir/k01", 7, "mode=0644", 9), "setmeta");
	fz_ok(kv_write(s, "dir/k02", 7, 3, "abc", 3), "write inside");
	fz_ok(kv_write(s, "dir/k03", 7, 9000, mid, sizeof(mid)), "write past the end");
	fz_ok(kv_put(s, "new", 3, NULL, 0), "put empty");
	fz_ok(kv_write(s, "new", 3, 100, "x", 1), "write past the end of an empty value");
	fz_ok(kv_truncate(s, "dir/k04", 7, 3), "truncate down");
	fz_ok(kv_truncate(s, "dir/k05", 7, 30000), "truncate up");
	fz_ok(kv_del(s, "dir/k06", 7), "del");
	fz_ok(kv_batch_new(&b), "batch");
	fz_ok(kv_batch_put(b, "pair/a", 6, "m", 1, "A", 1), "batch put");
	fz_ok(kv_batch_put(b, "pair/b", 6, NULL, 0, "B", 1), "batch put");
	fz_ok(kv_batch_punch(b, "big", 3, 4096, 8192), "batch punch");
	fz_ok(kv_batch_rename(b, "dir/k07", 7, "moved", 5), "batch rename");
	fz_ok(kv_batch_truncate(b, "zero", 4, 0), "batch truncate creates");
	fz_ok(kv_apply(s, b, NULL), "apply");
	kv_batch_free(b);
	fz_ok(kv_batch_new(&b), "batch");
	fz_ok(kv_batch_rename_prefix(b, "pair/", 5, "twin/", 5), "rename prefix");
	fz_ok(kv_batch_del(b, "new", 3), "batch del");
	fz_ok(kv_apply(s, b, NULL), "apply");
	kv_batch_free(b);
	fz_ok(kv_put(s, "big", 3, big + 100, 6000), "overwrite big");
	fz_ok(kv_close(s), "close");
}

static inline void fz_store_ckpt(struct faultio *f)
{
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT);
	struct kv *s = NULL;
	uint64_t moved = 0;

	fz_ok(kv_open(&s, FZ_DIR, &o, NULL), "reopen");
	fz_ok(kv_clean(s, 1, &moved), "clean");
	fz_ok(kv_put(s, "after", 5, "checkpoint", 10), "put after the checkpoint");
	fz_ok(kv_write(s, "dir/k03", 7, 0, "head", 4), "write after the checkpoint");
	fz_ok(kv_close(s), "close");
}

/* The names of the store's files of one kind (prefix "wal-" or "ckpt-"), sorted. */
static inline size_t fz_store_files(struct faultio *f, const char *prefix, char ***out)
{
	char **names;
	size_t n, k = 0;

	fz_ok(faultio_list(f, FZ_DIR, &names, &n), "list");
	for (size_t i = 0; i < n; i++) {
		if (!strncmp(names[i], prefix, strlen(prefix)))
			names[k++] = names[i];
		else
			free(names[i]);
	}
	*out = names;
	return k;
}
#endif
