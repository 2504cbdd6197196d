/* test_fsx.c — model-based exercisers of the mount, through the kernel.
 *
 * fsx: six file slots under four directories and a seeded random sequence of reads (holes read
 * as zeros, exact short reads at the end), writes (far past the end, O_APPEND), truncates up and
 * down (by path and descriptor), renames of files (replacing targets, also open ones) and of
 * directories with open files below them, unlinks, fsyncs, closes and reopens (O_TRUNC too),
 * stats (size; mtime not before the write or truncate), mmap reads and msync'd shared writes,
 * snapshots, clean remounts and SIGKILLs of the daemon, each checked byte for byte against an
 * in-memory model. Files unlinked or replaced while open stay in the model as orphans, read and
 * written through their descriptors until closed (FILESYSTEM.md 5). After a SIGKILL the state
 * must be exactly the model: with sync=always at any point, in batch mode right after an fsync.
 * Three runs: batch; sync=always; no kernel caching (timeouts 0) with small log segments and
 * automatic snapshots.
 *
 * tree: a seeded random sequence of mkdir, create, rewrite, rename (files and whole directories,
 * onto existing names, into deeper paths), unlink and rmdir, every call's result or errno
 * checked against a model of the tree and POSIX's rules (as the kernel orders them), with the
 * whole tree walked (readdir + lstat + read) and compared every so often and after remounts
 * and kills; each change must also set its directories' mtime. Two runs: batch (kills after an
 * fsync of the root), and sync=always without kernel caching (kills anywhere).
 *
 * Both print the seed (tu_seed), keep the last OPLOG operations and print them with the op
 * index on a mismatch: `KV_SEED=S build/tests/test_fsx` replays exactly the same operations.
 * KV_FSX_OPS sets the number of operations of each run (KV_SKIP_HUGE, as the sanitizer builds
 * set it, divides the default by 4). */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

static uint64_t seed;
static uint64_t rs; /* this test's generator state, from seed */

static uint64_t rnd(uint64_t n)
{
	return n ? tu_rand(&rs) % n : 0;
}

/* ---- the operation log --------------------------------------------------------------------- */

#define OPLOG 50
static char oplog[OPLOG][256];
static uint64_t opno;      /* index of the operation being run */
static uint64_t logged;    /* lines in the log so far */
static const char *runname = "";

static void __attribute__((format(printf, 1, 2))) logop(const char *fmt, ...)
{
	char *line = oplog[logged++ % OPLOG];
	va_list ap;
	int n = snprintf(line, sizeof(oplog[0]), "#%" PRIu64 " ", opno);

	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(oplog[0]) - (size_t)n, fmt, ap);
	va_end(ap);
}

/* A mismatch: the seed, the op index and the last operations, then the test fails. */
static void __attribute__((format(printf, 1, 2), noreturn)) mismatch(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: MISMATCH at op %" PRIu64 " (seed %" PRIu64 "): %s\n", runname, opno,
		seed, msg);
	fprintf(stderr, "last operations:\n");
	for (uint64_t i = logged > OPLOG ? logged - OPLOG : 0; i < logged; i++)
		fprintf(stderr, "  %s\n", oplog[i % OPLOG]);
	fprintf(stderr, "rerun: KV_SEED=%" PRIu64 " build/tests/test_fsx\n", seed);
	ck_abort_msg("%s: op %" PRIu64 ": %s (seed %" PRIu64 ")", runname, opno, msg, seed);
	abort(); /* not reached */
}

#define EXPECT(cond, ...)                                                                    \
	do {                                                                                 \
		if (!(cond))                                                                 \
			mismatch(__VA_ARGS__);                                               \
	} while (0)

/* The operations of one run: KV_FSX_OPS, else def (a quarter of it under KV_SKIP_HUGE). */
static uint64_t op_count(uint64_t def)
{
	const char *env = getenv("KV_FSX_OPS");

	if (env && env[0])
		return strtoull(env, NULL, 10);
	if (getenv("KV_SKIP_HUGE"))
		return def / 4;
	return def;
}

static void fill_random(uint8_t *p, size_t n)
{
	uint64_t x = tu_rand(&rs);

	for (size_t i = 0; i < n; i++) {
		if (i % 8 == 0)
			x = x * 6364136223846793005ull + 1442695040888963407ull;
		p[i] = (uint8_t)(x >> (8 * (i % 8)));
	}
}

/* dst = a b c (c may be ""), which must fit in cap bytes with its NUL. */
static void set_path(char *dst, size_t cap, const char *a, const char *b, const char *c)
{
	size_t la = strlen(a), lb = strlen(b), lc = strlen(c);

	ck_assert_uint_lt(la + lb + lc, cap);
	memmove(dst, a, la);
	memcpy(dst + la, b, lb);
	memcpy(dst + la + lb, c, lc + 1);
}

/* The first offset where a and b differ, or -1. */
static long first_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] != b[i])
			return (long)i;
	return -1;
}

/* Kills the daemon (SIGKILL) with whatever files are open, lets drop (may be NULL) close their
 * now dead descriptors, cleans the stale mount and mounts again with opts. Whatever the daemon
 * had not acknowledged may be cut as a torn tail; files unlinked while open are deleted at the
 * mount, which may say so. */
static void kill_and_remount(const char *opts, void (*drop)(void))
{
	char *said = NULL;
	int status;

	ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
	status = wait_daemon();
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	if (drop)
		drop();
	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	mount_store_saying(opts, &said);
	EXPECT(said[0] == '\0' || strstr(said, "torn tail") || strstr(said, "unlinked while open"),
	       "remount after SIGKILL said: %s", said);
	free(said);
}

/* p lies strictly below a ("a/b/c" below "a"). */
static int below(const char *p, const char *a)
{
	size_t n = strlen(a);

	return strncmp(p, a, n) == 0 && p[n] == '/';
}

/* ==== fsx ===================================================================================== */

#define NSLOT 6
#define NORPHAN 2
#define MAXLEN (256 * 1024) /* bytes a model file may reach */

struct mfile {
	uint8_t *data; /* MAXLEN bytes; [0, len) is the file */
	size_t len;
	int fd;     /* open descriptor, or -1 */
	int append; /* fd was opened O_APPEND */
	int orphan; /* unlinked or replaced while open: only the descriptor reaches it */
};

struct slot {
	char path[64]; /* below the mount point */
	int exists;
	struct mfile f;
};

/* The directories: the root and three below it (one nested), renamed as the run goes. */
#define NDIRS 4
static const char *const fsx_dirs0[NDIRS] = { "", "d0", "d1", "d0/sub" };
static char fsx_dirs[NDIRS][64];

static struct slot slots[NSLOT];
static struct mfile orphans[NORPHAN]; /* files unlinked or replaced while open; fd -1: unused */
static uint64_t fresh_names;
static uint8_t *scratch;

struct fsx_run {
	const char *opts;  /* mount options */
	int always;        /* sync=always: every returned operation is durable */
	uint64_t ops;
	uint64_t counts[32];
};

static void fresh_path(char *out, size_t n)
{
	const char *dir = fsx_dirs[rnd(NDIRS)];

	snprintf(out, n, "%s%sf%" PRIu64, dir, dir[0] ? "/" : "", fresh_names++);
}

static void mfile_close(struct mfile *f)
{
	if (f->fd >= 0) {
		logop("close fd %d", f->fd);
		EXPECT(close(f->fd) == 0, "close: %s", strerror(errno));
	}
	f->fd = -1;
}

static void ensure_open(struct slot *s)
{
	int flags = O_RDWR;

	if (s->f.fd >= 0)
		return;
	s->f.append = rnd(4) == 0;
	if (s->f.append)
		flags |= O_APPEND;
	if (rnd(16) == 0)
		flags |= O_TRUNC;
	s->f.fd = open(in_mnt(s->path), flags);
	logop("open %s%s%s = %d", s->path, s->f.append ? " O_APPEND" : "",
	      flags & O_TRUNC ? " O_TRUNC" : "", s->f.fd);
	EXPECT(s->f.fd >= 0, "open %s: %s", s->path, strerror(errno));
	if (flags & O_TRUNC)
		s->f.len = 0;
}

/* A descriptor's file becomes an orphan: it left the namespace while open. */
static void make_orphan(struct slot *s)
{
	struct mfile *o = NULL;
	uint8_t *spare;

	for (int i = 0; i < NORPHAN && !o; i++)
		if (orphans[i].fd < 0)
			o = &orphans[i];
	ck_assert_ptr_nonnull(o); /* the caller made room */
	spare = o->data;
	*o = s->f;
	o->orphan = 1;
	s->f.data = spare;
	s->f.fd = -1;
	s->f.len = 0;
}

/* Room for one more orphan (closing one) before an operation that may make one. */
static void orphan_room(void)
{
	for (int i = 0; i < NORPHAN; i++)
		if (orphans[i].fd < 0)
			return;
	mfile_close(&orphans[rnd(NORPHAN)]);
}

static void check_read(struct mfile *f, const char *what, int fd, size_t off, size_t n)
{
	size_t want = off < f->len ? (f->len - off < n ? f->len - off : n) : 0;
	ssize_t got = pread(fd, scratch, n, (off_t)off);
	long d;

	logop("pread %s off %zu len %zu = %zd", what, off, n, got);
	EXPECT(got >= 0, "pread %s: %s", what, strerror(errno));
	EXPECT((size_t)got == want, "pread %s at %zu of %zu: got %zd bytes, want %zu (size %zu)",
	       what, off, n, got, want, f->len);
	d = first_diff(scratch, f->data + off, want);
	EXPECT(d < 0, "pread %s at %zu: byte %zu is 0x%02x, want 0x%02x", what, off,
	       off + (size_t)d, scratch[d], f->data[off + (size_t)d]);
}

static void check_stat(struct mfile *f, const char *what, const struct stat *st)
{
	EXPECT(S_ISREG(st->st_mode), "%s: mode 0%o is not a regular file", what,
	       (unsigned)st->st_mode);
	EXPECT((size_t)st->st_size == f->len, "%s: size %lld, model %zu", what,
	       (long long)st->st_size, f->len);
}

/* The model after writing n bytes at off (zeros over any hole made). */
static void model_write(struct mfile *f, size_t off, const uint8_t *src, size_t n)
{
	if (off > f->len)
		memset(f->data + f->len, 0, off - f->len);
	memcpy(f->data + off, src, n);
	if (off + n > f->len)
		f->len = off + n;
}

static void model_truncate(struct mfile *f, size_t size)
{
	ck_assert_uint_le(size, MAXLEN);
	if (size > f->len)
		memset(f->data + f->len, 0, size - f->len);
	f->len = size;
}

/* fstat(2) answers for every open file, named or not: the kernel names it by its node, which
 * lives as long as the kernel holds it. A file unlinked or replaced while open shows st_nlink 0,
 * a named one 1 (fsx makes no hard links). */
static int fstat_of(struct mfile *f, const char *what, struct stat *st)
{
	int rc = fstat(f->fd, st);

	EXPECT(rc == 0, "fstat %s: %s", what, strerror(errno));
	EXPECT(st->st_nlink == (f->orphan ? 0u : 1u), "fstat %s: st_nlink %lu, %s", what,
	       (unsigned long)st->st_nlink, f->orphan ? "unlinked while open" : "named");
	return 0;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* A write through f's descriptor: at off, or at the end with O_APPEND. The file's mtime after
 * it is no earlier than the clock before it (daemon and test read the same clock). */
static void do_write(struct mfile *f, const char *what)
{
	size_t off, n, room;
	struct timespec before;
	struct stat st;
	ssize_t got;

	if (rnd(4) == 0)
		off = f->len + rnd(MAXLEN / 2); /* far past the end: a hole */
	else
		off = rnd(f->len + 1);
	if (f->append && f->len >= MAXLEN - 1) {
		logop("ftruncate %s %zu -> %d (room to append)", what, f->len, MAXLEN / 2);
		EXPECT(ftruncate(f->fd, MAXLEN / 2) == 0, "ftruncate %s: %s", what,
		       strerror(errno));
		model_truncate(f, MAXLEN / 2);
	}
	if (f->append)
		off = f->len;
	if (off >= MAXLEN - 1)
		off = f->len < MAXLEN - 1 ? f->len : MAXLEN - 1;
	room = MAXLEN - off;
	n = 1 + (rnd(3) == 0 ? rnd(64 * 1024) : rnd(4096));
	if (n > room)
		n = room;
	fill_random(scratch, n);
	clock_gettime(CLOCK_REALTIME, &before);
	if (f->append)
		got = write(f->fd, scratch, n);
	else
		got = pwrite(f->fd, scratch, n, (off_t)off);
	logop("%s %s off %zu len %zu = %zd", f->append ? "append" : "pwrite", what, off, n, got);
	EXPECT(got == (ssize_t)n, "write %s at %zu of %zu: %zd (%s)", what, off, n, got,
	       got < 0 ? strerror(errno) : "short");
	model_write(f, off, scratch, n);
	if (fstat_of(f, what, &st) != 0) {
		check_read(f, what, f->fd, f->len - 1, 2); /* the size, as a read sees it */
		return;
	}
	check_stat(f, what, &st);
	EXPECT(!ts_before(&st.st_mtim, &before), "%s: mtime %lld.%09ld before the write at "
	       "%lld.%09ld", what, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
	       (long long)before.tv_sec, before.tv_nsec);
}

static size_t pick_size(const struct mfile *f)
{
	switch (rnd(3)) {
	case 0:
		return rnd(f->len + 1);
	case 1: {
		size_t up = f->len + rnd(64 * 1024);

		return up < MAXLEN ? up : MAXLEN;
	}
	default:
		return rnd(MAXLEN / 2);
	}
}

/* mmap reads: the window matches; past the end, the rest of the last page reads as zeros. */
static void do_mmap_read(struct mfile *f, const char *what)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), maplen, off, n;
	uint8_t *m;
	long d;

	if (f->len == 0)
		return;
	maplen = (f->len + page - 1) / page * page;
	m = mmap(NULL, maplen, PROT_READ, MAP_SHARED, f->fd, 0);
	logop("mmap read %s len %zu%s", what, maplen, m == MAP_FAILED ? " failed" : "");
	EXPECT(m != MAP_FAILED, "mmap %s: %s", what, strerror(errno));
	off = rnd(f->len);
	n = 1 + rnd(f->len - off);
	d = first_diff(m + off, f->data + off, n);
	EXPECT(d < 0, "mmap %s at %zu: byte %zu is 0x%02x, want 0x%02x", what, off,
	       off + (size_t)d, m[off + (size_t)d], f->data[off + (size_t)d]);
	for (size_t i = f->len; i < maplen; i++)
		EXPECT(m[i] == 0, "mmap %s: byte %zu past the end (size %zu) is 0x%02x", what, i,
		       f->len, m[i]);
	munmap(m, maplen);
}

/* A shared writable mapping: bytes stored through it, msync'd, are the file's (also after a
 * remount, which the verification after every remount checks). */
static void do_mmap_write(struct mfile *f, const char *what)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), maplen, off, n;
	uint8_t *m;

	if (f->len == 0)
		return;
	maplen = (f->len + page - 1) / page * page;
	m = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	logop("mmap write %s len %zu%s", what, maplen, m == MAP_FAILED ? " failed" : "");
	EXPECT(m != MAP_FAILED, "mmap rw %s: %s", what, strerror(errno));
	off = rnd(f->len);
	n = 1 + rnd(f->len - off < 8192 ? f->len - off : 8192);
	fill_random(scratch, n);
	memcpy(m + off, scratch, n);
	logop("  stored %zu bytes at %zu, msync", n, off);
	EXPECT(msync(m, maplen, MS_SYNC) == 0, "msync %s: %s", what, strerror(errno));
	munmap(m, maplen);
	memcpy(f->data + off, scratch, n);
}

static void close_everything(void)
{
	for (int i = 0; i < NSLOT; i++)
		mfile_close(&slots[i].f);
	for (int i = 0; i < NORPHAN; i++) {
		mfile_close(&orphans[i]);
		orphans[i].len = 0;
	}
}

/* After a SIGKILL: the descriptors are dead (close may fail), the orphans gone for good. */
static void drop_descriptors(void)
{
	for (int i = 0; i < NSLOT; i++) {
		if (slots[i].f.fd >= 0)
			close(slots[i].f.fd);
		slots[i].f.fd = -1;
	}
	for (int i = 0; i < NORPHAN; i++) {
		if (orphans[i].fd >= 0)
			close(orphans[i].fd);
		orphans[i].fd = -1;
		orphans[i].len = 0;
	}
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b); /* strcmp is memcmp order here */
}

/* Everything the model says, through fresh descriptors and listings: each file's bytes and
 * size, and each directory holding exactly the model's names, in key order. */
static void fsx_verify_all(void)
{
	for (int i = 0; i < NSLOT; i++) {
		struct slot *s = &slots[i];
		struct stat st;
		int fd;

		if (!s->exists)
			continue;
		fd = open(in_mnt(s->path), O_RDONLY);
		EXPECT(fd >= 0, "verify: open %s: %s", s->path, strerror(errno));
		EXPECT(fstat(fd, &st) == 0, "verify: fstat %s: %s", s->path, strerror(errno));
		check_stat(&s->f, s->path, &st);
		check_read(&s->f, s->path, fd, 0, s->f.len + 1);
		close(fd);
	}
	for (size_t d = 0; d < NDIRS; d++) {
		char *want[NSLOT + 2];
		size_t nwant = 0, dl = strlen(fsx_dirs[d]), k = 0;
		DIR *dir = opendir(in_mnt(fsx_dirs[d]));
		struct dirent *e;

		for (size_t j = 1; j < NDIRS; j++) {
			const char *p = fsx_dirs[j], *slash = strrchr(p, '/');
			size_t pl = slash ? (size_t)(slash - p) : 0;

			if (pl == dl && memcmp(p, fsx_dirs[d], dl) == 0)
				want[nwant++] = (char *)(slash ? slash + 1 : p);
		}
		for (int i = 0; i < NSLOT; i++) {
			const char *p = slots[i].path, *slash = strrchr(p, '/');
			size_t pl = slash ? (size_t)(slash - p) : 0;

			if (slots[i].exists && pl == dl && memcmp(p, fsx_dirs[d], dl) == 0)
				want[nwant++] = (char *)(slash ? slash + 1 : p);
		}
		qsort(want, nwant, sizeof(want[0]), cmp_names);
		EXPECT(dir != NULL, "verify: opendir '%s': %s", fsx_dirs[d], strerror(errno));
		while ((e = readdir(dir))) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			EXPECT(k < nwant && strcmp(e->d_name, want[k]) == 0,
			       "verify: directory '%s' lists '%s' where the model has '%s'",
			       fsx_dirs[d], e->d_name, k < nwant ? want[k] : "(nothing more)");
			k++;
		}
		closedir(dir);
		EXPECT(k == nwant, "verify: directory '%s' lists %zu names, the model %zu",
		       fsx_dirs[d], k, nwant);
	}
}

/* After a remount: the files, and no key more (root, 3 directories, the files, and /ino, the
 * reserved inode numbers, there since the first directory; no orphan). */
static void fsx_verify_after_mount(void)
{
	uint64_t files = 0;

	for (int i = 0; i < NSLOT; i++)
		files += (uint64_t)slots[i].exists;
	fsx_verify_all();
	EXPECT(stat_of("keys") == 5 + files, "store holds %" PRIu64 " keys, model %" PRIu64,
	       stat_of("keys"), 5 + files);
}

enum {
	FX_READ, FX_READ_FRESH, FX_WRITE, FX_TRUNCATE, FX_FTRUNCATE, FX_RENAME, FX_UNLINK,
	FX_CREATE, FX_FSYNC, FX_CLOSE, FX_STAT, FX_MMAP_READ, FX_MMAP_WRITE, FX_ORPHAN_IO,
	FX_RENAME_DIR, FX_SNAPSHOT, FX_REMOUNT, FX_KILL, FX_VERIFY, FX_NOPS
};
static const char *const fx_names[FX_NOPS] = {
	"read", "read_fresh", "write", "truncate", "ftruncate", "rename", "unlink", "create",
	"fsync", "close", "stat", "mmap_read", "mmap_write", "orphan_io", "rename_dir",
	"snapshot", "remount", "kill", "verify",
};
/* relative weights; remounts and kills are rare because each costs a daemon start */
static const unsigned fx_weight[FX_NOPS] = {
	[FX_READ] = 20, [FX_READ_FRESH] = 4, [FX_WRITE] = 24, [FX_TRUNCATE] = 4,
	[FX_FTRUNCATE] = 5, [FX_RENAME] = 6, [FX_UNLINK] = 2, [FX_CREATE] = 5, [FX_FSYNC] = 4,
	[FX_CLOSE] = 6, [FX_STAT] = 6, [FX_MMAP_READ] = 3, [FX_MMAP_WRITE] = 3,
	[FX_ORPHAN_IO] = 4, [FX_RENAME_DIR] = 2, [FX_SNAPSHOT] = 1,
	[FX_REMOUNT] = 1, [FX_KILL] = 1, [FX_VERIFY] = 1,
};

static int pick_op(void)
{
	unsigned total = 0, r;

	for (int i = 0; i < FX_NOPS; i++)
		total += fx_weight[i];
	r = (unsigned)rnd(total);
	for (int i = 0; i < FX_NOPS; i++) {
		if (r < fx_weight[i])
			return i;
		r -= fx_weight[i];
	}
	return FX_VERIFY;
}

static struct slot *pick_slot(int exists)
{
	int start = (int)rnd(NSLOT);

	for (int i = 0; i < NSLOT; i++) {
		struct slot *s = &slots[(start + i) % NSLOT];

		if (s->exists == exists)
			return s;
	}
	return NULL;
}

/* One operation; 0 when it did something, 1 when it did not apply (no candidate). */
static int fsx_step(struct fsx_run *r, int op)
{
	struct slot *s = NULL, *t;
	struct stat st;
	char to[64];
	size_t size;

	switch (op) {
	case FX_READ:
		if (!(s = pick_slot(1)))
			return 1;
		ensure_open(s);
		check_read(&s->f, s->path, s->f.fd, rnd(s->f.len + 8192), 1 + rnd(rnd(2) ? 4096 :
										  128 * 1024));
		return 0;
	case FX_READ_FRESH: {
		int fd;

		if (!(s = pick_slot(1)))
			return 1;
		fd = open(in_mnt(s->path), O_RDONLY);
		logop("open %s O_RDONLY = %d", s->path, fd);
		EXPECT(fd >= 0, "open %s: %s", s->path, strerror(errno));
		check_read(&s->f, s->path, fd, rnd(s->f.len + 1), 1 + rnd(128 * 1024));
		close(fd);
		return 0;
	}
	case FX_WRITE:
		if (!(s = pick_slot(1)))
			return 1;
		ensure_open(s);
		do_write(&s->f, s->path);
		return 0;
	case FX_TRUNCATE:
	case FX_FTRUNCATE: {
		struct timespec before;
		int rc;

		if (!(s = pick_slot(1)))
			return 1;
		size = pick_size(&s->f);
		clock_gettime(CLOCK_REALTIME, &before);
		if (op == FX_FTRUNCATE) {
			ensure_open(s);
			rc = ftruncate(s->f.fd, (off_t)size);
		} else {
			rc = truncate(in_mnt(s->path), (off_t)size);
		}
		logop("%s %s %zu -> %zu = %d", fx_names[op], s->path, s->f.len, size, rc);
		EXPECT(rc == 0, "%s %s to %zu: %s", fx_names[op], s->path, size, strerror(errno));
		EXPECT(stat(in_mnt(s->path), &st) == 0, "stat %s: %s", s->path, strerror(errno));
		EXPECT(size == s->f.len || !ts_before(&st.st_mtim, &before),
		       "%s: mtime %lld.%09ld before the truncate at %lld.%09ld", s->path,
		       (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)before.tv_sec,
		       before.tv_nsec);
		model_truncate(&s->f, size);
		check_stat(&s->f, s->path, &st);
		return 0;
	}
	case FX_RENAME: {
		int rc;

		if (!(s = pick_slot(1)))
			return 1;
		t = NULL;
		if (rnd(3) == 0) { /* onto another file, replacing it */
			t = &slots[rnd(NSLOT)];
			if (t == s || !t->exists)
				t = NULL;
		}
		if (t) {
			snprintf(to, sizeof(to), "%s", t->path);
			if (t->f.fd >= 0)
				orphan_room();
		} else {
			fresh_path(to, sizeof(to));
		}
		rc = rename(in_mnt(s->path), in_mnt(to));
		logop("rename %s -> %s%s = %d", s->path, to, t ? " (replacing)" : "", rc);
		EXPECT(rc == 0, "rename %s -> %s: %s", s->path, to, strerror(errno));
		if (t) {
			if (t->f.fd >= 0)
				make_orphan(t);
			t->exists = 0;
			t->f.len = 0;
		}
		snprintf(s->path, sizeof(s->path), "%s", to);
		return 0;
	}
	case FX_UNLINK: {
		int rc;

		if (!(s = pick_slot(1)))
			return 1;
		if (s->f.fd >= 0)
			orphan_room();
		rc = unlink(in_mnt(s->path));
		logop("unlink %s%s = %d", s->path, s->f.fd >= 0 ? " (open)" : "", rc);
		EXPECT(rc == 0, "unlink %s: %s", s->path, strerror(errno));
		if (s->f.fd >= 0)
			make_orphan(s);
		s->exists = 0;
		s->f.len = 0;
		EXPECT(stat(in_mnt(s->path), &st) == -1 && errno == ENOENT,
		       "stat %s after unlink: %s", s->path, strerror(errno));
		return 0;
	}
	case FX_CREATE: {
		if (!(s = pick_slot(0)))
			return 1;
		fresh_path(s->path, sizeof(s->path));
		s->f.append = rnd(4) == 0;
		s->f.fd = open(in_mnt(s->path), O_RDWR | O_CREAT | O_EXCL |
			       (s->f.append ? O_APPEND : 0), 0644);
		logop("create %s%s = %d", s->path, s->f.append ? " O_APPEND" : "", s->f.fd);
		EXPECT(s->f.fd >= 0, "create %s: %s", s->path, strerror(errno));
		s->exists = 1;
		s->f.len = 0;
		return 0;
	}
	case FX_FSYNC: {
		int fd, rc, data = (int)rnd(2), dirfd = -1;

		if (rnd(4) == 0) { /* a directory's fsync flushes everything too */
			const char *d = fsx_dirs[rnd(NDIRS)];

			dirfd = open(d[0] ? in_mnt(d) : mt_mnt, O_RDONLY | O_DIRECTORY);
			EXPECT(dirfd >= 0, "open dir '%s': %s", d, strerror(errno));
			fd = dirfd;
		} else {
			if (!(s = pick_slot(1)))
				return 1;
			ensure_open(s);
			fd = s->f.fd;
		}
		rc = data ? fdatasync(fd) : fsync(fd);
		logop("%s %s = %d", data ? "fdatasync" : "fsync", s ? s->path : "(dir)", rc);
		EXPECT(rc == 0, "fsync: %s", strerror(errno));
		if (dirfd >= 0)
			close(dirfd);
		return 0;
	}
	case FX_CLOSE:
		for (int i = 0; i < NSLOT && !s; i++)
			if (slots[(i + opno) % NSLOT].f.fd >= 0)
				s = &slots[(i + opno) % NSLOT];
		if (!s)
			return 1;
		mfile_close(&s->f);
		return 0;
	case FX_STAT:
		if (!(s = pick_slot(1)))
			return 1;
		if (s->f.fd >= 0 && rnd(2)) {
			EXPECT(fstat(s->f.fd, &st) == 0, "fstat %s: %s", s->path, strerror(errno));
		} else {
			EXPECT(stat(in_mnt(s->path), &st) == 0, "stat %s: %s", s->path,
			       strerror(errno));
		}
		logop("stat %s size %lld", s->path, (long long)st.st_size);
		check_stat(&s->f, s->path, &st);
		return 0;
	case FX_MMAP_READ:
	case FX_MMAP_WRITE:
		if (!(s = pick_slot(1)))
			return 1;
		ensure_open(s);
		if (op == FX_MMAP_READ)
			do_mmap_read(&s->f, s->path);
		else
			do_mmap_write(&s->f, s->path);
		return 0;
	case FX_ORPHAN_IO: {
		struct mfile *o = &orphans[rnd(NORPHAN)];

		if (o->fd < 0)
			return 1;
		switch (rnd(5)) {
		case 0:
			check_read(o, "(orphan)", o->fd, rnd(o->len + 1), 1 + rnd(8192));
			break;
		case 1:
			do_write(o, "(orphan)");
			break;
		case 2:
			size = pick_size(o);
			logop("ftruncate (orphan) %zu -> %zu", o->len, size);
			EXPECT(ftruncate(o->fd, (off_t)size) == 0, "ftruncate orphan: %s",
			       strerror(errno));
			model_truncate(o, size);
			break;
		case 3:
			if (fstat_of(o, "(orphan)", &st) == 0) {
				logop("fstat (orphan) size %lld", (long long)st.st_size);
				check_stat(o, "(orphan)", &st);
			}
			break;
		default:
			mfile_close(o);
			o->len = 0;
			break;
		}
		return 0;
	}
	case FX_RENAME_DIR: {
		/* a directory with open files below it: their descriptors follow (FILESYSTEM.md 5) */
		size_t d = 1 + rnd(NDIRS - 1), ol;
		const char *slash = strrchr(fsx_dirs[d], '/');
		char old[64], np[160];
		int rc;

		snprintf(old, sizeof(old), "%s", fsx_dirs[d]);
		ol = strlen(old);
		if (slash)
			snprintf(to, sizeof(to), "%.*s/s%" PRIu64, (int)(slash - fsx_dirs[d]), old,
				 fresh_names++);
		else
			snprintf(to, sizeof(to), "e%" PRIu64, fresh_names++);
		rc = rename(in_mnt(old), in_mnt(to));
		logop("rename dir %s -> %s = %d", old, to, rc);
		EXPECT(rc == 0, "rename %s -> %s: %s", old, to, strerror(errno));
		for (size_t j = 1; j < NDIRS; j++) {
			if (strcmp(fsx_dirs[j], old) != 0 && !below(fsx_dirs[j], old))
				continue;
			set_path(np, sizeof(np), to, fsx_dirs[j] + ol, "");
			set_path(fsx_dirs[j], sizeof(fsx_dirs[j]), np, "", "");
		}
		for (int i = 0; i < NSLOT; i++) {
			if (!slots[i].exists || !below(slots[i].path, old))
				continue;
			set_path(np, sizeof(np), to, slots[i].path + ol, "");
			set_path(slots[i].path, sizeof(slots[i].path), np, "", "");
		}
		return 0;
	}
	case FX_SNAPSHOT: {
		/* later mounts recover from the snapshot plus the log after it */
		int fd = open(in_mnt(".kvfs"), O_WRONLY), rc;

		EXPECT(fd >= 0, "open .kvfs: %s", strerror(errno));
		rc = (int)write(fd, "snapshot\n", 9);
		logop("snapshot = %d", rc);
		EXPECT(rc == 9, "echo snapshot > .kvfs: %s", strerror(errno));
		close(fd);
		return 0;
	}
	case FX_REMOUNT:
		close_everything();
		logop("unmount + mount");
		unmount_store();
		mount_store(r->opts);
		fsx_verify_after_mount();
		return 0;
	case FX_KILL:
		if (!r->always) {
			/* batch: exact only after a flush covering everything */
			int dfd = -1;

			s = pick_slot(1);
			if (s) {
				ensure_open(s);
			} else {
				dfd = open(mt_mnt, O_RDONLY | O_DIRECTORY);
				EXPECT(dfd >= 0, "open the root: %s", strerror(errno));
			}
			logop("fsync %s before the kill", s ? s->path : "(root)");
			EXPECT(fsync(s ? s->f.fd : dfd) == 0, "fsync: %s", strerror(errno));
			if (dfd >= 0)
				close(dfd);
		}
		logop("SIGKILL the daemon, fusermount -uz, mount");
		kill_and_remount(r->opts, drop_descriptors);
		fsx_verify_after_mount();
		return 0;
	case FX_VERIFY:
		logop("verify");
		fsx_verify_all();
		return 0;
	}
	return 1;
}

static void fsx_run(struct fsx_run *r, const char *name, uint64_t salt)
{
	NEED_MOUNT();
	runname = name;
	rs = seed ^ salt;
	opno = logged = fresh_names = 0;
	scratch = malloc(MAXLEN + 8192);
	ck_assert_ptr_nonnull(scratch);
	for (int i = 0; i < NSLOT; i++) {
		memset(&slots[i], 0, sizeof(slots[i]));
		slots[i].f.data = malloc(MAXLEN);
		slots[i].f.fd = -1;
		ck_assert_ptr_nonnull(slots[i].f.data);
	}
	for (int i = 0; i < NORPHAN; i++) {
		memset(&orphans[i], 0, sizeof(orphans[i]));
		orphans[i].data = malloc(MAXLEN);
		orphans[i].fd = -1;
		ck_assert_ptr_nonnull(orphans[i].data);
	}
	mount_store(r->opts);
	for (size_t d = 0; d < NDIRS; d++)
		snprintf(fsx_dirs[d], sizeof(fsx_dirs[d]), "%s", fsx_dirs0[d]);
	for (size_t d = 1; d < NDIRS; d++)
		ck_assert_int_eq(mkdir(in_mnt(fsx_dirs[d]), 0755), 0);
	for (int i = 0; i < NSLOT / 2; i++) {
		opno = 0;
		fsx_step(r, FX_CREATE);
	}
	for (opno = 0; opno < r->ops;) {
		int op = pick_op();

		if (fsx_step(r, op) == 0) {
			r->counts[op]++;
			opno++;
		}
	}
	close_everything();
	logop("final unmount + mount");
	unmount_store();
	mount_store(r->opts);
	fsx_verify_after_mount();
	unmount_store();
	fprintf(stderr, "%s:", name);
	for (int i = 0; i < FX_NOPS; i++)
		fprintf(stderr, " %s %" PRIu64, fx_names[i], r->counts[i]);
	fprintf(stderr, "\n");
	fprintf(stderr, "fsx operations: %" PRIu64 "\n", r->ops);
	for (int i = 0; i < NSLOT; i++)
		free(slots[i].f.data);
	for (int i = 0; i < NORPHAN; i++)
		free(orphans[i].data);
	free(scratch);
}

/* Default (batch) mode: clean remounts give back everything, and a SIGKILL right after an
 * fsync loses nothing (the fsync covers every earlier write, DURABILITY.md 2.2). */
START_TEST(fsx_batch_mode_matches_the_model_across_remounts_and_kills)
{
	struct fsx_run r = { .opts = NULL, .always = 0, .ops = op_count(1500) };

	fsx_run(&r, "fsx batch", 0x6673780001ull);
}
END_TEST

/* No kernel caching of names or attributes: every stat, size and lookup is the daemon's. And
 * small log segments and automatic snapshots, so that mounts recover across both. */
START_TEST(fsx_uncached_matches_the_model)
{
	struct fsx_run r = { .opts = "entry_timeout=0,attr_timeout=0,negative_timeout=0,"
				     "segment_bytes=256k,snapshot_wal_bytes=1M",
			     .always = 0, .ops = op_count(1000) };

	fsx_run(&r, "fsx uncached", 0x6673780003ull);
}
END_TEST

/* sync=always: every operation that returned is durable (DURABILITY.md 2.3, FILESYSTEM.md 6),
 * so a SIGKILL between any two operations, with files open, leaves exactly the model. */
START_TEST(fsx_sync_always_matches_the_model_after_any_kill)
{
	struct fsx_run r = { .opts = "sync=always", .always = 1, .ops = op_count(800) };

	fsx_run(&r, "fsx sync=always", 0x6673780002ull);
}
END_TEST

/* ==== tree ==================================================================================== */

#define TMAX 96
#define TPATH 200

struct tnode {
	char path[TPATH];
	int dir;
	uint8_t *data;
	size_t len;
};

static struct tnode tn[TMAX];
static int ntn;
static const char *tree_opts; /* mount options of this run */
static int tree_always;       /* sync=always: kills need no fsync first */

static struct tnode *tfind(const char *path)
{
	for (int i = 0; i < ntn; i++)
		if (strcmp(tn[i].path, path) == 0)
			return &tn[i];
	return NULL;
}

static int has_children(const char *path)
{
	for (int i = 0; i < ntn; i++)
		if (below(tn[i].path, path))
			return 1;
	return 0;
}

static void tremove(struct tnode *n)
{
	free(n->data);
	*n = tn[--ntn];
}

/* The errno a lookup of path's parent gives: ENOENT for a missing component, ENOTDIR for one
 * that is a file; 0 when the parent is a directory. */
static int parent_err(const char *path)
{
	char pre[TPATH];

	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		const struct tnode *n;

		snprintf(pre, sizeof(pre), "%.*s", (int)(s - path), path);
		n = tfind(pre);
		if (!n)
			return ENOENT;
		if (!n->dir)
			return ENOTDIR;
	}
	return 0;
}

/* "a-", "a-x", "a-x-", "a-x.y", "a.b" sort between "a" and "a/...": listings must still show
 * each once, whatever lies below each (FILESYSTEM.md 2, Listing) */
static const char *const tnames[] = { "a", "b", "a-x", "a.b", "zz", "a-", "a-x.y", "a-x-" };
#define NTNAMES (sizeof(tnames) / sizeof(tnames[0]))

/* A path to operate on: mostly below an existing directory, sometimes below a file or a
 * missing name (error cases), sometimes an existing node itself. */
static void tpick_path(char *out)
{
	const char *parent = "";
	uint64_t r = rnd(10);

	if (r < 3 && ntn) {
		snprintf(out, TPATH, "%s", tn[rnd((uint64_t)ntn)].path);
		return;
	}
	if (ntn) {
		for (int tries = 0; tries < 4; tries++) {
			const struct tnode *n = &tn[rnd((uint64_t)ntn)];

			if (n->dir || r == 9) {
				parent = n->path;
				break;
			}
		}
	}
	if (strlen(parent) > TPATH - 16)
		parent = "";
	if (r == 8)
		set_path(out, TPATH, parent, parent[0] ? "/nope/" : "nope/", tnames[rnd(NTNAMES)]);
	else
		set_path(out, TPATH, parent, parent[0] ? "/" : "", tnames[rnd(NTNAMES)]);
}

static void expect_result(const char *what, int rc, int err, int want, int want_alt)
{
	if (want == 0)
		EXPECT(rc == 0, "%s: %s, model says success", what, strerror(err));
	else
		EXPECT(rc == -1 && (err == want || err == want_alt), "%s: %s, model says %s", what,
		       rc == 0 ? "success" : strerror(err), strerror(want));
}

static void tree_write(const char *path, int create, int *rc, int *err)
{
	uint8_t *buf;
	size_t len = rnd(3) ? rnd(3000) : 0;
	int fd;

	buf = malloc(len + 1);
	ck_assert_ptr_nonnull(buf);
	fill_random(buf, len);
	fd = open(in_mnt(path), O_WRONLY | O_TRUNC | (create ? O_CREAT | O_EXCL : 0), 0644);
	*err = errno;
	*rc = fd < 0 ? -1 : 0;
	if (fd >= 0) {
		EXPECT(write(fd, buf, len) == (ssize_t)len, "write %s: %s", path, strerror(errno));
		EXPECT(close(fd) == 0, "close %s: %s", path, strerror(errno));
		struct tnode *n = tfind(path);

		if (!n) {
			ck_assert_int_lt(ntn, TMAX);
			n = &tn[ntn++];
			snprintf(n->path, TPATH, "%s", path);
			n->dir = 0;
			n->data = NULL;
		}
		free(n->data);
		n->data = buf;
		n->len = len;
	} else {
		free(buf);
	}
}

/* rename(from, to) as the model (and POSIX, in the kernel's order) has it: the expected errno
 * in *want (and an equally valid one in *alt), or 0 after changing the model. */
static void tree_rename_model(const char *from, const char *to, int noreplace, int *want,
			      int *alt)
{
	struct tnode *s = tfind(from), *d;
	size_t fl = strlen(from);

	*alt = 0;
	if ((*want = parent_err(from)) || (*want = parent_err(to)))
		return;
	if (!s) {
		*want = ENOENT;
		return;
	}
	if (noreplace && tfind(to)) {
		*want = EEXIST;
		return;
	}
	if (strcmp(from, to) == 0) {
		*want = 0;
		return;
	}
	if (below(to, from)) {
		*want = EINVAL; /* into its own subtree */
		return;
	}
	if (below(from, to)) {
		*want = ENOTEMPTY; /* onto its own ancestor */
		*alt = EEXIST;
		return;
	}
	d = tfind(to);
	if (d) {
		if (s->dir && !d->dir) {
			*want = ENOTDIR;
			return;
		}
		if (!s->dir && d->dir) {
			*want = EISDIR;
			return;
		}
		if (d->dir && has_children(to)) {
			*want = ENOTEMPTY;
			*alt = EEXIST;
			return;
		}
		tremove(d);
		s = tfind(from);
	}
	*want = 0;
	for (int i = 0; i < ntn; i++) {
		char np[TPATH * 2];

		if (strcmp(tn[i].path, from) != 0 && !below(tn[i].path, from))
			continue;
		set_path(np, sizeof(np), to, tn[i].path + fl, "");
		set_path(tn[i].path, TPATH, np, "", "");
	}
	(void)s;
}

static void tree_verify_dir(const char *path)
{
	DIR *dir = opendir(path[0] ? in_mnt(path) : mt_mnt);
	struct dirent *e;
	char prev[256] = "", child[TPATH * 2];
	int seen = 0, want = 0;

	EXPECT(dir != NULL, "verify: opendir '%s': %s", path, strerror(errno));
	while ((e = readdir(dir))) {
		const struct tnode *n;
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		/* key order, so strictly increasing: each entry listed once */
		EXPECT(!seen || strcmp(prev, e->d_name) < 0,
		       "verify: '%s' lists '%s' after '%s'", path, e->d_name, prev);
		snprintf(prev, sizeof(prev), "%s", e->d_name);
		seen++;
		snprintf(child, sizeof(child), "%s%s%s", path, path[0] ? "/" : "", e->d_name);
		n = tfind(child);
		EXPECT(n != NULL, "verify: '%s' exists but not in the model", child);
		EXPECT(lstat(in_mnt(child), &st) == 0, "verify: lstat %s: %s", child,
		       strerror(errno));
		EXPECT(n->dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode),
		       "verify: %s has mode 0%o, the model a %s", child, (unsigned)st.st_mode,
		       n->dir ? "directory" : "file");
		EXPECT(e->d_type == DT_UNKNOWN || e->d_type == (n->dir ? DT_DIR : DT_REG),
		       "verify: %s listed with d_type %d", child, e->d_type);
		if (n->dir) {
			tree_verify_dir(child);
		} else {
			char *data = NULL;
			size_t len = 0;
			int rc = tu_read_file(in_mnt(child), &data, &len);

			EXPECT(rc == 0, "verify: read %s: %s", child, strerror(-rc));
			EXPECT((size_t)st.st_size == n->len && len == n->len,
			       "verify: %s has %zu bytes (stat %lld), the model %zu", child, len,
			       (long long)st.st_size, n->len);
			EXPECT(memcmp(data, n->data, len) == 0, "verify: %s differs at byte %ld",
			       child, first_diff((uint8_t *)data, n->data, len));
			free(data);
		}
	}
	closedir(dir);
	for (int i = 0; i < ntn; i++) {
		const char *p = tn[i].path, *slash = strrchr(p, '/');
		size_t pl = slash ? (size_t)(slash - p) : 0;

		if (pl == strlen(path) && strncmp(p, path, pl) == 0)
			want++;
	}
	EXPECT(seen == want, "verify: '%s' lists %d entries, the model has %d", path, seen, want);
}

static void tree_verify(void)
{
	logop("verify the whole tree (%d nodes)", ntn);
	tree_verify_dir("");
}

enum { TR_MKDIR, TR_CREATE, TR_REWRITE, TR_RENAME, TR_UNLINK, TR_RMDIR, TR_OPEN_DIR_W,
	TR_VERIFY, TR_REMOUNT, TR_KILL, TR_NOPS };
static const char *const tr_names[TR_NOPS] = {
	"mkdir", "create", "rewrite", "rename", "unlink", "rmdir", "open_dir_w", "verify",
	"remount", "kill",
};
static const unsigned tr_weight[TR_NOPS] = {
	[TR_MKDIR] = 14, [TR_CREATE] = 14, [TR_REWRITE] = 6, [TR_RENAME] = 24, [TR_UNLINK] = 8,
	[TR_RMDIR] = 8, [TR_OPEN_DIR_W] = 2, [TR_VERIFY] = 3, [TR_REMOUNT] = 1, [TR_KILL] = 1,
};

/* Creating, removing or renaming an entry sets its directory's mtime (FILESYSTEM.md 4, Times):
 * no earlier than the clock before the operation (the daemon reads the same clock). */
static void check_parent_mtime(const char *path, const struct timespec *before)
{
	const char *slash = strrchr(path, '/');
	char parent[TPATH * 2];
	struct stat st;

	snprintf(parent, sizeof(parent), "%.*s", slash ? (int)(slash - path) : 0, path);
	EXPECT(stat(parent[0] ? in_mnt(parent) : mt_mnt, &st) == 0, "stat '%s': %s", parent,
	       strerror(errno));
	EXPECT(!ts_before(&st.st_mtim, before), "directory '%s' of %s: mtime %lld.%09ld, before "
	       "the change at %lld.%09ld", parent, path, (long long)st.st_mtim.tv_sec,
	       st.st_mtim.tv_nsec, (long long)before->tv_sec, before->tv_nsec);
}

static void tree_step(int op, uint64_t *counts)
{
	char p[TPATH], q[TPATH * 2];
	int rc, err, want, alt = 0;
	struct tnode *n;
	struct timespec before;

	clock_gettime(CLOCK_REALTIME, &before);
	tpick_path(p);
	n = tfind(p);
	switch (op) {
	case TR_MKDIR:
		want = parent_err(p);
		if (!want && n)
			want = EEXIST;
		if (!want && ntn >= TMAX)
			return;
		rc = mkdir(in_mnt(p), 0755);
		err = errno;
		logop("mkdir %s = %d %s", p, rc, rc ? strerror(err) : "");
		expect_result("mkdir", rc, err, want, 0);
		if (!want) {
			check_parent_mtime(p, &before);
			ck_assert_int_lt(ntn, TMAX);
			n = &tn[ntn++];
			snprintf(n->path, TPATH, "%s", p);
			n->dir = 1;
			n->data = NULL;
			n->len = 0;
		}
		break;
	case TR_CREATE:
	case TR_REWRITE:
		want = parent_err(p);
		if (!want && op == TR_CREATE && n)
			want = EEXIST;
		if (!want && op == TR_REWRITE)
			want = !n ? ENOENT : n->dir ? EISDIR : 0;
		if (want == 0 && ntn >= TMAX)
			return;
		tree_write(p, op == TR_CREATE, &rc, &err);
		logop("%s %s = %d %s", tr_names[op], p, rc, rc ? strerror(err) : "");
		expect_result(tr_names[op], rc, err, want, 0);
		if (!want && op == TR_CREATE)
			check_parent_mtime(p, &before);
		break;
	case TR_RENAME: {
		int noreplace;
		/* the target: an existing node, a name in a random directory, or a deeper path
		 * (maybe inside the source's own subtree) */
		uint64_t r = rnd(4);

		if (r == 0 && n && n->dir)
			snprintf(q, sizeof(q), "%s/%s", p, tnames[rnd(NTNAMES)]);
		else
			tpick_path(q); /* TPATH bytes at most */
		if (strlen(q) + 64 > TPATH)
			return;
		/* a directory rename must keep every path below it within the model's bound */
		for (int i = 0; i < ntn; i++)
			if (below(tn[i].path, p) &&
			    strlen(tn[i].path) - strlen(p) + strlen(q) >= TPATH)
				return;
		noreplace = rnd(5) == 0;
		tree_rename_model(p, q, noreplace, &want, &alt);
		rc = renameat2(AT_FDCWD, in_mnt(p), AT_FDCWD, in_mnt(q),
			       noreplace ? RENAME_NOREPLACE : 0);
		err = errno;
		logop("rename%s %s -> %s = %d %s", noreplace ? " NOREPLACE" : "", p, q, rc,
		      rc ? strerror(err) : "");
		expect_result("rename", rc, err, want, alt);
		if (!want && strcmp(p, q) != 0) {
			check_parent_mtime(p, &before);
			check_parent_mtime(q, &before);
		}
		break;
	}
	case TR_UNLINK:
		want = parent_err(p);
		if (!want)
			want = !n ? ENOENT : n->dir ? EISDIR : 0;
		rc = unlink(in_mnt(p));
		err = errno;
		logop("unlink %s = %d %s", p, rc, rc ? strerror(err) : "");
		expect_result("unlink", rc, err, want, 0);
		if (!want) {
			check_parent_mtime(p, &before);
			tremove(n);
		}
		break;
	case TR_RMDIR:
		want = parent_err(p);
		if (!want)
			want = !n ? ENOENT : !n->dir ? ENOTDIR : has_children(p) ? ENOTEMPTY : 0;
		rc = rmdir(in_mnt(p));
		err = errno;
		logop("rmdir %s = %d %s", p, rc, rc ? strerror(err) : "");
		/* POSIX allows EEXIST for a non-empty directory too */
		expect_result("rmdir", rc, err, want, want == ENOTEMPTY ? EEXIST : 0);
		if (!want) {
			check_parent_mtime(p, &before);
			tremove(n);
		}
		break;
	case TR_OPEN_DIR_W:
		if (!n || !n->dir)
			return;
		rc = open(in_mnt(p), O_WRONLY);
		err = errno;
		logop("open %s O_WRONLY = %d %s", p, rc, rc < 0 ? strerror(err) : "");
		if (rc >= 0)
			close(rc);
		expect_result("open a directory for writing", rc < 0 ? -1 : 0, err, EISDIR, 0);
		break;
	case TR_VERIFY:
		tree_verify();
		break;
	case TR_REMOUNT:
		logop("unmount + mount");
		unmount_store();
		mount_store(tree_opts);
		tree_verify();
		/* and /ino (the reserved inode numbers), there since the first mkdir */
		EXPECT(stat_of("keys") == (uint64_t)ntn + 2, "store holds %" PRIu64
		       " keys, the model %d nodes, the root and /ino", stat_of("keys"), ntn);
		break;
	case TR_KILL: {
		/* batch mode: exact once an fsync (here of the root directory) covers all;
		 * sync=always: every operation that returned is durable already */
		if (!tree_always) {
			int dfd = open(mt_mnt, O_RDONLY | O_DIRECTORY);

			EXPECT(dfd >= 0 && fsync(dfd) == 0, "fsync of the root: %s",
			       strerror(errno));
			close(dfd);
			logop("fsync /");
		}
		logop("SIGKILL the daemon, fusermount -uz, mount");
		kill_and_remount(tree_opts, NULL);
		tree_verify();
		break;
	}
	}
	counts[op]++;
}

static void tree_run(const char *name, const char *opts, int always, uint64_t ops,
		     uint64_t salt)
{
	uint64_t counts[TR_NOPS] = { 0 };
	unsigned total = 0;

	NEED_MOUNT();
	runname = name;
	tree_opts = opts;
	tree_always = always;
	rs = seed ^ salt;
	opno = logged = 0;
	ntn = 0;
	for (int i = 0; i < TR_NOPS; i++)
		total += tr_weight[i];
	mount_store(opts);
	/* one node from the start, so the root has its key (FILESYSTEM.md 2) for the key count */
	ck_assert_int_eq(mkdir(in_mnt("a"), 0755), 0);
	tn[ntn].dir = 1;
	snprintf(tn[ntn++].path, TPATH, "a");
	for (opno = 0; opno < ops; opno++) {
		unsigned r = (unsigned)rnd(total);
		int op = 0;

		while (r >= tr_weight[op])
			r -= tr_weight[op++];
		tree_step(op, counts);
	}
	logop("final unmount + mount");
	unmount_store();
	mount_store(opts);
	tree_verify();
	unmount_store();
	fprintf(stderr, "%s:", name);
	for (int i = 0; i < TR_NOPS; i++)
		fprintf(stderr, " %s %" PRIu64, tr_names[i], counts[i]);
	fprintf(stderr, "\ntree operations: %" PRIu64 "\n", ops);
	while (ntn)
		tremove(&tn[0]);
}

START_TEST(tree_workload_matches_the_model_with_posix_errnos)
{
	tree_run("tree", NULL, 0, op_count(1500), 0x7472656501ull);
}
END_TEST

/* No kernel caching of names or attributes: every lookup, stat and listing is the daemon's
 * answer, and every kill needs no fsync (sync=always). */
START_TEST(tree_workload_uncached_sync_always_matches_the_model_after_any_kill)
{
	tree_run("tree uncached sync=always",
		 "sync=always,entry_timeout=0,attr_timeout=0,negative_timeout=0", 1,
		 op_count(800), 0x7472656502ull);
}
END_TEST

/* A directory wider than one scan of the daemon's listing (256 children), of names that sort
 * between each other and their subtrees ("x", "x!", "x-", "x-.", "x.", ..., some of them
 * directories with a child): every name listed once, in key order, before and after a remount. */
static int cmp_cstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void assert_wide_listing(char **names, size_t n)
{
	DIR *dir = opendir(in_mnt("w"));
	struct dirent *e;
	size_t k = 0;

	ck_assert_ptr_nonnull(dir);
	while ((e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		ck_assert_msg(k < n && strcmp(e->d_name, names[k]) == 0,
			      "entry %zu is '%s', want '%s' (seed %" PRIu64 ")", k, e->d_name,
			      k < n ? names[k] : "(end)", seed);
		k++;
	}
	closedir(dir);
	ck_assert_uint_eq(k, n);
}

START_TEST(a_wide_directory_of_prefix_chains_lists_each_name_once)
{
	static const char alphabet[] = "x-.!";
	char *names[1024], path[64];
	size_t n = 0;

	NEED_MOUNT();
	rs = seed ^ 0x77696465ull;
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("w"), 0755), 0);
	for (int tries = 0; tries < 900 && n < 1024; tries++) {
		char name[8];
		size_t len = 1 + rnd(5), i;
		int found = 0;

		for (i = 0; i < len; i++)
			name[i] = alphabet[rnd(4)];
		name[len] = '\0';
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		for (i = 0; i < n && !found; i++)
			found = strcmp(names[i], name) == 0;
		if (found)
			continue;
		names[n++] = strdup(name);
		snprintf(path, sizeof(path), "w/%s", name);
		if (rnd(3) == 0) {
			ck_assert_int_eq(mkdir(in_mnt(path), 0755), 0);
			snprintf(path, sizeof(path), "w/%s/c", name);
		}
		put_file(in_mnt(path), "");
	}
	ck_assert_uint_gt(n, 256);
	qsort(names, n, sizeof(names[0]), cmp_cstr);
	assert_wide_listing(names, n);
	remount();
	assert_wide_listing(names, n);
	unmount_store();
	for (size_t i = 0; i < n; i++)
		free(names[i]);
}
END_TEST

/* Writers through open descriptors while their directories are renamed under them: every
 * write, truncate and read reaches the file wherever it now is (FILESYSTEM.md 5, 9: a directory
 * rename excludes changes through open files' keys, which move with it). Each writer has its own
 * file and model and its own seeded sequence, so the contents are deterministic; only the
 * interleaving with the renames is not. */
#define CW_THREADS 3
#define CW_LEN (64 * 1024)

struct cw_writer {
	int fd;
	uint64_t rs, ops;
	uint8_t model[CW_LEN], buf[CW_LEN];
	size_t len;
	char err[256];
};

static void *cw_main(void *arg)
{
	struct cw_writer *w = arg;

	for (uint64_t i = 0; i < w->ops && !w->err[0]; i++) {
		uint64_t r = tu_rand(&w->rs);
		size_t off = (size_t)(r >> 8) % CW_LEN, n = 1 + (size_t)(r >> 32) % 2048;

		if (n > CW_LEN - off)
			n = CW_LEN - off;
		switch (r % 4) {
		case 0:
		case 1:
			for (size_t k = 0; k < n; k++)
				w->buf[k] = (uint8_t)(r >> (k % 8) * 8) ^ (uint8_t)k;
			if (pwrite(w->fd, w->buf, n, (off_t)off) != (ssize_t)n) {
				snprintf(w->err, sizeof(w->err), "op %" PRIu64 ": pwrite: %s", i,
					 strerror(errno));
				break;
			}
			if (off > w->len)
				memset(w->model + w->len, 0, off - w->len);
			memcpy(w->model + off, w->buf, n);
			if (off + n > w->len)
				w->len = off + n;
			break;
		case 2:
			if (ftruncate(w->fd, (off_t)off) != 0) {
				snprintf(w->err, sizeof(w->err), "op %" PRIu64 ": ftruncate: %s", i,
					 strerror(errno));
				break;
			}
			if (off > w->len)
				memset(w->model + w->len, 0, off - w->len);
			w->len = off;
			break;
		default: {
			ssize_t got = pread(w->fd, w->buf, CW_LEN, 0);

			if (got != (ssize_t)w->len || memcmp(w->buf, w->model, w->len) != 0)
				snprintf(w->err, sizeof(w->err), "op %" PRIu64 ": read %zd bytes, "
					 "model %zu, differ at %ld", i, got, w->len,
					 got < 0 ? -1L : first_diff(w->buf, w->model,
								    (size_t)got < w->len ?
								    (size_t)got : w->len));
			break;
		}
		}
	}
	return NULL;
}

static void cw_verify(struct cw_writer *w, const char *dir, int i)
{
	char path[64], *data = NULL;
	size_t len = 0;

	snprintf(path, sizeof(path), "%s/t%d", dir, i);
	ck_assert_int_eq(tu_read_file(in_mnt(path), &data, &len), 0);
	ck_assert_msg(len == w->len && memcmp(data, w->model, len) == 0,
		      "%s: %zu bytes, model %zu (seed %" PRIu64 ")", path, len, w->len, seed);
	free(data);
}

START_TEST(writers_through_descriptors_follow_concurrent_directory_renames)
{
	static struct cw_writer w[CW_THREADS];
	static const char *const dirs[] = { "p/q", "p/r", "s/q", "s/r" }; /* by (top, sub) */
	pthread_t th[CW_THREADS];
	int top = 0, sub = 0, renames = 0, running, joined[CW_THREADS] = { 0 };

	NEED_MOUNT();
	rs = seed ^ 0x6377ull;
	mount_store(NULL);
	ck_assert_int_eq(mkdir(in_mnt("p"), 0755), 0);
	ck_assert_int_eq(mkdir(in_mnt("p/q"), 0755), 0);
	for (int i = 0; i < CW_THREADS; i++) {
		char path[64];

		memset(&w[i], 0, sizeof(w[i]));
		w[i].rs = seed ^ (0x6377ull + (uint64_t)i);
		w[i].ops = getenv("KV_SKIP_HUGE") ? 400 : 1500;
		snprintf(path, sizeof(path), "p/q/t%d", i);
		w[i].fd = open(in_mnt(path), O_RDWR | O_CREAT | O_EXCL, 0644);
		ck_assert_int_ge(w[i].fd, 0);
		ck_assert_int_eq(pthread_create(&th[i], NULL, cw_main, &w[i]), 0);
	}
	/* rename the top directory or the one below it, to and fro, while they run */
	do {
		char from[8], to[8];

		snprintf(from, sizeof(from), "%s", dirs[top * 2 + sub]);
		if (tu_rand(&rs) % 2) {
			snprintf(from, sizeof(from), "%c", top ? 's' : 'p');
			snprintf(to, sizeof(to), "%c", top ? 'p' : 's');
			top = !top;
		} else {
			snprintf(to, sizeof(to), "%s", dirs[top * 2 + !sub]);
			sub = !sub;
		}
		ck_assert_msg(rename(in_mnt(from), in_mnt(to)) == 0, "rename %s %s: %s", from, to,
			      strerror(errno));
		renames++;
		running = 0;
		for (int i = 0; i < CW_THREADS; i++) {
			if (!joined[i])
				joined[i] = pthread_tryjoin_np(th[i], NULL) == 0;
			running |= !joined[i];
		}
	} while (running);
	for (int i = 0; i < CW_THREADS; i++) {
		ck_assert_msg(w[i].err[0] == '\0', "writer %d: %s (seed %" PRIu64 ")", i, w[i].err,
			      seed);
		ck_assert_int_eq(close(w[i].fd), 0);
		cw_verify(&w[i], dirs[top * 2 + sub], i);
	}
	remount();
	for (int i = 0; i < CW_THREADS; i++)
		cw_verify(&w[i], dirs[top * 2 + sub], i);
	/* root, two directories, the files, /ino: nothing left at an old name */
	ck_assert_uint_eq(stat_of("keys"), 4 + CW_THREADS);
	unmount_store();
	fprintf(stderr, "concurrent writers: %d directory renames under %d writers\n", renames,
		CW_THREADS);
}
END_TEST

/* ==== regressions found by the exercisers ====================================================== */

/* Found by fsx (seed 177927446601200, op 293): the kernel writes a shared writable mapping back
 * through any handle that mapped it, here one opened O_APPEND, and the daemon appended the page
 * instead of writing it at its offset (the file grew by 4096 bytes, the bytes never landed). */
START_TEST(mmap_writeback_through_an_o_append_descriptor_writes_in_place)
{
	char buf[8192], want[8192];
	uint8_t *m;
	struct stat st;
	int fd;

	NEED_MOUNT();
	mount_store(NULL);
	fd = open(in_mnt("f"), O_RDWR | O_CREAT | O_APPEND, 0644);
	ck_assert_int_ge(fd, 0);
	memset(want, 'a', sizeof(want));
	ck_assert_int_eq(write(fd, want, sizeof(want)), (ssize_t)sizeof(want));
	m = mmap(NULL, sizeof(want), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert(m != MAP_FAILED);
	memcpy(m + 100, "mapped", 6);
	memcpy(want + 100, "mapped", 6);
	ck_assert_int_eq(msync(m, sizeof(want), MS_SYNC), 0);
	munmap(m, sizeof(want));
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)sizeof(want));
	ck_assert_int_eq(close(fd), 0);
	remount(); /* what the store holds, not the page cache */
	fd = open(in_mnt("f"), O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(st.st_size, (off_t)sizeof(want));
	ck_assert_int_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(want));
	ck_assert(memcmp(buf, want, sizeof(want)) == 0);
	close(fd);
	unmount_store();
}
END_TEST

int main(void)
{
	Suite *su = suite_create("fsx");
	TCase *fsx = tcase_create("fsx"), *tree = tcase_create("tree");
	TCase *reg = tcase_create("regressions");

	seed = tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	TCase *all[] = { reg, fsx, tree };
	mt_add_cases(su, all, sizeof(all) / sizeof(all[0]), 600);
	tcase_add_test(fsx, fsx_batch_mode_matches_the_model_across_remounts_and_kills);
	tcase_add_test(fsx, fsx_sync_always_matches_the_model_after_any_kill);
	tcase_add_test(fsx, fsx_uncached_matches_the_model);
	tcase_add_test(tree, tree_workload_matches_the_model_with_posix_errnos);
	tcase_add_test(tree, tree_workload_uncached_sync_always_matches_the_model_after_any_kill);
	tcase_add_test(tree, a_wide_directory_of_prefix_chains_lists_each_name_once);
	tcase_add_test(fsx, writers_through_descriptors_follow_concurrent_directory_renames);
	tcase_add_test(reg, mmap_writeback_through_an_o_append_descriptor_writes_in_place);

	return mt_run(su);
}
