/* kvbench — the engine on the real disk, beside the disk's own limits.
 *
 *   kvbench [--dir DIR] [--keys N] [--flushes N] [--log-mb N] [--disk-mb N] [--cleaner-mb N]
 *           [--big-keys N] [--big-gib N] [--tiny]
 *           [disk] [groupcommit] [scale] [snapshot] [recovery] [cleaner] [bigscale]
 *
 *   disk         4 KiB append+fdatasync with 1..32 threads (each thread its own file);
 *                sequential write (+fdatasync) and cold read of --disk-mb MiB
 *   groupcommit  1..32 writers, each doing put(4 KiB) + flush, in each sync mode: writes/s,
 *                the same ÷ the disk with as many threads (measured again, interleaved),
 *                fdatasyncs per flush, p50/p99
 *   scale        N/100, N/10 and N keys (16-byte keys, 100-byte values, sync=none), each size
 *                in its own child process (peak RSS is per size): fills, reads, memory per key,
 *                reopen by log replay, snapshot, reopen from the snapshot
 *   snapshot     put latency (sync=batch, 100-byte values over N keys) while kv_snapshot runs in
 *                another thread, against the same writer with no snapshot
 *   recovery     open time of an empty store, and of --log-mb MiB of log (cold and warm cache)
 *   cleaner      put latency (sync=batch, 4 KiB values over --cleaner-mb MiB of live data,
 *                overwritten at random six times over) with the background cleaner off and on,
 *                twice each, alternating: puts/s, p50/p99/p99.9, what the cleaner moved, disk use
 *   bigscale     (only when named: it writes --big-gib GiB) --big-keys/100, /10 and --big-keys
 *                keys with values of --big-gib GiB / --big-keys bytes: fill, disk use, index and
 *                RSS per key, open time from the checkpoint (+ the log after it) with a cold
 *                and a warm page cache, cold random reads, checkpoint time and size
 *
 * Cold means the page cache emptied first (bench_drop_caches: as root, echo 3 >
 * /proc/sys/vm/drop_caches; with --tiny or not root, fadvise DONTNEED on the store's files, and
 * the tables say which).
 *
 * --flushes is the number of write+flush operations per group-commit cell (split among the
 * threads). Prints markdown tables; nothing here is a pass/fail check (the suite runs it with
 * --tiny only, so that it keeps working). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "hugepages.h"
#include "kv.h"
#include "bench_util.h"

static const char *base_dir = "/tmp/kvbench";
static uint64_t nkeys = 1000000;
static int gc_ops = 4000;
static unsigned log_mb = 1024;
static unsigned disk_mb = 1024;
static double snap_base_s = 1.0; /* writer time without a snapshot */
static unsigned cleaner_mb = 256;
static uint64_t big_keys = 10000000;
static unsigned big_gib = 20;
static unsigned cold_gets = 10000;
static uint64_t frag_extents = 35000; /* the file of bench_fragmented */
static int cold_whole_machine = 1; /* bench_drop_caches may empty the machine's cache */

static const int thread_counts[] = { 1, 2, 4, 8, 16, 32 };
#define NTHREADS (int)(sizeof thread_counts / sizeof thread_counts[0])

static void die(const char *what, int rc)
{
	fprintf(stderr, "kvbench: %s: %s\n", what, strerror(rc < 0 ? -rc : rc));
	exit(1);
}

static struct kv *open_with(const char *dir, const struct kv_options *o, double *secs, struct kv_report *rep)
{
	struct kv_report r;
	struct kv *s;
	double t0;
	int rc;

	if (!rep)
		rep = &r;
	t0 = bench_now();
	rc = kv_open(&s, dir, o, rep);
	if (secs)
		*secs = bench_now() - t0;
	if (rc) {
		fprintf(stderr, "kvbench: open %s: %s (problem %d, damage %d at %s)\n", dir, strerror(-rc),
			rep->problem, rep->damage, rep->damage_file);
		exit(1);
	}
	return s;
}

static struct kv *open_store(const char *dir, enum kv_sync sync, double *secs, struct kv_report *rep)
{
	struct kv_options o;

	kv_options_default(&o);
	o.sync = sync;
	o.checkpoint_bytes = 1ull << 40; /* snapshots only when the benchmark asks */
	return open_with(dir, &o, secs, rep);
}

static void make_key(char key[17], uint64_t i)
{
	snprintf(key, 17, "%016" PRIx64, i);
}

static uint64_t *permutation(uint64_t n, uint64_t seed)
{
	uint64_t *p = bench_permutation(n, seed);

	if (!p)
		die("malloc", -ENOMEM);
	return p;
}

/* ---- disk --------------------------------------------------------------------------------- */

static void bench_disk(void)
{
	char dir[1100];
	double w = 0, r = 0;
	int rc;

	snprintf(dir, sizeof dir, "%s/disk", base_dir);
	bench_rm(dir);
	bench_mkdir(dir);
	printf("\n## The disk's limit (4 KiB write + fdatasync, each thread its own file)\n\n"
	       "append: the file grows at every write (each fdatasync also commits the size: a journal "
	       "write); preallocated: the file was allocated and synced first (data only, as the "
	       "engine's preallocated log segments). Ratios below use append.\n\n");
	printf("| disk | threads | writes/s | p50 µs | p99 µs |\n|---|---:|---:|---:|---:|\n");
	for (int pre = 0; pre < 2; pre++)
		for (int k = 0; k < NTHREADS; k++) {
			int t = thread_counts[k], n = gc_ops / t > 20 ? gc_ops / t : 20;
			double p50, p99, rate = bench_disk_sync(dir, t, n, pre, &p50, &p99);

			if (rate < 0)
				die("disk write+fdatasync", (int)rate);
			printf("| %s | %d | %.0f | %.0f | %.0f |\n", pre ? "preallocated+fdatasync" : "append+fdatasync",
			       t, rate, p50 * 1e6, p99 * 1e6);
		}
	rc = bench_disk_stream(dir, disk_mb, &w, &r);
	if (rc)
		die("disk stream", rc);
	printf("\n| disk stream | MiB | MB/s |\n|---|---:|---:|\n");
	printf("| sequential write (1 MiB writes + fdatasync) | %u | %.0f |\n", disk_mb, w * 1.048576);
	printf("| sequential read (cold: fadvise DONTNEED) | %u | %.0f |\n", disk_mb, r * 1.048576);
	bench_rm(dir);
}

/* ---- group commit ------------------------------------------------------------------------- */

struct gc_arg {
	struct kv *s;
	int id, n, flush;
	double *lat;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	char key[32], val[4096];

	memset(val, 'v', sizeof val);
	for (int i = 0; i < a->n; i++) {
		double t0 = bench_now();

		snprintf(key, sizeof key, "t%02d-%08d", a->id, i);
		if (kv_put(a->s, key, strlen(key), val, sizeof val))
			return (void *)1;
		if (a->flush && kv_flush(a->s))
			return (void *)1;
		a->lat[i] = bench_now() - t0;
	}
	return NULL;
}

/* One row per (threads, mode). The disk's own rate with as many threads is measured right before
 * each thread count's rows, interleaved, so that a burst of noise from other work on the
 * machine lands on both sides of the ratio. */
static void bench_groupcommit(void)
{
	static const enum kv_sync modes[] = { KV_SYNC_NONE, KV_SYNC_BATCH, KV_SYNC_ALWAYS };
	char dir[1100], probe[1100];

	snprintf(dir, sizeof dir, "%s/gc", base_dir);
	snprintf(probe, sizeof probe, "%s/gc-disk", base_dir);
	bench_rm(probe);
	bench_mkdir(probe);
	printf("\n## Group commit: each writer does put(4 KiB value) + kv_flush (sync=always: the put "
	       "alone, which returns once durable); about %d operations per row. disk: 4 KiB "
	       "append+fdatasync with as many threads (each its own file), measured just before\n\n",
	       gc_ops);
	printf("| sync | threads | writes+flushes/s | disk appends/s | × disk | fdatasyncs per flush "
	       "| p50 µs | p99 µs |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int k = 0; k < NTHREADS; k++) {
		int t = thread_counts[k], n = gc_ops / t > 20 ? gc_ops / t : 20;
		double disk = bench_disk_sync(probe, t, n, 0, NULL, NULL);

		if (disk < 0)
			die("disk append+fdatasync", (int)disk);
		for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
			pthread_t th[32];
			struct gc_arg args[32];
			double *lat = calloc((size_t)t * (size_t)n, sizeof(*lat));
			struct kv_stats a, b;
			struct kv *s;
			double t0, dt, rate;
			uint64_t fs;
			int bad = 0;

			if (!lat)
				die("malloc", -ENOMEM);
			bench_rm(dir);
			s = open_store(dir, modes[m], NULL, NULL);
			kv_stats(s, &a);
			t0 = bench_now();
			for (int i = 0; i < t; i++) {
				args[i] = (struct gc_arg){ s, i, n, modes[m] != KV_SYNC_ALWAYS,
							   lat + (size_t)i * (size_t)n };
				if (pthread_create(&th[i], NULL, gc_thread, &args[i]))
					die("pthread_create", -EAGAIN);
			}
			for (int i = 0; i < t; i++) {
				void *ret;

				pthread_join(th[i], &ret);
				bad |= ret != NULL;
			}
			dt = bench_now() - t0;
			if (bad)
				die("put/flush", -EIO);
			kv_stats(s, &b);
			fs = b.fdatasyncs - a.fdatasyncs;
			rate = (double)t * n / dt;
			printf("| %s | %d | %.0f | %.0f | %.2f | %.3f | %.0f | %.0f |\n", kv_sync_name(modes[m]), t,
			       rate, disk, rate / disk, (double)fs / ((double)t * n),
			       bench_pct(lat, (size_t)t * (size_t)n, 0.5) * 1e6,
			       bench_pct(lat, (size_t)t * (size_t)n, 0.99) * 1e6);
			kv_close(s);
			free(lat);
		}
	}
	bench_rm(dir);
	bench_rm(probe);
}

/* ---- a measurement in a child process ----------------------------------------------------- */

/* Runs fn(arg, out) in a child process (its own heap: peak RSS is its own) and copies its out
 * (len bytes) back; *rss_kib gets the child's peak RSS. Exits on failure. */
static void in_child(void (*fn)(void *arg, void *out), void *arg, void *out, size_t len, long *rss_kib)
{
	struct rusage ru;
	int fds[2], st;
	pid_t pid;

	if (pipe(fds) < 0)
		die("pipe", -errno);
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		die("fork", -errno);
	if (pid == 0) {
		close(fds[0]);
		fn(arg, out);
		if (write(fds[1], out, len) != (ssize_t)len)
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	if (read(fds[0], out, len) != (ssize_t)len)
		memset(out, 0, len);
	close(fds[0]);
	if (wait4(pid, &st, 0, &ru) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		die("child", -EIO);
	if (rss_kib)
		*rss_kib = ru.ru_maxrss;
}

/* This process's peak RSS so far (VmHWM), bytes; 0 when unknown. */
static uint64_t peak_rss(void)
{
	char line[256];
	uint64_t kib = 0;
	FILE *f = fopen("/proc/self/status", "r");

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmHWM:", 6))
			kib = strtoull(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kib * 1024;
}

/* A counter of /proc/self/io ("read_bytes:", "write_bytes:"): bytes this process (every
 * thread) had the disk read, or dirtied for the disk to write; 0 when unknown. */
static uint64_t proc_io(const char *field)
{
	char line[128];
	uint64_t n = 0;
	FILE *f = fopen("/proc/self/io", "r");

	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, field, strlen(field)))
			n = strtoull(line + strlen(field), NULL, 10);
	if (f)
		fclose(f);
	return n;
}

/* Bytes of blocks the files directly in dir hold (what du counts). */
static uint64_t dir_blocks(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t sum = 0;

	while (d && (e = readdir(d))) {
		char p[1400];
		struct stat st;

		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if ((!prefix || !strncmp(e->d_name, prefix, strlen(prefix))) && stat(p, &st) == 0 &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_blocks * 512;
	}
	if (d)
		closedir(d);
	return sum;
}

static int drop_caches(const char *dir)
{
	int how = bench_drop_caches(dir, cold_whole_machine);

	if (how < 0)
		die("emptying the page cache", how);
	return how;
}

/* ---- scale -------------------------------------------------------------------------------- */

struct scale_result {
	double seq, rnd, read, mem_per_key, wal_mb, replay_s, snap_s, snap_open_s;
	long rss_kib;
};

static double fill(struct kv *s, const uint64_t *order, uint64_t n)
{
	char key[17], val[100];
	double t0;

	memset(val, 'x', sizeof val);
	t0 = bench_now();
	for (uint64_t i = 0; i < n; i++) {
		make_key(key, order ? order[i] : i);
		memcpy(val, key, 16);
		if (kv_put(s, key, 16, val, sizeof val))
			die("put", -EIO);
	}
	return (double)n / (bench_now() - t0);
}

static void scale_one(uint64_t n, struct scale_result *r)
{
	char dir[1100], key[17], buf[128];
	uint64_t *order = permutation(n, 42);
	struct kv_stats st;
	struct kv *s;
	double t0;
	size_t got;

	snprintf(dir, sizeof dir, "%s/scale-%" PRIu64, base_dir, n);
	bench_rm(dir);
	s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
	r->seq = fill(s, NULL, n);
	kv_close(s);
	bench_rm(dir);
	s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
	r->rnd = fill(s, order, n);
	kv_stats(s, &st);
	r->mem_per_key = (double)st.mem_bytes / (double)st.keys;
	t0 = bench_now();
	for (uint64_t i = 0; i < n; i++) {
		make_key(key, order[(i * 7919) % n]);
		if (kv_read(s, key, 16, 0, buf, sizeof buf, &got) || got != 100)
			die("read", -EIO);
	}
	r->read = (double)n / (bench_now() - t0);
	if (kv_flush(s))
		die("flush", -EIO);
	kv_stats(s, &st);
	r->wal_mb = (double)st.wal_bytes / 1e6;
	kv_close(s);
	s = open_store(dir, KV_SYNC_NONE, &r->replay_s, NULL);
	t0 = bench_now();
	if (kv_snapshot(s))
		die("snapshot", -EIO);
	r->snap_s = bench_now() - t0;
	kv_close(s);
	s = open_store(dir, KV_SYNC_NONE, &r->snap_open_s, NULL);
	kv_close(s);
	bench_rm(dir);
	free(order);
}

static void scale_child(void *arg, void *out)
{
	scale_one(*(const uint64_t *)arg, out);
}

static void bench_scale(void)
{
	printf("\n## Scale: 16-byte keys, 100-byte values, sync=none, one thread; each size in its own "
	       "process\n\n");
	printf("| keys | seq fill puts/s | random fill puts/s | random read gets/s | index bytes/key "
	       "| peak RSS MiB | RSS bytes/key | replay MB | replay s | replay MB/s | snapshot s "
	       "| open from snapshot s |\n");
	printf("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (uint64_t n = nkeys / 100; n <= nkeys; n *= 10) {
		struct scale_result r;

		if (n < 10)
			continue;
		memset(&r, 0, sizeof r);
		in_child(scale_child, &n, &r, sizeof r, &r.rss_kib);
		printf("| %" PRIu64 " | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.1f | %.3f | %.0f | %.3f | %.3f |\n",
		       n, r.seq, r.rnd, r.read, r.mem_per_key, (double)r.rss_kib / 1024.0,
		       (double)r.rss_kib * 1024.0 / (double)n, r.wal_mb, r.replay_s,
		       r.replay_s > 0 ? r.wal_mb / r.replay_s : 0, r.snap_s, r.snap_open_s);
	}
	printf("\nPeak RSS includes the benchmark's own key order (8 bytes/key) and the libc heap's "
	       "slack.\n");
}

/* ---- write latency during a snapshot ------------------------------------------------------ */

struct snap_writer {
	struct kv *s;
	atomic_int stop;
	uint64_t keys;
	size_t n, cap;
	double *start, *lat;
	int rc;
};

static void *snap_writer_thread(void *p)
{
	struct snap_writer *w = p;
	char key[17], val[100];
	uint64_t x = 88172645463325252ull;

	memset(val, 'w', sizeof val);
	while (!atomic_load(&w->stop) && w->n < w->cap) {
		double t0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		make_key(key, x % w->keys);
		t0 = bench_now();
		if ((w->rc = kv_put(w->s, key, 16, val, sizeof val)))
			break;
		w->start[w->n] = t0;
		w->lat[w->n++] = bench_now() - t0;
	}
	return NULL;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static void bench_snapshot(void)
{
	enum { ROUNDS = 3 };
	char dir[1100];
	struct snap_writer w;
	double win[ROUNDS][2], snap_s[ROUNDS];
	double *in, *out;
	size_t nin = 0, nout = 0;
	pthread_t th;
	uint64_t *order;

	snprintf(dir, sizeof dir, "%s/snap", base_dir);
	bench_rm(dir);
	memset(&w, 0, sizeof w);
	w.s = open_store(dir, KV_SYNC_BATCH, NULL, NULL);
	order = permutation(nkeys, 7);
	fill(w.s, order, nkeys);
	free(order);
	if (kv_flush(w.s))
		die("flush", -EIO);
	w.keys = nkeys;
	w.cap = 8u << 20;
	w.start = malloc(w.cap * sizeof(double));
	w.lat = malloc(w.cap * sizeof(double));
	in = malloc(w.cap * sizeof(double));
	out = malloc(w.cap * sizeof(double));
	if (!w.start || !w.lat || !in || !out)
		die("malloc", -ENOMEM);
	if (pthread_create(&th, NULL, snap_writer_thread, &w))
		die("pthread_create", -EAGAIN);
	/* A writer alone for snap_base_s, then ROUNDS snapshots from this thread, each followed by
	 * as long without one. A put that started inside a snapshot counts as "during", every
	 * other one as "without": both sides then span the whole run, so load from other work on
	 * the machine lands on both alike. */
	sleep_s(snap_base_s);
	for (int i = 0; i < ROUNDS; i++) {
		win[i][0] = bench_now();
		if (kv_snapshot(w.s))
			die("snapshot", -EIO);
		win[i][1] = bench_now();
		snap_s[i] = win[i][1] - win[i][0];
		sleep_s(snap_s[i]);
	}
	atomic_store(&w.stop, 1);
	pthread_join(th, NULL);
	if (w.rc)
		die("put", w.rc);
	for (size_t i = 0; i < w.n; i++) {
		int during = 0;

		for (int r = 0; r < ROUNDS; r++)
			during |= w.start[i] >= win[r][0] && w.start[i] < win[r][1];
		if (during)
			in[nin++] = w.lat[i];
		else
			out[nout++] = w.lat[i];
	}
	printf("\n## Snapshots: %" PRIu64 " keys; one writer thread overwriting random keys with 100-byte "
	       "values (sync=batch, so the put does not wait for the disk) while another thread takes "
	       "%d snapshots\n\n", nkeys, ROUNDS);
	printf("| measure | value |\n|---|---:|\n");
	printf("| snapshot time (median of %d) | %.3f s |\n", ROUNDS, bench_pct(snap_s, ROUNDS, 0.5));
	printf("| puts without a snapshot | %zu |\n", nout);
	printf("| puts during snapshots | %zu |\n", nin);
	{
		double p50o = bench_pct(out, nout, 0.5) * 1e6, p99o = bench_pct(out, nout, 0.99) * 1e6;
		double p50i = bench_pct(in, nin, 0.5) * 1e6, p99i = bench_pct(in, nin, 0.99) * 1e6;
		double p999o = bench_pct(out, nout, 0.999) * 1e6, p999i = bench_pct(in, nin, 0.999) * 1e6;

		printf("| put p50 without / during | %.1f / %.1f µs |\n", p50o, p50i);
		printf("| put p99 without / during | %.1f / %.1f µs |\n", p99o, p99i);
		printf("| put p99.9 without / during | %.1f / %.1f µs |\n", p999o, p999i);
		printf("| p99 during ÷ without | %.2f |\n", p99o > 0 ? p99i / p99o : 0);
	}
	kv_close(w.s);
	free(w.start);
	free(w.lat);
	free(in);
	free(out);
	bench_rm(dir);
}

/* ---- recovery ------------------------------------------------------------------------------ */

/* Drop every file of dir from the page cache, so the next open reads the disk. */
static void drop_dir_cache(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char p[1400];
		int fd;

		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		fd = open(p, O_RDONLY);
		if (fd < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	if (d)
		closedir(d);
}

static void bench_recovery(void)
{
	enum { EMPTY_OPENS = 5 };
	char dir[1100], key[32], *val;
	double open_s[EMPTY_OPENS], cold_s, warm_s;
	const uint64_t vlen = 4096, live = 16384; /* 64 MiB of live data, overwritten */
	uint64_t total = (uint64_t)log_mb << 20, puts = total / vlen;
	struct kv_report rep;
	struct kv_stats st;
	struct kv *s;

	snprintf(dir, sizeof dir, "%s/empty", base_dir);
	bench_rm(dir);
	s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
	kv_close(s);
	for (int i = 0; i < EMPTY_OPENS; i++) {
		s = open_store(dir, KV_SYNC_NONE, &open_s[i], NULL);
		kv_close(s);
	}
	bench_rm(dir);

	snprintf(dir, sizeof dir, "%s/log", base_dir);
	bench_rm(dir);
	val = malloc(vlen);
	if (!val)
		die("malloc", -ENOMEM);
	memset(val, 'l', vlen);
	s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
	for (uint64_t i = 0; i < puts; i++) {
		snprintf(key, sizeof key, "log/%08" PRIu64, i % live);
		memcpy(val, &i, sizeof i);
		if (kv_put(s, key, strlen(key), val, vlen))
			die("put", -EIO);
	}
	if (kv_flush(s))
		die("flush", -EIO);
	kv_stats(s, &st);
	kv_close(s);
	free(val);
	drop_dir_cache(dir);
	s = open_store(dir, KV_SYNC_NONE, &cold_s, &rep);
	kv_close(s);
	s = open_store(dir, KV_SYNC_NONE, &warm_s, NULL);
	kv_close(s);
	bench_rm(dir);

	printf("\n## Recovery\n\n| open | log MB | records replayed | s | replay MB/s |\n"
	       "|---|---:|---:|---:|---:|\n");
	printf("| empty store (median of %d) | 0 | 0 | %.4f | |\n", EMPTY_OPENS,
	       bench_pct(open_s, EMPTY_OPENS, 0.5));
	printf("| log of 4 KiB puts over %" PRIu64 " keys, cold cache | %.0f | %" PRIu64 " | %.3f | %.0f |\n",
	       live, (double)st.wal_bytes / 1e6, rep.records_replayed, cold_s, (double)st.wal_bytes / 1e6 / cold_s);
	printf("| the same, warm page cache | %.0f | %" PRIu64 " | %.3f | %.0f |\n", (double)st.wal_bytes / 1e6,
	       rep.records_replayed, warm_s, (double)st.wal_bytes / 1e6 / warm_s);
	printf("\nOpening %" PRIu64 " keys from a snapshot: the scale table's last column.\n", nkeys);
}

/* ---- the cleaner's effect on put latency --------------------------------------------------- */

struct cleaner_result {
	double rate, p50, p99, p999, max, settle_s;
	uint64_t passes, moved, deleted, disk_end, disk_peak, live, disk_settled;
};

#define SETTLE_MAX_S 120.0 /* how long the cleaner is given to bring the disk to the bound */

/* A fresh store (default options but the cleaner), filled with 4 KiB values up to cleaner_mb
 * MiB, then overwritten at random six times over; the latency of every overwrite into lat. */
static void cleaner_once(int on, double *lat, uint64_t puts, struct cleaner_result *r)
{
	const uint64_t vlen = 4096, keys = (uint64_t)cleaner_mb * 1048576 / vlen;
	char dir[1100], key[17];
	uint8_t *val = malloc(vlen);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct kv_options o;
	struct kv_report rep;
	struct kv_stats st;
	struct kv *s;
	double t0;
	int rc;

	if (!val)
		die("malloc", -ENOMEM);
	memset(val, 'c', vlen);
	snprintf(dir, sizeof dir, "%s/cleaner", base_dir);
	bench_rm(dir);
	kv_options_default(&o);
	o.sync = KV_SYNC_BATCH;
	o.cleaner = on;
	rc = kv_open(&s, dir, &o, &rep);
	if (rc)
		die(dir, rc);
	for (uint64_t i = 0; i < keys; i++) {
		make_key(key, i);
		if ((rc = kv_put(s, key, 16, val, vlen)))
			die("put", rc);
	}
	if ((rc = kv_flush(s)))
		die("flush", rc);
	memset(r, 0, sizeof *r);
	t0 = bench_now();
	for (uint64_t i = 0; i < puts; i++) {
		double t1;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		make_key(key, x % keys);
		memcpy(val, &i, sizeof i);
		t1 = bench_now();
		if ((rc = kv_put(s, key, 16, val, vlen)))
			die("put", rc);
		lat[i] = bench_now() - t1;
		if (i % 1024 == 0) {
			kv_stats(s, &st);
			if (st.disk_bytes > r->disk_peak)
				r->disk_peak = st.disk_bytes;
		}
	}
	r->rate = (double)puts / (bench_now() - t0);
	kv_stats(s, &st);
	r->passes = st.cleaner_passes;
	r->moved = st.cleaner_moved_bytes;
	r->deleted = st.segments_deleted;
	r->disk_end = st.disk_bytes;
	r->live = st.live_bytes;
	if (st.disk_bytes > r->disk_peak)
		r->disk_peak = st.disk_bytes;
	/* The writer has stopped: how long the background cleaner takes to bring the segments
	 * within its bound (2 x live + one segment), if it does within SETTLE_MAX_S. */
	r->settle_s = -1;
	r->disk_settled = st.disk_bytes;
	for (t0 = bench_now(); on && bench_now() - t0 < SETTLE_MAX_S; sleep_s(0.1)) {
		kv_stats(s, &st);
		r->disk_settled = st.disk_bytes;
		if (st.disk_bytes <= 2 * st.live_bytes + o.segment_bytes) {
			r->settle_s = bench_now() - t0;
			break;
		}
	}
	if ((rc = kv_close(s)))
		die("close", rc);
	bench_rm(dir);
	free(val);
	r->p50 = bench_pct(lat, puts, 0.5) * 1e6;
	r->p99 = bench_pct(lat, puts, 0.99) * 1e6;
	r->p999 = bench_pct(lat, puts, 0.999) * 1e6;
	r->max = lat[puts - 1] * 1e6; /* sorted by bench_pct */
}

static void bench_cleaner(void)
{
	enum { RUNS = 4 }; /* off, on, off, on: noise from other work lands on both */
	const uint64_t keys = (uint64_t)cleaner_mb * 1048576 / 4096, puts = 6 * keys;
	double *lat[2];
	struct cleaner_result r[RUNS];

	lat[0] = malloc(2 * puts * sizeof(double));
	lat[1] = malloc(2 * puts * sizeof(double));
	if (!lat[0] || !lat[1])
		die("malloc", -ENOMEM);
	for (int i = 0; i < RUNS; i++)
		cleaner_once(i % 2, lat[i % 2] + (i / 2) * puts, puts, &r[i]);
	printf("\n## The cleaner and put latency: %" PRIu64 " keys of 4 KiB (%u MiB live), each run "
	       "overwriting random keys %" PRIu64 " times (six times the live size); sync=batch (a put "
	       "does not wait for the disk); default options but the cleaner (64 MiB segments, a "
	       "checkpoint per 256 MiB of log, which deletes wholly dead segments with the cleaner "
	       "off too); off and on alternate\n\n", keys, cleaner_mb, puts);
	printf("| cleaner | puts/s | p50 µs | p99 µs | p99.9 µs | max ms | passes while writing | moved MiB "
	       "| segments deleted | live MiB | disk peak MiB | disk when the writer stopped MiB | then "
	       "within 2 x live + 64 MiB after s |\n");
	printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < RUNS; i++) {
		char settle[64];

		if (!(i % 2))
			snprintf(settle, sizeof settle, "(no cleaner)");
		else if (r[i].settle_s < 0)
			snprintf(settle, sizeof settle, "not in %.0f s (%.0f MiB)", SETTLE_MAX_S,
				 (double)r[i].disk_settled / 1048576.0);
		else
			snprintf(settle, sizeof settle, "%.1f", r[i].settle_s);
		printf("| %s | %.0f | %.1f | %.1f | %.1f | %.1f | %" PRIu64 " | %.0f | %" PRIu64 " | %.0f | "
		       "%.0f | %.0f | %s |\n", i % 2 ? "on" : "off", r[i].rate, r[i].p50, r[i].p99, r[i].p999,
		       r[i].max / 1e3, r[i].passes, (double)r[i].moved / 1048576.0, r[i].deleted,
		       (double)r[i].live / 1048576.0, (double)r[i].disk_peak / 1048576.0,
		       (double)r[i].disk_end / 1048576.0, settle);
	}
	{
		double p99[2], p999[2];

		for (int m = 0; m < 2; m++) {
			p99[m] = bench_pct(lat[m], 2 * puts, 0.99) * 1e6;
			p999[m] = bench_pct(lat[m], 2 * puts, 0.999) * 1e6;
		}
		printf("\n| both runs of each together | off | on |\n|---|---:|---:|\n");
		printf("| put p99 µs | %.1f | %.1f |\n", p99[0], p99[1]);
		printf("| put p99.9 µs | %.1f | %.1f |\n", p999[0], p999[1]);
		printf("| p99 with the cleaner on ÷ off | | %.2f |\n", p99[0] > 0 ? p99[1] / p99[0] : 0);
	}
	free(lat[0]);
	free(lat[1]);
}

/* ---- scale to tens of GiB ---------------------------------------------------------------- */

/* A bijection of 64-bit numbers (odd multipliers and xor-shifts), so that keys 0..n-1 come in a
 * random-looking order without an n-entry permutation in memory (which would count in RSS). */
static uint64_t scramble(uint64_t x)
{
	x *= 0x9e3779b97f4a7c15ull;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 32;
	return x;
}

struct big_job {
	char dir[1100];
	uint64_t keys, vlen;
};

struct big_fill {
	double fill_s;
	uint64_t mem_bytes, disk_bytes, segments, checkpoints, seg_blocks, written;
};

struct big_open {
	double open_s, snap_s, cold_rate, cold_p50, cold_p99;
	uint64_t replayed, from_ckpt, rss_open, ckpt_blocks;
	int how;
};

struct big_reopen {
	double cold_s, warm_s;
	uint64_t rss_open;
	int how;
};

static struct kv *big_store(const char *dir, double *secs, struct kv_report *rep)
{
	struct kv_options o;

	kv_options_default(&o);
	o.sync = KV_SYNC_NONE; /* checkpoints at the default cadence, as a user's store */
	return open_with(dir, &o, secs, rep);
}

static void big_fill_child(void *arg, void *out)
{
	const struct big_job *j = arg;
	struct big_fill *r = out;
	struct kv_report rep;
	struct kv_stats st;
	char key[17];
	uint8_t *val = malloc(j->vlen);
	struct kv *s;
	double t0;
	int rc;

	if (!val)
		die("malloc", -ENOMEM);
	memset(val, 'b', j->vlen);
	s = big_store(j->dir, NULL, &rep);
	r->written = proc_io("write_bytes:");
	t0 = bench_now();
	for (uint64_t i = 0; i < j->keys; i++) {
		make_key(key, scramble(i));
		memcpy(val, key, 16);
		if ((rc = kv_put(s, key, 16, val, j->vlen)))
			die("put", rc);
	}
	if ((rc = kv_flush(s)))
		die("flush", rc);
	r->fill_s = bench_now() - t0;
	kv_stats(s, &st);
	r->mem_bytes = st.mem_bytes;
	r->disk_bytes = st.disk_bytes;
	r->segments = st.segments;
	r->checkpoints = st.snapshots;
	if ((rc = kv_close(s)))
		die("close", rc);
	r->written = proc_io("write_bytes:") - r->written;
	r->seg_blocks = dir_blocks(j->dir, "wal-");
	free(val);
}

/* Open as the fill left it (the newest checkpoint, then the log after it), cold; cold random
 * reads; a checkpoint. */
static void big_open_child(void *arg, void *out)
{
	const struct big_job *j = arg;
	struct big_open *r = out;
	unsigned n = cold_gets < j->keys ? cold_gets : (unsigned)j->keys;
	double *lat = calloc(n, sizeof(*lat)), t0;
	uint8_t *buf = malloc(j->vlen);
	uint64_t x = 0x2545f4914f6cdd1dull;
	struct kv_report rep;
	char key[17];
	struct kv *s;
	int rc;

	if (!lat || !buf)
		die("malloc", -ENOMEM);
	r->how = drop_caches(j->dir);
	s = big_store(j->dir, &r->open_s, &rep);
	r->replayed = rep.records_replayed;
	r->from_ckpt = rep.snapshot_keys;
	r->rss_open = peak_rss();
	drop_caches(j->dir);
	t0 = bench_now();
	for (unsigned i = 0; i < n; i++) {
		double t1 = bench_now();
		size_t got;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		make_key(key, scramble(x % j->keys));
		if ((rc = kv_read(s, key, 16, 0, buf, j->vlen, &got)) || got != j->vlen || memcmp(buf, key, 16))
			die("cold read", rc ? rc : -EIO);
		lat[i] = bench_now() - t1;
	}
	r->cold_rate = n / (bench_now() - t0);
	r->cold_p50 = bench_pct(lat, n, 0.5) * 1e6;
	r->cold_p99 = bench_pct(lat, n, 0.99) * 1e6;
	t0 = bench_now();
	if ((rc = kv_snapshot(s)))
		die("checkpoint", rc);
	r->snap_s = bench_now() - t0;
	if ((rc = kv_close(s)))
		die("close", rc);
	r->ckpt_blocks = dir_blocks(j->dir, "ckpt-");
	free(lat);
	free(buf);
}

/* Open from the checkpoint alone (nothing after it), cold, then warm. */
static void big_reopen_child(void *arg, void *out)
{
	const struct big_job *j = arg;
	struct big_reopen *r = out;
	struct kv_report rep;
	struct kv *s;

	r->how = drop_caches(j->dir);
	s = big_store(j->dir, &r->cold_s, &rep);
	r->rss_open = peak_rss();
	kv_close(s);
	s = big_store(j->dir, &r->warm_s, &rep);
	kv_close(s);
}

static void bench_bigscale(void)
{
	const uint64_t vlen = (((uint64_t)big_gib << 30) + big_keys - 1) / big_keys;
	struct big_fill f[3];
	struct big_open o[3];
	struct big_reopen ro[3];
	long rss_fill[3], rss_open[3], rss_reopen[3];
	uint64_t n[3];
	int rows = 0;

	for (uint64_t k = big_keys / 100; k <= big_keys; k *= 10) {
		struct big_job j;

		if (k < 10)
			continue;
		snprintf(j.dir, sizeof j.dir, "%s/big", base_dir);
		j.keys = k;
		j.vlen = vlen;
		bench_rm(j.dir);
		in_child(big_fill_child, &j, &f[rows], sizeof f[rows], &rss_fill[rows]);
		in_child(big_open_child, &j, &o[rows], sizeof o[rows], &rss_open[rows]);
		in_child(big_reopen_child, &j, &ro[rows], sizeof ro[rows], &rss_reopen[rows]);
		bench_rm(j.dir);
		n[rows++] = k;
	}
	printf("\n## Scale to %" PRIu64 " keys and %u GiB of values: 16-byte keys, %" PRIu64 "-byte "
	       "values, filled in a random key order, sync=none, default options (64 MiB segments, a "
	       "checkpoint per 256 MiB of log); each step in its own process\n\n", big_keys, big_gib, vlen);
	printf("| keys | GiB of values | fill puts/s | fill MB/s | checkpoints during the fill | bytes "
	       "written ÷ values | log segments GiB | segments ÷ values | checkpoint MB | index "
	       "bytes/key | peak RSS MiB | RSS bytes/key |\n"
	       "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < rows; i++) {
		double values = (double)n[i] * (double)vlen;

		printf("| %" PRIu64 " | %.2f | %.0f | %.0f | %" PRIu64 " | %.2f | %.2f | %.3f | %.1f | %.0f | "
		       "%.0f | %.0f |\n", n[i], values / (1 << 30), (double)n[i] / f[i].fill_s,
		       values / 1e6 / f[i].fill_s, f[i].checkpoints, (double)f[i].written / values,
		       (double)f[i].seg_blocks / (1 << 30), (double)f[i].seg_blocks / values,
		       (double)o[i].ckpt_blocks / 1e6, (double)f[i].mem_bytes / (double)n[i],
		       (double)rss_fill[i] / 1024.0, (double)rss_fill[i] * 1024.0 / (double)n[i]);
	}
	printf("\nBytes written ÷ values: what the fill process dirtied for the disk to write "
	       "(/proc/self/io write_bytes: log records and the checkpoints taken during the fill) "
	       "over the value bytes it put.\n");
	printf("\nOpening the store: cold = the page cache emptied first (%s); \"as left\" = the "
	       "newest checkpoint of the fill plus the log written after it (replayed); \"checkpoint "
	       "only\" = right after a checkpoint. Cold random reads: %u gets of random keys after the "
	       "cache was emptied again.\n\n", bench_cold_how(o[0].how), cold_gets);
	printf("| keys | open s, as left, cold | records replayed | keys from the checkpoint | "
	       "RSS after open MiB | cold random gets/s | cold get p50 µs | cold get p99 µs | checkpoint "
	       "s | open s, checkpoint only, cold | the same, warm | RSS after open MiB |\n"
	       "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
	for (int i = 0; i < rows; i++)
		printf("| %" PRIu64 " | %.2f | %" PRIu64 " | %" PRIu64 " | %.0f | %.0f | %.0f | %.0f | %.2f | "
		       "%.2f | %.2f | %.0f |\n", n[i], o[i].open_s, o[i].replayed, o[i].from_ckpt,
		       (double)o[i].rss_open / 1048576.0, o[i].cold_rate, o[i].cold_p50, o[i].cold_p99,
		       o[i].snap_s, ro[i].cold_s, ro[i].warm_s, (double)ro[i].rss_open / 1048576.0);
}

/* ---- reopening a store from its checkpoint -------------------------------------------------- */

/* nkeys 16-byte keys with 100-byte values, a checkpoint, then opens timed: each one loads the
 * checkpoint into the index and replays nothing. KVBENCH_KEEP=1 keeps the store for the next
 * run (to profile the opens alone). */
static void bench_reopen(void)
{
	enum { OPENS = 5 };
	char dir[1100];
	double open_s[OPENS], cpu_s[OPENS];
	struct kv_report rep;
	struct stat sb;
	char mark[1200];
	struct kv *s;

	snprintf(dir, sizeof dir, "%s/reopen-%" PRIu64, base_dir, nkeys);
	snprintf(mark, sizeof mark, "%s/.bench-filled", dir);
	if (stat(mark, &sb)) {
		bench_rm(dir);
		s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
		fill(s, NULL, nkeys);
		if (kv_snapshot(s))
			die("snapshot", -EIO);
		kv_close(s);
		FILE *f = fopen(mark, "w");
		if (f)
			fclose(f);
	}
	for (int i = 0; i < OPENS; i++) {
		struct timespec c0, c1;
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
		s = open_store(dir, KV_SYNC_NONE, &open_s[i], &rep);
		clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
		cpu_s[i] = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
		kv_close(s);
	}
	/* CPU time beside the wall clock: on a loaded machine it is the steadier of the two */
	printf("\n## Reopen: %" PRIu64 " keys from a checkpoint (%" PRIu64 " loaded, %" PRIu64
	       " records replayed)\n\n| opens | median s | fastest s | median CPU s |\n"
	       "|---:|---:|---:|---:|\n", nkeys, rep.snapshot_keys, rep.records_replayed);
	printf("| %d | %.3f | %.3f | %.3f |\n", OPENS, bench_pct(open_s, OPENS, 0.5),
	       bench_pct(open_s, OPENS, 0), bench_pct(cpu_s, OPENS, 0.5));
	if (!getenv("KVBENCH_KEEP"))
		bench_rm(dir);
}

/* ---- writes into a value of many extents ----------------------------------------------- */

/* A file written page by page, each page its own operation, holds one extent per page (SQLite's
 * database through the mount: 35,000 extents at 140 MiB). Each timed operation is what a write
 * through the mount costs the engine: the write, then the file's allocated bytes (st_blocks, asked
 * by the getattr that follows). Ratios between the two sizes say whether a write's cost grows
 * with the file's extents. */
static void frag_one(uint64_t extents, uint64_t ops, double *append_us, double *overwrite_us)
{
	char dir[1100], *page;
	const uint64_t psz = 4096;
	uint64_t rs = 0x9e3779b97f4a7c15ull, bytes;
	struct kv *s;
	double t0;
	int rc;

	snprintf(dir, sizeof dir, "%s/frag", base_dir);
	bench_rm(dir);
	page = malloc(psz);
	if (!page)
		die("malloc", -ENOMEM);
	memset(page, 'f', psz);
	s = open_store(dir, KV_SYNC_NONE, NULL, NULL);
	rc = kv_put(s, "frag", 4, NULL, 0);
	for (uint64_t i = 0; !rc && i < extents; i++)
		rc = kv_write(s, "frag", 4, i * psz, page, psz);
	if (rc)
		die("write", rc);
	t0 = bench_now();
	for (uint64_t i = 0; i < ops; i++) {
		if ((rc = kv_write(s, "frag", 4, (extents + i) * psz, page, psz)) ||
		    (rc = kv_allocated(s, "frag", 4, &bytes)))
			die("append", rc);
	}
	*append_us = (bench_now() - t0) * 1e6 / (double)ops;
	t0 = bench_now();
	for (uint64_t i = 0; i < ops; i++) {
		rs = rs * 6364136223846793005ull + 1442695040888963407ull;
		if ((rc = kv_write(s, "frag", 4, ((rs >> 33) % extents) * psz, page, psz)) ||
		    (rc = kv_allocated(s, "frag", 4, &bytes)))
			die("overwrite", rc);
	}
	*overwrite_us = (bench_now() - t0) * 1e6 / (double)ops;
	kv_close(s);
	bench_rm(dir);
	free(page);
}

static void bench_fragmented(void)
{
	const uint64_t small = frag_extents / 32 ? frag_extents / 32 : 1, ops = 2000;
	double a_small, o_small, a_big, o_big;

	frag_one(small, ops, &a_small, &o_small);
	frag_one(frag_extents, ops, &a_big, &o_big);
	printf("\n## Writes into a value of many extents (4 KiB, sync=none, each followed by "
	       "kv_allocated)\n\n| write | µs at %" PRIu64 " extents | µs at %" PRIu64 " extents | "
	       "ratio |\n|---|---:|---:|---:|\n", small, frag_extents);
	printf("| append | %.2f | %.2f | %.2f |\n", a_small, a_big, a_big / a_small);
	printf("| overwrite of a random page | %.2f | %.2f | %.2f |\n", o_small, o_big, o_big / o_small);
}

int main(int argc, char **argv)
{
	int want_disk = 0, want_gc = 0, want_scale = 0, want_snap = 0, want_rec = 0, want_clean = 0;
	int want_big = 0, want_frag = 0, want_reopen = 0;

	/* the engine as kvfs and kv_cli run it: the same malloc settings (mount/hugepages.h);
	 * every store of a run shares them */
	hugepages_reexec(argv);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
		else if (!strcmp(argv[i], "--keys") && i + 1 < argc)
			nkeys = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--flushes") && i + 1 < argc)
			gc_ops = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--log-mb") && i + 1 < argc)
			log_mb = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--disk-mb") && i + 1 < argc)
			disk_mb = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--cleaner-mb") && i + 1 < argc)
			cleaner_mb = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--big-keys") && i + 1 < argc)
			big_keys = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--big-gib") && i + 1 < argc)
			big_gib = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--tiny"))
			nkeys = 2000, gc_ops = 64, log_mb = 2, disk_mb = 2, snap_base_s = 0.05, cleaner_mb = 2,
			big_keys = 20000, big_gib = 1, cold_gets = 200, cold_whole_machine = 0,
			frag_extents = 640;
		else if (!strcmp(argv[i], "disk"))
			want_disk = 1;
		else if (!strcmp(argv[i], "groupcommit"))
			want_gc = 1;
		else if (!strcmp(argv[i], "scale"))
			want_scale = 1;
		else if (!strcmp(argv[i], "snapshot"))
			want_snap = 1;
		else if (!strcmp(argv[i], "recovery"))
			want_rec = 1;
		else if (!strcmp(argv[i], "cleaner"))
			want_clean = 1;
		else if (!strcmp(argv[i], "bigscale"))
			want_big = 1;
		else if (!strcmp(argv[i], "fragmented"))
			want_frag = 1;
		else if (!strcmp(argv[i], "reopen"))
			want_reopen = 1;
		else {
			fprintf(stderr, "usage: kvbench [--dir DIR] [--keys N] [--flushes N] [--log-mb N] "
					"[--disk-mb N] [--cleaner-mb N] [--big-keys N] [--big-gib N] [--tiny] "
					"[disk] [groupcommit] [scale] [snapshot] [recovery] [cleaner] [fragmented] "
					"[reopen] [bigscale]\n"
					"(bigscale runs only when named)\n");
			return 2;
		}
	}
	if (nkeys < 10 || gc_ops < 1 || cleaner_mb < 1 || big_keys < 10 || big_gib < 1) {
		fprintf(stderr, "kvbench: need --keys >= 10, --flushes >= 1, --cleaner-mb >= 1, "
				"--big-keys >= 10 and --big-gib >= 1\n");
		return 2;
	}
	if (!want_disk && !want_gc && !want_scale && !want_snap && !want_rec && !want_clean && !want_big &&
	    !want_frag && !want_reopen)
		want_disk = want_gc = want_scale = want_snap = want_rec = want_clean = want_frag =
			want_reopen = 1;
	if (bench_mkdir(base_dir))
		die(base_dir, -EIO);
	if (want_disk)
		bench_disk();
	if (want_gc)
		bench_groupcommit();
	if (want_scale)
		bench_scale();
	if (want_snap)
		bench_snapshot();
	if (want_rec)
		bench_recovery();
	if (want_clean)
		bench_cleaner();
	if (want_frag)
		bench_fragmented();
	if (want_reopen)
		bench_reopen();
	if (want_big)
		bench_bigscale();
	return 0;
}
