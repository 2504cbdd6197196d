/* bench_util.h — what the benchmark programs share: a clock, directories, percentiles, and the
 * disk's own limits (the reference every durable figure is divided by).
 *
 * Everything is static inline: each program is one file plus this header, and a helper one
 * program does not use must not trip -Wunused-function. */
#ifndef KVFS_BENCH_UTIL_H
#define KVFS_BENCH_UTIL_H
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* rm -rf / mkdir -p through the shell: benchmark directories only, never a user's path
 * with a quote in it (the callers build them from --dir and fixed names). */
static inline int bench_rm(const char *dir)
{
	char cmd[1200];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -EIO;
}

static inline int bench_mkdir(const char *dir)
{
	char cmd[1200];

	snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
	return system(cmd) == 0 ? 0 : -EIO;
}

/* 0 .. n-1 in a seeded random order (Fisher-Yates with an LCG); NULL without memory. */
static inline uint64_t *bench_permutation(uint64_t n, uint64_t seed)
{
	uint64_t *p = malloc(n * sizeof(*p));

	if (!p)
		return NULL;
	for (uint64_t i = 0; i < n; i++)
		p[i] = i;
	for (uint64_t i = n ? n - 1 : 0; i > 0; i--) {
		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		uint64_t j = (seed >> 33) % (i + 1), t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return p;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorts v in place and returns the q-quantile (0 <= q < 1); 0 when n is 0. */
static inline double bench_pct(double *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	qsort(v, n, sizeof(*v), bench_cmp_double);
	i = (size_t)((double)n * q);
	return v[i < n ? i : n - 1];
}

/* Empties the page cache so that the next reads of dir's files go to the disk. With
 * whole_machine, as root: sync, then "3" into /proc/sys/vm/drop_caches (every clean page of the
 * machine, not only dir's); returns 1. Otherwise (not root, or not whole_machine: the suite's
 * tiny runs must not empty everyone's cache): fdatasync and posix_fadvise(DONTNEED) on each
 * regular file directly in dir; returns 0. A negative errno when neither worked. */
static inline int bench_drop_caches(const char *dir, int whole_machine)
{
	DIR *d;
	struct dirent *e;
	int fd = whole_machine ? open("/proc/sys/vm/drop_caches", O_WRONLY) : -1;

	if (fd >= 0) {
		int ok;

		sync();
		ok = write(fd, "3\n", 2) == 2;
		close(fd);
		if (ok)
			return 1;
	}
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		char p[1400];
		struct stat st;

		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		if (stat(p, &st) != 0 || !S_ISREG(st.st_mode) || (fd = open(p, O_RDONLY)) < 0)
			continue;
		fdatasync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	closedir(d);
	return 0;
}

/* How bench_drop_caches emptied the cache, for the tables' notes. */
static inline const char *bench_cold_how(int how)
{
	return how > 0 ? "sync + echo 3 > /proc/sys/vm/drop_caches (as root)"
		       : "fdatasync + posix_fadvise(DONTNEED) on each of the store's files (not root, or "
			 "--tiny)";
}

/* ---- the disk's limits -------------------------------------------------------------------- */

struct bench_sync_arg {
	const char *dir;
	int id, n, rc, prealloc;
	double *lat; /* n latencies, seconds */
};

/* One thread: n appends of 4 KiB to its own file, each followed by fdatasync. prealloc: the
 * file is allocated and synced first, so each fdatasync writes data only, no size change (what
 * a log with preallocated segments does). */
static inline void *bench_sync_thread(void *p)
{
	struct bench_sync_arg *a = p;
	char path[1200], buf[4096];
	int fd;

	memset(buf, 'd', sizeof buf);
	snprintf(path, sizeof path, "%s/disk-probe-%d", a->dir, a->id);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | (a->prealloc ? 0 : O_APPEND), 0600);
	if (fd < 0) {
		a->rc = -errno;
		return NULL;
	}
	if (a->prealloc && (posix_fallocate(fd, 0, (off_t)a->n * 4096) != 0 || fsync(fd) != 0)) {
		a->rc = -EIO;
		goto out;
	}
	for (int i = 0; i < a->n; i++) {
		double t0 = bench_now();

		if (pwrite(fd, buf, sizeof buf, (off_t)i * 4096) != (ssize_t)sizeof buf || fdatasync(fd) != 0) {
			a->rc = -errno;
			break;
		}
		a->lat[i] = bench_now() - t0;
	}
out:
	close(fd);
	unlink(path);
	return NULL;
}

/* 4 KiB append + fdatasync with `threads` threads, each appending to its own file in dir
 * (separate files: a shared file would serialise on its inode lock, which is not the disk's
 * limit but one file's), n appends per thread. Returns appends/s over all threads, or a
 * negative errno; p50/p99 (may be NULL) get the per-append latency in seconds. */
static inline double bench_disk_sync(const char *dir, int threads, int n, int prealloc, double *p50,
				     double *p99)
{
	struct bench_sync_arg *a = calloc((size_t)threads, sizeof(*a));
	pthread_t *th = calloc((size_t)threads, sizeof(*th));
	double *lat = calloc((size_t)threads * (size_t)n, sizeof(*lat));
	double t0, rate = -ENOMEM;
	int started = 0;

	if (!a || !th || !lat)
		goto out;
	t0 = bench_now();
	for (; started < threads; started++) {
		a[started] = (struct bench_sync_arg){ dir, started, n, 0, prealloc,
						      lat + (size_t)started * (size_t)n };
		if (pthread_create(&th[started], NULL, bench_sync_thread, &a[started]))
			break;
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	rate = (double)threads * n / (bench_now() - t0);
	for (int i = 0; i < started; i++)
		if (a[i].rc)
			rate = a[i].rc;
	if (started < threads)
		rate = -EAGAIN;
	if (p50)
		*p50 = bench_pct(lat, (size_t)threads * (size_t)n, 0.50);
	if (p99)
		*p99 = bench_pct(lat, (size_t)threads * (size_t)n, 0.99);
out:
	free(a);
	free(th);
	free(lat);
	return rate;
}

/* Sequential write of mb MiB in 1 MiB writes + fdatasync (write_mbs), then, with the file's
 * pages dropped from the page cache (fadvise DONTNEED after the sync), a sequential read
 * (read_mbs). 0 or -errno. */
static inline int bench_disk_stream(const char *dir, unsigned mb, double *write_mbs, double *read_mbs)
{
	char path[1200];
	char *buf = malloc(1 << 20);
	double t0;
	int fd = -1, rc = 0;
	ssize_t got;

	if (!buf)
		return -ENOMEM;
	memset(buf, 's', 1 << 20);
	snprintf(path, sizeof path, "%s/disk-stream", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	t0 = bench_now();
	for (unsigned i = 0; i < mb; i++)
		if (write(fd, buf, 1 << 20) != 1 << 20) {
			rc = -EIO;
			goto out;
		}
	if (fdatasync(fd)) {
		rc = -errno;
		goto out;
	}
	*write_mbs = mb / (bench_now() - t0);
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	close(fd);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	t0 = bench_now();
	while ((got = read(fd, buf, 1 << 20)) > 0)
		;
	*read_mbs = mb / (bench_now() - t0);
out:
	if (fd >= 0)
		close(fd);
	unlink(path);
	free(buf);
	return rc;
}
#endif
