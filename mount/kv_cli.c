/* kv_cli.c — a line shell over a kvfs store, its one-command mode, dump and load, and the
 * store's check and salvage front end.
 *
 *   kv_cli [-o OPT[,OPT...]] [--raw] [DATADIR]        one command per line on stdin, replies on stdout
 *   kv_cli [-o OPT] [--raw] DATADIR COMMAND [ARGS...] one command, its reply, exit
 *   kv_cli [-o OPT] --dump DATADIR                    the store as a portable dump on stdout
 *   kv_cli [-o OPT] --load DATADIR                    a new store from a dump on stdin
 *   kv_cli [-o OPT] --backup DATADIR DEST             a consistent copy that opens as a store
 *   kv_cli --check DATADIR                            verify without changing anything
 *   kv_cli --salvage DATADIR                          keep what damage left provable
 *
 * stdout carries replies (or the dump) and nothing else, flushed after each reply, so a script
 * can drive the shell over a pair of pipes in lock step. Everything meant for a person (prompt,
 * recovery report, open failures, progress) goes to stderr. The protocol itself (parsing,
 * replies, quoting) is kvcmd.c and kvquote.c; the dump format is kvdump.c.
 *
 * Exit status: 0 clean; 1 a command was answered ERR, or the store could not be opened, closed,
 * checked clean, salvaged, dumped or loaded; 2 usage, or an error that is not about the store's
 * contents. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "ctlproto.h"
#include "hugepages.h"
#include "kv.h"
#include "kvcmd.h"
#include "kvdump.h"
#include "lockwait.h"
#include "mux.h"
#include "repl.h"
#include "report.h"
#include "stdfds.h"

#define PROG "kv_cli"

#define EXIT_STORE 1 /* a command answered ERR; open, close, check, salvage, dump or load failed */
#define EXIT_USAGE 2 /* bad arguments, or an error that says nothing about the store */

/* ---------------------------------------------------------------------------------------------
 * Reading lines.
 *
 * getline would grow its buffer without bound on a line that never ends; a line longer than any
 * valid command cannot succeed, so the reader keeps at most LR_MAX bytes of a line, answers it from
 * its first LR_KEEP bytes (enough to name the command and key in the error) and drops the rest as
 * it arrives. Memory stays bounded by the largest valid PUT, whatever stdin holds.
 * ------------------------------------------------------------------------------------------- */

/* The longest valid line: "PUT", a maximal key, a maximal value, and slack for extra separators
 * and a trailing \r. A PUT of exactly KV_MAX_WRITE bytes (the most one PUT carries) therefore always fits. */
#define LR_MAX ((size_t)KV_MAX_WRITE + KV_MAX_KEY + 256)
#define LR_KEEP ((size_t)KV_MAX_KEY + 256) /* prefix kept of an overlong line; <= LR_MAX */
#define LR_INIT ((size_t)64 << 10)          /* starting buffer; also what a shrink returns to */

struct linereader {
	int fd;
	int wake_fd;  /* -1, or a descriptor whose becoming readable ends the input (a signal) */
	char *buf;
	size_t size;  /* bytes allocated */
	size_t start; /* first byte of the line being assembled */
	size_t have;  /* bytes of buf holding input */
	size_t scan;  /* [start, scan) is known to hold no newline */
	size_t next;  /* where the line after the one last returned starts */
	int overlong; /* the current line passed LR_MAX: only its first LR_KEEP bytes are kept */
	int eof;
};

static int lr_init(struct linereader *r, int fd)
{
	memset(r, 0, sizeof(*r));
	r->fd = fd;
	r->wake_fd = -1;
	r->size = LR_INIT;
	r->buf = malloc(r->size);
	return r->buf ? 0 : -ENOMEM;
}

static void lr_free(struct linereader *r)
{
	free(r->buf);
	r->buf = NULL;
}

/* Read more input after what we have: compact the buffer, grow it (up to LR_MAX + 1, enough to see
 * that a line is overlong), then one read(2). */
static int lr_fill(struct linereader *r)
{
	ssize_t n;

	if (r->start > 0) {
		memmove(r->buf, r->buf + r->start, r->have - r->start);
		r->have -= r->start;
		r->scan -= r->start;
		r->start = 0;
	}
	if (r->have == r->size) {
		size_t nsize = r->size * 2 < LR_MAX + 1 ? r->size * 2 : LR_MAX + 1;
		char *nbuf = realloc(r->buf, nsize);

		if (!nbuf)
			return -ENOMEM;
		r->buf = nbuf;
		r->size = nsize;
	}
	if (r->wake_fd >= 0) {
		struct pollfd p[2] = { { .fd = r->fd, .events = POLLIN },
				       { .fd = r->wake_fd, .events = POLLIN } };
		int pn;

		do
			pn = poll(p, 2, -1);
		while (pn < 0 && errno == EINTR);
		if (pn < 0)
			return -errno;
		if (p[1].revents) {
			r->eof = 1; /* asked to stop: as if the input ended here */
			return 0;
		}
	}
	do
		n = read(r->fd, r->buf + r->have, r->size - r->have);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0)
		r->eof = 1;
	r->have += (size_t)n;
	return 0;
}

/* After a huge line, give the memory back: nothing else needs more than LR_INIT. */
static void lr_maybe_shrink(struct linereader *r)
{
	size_t rest = r->have - r->start;
	char *nbuf;

	if (r->size <= 4 * LR_INIT || rest > LR_INIT / 2)
		return;
	memmove(r->buf, r->buf + r->start, rest);
	r->have = rest;
	r->scan -= r->start;
	r->start = 0;
	nbuf = realloc(r->buf, LR_INIT);
	if (nbuf) { /* a failed shrink just keeps the big buffer */
		r->buf = nbuf;
		r->size = LR_INIT;
	}
}

/* The next line, without its newline: 1 and *line, *len (*overlong set when the line was longer
 * than LR_MAX and is cut to LR_KEEP bytes), 0 at end of input, or -errno. A last line without a
 * newline still counts. The line stays valid until the next call. */
static int lr_next(struct linereader *r, char **line, size_t *len, int *overlong)
{
	size_t end;
	int rc;

	r->start = r->next;
	r->scan = r->start;
	r->overlong = 0;
	lr_maybe_shrink(r);
	for (;;) {
		char *nl = memchr(r->buf + r->scan, '\n', r->have - r->scan);

		if (nl) {
			end = (size_t)(nl - r->buf);
			r->next = end + 1;
			break;
		}
		r->scan = r->have;
		if (r->eof) {
			if (r->have == r->start)
				return 0;
			end = r->have;
			r->next = end;
			break;
		}
		if (r->overlong) {
			/* drop the tail of the overlong line read so far; keep looking for its end */
			r->have = r->scan = r->start + LR_KEEP;
		} else if (r->have - r->start > LR_MAX) {
			r->overlong = 1;
			r->have = r->scan = r->start + LR_KEEP;
		}
		rc = lr_fill(r);
		if (rc)
			return rc;
	}
	*line = r->buf + r->start;
	*len = r->overlong ? LR_KEEP : end - r->start;
	*overlong = r->overlong;
	return 1;
}

/* ---------------------------------------------------------------------------------------------
 * The shell and one-shot mode: both parse into a struct kvcmd and let kvcmd_run answer it.
 * ------------------------------------------------------------------------------------------- */

struct shell {
	struct kv *kv;
	struct repl *repl; /* a node of a replicated group: commands go through kvcmd_run_repl */
	int raw;         /* --raw: keys and values unquoted */
	int interactive; /* stdin is a terminal: prompt, and let blank lines pass */
	int any_err;     /* some command was answered ERR: the exit status will be 1 */
	int out_error;   /* errno of the first failed write to stdout; then nothing more is answered */
};

/* Only spaces. */
static int blank(const char *line, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (line[i] != ' ')
			return 0;
	return 1;
}

/* Answer one line. Returns 1 for EXIT (the caller closes the store and replies), else 0.
 * overlong: the line was longer than any valid command and only its start is in line.
 * A blank line is an error for a script (it still gets its one reply) but nothing at a prompt. */
static int shell_line(struct shell *sh, char *line, size_t len, int overlong)
{
	struct kvcmd c;
	char err[256];
	int rc;

	if (sh->interactive && !overlong && blank(line, len))
		return 0;
	if (kvcmd_parse_line(&c, line, len, overlong, err, sizeof(err))) {
		sh->any_err = 1;
		rc = kvcmd_reply(stdout, "ERR %s", err);
	} else {
		rc = sh->repl ? kvcmd_run_repl(sh->repl, &c, stdout, sh->raw) :
				kvcmd_run(sh->kv, &c, stdout, sh->raw);
		if (rc == KVCMD_DO_EXIT)
			return 1;
		if (rc == KVCMD_REPLIED_ERR)
			sh->any_err = 1;
	}
	if (rc < 0)
		sh->out_error = -rc;
	return 0;
}

/* After EXIT, or at the end of a one-shot command: close the store. An explicit EXIT gets the
 * close's outcome as its reply; otherwise a failure goes to stderr. Returns the exit status. */
static int close_store(struct kv *kv, int exit_reply, int *out_error)
{
	int rc = kv_close(kv), wrc = 0;

	if (rc) {
		if (exit_reply)
			wrc = kvcmd_reply(stdout, "ERR close failed: %s", strerror(-rc));
		else
			fprintf(stderr, PROG ": closing the store: %s\n", strerror(-rc));
	} else if (exit_reply) {
		wrc = kvcmd_reply(stdout, "OK");
	}
	if (wrc && !*out_error)
		*out_error = -wrc;
	return rc ? EXIT_STORE : 0;
}

/* Answer lines until EXIT or the end of input, then close the store. Returns the exit status:
 * 0, or 1 when any command was answered ERR, the input or output failed, or the close did. */
/* Answer stdin's lines until EXIT (*explicit_exit set), the end of input, or wake_fd becoming
 * readable. Returns the exit status so far. */
static int shell_loop(struct shell *sh_, int wake_fd, int *explicit_exit_out)
{
	struct shell sh = *sh_;
	struct linereader lr;
	int explicit_exit = 0, status = 0, rc;

	rc = lr_init(&lr, STDIN_FILENO);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", strerror(-rc));
		status = EXIT_STORE;
		goto close;
	}
	lr.wake_fd = wake_fd;
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int overlong = 0;

		if (sh.interactive) {
			fputs("kv> ", stderr);
			fflush(stderr);
		}
		rc = lr_next(&lr, &line, &len, &overlong);
		if (rc == 0) {
			if (sh.interactive)
				fputc('\n', stderr);
			break;
		}
		if (rc < 0) {
			fprintf(stderr, PROG ": reading standard input: %s\n", strerror(-rc));
			status = EXIT_STORE;
			break;
		}
		if (!overlong && len > 0 && line[len - 1] == '\r')
			len--;
		if (shell_line(&sh, line, len, overlong)) {
			explicit_exit = 1;
			break;
		}
		if (sh.out_error) {
			/* Nobody reads the replies any more (SIGPIPE is ignored, so EPIPE lands here);
			 * stop taking commands whose outcome cannot be reported. */
			fprintf(stderr, PROG ": writing standard output: %s\n", strerror(sh.out_error));
			status = EXIT_STORE;
			break;
		}
	}
	lr_free(&lr);
close:
	*sh_ = sh;
	*explicit_exit_out = explicit_exit;
	return status;
}

/* The end of a shell: its status from what happened and how the close went. */
static int shell_status(struct shell *sh, int status, int close_failed)
{
	if (close_failed)
		return EXIT_STORE;
	if (sh->out_error && !status) {
		/* the EXIT reply itself could not be written: nobody was told it went well */
		fprintf(stderr, PROG ": writing standard output: %s\n", strerror(sh->out_error));
		status = EXIT_STORE;
	}
	if (!status && sh->any_err)
		status = EXIT_STORE;
	return status;
}

static int shell_run(struct kv *kv, int raw)
{
	struct shell sh = { .kv = kv, .raw = raw, .interactive = isatty(STDIN_FILENO) };
	int explicit_exit = 0, status = shell_loop(&sh, -1, &explicit_exit);

	return shell_status(&sh, status, close_store(kv, explicit_exit && !sh.out_error,
						      &sh.out_error) != 0);
}

/* One-shot: the command, already parsed, against the open store. Exit status 0, or 1 when it
 * was answered ERR, its reply could not be written, or the close failed. */
static int oneshot_run(struct kv *kv, const struct kvcmd *c, int raw)
{
	int out_error = 0, status, rc = kvcmd_run(kv, c, stdout, raw);

	if (rc < 0)
		out_error = -rc;
	status = close_store(kv, rc == KVCMD_DO_EXIT, &out_error);
	if (out_error) {
		fprintf(stderr, PROG ": writing standard output: %s\n", strerror(out_error));
		return EXIT_STORE;
	}
	if (rc == KVCMD_REPLIED_ERR)
		return EXIT_STORE;
	return status;
}

/* ---------------------------------------------------------------------------------------------
 * A store a kvfs daemon holds: kv_cli talks to the daemon over DATADIR/kvfs.sock (ctlproto.h),
 * which answers each command from its open store exactly as kvcmd_run would here. The reply's
 * bytes are copied to stdout as they come, so the shell, one-shot mode, quoting, --raw and the
 * exit status are the same either way. EXIT ends the connection, not the daemon.
 * ------------------------------------------------------------------------------------------- */

enum live { LIVE_NONE, LIVE_CONNECTED, LIVE_FAILED };

/* Connects when a daemon serves dir: LIVE_CONNECTED with *fd and *hello, LIVE_NONE when no
 * daemon answers there (kv_cli opens the store itself), LIVE_FAILED when one refused us (the
 * reason printed). */
static enum live live_connect(const char *dir, int *fd, struct ctl_hello *hello)
{
	char why[512];
	int rc = ctl_connect(dir, fd, hello, why, sizeof(why));

	if (rc == 0)
		return LIVE_CONNECTED;
	if (rc == -EACCES) {
		fprintf(stderr, PROG ": %s: the kvfs daemon refused the connection: %s\n", dir, why);
		return LIVE_FAILED;
	}
	if (rc == -EPROTO) {
		fprintf(stderr, PROG ": %s/" CTL_SOCKET_NAME ": not a kvfs daemon's socket, or a "
			"daemon of another version\n", dir);
		return LIVE_FAILED;
	}
	return LIVE_NONE;
}

/* The store is locked and we are not talking to the daemon: who holds it, plainly, as words
 * that continue the line saying it is locked. */
static void live_locked_words(const char *dir, char *buf, size_t len)
{
	struct ctl_hello hello;
	int fd;

	if (live_connect(dir, &fd, &hello) == LIVE_CONNECTED) {
		snprintf(buf, len, "it is mounted at %s by kvfs (pid %ld)", hello.mountpoint,
			 hello.pid);
		close(fd);
		return;
	}
	snprintf(buf, len, "no kvfs daemon answers on %s/" CTL_SOCKET_NAME " (the holder is another "
		 "kv_cli or program, or a daemon still starting or stopping)", dir);
}

/* Sends one request and copies its reply to stdout. Returns the reply's enum kvcmd_result, or
 * -errno: -ECONNRESET when the daemon went away (unmounted meanwhile), -EPIPE when stdout
 * failed. */
static int live_request(int fd, uint8_t type, uint8_t flags, const char *const *parts,
			const size_t *lens, unsigned n)
{
	struct ctl_frame f;
	int rc = ctl_send(fd, type, flags, parts, lens, n, NULL, 0);

	if (rc)
		return rc == -EPIPE ? -ECONNRESET : rc;
	rc = ctl_recv(fd, &f);
	if (rc)
		return rc == -EPROTO ? rc : -ECONNRESET;
	if (f.type != CTL_REPLY || f.flags > KVCMD_DO_EXIT) {
		free(f.payload);
		return -EPROTO;
	}
	if (f.len && fwrite(f.payload, 1, (size_t)f.len, stdout) != f.len)
		rc = -EPIPE;
	if (fflush(stdout) == EOF)
		rc = -EPIPE;
	free(f.payload);
	return rc ? rc : f.flags;
}

/* What a failed request means for the user. */
static void live_failed(const char *dir, int rc)
{
	if (rc == -EPIPE)
		fprintf(stderr, PROG ": writing standard output: %s\n", strerror(errno ? errno : EPIPE));
	else if (rc == -ECONNRESET)
		fprintf(stderr, PROG ": %s: the kvfs daemon went away (unmounted?); the command's "
			"outcome is unknown\n", dir);
	else
		fprintf(stderr, PROG ": %s: talking to the kvfs daemon: %s\n", dir, strerror(-rc));
}

/* The shell through the daemon: lines read here (the same bounded reader), answered there. */
static int live_shell(const char *dir, int fd, int raw)
{
	struct linereader lr;
	int interactive = isatty(STDIN_FILENO), any_err = 0, status = 0, rc;

	rc = lr_init(&lr, STDIN_FILENO);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", strerror(-rc));
		close(fd);
		return EXIT_STORE;
	}
	for (;;) {
		char *line = NULL;
		size_t len = 0;
		int overlong = 0;

		if (interactive) {
			fputs("kv> ", stderr);
			fflush(stderr);
		}
		rc = lr_next(&lr, &line, &len, &overlong);
		if (rc == 0) {
			if (interactive)
				fputc('\n', stderr);
			break;
		}
		if (rc < 0) {
			fprintf(stderr, PROG ": reading standard input: %s\n", strerror(-rc));
			status = EXIT_STORE;
			break;
		}
		if (!overlong && len > 0 && line[len - 1] == '\r')
			len--;
		if (interactive && !overlong && blank(line, len))
			continue;
		rc = live_request(fd, CTL_LINE, (uint8_t)((raw ? CTL_F_RAW : 0) |
							  (overlong ? CTL_F_OVERLONG : 0)),
				  (const char *const *)&line, &len, 1);
		if (rc < 0) {
			live_failed(dir, rc);
			status = EXIT_STORE;
			break;
		}
		if (rc == KVCMD_REPLIED_ERR)
			any_err = 1;
		if (rc == KVCMD_DO_EXIT)
			break;
	}
	lr_free(&lr);
	close(fd);
	return status ? status : any_err ? EXIT_STORE : 0;
}

/* One command through the daemon; its arguments go as they are and are parsed there. */
static int live_oneshot(const char *dir, int fd, int raw, int argc, char **argv)
{
	const char **parts = calloc((size_t)argc, sizeof(*parts));
	size_t *lens = calloc((size_t)argc, sizeof(*lens));
	int rc = -ENOMEM;

	if (parts && lens) {
		for (int i = 0; i < argc; i++) {
			parts[i] = argv[i];
			lens[i] = strlen(argv[i]);
		}
		rc = live_request(fd, CTL_ARGS, raw ? CTL_F_RAW : 0, parts, lens, (unsigned)argc);
	}
	free(parts);
	free(lens);
	close(fd);
	if (rc < 0) {
		live_failed(dir, rc);
		return EXIT_STORE;
	}
	return rc == KVCMD_REPLIED_ERR ? EXIT_STORE : 0;
}

/* --backup through the daemon: kv_backup runs in it while the mount's writers go on. 0 with
 * info, or -errno (the reason printed). */
static int live_backup(const char *dir, int fd, const char *dest, struct kv_backup_info *info)
{
	char abs[PATH_MAX], parent[PATH_MAX], *slash;
	struct ctl_frame f = { 0 };
	const char *part;
	size_t len;
	int rc;

	/* the daemon runs in /: dest made absolute here (it need not exist yet) */
	if (!realpath(dest, abs)) {
		if (errno != ENOENT || strlen(dest) >= sizeof(parent)) {
			fprintf(stderr, PROG ": %s: %s\n", dest, strerror(errno));
			return -errno;
		}
		strcpy(parent, dest);
		slash = strrchr(parent, '/');
		if (slash)
			*slash = '\0';
		if (!realpath(slash ? (parent[0] ? parent : "/") : ".", abs) ||
		    strlen(abs) + strlen(slash ? slash : dest) + 2 >= sizeof(abs)) {
			fprintf(stderr, PROG ": %s: %s\n", dest, strerror(errno ? errno : ENAMETOOLONG));
			return -ENOENT;
		}
		strcat(strcat(abs, "/"), slash ? slash + 1 : dest);
	}
	part = abs;
	len = strlen(abs);
	rc = ctl_send(fd, CTL_BACKUP, 0, &part, &len, 1, NULL, 0);
	if (!rc)
		rc = ctl_recv(fd, &f);
	close(fd);
	if (rc || f.type != CTL_REPLY) {
		free(f.payload);
		live_failed(dir, rc ? (rc == -EPROTO ? rc : -ECONNRESET) : -EPROTO);
		return rc ? rc : -EPROTO;
	}
	if (f.flags) {
		fprintf(stderr, PROG ": backup of %s into %s by the kvfs daemon failed: %s; nothing of "
			"it is left in %s\n", dir, dest, f.payload ? f.payload : "?", dest);
		free(f.payload);
		return -EIO;
	}
	memset(info, 0, sizeof(*info));
	if (!f.payload || sscanf(f.payload, "lsn: %" SCNu64 "\nfiles: %" SCNu64 "\nbytes: %" SCNu64,
				 &info->lsn, &info->files, &info->bytes) != 3) {
		free(f.payload);
		live_failed(dir, -EPROTO);
		return -EPROTO;
	}
	free(f.payload);
	return 0;
}

/* ---------------------------------------------------------------------------------------------
 * A node of a replicated group: -o cluster=FILE,node=ID (docs/REPLICATION.md).
 *
 * The shell reads stdin as always, and clients may also connect to the node's port (the
 * cluster file's HOST:PORT, told apart from raft's peers by the 8 bytes "KVCLI01\n") and speak
 * the same protocol, one session each on a thread of its own. Every command goes through
 * kvcmd_run_repl. EXIT, the end of stdin, SIGINT and SIGTERM stop the node cleanly (a leader
 * first hands over); --serve reads no stdin and runs until a signal.
 * ------------------------------------------------------------------------------------------- */

static int stop_pipe[2] = { -1, -1 };

static void note_line(void *arg, const char *text);

static void on_stop_signal(int sig)
{
	int saved = errno;
	ssize_t n;

	(void)sig;
	/* A full pipe means a stop is pending already; nothing else can fail here. */
	n = write(stop_pipe[1], "x", 1);
	(void)n;
	errno = saved;
}

struct session;

struct sessions {
	struct repl *repl;  /* set once the node runs; sessions wait for it */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct session *list;
	unsigned live;
	int closing;
};

struct session {
	struct sessions *ss;
	int fd;
	struct session *prev, *next;
};

static void *session_main(void *arg)
{
	struct session *se = arg;
	struct sessions *ss = se->ss;
	struct linereader lr;
	struct repl *r;
	FILE *out = NULL;
	int ofd = fcntl(se->fd, F_DUPFD_CLOEXEC, 0);

	pthread_mutex_lock(&ss->mu);
	while (!ss->repl && !ss->closing)
		pthread_cond_wait(&ss->cv, &ss->mu);
	r = ss->closing ? NULL : ss->repl;
	pthread_mutex_unlock(&ss->mu);
	if (ofd >= 0)
		out = fdopen(ofd, "w");
	if (r && out && lr_init(&lr, se->fd) == 0) {
		for (;;) {
			char *line, err[256];
			size_t len;
			int overlong, rc;
			struct kvcmd c;

			if (lr_next(&lr, &line, &len, &overlong) <= 0)
				break;
			if (!overlong && len > 0 && line[len - 1] == '\r')
				len--;
			if (kvcmd_parse_line(&c, line, len, overlong, err, sizeof(err)))
				rc = kvcmd_reply(out, "ERR %s", err);
			else
				rc = kvcmd_run_repl(r, &c, out, 0);
			if (rc == KVCMD_DO_EXIT) {
				rc = kvcmd_reply(out, "OK"); /* the session ends; the node goes on */
				break;
			}
			if (rc < 0)
				break; /* the client went away */
		}
		lr_free(&lr);
	}
	if (out)
		fclose(out); /* nothing to report to: the client is gone or done */
	else if (ofd >= 0)
		close(ofd);
	pthread_mutex_lock(&ss->mu);
	if (se->prev)
		se->prev->next = se->next;
	else
		ss->list = se->next;
	if (se->next)
		se->next->prev = se->prev;
	ss->live--;
	pthread_cond_broadcast(&ss->cv);
	pthread_mutex_unlock(&ss->mu);
	close(se->fd);
	free(se);
	return NULL;
}

/* repl's client callback, on raft's thread: a thread for the session. */
static void session_accept(void *arg, int fd)
{
	struct sessions *ss = arg;
	struct session *se = calloc(1, sizeof(*se));
	pthread_attr_t attr;
	pthread_t t;

	pthread_mutex_lock(&ss->mu);
	if (!se || ss->closing) {
		pthread_mutex_unlock(&ss->mu);
		free(se);
		close(fd);
		return;
	}
	se->ss = ss;
	se->fd = fd;
	se->next = ss->list;
	if (ss->list)
		ss->list->prev = se;
	ss->list = se;
	ss->live++;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &attr, session_main, se) != 0) {
		ss->list = se->next;
		if (se->next)
			se->next->prev = NULL;
		ss->live--;
		close(fd);
		free(se);
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&ss->mu);
}

/* End every session (their reads see the end of input) and wait for them. */
static void sessions_close(struct sessions *ss)
{
	pthread_mutex_lock(&ss->mu);
	ss->closing = 1;
	for (struct session *se = ss->list; se; se = se->next)
		shutdown(se->fd, SHUT_RDWR);
	pthread_cond_broadcast(&ss->cv);
	while (ss->live)
		pthread_cond_wait(&ss->cv, &ss->mu);
	pthread_mutex_unlock(&ss->mu);
}

static int run_node(const char *dir, struct repl_options *ro, int raw, int serve)
{
	struct sessions ss = { .repl = NULL };
	struct shell sh = { .raw = raw, .interactive = isatty(STDIN_FILENO) };
	struct repl_report rep;
	struct sigaction sa;
	struct repl *r = NULL;
	char line[2048], store[PATH_MAX + 8];
	int rc, status = 0, explicit_exit = 0;

	if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
		fprintf(stderr, PROG ": %s\n", strerror(errno));
		return EXIT_STORE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_mutex_init(&ss.mu, NULL);
	pthread_cond_init(&ss.cv, NULL);
	ro->client = session_accept;
	ro->client_arg = &ss;
	ro->log = note_line;
	rc = repl_start(&r, dir, ro, &rep);
	if (rc) {
		report_repl_failure(&rep, dir, ro->cluster_file, ro->node, rc, line, sizeof(line));
		fprintf(stderr, PROG ": %s\n", line);
		sessions_close(&ss);
		return EXIT_STORE;
	}
	snprintf(store, sizeof(store), "%s/store", dir);
	report_notes(&rep.store, store, note_line, NULL);
	pthread_mutex_lock(&ss.mu);
	ss.repl = r;
	pthread_cond_broadcast(&ss.cv);
	pthread_mutex_unlock(&ss.mu);

	if (serve) {
		struct pollfd p = { .fd = stop_pipe[0], .events = POLLIN };
		while (poll(&p, 1, -1) < 0 && errno == EINTR)
			;
	} else {
		sh.repl = r;
		status = shell_loop(&sh, stop_pipe[0], &explicit_exit);
	}
	sessions_close(&ss);
	rc = repl_stop(r);
	if (rc)
		fprintf(stderr, PROG ": closing the node's store: %s\n", strerror(-rc));
	if (explicit_exit && !sh.out_error) {
		int wrc = rc ? kvcmd_reply(stdout, "ERR close failed: %s", strerror(-rc)) :
			       kvcmd_reply(stdout, "OK");
		if (wrc && !sh.out_error)
			sh.out_error = -wrc;
	}
	return shell_status(&sh, status, rc != 0);
}

/* --connect HOST:PORT: the shell of a running node, over its port. Lines from stdin go to the
 * node, replies come back to stdout as they are. Exit status 1 when a reply was ERR. */
struct pump {
	int fd;
	int saw_err;
	int err;
};

static void *pump_replies(void *arg)
{
	struct pump *p = arg;
	char buf[65536];
	int at_line_start = 1;
	char head[4];
	size_t hlen = 0;

	for (;;) {
		ssize_t n = read(p->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				p->err = errno;
			break;
		}
		for (ssize_t i = 0; i < n; i++) {
			/* a reply line beginning "ERR" (a key or value that would read so is quoted) */
			if (at_line_start || hlen) {
				if (hlen < 4)
					head[hlen++] = buf[i];
				if (hlen == 4 || buf[i] == '\n') {
					if (hlen >= 3 && !memcmp(head, "ERR", 3) &&
					    (hlen == 3 || head[3] == ' ' || head[3] == '\n'))
						p->saw_err = 1;
					hlen = 0;
				}
			}
			at_line_start = buf[i] == '\n';
		}
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) == EOF) {
			p->err = errno ? errno : EIO;
			break;
		}
	}
	return NULL;
}

static int run_connect(const char *hostport)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct pump p = { .fd = -1 };
	char host[64], buf[65536];
	const char *colon = strrchr(hostport, ':');
	pthread_t t;
	int port, status = 0;

	if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof(host) ||
	    (port = atoi(colon + 1)) <= 0 || port > 65535) {
		fprintf(stderr, PROG ": --connect %s: expected IPV4:PORT\n", hostport);
		return EXIT_USAGE;
	}
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, PROG ": --connect %s: '%s' is not an IPv4 address\n", hostport, host);
		return EXIT_USAGE;
	}
	p.fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (p.fd < 0 || connect(p.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, PROG ": connecting to %s: %s\n", hostport, strerror(errno));
		if (p.fd >= 0)
			close(p.fd);
		return EXIT_STORE;
	}
	if (send(p.fd, MUX_MAGIC_CLIENT, MUX_MAGIC_LEN, MSG_NOSIGNAL) != MUX_MAGIC_LEN ||
	    pthread_create(&t, NULL, pump_replies, &p) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", hostport, strerror(errno));
		close(p.fd);
		return EXIT_STORE;
	}
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (ssize_t off = 0; off < n;) {
			ssize_t w = send(p.fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				status = EXIT_STORE;
				break;
			}
			off += w;
		}
		if (status)
			break;
	}
	shutdown(p.fd, SHUT_WR); /* the node answers what it got, then ends the session */
	pthread_join(t, NULL);
	close(p.fd);
	if (p.err) {
		fprintf(stderr, PROG ": %s: %s\n", hostport, strerror(p.err));
		status = EXIT_STORE;
	}
	if (status) {
		fprintf(stderr, PROG ": %s: the connection broke\n", hostport);
		return EXIT_STORE;
	}
	return p.saw_err ? EXIT_STORE : 0;
}

/* ---------------------------------------------------------------------------------------------
 * Reports, check, salvage, open.
 * ------------------------------------------------------------------------------------------- */

/* Everything the report holds, one "name: value" line each, for --check and --salvage. */
static void print_report(FILE *f, const struct kv_report *rep)
{
	/* "snapshot" is the seed's word (SNAP): a checkpoint, the index written down */
	if (rep->snapshot_lsn)
		fprintf(f, "snapshot: lsn %" PRIu64 ", %" PRIu64 " keys\n", rep->snapshot_lsn,
			rep->snapshot_keys);
	else
		fprintf(f, "snapshot: none\n");
	fprintf(f, "log segments: %" PRIu64 "\n", rep->segments);
	fprintf(f, "records: %" PRIu64 " after the snapshot\n", rep->records_replayed);
	fprintf(f, "last lsn: %" PRIu64 "\n", rep->last_lsn);
	if (rep->tail_torn)
		/* what the bytes were cannot be known: nothing after them vouches for them */
		fprintf(f, "torn tail: %" PRIu64 " bytes at %s offset %" PRIu64 " (then %" PRIu64
			" zero bytes of unused preallocation): a write in progress at a crash, or, if "
			"the disk lost that block, records synced before it\n", rep->tail_torn_bytes,
			rep->tail_file, rep->tail_offset, rep->tail_bytes_cut - rep->tail_torn_bytes);
	else if (rep->tail_bytes_cut)
		fprintf(f, "torn tail: none (%" PRIu64 " zero bytes of unused preallocation at %s offset %"
			PRIu64 ")\n", rep->tail_bytes_cut, rep->tail_file, rep->tail_offset);
	else
		fprintf(f, "torn tail: none\n");
	if (rep->damaged)
		fprintf(f, "damage: %s offset %" PRIu64 " (%s)\n", rep->damage_file, rep->damage_offset,
			report_damage_words(rep->damage));
	else
		fprintf(f, "damage: none\n");
	if (rep->covered_damage)
		fprintf(f, "damage below the snapshot: %s offset %" PRIu64 " (%" PRIu64
			" place(s)%s)\n", rep->covered_file, rep->covered_offset, rep->covered_damage,
			rep->lost_keys ? "" : "; not needed, nothing lost");
	if (rep->ckpt_lost_entries || (rep->damage == KV_DAMAGE_CHECKPOINT && rep->salvaged)) {
		char what[1024];
		report_ckpt_loss(rep, what, sizeof(what));
		fprintf(f, "checkpoint entries: %s\n", what);
	}
	if (rep->lost_keys > rep->ckpt_lost_entries)
		fprintf(f, "keys that lost bytes: %" PRIu64 " (the first '%s')\n",
			rep->lost_keys - rep->ckpt_lost_entries, rep->lost_key);
	if (rep->data_damaged_keys)
		fprintf(f, "keys with damaged value bytes: %" PRIu64 " (the first '%s')\n",
			rep->data_damaged_keys, rep->data_damage_key);
	char back[1024];
	if (report_read_back(rep, back, sizeof(back)))
		fprintf(f, "%s\n", back);
}

/* A line of the report module, on stderr. */
static void note_line(void *arg, const char *text)
{
	(void)arg;
	fprintf(stderr, PROG ": %s\n", text);
}

/* The engine's long work on a terminal (stderr), rewritten in place at most twice a second;
 * shown only for work that lasts over half a second, so a quick open stays silent. */
struct term_progress {
	struct timespec start, last;
	int shown;
};

static long ms_since(const struct timespec *t, const struct timespec *now)
{
	return (now->tv_sec - t->tv_sec) * 1000L + (now->tv_nsec - t->tv_nsec) / 1000000L;
}

static void term_progress(void *arg, enum kv_work what, uint64_t done, uint64_t total, int end)
{
	struct term_progress *p = arg;
	struct timespec now;
	char line[160];

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (done == 0 && !end) { /* a job starts */
		p->start = now;
		p->shown = 0;
		return;
	}
	if (!p->shown && ms_since(&p->start, &now) < 500)
		return;
	if (!end && p->shown && ms_since(&p->last, &now) < 500)
		return;
	p->last = now;
	p->shown = 1;
	report_progress(what, done, total, line, sizeof(line));
	fprintf(stderr, "\r" PROG ": %s\033[K%s", line, end ? "\n" : "");
	fflush(stderr);
}

static struct term_progress term;

/* Progress for o's long work when stderr is a terminal. */
static const struct kv_progress *progress_hook(void)
{
	static const struct kv_progress hook = { term_progress, &term };
	return isatty(STDERR_FILENO) ? &hook : NULL;
}

static void with_progress(struct kv_options *o)
{
	const struct kv_progress *h = progress_hook();
	if (h)
		o->progress = *h;
}

static int run_check(const char *dir)
{
	struct kv_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = kv_check(dir, NULL, progress_hook(), &rep);
	if (rc && rc != -EUCLEAN) {
		char line[2048];
		char holder[PATH_MAX + 200] = "";

		report_failure(&rep, dir, rc, NULL, line, sizeof(line));
		/* a store in use changes under a reader: a backup of it is checked instead */
		if (rep.problem == KV_PROBLEM_LOCKED)
			live_locked_words(dir, holder, sizeof(holder));
		fprintf(stderr, PROG ": checking: %s%s%s\n", line, holder[0] ? "; " : "", holder);
		if (rep.problem == KV_PROBLEM_LOCKED)
			fprintf(stderr, PROG ": a store in use is not checked; check a backup of it "
				"(" PROG " --backup %s DEST, then " PROG " --check DEST), or unmount it "
				"first (kvfs --unmount MOUNTPOINT)\n", dir);
		return EXIT_USAGE;
	}
	print_report(stdout, &rep);
	/* The report says damaged when the return code does, but trust either. */
	if (rc == -EUCLEAN || rep.damaged) {
		const char *keeps = report_salvage_keeps(&rep);
		if (keeps)
			printf("status: damaged; '" PROG " --salvage %s' %s\n", dir, keeps);
		else
			printf("status: damaged; this version cannot read it, and salvage cannot "
			       "convert it\n");
		return EXIT_STORE;
	}
	/* "clean" with certainty only where a close mark vouches for every record and nothing was
	 * cut: after a crash, a lost last block of synced records looks the same as the torn or
	 * unwritten tail (docs/DURABILITY.md, Known limits) */
	if (rep.tail_torn)
		printf("status: clean up to lsn %" PRIu64 ", where a torn tail was cut (see above)\n",
		       rep.last_lsn);
	else if (!rep.log_marked || rep.tail_bytes_cut)
		printf("status: clean up to lsn %" PRIu64 ", the end of a log not closed cleanly (no close "
		       "mark vouches for its last records)\n", rep.last_lsn);
	else
		printf("status: clean\n");
	return 0;
}

static int run_salvage(const char *dir)
{
	struct kv_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = kv_salvage(dir, NULL, progress_hook(), &rep);
	if (rc) {
		char line[2048];
		report_failure(&rep, dir, rc, NULL, line, sizeof(line));
		fprintf(stderr, PROG ": salvaging: %s\n", line);
		return EXIT_STORE;
	}
	print_report(stdout, &rep);
	char kept[600];
	report_salvage_kept(&rep, kept, sizeof(kept));
	printf("kept: %s\n", kept);
	printf("set aside: %u files, as *.damaged inside %s (nothing deleted)\n", rep.set_aside, dir);
	return 0;
}

/* Open failures get one clear line. */
static void report_open_error(const char *dir, int rc, const struct kv_report *rep)
{
	char line[2048], way_out[PATH_MAX + 400];
	report_salvage_advice(rep, dir, NULL, way_out, sizeof(way_out));
	char holder[PATH_MAX + 200] = "";

	report_failure(rep, dir, rc, way_out, line, sizeof(line));
	if (rep->problem == KV_PROBLEM_LOCKED)
		live_locked_words(dir, holder, sizeof(holder));
	fprintf(stderr, PROG ": %s%s%s\n", line, holder[0] ? "; " : "", holder);
}

static void lockwait_line(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, PROG ": %s\n", line);
}

/* kv_open, waiting for a kvfs daemon that is still closing the store (lockwait.h). A failure is
 * reported here, except when may_connect and a daemon answers on the socket now: *answering,
 * and the caller talks to it. */
static int open_store(struct kv **kv, const char *dir, const struct kv_options *o,
		      struct kv_report *rep, int may_connect, int *answering)
{
	struct lockwait w = { .say = lockwait_line };
	char err[256];
	int rc;

	*answering = 0;
	memset(rep, 0, sizeof(*rep));
	if (lockwait_bound(&w.seconds, err, sizeof(err))) {
		fprintf(stderr, PROG ": %s\n", err);
		return -EINVAL;
	}
	rc = lockwait_open(&w, kv, dir, o, rep);
	if (rc && w.answering && may_connect)
		*answering = 1;
	else if (rc && !w.gave_up)
		report_open_error(dir, rc, rep);
	return rc;
}

/* A successful open is silent unless recovery found something a person should know about. */
static void report_recovery(const char *dir, const struct kv_report *rep)
{
	report_notes(rep, dir, note_line, NULL);
}

static int run_shell(const char *dir, const struct kv_options *o, int raw)
{
	struct ctl_hello hello;
	struct kv_report rep;
	struct kv *kv = NULL;
	int rc, fd, answering, tries = 0;

again:
	switch (live_connect(dir, &fd, &hello)) {
	case LIVE_CONNECTED:
		return live_shell(dir, fd, raw);
	case LIVE_FAILED:
		return EXIT_STORE;
	case LIVE_NONE:
		break;
	}
	rc = open_store(&kv, dir, o, &rep, tries++ == 0, &answering);
	if (answering)
		goto again; /* a daemon that was starting serves it now */
	if (rc)
		return EXIT_STORE;
	report_recovery(dir, &rep);
	return shell_run(kv, raw);
}

/* Whether argv parses as a command, without changing it: 0, -EINVAL with the reason in err,
 * or -ENOMEM. */
static int oneshot_check(int argc, char **argv, char *err, size_t errlen)
{
	char **copy = calloc((size_t)argc + 1, sizeof(*copy)), *scratch = NULL;
	struct kvcmd c;
	int rc = copy ? 0 : -ENOMEM;

	for (int i = 0; !rc && i < argc; i++)
		if (!(copy[i] = strdup(argv[i])))
			rc = -ENOMEM;
	if (!rc)
		rc = kvcmd_parse_args(&c, argc, copy, &scratch, err, errlen);
	else
		snprintf(err, errlen, "%s", strerror(ENOMEM));
	free(scratch);
	for (int i = 0; copy && i < argc; i++)
		free(copy[i]);
	free(copy);
	return rc;
}

/* The command is parsed before the store is opened: a wrong one touches nothing. */
static int run_oneshot(const char *dir, const struct kv_options *o, int raw, int argc, char **argv)
{
	struct ctl_hello hello;
	struct kv_report rep;
	struct kv *kv = NULL;
	struct kvcmd c;
	char err[256], *scratch = NULL;
	int rc, status, fd, answering, tries = 0;

	/* Parsing decodes quoted arguments in place: the check runs on a copy, so that the
	 * daemon, or the parse below, gets them as they were typed. */
	rc = oneshot_check(argc, argv, err, sizeof(err));
	if (rc) {
		fprintf(stderr, PROG ": %s\nUsage: " PROG " [-o OPT] [--raw] DATADIR COMMAND [ARGS...]; "
			"try '" PROG " --help'.\n", err);
		return rc == -EINVAL ? EXIT_USAGE : EXIT_STORE;
	}
again:
	switch (live_connect(dir, &fd, &hello)) {
	case LIVE_CONNECTED:
		return live_oneshot(dir, fd, raw, argc, argv);
	case LIVE_FAILED:
		return EXIT_STORE;
	case LIVE_NONE:
		break;
	}
	if (kvcmd_parse_args(&c, argc, argv, &scratch, err, sizeof(err))) {
		free(scratch);
		return EXIT_USAGE; /* it parsed a moment ago */
	}
	rc = open_store(&kv, dir, o, &rep, tries++ == 0, &answering);
	if (rc) {
		free(scratch);
		if (answering)
			goto again; /* a daemon that was starting serves it now */
		return EXIT_STORE;
	}
	report_recovery(dir, &rep);
	status = oneshot_run(kv, &c, raw);
	free(scratch);
	return status;
}

/* ---------------------------------------------------------------------------------------------
 * --dump and --load.
 *
 * A load writes into DATADIR.tmp-load, a directory of its own beside DATADIR, and renames it to
 * DATADIR only once the whole dump has been read, checked and made durable (a snapshot, then the
 * directory fsync'd). Until that rename DATADIR is missing or empty, so a load that fails, or is
 * killed, never leaves anything there that could pass for the store. A failed load removes its
 * scratch directory; one left by a killed load is removed by the next load into the same DATADIR
 * (when nothing holds its lock and it holds nothing but store files).
 * ------------------------------------------------------------------------------------------- */

#define LOAD_SUFFIX ".tmp-load"

/* Progress on stderr, only when it is a terminal: a line rewritten at most every half second. */
struct progress {
	const char *verb;
	int on;
	struct timespec last;
	int shown;
};

static void progress_show(void *arg, const struct kvdump_report *rep)
{
	struct progress *p = arg;
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (p->shown && (now.tv_sec - p->last.tv_sec) * 1000000000L + (now.tv_nsec - p->last.tv_nsec) <
			       500000000L)
		return;
	p->last = now;
	p->shown = 1;
	fprintf(stderr, "\r" PROG ": %s %" PRIu64 " keys, %" PRIu64 " MiB", p->verb, rep->entries,
		rep->bytes >> 20);
	fflush(stderr);
}

static void progress_end(struct progress *p, const struct kvdump_report *rep, int ok)
{
	if (!p->on)
		return;
	if (p->shown || ok)
		fprintf(stderr, "\r" PROG ": %s %" PRIu64 " keys, %" PRIu64 " MiB%s\n", p->verb,
			rep->entries, rep->bytes >> 20, ok ? "" : " before the error");
}

/* One place puts a dump's faults into words. */
static void print_dump_fault(const char *dir, const struct kvdump_report *rep, int loading)
{
	const char *tail = loading ? "; nothing was loaded" : "";

	switch (rep->fault) {
	case KVDUMP_IO:
		fprintf(stderr, PROG ": %s the dump at offset %" PRIu64 ": %s%s\n",
			loading ? "reading" : "writing", rep->offset, strerror(-rep->err), tail);
		break;
	case KVDUMP_STORE:
		fprintf(stderr, PROG ": %s: %s (dump offset %" PRIu64 ")%s\n", dir,
			strerror(-rep->err), rep->offset, tail);
		break;
	case KVDUMP_NOT_A_DUMP:
		fprintf(stderr, PROG ": standard input is not a kvfs dump (no \"" KVDUMP_MAGIC
			"\" magic at offset 0)%s\n", tail);
		break;
	case KVDUMP_VERSION_UNKNOWN:
		fprintf(stderr, PROG ": the dump has a format version or flags this kv_cli does not "
			"know (offset 8; it reads version %u)%s\n", KVDUMP_VERSION, tail);
		break;
	case KVDUMP_DAMAGED:
		fprintf(stderr, PROG ": the dump is damaged at offset %" PRIu64 " (%s)%s\n",
			rep->offset, rep->what, tail);
		break;
	case KVDUMP_TRUNCATED:
		fprintf(stderr, PROG ": the dump is cut short: it ends at offset %" PRIu64 ", before "
			"its end record%s\n", rep->offset, tail);
		break;
	case KVDUMP_TRAILING:
		fprintf(stderr, PROG ": unexpected bytes after the dump's end record, at offset %"
			PRIu64 "%s\n", rep->offset, tail);
		break;
	case KVDUMP_TOO_BIG:
		fprintf(stderr, PROG ": the entry at offset %" PRIu64 " has a value of %" PRIu64
			" bytes; this store takes at most %llu%s\n", rep->offset, rep->size,
			(unsigned long long)KV_MAX_VALUE, tail);
		break;
	case KVDUMP_CHANGED:
		fprintf(stderr, PROG ": %s: the store changed during the dump (at dump offset %"
			PRIu64 ")\n", dir, rep->offset);
		break;
	case KVDUMP_OK:
		break;
	}
}

/* 0 when path is missing, 1 when it is an empty directory, 2 when a non-empty one; -ENOTDIR
 * (also for a symlink, which a load's rename would replace) or -errno. */
static int dir_state(const char *path)
{
	struct stat st;
	struct dirent *e;
	DIR *d;
	int state = 1;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	d = opendir(path);
	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			state = 2;
			break;
		}
	closedir(d);
	return state;
}

static int run_dump(const char *dir, const struct kv_options *o)
{
	struct progress prog = { .verb = "dumped", .on = isatty(STDERR_FILENO) };
	struct kvdump_report rep;
	struct kv_report orep;
	struct kv *kv = NULL;
	int rc, status, answering;

	if (isatty(STDOUT_FILENO)) {
		fprintf(stderr, PROG ": not writing a binary dump to a terminal; redirect it: "
			PROG " --dump %s > FILE\n", dir);
		return EXIT_USAGE;
	}
	rc = dir_state(dir);
	if (rc == 0 || rc == 1) {
		fprintf(stderr, PROG ": %s: no store there (%s)\n", dir,
			rc ? "an empty directory" : "no such directory");
		return EXIT_STORE;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-rc));
		return EXIT_STORE;
	}
	if (open_store(&kv, dir, o, &orep, 0, &answering))
		return EXIT_STORE;
	report_recovery(dir, &orep);
	rc = kvdump_write(kv, STDOUT_FILENO, &rep, prog.on ? progress_show : NULL, &prog);
	progress_end(&prog, &rep, rc == 0);
	if (rc)
		print_dump_fault(dir, &rep, 0);
	status = rc ? EXIT_STORE : 0;
	rc = kv_close(kv);
	if (rc) {
		fprintf(stderr, PROG ": closing the store: %s\n", strerror(-rc));
		status = EXIT_STORE;
	}
	return status;
}

/* A copy of the store, then a check of the copy: a backup that does not open is no backup. */
static int run_backup(const char *dir, const char *dest, const struct kv_options *user_opts)
{
	struct kv_backup_info info;
	struct kv_report orep, crep;
	struct ctl_hello hello;
	struct kv *kv = NULL;
	int rc, status = 0, fd, answering, tries = 0;

	rc = dir_state(dir);
	if (rc == 0 || rc == 1) {
		fprintf(stderr, PROG ": %s: no store there (%s)\n", dir,
			rc ? "an empty directory" : "no such directory");
		return EXIT_STORE;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-rc));
		return EXIT_STORE;
	}
	rc = dir_state(dest);
	if (rc == 2 || rc < 0) {
		fprintf(stderr, PROG ": %s: %s; a backup goes into a new or empty directory\n", dest,
			rc == 2 ? "not empty" : strerror(-rc));
		return EXIT_STORE;
	}
again:
	switch (live_connect(dir, &fd, &hello)) {
	case LIVE_CONNECTED:
		if (live_backup(dir, fd, dest, &info))
			return EXIT_STORE;
		goto verify;
	case LIVE_FAILED:
		return EXIT_STORE;
	case LIVE_NONE:
		break;
	}
	rc = open_store(&kv, dir, user_opts, &orep, tries++ == 0, &answering);
	if (answering)
		goto again; /* a daemon that was starting serves it now */
	if (rc)
		return EXIT_STORE;
	report_recovery(dir, &orep);
	rc = kv_backup(kv, dest, &info);
	if (rc) {
		fprintf(stderr, PROG ": backup of %s into %s failed: %s; nothing of it is left in %s\n",
			dir, dest, strerror(-rc), dest);
		status = EXIT_STORE;
	}
	rc = kv_close(kv);
	if (rc) {
		fprintf(stderr, PROG ": closing the store: %s\n", strerror(-rc));
		status = EXIT_STORE;
	}
	if (status)
		return status;
verify:
	memset(&crep, 0, sizeof(crep));
	rc = kv_check(dest, NULL, progress_hook(), &crep);
	printf("backup: %s\n", dest);
	printf("lsn: %" PRIu64 "\n", info.lsn);
	printf("files: %" PRIu64 "\n", info.files);
	printf("bytes: %" PRIu64 "\n", info.bytes);
	if (rc) {
		char line[2048];
		report_failure(&crep, dest, rc, NULL, line, sizeof(line));
		printf("status: the copy does not check clean: %s\n", line);
		return EXIT_STORE;
	}
	printf("status: verified (every value byte read back)\n");
	return 0;
}

/* Removes a load's scratch store: the files in it (a store has no subdirectories), then it. */
static int remove_scratch(const char *dir)
{
	struct dirent *e;
	char path[PATH_MAX];
	DIR *d = opendir(dir);
	int rc = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int)sizeof(path)) {
			rc = -ENAMETOOLONG;
			break;
		}
		if (unlink(path) < 0) {
			rc = -errno;
			break;
		}
	}
	closedir(d);
	if (!rc && rmdir(dir) < 0)
		rc = -errno;
	return rc;
}

/* Names a store holds (README, "The data directory"). */
static int store_file_name(const char *n)
{
	size_t len = strlen(n);

	return !strcmp(n, "LOCK") || !strcmp(n, "space.reserve") ||
	       (!strncmp(n, "wal-", 4) && len > 8 && !strcmp(n + len - 4, ".log")) ||
	       (!strncmp(n, "ckpt-", 5) && len > 9 && (!strcmp(n + len - 4, ".kvc") ||
						      !strcmp(n + len - 8, ".kvc.tmp")));
}

/* The scratch directory of an earlier load exists: remove it when it is a store nobody has open
 * (a load that was killed), else say why not. 0 when removed. */
static int clear_stale_scratch(const char *tmp)
{
	char lock[PATH_MAX];
	struct dirent *e;
	DIR *d;
	int fd, rc = 0;

	if (snprintf(lock, sizeof(lock), "%s/LOCK", tmp) >= (int)sizeof(lock))
		return -ENAMETOOLONG;
	fd = open(lock, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, PROG ": %s exists and is not the store of an unfinished load; remove "
			"it or load elsewhere\n", tmp);
		return -EEXIST;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		fprintf(stderr, PROG ": %s is in use: another load into the same place is running\n",
			tmp);
		rc = -EBUSY;
		goto out;
	}
	d = opendir(tmp);
	if (!d) {
		rc = -errno;
		fprintf(stderr, PROG ": %s: %s\n", tmp, strerror(-rc));
		goto out;
	}
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && !store_file_name(e->d_name)) {
			fprintf(stderr, PROG ": %s holds %s, which is no store file; remove it or load "
				"elsewhere\n", tmp, e->d_name);
			rc = -EEXIST;
			break;
		}
	closedir(d);
	if (rc)
		goto out;
	rc = remove_scratch(tmp);
	if (rc)
		fprintf(stderr, PROG ": removing %s: %s\n", tmp, strerror(-rc));
	else
		fprintf(stderr, PROG ": removed %s, left by a load that did not finish\n", tmp);
out:
	close(fd);
	return rc;
}

/* fsync the directory holding path, so that a rename in it is durable. */
static int sync_parent(const char *path)
{
	char *copy = strdup(path);
	int fd, rc = 0;

	if (!copy)
		return -ENOMEM;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	free(copy);
	return rc;
}

static int run_load(const char *dir_arg, const struct kv_options *user_opts)
{
	struct progress prog = { .verb = "loaded", .on = isatty(STDERR_FILENO) };
	struct kv_options o = *user_opts;
	struct kvdump_report rep;
	struct kv_report orep;
	struct kv *kv = NULL;
	char *dir = strdup(dir_arg), *tmp = NULL;
	size_t len;
	int rc, crc, status = EXIT_STORE, made = 0;

	if (!dir) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return EXIT_STORE;
	}
	for (len = strlen(dir); len > 1 && dir[len - 1] == '/'; len--)
		dir[len - 1] = '\0';
	if (isatty(STDIN_FILENO)) {
		fprintf(stderr, PROG ": not reading a dump from a terminal; redirect it: "
			PROG " --load %s < FILE\n", dir);
		status = EXIT_USAGE;
		goto out;
	}
	rc = dir_state(dir);
	if (rc == 2 || rc == -ENOTDIR) {
		fprintf(stderr, PROG ": %s: %s; a dump loads only into a missing or empty "
			"directory\n", dir, rc == 2 ? "not empty" : "not a directory");
		goto out;
	}
	if (rc < 0) {
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(-rc));
		goto out;
	}
	if (asprintf(&tmp, "%s" LOAD_SUFFIX, dir) < 0) {
		tmp = NULL;
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		goto out;
	}
	rc = mkdir(tmp, 0700) < 0 ? -errno : 0;
	if (rc == -EEXIST) {
		if (clear_stale_scratch(tmp))
			goto out; /* it said why */
		rc = mkdir(tmp, 0700) < 0 ? -errno : 0;
	}
	if (rc) {
		fprintf(stderr, PROG ": creating %s: %s\n", tmp, strerror(-rc));
		goto out;
	}
	made = 1;
	/* Nothing is durable until the end; then one snapshot makes everything durable at once. */
	o.sync = KV_SYNC_NONE;
	memset(&orep, 0, sizeof(orep));
	rc = kv_open(&kv, tmp, &o, &orep);
	if (rc) {
		report_open_error(tmp, rc, &orep);
		goto out;
	}
	rc = kvdump_read(kv, STDIN_FILENO, &rep, prog.on ? progress_show : NULL, &prog);
	progress_end(&prog, &rep, rc == 0);
	if (rc) {
		print_dump_fault(tmp, &rep, 1);
		goto close;
	}
	rc = kv_snapshot(kv);
	if (rc) {
		fprintf(stderr, PROG ": %s: making the load durable: %s; nothing was loaded\n", tmp,
			strerror(-rc));
		goto close;
	}
close:
	crc = kv_close(kv);
	if (crc && !rc) {
		fprintf(stderr, PROG ": %s: closing the store: %s; nothing was loaded\n", tmp,
			strerror(-crc));
		rc = crc;
	}
	if (rc)
		goto out;
	if (rename(tmp, dir) < 0) {
		fprintf(stderr, PROG ": renaming %s to %s: %s; the loaded store is %s\n", tmp, dir,
			strerror(errno), tmp);
		made = 0; /* keep it: it is complete, and DATADIR may hold something else now */
		goto out;
	}
	made = 0;
	rc = sync_parent(dir);
	if (rc) {
		fprintf(stderr, PROG ": %s: syncing its directory: %s\n", dir, strerror(-rc));
		goto out;
	}
	status = 0;
out:
	if (made) {
		rc = remove_scratch(tmp);
		if (rc)
			fprintf(stderr, PROG ": removing %s: %s\n", tmp, strerror(-rc));
	}
	free(tmp);
	free(dir);
	return status;
}


/* ---------------------------------------------------------------------------------------------
 * Arguments.
 * ------------------------------------------------------------------------------------------- */

/* Make the entries of directory dir durable (a directory it just gained). */
static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc = 0;
	if (fd < 0)
		return -errno;
	if (fsync(fd) < 0)
		rc = -errno;
	close(fd);
	return rc;
}

/* Create the missing parents of path (not path itself: kv_open does that), mode 0700 as the XDG
 * base directory spec asks for directories it creates. Each one created is made durable in its
 * own parent: else a power cut could take the whole store with it, acknowledged writes and all. */
static int make_parents(const char *path)
{
	char *p = strdup(path), *end, *s;
	int rc = 0;

	if (!p)
		return -ENOMEM;
	end = strrchr(p, '/');
	if (!end || end == p)
		goto out;
	*end = '\0';
	/* each prefix of the parent ending before a '/', then the parent itself */
	for (s = strchr(p + 1, '/'); ; s = strchr(s + 1, '/')) {
		if (s)
			*s = '\0';
		if (mkdir(p, 0700) == 0) {
			char *slash = strrchr(p, '/');
			*slash = '\0';
			rc = sync_dir(slash == p ? "/" : p);
			*slash = '/';
			if (rc)
				goto out;
		} else if (errno != EEXIST) {
			rc = -errno;
			goto out;
		}
		if (!s)
			break;
		*s = '/';
	}
out:
	if (rc)
		fprintf(stderr, PROG ": creating %s: %s\n", p, strerror(-rc));
	free(p);
	return rc;
}

/* The store used when no DATADIR is given: $KVFS_DATADIR, else $XDG_DATA_HOME/kvfs (a relative
 * XDG_DATA_HOME is ignored, as the spec says), else $HOME/.local/share/kvfs. The parents of the
 * XDG locations are created; a $KVFS_DATADIR is taken like an explicit DATADIR. */
static int default_datadir(char **out)
{
	const char *env = getenv("KVFS_DATADIR"), *home;
	char *dir = NULL;
	int rc;

	if (env && env[0]) {
		dir = strdup(env);
		rc = dir ? 0 : -ENOMEM;
		goto out;
	}
	env = getenv("XDG_DATA_HOME");
	if (env && env[0] == '/') {
		rc = asprintf(&dir, "%s/kvfs", env) < 0 ? -ENOMEM : 0;
	} else {
		home = getenv("HOME");
		if (!home || !home[0]) {
			struct passwd *pw = getpwuid(getuid());

			home = pw ? pw->pw_dir : NULL;
		}
		if (!home || !home[0]) {
			fprintf(stderr, PROG ": no DATADIR given and no home directory to default to; "
				"give one or set KVFS_DATADIR\n");
			rc = -ENOENT;
			goto out;
		}
		rc = asprintf(&dir, "%s/.local/share/kvfs", home) < 0 ? -ENOMEM : 0;
	}
	if (rc)
		goto out;
	rc = make_parents(dir);
out:
	if (rc) {
		free(dir);
		dir = NULL;
	}
	*out = dir;
	return rc;
}

static void usage(FILE *f)
{
	struct kv_options o;

	kv_options_default(&o);
	fprintf(f,
"Usage: " PROG " [-o OPT[,OPT...]] [--raw] [DATADIR]                  a line shell\n"
"       " PROG " [-o OPT[,OPT...]] [--raw] DATADIR COMMAND [ARGS...]  one command\n"
"       " PROG " [-o OPT[,OPT...]] --dump DATADIR > FILE              write a dump\n"
"       " PROG " [-o OPT[,OPT...]] --load DATADIR < FILE              a new store from a dump\n"
"       " PROG " [-o OPT[,OPT...]] --backup DATADIR DEST              a copy that opens as a store\n"
"       " PROG " --check DATADIR\n"
"       " PROG " --salvage DATADIR\n"
"       " PROG " -o cluster=FILE,node=ID[,OPT...] [--serve] DATADIR   a node of a group\n"
"       " PROG " --connect HOST:PORT                              the shell of a running node\n"
"       " PROG " --help | --version\n"
"\n"
"The shell reads one command per line on standard input and writes its reply on standard\n"
"output, flushed after every reply: every input line, even an empty or a wrong one, gets one\n"
"reply (LIST's is a count line, then that many lines).\n"
"\n"
"Commands (case-insensitive):\n"
"  PUT key value   set key; the value is the rest of the line after the one space that\n"
"                  follows the key, spaces kept, possibly empty (\"PUT key \")  -> OK\n"
"  GET key         the value, or (nil)\n"
"  DEL key         OK, or (nil) when absent\n"
"  LIST [prefix [limit [after]]]\n"
"                  the number n of keys listed, then those keys, one per line, in byte\n"
"                  order: the keys that begin with prefix (\"\" or none: all) and sort after\n"
"                  the key after (when given), at most limit of them\n"
"  SIZE            the number of keys\n"
"  STATS [JSON]    the number n of lines, then n \"name: value\" lines: the store's\n"
"                  statistics (through a daemon also its pid, mount point, uptime and\n"
"                  per-command counts and latencies); JSON: one line, a JSON object\n"
"  SNAP            OK once a snapshot is durable\n"
"  FLUSH           OK once every earlier write is durable\n"
"  LEADER          on a node of a group: the leader's ID HOST:PORT, or (nil)\n"
"  STATS           a count line, then that many \"name: value\" lines (the store's; on a\n"
"                  node first role, term, commit and applied index, each peer's match index)\n"
"  EXIT            close the store cleanly, reply OK; end of input does the same without\n"
"                  the reply\n"
"  anything wrong  ERR <reason>, and the shell goes on\n"
"\n"
"Quoting: a key or value is printed as one double-quoted line with C escapes (\"a\\nb\",\n"
"\"\\xff\") when it holds a control character, a backslash or invalid UTF-8, begins with '\"',\n"
"or would read as (nil) or ERR; a key that LIST prints also when it holds a space or is\n"
"empty. Otherwise it is printed as it is. A key or value that begins with '\"' is read the\n"
"same way (\\\\ \\\" \\n \\r \\t \\a \\b \\f \\v \\xHH), so whatever GET or LIST prints can be\n"
"typed back, and a quoted key may hold spaces (GET \"a b\"); anything else is taken byte for\n"
"byte. --raw prints keys and values as they are, each followed by a newline (a value that\n"
"holds newlines then spans several lines).\n"
"\n"
"A key is at most %u bytes, a PUT value at most %llu. Lines end with \\n; one trailing \\r is\n"
"removed. OK to PUT or DEL means the write is visible; it is durable once FLUSH (or\n"
"sync=always) says OK. When standard input is a terminal a prompt \"kv> \" is written to\n"
"standard error and blank lines are ignored.\n"
"\n"
"A mounted store: while kvfs has DATADIR mounted, kv_cli talks to that daemon over\n"
"DATADIR/kvfs.sock (its user and root only) and every command works the same; EXIT ends the\n"
"connection, -o is ignored. --backup runs in the daemon; --check and --dump refuse a store in\n"
"use and say where it is mounted.\n"
"\n"
"One command: " PROG " DATADIR COMMAND [ARGS...] runs COMMAND, prints its reply and exits.\n"
"Each ARG is one token as the shell passes it, spaces and all (one that begins with '\"' is\n"
"decoded); PUT's value is the ARGS after the key joined by single spaces. A command word is\n"
"never taken for a DATADIR: '" PROG " GET k' is refused (write ./GET for such a directory).\n"
"\n"
"Options:\n"
"  -o OPT[,OPT...]    store options (the table below), may be repeated\n"
"  --raw              print keys and values unquoted\n"
"  --dump DATADIR     write every key, its metadata and its value to standard output as a\n"
"                     portable dump (docs/FORMAT.md)\n"
"  --load DATADIR     make a store at DATADIR, which must be missing or an empty directory,\n"
"                     from a dump on standard input. It is built in DATADIR" LOAD_SUFFIX " and\n"
"                     renamed to DATADIR once complete and durable; a damaged or cut dump is\n"
"                     refused (with its offset) and leaves nothing behind\n"
"  --backup DATADIR DEST\n"
"                     copy the store at one point in time into DEST (missing or an empty\n"
"                     directory) as a store of its own: a checkpoint and the log segments\n"
"                     it references; then check the copy. With -o ro the files are copied\n"
"                     as they are (for a store on a read-only filesystem)\n"
"  --check DATADIR    verify the checkpoint, the log and every value byte without changing\n"
"                     anything and print what was found; exit 0 clean (a torn tail is not\n"
"                     damage: it is reported with where the log was cut), 1 damaged, 2 on\n"
"                     error\n"
"  --salvage DATADIR  keep what damage left provable: a damaged value costs its key, a damaged\n"
"                     checkpoint entry its key, damaged log framing the records after it\n"
"                     (renamed with a .damaged suffix inside DATADIR; nothing is deleted)\n"
"  -h, --help         this text\n"
"  -V, --version      the version\n"
"\n"
"A node of a replicated group (docs/REPLICATION.md): -o cluster=FILE,node=ID starts node ID\n"
"of the group FILE lists (one line 'ID HOST:PORT' per node; a node's first start bootstraps\n"
"the group with all of them), its data in DATADIR (DATADIR/store, DATADIR/raft). The shell\n"
"then answers PUT and DEL once a majority holds the write (on a follower: 'ERR not leader;\n"
"leader is ID HOST:PORT'), FLUSH once every earlier write is on a majority, reads from this\n"
"node's own store, which may lag the leader. Clients may also connect to HOST:PORT\n"
"(--connect). EXIT, the end of input, SIGINT and SIGTERM stop the node (a leader hands over\n"
"first); with --serve it reads no standard input and runs until SIGINT or SIGTERM.\n"
"\n"
"DATADIR, when omitted: $KVFS_DATADIR if set, else $XDG_DATA_HOME/kvfs, else\n"
"~/.local/share/kvfs. The store directory is created (mode 0700) when missing.\n"
"\n"
"Exit status: 0 when the store closed cleanly and no command was answered ERR; 1 when a\n"
"command was answered ERR (the shell still answers every line), or the store could not be\n"
"opened (locked by another process, damaged), closed cleanly, checked clean, salvaged,\n"
"dumped, loaded or backed up; 2 for usage errors, which open or create nothing.\n",
		KV_MAX_KEY, (unsigned long long)KV_MAX_WRITE);
	size_t n;
	const struct kv_option_desc *t = kv_option_table(&n);
	report_options(f, "Store options (-o; also kvfs's):", t, n);
	t = repl_option_table(&n);
	report_options(f, "Replication options (-o; a node of a group):", t, n);
}

enum action { ACT_SHELL, ACT_ONESHOT, ACT_CHECK, ACT_SALVAGE, ACT_DUMP, ACT_LOAD, ACT_BACKUP,
	      ACT_CONNECT, ACT_HELP, ACT_VERSION };

struct args {
	enum action action;
	const char *dir; /* NULL: the default */
	const char *dest; /* ACT_BACKUP */
	struct kv_options opts;
	struct repl_options ropts; /* -o as replication reads it (the store's part is opts) */
	int have_opts;
	int cluster;     /* -o cluster= or node=: run a node of a replicated group */
	int serve;       /* --serve: a node that reads no stdin */
	const char *connect; /* ACT_CONNECT: HOST:PORT */
	int raw;
	int cmd_argc;    /* ACT_ONESHOT: the command word and its arguments */
	char **cmd_argv;
};

/* Fills a; on a usage error prints the reason and returns -EINVAL. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "check", required_argument, NULL, 'c' },
		{ "salvage", required_argument, NULL, 's' },
		{ "dump", required_argument, NULL, 'D' },
		{ "load", required_argument, NULL, 'L' },
		{ "backup", required_argument, NULL, 'B' },
		{ "connect", required_argument, NULL, 'C' },
		{ "serve", no_argument, NULL, 'S' },
		{ "raw", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	enum kvcmd_op op;
	int ch, nactions = 0;

	memset(a, 0, sizeof(*a));
	a->action = ACT_SHELL;
	kv_options_default(&a->opts);
	repl_options_default(&a->ropts);
	opterr = 0;
	/* '+': options end at the first operand, so a one-shot command's arguments are its own */
	while ((ch = getopt_long(argc, argv, "+:o:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			err[0] = '\0';
			if (repl_options_parse(&a->ropts, optarg, err, sizeof(err))) {
				fprintf(stderr, PROG ": -o %s: %s\n", optarg, err[0] ? err : "invalid option");
				return -EINVAL;
			}
			a->have_opts = 1;
			break;
		case 'r':
			a->raw = 1;
			break;
		case 'S':
			a->serve = 1;
			break;
		case 'C':
			a->action = ACT_CONNECT;
			a->connect = optarg;
			nactions++;
			break;
		case 'c':
		case 's':
		case 'D':
		case 'L':
		case 'B':
			a->action = ch == 'c' ? ACT_CHECK : ch == 's' ? ACT_SALVAGE :
				    ch == 'D' ? ACT_DUMP : ch == 'L' ? ACT_LOAD : ACT_BACKUP;
			a->dir = optarg;
			nactions++;
			break;
		case 'h':
			a->action = ACT_HELP;
			nactions++;
			break;
		case 'V':
			a->action = ACT_VERSION;
			nactions++;
			break;
		case ':':
			fprintf(stderr, PROG ": %s needs an argument\n", argv[optind - 1]);
			return -EINVAL;
		default:
			if (optopt && optopt != '?')
				fprintf(stderr, PROG ": unknown option -%c\n", optopt);
			else
				fprintf(stderr, PROG ": unknown option %s\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	a->opts = a->ropts.store;
	a->opts.log = note_line; /* the engine's lines (a failed background flush, a reserve it
				   could not cut back) say they come from kv_cli */
	a->cluster = a->ropts.cluster_file || a->ropts.node;
	if (nactions > 1) {
		fprintf(stderr, PROG ": --check, --salvage, --dump, --load, --backup, --connect, --help "
			"and --version exclude each other\n");
		return -EINVAL;
	}
	if (a->action == ACT_HELP || a->action == ACT_VERSION)
		return 0;
	if (a->action == ACT_CONNECT) {
		if (a->have_opts || a->raw || a->serve || optind < argc) {
			fprintf(stderr, PROG ": --connect HOST:PORT takes nothing else (the node "
				"has its options)\n");
			return -EINVAL;
		}
		return 0;
	}
	if (a->serve && !a->cluster) {
		fprintf(stderr, PROG ": --serve runs a node: it needs -o cluster=FILE,node=ID\n");
		return -EINVAL;
	}
	if (a->cluster && (a->action != ACT_SHELL || optind + 1 != argc)) {
		fprintf(stderr, PROG ": -o cluster=FILE,node=ID runs a node: give its DATADIR and "
			"nothing else (no one-shot command, --dump, --load, --backup, --check or "
			"--salvage; stop the node and use DATADIR/store for those)\n");
		return -EINVAL;
	}
	if (a->action != ACT_SHELL) {
		if (a->have_opts && (a->action == ACT_CHECK || a->action == ACT_SALVAGE)) {
			fprintf(stderr, PROG ": -o applies to the shell, --dump and --load, not to "
				"--check or --salvage\n");
			return -EINVAL;
		}
		if (a->raw) {
			fprintf(stderr, PROG ": --raw applies to the shell and to one command only\n");
			return -EINVAL;
		}
		if (a->action == ACT_BACKUP) {
			if (optind == argc || !argv[optind][0]) {
				fprintf(stderr, PROG ": --backup DATADIR needs a DEST directory\n");
				return -EINVAL;
			}
			a->dest = argv[optind++];
		}
		if (optind < argc) {
			fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
			return -EINVAL;
		}
	} else if (optind < argc) {
		a->dir = argv[optind++];
		if (optind < argc) {
			a->action = ACT_ONESHOT;
			a->cmd_argc = argc - optind;
			a->cmd_argv = argv + optind;
		}
	}
	if (a->dir && !a->dir[0]) {
		fprintf(stderr, PROG ": DATADIR is empty\n");
		return -EINVAL;
	}
	/* `kv_cli GET k` must not make a store named GET */
	if (a->dir && kvcmd_lookup(a->dir, strlen(a->dir), &op) == 0) {
		fprintf(stderr, PROG ": '%s' is a command, not a DATADIR (for a directory of that name "
			"write ./%s)\nUsage: " PROG " [-o OPT] [--raw] DATADIR COMMAND [ARGS...]\n",
			a->dir, a->dir);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	char *defdir = NULL;
	int status;

	if (stdfds_ensure() != 0)
		return EXIT_USAGE; /* no /dev/null: nowhere to say so */
	hugepages_reexec(argv);
	/* A reader that goes away must not kill us between a write and its flush: EPIPE instead,
	 * and the store is still closed cleanly. */
	signal(SIGPIPE, SIG_IGN);

	if (parse_args(argc, argv, &a)) {
		fprintf(stderr, "Try '" PROG " --help'.\n");
		repl_options_release(&a.ropts);
		return EXIT_USAGE;
	}
	with_progress(&a.opts); /* recovery, checkpoints, the cleaner: on a terminal */
	switch (a.action) {
	case ACT_HELP:
		usage(stdout);
		status = fflush(stdout) == EOF ? EXIT_USAGE : 0;
		break;
	case ACT_VERSION:
		printf(PROG " (kvfs) %s\n", KV_VERSION);
		status = fflush(stdout) == EOF ? EXIT_USAGE : 0;
		break;
	case ACT_CHECK:
		status = run_check(a.dir);
		break;
	case ACT_SALVAGE:
		status = run_salvage(a.dir);
		break;
	case ACT_DUMP:
		status = run_dump(a.dir, &a.opts);
		break;
	case ACT_LOAD:
		status = run_load(a.dir, &a.opts);
		break;
	case ACT_BACKUP:
		status = run_backup(a.dir, a.dest, &a.opts);
		break;
	case ACT_ONESHOT:
		status = run_oneshot(a.dir, &a.opts, a.raw, a.cmd_argc, a.cmd_argv);
		break;
	case ACT_CONNECT:
		status = run_connect(a.connect);
		break;
	case ACT_SHELL:
	default:
		if (a.cluster) {
			status = run_node(a.dir, &a.ropts, a.raw, a.serve);
			break;
		}
		if (!a.dir) {
			if (default_datadir(&defdir)) {
				status = EXIT_USAGE;
				break;
			}
			a.dir = defdir;
		}
		status = run_shell(a.dir, &a.opts, a.raw);
		break;
	}
	if (fflush(stdout) == EOF && !status)
		status = EXIT_STORE;
	repl_options_release(&a.ropts);
	free(defdir);
	return status;
}
