/* test_bigstore.c — a store larger than the daemon's memory, and the disk it takes (issue 11).
 *
 * The mount: through a real kvfs mount, a 3 GiB file, a 2 GiB file written at a 1 MiB offset
 * and 20,000 small files are written and fsync'd; the daemon is killed with SIGKILL, the store
 * mounted again (recovery), everything read back byte for byte, then unmounted cleanly, mounted
 * again and read back once more. The daemon's peak RSS (VmHWM) must stay under 512 MiB in each
 * of the three daemons; RSS per GiB stored, per key and the remount times are printed, never
 * asserted (timing never decides a test). Needs root, /dev/fuse and about 12 GiB of free disk
 * under $TMPDIR; skipped, saying why, without them and under the sanitizers (KV_SKIP_HUGE, or a
 * sanitizer the compiler says is on), where 5 GiB through FUSE would take many minutes.
 *
 * The disk: the engine on the real disk (1 MiB segments) writes, overwrites and deletes eight
 * times its live size in one pattern per test (random overwrites inside files, files rewritten
 * from start to end, values created and deleted, 100-byte values overwritten), running the
 * cleaner (kv_clean: the background cleaner's policy, without its throttle) after every quarter
 * of the live size written, pass after pass until it is done; then the log segments must hold at
 * most twice the live bytes plus one segment (kv_stats disk_bytes, and the blocks the segment
 * files really have, less a block per file of rounding). The space reserve and the checkpoint
 * are files of their own, outside that bound, and are printed. Every value is then read back
 * through the store, and again after a reopen. The cleaner's write amplification ((value bytes
 * written + bytes it moved) / value bytes written) is printed, and so is how far over the bound a
 * single pass left the segments. The background cleaner itself is measured by kvbench
 * (tests/bench, "cleaner"), where time may count.
 *
 * Every byte written is a function of the run's seed, the file (or key and generation) and the
 * offset, so reads are checked against the pattern, not against a copy in memory. The seed is
 * printed ("seed: N"); KV_SEED=N reruns it. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "mountutil.h"
#include "testutil.h"

#define KiB ((uint64_t)1 << 10)
#define MiB ((uint64_t)1 << 20)
#define GiB ((uint64_t)1 << 30)

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#endif
#endif
#ifndef UNDER_SANITIZER
#define UNDER_SANITIZER 0
#endif

static uint64_t seed;

/* ---- the pattern ------------------------------------------------------------------------- */

/* Word w (bytes 8w .. 8w+7, little-endian) of stream id: splitmix64 of seed, id and w. */
static uint64_t pat_word(uint64_t id, uint64_t w)
{
	uint64_t z = seed ^ (id * 0x9e3779b97f4a7c15ull) ^ (w * 0xd1b54a32d192ed03ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The bytes [off, off + len) of stream id. */
static void pat_fill(uint8_t *buf, uint64_t id, uint64_t off, size_t len)
{
	size_t i = 0;

	while (i < len && (off + i) % 8) {
		buf[i] = (uint8_t)(pat_word(id, (off + i) / 8) >> (8 * ((off + i) % 8)));
		i++;
	}
	for (; i + 8 <= len; i += 8) {
		uint64_t x = pat_word(id, (off + i) / 8);

		for (int k = 0; k < 8; k++)
			buf[i + k] = (uint8_t)(x >> (8 * k));
	}
	for (; i < len; i++)
		buf[i] = (uint8_t)(pat_word(id, (off + i) / 8) >> (8 * ((off + i) % 8)));
}

/* Index of the first byte of got that differs from stream id at off (want: scratch of len
 * bytes), or -1 when all match. id UINT64_MAX: zeros (a hole). */
static long pat_diff(const uint8_t *got, uint8_t *want, uint64_t id, uint64_t off, size_t len)
{
	if (id == UINT64_MAX)
		memset(want, 0, len);
	else
		pat_fill(want, id, off, len);
	if (!memcmp(got, want, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		if (got[i] != want[i])
			return (long)i;
	return -1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the mount: files ----------------------------------------------------------------------- */

#define BIG_A_SIZE (3 * GiB)       /* "big-3g": stream 1 from offset 0 */
#define BIG_B_AT MiB               /* "big-2g": a hole, then stream 2 from here */
#define BIG_B_LEN (2 * GiB)
#define SMALL_FILES 20000
#define SMALL_DIRS 20
#define SMALL_MAX (16 * KiB)       /* small files are 0 .. SMALL_MAX bytes */
#define SMALL_ID 1000              /* file i is stream SMALL_ID + i */
#define RSS_LIMIT (512 * MiB)
#define FREE_DISK_NEEDED (12 * GiB)
#define IO_CHUNK MiB

static uint64_t small_size(unsigned i)
{
	return pat_word(SMALL_ID + i, UINT64_MAX) % (SMALL_MAX + 1);
}

static const char *small_path(unsigned i)
{
	static char rel[64];

	snprintf(rel, sizeof(rel), "small/d%02u/f%05u", i % SMALL_DIRS, i);
	return in_mnt(rel);
}

/* Writes stream id into path's [at, at + len) with 1 MiB pwrites. */
static void write_stream(const char *path, uint64_t id, uint64_t at, uint64_t len)
{
	uint8_t *buf = malloc(IO_CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);

	ck_assert_ptr_nonnull(buf);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	for (uint64_t off = at; off < at + len; off += IO_CHUNK) {
		size_t n = at + len - off < IO_CHUNK ? (size_t)(at + len - off) : IO_CHUNK;

		pat_fill(buf, id, off, n);
		ck_assert_msg(pwrite(fd, buf, n, (off_t)off) == (ssize_t)n, "pwrite %s at %" PRIu64 ": %s",
			      path, off, strerror(errno));
	}
	ck_assert_int_eq(close(fd), 0);
	free(buf);
}

/* Reads path whole and checks it: size bytes, the hole [0, at) zeros, then stream id. */
static void check_stream(const char *path, uint64_t id, uint64_t at, uint64_t size)
{
	uint8_t *got = malloc(IO_CHUNK), *want = malloc(IO_CHUNK);
	struct stat st;
	int fd = open(path, O_RDONLY);

	ck_assert(got && want);
	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_msg((uint64_t)st.st_size == size, "%s: size %jd, want %" PRIu64, path,
		      (intmax_t)st.st_size, size);
	for (uint64_t off = 0; off < size;) {
		/* a chunk never straddles the end of the hole */
		uint64_t end = off < at ? at : size;
		size_t n = end - off < IO_CHUNK ? (size_t)(end - off) : IO_CHUNK;
		ssize_t r = pread(fd, got, n, (off_t)off);
		long bad;

		ck_assert_msg(r == (ssize_t)n, "pread %s at %" PRIu64 ": %zd (%s)", path, off, r,
			      r < 0 ? strerror(errno) : "short");
		bad = pat_diff(got, want, off < at ? UINT64_MAX : id, off, n);
		ck_assert_msg(bad < 0, "%s: byte %" PRIu64 " is 0x%02x, want 0x%02x", path,
			      off + (uint64_t)bad, got[bad], want[bad]);
		off += n;
	}
	ck_assert_int_eq(close(fd), 0);
	free(got);
	free(want);
}

static uint64_t write_small_files(void)
{
	uint8_t buf[SMALL_MAX];
	uint64_t bytes = 0;
	char rel[32];

	ck_assert_int_eq(mkdir(in_mnt("small"), 0755), 0);
	for (unsigned d = 0; d < SMALL_DIRS; d++) {
		snprintf(rel, sizeof(rel), "small/d%02u", d);
		ck_assert_int_eq(mkdir(in_mnt(rel), 0755), 0);
	}
	for (unsigned i = 0; i < SMALL_FILES; i++) {
		const char *path = small_path(i);
		size_t n = (size_t)small_size(i);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);

		ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
		pat_fill(buf, SMALL_ID + i, 0, n);
		ck_assert_msg(write(fd, buf, n) == (ssize_t)n, "write %s: %s", path, strerror(errno));
		ck_assert_int_eq(close(fd), 0);
		bytes += n;
	}
	return bytes;
}

static void check_small_files(void)
{
	uint8_t got[SMALL_MAX + 1], want[SMALL_MAX + 1];

	for (unsigned i = 0; i < SMALL_FILES; i++) {
		const char *path = small_path(i);
		size_t n = (size_t)small_size(i);
		int fd = open(path, O_RDONLY);
		ssize_t r;
		long bad;

		ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
		r = read(fd, got, sizeof(got)); /* one byte more than it may hold */
		ck_assert_msg(r == (ssize_t)n, "%s: read %zd bytes, want %zu", path, r, n);
		bad = pat_diff(got, want, SMALL_ID + i, 0, n);
		ck_assert_msg(bad < 0, "%s: byte %ld differs", path, bad);
		ck_assert_int_eq(close(fd), 0);
	}
}

static void check_everything(const char *when)
{
	double t0 = now_s(), t1;

	check_stream(in_mnt("big-3g"), 1, 0, BIG_A_SIZE);
	check_stream(in_mnt("big-2g"), 2, BIG_B_AT, BIG_B_AT + BIG_B_LEN);
	t1 = now_s();
	check_small_files();
	fprintf(stderr, "  %s: every byte read back and checked: the big files at %.0f MB/s, the small "
		"ones at %.0f files/s\n", when, (double)(BIG_A_SIZE + BIG_B_AT + BIG_B_LEN) / 1e6 / (t1 - t0),
		SMALL_FILES / (now_s() - t1));
}

/* "VmHWM:" or "VmRSS:" of pid, bytes. */
static uint64_t proc_status_kib(pid_t pid, const char *field)
{
	char path[64], *text = NULL, *p;
	uint64_t kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ck_assert_int_eq(tu_read_file(path, &text, NULL), 0);
	p = strstr(text, field);
	ck_assert_msg(p != NULL, "no %s in %s", field, path);
	kib = strtoull(p + strlen(field), NULL, 10);
	free(text);
	return kib * KiB;
}

/* The daemon's peak RSS so far, printed per GiB stored and per key; under RSS_LIMIT. */
static void check_daemon_memory(const char *when, uint64_t stored)
{
	uint64_t hwm = proc_status_kib(mt_daemon_pid, "VmHWM:");
	uint64_t keys = stat_of("keys"), index = stat_of("mem_bytes");

	fprintf(stderr, "  %s: daemon peak RSS %.1f MiB for %.2f GiB in %" PRIu64 " keys: %.1f MiB per "
		"GiB stored, %.0f bytes per key (the index: %" PRIu64 " bytes, %.0f per key)\n", when,
		(double)hwm / MiB, (double)stored / GiB, keys, (double)hwm / MiB / ((double)stored / GiB),
		(double)hwm / (double)keys, index, (double)index / (double)keys);
	ck_assert_msg(hwm < RSS_LIMIT, "%s: the daemon's peak RSS is %" PRIu64 " MiB (limit %" PRIu64
		      " MiB)", when, hwm / MiB, RSS_LIMIT / MiB);
}

static void fsync_mount(void)
{
	int fd = open(mt_mnt, O_RDONLY | O_DIRECTORY);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fsync(fd), 0);
	ck_assert_int_eq(close(fd), 0);
}

/* Empty when this machine can take the test, else why not. */
static const char *big_skip_reason(void)
{
	static char why[PATH_MAX + 128];
	struct statvfs v;

	if (UNDER_SANITIZER || getenv("KV_SKIP_HUGE"))
		return "a sanitizer build (KV_SKIP_HUGE): 5 GiB through FUSE would take too long";
	if (statvfs(mt_tmp, &v) != 0)
		return "statvfs of the scratch directory failed";
	if ((uint64_t)v.f_bavail * v.f_frsize < FREE_DISK_NEEDED) {
		snprintf(why, sizeof(why), "%s has %.1f GiB free, the test needs %.0f", mt_tmp,
			 (double)v.f_bavail * (double)v.f_frsize / GiB, (double)FREE_DISK_NEEDED / GiB);
		return why;
	}
	return "";
}

START_TEST(gib_files_and_20000_small_files_read_back_after_kill_9_and_remount_in_bounded_memory)
{
	const char *skip;
	char *said = NULL;
	uint64_t stored;
	double t0, t1, t2, dt;
	int status;

	NEED_MOUNT();
	skip = big_skip_reason();
	if (skip[0]) {
		fprintf(stderr, "%s: skipped: %s\n", __func__, skip);
		return;
	}
	mount_store(NULL);
	t0 = now_s();
	write_stream(in_mnt("big-3g"), 1, 0, BIG_A_SIZE);
	write_stream(in_mnt("big-2g"), 2, BIG_B_AT, BIG_B_LEN);
	t1 = now_s();
	stored = BIG_A_SIZE + BIG_B_LEN + write_small_files();
	t2 = now_s();
	fsync_mount(); /* every write before it is durable */
	dt = now_s() - t0;
	fprintf(stderr, "  wrote %.2f GiB and fsync'd in %.1f s: the 3 GiB and 2 GiB files at %.0f MB/s "
		"(1 MiB pwrites), %d small files at %.0f files/s, the fsync %.2f s\n",
		(double)stored / GiB, dt, (double)(BIG_A_SIZE + BIG_B_LEN) / 1e6 / (t1 - t0), SMALL_FILES,
		SMALL_FILES / (t2 - t1), now_s() - t2);
	check_daemon_memory("the daemon that wrote them", stored);

	ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
	status = wait_daemon();
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "daemon status 0x%x", status);
	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	t0 = now_s();
	mount_store_saying(NULL, &said);
	dt = now_s() - t0;
	fprintf(stderr, "  mount after kill -9 (recovery): %.2f s%s%s", dt, said[0] ? "; it said: " : "\n",
		said);
	free(said);
	check_everything("after kill -9");
	check_daemon_memory("the daemon after kill -9 and recovery, having read everything", stored);

	unmount_store();
	t0 = now_s();
	mount_store(NULL);
	dt = now_s() - t0;
	fprintf(stderr, "  clean remount: %.2f s\n", dt);
	check_everything("after a clean remount");
	check_daemon_memory("the daemon after a clean remount, having read everything", stored);
	unmount_store();
}
END_TEST

/* ---- the disk: the cleaner keeps disk use within twice the live bytes ------------------------ */

#define SEG (1 * MiB)        /* small segments: many cleaner decisions in little data */
#define LIVE (32 * MiB)      /* the live size each pattern keeps */
#define CHURN 8              /* written: this many times LIVE */
#define BUF_BYTES (2 * MiB)  /* the largest value or write */
#define BLOCK (4 * KiB)      /* writes are whole blocks, so each block has one generation */
#define FS_BLOCK (4 * KiB)   /* the most a file system block adds to a file's size */

/* The store's contents as data: per key, its size and the generation of each block (the block's
 * bytes are stream (key << 32 | generation) at their offsets); size 0 with no blocks: absent. */
struct model {
	unsigned nkeys;
	uint64_t *size;
	uint32_t **gen;
	uint32_t next_gen;
};

static void model_init(struct model *m, unsigned nkeys)
{
	m->nkeys = nkeys;
	m->size = calloc(nkeys, sizeof(*m->size));
	m->gen = calloc(nkeys, sizeof(*m->gen));
	m->next_gen = 1;
	ck_assert(m->size && m->gen);
}

static void model_free(struct model *m)
{
	for (unsigned k = 0; k < m->nkeys; k++)
		free(m->gen[k]);
	free(m->gen);
	free(m->size);
}

static uint64_t stream_of(unsigned key, uint32_t gen)
{
	return (uint64_t)key << 32 | gen;
}

static void key_name(char *buf, size_t len, unsigned key)
{
	snprintf(buf, len, "key-%06u", key);
}

struct churn {
	const char *pattern;
	uint64_t live; /* the live size it keeps */
	struct kv *s;
	char dir[512];
	struct model m;
	uint64_t rng;
	uint8_t *buf, *want;
	uint64_t since_clean;
	uint64_t value_bytes; /* value bytes this test wrote (puts and writes) */
	/* what the test prints */
	uint64_t cleans, passes, over_after_one, peak_disk, peak_live_at_peak;
	int most_passes;
	double worst_after;    /* disk_bytes / (2 live + SEG) once the cleaner is done, the highest */
	double worst_one_pass; /* the same after the first pass of each clean */
};

static void churn_open(struct churn *c)
{
	struct kv_options o;
	struct kv_report rep;
	int rc;

	kv_options_default(&o);
	o.sync = KV_SYNC_NONE;      /* the disk's page cache is enough: this is about space */
	o.segment_bytes = SEG;
	o.cleaner = 0;              /* the test runs the policy itself, at known points */
	rc = kv_open(&c->s, c->dir, &o, &rep);
	ck_assert_msg(rc == 0, "kv_open %s: %s (problem %d, file %s)", c->dir, strerror(-rc), (int)rep.problem, rep.file);
}

static void churn_begin(struct churn *c, const char *pattern, unsigned nkeys, uint64_t live)
{
	memset(c, 0, sizeof(*c));
	c->pattern = pattern;
	c->rng = seed ^ (uint64_t)strlen(pattern) * 0x51ed27ull;
	ck_assert_int_eq(tu_tmpdir(c->dir, sizeof(c->dir) - 8), 0);
	strcat(c->dir, "/store");
	model_init(&c->m, nkeys);
	c->live = live;
	c->buf = malloc(BUF_BYTES);
	c->want = malloc(BUF_BYTES);
	ck_assert(c->buf && c->want);
	churn_open(c);
}

/* Sum of the blocks the log segments really hold, bytes. */
static uint64_t segment_blocks(const char *dir, uint64_t *reserve, uint64_t *ckpt)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t seg = 0;

	ck_assert_ptr_nonnull(d);
	*reserve = *ckpt = 0;
	while ((e = readdir(d))) {
		char path[1024];
		struct stat st;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
			continue;
		if (!strncmp(e->d_name, "wal-", 4))
			seg += (uint64_t)st.st_blocks * 512;
		else if (!strcmp(e->d_name, "space.reserve"))
			*reserve += (uint64_t)st.st_blocks * 512;
		else if (!strncmp(e->d_name, "ckpt-", 5))
			*ckpt += (uint64_t)st.st_blocks * 512;
	}
	closedir(d);
	return seg;
}

/* The cleaner by the default policy until it is done: a pass, and another while the segments
 * are over the bound and the last pass moved something (a pass that also merges fragmented
 * values writes them anew before the segments they leave are victims, so it can end over the
 * bound; the next pass takes those segments). Then the bound: the segments hold at most twice
 * the live bytes plus one segment, by the store's count and by the file system's. */
static void clean_and_check(struct churn *c)
{
	struct kv_stats st;
	uint64_t moved, reserve, ckpt, blocks, bound;
	int rc, n = 0;

	kv_stats(c->s, &st);
	if (st.disk_bytes > c->peak_disk) {
		c->peak_disk = st.disk_bytes;
		c->peak_live_at_peak = st.live_bytes;
	}
	do {
		rc = kv_clean(c->s, 0, &moved);
		ck_assert_msg(rc == 0, "%s: kv_clean: %s", c->pattern, strerror(-rc));
		n++;
		kv_stats(c->s, &st);
		bound = 2 * st.live_bytes + SEG;
		if (n == 1 && (double)st.disk_bytes / (double)bound > c->worst_one_pass)
			c->worst_one_pass = (double)st.disk_bytes / (double)bound;
		if (n == 1 && st.disk_bytes > bound)
			c->over_after_one++;
	} while (st.disk_bytes > bound && moved > 0 && n < 8);
	c->passes += (uint64_t)n;
	if (n > c->most_passes)
		c->most_passes = n;
	blocks = segment_blocks(c->dir, &reserve, &ckpt);
	if ((double)st.disk_bytes / (double)bound > c->worst_after)
		c->worst_after = (double)st.disk_bytes / (double)bound;
	ck_assert_msg(st.disk_bytes <= bound, "%s: after %d cleaner passes the segments take %" PRIu64
		      " bytes for %" PRIu64 " live (bound %" PRIu64 ")", c->pattern, n, st.disk_bytes,
		      st.live_bytes, bound);
	/* the file system rounds each file up to whole blocks */
	ck_assert_msg(blocks <= bound + st.segments * FS_BLOCK, "%s: after the cleaner the %" PRIu64
		      " segment files hold %" PRIu64 " bytes of blocks for %" PRIu64 " live (bound %"
		      PRIu64 " + a block per file)", c->pattern, st.segments, blocks, st.live_bytes, bound);
	c->since_clean = 0;
	c->cleans++;
}

static void wrote(struct churn *c, uint64_t n)
{
	c->value_bytes += n;
	c->since_clean += n;
	if (c->since_clean >= c->live / 4)
		clean_and_check(c);
}

/* put key whole: a new generation for every block */
static void churn_put(struct churn *c, unsigned key, uint64_t size)
{
	char name[32];
	uint32_t g = c->m.next_gen++;
	uint64_t nb = (size + BLOCK - 1) / BLOCK;

	key_name(name, sizeof(name), key);
	pat_fill(c->buf, stream_of(key, g), 0, (size_t)size);
	ck_assert_int_eq(kv_put(c->s, name, strlen(name), c->buf, size), 0);
	free(c->m.gen[key]);
	c->m.gen[key] = malloc((nb ? nb : 1) * sizeof(uint32_t));
	ck_assert_ptr_nonnull(c->m.gen[key]);
	for (uint64_t b = 0; b < nb; b++)
		c->m.gen[key][b] = g;
	c->m.size[key] = size;
	wrote(c, size);
}

/* write blocks [b0, b0 + nb) of an existing key */
static void churn_write(struct churn *c, unsigned key, uint64_t b0, uint64_t nb)
{
	char name[32];
	uint32_t g = c->m.next_gen++;
	uint64_t off = b0 * BLOCK, len = nb * BLOCK;

	key_name(name, sizeof(name), key);
	ck_assert(off + len <= c->m.size[key]);
	pat_fill(c->buf, stream_of(key, g), off, (size_t)len);
	ck_assert_int_eq(kv_write(c->s, name, strlen(name), off, c->buf, len), 0);
	for (uint64_t b = b0; b < b0 + nb; b++)
		c->m.gen[key][b] = g;
	wrote(c, len);
}

static void churn_del(struct churn *c, unsigned key)
{
	char name[32];

	key_name(name, sizeof(name), key);
	ck_assert_int_eq(kv_del(c->s, name, strlen(name)), 0);
	free(c->m.gen[key]);
	c->m.gen[key] = NULL;
	c->m.size[key] = 0;
}

/* Every key reads back as the model says, block by block; absent keys are absent. */
static void churn_verify(struct churn *c, const char *when)
{
	for (unsigned k = 0; k < c->m.nkeys; k++) {
		char name[32];
		uint64_t size;
		int rc;

		key_name(name, sizeof(name), k);
		rc = kv_stat(c->s, name, strlen(name), &size, NULL, NULL);
		if (!c->m.gen[k]) {
			ck_assert_msg(rc == -ENOENT, "%s, %s: %s is there, deleted", c->pattern, when, name);
			continue;
		}
		ck_assert_msg(rc == 0, "%s, %s: %s: %s", c->pattern, when, name, strerror(-rc));
		ck_assert_uint_eq(size, c->m.size[k]);
		for (uint64_t off = 0; off < size; off += BLOCK) {
			size_t n = size - off < BLOCK ? (size_t)(size - off) : BLOCK, got;
			long bad;

			rc = kv_read(c->s, name, strlen(name), off, c->buf, n, &got);
			ck_assert_msg(rc == 0 && got == n, "%s, %s: read %s at %" PRIu64 ": %s", c->pattern,
				      when, name, off, strerror(-rc));
			bad = pat_diff(c->buf, c->want, stream_of(k, c->m.gen[k][off / BLOCK]), off, n);
			ck_assert_msg(bad < 0, "%s, %s: %s byte %" PRIu64 " differs", c->pattern, when, name,
				      off + (uint64_t)bad);
		}
	}
}

/* The last pass, the figures, every value read back before and after a reopen. */
static void churn_end(struct churn *c)
{
	struct kv_stats st;
	uint64_t reserve, ckpt;
	double wa;

	clean_and_check(c);
	churn_verify(c, "after the cleaner");
	kv_stats(c->s, &st);
	segment_blocks(c->dir, &reserve, &ckpt);
	/* not kv_stats written_bytes: that counts whole record payloads (keys, checksums), the
	 * cleaner's own records included */
	wa = (double)(c->value_bytes + st.cleaner_moved_bytes) / (double)c->value_bytes;
	fprintf(stderr, "  %s: wrote %.0f MiB of values over %.0f MiB live; the cleaner moved %.0f MiB: "
		"write amplification %.2f (%" PRIu64 " cleans, %" PRIu64 " passes, %" PRIu64 " segments "
		"deleted)\n", c->pattern, (double)c->value_bytes / MiB, (double)c->live / MiB,
		(double)st.cleaner_moved_bytes / MiB, wa, c->cleans, c->passes, st.segments_deleted);
	fprintf(stderr, "    segments ÷ (2 x live + %.0f MiB) once the cleaner was done: at most %.2f "
		"(%.1f MiB for %.1f MiB live at the end); after one pass: at most %.2f, over 1 in %" PRIu64
		" of %" PRIu64 " cleans (at most %d passes needed); before a clean: up to %.1f MiB for "
		"%.1f MiB live; beside the segments: the reserve %.1f MiB, the checkpoint %.1f KiB\n",
		(double)SEG / MiB, c->worst_after, (double)st.disk_bytes / MiB,
		(double)st.live_bytes / MiB, c->worst_one_pass, c->over_after_one, c->cleans,
		c->most_passes, (double)c->peak_disk / MiB, (double)c->peak_live_at_peak / MiB,
		(double)reserve / MiB, (double)ckpt / KiB);
	ck_assert_int_eq(kv_close(c->s), 0);
	churn_open(c);
	churn_verify(c, "after a reopen");
	ck_assert_int_eq(kv_close(c->s), 0);
	model_free(&c->m);
	free(c->buf);
	free(c->want);
	ck_assert_int_eq(tu_rmrf(c->dir), 0);
}

static uint64_t rnd(struct churn *c, uint64_t n)
{
	return tu_rand(&c->rng) % n;
}

/* Files of 2 MiB, overwritten in random runs of 1 to 64 blocks at random places. */
START_TEST(random_overwrites_keep_the_segments_within_twice_the_live_bytes)
{
	enum { FILES = LIVE / (2 * MiB) };
	const uint64_t blocks = 2 * MiB / BLOCK;
	struct churn c;

	churn_begin(&c, "random overwrite", FILES, LIVE);
	for (unsigned k = 0; k < FILES; k++)
		churn_put(&c, k, 2 * MiB);
	for (uint64_t done = 0; done < CHURN * LIVE;) {
		unsigned k = (unsigned)rnd(&c, FILES);
		uint64_t nb = 1 + rnd(&c, 64), b0 = rnd(&c, blocks - nb + 1);

		churn_write(&c, k, b0, nb);
		done += nb * BLOCK;
	}
	churn_end(&c);
}
END_TEST

/* The files rewritten from start to end in 64 KiB writes, two at a time (their writes
 * alternate), one pair after another, round and round. */
START_TEST(sequential_rewrites_keep_the_segments_within_twice_the_live_bytes)
{
	enum { FILES = LIVE / (2 * MiB) };
	const uint64_t piece = 64 * KiB / BLOCK, blocks = 2 * MiB / BLOCK;
	struct churn c;

	churn_begin(&c, "sequential rewrite", FILES, LIVE);
	for (unsigned k = 0; k < FILES; k++)
		churn_put(&c, k, 2 * MiB);
	for (uint64_t done = 0, k = 0; done < CHURN * LIVE; k = (k + 2) % FILES)
		for (uint64_t b = 0; b < blocks; b += piece) {
			churn_write(&c, (unsigned)k, b, piece);
			churn_write(&c, (unsigned)k + 1, b, piece);
			done += 2 * piece * BLOCK;
		}
	churn_end(&c);
}
END_TEST

/* Values of 4 to 64 KiB created under random keys while random old ones are deleted, keeping
 * the live bytes near LIVE: most of what is written is deleted again, from every segment. */
START_TEST(deletes_keep_the_segments_within_twice_the_live_bytes)
{
	enum { KEYS = 8192 };
	struct churn c;
	uint64_t live = 0;

	churn_begin(&c, "delete-heavy", KEYS, LIVE);
	for (uint64_t done = 0; done < (CHURN + 1) * LIVE;) {
		unsigned k = (unsigned)rnd(&c, KEYS);
		uint64_t size = BLOCK * (1 + rnd(&c, 16));

		if (c.m.gen[k]) {
			live -= c.m.size[k];
			churn_del(&c, k);
		}
		while (live + size > LIVE) {
			unsigned v = (unsigned)rnd(&c, KEYS);

			if (c.m.gen[v]) {
				live -= c.m.size[v];
				churn_del(&c, v);
			}
		}
		churn_put(&c, k, size);
		live += size;
		done += size;
	}
	churn_end(&c);
}
END_TEST

/* 100-byte values under random keys, overwritten at random: the record around each value
 * (header, operation, key, checksum) is as big as the value. */
START_TEST(small_values_keep_the_segments_within_twice_the_live_bytes)
{
	enum { KEYS = 40000, VLEN = 100 };
	struct churn c;

	churn_begin(&c, "100-byte values", KEYS, (uint64_t)KEYS * VLEN);
	for (unsigned k = 0; k < KEYS; k++)
		churn_put(&c, k, VLEN);
	for (uint64_t done = 0; done < CHURN * c.live; done += VLEN)
		churn_put(&c, (unsigned)rnd(&c, KEYS), VLEN);
	churn_end(&c);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("bigstore");
	TCase *mount = tcase_create("mount"), *disk = tcase_create("disk");

	seed = tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	mt_add_cases(su, &mount, 1, 900);
	tcase_add_test(mount, gib_files_and_20000_small_files_read_back_after_kill_9_and_remount_in_bounded_memory);
	tcase_set_timeout(disk, 600);
	suite_add_tcase(su, disk);
	tcase_add_test(disk, random_overwrites_keep_the_segments_within_twice_the_live_bytes);
	tcase_add_test(disk, sequential_rewrites_keep_the_segments_within_twice_the_live_bytes);
	tcase_add_test(disk, deletes_keep_the_segments_within_twice_the_live_bytes);
	tcase_add_test(disk, small_values_keep_the_segments_within_twice_the_live_bytes);
	return mt_run(su);
}
