/* backup.c — kv_backup: a checkpoint and the segments it references, copied into a new
 * directory while writers go on.
 *
 * Why this is consistent: the checkpoint at LSN L describes the store at L with extents into
 * segments; the sealed ones never change again, and the one being appended to is copied only
 * up to the end of the log at L (appends past it may be under way). Files are not deleted
 * while copying (kv->holds). No crash leaves something at DEST that opens as a smaller store:
 * the copy is made in DEST.unfinished (each file under a temporary name, fdatasync'd, renamed,
 * the directory fsync'd) and only then renamed to DEST, whose parent is fsync'd. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvio.h"
#include "logfmt.h"
#include "progress.h"
#include "store_internal.h"

#define COPY_CHUNK (1u << 20)
#define BACKUP_WORK_SUFFIX ".unfinished" /* the copy until it is whole */
#define WHOLE UINT64_MAX

struct copy_file {
	char name[64];
	uint64_t len; /* bytes from the start to copy; WHOLE: the file's size */
};

struct job {
	struct kv *s;
	const char *dest;
	struct copy_file *files;
	size_t n;
	struct progress meter; /* bytes copied */
	uint8_t *buf;
};

/* dest must be missing or empty. The copy is made in work (DEST.unfinished: created, or emptied
 * of what an interrupted backup left), which only the last step renames to dest. */
static int prepare_dest(const struct kvio *io, const char *dest, const char *work)
{
	char **names = NULL;
	size_t n = 0;
	int rc = io->list_dir(io, dest, &names, &n);
	if (rc == -ENOENT)
		rc = 0;
	else if (!rc && n)
		rc = -ENOTEMPTY;
	kvio_free_names(names, n);
	names = NULL;
	n = 0;
	if (!rc)
		rc = store_ensure_dir(io, work);
	if (!rc)
		rc = io->list_dir(io, work, &names, &n);
	for (size_t k = 0; !rc && k < n; k++) {
		char path[PATH_MAX + 320];
		snprintf(path, sizeof(path), "%s/%s", work, names[k]);
		rc = io->unlink(io, path);
	}
	kvio_free_names(names, n);
	return rc;
}

/* The directory dest is named in: its name made durable after the rename. */
static void parent_of(const char *dest, char *out, size_t len)
{
	snprintf(out, len, "%s", dest);
	size_t n = strlen(out);
	while (n > 1 && out[n - 1] == '/')
		out[--n] = '\0';
	char *slash = strrchr(out, '/');
	if (!slash)
		snprintf(out, len, ".");
	else if (slash == out)
		out[1] = '\0';
	else
		*slash = '\0';
}

/* The files to copy. Writable: a new checkpoint and the segments it references. Read-only
 * (nothing changes): the loaded checkpoint and every segment, whole. ckpt_mu held. */
static int choose_files(struct job *j, uint64_t *lsn)
{
	struct kv *s = j->s;
	struct ckpt_point at = { 0, 0, 0 };
	struct seg_info *info = NULL;
	size_t nsegs = 0;
	int rc;

	int active_unreferenced = 0;
	if (s->opt.read_only) {
		at.lsn = s->ckpt_lsn;
		rc = segtab_list(s->segs, &info, &nsegs);
	} else {
		rc = checkpoint_locked(s, &at);
		nsegs = s->refs.n;
		/* the segment holding the checkpoint's LSN goes too, referenced or not: recovery
		 * refuses a log that ends before the checkpoint (its end would be lost) */
		active_unreferenced = !rc && !ckpt_refs_has(&s->refs, at.seg_first_lsn);
	}
	if (rc)
		goto out;
	j->files = calloc(nsegs + 2, sizeof(*j->files));
	if (!j->files) {
		rc = -ENOMEM;
		goto out;
	}
	if (at.lsn) { /* a store never checkpointed (read-only) has none */
		ckpt_name(j->files[0].name, sizeof(j->files[0].name), at.lsn);
		j->files[j->n++].len = WHOLE;
	}
	for (size_t k = 0; k < nsegs; k++) {
		struct copy_file *c = &j->files[j->n++];
		uint64_t first = s->opt.read_only ? info[k].first_lsn : s->refs.seg[k];
		seg_name(c->name, sizeof(c->name), first);
		c->len = !s->opt.read_only && first == at.seg_first_lsn ? at.seg_end : WHOLE;
	}
	if (active_unreferenced) {
		struct copy_file *c = &j->files[j->n++];
		seg_name(c->name, sizeof(c->name), at.seg_first_lsn);
		c->len = at.seg_end;
	}
	*lsn = at.lsn;
out:
	free(info);
	return rc;
}

static int copy_bytes(struct job *j, int from, int to, uint64_t len)
{
	const struct kvio *io = j->s->io;
	int rc = 0;
	for (uint64_t off = 0; off < len && !rc;) {
		size_t want = len - off < COPY_CHUNK ? (size_t)(len - off) : COPY_CHUNK, got = 0;
		rc = io->pread(io, from, j->buf, want, off, &got);
		if (!rc && got != want)
			rc = -EIO; /* the file is shorter than the log said it was: it changed under us */
		if (!rc)
			rc = io->pwrite(io, to, j->buf, want, off);
		off += want;
		progress_add(&j->meter, want);
	}
	return rc;
}

/* Copy c into dest under a temporary name, make it durable, give it its name. */
static int copy_one(struct job *j, const struct copy_file *c)
{
	const struct kvio *io = j->s->io;
	char src[PATH_MAX + 64], tmp[PATH_MAX + 72], dst[PATH_MAX + 64];
	int from = -1, to = -1, rc;
	uint64_t len = c->len;

	snprintf(src, sizeof(src), "%s/%s", j->s->dir, c->name);
	snprintf(dst, sizeof(dst), "%s/%s", j->dest, c->name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", dst);
	rc = io->open(io, src, O_RDONLY, 0, &from);
	if (rc)
		goto out;
	if (len == WHOLE)
		rc = io->fsize(io, from, &len);
	if (!rc)
		rc = io->open(io, tmp, O_WRONLY | O_CREAT | O_EXCL, 0600, &to);
	if (!rc)
		rc = copy_bytes(j, from, to, len);
	kvio_close_quiet(io, from); /* only read */
	from = -1;
	if (!rc)
		rc = io->fdatasync(io, to);
	if (to >= 0) {
		rc = kvio_close_after(io, to, rc);
		to = -1;
	}
	if (!rc)
		rc = io->rename(io, tmp, dst);
	if (!rc)
		rc = io->fsync_dir(io, j->dest);
out:
	kvio_close_quiet(io, from);
	return rc;
}

/* A copy that failed is taken away (segments before the checkpoint, so that a crash meanwhile
 * still leaves a copy that refuses to open): dest is left empty, ready for another try. Failing
 * to remove costs only space: the copy refuses to open either way. */
static void remove_copy(struct job *j, size_t upto)
{
	const struct kvio *io = j->s->io;
	for (size_t k = upto + 1; k-- > 0;) {
		char path[PATH_MAX + 64], tmp[PATH_MAX + 72];
		if (k >= j->n)
			continue;
		snprintf(path, sizeof(path), "%s/%s", j->dest, j->files[k].name);
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		int trc = io->unlink(io, tmp), prc = io->unlink(io, path);
		(void)trc; /* -ENOENT for what was never made; other failures: see above */
		(void)prc;
	}
	int rc = io->fsync_dir(io, j->dest);
	(void)rc; /* see above */
}

static uint64_t sizes(struct job *j)
{
	const struct kvio *io = j->s->io;
	uint64_t total = 0;
	for (size_t k = 0; k < j->n; k++) {
		uint64_t len = j->files[k].len;
		char path[PATH_MAX + 64];
		int fd;
		if (len == WHOLE) {
			len = 0;
			snprintf(path, sizeof(path), "%s/%s", j->s->dir, j->files[k].name);
			if (io->open(io, path, O_RDONLY, 0, &fd) == 0) {
				if (io->fsize(io, fd, &len))
					len = 0; /* only a progress estimate; copy_one reports the error */
				kvio_close_quiet(io, fd);
			}
		}
		total += len;
	}
	return total;
}

int kv_backup(struct kv *s, const char *dest, struct kv_backup_info *info)
{
	char work[PATH_MAX], parent[PATH_MAX];
	struct job j = { .s = s, .dest = work };
	uint64_t lsn = 0;
	int rc, held = 0;

	memset(info, 0, sizeof(*info));
	if (strlen(dest) >= PATH_MAX - 64)
		return -ENAMETOOLONG;
	snprintf(work, sizeof(work), "%s" BACKUP_WORK_SUFFIX, dest);
	parent_of(dest, parent, sizeof(parent));
	j.buf = malloc(COPY_CHUNK);
	if (!j.buf)
		return -ENOMEM;
	rc = prepare_dest(s->io, dest, work);
	if (rc)
		goto out;
	pthread_mutex_lock(&s->ckpt_mu);
	rc = choose_files(&j, &lsn);
	if (!rc) {
		s->holds++;
		held = 1;
	}
	pthread_mutex_unlock(&s->ckpt_mu);
	if (rc)
		goto out;
	progress_start(&j.meter, &s->opt.progress, KV_WORK_BACKUP, sizes(&j));
	for (size_t k = 0; k < j.n; k++) { /* the checkpoint first: see above */
		rc = copy_one(&j, &j.files[k]);
		if (rc) {
			remove_copy(&j, k);
			goto out;
		}
	}
	/* whole or not at all: a copy cut short never stands at dest (it could open as an older
	 * or an empty store) */
	rc = s->io->rename(s->io, work, dest);
	if (!rc)
		rc = s->io->fsync_dir(s->io, parent);
	if (rc)
		goto out;
	info->lsn = lsn;
	info->files = j.n;
	info->bytes = j.meter.done;
out:
	progress_end(&j.meter);
	if (held) {
		pthread_mutex_lock(&s->ckpt_mu);
		s->holds--;
		pthread_mutex_unlock(&s->ckpt_mu);
	}
	free(j.files);
	free(j.buf);
	return rc;
}
