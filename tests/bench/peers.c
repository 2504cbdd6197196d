/* peers.c — the engine beside the embedded stores a user would pick instead, same work, same
 * disk, one run: LevelDB, LMDB, SQLite and RocksDB (each compiled in when meson finds it:
 * HAVE_LEVELDB, HAVE_LMDB, HAVE_SQLITE, HAVE_ROCKSDB).
 *
 *   peers [--dir DIR] [--keys N] [--sync N] [--cold N] [--cap STORE=N]... [--tiny] [STORE...]
 *
 * --cap runs one store's fills and reads with fewer keys (SQLite's one commit per put makes
 * 1M keys take minutes); the table says how many each store had.
 *
 * 16-byte keys (the key number in hex), 100-byte values (the key, then 84 bytes that compress to
 * about half, as db_bench's), one thread, one put or get per call:
 *   sequential fill   N puts in key order into an empty store, not synced
 *   random fill       N puts in a random order into an empty store, not synced
 *   random read       N gets in another random order from the randomly filled store
 *   reopen            close the randomly filled store and time opening it again (the engine
 *                     replays its log; the others find their files)
 *   cold read         the page cache emptied (bench_drop_caches: as root, echo 3 >
 *                     /proc/sys/vm/drop_caches; with --tiny or not root, fadvise DONTNEED on
 *                     the store's files), the store opened again (timed: cold reopen),
 *                     the cache emptied once more, then --cold gets of random keys: each store
 *                     with what its open left in its own memory and nothing in the kernel's;
 *                     gets/s and p50/p99 latency
 *   durable put       --sync puts of random keys, each durable (fdatasync'd) before the put
 *                     returns, from 1 thread and from 8 threads (--sync/8 each, one shared
 *                     handle); p50/p99 latency; the disk's own 4 KiB append+fdatasync with 1 and
 *                     8 threads (each thread its own file) for reference
 * Times exclude open and close. Each store runs in its own child process (its peak RSS is
 * reported, and one store's heap cannot slow the next). How each store is configured, and why,
 * is printed under the table and written beside each open_* below. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hugepages.h"
#include "kv.h"
#include "bench_util.h"
#ifdef HAVE_LEVELDB
#include <leveldb/c.h>
#endif
#ifdef HAVE_LMDB
#include <lmdb.h>
#endif
#ifdef HAVE_SQLITE
#include <sqlite3.h>
#endif
#ifdef HAVE_ROCKSDB
#include <rocksdb/c.h>
#endif

#define KLEN 16
#define VLEN 100

enum mode { FILL_SEQ, FILL_RAND, DURABLE };

static const char *base_dir = "/tmp/peers";
static uint64_t nkeys = 200000;
static uint64_t cap_keys[16]; /* per store, 0: nkeys */
static unsigned nsync = 1000;
static unsigned ncold = 10000; /* gets of the cold read */
static int cold_whole_machine = 1; /* bench_drop_caches may empty the machine's cache */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *store, const char *what, const char *msg)
{
	fprintf(stderr, "peers: %s: %s: %s\n", store, what, msg ? msg : "failed");
	exit(1);
}

static void rm_dir(const char *dir)
{
	char cmd[1100];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "peers: could not remove %s\n", dir);
}

static void make_dir(const char *dir)
{
	char cmd[1100];

	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
	if (system(cmd) != 0)
		fail("peers", "mkdir", dir);
}

/* A store behind four calls. open: an empty store in dir (which exists and is empty). get:
 * copies the value to buf (at least VLEN bytes), returns its length, -1 if absent. */
struct peer {
	const char *name;
	const char *config;
	void *(*open)(const char *dir, enum mode m);
	void (*put)(void *h, const char *k, const char *v);
	int (*get)(void *h, const char *k, char *buf);
	void (*close)(void *h);
};

/* ---- the engine ---------------------------------------------------------------------------- */

/* Defaults (kv_options_default: 64 MiB segments, a checkpoint per 256 MiB of log) with
 * sync=none for the fills (durable at close, like the peers' unsynced writes) and
 * sync=always for durable puts (each kv_put returns once fdatasync'd). */
static void *engine_open(const char *dir, enum mode m)
{
	struct kv_options o;
	struct kv_report rep;
	struct kv *s;
	int rc;

	kv_options_default(&o);
	o.sync = m == DURABLE ? KV_SYNC_ALWAYS : KV_SYNC_NONE;
	rc = kv_open(&s, dir, &o, &rep);
	if (rc)
		fail("engine", "open", strerror(-rc));
	return s;
}

static void engine_put(void *h, const char *k, const char *v)
{
	int rc = kv_put(h, k, KLEN, v, VLEN);

	if (rc)
		fail("engine", "put", strerror(-rc));
}

static int engine_get(void *h, const char *k, char *buf)
{
	size_t got;
	int rc = kv_read(h, k, KLEN, 0, buf, VLEN, &got);

	return rc ? -1 : (int)got;
}

static void engine_close(void *h)
{
	kv_close(h);
}

/* ---- LevelDB --------------------------------------------------------------------------- */
#ifdef HAVE_LEVELDB
/* doc/index.md ("Performance"): a Bloom filter of 10 bits per key for point reads, an LRU
 * block cache (64 MiB here) for a read-heavy working set, default Snappy compression and
 * write buffer; WriteOptions.sync=false for the fills, sync=true for durable puts. */
struct ldb {
	leveldb_t *db;
	leveldb_options_t *o;
	leveldb_filterpolicy_t *bloom;
	leveldb_cache_t *cache;
	leveldb_writeoptions_t *wo;
	leveldb_readoptions_t *ro;
};

static void *ldb_open(const char *dir, enum mode m)
{
	struct ldb *l = calloc(1, sizeof(*l));
	char *e = NULL;

	l->o = leveldb_options_create();
	leveldb_options_set_create_if_missing(l->o, 1);
	l->bloom = leveldb_filterpolicy_create_bloom(10);
	leveldb_options_set_filter_policy(l->o, l->bloom);
	l->cache = leveldb_cache_create_lru(64 << 20);
	leveldb_options_set_cache(l->o, l->cache);
	l->db = leveldb_open(l->o, dir, &e);
	if (e)
		fail("leveldb", "open", e);
	l->wo = leveldb_writeoptions_create();
	leveldb_writeoptions_set_sync(l->wo, m == DURABLE);
	l->ro = leveldb_readoptions_create();
	return l;
}

static void ldb_put(void *h, const char *k, const char *v)
{
	struct ldb *l = h;
	char *e = NULL;

	leveldb_put(l->db, l->wo, k, KLEN, v, VLEN, &e);
	if (e)
		fail("leveldb", "put", e);
}

static int ldb_get(void *h, const char *k, char *buf)
{
	struct ldb *l = h;
	char *e = NULL, *v;
	size_t n;

	v = leveldb_get(l->db, l->ro, k, KLEN, &n, &e);
	if (e)
		fail("leveldb", "get", e);
	if (!v)
		return -1;
	memcpy(buf, v, n < VLEN ? n : VLEN);
	leveldb_free(v);
	return (int)n;
}

static void ldb_close(void *h)
{
	struct ldb *l = h;

	leveldb_close(l->db);
	leveldb_writeoptions_destroy(l->wo);
	leveldb_readoptions_destroy(l->ro);
	leveldb_options_destroy(l->o);
	leveldb_filterpolicy_destroy(l->bloom);
	leveldb_cache_destroy(l->cache);
	free(l);
}
#endif

/* ---- LMDB ---------------------------------------------------------------------------------- */
#ifdef HAVE_LMDB
/* lmdb.h: one write transaction per put (a put is a commit, as with the others); a 1 GiB map.
 * Fills: MDB_NOSYNC|MDB_WRITEMAP ("don't flush system buffers to disk when committing";
 * "faster and uses fewer mallocs"), made durable by mdb_env_sync at close; the sequential
 * fill uses MDB_APPEND (keys arrive sorted: "allows fast bulk-loading"). Durable puts: the
 * default flags, so every commit is synced. Reads: one read-only transaction recycled with
 * mdb_txn_reset/mdb_txn_renew around each get, as lmdb.h recommends for many short reads. */
struct lmdb {
	MDB_env *env;
	MDB_dbi dbi;
	MDB_txn *rtxn;
	unsigned put_flags;
};

static void lmdb_check(int rc, const char *what)
{
	if (rc)
		fail("lmdb", what, mdb_strerror(rc));
}

static void *lmdb_open(const char *dir, enum mode m)
{
	struct lmdb *l = calloc(1, sizeof(*l));
	MDB_txn *txn;

	lmdb_check(mdb_env_create(&l->env), "env_create");
	lmdb_check(mdb_env_set_mapsize(l->env, (size_t)1 << 30), "set_mapsize");
	lmdb_check(mdb_env_open(l->env, dir, m == DURABLE ? 0 : MDB_NOSYNC | MDB_WRITEMAP, 0644),
		   "env_open");
	lmdb_check(mdb_txn_begin(l->env, NULL, 0, &txn), "txn_begin");
	lmdb_check(mdb_dbi_open(txn, NULL, 0, &l->dbi), "dbi_open");
	lmdb_check(mdb_txn_commit(txn), "commit");
	l->put_flags = m == FILL_SEQ ? MDB_APPEND : 0;
	return l;
}

static void lmdb_put(void *h, const char *k, const char *v)
{
	struct lmdb *l = h;
	MDB_val key = { KLEN, (void *)k }, val = { VLEN, (void *)v };
	MDB_txn *txn;

	lmdb_check(mdb_txn_begin(l->env, NULL, 0, &txn), "txn_begin");
	lmdb_check(mdb_put(txn, l->dbi, &key, &val, l->put_flags), "put");
	lmdb_check(mdb_txn_commit(txn), "commit");
}

static int lmdb_get(void *h, const char *k, char *buf)
{
	struct lmdb *l = h;
	MDB_val key = { KLEN, (void *)k }, val;
	int rc;

	if (!l->rtxn)
		lmdb_check(mdb_txn_begin(l->env, NULL, MDB_RDONLY, &l->rtxn), "txn_begin");
	else
		lmdb_check(mdb_txn_renew(l->rtxn), "txn_renew");
	rc = mdb_get(l->rtxn, l->dbi, &key, &val);
	if (rc == 0)
		memcpy(buf, val.mv_data, val.mv_size < VLEN ? val.mv_size : VLEN);
	mdb_txn_reset(l->rtxn);
	if (rc == MDB_NOTFOUND)
		return -1;
	lmdb_check(rc, "get");
	return (int)val.mv_size;
}

static void lmdb_close(void *h)
{
	struct lmdb *l = h;

	if (l->rtxn)
		mdb_txn_abort(l->rtxn);
	mdb_env_sync(l->env, 1);
	mdb_env_close(l->env);
	free(l);
}
#endif

/* ---- SQLite -------------------------------------------------------------------------------- */
#ifdef HAVE_SQLITE
/* A WITHOUT ROWID table keyed by a BLOB primary key (one B-tree, "for tables with small
 * rows and non-integer primary keys"); prepared statements; each put in its own autocommit
 * transaction. journal_mode=WAL (wal.html: faster, one sync per commit); synchronous=NORMAL
 * for the fills (pragma.html: "a good choice for most applications running in WAL mode"; it
 * syncs only at checkpoints), FULL for durable puts (in WAL mode NORMAL would not sync at each
 * commit);
 * cache_size 64 MiB and mmap_size 256 MiB for the reads. */
struct sql {
	sqlite3 *db;
	sqlite3_stmt *put, *get;
	pthread_mutex_t lock; /* one writer at a time, as SQLite itself allows: the prepared
			       * statements are shared by the durable-put threads */
};

static void sql_exec(struct sql *q, const char *s)
{
	char *e = NULL;

	if (sqlite3_exec(q->db, s, NULL, NULL, &e) != SQLITE_OK)
		fail("sqlite", s, e);
}

static void *sql_open(const char *dir, enum mode m)
{
	struct sql *q = calloc(1, sizeof(*q));
	char path[1100];

	pthread_mutex_init(&q->lock, NULL);
	snprintf(path, sizeof path, "%s/db", dir);
	if (sqlite3_open(path, &q->db) != SQLITE_OK)
		fail("sqlite", "open", sqlite3_errmsg(q->db));
	sql_exec(q, "PRAGMA journal_mode=WAL");
	sql_exec(q, m == DURABLE ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
	sql_exec(q, "PRAGMA cache_size=-65536");
	sql_exec(q, "PRAGMA mmap_size=268435456");
	sql_exec(q, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID");
	if (sqlite3_prepare_v2(q->db, "INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", -1, &q->put,
			       NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(q->db, "SELECT v FROM kv WHERE k = ?", -1, &q->get, NULL) != SQLITE_OK)
		fail("sqlite", "prepare", sqlite3_errmsg(q->db));
	return q;
}

static void sql_put(void *h, const char *k, const char *v)
{
	struct sql *q = h;

	pthread_mutex_lock(&q->lock);
	sqlite3_bind_blob(q->put, 1, k, KLEN, SQLITE_STATIC);
	sqlite3_bind_blob(q->put, 2, v, VLEN, SQLITE_STATIC);
	if (sqlite3_step(q->put) != SQLITE_DONE)
		fail("sqlite", "insert", sqlite3_errmsg(q->db));
	sqlite3_reset(q->put);
	pthread_mutex_unlock(&q->lock);
}

static int sql_get(void *h, const char *k, char *buf)
{
	struct sql *q = h;
	int rc, n = -1;

	sqlite3_bind_blob(q->get, 1, k, KLEN, SQLITE_STATIC);
	rc = sqlite3_step(q->get);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_bytes(q->get, 0);
		memcpy(buf, sqlite3_column_blob(q->get, 0), n < VLEN ? (size_t)n : VLEN);
	} else if (rc != SQLITE_DONE) {
		fail("sqlite", "select", sqlite3_errmsg(q->db));
	}
	sqlite3_reset(q->get);
	return n;
}

static void sql_close(void *h)
{
	struct sql *q = h;

	sqlite3_finalize(q->put);
	sqlite3_finalize(q->get);
	sqlite3_close(q->db);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
#endif

/* ---- RocksDB ------------------------------------------------------------------------------- */
#ifdef HAVE_ROCKSDB
/* The wiki's "Setup Options and Basic Tuning": IncreaseParallelism (background threads = CPUs)
 * and OptimizeLevelStyleCompaction (its default 512 MiB memtable budget); plus
 * OptimizeForPointLookup(64 MiB block cache: Bloom filters, hashed data-block index) since
 * every read here is a point get. WriteOptions.sync=false for the fills (the WAL is written,
 * not synced), sync=true for durable puts. */
struct rdb {
	rocksdb_t *db;
	rocksdb_options_t *o;
	rocksdb_writeoptions_t *wo;
	rocksdb_readoptions_t *ro;
};

static void *rdb_open(const char *dir, enum mode m)
{
	struct rdb *r = calloc(1, sizeof(*r));
	char *e = NULL;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	r->o = rocksdb_options_create();
	rocksdb_options_increase_parallelism(r->o, cpus > 0 ? (int)cpus : 2);
	rocksdb_options_optimize_level_style_compaction(r->o, (uint64_t)512 << 20);
	rocksdb_options_optimize_for_point_lookup(r->o, 64);
	rocksdb_options_set_create_if_missing(r->o, 1);
	r->db = rocksdb_open(r->o, dir, &e);
	if (e)
		fail("rocksdb", "open", e);
	r->wo = rocksdb_writeoptions_create();
	rocksdb_writeoptions_set_sync(r->wo, m == DURABLE);
	r->ro = rocksdb_readoptions_create();
	return r;
}

static void rdb_put(void *h, const char *k, const char *v)
{
	struct rdb *r = h;
	char *e = NULL;

	rocksdb_put(r->db, r->wo, k, KLEN, v, VLEN, &e);
	if (e)
		fail("rocksdb", "put", e);
}

static int rdb_get(void *h, const char *k, char *buf)
{
	struct rdb *r = h;
	char *e = NULL, *v;
	size_t n;

	v = rocksdb_get(r->db, r->ro, k, KLEN, &n, &e);
	if (e)
		fail("rocksdb", "get", e);
	if (!v)
		return -1;
	memcpy(buf, v, n < VLEN ? n : VLEN);
	rocksdb_free(v);
	return (int)n;
}

static void rdb_close(void *h)
{
	struct rdb *r = h;

	rocksdb_close(r->db);
	rocksdb_writeoptions_destroy(r->wo);
	rocksdb_readoptions_destroy(r->ro);
	rocksdb_options_destroy(r->o);
	free(r);
}
#endif

static const struct peer peers[] = {
	{ "engine", "sync=none for fills, sync=always for durable puts; other options default",
	  engine_open, engine_put, engine_get, engine_close },
#ifdef HAVE_LEVELDB
	{ "leveldb", "bloom 10 bits/key, 64 MiB LRU cache; WriteOptions.sync only for durable puts",
	  ldb_open, ldb_put, ldb_get, ldb_close },
#endif
#ifdef HAVE_LMDB
	{ "lmdb", "txn per put; fills MDB_NOSYNC|MDB_WRITEMAP (+MDB_APPEND when sorted); durable: "
		  "default flags; reads: reset/renew one read txn",
	  lmdb_open, lmdb_put, lmdb_get, lmdb_close },
#endif
#ifdef HAVE_SQLITE
	{ "sqlite", "WITHOUT ROWID, WAL, synchronous=NORMAL for fills / FULL for durable, 64 MiB "
		    "cache, mmap 256 MiB, autocommit per put; threads share one connection under a mutex "
		    "(SQLite has one writer at a time)",
	  sql_open, sql_put, sql_get, sql_close },
#endif
#ifdef HAVE_ROCKSDB
	{ "rocksdb", "IncreaseParallelism, OptimizeLevelStyleCompaction, OptimizeForPointLookup(64 "
		     "MiB); WriteOptions.sync only for durable puts",
	  rdb_open, rdb_put, rdb_get, rdb_close },
#endif
};

#define NPEERS (sizeof(peers) / sizeof(peers[0]))

/* ---- the work --------------------------------------------------------------------------- */

static void make_key(char key[KLEN + 1], uint64_t i)
{
	snprintf(key, KLEN + 1, "%016" PRIx64, i);
}

static uint64_t *permutation(uint64_t n, uint64_t seed)
{
	uint64_t *p = bench_permutation(n, seed);

	if (!p)
		fail("peers", "malloc", strerror(ENOMEM));
	return p;
}

struct result {
	uint64_t keys;
	double seq, rnd, read, reopen_s, durable[2], p50_us[2], p99_us[2];
	double cold_open_s, cold_read, cold_p50_us, cold_p99_us, cold_kib_per_get;
	int cold_how; /* bench_drop_caches' result */
	long rss_kib;
};

static void *fresh(const struct peer *p, const char *dir, enum mode m)
{
	rm_dir(dir);
	make_dir(dir);
	return p->open(dir, m);
}

/* The value of key number i: the key, then bytes that compress to about half, as LevelDB's
 * db_bench makes its values (pseudo-random bytes, then the same again), so that a store that
 * compresses gains what it would on ordinary data, not what a run of one letter gives. */
#define VRAND ((VLEN - KLEN) / 2)
static void make_value(char val[VLEN], const char *key, uint64_t i)
{
	uint64_t x = i * 0x9e3779b97f4a7c15ull + 0x2545f4914f6cdd1dull;

	memcpy(val, key, KLEN);
	for (size_t at = KLEN; at < KLEN + VRAND; at += 8) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		memcpy(val + at, &x, KLEN + VRAND - at < 8 ? KLEN + VRAND - at : 8);
	}
	memcpy(val + KLEN + VRAND, val + KLEN, VLEN - KLEN - VRAND);
}

static double fill(const struct peer *p, void *h, const uint64_t *order, uint64_t n)
{
	char key[KLEN + 1], val[VLEN];
	double t0;

	t0 = now_s();
	for (uint64_t i = 0; i < n; i++) {
		uint64_t k = order ? order[i] : i;

		make_key(key, k);
		make_value(val, key, k);
		p->put(h, key, val);
	}
	return (double)n / (now_s() - t0);
}

struct durable_arg {
	const struct peer *p;
	void *h;
	const uint64_t *keys;
	unsigned n;
	double *lat;
};

static void *durable_thread(void *arg)
{
	struct durable_arg *a = arg;
	char key[KLEN + 1], val[VLEN];

	for (unsigned i = 0; i < a->n; i++) {
		double t1 = now_s();

		make_key(key, a->keys[i]);
		make_value(val, key, a->keys[i] + 1);
		a->p->put(a->h, key, val);
		a->lat[i] = now_s() - t1;
	}
	return NULL;
}

/* nsync durable puts of distinct keys from `threads` threads sharing one handle; slot k of r. */
static void durable(const struct peer *p, const char *dir, const uint64_t *order, int threads,
		    struct result *r, int k)
{
	unsigned per = nsync / (unsigned)threads ? nsync / (unsigned)threads : 1;
	double *lat = calloc((size_t)per * (size_t)threads, sizeof(*lat)), t0;
	struct durable_arg a[8];
	pthread_t th[8];
	void *h;

	if (!lat)
		fail("peers", "malloc", strerror(ENOMEM));
	h = fresh(p, dir, DURABLE);
	t0 = now_s();
	for (int t = 0; t < threads; t++) {
		a[t] = (struct durable_arg){ p, h, order + (size_t)t * per, per, lat + (size_t)t * per };
		if (pthread_create(&th[t], NULL, durable_thread, &a[t]))
			fail("peers", "pthread_create", strerror(EAGAIN));
	}
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	r->durable[k] = (double)per * threads / (now_s() - t0);
	p->close(h);
	r->p50_us[k] = bench_pct(lat, (size_t)per * (size_t)threads, 0.5) * 1e6;
	r->p99_us[k] = bench_pct(lat, (size_t)per * (size_t)threads, 0.99) * 1e6;
	free(lat);
}

/* Bytes this process made the disk read so far (/proc/self/io read_bytes: reads and page
 * faults alike, read-ahead included); 0 when unknown. */
static uint64_t read_bytes(void)
{
	char line[128];
	uint64_t n = 0;
	FILE *f = fopen("/proc/self/io", "r");

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "read_bytes:", 11))
			n = strtoull(line + 11, NULL, 10);
	if (f)
		fclose(f);
	return n;
}

/* The cache emptied, the store opened (timed), the cache emptied again, then ncold gets of
 * random keys in an order of their own. */
static void cold_read(const struct peer *p, const char *dir, const uint64_t *order, uint64_t nk,
		      struct result *r)
{
	char key[KLEN + 1], buf[VLEN];
	unsigned n = ncold < nk ? ncold : (unsigned)nk;
	double *lat = calloc(n, sizeof(*lat)), t0;
	uint64_t io0;
	void *h;

	if (!lat)
		fail("peers", "malloc", strerror(ENOMEM));
	r->cold_how = bench_drop_caches(dir, cold_whole_machine);
	if (r->cold_how < 0)
		fail(p->name, "emptying the page cache", strerror(-r->cold_how));
	t0 = now_s();
	h = p->open(dir, FILL_RAND);
	r->cold_open_s = now_s() - t0;
	if (bench_drop_caches(dir, cold_whole_machine) < 0)
		fail(p->name, "emptying the page cache", dir);
	io0 = read_bytes();
	t0 = now_s();
	for (unsigned i = 0; i < n; i++) {
		double t1 = now_s();

		make_key(key, order[(i * 104729ull + 12345) % nk]);
		if (p->get(h, key, buf) != VLEN || memcmp(buf, key, KLEN))
			fail(p->name, "cold read", key);
		lat[i] = now_s() - t1;
	}
	r->cold_read = (double)n / (now_s() - t0);
	r->cold_kib_per_get = (double)(read_bytes() - io0) / 1024.0 / n;
	r->cold_p50_us = bench_pct(lat, n, 0.5) * 1e6;
	r->cold_p99_us = bench_pct(lat, n, 0.99) * 1e6;
	p->close(h);
	free(lat);
}

static void run_peer(const struct peer *p, uint64_t nk, struct result *r)
{
	char dir[1100], key[KLEN + 1], buf[VLEN];
	uint64_t *order = permutation(nk, 42);
	double t0;
	void *h;

	snprintf(dir, sizeof dir, "%s/%s", base_dir, p->name);
	r->keys = nk;

	h = fresh(p, dir, FILL_SEQ);
	r->seq = fill(p, h, NULL, nk);
	p->close(h);

	h = fresh(p, dir, FILL_RAND);
	r->rnd = fill(p, h, order, nk);
	t0 = now_s();
	for (uint64_t i = 0; i < nk; i++) {
		make_key(key, order[(i * 7919) % nk]);
		if (p->get(h, key, buf) != VLEN || memcmp(buf, key, KLEN))
			fail(p->name, "read", key);
	}
	r->read = (double)nk / (now_s() - t0);
	p->close(h);

	/* Reopen the filled store; one get proves it is usable. */
	t0 = now_s();
	h = p->open(dir, FILL_RAND);
	make_key(key, order[0]);
	if (p->get(h, key, buf) != VLEN)
		fail(p->name, "read after reopen", key);
	r->reopen_s = now_s() - t0;
	p->close(h);

	cold_read(p, dir, order, nk, r);

	durable(p, dir, order, 1, r, 0);
	durable(p, dir, order, 8, r, 1);
	free(order);
	rm_dir(dir);
}

int main(int argc, char **argv)
{
	int want[NPEERS], any = 0;
	struct result res[NPEERS];
	double disk[2];

	/* the engine as kvfs and kv_cli run it: the same malloc settings (mount/hugepages.h);
	 * every store of a run shares them */
	hugepages_reexec(argv);
	memset(want, 0, sizeof want);
	memset(res, 0, sizeof res);
	for (int i = 1; i < argc; i++) {
		size_t k;

		if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			base_dir = argv[++i];
			continue;
		} else if (!strcmp(argv[i], "--keys") && i + 1 < argc) {
			nkeys = strtoull(argv[++i], NULL, 10);
			continue;
		} else if (!strcmp(argv[i], "--sync") && i + 1 < argc) {
			nsync = (unsigned)strtoul(argv[++i], NULL, 10);
			continue;
		} else if (!strcmp(argv[i], "--cold") && i + 1 < argc) {
			ncold = (unsigned)strtoul(argv[++i], NULL, 10);
			continue;
		} else if (!strcmp(argv[i], "--cap") && i + 1 < argc) {
			const char *eq = strchr(argv[++i], '=');

			for (k = 0; eq && k < NPEERS; k++)
				if (strlen(peers[k].name) == (size_t)(eq - argv[i]) &&
				    !strncmp(argv[i], peers[k].name, (size_t)(eq - argv[i])))
					cap_keys[k] = strtoull(eq + 1, NULL, 10);
			continue;
		} else if (!strcmp(argv[i], "--tiny")) {
			nkeys = 2000, nsync = 20, ncold = 200, cold_whole_machine = 0;
			continue;
		}
		for (k = 0; k < NPEERS; k++)
			if (!strcmp(argv[i], peers[k].name))
				break;
		if (k == NPEERS) {
			fprintf(stderr, "usage: peers [--dir DIR] [--keys N] [--sync N] [--cold N] [--cap STORE=N]... "
					"[--tiny] [STORE...]\n"
					"stores built in:");
			for (k = 0; k < NPEERS; k++)
				fprintf(stderr, " %s", peers[k].name);
			fprintf(stderr, "\n");
			return 2;
		}
		want[k] = any = 1;
	}
	if (nkeys < 2 || nsync < 1 || nsync > nkeys || ncold < 1) {
		fprintf(stderr, "peers: need --keys >= 2, 1 <= --sync <= --keys and --cold >= 1\n");
		return 2;
	}
	make_dir(base_dir);
	disk[0] = bench_disk_sync(base_dir, 1, (int)nsync, 0, NULL, NULL);
	disk[1] = bench_disk_sync(base_dir, 8, (int)(nsync / 8 ? nsync / 8 : 1), 0, NULL, NULL);
	if (disk[0] < 0 || disk[1] < 0)
		fail("disk", base_dir, strerror(EIO));
	for (size_t k = 0; k < NPEERS; k++) {
		struct rusage ru;
		int st, fds[2];
		pid_t pid;

		if (any && !want[k])
			continue;
		if (pipe(fds) < 0)
			fail("peers", "pipe", strerror(errno));
		fflush(NULL);
		pid = fork();
		if (pid < 0)
			fail("peers", "fork", strerror(errno));
		if (pid == 0) {
			close(fds[0]);
			uint64_t nk = cap_keys[k] && cap_keys[k] < nkeys ? cap_keys[k] : nkeys;

			/* the durable puts take their keys from the first nsync of the order */
			run_peer(&peers[k], nk > nsync ? nk : nsync, &res[k]);
			if (write(fds[1], &res[k], sizeof res[k]) != (ssize_t)sizeof res[k])
				_exit(1);
			_exit(0);
		}
		close(fds[1]);
		if (read(fds[0], &res[k], sizeof res[k]) != (ssize_t)sizeof res[k])
			memset(&res[k], 0, sizeof res[k]);
		close(fds[0]);
		if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "peers: %s failed\n", peers[k].name);
			return 1;
		}
		res[k].rss_kib = ru.ru_maxrss;
	}
	printf("\n## Engine and embedded stores: %" PRIu64 " keys (fewer where the keys column says) of 16 bytes, 100-byte values; "
	       "%u durable puts per row\n\n", nkeys, nsync);
	printf("| store | seq fill puts/s | random fill puts/s | random read gets/s | cold random read "
	       "gets/s | cold get p50 µs | cold get p99 µs | disk KiB read per cold get | reopen s | "
	       "cold reopen s | peak RSS MiB | keys |\n"
	       "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (size_t k = 0; k < NPEERS; k++) {
		const struct result *r = &res[k];

		if (!any || want[k])
			printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.3f | %.3f | %.0f | %"
			       PRIu64 " |\n", peers[k].name, r->seq, r->rnd, r->read, r->cold_read,
			       r->cold_p50_us, r->cold_p99_us, r->cold_kib_per_get, r->reopen_s, r->cold_open_s,
			       (double)r->rss_kib / 1024.0, r->keys);
	}
	for (size_t k = 0; k < NPEERS; k++)
		if (!any || want[k]) {
			printf("\nRandom read: every key once, warm (just filled). Cold random read: the first "
			       "%u gets of random keys after the page cache was emptied (%s) twice: before the "
			       "store was opened again (cold reopen) and after; each store keeps what its open "
			       "put in its own memory (the engine its index, LevelDB its table metadata). "
			       "Disk KiB read per cold get: /proc/self/io read_bytes over the cold gets, "
			       "read-ahead included (a store that mmaps its files, as LevelDB and LMDB do, "
			       "reads around each fault).\n",
			       ncold, bench_cold_how(res[k].cold_how));
			break;
		}
	printf("\nDurable puts (each put returns once fdatasync'd), against the disk's 4 KiB "
	       "append+fdatasync with as many threads (each its own file): %.0f/s (1 thread), "
	       "%.0f/s (8 threads)\n\n", disk[0], disk[1]);
	printf("| durable | threads | puts/s | × disk | p50 µs | p99 µs |\n|---|---:|---:|---:|---:|---:|\n");
	for (size_t k = 0; k < NPEERS; k++) {
		const struct result *r = &res[k];

		if (any && !want[k])
			continue;
		for (int t = 0; t < 2; t++)
			printf("| %s | %d | %.0f | %.2f | %.0f | %.0f |\n", peers[k].name, t ? 8 : 1,
			       r->durable[t], r->durable[t] / disk[t], r->p50_us[t], r->p99_us[t]);
	}
	printf("\nConfiguration (each as its documentation recommends for the work):\n");
	for (size_t k = 0; k < NPEERS; k++)
		if (!any || want[k])
			printf("- %s: %s\n", peers[k].name, peers[k].config);
	return 0;
}
