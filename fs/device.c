/* device.c — what passes over /dev/fuse that libfuse 3.14 does not handle for us.
 *
 * libfuse reads requests and writes replies through hooks of ours (fuse_session_custom_io,
 * which 3.14 has), and the serving threads look at each request before handing it to libfuse.
 * Three things need it:
 *
 *   - FUSE_HANDLE_KILLPRIV_V2. Without it the kernel asks for security.capability (GETXATTR)
 *     before every write(2), a round trip per write: it sets SB_NOSEC only with this flag, and
 *     without SB_NOSEC it never remembers that a file has nothing to strip. libfuse 3.14 cannot
 *     ask for it, so the reply to INIT gains the flag here when the kernel offered it. The
 *     filesystem then clears set-user-ID and set-group-ID bits (and file capabilities) itself:
 *     on a WRITE the kernel marks FUSE_WRITE_KILL_SUIDGID (writer without CAP_FSETID), on a
 *     SETATTR FATTR_KILL_SUIDGID (chown; truncate without CAP_FSETID), which libfuse passes on
 *     as FUSE_SET_ATTR_KILL_SUID. The WRITE's flag is not passed on: the thread notes it here
 *     before libfuse runs the operation on that same thread.
 *   - FUSE_TMPFILE (Linux 6.1+, O_TMPFILE): unknown to libfuse 3.14, which would answer ENOSYS.
 *     Answered here: a CREATE-like reply (entry + open) written to the device.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fs_internal.h"

/* The request this thread is serving: its WRITE asks the filesystem to kill privileges. */
static __thread int write_kills;

int kvfs_write_kills_privs(void)
{
	return write_kills;
}

/* Reads one request, as libfuse would; notes the INIT request's offer. */
static ssize_t dev_read(int fd, void *buf, size_t len, void *userdata)
{
	struct kvfs_fs *fs = userdata;
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *in = buf;

	if (n >= (ssize_t)(sizeof(*in) + 16) && in->opcode == FUSE_INIT) {
		const struct fuse_init_in *arg = (const void *)(in + 1);

		__atomic_store_n(&fs->init_unique, in->unique, __ATOMIC_RELEASE);
		__atomic_store_n(&fs->killpriv_v2_offered, (arg->flags & FUSE_HANDLE_KILLPRIV_V2) != 0,
				 __ATOMIC_RELEASE);
	}
	return n;
}

/* Writes one reply, as libfuse would; the reply to INIT asks for FUSE_HANDLE_KILLPRIV_V2. */
static ssize_t dev_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct kvfs_fs *fs = userdata;
	const struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out init;
	struct iovec copy[2];

	if (count == 2 && iov[0].iov_len >= sizeof(*out) && out->error == 0 &&
	    out->unique == __atomic_load_n(&fs->init_unique, __ATOMIC_ACQUIRE) &&
	    __atomic_load_n(&fs->killpriv_v2_offered, __ATOMIC_ACQUIRE) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) + sizeof(init.flags) &&
	    iov[1].iov_len <= sizeof(init)) {
		memcpy(&init, iov[1].iov_base, iov[1].iov_len);
		init.flags |= FUSE_HANDLE_KILLPRIV_V2;
		copy[0] = iov[0];
		copy[1] = (struct iovec){ &init, iov[1].iov_len };
		__atomic_store_n(&fs->killpriv_v2, 1, __ATOMIC_RELEASE);
		return writev(fd, copy, 2);
	}
	return writev(fd, iov, count);
}

int kvfs_device_attach(struct fuse_session *se)
{
	/* the hooks get the session's user data: the kvfs_fs */
	static const struct fuse_custom_io io = { .read = dev_read, .writev = dev_writev };

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

static void fill_attr(struct fuse_attr *a, const struct stat *st)
{
	memset(a, 0, sizeof(*a));
	a->ino = st->st_ino;
	a->size = (uint64_t)st->st_size;
	a->blocks = (uint64_t)st->st_blocks;
	a->atime = (uint64_t)st->st_atim.tv_sec;
	a->mtime = (uint64_t)st->st_mtim.tv_sec;
	a->ctime = (uint64_t)st->st_ctim.tv_sec;
	a->atimensec = (uint32_t)st->st_atim.tv_nsec;
	a->mtimensec = (uint32_t)st->st_mtim.tv_nsec;
	a->ctimensec = (uint32_t)st->st_ctim.tv_nsec;
	a->mode = st->st_mode;
	a->nlink = (uint32_t)st->st_nlink;
	a->uid = st->st_uid;
	a->gid = st->st_gid;
	a->rdev = (uint32_t)st->st_rdev;
	a->blksize = (uint32_t)st->st_blksize;
}

static void timeout_split(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t <= 0) {
		*sec = 0;
		*nsec = 0;
		return;
	}
	*sec = (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
}

/* Answers a FUSE_TMPFILE request (in the buffer as read from the device). */
static void do_tmpfile(struct kvfs_fs *fs, struct fuse_session *se, const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;
	const struct fuse_create_in *arg = (const void *)(in + 1);
	struct fuse_out_header out;
	struct fuse_entry_out eo;
	struct fuse_open_out oo;
	struct fuse_entry_param e;
	struct iovec iov[3];
	int rc = -EINVAL, n = 1;

	if (buf->size >= sizeof(*in) + sizeof(*arg))
		rc = kvfs_tmpfile(fs, in->nodeid, arg->mode, arg->umask, in->uid, in->gid, &e);
	memset(&out, 0, sizeof(out));
	out.unique = in->unique;
	out.error = rc;
	if (rc == 0) {
		memset(&eo, 0, sizeof(eo));
		eo.nodeid = e.ino;
		eo.generation = e.generation;
		timeout_split(e.entry_timeout, &eo.entry_valid, &eo.entry_valid_nsec);
		timeout_split(e.attr_timeout, &eo.attr_valid, &eo.attr_valid_nsec);
		fill_attr(&eo.attr, &e.attr);
		memset(&oo, 0, sizeof(oo));
		oo.open_flags = FOPEN_KEEP_CACHE;
		iov[1] = (struct iovec){ &eo, sizeof(eo) };
		iov[2] = (struct iovec){ &oo, sizeof(oo) };
		n = 3;
	}
	iov[0] = (struct iovec){ &out, sizeof(out) };
	out.len = (uint32_t)(sizeof(out) + (n == 3 ? sizeof(eo) + sizeof(oo) : 0));
	if (writev(fuse_session_fd(se), iov, n) != (ssize_t)out.len && rc == 0)
		kvfs_node_forget(fs, kvfs_node_of(fs, e.ino), 1); /* never delivered */
}

int kvfs_device_request(struct kvfs_fs *fs, struct fuse_session *se, const struct fuse_buf *buf)
{
	const struct fuse_in_header *in = buf->mem;

	write_kills = 0;
	if ((buf->flags & FUSE_BUF_IS_FD) || buf->size < sizeof(*in))
		return 0;
	if (in->opcode == FUSE_WRITE && buf->size >= sizeof(*in) + sizeof(struct fuse_write_in)) {
		const struct fuse_write_in *w = (const void *)(in + 1);

		write_kills = (w->write_flags & FUSE_WRITE_KILL_SUIDGID) != 0;
		return 0;
	}
	if (in->opcode == FUSE_TMPFILE) {
		do_tmpfile(fs, se, buf);
		return 1;
	}
	return 0;
}
