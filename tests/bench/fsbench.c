/* fsbench.c — the same file-system work on several directories, side by side: a plain
 * directory, a plain FUSE passthrough mount and a kvfs mount on the same disk.
 *
 *   fsbench [--files N] [--mb M] [--threads T] LABEL=DIR [LABEL=DIR...]
 *   fsbench [--files N] [--mb M] [--threads T] PLAIN_DIR KVFS_DIR    (labels plain, kvfs)
 *   fsbench --stream-rounds R [--mb M] LABEL=DIR [LABEL=DIR...]
 *
 * --stream-rounds: only the streaming write (below), R rounds, each round on every directory in
 * turn (so the directories alternate), each figure printed, then the ratios of the last
 * directory to each other one per round and their median, and per MiB written the writing
 * process's CPU time and its time spent waiting for a CPU: the one row issue 11 sets a target on
 * (tests/bench/perf-notes.md, "Streaming write through the mount"), measured without the half
 * hour of the other phases. At most 64 rounds; an odd count has a middle (an even one reports
 * the upper of its two middle values).
 *
 * Phases (each runs on every directory in turn before the next phase starts, so that a burst
 * of noise from other work lands on all of them alike):
 *   create      open(O_CREAT)+write 4 KiB+close, N files in one directory, 1 thread; then
 *               with T threads, N files in all, each thread in its own subdirectory (a shared
 *               directory would measure the directory's lock, not the filesystem's throughput)
 *   create+fsync  the same with fsync before close, N/4 files
 *   stat        each of the N files of the 1-thread create, the first stat since it was
 *               written (a FUSE mount without writeback caching asks the daemon: the kernel
 *               does not trust the size and times it has after a write); then 4 more rounds
 *   read 4K     open+read 4 KiB+close of each of those files (page cache warm)
 *   readdir     20 listings of that N-entry directory
 *   unlink      every one of those files
 *   stream      write M MiB in 1 MiB calls + fsync; read it back cold (page cache dropped;
 *               needs root); random 4 KiB preads, cold and warm (after reading it all once)
 * Prints a markdown table of rates with the last directory divided by each other one, then
 * p50/p99 per operation. Figures are per second of wall time.
 *
 * With --apps, whole applications too, each timed in seconds on every directory:
 *   tar x       extract a tar of /usr/share/doc (made once, outside the directories)
 *   sqlite      10,000 INSERTs, each its own transaction, into a WAL-mode database (sqlite's
 *               default synchronous=FULL: every commit fsyncs the log)
 *   create      100,000 files of 100 bytes in 100 directories
 *   rm -rf      of those
 *   venv        python3 -m venv (copies or links Python and installs pip)
 * and printed as a second table of seconds and time ratios (last directory ÷ each other). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SQLITE
#include <sqlite3.h>
#endif

#include "bench_util.h"

#define MAXDIRS 4
#define MAXTHREADS 64

static unsigned nfiles = 2000;
static unsigned mb = 256;
static int nthreads = 8;
static int apps;
static unsigned stream_rounds;
static const char *tarball = "/tmp/fsbench-usr-share-doc.tar";

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

/* ---- per-file operations, run by 1..T threads over a range of files ----------------------- */

enum op { OP_CREATE, OP_CREATE_FSYNC, OP_STAT, OP_READ, OP_UNLINK };

struct job {
	enum op op;
	char dir[2304]; /* the files are dir/fNNNNNN */
	unsigned n;
	double *lat;
};

static void *job_thread(void *arg)
{
	struct job *j = arg;
	char p[2400], buf[4096];
	struct stat st;

	memset(buf, 'c', sizeof buf);
	for (unsigned i = 0; i < j->n; i++) {
		double t0 = bench_now();
		int fd;

		/* stat goes round the files as many times as it is asked to */
		snprintf(p, sizeof p, "%s/f%06u", j->dir, j->op == OP_STAT ? i % nfiles : i);
		switch (j->op) {
		case OP_CREATE:
		case OP_CREATE_FSYNC:
			fd = open(p, O_CREAT | O_WRONLY | O_TRUNC, 0644);
			if (fd < 0)
				die("create", p);
			if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
				die("write", p);
			if (j->op == OP_CREATE_FSYNC && fsync(fd) < 0)
				die("fsync", p);
			if (close(fd) < 0)
				die("close", p);
			break;
		case OP_STAT:
			if (stat(p, &st) < 0)
				die("stat", p);
			break;
		case OP_READ:
			fd = open(p, O_RDONLY);
			if (fd < 0)
				die("open", p);
			if (read(fd, buf, sizeof buf) != (ssize_t)sizeof buf)
				die("read", p);
			close(fd);
			break;
		case OP_UNLINK:
			if (unlink(p) < 0)
				die("unlink", p);
			break;
		}
		j->lat[i] = bench_now() - t0;
	}
	return NULL;
}

/* Runs op over n files with `threads` threads: dir/sub when 1 thread, dir/sub/tK (one each)
 * otherwise. Returns ops/s; p50/p99 in seconds. */
static double run_job(const char *dir, const char *sub, enum op op, unsigned n, int threads, int mk,
		      double *p50, double *p99)
{
	struct job *j = calloc((size_t)threads, sizeof(*j));
	pthread_t th[MAXTHREADS];
	unsigned per = n / (unsigned)threads ? n / (unsigned)threads : 1;
	double *lat = calloc((size_t)per * (size_t)threads, sizeof(*lat)), t0, rate;
	char p[2048];

	if (!j || !lat)
		die("malloc", "");
	snprintf(p, sizeof p, "%s/%s", dir, sub);
	if (mk && mkdir(p, 0755) < 0)
		die("mkdir", p);
	for (int t = 0; t < threads; t++) {
		j[t].op = op;
		j[t].n = per;
		j[t].lat = lat + (size_t)t * per;
		if (threads == 1)
			snprintf(j[t].dir, sizeof j[t].dir, "%s", p);
		else
			snprintf(j[t].dir, sizeof j[t].dir, "%s/t%02d", p, t);
		if (threads > 1 && mk && mkdir(j[t].dir, 0755) < 0)
			die("mkdir", j[t].dir);
	}
	t0 = bench_now();
	for (int t = 0; t < threads; t++)
		if (pthread_create(&th[t], NULL, job_thread, &j[t]))
			die("pthread_create", "");
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
	rate = (double)per * threads / (bench_now() - t0);
	*p50 = bench_pct(lat, (size_t)per * (size_t)threads, 0.5);
	*p99 = bench_pct(lat, (size_t)per * (size_t)threads, 0.99);
	free(lat);
	free(j);
	return rate;
}

static double readdir_entries(const char *dir, unsigned rounds)
{
	char p[2048];
	unsigned long n = 0;
	double t0 = bench_now();

	snprintf(p, sizeof p, "%s/c1", dir);
	for (unsigned r = 0; r < rounds; r++) {
		DIR *d = opendir(p);

		if (!d)
			die("opendir", p);
		while (readdir(d))
			n++;
		closedir(d);
	}
	return (double)n / (bench_now() - t0);
}

static double stream_write(const char *dir)
{
	char p[2048];
	char *buf = malloc(1 << 20);
	double t0;
	int fd;

	if (!buf)
		die("malloc", "");
	memset(buf, 's', 1 << 20);
	snprintf(p, sizeof p, "%s/stream", dir);
	t0 = bench_now();
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
	return mb * 1.048576 / (bench_now() - t0);
}

static double stream_read(const char *dir)
{
	char p[2048];
	char *buf = malloc(1 << 20);
	double t0;
	ssize_t n;
	uint64_t total = 0;
	int fd;

	if (!buf)
		die("malloc", "");
	snprintf(p, sizeof p, "%s/stream", dir);
	drop_caches();
	t0 = bench_now();
	fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	while ((n = read(fd, buf, 1 << 20)) > 0)
		total += (uint64_t)n;
	close(fd);
	free(buf);
	return (double)total / 1e6 / (bench_now() - t0);
}

/* Random 4 KiB reads of the streamed file; cold: after dropping the page cache. */
static double random_reads(const char *dir, unsigned count, int cold, double *p50, double *p99)
{
	char p[2048], buf[4096];
	uint64_t s = 88172645463325252ull, blocks = (uint64_t)mb * 256;
	double *lat = calloc(count, sizeof(*lat)), t0;
	int fd;

	if (!lat)
		die("malloc", "");
	snprintf(p, sizeof p, "%s/stream", dir);
	if (cold)
		drop_caches();
	fd = open(p, O_RDONLY);
	if (fd < 0)
		die("open", p);
	/* warm: read it all first (the other directories' cold phases dropped the cache) */
	if (!cold) {
		char *big = malloc(1 << 20);

		if (!big)
			die("malloc", "");
		while (read(fd, big, 1 << 20) > 0)
			;
		free(big);
	}
	t0 = bench_now();
	for (unsigned i = 0; i < count; i++) {
		double t1 = bench_now();

		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		if (pread(fd, buf, sizeof buf, (off_t)(s % blocks) * 4096) != (ssize_t)sizeof buf)
			die("pread", p);
		lat[i] = bench_now() - t1;
	}
	t0 = count / (bench_now() - t0);
	close(fd);
	*p50 = bench_pct(lat, count, 0.5);
	*p99 = bench_pct(lat, count, 0.99);
	free(lat);
	return t0;
}

/* ---- whole applications ------------------------------------------------------------------ */

/* Runs a shell command; its wall time in seconds, or -1 when it failed (said on stderr). */
static double shell(const char *cmd)
{
	double t0 = bench_now();
	int status = system(cmd);

	if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "fsbench: '%s' failed (status 0x%x)\n", cmd, status);
		return -1;
	}
	return bench_now() - t0;
}

static double app_tar(const char *dir)
{
	char cmd[8192];

	snprintf(cmd, sizeof cmd, "mkdir -p '%s/tar' && tar -xf '%s' -C '%s/tar'", dir, tarball, dir);
	return shell(cmd);
}

#define SQLITE_ROWS 10000

static double app_sqlite(const char *dir)
{
	char path[2400];
	double t0;

	snprintf(path, sizeof path, "%s/bench.sqlite", dir);
#ifdef HAVE_SQLITE
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open(path, &db);

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER PRIMARY KEY, "
				  "v TEXT)", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "INSERT INTO t(v) VALUES(?)", -1, &st, NULL);
	t0 = bench_now();
	for (int i = 0; rc == SQLITE_OK && i < SQLITE_ROWS; i++) {
		/* autocommit: one transaction, one WAL commit, per row */
		sqlite3_bind_text(st, 1, "a row of about fifty bytes of text, as a log might", -1,
				  SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
		sqlite3_reset(st);
	}
	t0 = bench_now() - t0;
	if (rc != SQLITE_OK)
		fprintf(stderr, "fsbench: sqlite on %s: %s\n", path, sqlite3_errmsg(db));
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc == SQLITE_OK ? t0 : -1;
#else
	char cmd[8192];

	(void)t0;
	snprintf(cmd, sizeof cmd, "(echo 'PRAGMA journal_mode=WAL; CREATE TABLE t(k INTEGER "
		 "PRIMARY KEY, v TEXT);'; for i in $(seq %d); do echo \"INSERT INTO t(v) VALUES('a "
		 "row');\"; done) | sqlite3 '%s' >/dev/null", SQLITE_ROWS, path);
	return shell(cmd);
#endif
}

#define MANY_DIRS 100
#define MANY_PER_DIR 1000

static double app_create(const char *dir)
{
	char p[2400];
	double t0 = bench_now();

	snprintf(p, sizeof p, "%s/many", dir);
	if (mkdir(p, 0755) < 0)
		die("mkdir", p);
	for (int d = 0; d < MANY_DIRS; d++) {
		snprintf(p, sizeof p, "%s/many/d%03d", dir, d);
		if (mkdir(p, 0755) < 0)
			die("mkdir", p);
		for (int f = 0; f < MANY_PER_DIR; f++) {
			int fd;

			snprintf(p, sizeof p, "%s/many/d%03d/f%04d", dir, d, f);
			fd = open(p, O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0)
				die("create", p);
			if (write(fd, "a small file of one hundred bytes, as source trees and mail "
				  "directories hold them by the thousand..\n", 100) != 100)
				die("write", p);
			if (close(fd) < 0)
				die("close", p);
		}
	}
	return bench_now() - t0;
}

static double app_rmrf(const char *dir)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd, "rm -rf '%s/many'", dir);
	return shell(cmd);
}

static double app_venv(const char *dir)
{
	char cmd[4096];

	snprintf(cmd, sizeof cmd, "python3 -m venv '%s/venv' >/dev/null", dir);
	return shell(cmd);
}

enum app { A_TAR, A_SQLITE, A_CREATE, A_RMRF, A_VENV, NAPPS };

static const char *const app_names[NAPPS] = {
	"tar x of /usr/share/doc", "SQLite WAL, 10,000 single-row transactions",
	"create 100,000 files (100 dirs × 1,000, 100 bytes each)", "rm -rf of those 100,000 files",
	"python3 -m venv",
};

/* A markdown table's head: first, one column a directory (its label, then unit), one a ratio
 * of the last directory's figure to each other's. */
static void ratio_header(const char *first, const char *unit, const char *const *label, int ndirs)
{
	printf("| %s |", first);
	for (int d = 0; d < ndirs; d++)
		printf(" %s%s |", label[d], unit);
	for (int d = 0; d + 1 < ndirs; d++)
		printf(" %s ÷ %s |", label[ndirs - 1], label[d]);
	printf("\n|---|");
	for (int d = 0; d < 2 * ndirs - 1; d++)
		printf("---:|");
	printf("\n");
}

static void apps_table(const char *const label[], const char *const dirs[], int ndirs)
{
	double secs[NAPPS][MAXDIRS];
	char cmd[4096];

	if (access(tarball, R_OK) != 0) {
		snprintf(cmd, sizeof cmd, "tar -cf '%s' -C /usr/share doc 2>/dev/null", tarball);
		if (shell(cmd) < 0)
			fprintf(stderr, "fsbench: could not make %s\n", tarball);
	}
	for (int a = 0; a < NAPPS; a++) {
		for (int d = 0; d < ndirs; d++) {
			char sub[2304];

			snprintf(sub, sizeof sub, "%s/apps", dirs[d]);
			if (mkdir(sub, 0755) < 0 && errno != EEXIST)
				die("mkdir", sub);
			drop_caches(); /* each starts with the same (empty) page cache */
			switch (a) {
			case A_TAR: secs[a][d] = app_tar(sub); break;
			case A_SQLITE: secs[a][d] = app_sqlite(sub); break;
			case A_CREATE: secs[a][d] = app_create(sub); break;
			case A_RMRF: secs[a][d] = app_rmrf(sub); break;
			default: secs[a][d] = app_venv(sub); break;
			}
		}
	}
	printf("\nWhole applications, seconds (less is better), and time ratios:\n\n");
	ratio_header("application", "", label, ndirs);
	for (int a = 0; a < NAPPS; a++) {
		printf("| %s |", app_names[a]);
		for (int d = 0; d < ndirs; d++)
			if (secs[a][d] < 0)
				printf(" failed |");
			else
				printf(" %.2f |", secs[a][d]);
		for (int d = 0; d + 1 < ndirs; d++)
			if (secs[a][d] > 0 && secs[a][ndirs - 1] > 0)
				printf(" %.2f |", secs[a][ndirs - 1] / secs[a][d]);
			else
				printf(" - |");
		printf("\n");
	}
}

/* ---- the table -------------------------------------------------------------------------------- */

enum row {
	R_CREATE1, R_CREATE_T, R_FSYNC1, R_FSYNC_T, R_STAT, R_STAT2, R_READ, R_READDIR, R_UNLINK,
	R_SWRITE, R_SREAD, R_RCOLD, R_RWARM, NROWS
};

static char names[NROWS][96];
static double rate[NROWS][MAXDIRS], p50[NROWS][MAXDIRS], p99[NROWS][MAXDIRS];
static int has_lat[NROWS];

#define MAXROUNDS 64

/* This process's CPU time so far (user + system), seconds. */
static double cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return 0;
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Time this thread has spent runnable but waiting for a CPU, seconds (/proc's schedstat; 0
 * where the kernel keeps none): on a busy machine a FUSE write waits twice per request, for the
 * daemon to be scheduled and then for the writer to be again. */
static double run_delay_seconds(void)
{
	unsigned long long on_cpu, waited;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");
	int n;

	if (!f)
		return 0;
	n = fscanf(f, "%llu %llu", &on_cpu, &waited);
	fclose(f);
	return n == 2 ? (double)waited / 1e9 : 0;
}

/* --stream-rounds: the streaming write alone, the directories alternating round by round. */
static int stream_only(const char *const *label, const char *const *dirs, int ndirs)
{
	static double w[MAXROUNDS][MAXDIRS], cpu[MAXDIRS], waited[MAXDIRS];
	unsigned rounds = stream_rounds;

	ratio_header("round", " MB/s", label, ndirs);
	for (unsigned r = 0; r < rounds; r++) {
		printf("| %u |", r + 1);
		for (int d = 0; d < ndirs; d++) {
			char p[2048];
			double c0 = cpu_seconds(), q0 = run_delay_seconds();

			w[r][d] = stream_write(dirs[d]);
			cpu[d] += cpu_seconds() - c0;
			waited[d] += run_delay_seconds() - q0;
			printf(" %.0f |", w[r][d]);
			/* untimed: each round writes a new file, none truncates the last one */
			snprintf(p, sizeof p, "%s/stream", dirs[d]);
			if (unlink(p) < 0)
				die("unlink", p);
			fflush(stdout);
		}
		for (int d = 0; d + 1 < ndirs; d++)
			printf(" %.2f |", w[r][ndirs - 1] / w[r][d]);
		printf("\n");
	}
	printf("| median |");
	for (int d = 0; d < ndirs; d++) {
		double col[MAXROUNDS];

		for (unsigned r = 0; r < rounds; r++)
			col[r] = w[r][d];
		qsort(col, rounds, sizeof(col[0]), cmp_double);
		printf(" %.0f |", col[rounds / 2]);
	}
	for (int d = 0; d + 1 < ndirs; d++) {
		double col[MAXROUNDS];

		for (unsigned r = 0; r < rounds; r++)
			col[r] = w[r][ndirs - 1] / w[r][d];
		qsort(col, rounds, sizeof(col[0]), cmp_double);
		printf(" %.2f |", col[rounds / 2]);
	}
	/* the writer's own CPU (the copy into the page cache is its system time); a FUSE daemon's
	 * is its own, not counted here */
	printf("\n\nThe writing process's CPU time per MiB written (user + system):");
	for (int d = 0; d < ndirs; d++)
		printf(" %s %.3f ms%s", label[d], cpu[d] * 1e3 / ((double)rounds * mb),
		       d + 1 < ndirs ? "," : ".");
	printf("\nIts time waiting for a CPU per MiB:");
	for (int d = 0; d < ndirs; d++)
		printf(" %s %.3f ms%s", label[d], waited[d] * 1e3 / ((double)rounds * mb),
		       d + 1 < ndirs ? "," : ".");
	printf("\n\n(stream write %u MiB in 1 MiB writes + fsync, %u rounds;", mb, rounds);
	for (int d = 0; d < ndirs; d++)
		printf(" %s: %s", label[d], dirs[d]);
	printf(")\n");
	return 0;
}

int main(int argc, char **argv)
{
	const char *label[MAXDIRS], *dirs[MAXDIRS];
	int ndirs = 0, a = 1;

	while (a + 1 < argc && argv[a][0] == '-') {
		if (!strcmp(argv[a], "--files"))
			nfiles = (unsigned)atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--mb"))
			mb = (unsigned)atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--threads"))
			nthreads = atoi(argv[a + 1]);
		else if (!strcmp(argv[a], "--apps"))
			apps = 1, a--;
		else if (!strcmp(argv[a], "--tarball"))
			tarball = argv[a + 1];
		else if (!strcmp(argv[a], "--stream-rounds"))
			stream_rounds = (unsigned)atoi(argv[a + 1]);
		else
			break;
		a += 2;
	}
	for (; a < argc && ndirs < MAXDIRS; a++, ndirs++) {
		static const char *const bare[MAXDIRS] = { "plain", "kvfs", "dir3", "dir4" };
		char *eq = strchr(argv[a], '=');

		if (!eq || eq == argv[a] || argv[a][0] == '/' || argv[a][0] == '.') {
			/* a bare path (docs/FILESYSTEM.md's "fsbench PLAIN_DIR KVFS_DIR") */
			label[ndirs] = bare[ndirs];
			dirs[ndirs] = argv[a];
			continue;
		}
		*eq = '\0';
		label[ndirs] = argv[a];
		dirs[ndirs] = eq + 1;
	}
	if (a != argc || ndirs < 1 || nfiles < 8 || mb < 1 || nthreads < 1 || nthreads > MAXTHREADS ||
	    stream_rounds > MAXROUNDS) {
		fprintf(stderr, "usage: fsbench [--files N>=8] [--mb M] [--threads T<=%d] [--apps] "
				"[--tarball TAR] [--stream-rounds R<=64] LABEL=DIR [LABEL=DIR...] (at most %d)\n",
			MAXTHREADS, MAXDIRS);
		return 2;
	}
	if (stream_rounds)
		return stream_only(label, dirs, ndirs);
	snprintf(names[R_CREATE1], 96, "create+write 4K+close, 1 thread, files/s");
	snprintf(names[R_CREATE_T], 96, "create+write 4K+close, %d threads, files/s", nthreads);
	snprintf(names[R_FSYNC1], 96, "create+write 4K+fsync+close, 1 thread, files/s");
	snprintf(names[R_FSYNC_T], 96, "create+write 4K+fsync+close, %d threads, files/s", nthreads);
	snprintf(names[R_STAT], 96, "stat, stats/s");
	snprintf(names[R_STAT2], 96, "stat again (4 more rounds), stats/s");
	snprintf(names[R_READ], 96, "open+read 4K+close (warm), files/s");
	snprintf(names[R_READDIR], 96, "readdir of %u entries, entries/s", nfiles);
	snprintf(names[R_UNLINK], 96, "unlink, files/s");
	snprintf(names[R_SWRITE], 96, "stream write %u MiB (+fsync), MB/s", mb);
	snprintf(names[R_SREAD], 96, "stream read (cold), MB/s");
	snprintf(names[R_RCOLD], 96, "random 4K pread (cold), reads/s");
	snprintf(names[R_RWARM], 96, "random 4K pread (warm), reads/s");
	for (int r = 0; r < NROWS; r++)
		has_lat[r] = r != R_READDIR && r != R_SWRITE && r != R_SREAD;

#define EACH(row, expr)                                                      \
	for (int d = 0; d < ndirs; d++) {                                    \
		double l50 = 0, l99 = 0;                                     \
		const char *dir = dirs[d];                                   \
		rate[row][d] = (expr);                                       \
		p50[row][d] = l50;                                           \
		p99[row][d] = l99;                                           \
		(void)dir;                                                   \
	}
	EACH(R_CREATE1, run_job(dir, "c1", OP_CREATE, nfiles, 1, 1, &l50, &l99));
	EACH(R_CREATE_T, run_job(dir, "cT", OP_CREATE, nfiles, nthreads, 1, &l50, &l99));
	EACH(R_FSYNC1, run_job(dir, "s1", OP_CREATE_FSYNC, nfiles / 4, 1, 1, &l50, &l99));
	EACH(R_FSYNC_T, run_job(dir, "sT", OP_CREATE_FSYNC, nfiles / 4, nthreads, 1, &l50, &l99));
	EACH(R_STAT, run_job(dir, "c1", OP_STAT, nfiles, 1, 0, &l50, &l99));
	EACH(R_STAT2, run_job(dir, "c1", OP_STAT, nfiles * 4, 1, 0, &l50, &l99));
	EACH(R_READ, run_job(dir, "c1", OP_READ, nfiles, 1, 0, &l50, &l99));
	EACH(R_READDIR, readdir_entries(dir, 20));
	EACH(R_UNLINK, run_job(dir, "c1", OP_UNLINK, nfiles, 1, 0, &l50, &l99));
	EACH(R_SWRITE, stream_write(dir));
	EACH(R_RCOLD, random_reads(dir, 5000, 1, &l50, &l99));
	EACH(R_SREAD, stream_read(dir)); /* cold, and leaves the file in the page cache */
	EACH(R_RWARM, random_reads(dir, 50000, 0, &l50, &l99));
#undef EACH

	ratio_header("work", "", label, ndirs);
	for (int r = 0; r < NROWS; r++) {
		printf("| %s |", names[r]);
		for (int d = 0; d < ndirs; d++)
			printf(" %.0f |", rate[r][d]);
		for (int d = 0; d + 1 < ndirs; d++)
			printf(" %.2f |", rate[r][d] > 0 ? rate[r][ndirs - 1] / rate[r][d] : 0);
		printf("\n");
	}
	printf("\nLatency per operation, p50 / p99 µs:\n\n| operation |");
	for (int d = 0; d < ndirs; d++)
		printf(" %s |", label[d]);
	printf("\n|---|");
	for (int d = 0; d < ndirs; d++)
		printf("---:|");
	printf("\n");
	for (int r = 0; r < NROWS; r++) {
		const char *unit = strrchr(names[r], ',');

		if (!has_lat[r])
			continue;
		/* the name without its ", unit/s" */
		printf("| %.*s |", unit ? (int)(unit - names[r]) : (int)strlen(names[r]), names[r]);
		for (int d = 0; d < ndirs; d++)
			printf(" %.0f / %.0f |", p50[r][d] * 1e6, p99[r][d] * 1e6);
		printf("\n");
	}
	printf("\n(%u files of 4 KiB, %d threads each in its own subdirectory, %u MiB stream;",
	       nfiles, nthreads, mb);
	for (int d = 0; d < ndirs; d++)
		printf(" %s: %s", label[d], dirs[d]);
	printf(")\n");
	if (apps)
		apps_table(label, dirs, ndirs);
	return 0;
}
