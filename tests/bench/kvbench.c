/* kvbench — engine figures on the real disk: group commit sharing, fill/read rates, memory
 * per key, snapshot time, reopen (replay and snapshot load) time.
 *
 *   kvbench [--dir DIR] [--keys N] [--flushes N] [--tiny] [groupcommit] [fill]
 *
 * Prints tables; nothing here is a pass/fail check (the suite runs it with --tiny only so it
 * keeps working). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"

static const char *base_dir = "/tmp/kvbench";
static uint64_t nkeys = 1000000;
static int flushes_per_thread = 200;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rm_store(const char *dir)
{
	char cmd[1100];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "kvbench: could not remove %s\n", dir);
}

static struct kv *open_store(const char *dir, enum kv_sync sync, double *secs)
{
	struct kv_options o;
	struct kv_report rep;
	struct kv *s;
	kv_options_default(&o);
	o.sync = sync;
	o.snapshot_wal_bytes = 1ull << 40; /* snapshots only when the benchmark asks */
	double t0 = now_s();
	int rc = kv_open(&s, dir, &o, &rep);
	if (secs)
		*secs = now_s() - t0;
	if (rc) {
		fprintf(stderr, "kvbench: open %s: %s %s\n", dir, strerror(-rc), rep.message);
		exit(1);
	}
	return s;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

/* ---- the disk's own fdatasync rate, for reference ---- */

static double disk_fdatasyncs_per_s(const char *dir, int n)
{
	char path[1100];
	char buf[4096];
	memset(buf, 'd', sizeof buf);
	snprintf(path, sizeof path, "%s/disk-probe", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return 0;
	double t0 = now_s();
	for (int i = 0; i < n; i++) {
		if (pwrite(fd, buf, sizeof buf, (off_t)i * (off_t)sizeof buf) != (ssize_t)sizeof buf ||
		    fdatasync(fd) != 0)
			break;
	}
	double dt = now_s() - t0;
	close(fd);
	unlink(path);
	return n / dt;
}

/* ---- group commit ---- */

struct gc_arg {
	struct kv *s;
	int id, n, always;
};

static void *gc_thread(void *p)
{
	struct gc_arg *a = p;
	char key[32], val[100];
	memset(val, 'v', sizeof val);
	for (int i = 0; i < a->n; i++) {
		snprintf(key, sizeof key, "t%02d-%08d", a->id, i);
		if (kv_put(a->s, key, strlen(key), val, sizeof val))
			return (void *)1;
		if (!a->always && kv_flush(a->s))
			return (void *)1;
	}
	return NULL;
}

static void bench_groupcommit(void)
{
	char dir[1024];
	int threads[] = { 1, 8, 32 };
	snprintf(dir, sizeof dir, "%s/gc", base_dir);
	rm_store(dir);
	if (system("mkdir -p /tmp") != 0)
		return;
	struct kv *probe_store = open_store(dir, KV_SYNC_NONE, NULL);
	double disk = disk_fdatasyncs_per_s(dir, flushes_per_thread);
	kv_close(probe_store);
	printf("\n## Group commit: each thread does put(100 B) + flush, %d times\n", flushes_per_thread);
	printf("disk: 4 KiB pwrite+fdatasync, 1 thread: %.0f/s\n\n", disk);
	printf("| mode | threads | flush requests | fdatasyncs | fdatasyncs per request | requests/s |\n");
	printf("|---|---:|---:|---:|---:|---:|\n");
	for (int always = 0; always < 2; always++) {
		for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
			int t = threads[k];
			rm_store(dir);
			struct kv *s = open_store(dir, always ? KV_SYNC_ALWAYS : KV_SYNC_NONE, NULL);
			struct kv_stats a, b;
			pthread_t th[32];
			struct gc_arg args[32];
			kv_stats(s, &a);
			double t0 = now_s();
			for (int i = 0; i < t; i++) {
				args[i] = (struct gc_arg){ s, i, flushes_per_thread, always };
				pthread_create(&th[i], NULL, gc_thread, &args[i]);
			}
			for (int i = 0; i < t; i++)
				pthread_join(th[i], NULL);
			double dt = now_s() - t0;
			kv_stats(s, &b);
			uint64_t req = b.flush_requests - a.flush_requests, fs = b.fdatasyncs - a.fdatasyncs;
			printf("| %s | %d | %" PRIu64 " | %" PRIu64 " | %.3f | %.0f |\n",
			       always ? "sync=always" : "put+kv_flush", t, req, fs, req ? (double)fs / (double)req : 0,
			       (double)req / dt);
			kv_close(s);
		}
	}
	rm_store(dir);
}

/* ---- fill, read, snapshot, reopen ---- */

static void make_key(char key[17], uint64_t i)
{
	snprintf(key, 17, "%016" PRIx64, i);
}

static uint64_t *permutation(uint64_t n, uint64_t seed)
{
	uint64_t *p = malloc(n * sizeof(*p));
	for (uint64_t i = 0; i < n; i++)
		p[i] = i;
	for (uint64_t i = n - 1; i > 0; i--) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t j = (seed >> 33) % (i + 1), t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}

static double fill(struct kv *s, const uint64_t *order)
{
	char key[17], val[100];
	memset(val, 'x', sizeof val);
	double t0 = now_s();
	for (uint64_t i = 0; i < nkeys; i++) {
		uint64_t k = order ? order[i] : i;
		make_key(key, k);
		memcpy(val, key, 16);
		if (kv_put(s, key, 16, val, sizeof val)) {
			fprintf(stderr, "kvbench: put failed\n");
			exit(1);
		}
	}
	return now_s() - t0;
}

static void bench_fill(void)
{
	char dir[1024];
	char key[17], buf[128];
	size_t got;
	struct kv_stats st;
	snprintf(dir, sizeof dir, "%s/fill", base_dir);
	uint64_t *order = permutation(nkeys, 42);

	printf("\n## Engine: %" PRIu64 " keys, 16-byte keys, 100-byte values, sync=none\n\n", nkeys);
	printf("| measure | value |\n|---|---:|\n");
	rm_store(dir);
	struct kv *s = open_store(dir, KV_SYNC_NONE, NULL);
	double dt = fill(s, NULL);
	printf("| sequential fill | %.0f puts/s |\n", (double)nkeys / dt);
	kv_close(s);

	rm_store(dir);
	s = open_store(dir, KV_SYNC_NONE, NULL);
	dt = fill(s, order);
	printf("| random fill | %.0f puts/s |\n", (double)nkeys / dt);
	kv_stats(s, &st);
	printf("| index memory per key (stats mem_bytes/keys) | %.1f bytes |\n", (double)st.mem_bytes / (double)st.keys);
	printf("| process RSS after the fill | %.0f MiB |\n", (double)rss_kib() / 1024.0);
	double t0 = now_s();
	for (uint64_t i = 0; i < nkeys; i++) {
		make_key(key, order[(i * 7919) % nkeys]);
		if (kv_read(s, key, 16, 0, buf, sizeof buf, &got) || got != 100) {
			fprintf(stderr, "kvbench: read failed\n");
			exit(1);
		}
	}
	dt = now_s() - t0;
	printf("| random read | %.0f gets/s |\n", (double)nkeys / dt);
	kv_flush(s);
	kv_stats(s, &st);
	uint64_t wal_bytes = st.wal_bytes;
	kv_close(s);

	double open_s;
	s = open_store(dir, KV_SYNC_NONE, &open_s);
	printf("| reopen, replaying %.1f MB of log | %.3f s (%.0f MB/s) |\n", (double)wal_bytes / 1e6, open_s,
	       (double)wal_bytes / 1e6 / open_s);
	t0 = now_s();
	if (kv_snapshot(s)) {
		fprintf(stderr, "kvbench: snapshot failed\n");
		exit(1);
	}
	printf("| snapshot of %" PRIu64 " keys | %.3f s |\n", nkeys, now_s() - t0);
	kv_close(s);
	s = open_store(dir, KV_SYNC_NONE, &open_s);
	printf("| reopen from the snapshot | %.3f s |\n", open_s);
	kv_close(s);
	rm_store(dir);

	snprintf(dir, sizeof dir, "%s/empty", base_dir);
	rm_store(dir);
	s = open_store(dir, KV_SYNC_NONE, NULL);
	kv_close(s);
	s = open_store(dir, KV_SYNC_NONE, &open_s);
	printf("| open an empty store | %.2f ms |\n", open_s * 1e3);
	kv_close(s);
	rm_store(dir);
	free(order);
}

int main(int argc, char **argv)
{
	int do_gc = 0, do_fill = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
		else if (!strcmp(argv[i], "--keys") && i + 1 < argc)
			nkeys = strtoull(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--flushes") && i + 1 < argc)
			flushes_per_thread = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--tiny"))
			nkeys = 2000, flushes_per_thread = 5;
		else if (!strcmp(argv[i], "groupcommit"))
			do_gc = 1;
		else if (!strcmp(argv[i], "fill"))
			do_fill = 1;
		else {
			fprintf(stderr, "usage: kvbench [--dir DIR] [--keys N] [--flushes N] [--tiny] [groupcommit] [fill]\n");
			return 2;
		}
	}
	if (!do_gc && !do_fill)
		do_gc = do_fill = 1;
	char cmd[1100];
	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", base_dir);
	if (system(cmd) != 0)
		return 1;
	if (do_gc)
		bench_groupcommit();
	if (do_fill)
		bench_fill();
	return 0;
}
