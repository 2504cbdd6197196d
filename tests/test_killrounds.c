/* test_killrounds.c — the durability contract through the mount, under real crashes.
 *
 * Kill rounds: per round the store is mounted (one store for the whole run, remounted every
 * round, with a seeded mix of sync=always|batch|none, small log segments and automatic
 * snapshots), writer threads create, write, append, overwrite, truncate, rename, unlink and
 * fsync/fdatasync files whose every 1 KiB block names its writer, generation and position
 * (atomic saves: a temporary file written, fsynced and renamed over the final name), and the
 * daemon is SIGKILLed once a seeded number of operations has completed. After fusermount3 -uz
 * and a remount, each writer's files must equal the state after some prefix of that writer's
 * operations that holds every operation a flush acknowledged (with sync=always: every call that
 * returned) and no operation that was never issued — which also means nothing torn: no partial
 * block, no half-done rename, and of an unacknowledged write(2) at most the first pieces the
 * kernel split it into at page boundaries (each piece is one FUSE write, one log record). The
 * two rounds before stay exactly as they were verified (the one before) or removed (the one
 * before that, deleted and fsynced this round). Each round ends with a clean unmount (the daemon
 * exits 0) and a clean `kv_cli --check`.
 *
 * Knobs: KV_KILL_ROUNDS (default 50), KV_SEED (tu_seed), KV_KILL_ROUND=R runs only round R on a
 * fresh store; its workload, options and kill point come from the seed and R alone (the kill
 * lands after the same number of completed operations, though thread interleaving differs).
 * A failing round prints the command that reruns it. Prints `kill rounds: N` at the end.
 *
 * Disk full: the store on a 4 MiB tmpfs, writers fill it until ENOSPC; then SIGKILL or a clean
 * unmount (seeded), remount on the still-full disk, everything fsynced must be there; once the
 * tmpfs is grown writes go on (docs/DURABILITY.md 5.3, docs/FILESYSTEM.md section 6).
 *
 * Sleeps only choose when to kill; waits are hang guards. Needs root and /dev/fuse, else skips. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mountutil.h"
#include "testutil.h"

#define BLK 1024     /* a block: 32-byte header naming it, then seeded bytes */
#define MAXBLK 64    /* blocks per file, at most */
#define DATA_MAX 32  /* the overwritten file stays within this many blocks */
#define WRITERS 4
#define MAX_OPS 8192 /* per writer per round; a writer stops before this */

static uint64_t seed;
static int total_rounds; /* kill rounds run by this test process */

/* ---- self-describing blocks -------------------------------------------------------------- */

/* Block at position pos of a write of generation gen by writer w, in a round seeded rseed. */
static void fill_block(uint8_t *b, uint64_t rseed, unsigned w, uint32_t gen, unsigned pos)
{
	uint64_t s = rseed ^ ((uint64_t)w << 56) ^ ((uint64_t)gen << 16) ^ pos;

	memset(b, 0, 32);
	snprintf((char *)b, 32, "kr w%u g%" PRIu32 " p%u\n", w, gen, pos);
	for (size_t k = 32; k < BLK; k += 8) {
		uint64_t r = tu_rand(&s);

		memcpy(b + k, &r, 8);
	}
}

/* The generation of block pos of a file's contents, after checking the block is exactly what
 * writer w wrote there; -1 (and why, in msg) when it is torn, misplaced or foreign. */
static int64_t check_block(const uint8_t *b, uint64_t rseed, unsigned w, unsigned pos, char *msg,
			   size_t msglen)
{
	uint8_t want[BLK];
	unsigned bw, bp;
	uint32_t gen;
	char head[33];

	memcpy(head, b, 32);
	head[32] = '\0';
	if (sscanf(head, "kr w%u g%" SCNu32 " p%u", &bw, &gen, &bp) != 3) {
		snprintf(msg, msglen, "block %u has no header (torn or foreign): %.20s", pos, head);
		return -1;
	}
	if (bw != w || bp != pos) {
		snprintf(msg, msglen, "block %u says writer %u position %u", pos, bw, bp);
		return -1;
	}
	fill_block(want, rseed, w, gen, pos);
	if (memcmp(want, b, BLK) != 0) {
		snprintf(msg, msglen, "block %u (generation %" PRIu32 ") is torn", pos, gen);
		return -1;
	}
	return gen;
}

/* ---- the model of one writer's files -------------------------------------------------------- */

enum { F_SAVE, F_TMP, F_LOG, F_DATA, NFILES };
static const char *const fname[NFILES] = { "save", "save.tmp", "log", "data" };

struct file_state {
	int exists;
	int n;               /* blocks */
	uint32_t gen[MAXBLK]; /* block p holds generation gen[p] written at position p */
};

struct wstate {
	struct file_state f[NFILES];
};

enum op_kind { OP_OPEN, OP_WRITE, OP_TRUNC, OP_RENAME, OP_UNLINK, OP_SYNC };
static const char *const op_name[] = { "open", "write", "truncate", "rename", "unlink", "sync" };

/* One operation that changes the store atomically (or, OP_SYNC, acknowledges the ones before). */
struct op {
	uint8_t kind;
	uint8_t file, to; /* to: the target of OP_RENAME */
	uint8_t n;        /* OP_OPEN: O_TRUNC; OP_WRITE: blocks; OP_TRUNC: blocks kept */
	uint16_t off;     /* OP_WRITE: first block */
	uint32_t gen;     /* OP_WRITE */
};

static void apply(struct wstate *s, const struct op *o)
{
	struct file_state *f = &s->f[o->file];

	switch (o->kind) {
	case OP_OPEN:
		if (!f->exists || o->n) {
			f->exists = 1;
			f->n = 0;
		}
		break;
	case OP_WRITE:
		for (int k = 0; k < o->n; k++)
			f->gen[o->off + k] = o->gen;
		if (o->off + o->n > f->n)
			f->n = o->off + o->n;
		break;
	case OP_TRUNC:
		f->n = o->n;
		break;
	case OP_RENAME:
		s->f[o->to] = *f;
		memset(f, 0, sizeof(*f));
		break;
	case OP_UNLINK:
		memset(f, 0, sizeof(*f));
		break;
	default:
		break;
	}
}

static int state_eq(const struct wstate *a, const struct wstate *b)
{
	for (int i = 0; i < NFILES; i++) {
		const struct file_state *x = &a->f[i], *y = &b->f[i];

		if (x->exists != y->exists || x->n != y->n ||
		    memcmp(x->gen, y->gen, sizeof(x->gen[0]) * (size_t)x->n) != 0)
			return 0;
	}
	return 1;
}

/* "save:g3*4 log:g1,g1,g2 data:-" (blocks as generations; '-' absent), for failure messages. */
static void describe(const struct wstate *s, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (int i = 0; i < NFILES && at < len; i++) {
		const struct file_state *f = &s->f[i];

		at += (size_t)snprintf(buf + at, len - at, "%s%s:", i ? " " : "", fname[i]);
		if (!f->exists && at < len)
			at += (size_t)snprintf(buf + at, len - at, "-");
		for (int p = 0; p < f->n && at < len; p++) {
			int run = 1;

			while (p + run < f->n && f->gen[p + run] == f->gen[p])
				run++;
			at += (size_t)snprintf(buf + at, len - at, "%sg%" PRIu32 "*%d", p ? "," : "",
					       f->gen[p], run);
			p += run - 1;
		}
		if (f->exists && !f->n && at < len)
			at += (size_t)snprintf(buf + at, len - at, "empty");
	}
}

/* Reads a writer's directory into *s, checking every block; 0, or -1 with the reason in msg. */
static int read_state(const char *dir, uint64_t rseed, unsigned w, struct wstate *s, char *msg,
		      size_t msglen)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	memset(s, 0, sizeof(*s));
	if (!d) {
		snprintf(msg, msglen, "opendir %s: %s", dir, strerror(errno));
		return -1;
	}
	while (rc == 0 && (e = readdir(d))) {
		char path[PATH_MAX * 2], *data = NULL;
		size_t len = 0;
		int i = 0, err;

		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		while (i < NFILES && strcmp(e->d_name, fname[i]) != 0)
			i++;
		if (i == NFILES) {
			snprintf(msg, msglen, "%s/%s: never created", dir, e->d_name);
			rc = -1;
			break;
		}
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		err = tu_read_file(path, &data, &len);
		if (err < 0) {
			snprintf(msg, msglen, "reading %.300s: %s", path, strerror(-err));
			rc = -1;
		} else if (len % BLK) {
			snprintf(msg, msglen, "%.300s: %zu bytes, not whole blocks (torn)", path, len);
			rc = -1;
		} else if (len / BLK > MAXBLK) {
			snprintf(msg, msglen, "%.300s: %zu bytes, longer than ever written", path, len);
			rc = -1;
		}
		s->f[i].exists = 1;
		s->f[i].n = (int)(len / BLK);
		for (int p = 0; rc == 0 && p < s->f[i].n; p++) {
			char why[160];
			int64_t g = check_block((uint8_t *)data + (size_t)p * BLK, rseed, w,
						(unsigned)p, why, sizeof(why));

			if (g < 0) {
				snprintf(msg, msglen, "%.300s: %s", path, why);
				rc = -1;
			}
			s->f[i].gen[p] = (uint32_t)g;
		}
		free(data);
	}
	closedir(d);
	return rc;
}

/* ---- writers ------------------------------------------------------------------------------ */

static atomic_int ops_done; /* operations completed by all writers this round */
static atomic_int killed;   /* the SIGKILL has been sent */
static atomic_int running;  /* writers still going */

struct writer {
	unsigned id;
	uint64_t rseed; /* the round's: block contents */
	uint64_t rng;   /* this writer's choices */
	int sync_always;
	char dir[PATH_MAX];
	char ctl[PATH_MAX + 64];
	struct op *ops;
	int issued;  /* operations started: any of them may be in the store */
	int done;    /* operations that returned success */
	int acked;   /* operations known durable: a prefix of ops */
	uint32_t gen;
	struct wstate cur; /* the model after every issued operation */
	int err, err_op, err_after_kill;
};

/* Records o as issued (from now on it may be in the store) and applies it to the model. */
static void begin(struct writer *w, struct op o)
{
	w->ops[w->issued++] = o;
	apply(&w->cur, &o);
}

/* The outcome of the last issued operation: 0 or -errno. */
static int end(struct writer *w, int rc)
{
	if (rc < 0) {
		w->err = -rc;
		w->err_op = w->issued - 1;
		w->err_after_kill = atomic_load(&killed);
		return rc;
	}
	w->done = w->issued;
	/* a flush acknowledges every earlier write; with sync=always every call does */
	if (w->ops[w->done - 1].kind == OP_SYNC || w->sync_always)
		w->acked = w->done;
	atomic_fetch_add(&ops_done, 1);
	return 0;
}

static unsigned pick(struct writer *w, unsigned n)
{
	return (unsigned)(tu_rand(&w->rng) % n);
}

static void path_of(const struct writer *w, int file, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", w->dir, fname[file]);
}

/* Writes n blocks of a new generation at block off of file (open as fd), as one write(2). */
static int write_blocks(struct writer *w, int fd, int file, int off, int n, uint32_t gen,
			int append)
{
	static __thread uint8_t buf[4 * BLK];
	size_t len = (size_t)n * BLK;
	ssize_t got;

	for (int k = 0; k < n; k++)
		fill_block(buf + (size_t)k * BLK, w->rseed, w->id, gen, (unsigned)(off + k));
	begin(w, (struct op){ .kind = OP_WRITE, .file = (uint8_t)file, .n = (uint8_t)n,
			      .off = (uint16_t)off, .gen = gen });
	got = append ? write(fd, buf, len) : pwrite(fd, buf, len, (off_t)off * BLK);
	/* a short write cannot be modelled: report it as an error */
	return end(w, got == (ssize_t)len ? 0 : got < 0 ? -errno : -EIO);
}

static int sync_fd(struct writer *w, int fd)
{
	begin(w, (struct op){ .kind = OP_SYNC });
	return end(w, (pick(w, 2) ? fsync(fd) : fdatasync(fd)) == 0 ? 0 : -errno);
}

/* fsync of a file or directory by path (any fsync on the mount flushes everything). */
static int sync_path(struct writer *w, const char *path)
{
	int fd, rc;

	begin(w, (struct op){ .kind = OP_SYNC });
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return end(w, -errno);
	rc = fsync(fd) == 0 ? 0 : -errno;
	close(fd);
	return end(w, rc);
}

/* A control-file command ("flush\n", "snapshot\n"): returns once everything before is durable. */
static int control(struct writer *w, const char *cmd)
{
	int fd, rc;

	begin(w, (struct op){ .kind = OP_SYNC });
	fd = open(w->ctl, O_WRONLY);
	if (fd < 0)
		return end(w, -errno);
	rc = write(fd, cmd, strlen(cmd)) == (ssize_t)strlen(cmd) ? 0 : -errno;
	close(fd);
	return end(w, rc);
}

/* What atomic-save programs do: write a temporary file, fsync it (mostly), rename it over the
 * final name, then (sometimes) fsync the directory or the file. */
static int do_save(struct writer *w)
{
	char tmp[PATH_MAX * 2], dst[PATH_MAX * 2];
	int nblk = 1 + (int)pick(w, 16), fd, rc;

	path_of(w, F_TMP, tmp, sizeof(tmp));
	path_of(w, F_SAVE, dst, sizeof(dst));
	begin(w, (struct op){ .kind = OP_OPEN, .file = F_TMP, .n = 1 });
	fd = open(tmp, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	rc = end(w, fd < 0 ? -errno : 0);
	if (rc)
		return rc;
	/* one generation for the whole file: a save is one version of a document */
	uint32_t gen = ++w->gen;
	for (int p = 0; p < nblk && rc == 0;) {
		int n = 1 + (int)pick(w, 4);

		if (n > nblk - p)
			n = nblk - p;
		rc = write_blocks(w, fd, F_TMP, p, n, gen, 0);
		p += n;
	}
	if (rc == 0 && pick(w, 8))
		rc = sync_fd(w, fd);
	close(fd);
	if (rc)
		return rc;
	begin(w, (struct op){ .kind = OP_RENAME, .file = F_TMP, .to = F_SAVE });
	rc = end(w, rename(tmp, dst) == 0 ? 0 : -errno);
	if (rc)
		return rc;
	switch (pick(w, 3)) {
	case 0:
		return sync_path(w, w->dir);
	case 1:
		return sync_path(w, dst);
	default:
		return 0;
	}
}

/* Appends to a log file through O_APPEND, cutting it back when it grows too long. */
static int do_append(struct writer *w)
{
	char path[PATH_MAX * 2];
	int fd, rc, writes = 1 + (int)pick(w, 3);

	path_of(w, F_LOG, path, sizeof(path));
	begin(w, (struct op){ .kind = OP_OPEN, .file = F_LOG });
	fd = open(path, O_CREAT | O_WRONLY | O_APPEND, 0644);
	rc = end(w, fd < 0 ? -errno : 0);
	if (rc)
		return rc;
	for (int i = 0; i < writes && rc == 0; i++) {
		int n = 1 + (int)pick(w, 4), len = w->cur.f[F_LOG].n;

		if (len + n > MAXBLK) {
			/* cut it back so that the write fits: keep + n <= MAXBLK */
			int keep = (int)pick(w, (unsigned)(MAXBLK - n) + 1);

			begin(w, (struct op){ .kind = OP_TRUNC, .file = F_LOG, .n = (uint8_t)keep });
			rc = end(w, ftruncate(fd, (off_t)keep * BLK) == 0 ? 0 : -errno);
			len = keep;
		}
		if (rc == 0)
			rc = write_blocks(w, fd, F_LOG, len, n, ++w->gen, 1);
	}
	if (rc == 0 && pick(w, 2))
		rc = sync_fd(w, fd);
	close(fd);
	return rc;
}

/* Overwrites blocks in place (or extends the file by at most its end: no holes). */
static int do_overwrite(struct writer *w)
{
	char path[PATH_MAX * 2];
	int fd, rc, n = 1 + (int)pick(w, 4), len, off;

	path_of(w, F_DATA, path, sizeof(path));
	begin(w, (struct op){ .kind = OP_OPEN, .file = F_DATA });
	fd = open(path, O_CREAT | O_WRONLY, 0644);
	rc = end(w, fd < 0 ? -errno : 0);
	if (rc)
		return rc;
	len = w->cur.f[F_DATA].n;
	off = (int)pick(w, (unsigned)(len < DATA_MAX - n ? len : DATA_MAX - n) + 1);
	rc = write_blocks(w, fd, F_DATA, off, n, ++w->gen, 0);
	if (rc == 0 && pick(w, 5) < 2)
		rc = sync_fd(w, fd);
	close(fd);
	return rc;
}

/* Removes the overwritten file or the log (by truncate(2) to nothing, or unlink). */
static int do_remove(struct writer *w)
{
	char path[PATH_MAX * 2];
	int file = pick(w, 2) ? F_DATA : F_LOG, rc;

	if (!w->cur.f[file].exists)
		return 0;
	path_of(w, file, path, sizeof(path));
	if (pick(w, 3) == 0) {
		begin(w, (struct op){ .kind = OP_TRUNC, .file = (uint8_t)file, .n = 0 });
		rc = end(w, truncate(path, 0) == 0 ? 0 : -errno);
	} else {
		begin(w, (struct op){ .kind = OP_UNLINK, .file = (uint8_t)file });
		rc = end(w, unlink(path) == 0 ? 0 : -errno);
	}
	if (rc == 0 && pick(w, 2))
		rc = sync_path(w, w->dir);
	return rc;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	int rc = 0;

	while (rc == 0 && w->issued + 64 < MAX_OPS) {
		unsigned p = pick(w, 100);

		if (p < 40)
			rc = do_save(w);
		else if (p < 62)
			rc = do_append(w);
		else if (p < 84)
			rc = do_overwrite(w);
		else if (p < 93)
			rc = do_remove(w);
		else
			rc = control(w, p < 98 ? "flush\n" : "snapshot\n");
	}
	atomic_fetch_sub(&running, 1);
	return NULL;
}

/* ---- rounds ------------------------------------------------------------------------------- */

struct round_cfg {
	uint64_t rseed;
	int always;
	char opts[160];
	int kill_after;   /* completed operations before the SIGKILL */
	unsigned jitter_us; /* and then this long */
};

/* Everything about round r comes from the run's seed and r, so a round reruns alone. */
static void round_config(int r, struct round_cfg *c)
{
	static const char *const modes[] = { "always", "batch", "none" };
	static const char *const segs[] = { "", ",segment_bytes=64k", ",segment_bytes=256k" };
	static const char *const snaps[] = { "", "", ",snapshot_wal_bytes=48k", ",snapshot_wal_bytes=200k" };
	static const char *const commits[] = { ",commit_ms=1", "", ",commit_ms=100" };
	uint64_t s = seed ^ (0x6b696c6cull * (uint64_t)(r + 1));
	int mode;

	c->rseed = tu_rand(&s);
	mode = (int)(tu_rand(&s) % 3);
	c->always = mode == 0;
	snprintf(c->opts, sizeof(c->opts), "sync=%s%s%s%s", modes[mode], segs[tu_rand(&s) % 3],
		 snaps[tu_rand(&s) % 4], mode == 1 ? commits[tu_rand(&s) % 3] : "");
	/* one round in five kills early, while the first files are being made */
	c->kill_after = tu_rand(&s) % 5 == 0 ? (int)(tu_rand(&s) % 12) : 12 + (int)(tu_rand(&s) % 1500);
	c->jitter_us = (unsigned)(tu_rand(&s) % 2000);
}

/* What a round left, as verified after its crash: checked again after the next round's. */
struct verified {
	int round; /* -1: none */
	uint64_t rseed;
	struct wstate w[WRITERS];
};

static char rerun[256];

#define round_fail(...)                                                                   \
	ck_abort_msg("%s; rerun: %s", (snprintf(failbuf, sizeof(failbuf), __VA_ARGS__), failbuf), \
		     rerun)
static char failbuf[8192];

static void fsync_path_or_fail(const char *path)
{
	int fd = open(path, O_RDONLY);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_msg(fsync(fd) == 0, "fsync %s: %s", path, strerror(errno));
	close(fd);
}

static void round_dir(int r, char *buf, size_t len)
{
	snprintf(buf, len, "%s/r%03d", mt_mnt, r);
}

/* The kernel sends one write(2) as several FUSE writes, split at page boundaries, when it
 * starts or ends inside a page that is not in the page cache (and at max_write): each is one
 * log record, so a crash may keep the first pieces of a write that was not acknowledged. 1 when
 * got is m plus such a prefix of the write o. */
static int partly_written(const struct wstate *m, const struct op *o, const struct wstate *got)
{
	struct wstate t;
	struct op piece = *o;
	int per_page = 4096 / BLK;

	if (o->kind != OP_WRITE)
		return 0;
	for (int end = (o->off / per_page + 1) * per_page; end < o->off + o->n; end += per_page) {
		t = *m;
		piece.n = (uint8_t)(end - o->off);
		apply(&t, &piece);
		if (state_eq(&t, got))
			return 1;
	}
	return 0;
}

/* The writer's files equal its model after some prefix of its operations between the ones
 * acknowledged and the ones issued. Fills *got; returns the prefix length. */
static int verify_writer(const struct writer *w, struct wstate *got)
{
	struct wstate m;
	char msg[512], a[1024], b[1024];
	int match = -1;

	if (read_state(w->dir, w->rseed, w->id, got, msg, sizeof(msg)) != 0)
		round_fail("writer %u: %s", w->id, msg);
	memset(&m, 0, sizeof(m));
	for (int p = 0; p <= w->issued && match < 0; p++) {
		if (p > 0)
			apply(&m, &w->ops[p - 1]);
		if (p >= w->acked && (state_eq(&m, got) || (p < w->issued &&
							    partly_written(&m, &w->ops[p], got))))
			match = p;
	}
	if (match < 0) {
		memset(&m, 0, sizeof(m));
		for (int p = 0; p < w->acked; p++)
			apply(&m, &w->ops[p]);
		char pend[1024];
		size_t at = 0;

		describe(got, a, sizeof(a));
		describe(&m, b, sizeof(b));
		pend[0] = '\0';
		for (int p = w->acked; p < w->issued && at < sizeof(pend); p++) {
			const struct op *o = &w->ops[p];

			at += (size_t)snprintf(pend + at, sizeof(pend) - at, " %s %s", op_name[o->kind],
					       o->kind == OP_SYNC ? "" : fname[o->file]);
			if (o->kind == OP_WRITE && at < sizeof(pend))
				at += (size_t)snprintf(pend + at, sizeof(pend) - at,
						       " g%" PRIu32 " blocks %d..%d", o->gen, o->off,
						       o->off + o->n - 1);
		}
		round_fail("writer %u: recovered state is after no prefix of its operations from %d "
			   "acknowledged to %d issued: recovered [%s], at the acknowledged prefix "
			   "[%s], then:%s",
			   w->id, w->acked, w->issued, a, b, pend);
	}
	return match;
}

static void check_previous(const struct verified *prev)
{
	char dir[PATH_MAX * 2], msg[512], a[1024], b[1024];

	for (unsigned i = 0; i < WRITERS; i++) {
		struct wstate got;

		snprintf(dir, sizeof(dir), "%s/r%03d/w%u", mt_mnt, prev->round, i);
		if (read_state(dir, prev->rseed, i, &got, msg, sizeof(msg)) != 0)
			round_fail("round %d, writer %u, after the next crash: %s", prev->round, i, msg);
		if (!state_eq(&got, &prev->w[i])) {
			describe(&got, a, sizeof(a));
			describe(&prev->w[i], b, sizeof(b));
			round_fail("round %d, writer %u changed after the next crash: [%s], was [%s]",
				   prev->round, i, a, b);
		}
	}
}

static void check_store(void)
{
	const char *cli = getenv("KV_CLI");
	const char *argv[] = { cli, "--check", mt_data, NULL };
	char *out = NULL;
	int status = 0;

	ck_assert_msg(cli && cli[0], "KV_CLI must name kv_cli");
	ck_assert_int_eq(tu_run(argv, NULL, &out, NULL, &status), 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		round_fail("kv_cli --check after a clean unmount: status 0x%x:\n%s", status, out);
	free(out);
}

/* Sanitizer builds: a report of a daemon that was then SIGKILLed is only in its log file
 * (mountutil routes them to mt_tmp/sanitizer.PID); any such file fails the round. */
static void check_sanitizer_logs(void)
{
	DIR *d = opendir(mt_tmp);
	struct dirent *e;

	while (d && (e = readdir(d))) {
		char path[PATH_MAX * 2], *text = NULL;

		if (strncmp(e->d_name, "sanitizer", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", mt_tmp, e->d_name);
		tu_read_file(path, &text, NULL);
		fprintf(stderr, "%s:\n%s\n", path, text ? text : "");
		free(text);
		closedir(d);
		round_fail("the daemon's sanitizer reported an error (%.300s)", path);
	}
	if (d)
		closedir(d);
}

/* Mounts after a crash: recovery may cut a torn tail (a SIGKILL inside the daemon's log write)
 * and delete orphans (a file replaced or unlinked just after its close(2): the release reaches
 * the daemon after close returns, docs/FILESYSTEM.md section 5), and say so; nothing else. */
static void remount_after_crash(const char *opts)
{
	char *said = NULL, *line;

	ck_assert_int_eq(fusermount("-uz", mt_mnt), 0);
	mount_store_saying(opts, &said);
	for (line = said; line && *line;) {
		char *nl = strchr(line, '\n');

		if (!strstr(line, "torn tail") && !strstr(line, "unlinked while open"))
			round_fail("on remount after the kill: %s", said);
		line = nl ? nl + 1 : NULL;
	}
	if (said[0])
		fprintf(stderr, "    remount: %s", said);
	free(said);
}

/* One round on the mounted-or-not store at mt_data; prev (round r-1, or round -1) is checked
 * after the crash, round r-2 is deleted first. Leaves the store unmounted, *out verified. */
static void run_round(int r, const struct verified *prev, int delete_old, struct verified *out,
		      int alone)
{
	struct round_cfg c;
	struct writer *w = calloc(WRITERS, sizeof(*w));
	pthread_t th[WRITERS];
	char dir[PATH_MAX * 2];
	int status, issued = 0, acked = 0, recovered = 0;

	ck_assert_ptr_nonnull(w);
	round_config(r, &c);
	/* the round alone, and (when it ran after others) the run up to it, which also has the
	 * checks of the rounds before */
	if (alone)
		snprintf(rerun, sizeof(rerun), "KV_SEED=%" PRIu64 " KV_KILL_ROUND=%d meson test -C build "
			 "-v killrounds", seed, r);
	else
		snprintf(rerun, sizeof(rerun), "KV_SEED=%" PRIu64 " KV_KILL_ROUND=%d meson test -C build "
			 "-v killrounds (or, with the rounds before: KV_SEED=%" PRIu64 " KV_KILL_ROUNDS=%d)",
			 seed, r, seed, r + 1);
	mount_store(c.opts);
	if (delete_old) {
		round_dir(r - 2, dir, sizeof(dir));
		ck_assert_int_eq(tu_rmrf(dir), 0);
	}
	round_dir(r, dir, sizeof(dir));
	ck_assert_msg(mkdir(dir, 0755) == 0, "mkdir %s: %s", dir, strerror(errno));
	for (unsigned i = 0; i < WRITERS; i++) {
		w[i].id = i;
		w[i].rseed = c.rseed;
		w[i].rng = c.rseed ^ (0x9e37ull << (8 * i));
		w[i].sync_always = c.always;
		snprintf(w[i].dir, sizeof(w[i].dir), "%.*s/w%u", PATH_MAX - 16, dir, i);
		snprintf(w[i].ctl, sizeof(w[i].ctl), "%s/.kvfs", mt_mnt);
		w[i].ops = calloc(MAX_OPS, sizeof(struct op));
		ck_assert_ptr_nonnull(w[i].ops);
		ck_assert_int_eq(mkdir(w[i].dir, 0755), 0);
	}
	fsync_path_or_fail(mt_mnt); /* the directories (and the deletion) are durable */
	atomic_store(&ops_done, 0);
	atomic_store(&killed, 0);
	atomic_store(&running, WRITERS);
	for (unsigned i = 0; i < WRITERS; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, &w[i]), 0);
	/* a hang guard of a minute; the writers never stop on their own before MAX_OPS */
	for (int i = 0; i < 600000 && atomic_load(&ops_done) < c.kill_after && atomic_load(&running);
	     i++)
		usleep(100);
	usleep(c.jitter_us);
	atomic_store(&killed, 1);
	ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
	status = wait_daemon();
	ck_assert_msg(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "daemon status 0x%x", status);
	for (unsigned i = 0; i < WRITERS; i++)
		ck_assert_int_eq(pthread_join(th[i], NULL), 0);
	for (unsigned i = 0; i < WRITERS; i++) {
		/* before the kill nothing may fail; after it, the dead connection's errors */
		if (w[i].err && !w[i].err_after_kill)
			round_fail("writer %u: %s (operation %d) failed before the kill: %s", i,
				   op_name[w[i].ops[w[i].err_op].kind], w[i].err_op, strerror(w[i].err));
		/* EIO: a write whose request the dying connection aborted */
		if (w[i].err && w[i].err != ENOTCONN && w[i].err != ECONNABORTED && w[i].err != EIO)
			round_fail("writer %u: %s failed with %s after the kill", i,
				   op_name[w[i].ops[w[i].err_op].kind], strerror(w[i].err));
	}
	remount_after_crash(NULL);
	if (delete_old) {
		struct stat st;

		round_dir(r - 2, dir, sizeof(dir));
		if (stat(dir, &st) == 0 || errno != ENOENT)
			round_fail("round %d's directory, deleted and fsynced, is back", r - 2);
	}
	if (prev->round >= 0)
		check_previous(prev);
	out->round = r;
	out->rseed = c.rseed;
	for (unsigned i = 0; i < WRITERS; i++) {
		recovered += verify_writer(&w[i], &out->w[i]);
		issued += w[i].issued;
		acked += w[i].acked;
	}
	fprintf(stderr, "round %d: %s, kill after %d ops: %d issued, %d acknowledged, %d recovered\n",
		r, c.opts, c.kill_after, issued, acked, recovered);
	unmount_store();
	check_store();
	check_sanitizer_logs();
	for (unsigned i = 0; i < WRITERS; i++)
		free(w[i].ops);
	free(w);
	total_rounds++;
}

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);

	return v && *v ? atoi(v) : dflt;
}

START_TEST(fsync_acknowledged_operations_survive_sigkill_of_the_daemon)
{
	int rounds = env_int("KV_KILL_ROUNDS", 50), only = env_int("KV_KILL_ROUND", -1);
	struct verified *v = calloc(2, sizeof(*v));

	NEED_MOUNT();
	ck_assert_ptr_nonnull(v);
	v[0].round = v[1].round = -1;
	if (only >= 0) {
		run_round(only, &v[0], 0, &v[1], 1);
	} else {
		for (int r = 0; r < rounds; r++) {
			struct verified *prev = &v[(r + 1) % 2], *out = &v[r % 2];

			run_round(r, prev, r >= 2, out, 0);
		}
	}
	fprintf(stderr, "kill rounds: %d\n", total_rounds);
	free(v);
}
END_TEST

/* ---- a full disk ----------------------------------------------------------------------- */

#define FILL_WRITE 16 /* blocks per write(2) */
#define MAX_FILES 512

struct filler {
	unsigned id;
	uint64_t rseed, rng;
	char dir[PATH_MAX + 64];
	int nfiles;           /* files whose create was tried */
	int returned[MAX_FILES]; /* blocks whose write returned */
	int acked[MAX_FILES];    /* its fsync returned */
	int err;
	const char *err_at;
};

static void *filler_main(void *arg)
{
	struct filler *f = arg;
	uint8_t *buf = malloc(FILL_WRITE * BLK);

	if (!buf) {
		f->err = ENOMEM;
		f->err_at = "malloc";
		return NULL;
	}
	while (!f->err && f->nfiles < MAX_FILES) {
		char path[PATH_MAX * 2];
		int i = f->nfiles++, fd, writes = 1 + (int)(tu_rand(&f->rng) % 8);

		snprintf(path, sizeof(path), "%s/f%03d", f->dir, i);
		fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0) {
			f->err = errno;
			f->err_at = "create";
			break;
		}
		for (int k = 0; k < writes && !f->err; k++) {
			for (int b = 0; b < FILL_WRITE; b++)
				fill_block(buf + (size_t)b * BLK, f->rseed, f->id, (uint32_t)i,
					   (unsigned)(k * FILL_WRITE + b));
			if (write(fd, buf, FILL_WRITE * BLK) != FILL_WRITE * BLK) {
				f->err = errno ? errno : EIO;
				f->err_at = "write";
			} else {
				f->returned[i] += FILL_WRITE;
			}
		}
		if (!f->err) {
			if (fsync(fd) == 0) {
				f->acked[i] = 1;
			} else {
				f->err = errno;
				f->err_at = "fsync";
			}
		}
		close(fd);
	}
	free(buf);
	return NULL;
}

/* Each filler's files: acknowledged ones whole; every other one absent or a prefix of the
 * writes that returned, in whole writes (exact: every returned write, when exact is set). */
static void verify_fillers(const struct filler *f, int n, int exact)
{
	for (int j = 0; j < n; j++) {
		for (int i = 0; i < f[j].nfiles; i++) {
			char path[PATH_MAX * 2], why[160], *data = NULL;
			size_t len = 0;
			int rc, blocks;

			snprintf(path, sizeof(path), "%s/f%03d", f[j].dir, i);
			rc = tu_read_file(path, &data, &len);
			if (i == f[j].nfiles - 1 && f[j].err_at && !strcmp(f[j].err_at, "create")) {
				ck_assert_msg(rc == -ENOENT, "%s: its create failed, yet it is there",
					      path);
				continue;
			}
			if (rc == -ENOENT && !f[j].acked[i] && !exact)
				continue;
			ck_assert_msg(rc == 0, "%s: %s", path, strerror(-rc));
			ck_assert_msg(len % (FILL_WRITE * BLK) == 0, "%s: %zu bytes: torn", path, len);
			blocks = (int)(len / BLK);
			ck_assert_msg(blocks <= f[j].returned[i], "%s: %d blocks, %d written", path,
				      blocks, f[j].returned[i]);
			ck_assert_msg(blocks == f[j].returned[i] || (!exact && !f[j].acked[i]),
				      "%s: %d blocks, %d written%s", path, blocks, f[j].returned[i],
				      f[j].acked[i] ? " and fsynced" : "");
			for (int p = 0; p < blocks; p++) {
				int64_t g = check_block((uint8_t *)data + (size_t)p * BLK, f[j].rseed,
							f[j].id, (unsigned)p, why, sizeof(why));

				ck_assert_msg(g == i, "%s: %s", path, g < 0 ? why : "another file's block");
			}
			free(data);
		}
	}
}

/* "read_only: no" in the control file (stat_of reads numbers only). */
static int read_only(void)
{
	char *text = get_file(in_mnt(".kvfs"));
	int ro = strstr(text, "\nread_only: yes") != NULL;

	ck_assert_msg(ro || strstr(text, "\nread_only: no"), "no read_only line:\n%s", text);
	free(text);
	return ro;
}

/* Fills the disk with fsynced files from three writers, then grows it and writes more. The
 * contract (docs/DURABILITY.md 5.3, docs/FILESYSTEM.md 6): the write that needs a new log
 * segment on a full disk fails with ENOSPC before it is acknowledged; nothing acknowledged
 * earlier is lost; the store stays writable; writes go on once space is freed. */
START_TEST(a_full_disk_fails_writes_with_enospc_and_keeps_everything_fsynced_across_a_crash)
{
	enum { N = 3 };
	static const char *const modes[] = { "sync=always", "sync=batch", "sync=none" };
	struct filler *f = calloc(N, sizeof(*f));
	pthread_t th[N];
	uint64_t s = seed ^ 0x66756c6cull;
	const char *mode = modes[tu_rand(&s) % 3];
	int crash = (int)(tu_rand(&s) % 2), status, fd, enospc = 0;
	char opts[64], dir[PATH_MAX * 2];

	NEED_MOUNT();
	ck_assert_ptr_nonnull(f);
	snprintf(rerun, sizeof(rerun), "KV_SEED=%" PRIu64 " CK_RUN_CASE=disk_full meson test -C build "
		 "-v killrounds", seed);
	snprintf(opts, sizeof(opts), "%s,segment_bytes=256k", mode);
	fprintf(stderr, "disk full: %s, then %s\n", opts, crash ? "SIGKILL" : "a clean unmount");
	mt_small_disk(4);
	mount_store(opts);
	for (unsigned j = 0; j < N; j++) {
		f[j].id = j;
		f[j].rseed = tu_rand(&s);
		f[j].rng = tu_rand(&s);
		snprintf(f[j].dir, sizeof(f[j].dir), "%s/d%u", mt_mnt, j);
		ck_assert_int_eq(mkdir(f[j].dir, 0755), 0);
	}
	fsync_path_or_fail(mt_mnt);
	for (unsigned j = 0; j < N; j++)
		ck_assert_int_eq(pthread_create(&th[j], NULL, filler_main, &f[j]), 0);
	for (unsigned j = 0; j < N; j++)
		ck_assert_int_eq(pthread_join(th[j], NULL), 0);
	for (unsigned j = 0; j < N; j++) {
		fprintf(stderr, "  writer %u: %d files, stopped by %s: %s\n", j, f[j].nfiles,
			f[j].err_at ? f[j].err_at : "-", strerror(f[j].err));
		/* only the write that needs a new segment fails, before it is logged */
		ck_assert_msg(f[j].err == ENOSPC && strcmp(f[j].err_at, "fsync") != 0,
			      "writer %u: %s failed with %s; expected a write or create to fail with ENOSPC",
			      j, f[j].err_at ? f[j].err_at : "nothing", strerror(f[j].err));
		enospc++;
	}
	/* visible: exactly every write that returned, nothing of the failed one */
	verify_fillers(f, N, 1);
	ck_assert_msg(!read_only(), "the store went read-only on ENOSPC");
	fsync_path_or_fail(mt_mnt); /* and flushing still works */
	if (crash) {
		ck_assert_int_eq(kill(mt_daemon_pid, SIGKILL), 0);
		status = wait_daemon();
		ck_assert(WIFSIGNALED(status));
		remount_after_crash(opts);
	} else {
		unmount_store();
		mount_store(opts); /* on the still-full disk */
	}
	verify_fillers(f, N, 1); /* all were flushed above */
	/* free space (grow the tmpfs): writes that need new segments go on */
	ck_assert_msg(mount(NULL, mt_data, NULL, MS_REMOUNT, "size=16m") == 0, "growing tmpfs: %s",
		      strerror(errno));
	for (int i = 0; i < 40; i++) {
		static uint8_t block[32 << 10];

		snprintf(dir, sizeof(dir), "%s/after%02d", mt_mnt, i);
		memset(block, 'a' + i % 26, sizeof(block));
		fd = open(dir, O_CREAT | O_WRONLY, 0644);
		ck_assert_msg(fd >= 0, "create after freeing space: %s", strerror(errno));
		ck_assert_msg(write(fd, block, sizeof(block)) == (ssize_t)sizeof(block),
			      "write after freeing space: %s", strerror(errno));
		ck_assert_msg(fsync(fd) == 0, "fsync after freeing space: %s", strerror(errno));
		close(fd);
	}
	ck_assert(!read_only());
	unmount_store();
	check_store();
	mount_store(opts);
	verify_fillers(f, N, 1);
	unmount_store();
	check_sanitizer_logs();
	ck_assert_int_eq(enospc, N);
	free(f);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("killrounds");
	TCase *kill_tc = tcase_create("kill"), *full = tcase_create("disk_full");
	int rc;

	seed = tu_seed();
	if (mt_init() != 0)
		return EXIT_FAILURE;
	/* a hang guard: 50 rounds take about half a minute, 300 about three */
	mt_add_cases(su, &kill_tc, 1, 3600);
	mt_add_cases(su, &full, 1, 300);
	tcase_add_test(kill_tc, fsync_acknowledged_operations_survive_sigkill_of_the_daemon);
	tcase_add_test(full, a_full_disk_fails_writes_with_enospc_and_keeps_everything_fsynced_across_a_crash);
	rc = mt_run(su);
	fprintf(stderr, "seed: %" PRIu64 "\n", seed); /* again, after the rounds' lines */
	return rc;
}
