/* fsbench.c — the same file-system work on two directories, side by side: a plain directory
 * and a kvfs mount on the same disk.
 *
 *   fsbench [--files N] [--mb M] PLAIN_DIR KVFS_DIR
 *
 * Each phase runs on PLAIN_DIR, then on KVFS_DIR; figures are per second of wall time.
 * Cold reads drop the page cache first (needs root; skipped with a note otherwise). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static unsigned nfiles = 2000;
static unsigned mb = 256;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "fsbench: %s %s: %s\n", what, path, strerror(errno));
	exit(1);
}

static void drop_caches(void)
{
	int fd;

	sync();
	fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return;
	if (write(fd, "3\n", 2) != 2)
		fprintf(stderr, "fsbench: drop_caches: %s\n", strerror(errno));
	close(fd);
}

static void path(char *buf, size_t len, const char *dir, const char *sub, unsigned i)
{
	snprintf(buf, len, "%s/%s/f%06u", dir, sub, i);
}

static double create_files(const char *dir, const char *sub, unsigned n, int do_fsync)
{
	char p[4096], buf[4096];
	double t0;

	memset(buf, 'c', sizeof(buf));
	snprintf(p, sizeof(p), "%s/%s", dir, sub);
	if (mkdir(p, 0755) < 0)
		die("mkdir", p);
	t0 = now();
	for (unsigned i = 0; i < n; i++) {
		int fd;

		path(p, sizeof(p), dir, sub, i);
		fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
		if (fd < 0)
			die("create", p);
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die("write", p);
		if (do_fsync && fsync(fd) < 0)
			die("fsync", p);
		if (close(fd) < 0)
			die("close", p);
	}
	return n / (now() - t0);
}

static double stat_files(const char *dir, unsigned rounds)
{
	char p[4096];
	struct stat st;
	double t0 = now();

	for (unsigned r = 0; r < rounds; r++)
		for (unsigned i = 0; i < nfiles; i++) {
			path(p, sizeof(p), dir, "c", i);
			if (stat(p, &st) < 0)
				die("stat", p);
		}
	return (double)rounds * nfiles / (now() - t0);
}

static double readdir_entries(const char *dir, unsigned rounds)
{
	char p[4096];
	unsigned long n = 0;
	double t0 = now();

	snprintf(p, sizeof(p), "%s/c", dir);
	for (unsigned r = 0; r < rounds; r++) {
		DIR *d = opendir(p);
		struct dirent *e;

		if (!d)
			die("opendir", p);
		while ((e = readdir(d)))
			n++;
		closedir(d);
	}
	return n / (now() - t0);
}

static double stream_write(const char *dir)
{
	char p[4096];
	char *buf = malloc(1 << 20);
	double t0;
	int fd;

	memset(buf, 's', 1 << 20);
	snprintf(p, sizeof(p), "%s/stream", dir);
	t0 = now();
	fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	if (fd < 0)
		die("create", p);
	for (unsigned i = 0; i < mb; i++)
		if (write(fd, buf, 1 << 20) != 1 << 20)
			die("write", p);
	if (fsync(fd) < 0)
		die("fsync", p);
	close(fd);
	free(buf);
	return mb / (now() - t0);
}

static double stream_read(const char *dir)
{
	char p[4096];
	char *buf = malloc(1 << 20);
	double t0;
	ssize_t n;
	uint64_t total = 0;
	int fd;

	snprintf(p, sizeof(p), "%s/stream", dir);
	drop_caches();
	t0 = now();
	fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	while ((n = read(fd, buf, 1 << 20)) > 0)
		total += (uint64_t)n;
	close(fd);
	free(buf);
	return (double)total / (1 << 20) / (now() - t0);
}

/* Random 4 KiB reads of the streamed file; cold: after dropping the page cache. */
static double random_reads(const char *dir, unsigned count, int cold)
{
	char p[4096], buf[4096];
	uint64_t s = 88172645463325252ull, blocks = (uint64_t)mb * 256;
	double t0;
	int fd;

	snprintf(p, sizeof(p), "%s/stream", dir);
	if (cold)
		drop_caches();
	fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	t0 = now();
	for (unsigned i = 0; i < count; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		if (pread(fd, buf, sizeof(buf), (off_t)(s % blocks) * 4096) != (ssize_t)sizeof(buf))
			die("pread", p);
	}
	close(fd);
	return count / (now() - t0);
}

int main(int argc, char **argv)
{
	const char *dirs[2];
	double r[9][2];
	static const char *const names[9] = {
		"create+write 4K+close  files/s", "  ... with fsync       files/s",
		"stat                   stats/s", "readdir                entries/s",
		"stream write (+fsync)  MB/s", "stream read (cold)     MB/s",
		"4K random read (cold)  reads/s", "4K random read (warm)  reads/s",
		"",
	};
	int a = 1;

	while (a + 1 < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "--files"))
			nfiles = (unsigned)atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--mb"))
			mb = (unsigned)atoi(argv[a + 1]);
		else
			break;
		a += 2;
	}
	if (argc - a != 2) {
		fprintf(stderr, "usage: fsbench [--files N] [--mb M] PLAIN_DIR KVFS_DIR\n");
		return 2;
	}
	dirs[0] = argv[a];
	dirs[1] = argv[a + 1];
	for (int d = 0; d < 2; d++) {
		r[0][d] = create_files(dirs[d], "c", nfiles, 0);
		r[1][d] = create_files(dirs[d], "s", nfiles / 4, 1);
		r[2][d] = stat_files(dirs[d], 5);
		r[3][d] = readdir_entries(dirs[d], 20);
		r[4][d] = stream_write(dirs[d]);
		r[6][d] = random_reads(dirs[d], 5000, 1);
		r[5][d] = stream_read(dirs[d]); /* cold, and leaves the file in the page cache */
		r[7][d] = random_reads(dirs[d], 50000, 0);
	}
	printf("%-32s %12s %12s\n", "", "plain", "kvfs");
	for (int i = 0; i < 8; i++)
		printf("%-32s %12.0f %12.0f\n", names[i], r[i][0], r[i][1]);
	printf("(%u files, %u MiB stream; plain: %s, kvfs: %s)\n", nfiles, mb, dirs[0], dirs[1]);
	return 0;
}
