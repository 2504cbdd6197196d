/* kv_cli.c — a line shell over a kvfs store, and the store's check and salvage front end.
 *
 *   kv_cli [-o OPT[,OPT...]] [DATADIR]    one command per line on stdin, one reply per line on stdout
 *   kv_cli --check DATADIR                 verify without changing anything; exit 0 clean, 1 damaged
 *   kv_cli --salvage DATADIR               keep everything before the damage, move the rest aside
 *
 * stdout carries replies and nothing else, flushed after each one, so a script can drive the shell
 * over a pair of pipes in lock step. Everything meant for a person (prompt, recovery report, open
 * failures) goes to stderr.
 *
 * Exit status: 0 clean, 1 the store could not be opened, closed, checked clean or salvaged, 2 usage
 * or an error that is not about the store's contents. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hugepages.h"
#include "stdfds.h"
#include "kv.h"

#define PROG "kv_cli"

#define EXIT_STORE 1 /* open, close, check or salvage failed, or damage found */
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
 * and a trailing \r. A PUT of exactly KV_MAX_VALUE bytes therefore always fits. */
#define LR_MAX ((size_t)KV_MAX_VALUE + KV_MAX_KEY + 256)
#define LR_KEEP ((size_t)KV_MAX_KEY + 256) /* prefix kept of an overlong line; <= LR_MAX */
#define LR_INIT ((size_t)64 << 10)          /* starting buffer; also what a shrink returns to */

struct linereader {
	int fd;
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
 * The shell.
 * ------------------------------------------------------------------------------------------- */

struct shell {
	struct kv *kv;
	int out_error; /* errno of the first failed write to stdout; then nothing more is answered */
	int interactive; /* stdin is a terminal: prompt, and let blank lines pass */
};

/* One reply line on stdout, flushed at once: the script on the other end waits for it. */
static void reply(struct shell *sh, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(struct shell *sh, const char *fmt, ...)
{
	va_list ap;

	if (sh->out_error)
		return;
	va_start(ap, fmt);
	vfprintf(stdout, fmt, ap);
	va_end(ap);
	putchar('\n');
	errno = 0;
	if (fflush(stdout) == EOF || ferror(stdout))
		sh->out_error = errno ? errno : EIO;
}

/* A write (PUT, DEL) failed. After a failed log write the store refuses writes with -EROFS until it
 * is reopened; name the failure that caused it, which is what the user can act on. */
static void reply_write_error(struct shell *sh, int rc)
{
	struct kv_stats st;

	kv_stats(sh->kv, &st);
	if (rc == -EROFS || st.read_only)
		reply(sh, "ERR store is read-only after a failed write: %s",
		      strerror(st.error ? -st.error : -rc));
	else
		reply(sh, "ERR %s", strerror(-rc));
}

/* A flush or snapshot failed. Once the log has failed, every later flush returns that original
 * error: say that the store is read-only and why, so a second FLUSH does not look like new trouble. */
static void reply_durability_error(struct shell *sh, const char *what, int rc)
{
	struct kv_stats st;

	kv_stats(sh->kv, &st);
	if (st.read_only)
		reply(sh, "ERR %s failed: store is read-only after a failed write: %s", what,
		      strerror(st.error ? -st.error : -rc));
	else
		reply(sh, "ERR %s failed: %s", what, strerror(-rc));
}

/* Tokens are separated by runs of spaces. *pos advances past the token; *tlen 0 when none is left. */
static void next_token(const char *line, size_t len, size_t *pos, const char **tok, size_t *tlen)
{
	size_t i = *pos;

	while (i < len && line[i] == ' ')
		i++;
	*tok = line + i;
	while (i < len && line[i] != ' ')
		i++;
	*tlen = (size_t)(line + i - *tok);
	*pos = i;
}

/* Only spaces left on the line. */
static int at_end(const char *line, size_t len, size_t pos)
{
	while (pos < len && line[pos] == ' ')
		pos++;
	return pos == len;
}

static int token_is(const char *tok, size_t tlen, const char *name)
{
	return tlen == strlen(name) && strncasecmp(tok, name, tlen) == 0;
}

enum cmd { CMD_PUT, CMD_GET, CMD_DEL, CMD_SIZE, CMD_SNAP, CMD_FLUSH, CMD_EXIT };

static const struct {
	const char *name;
	int nkeys; /* 1: takes a key */
} commands[] = {
	[CMD_PUT] = { "PUT", 1 },   [CMD_GET] = { "GET", 1 },     [CMD_DEL] = { "DEL", 1 },
	[CMD_SIZE] = { "SIZE", 0 }, [CMD_SNAP] = { "SNAP", 0 },   [CMD_FLUSH] = { "FLUSH", 0 },
	[CMD_EXIT] = { "EXIT", 0 },
};

static void do_put(struct shell *sh, const char *key, size_t klen, const char *val, size_t vlen)
{
	int rc = kv_put(sh->kv, key, klen, val, vlen);

	if (rc)
		reply_write_error(sh, rc);
	else
		reply(sh, "OK");
}

/* The value's bytes as they are, then \n: a binary value is not escaped (see --help). */
static void do_get(struct shell *sh, const char *key, size_t klen)
{
	void *val = NULL;
	uint64_t vlen = 0;
	int rc = kv_get(sh->kv, key, klen, &val, &vlen);

	if (rc == -ENOENT) {
		reply(sh, "(nil)");
	} else if (rc) {
		reply(sh, "ERR %s", strerror(-rc));
	} else if (!sh->out_error) {
		if (fwrite(val, 1, (size_t)vlen, stdout) != vlen)
			sh->out_error = errno ? errno : EIO;
		reply(sh, "%s", "");
	}
	free(val);
}

static void do_del(struct shell *sh, const char *key, size_t klen)
{
	int rc = kv_del(sh->kv, key, klen);

	if (rc == -ENOENT)
		reply(sh, "(nil)");
	else if (rc)
		reply_write_error(sh, rc);
	else
		reply(sh, "OK");
}

static void do_size(struct shell *sh)
{
	struct kv_stats st;

	kv_stats(sh->kv, &st);
	reply(sh, "%" PRIu64, st.keys);
}

static void do_snap(struct shell *sh)
{
	int rc = kv_snapshot(sh->kv);

	if (rc)
		reply_durability_error(sh, "snapshot", rc);
	else
		reply(sh, "OK");
}

static void do_flush(struct shell *sh)
{
	int rc = kv_flush(sh->kv);

	if (rc)
		reply_durability_error(sh, "flush", rc);
	else
		reply(sh, "OK");
}

/* Answer one line. Returns 1 for EXIT (the caller closes the store and replies), else 0.
 * overlong: the line was longer than any valid command and only its start is in line.
 * A blank line is an error for a script (it still gets its one reply) but nothing at a prompt. */
static int shell_line(struct shell *sh, const char *line, size_t len, int overlong)
{
	const char *tok, *key;
	size_t tlen, klen, pos = 0;
	size_t c;

	next_token(line, len, &pos, &tok, &tlen);
	if (tlen == 0) {
		if (overlong || !sh->interactive)
			reply(sh, "%s", overlong ? "ERR line too long" : "ERR empty line");
		return 0;
	}
	for (c = 0; c < sizeof(commands) / sizeof(commands[0]); c++)
		if (token_is(tok, tlen, commands[c].name))
			break;
	if (c == sizeof(commands) / sizeof(commands[0])) {
		if (tlen > 32)
			reply(sh, "ERR unknown command");
		else
			reply(sh, "ERR unknown command '%.*s'", (int)tlen, tok);
		return 0;
	}
	if (commands[c].nkeys == 0) {
		if (overlong || !at_end(line, len, pos))
			reply(sh, "ERR %s takes no arguments", commands[c].name);
		else if (c == CMD_EXIT)
			return 1;
		else if (c == CMD_SIZE)
			do_size(sh);
		else if (c == CMD_SNAP)
			do_snap(sh);
		else
			do_flush(sh);
		return 0;
	}

	next_token(line, len, &pos, &key, &klen);
	if (klen == 0) {
		reply(sh, c == CMD_PUT ? "ERR %s needs a key and a value" : "ERR %s needs a key",
		      commands[c].name);
		return 0;
	}
	/* An overlong line cut inside its first token: that token is the key, and it is too long. */
	if (klen > KV_MAX_KEY || (overlong && pos == len)) {
		reply(sh, "ERR key too long (at most %u bytes)", KV_MAX_KEY);
		return 0;
	}
	if (c != CMD_PUT) {
		if (overlong || !at_end(line, len, pos))
			reply(sh, "ERR %s takes one key (keys cannot contain spaces)", commands[c].name);
		else if (c == CMD_GET)
			do_get(sh, key, klen);
		else
			do_del(sh, key, klen);
		return 0;
	}

	/* PUT: the value is everything after the one space that ends the key, spaces included. */
	if (pos == len) {
		reply(sh, "ERR PUT needs a value (for an empty one: \"PUT key \")");
		return 0;
	}
	pos++;
	if (overlong || len - pos > KV_MAX_VALUE) {
		reply(sh, "ERR value too long (at most %llu bytes)", (unsigned long long)KV_MAX_VALUE);
		return 0;
	}
	do_put(sh, key, klen, line + pos, len - pos);
	return 0;
}

/* Answer lines until EXIT or the end of input, then close the store. Returns the exit status. */
static int shell_run(struct kv *kv)
{
	struct shell sh = { .kv = kv, .interactive = isatty(STDIN_FILENO) };
	struct linereader lr;
	int explicit_exit = 0, status = 0, rc;

	rc = lr_init(&lr, STDIN_FILENO);
	if (rc) {
		fprintf(stderr, PROG ": %s\n", strerror(-rc));
		status = EXIT_STORE;
		goto close;
	}
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
	rc = kv_close(kv);
	if (rc) {
		/* An explicit EXIT gets its answer as a reply; at end of input nobody asked. */
		if (explicit_exit)
			reply(&sh, "ERR close failed: %s", strerror(-rc));
		else
			fprintf(stderr, PROG ": closing the store: %s\n", strerror(-rc));
		return EXIT_STORE;
	}
	if (explicit_exit)
		reply(&sh, "OK");
	if (sh.out_error && !status) {
		/* the EXIT reply itself could not be written: nobody was told it went well */
		fprintf(stderr, PROG ": writing standard output: %s\n", strerror(sh.out_error));
		status = EXIT_STORE;
	}
	return status;
}

/* ---------------------------------------------------------------------------------------------
 * Reports, check, salvage, open.
 * ------------------------------------------------------------------------------------------- */

/* Everything the report holds, one "name: value" line each, for --check and --salvage. */
static void print_report(FILE *f, const struct kv_report *rep)
{
	if (rep->snapshot_lsn)
		fprintf(f, "snapshot: lsn %" PRIu64 ", %" PRIu64 " keys\n", rep->snapshot_lsn,
			rep->snapshot_keys);
	else
		fprintf(f, "snapshot: none\n");
	fprintf(f, "log segments: %" PRIu64 "\n", rep->segments);
	fprintf(f, "records: %" PRIu64 " after the snapshot\n", rep->records_replayed);
	fprintf(f, "last lsn: %" PRIu64 "\n", rep->last_lsn);
	if (rep->tail_torn)
		fprintf(f, "torn tail: %" PRIu64 " bytes at %s offset %" PRIu64 "\n", rep->tail_bytes_cut,
			rep->tail_file, rep->tail_offset);
	else if (rep->tail_bytes_cut)
		fprintf(f, "torn tail: none (%" PRIu64 " zero bytes of unused preallocation at %s offset %"
			PRIu64 ")\n", rep->tail_bytes_cut, rep->tail_file, rep->tail_offset);
	else
		fprintf(f, "torn tail: none\n");
	if (rep->damaged)
		fprintf(f, "damage: %s offset %" PRIu64 "\n", rep->damage_file, rep->damage_offset);
	else
		fprintf(f, "damage: none\n");
	if (rep->message[0])
		fprintf(f, "message: %s\n", rep->message);
}

static int run_check(const char *dir)
{
	struct kv_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = kv_check(dir, NULL, &rep);
	if (rc && rc != -EUCLEAN) {
		fprintf(stderr, PROG ": checking %s: %s%s%s\n", dir, strerror(-rc),
			rep.message[0] ? ": " : "", rep.message);
		return EXIT_USAGE;
	}
	print_report(stdout, &rep);
	/* The report says damaged when the return code does, but trust either. */
	if (rc == -EUCLEAN || rep.damaged) {
		if (strstr(rep.message, "--salvage"))
			printf("status: damaged\n");
		else
			printf("status: damaged; '" PROG " --salvage %s' keeps everything before the "
			       "damage\n", dir);
		return EXIT_STORE;
	}
	printf("status: clean\n");
	return 0;
}

static int run_salvage(const char *dir)
{
	struct kv_report rep;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = kv_salvage(dir, NULL, &rep);
	if (rc) {
		fprintf(stderr, PROG ": salvaging %s: %s%s%s\n", dir, strerror(-rc),
			rep.message[0] ? ": " : "", rep.message);
		return EXIT_STORE;
	}
	print_report(stdout, &rep);
	printf("kept: everything up to lsn %" PRIu64 "\n", rep.last_lsn);
	printf("set aside: %u files, renamed inside %s (nothing deleted)\n", rep.set_aside, dir);
	return 0;
}

/* A line on stderr carrying the engine's message, prefixed with dir unless it names it already. */
static void print_message(const char *dir, const char *msg)
{
	if (strstr(msg, dir))
		fprintf(stderr, PROG ": %s\n", msg);
	else
		fprintf(stderr, PROG ": %s: %s\n", dir, msg);
}

/* Open failures get one clear line (two for damage when the report does not say the way out). */
static void report_open_error(const char *dir, int rc, const struct kv_report *rep)
{
	if (rc == -EWOULDBLOCK) {
		if (rep->message[0])
			print_message(dir, rep->message);
		else
			fprintf(stderr, PROG ": %s: store is in use by another process (locked)\n", dir);
	} else if (rc == -EUCLEAN) {
		if (rep->message[0])
			print_message(dir, rep->message);
		else
			fprintf(stderr, PROG ": %s: damage in %s at offset %" PRIu64 "; refusing to open\n",
				dir, rep->damage_file, rep->damage_offset);
		if (!strstr(rep->message, "--salvage"))
			fprintf(stderr, PROG ": run '" PROG " --salvage %s' to keep everything before the "
				"damage and move damaged files aside\n", dir);
	} else {
		fprintf(stderr, PROG ": %s: cannot open store: %s%s%s\n", dir, strerror(-rc),
			rep->message[0] ? ": " : "", rep->message);
	}
}

/* A successful open is silent unless recovery changed something a person should know about:
 * a torn tail cut off, or (recovery=point_in_time) damage and everything after it set aside.
 * Zeros after the last record are unused preallocated space, not lost writes: not reported. */
static void report_recovery(const char *dir, const struct kv_report *rep)
{
	if (!rep->tail_torn && !rep->damaged && !rep->set_aside)
		return;
	if (rep->message[0]) {
		print_message(dir, rep->message);
		return;
	}
	if (rep->tail_torn)
		fprintf(stderr, PROG ": %s: cut a torn tail of %" PRIu64 " bytes at %s offset %" PRIu64
			"; recovered to lsn %" PRIu64 "\n", dir, rep->tail_bytes_cut, rep->tail_file,
			rep->tail_offset, rep->last_lsn);
	if (rep->damaged || rep->set_aside)
		fprintf(stderr, PROG ": %s: damage in %s at offset %" PRIu64 "; recovered to lsn %"
			PRIu64 ", %u files set aside\n", dir, rep->damage_file, rep->damage_offset,
			rep->last_lsn, rep->set_aside);
}

static int run_shell(const char *dir, const struct kv_options *o)
{
	struct kv_report rep;
	struct kv *kv = NULL;
	int rc;

	memset(&rep, 0, sizeof(rep));
	rc = kv_open(&kv, dir, o, &rep);
	if (rc) {
		report_open_error(dir, rc, &rep);
		return EXIT_STORE;
	}
	report_recovery(dir, &rep);
	return shell_run(kv);
}

/* ---------------------------------------------------------------------------------------------
 * Arguments.
 * ------------------------------------------------------------------------------------------- */

/* Create the missing parents of path (not path itself: kv_open does that), mode 0700 as the XDG
 * base directory spec asks for directories it creates. */
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
		if (mkdir(p, 0700) < 0 && errno != EEXIST) {
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
"Usage: " PROG " [-o OPT[,OPT...]] [DATADIR]\n"
"       " PROG " --check DATADIR\n"
"       " PROG " --salvage DATADIR\n"
"       " PROG " --help | --version\n"
"\n"
"A line shell over a kvfs store: one command per line on standard input, one reply line per\n"
"command on standard output, flushed after every reply: every input line, even an empty or\n"
"a wrong one, gets exactly one reply line.\n"
"\n"
"Commands (case-insensitive):\n"
"  PUT key value   set key; the value is the rest of the line after the one space that\n"
"                  follows the key, spaces kept, possibly empty (\"PUT key \")  -> OK\n"
"  GET key         the value, or (nil)\n"
"  DEL key         OK, or (nil) when absent\n"
"  SIZE            the number of keys\n"
"  SNAP            OK once a snapshot is durable\n"
"  FLUSH           OK once every earlier write is durable\n"
"  EXIT            close the store cleanly, reply OK, exit 0; end of input does the same\n"
"                  without the reply\n"
"  anything wrong  ERR <reason>, and the shell goes on\n"
"\n"
"A key is one token without spaces, 1 to %u bytes; a value is at most %llu bytes.\n"
"Lines end with \\n; one trailing \\r is removed. A value containing a newline cannot be\n"
"written with PUT (write it through the mounted filesystem instead). GET prints a value's\n"
"bytes as they are followed by \\n, without escaping: a binary value holding a newline makes\n"
"the reply span lines, so read such values through the mount. A reply of OK to PUT or DEL means\n"
"the write is visible; it is durable once FLUSH (or sync=always) says OK.\n"
"When standard input is a terminal a prompt \"kv> \" is written to standard error and\n"
"blank lines are ignored.\n"
"\n"
"Options:\n"
"  -o OPT[,OPT...]    store options, may be repeated:\n"
"       sync=batch|always|none         when writes become durable (default %s)\n"
"       commit_ms=N                    batch mode's flush bound in ms (default %u)\n"
"       snapshot_wal_bytes=N           snapshot once the log since the last one is this big\n"
"                                      (or as big as the data then, if that is more)\n"
"       segment_bytes=N                log segment size\n"
"       recovery=strict|point_in_time  on damage other than a torn tail: refuse to open\n"
"                                      (default), or keep everything before it and set\n"
"                                      the rest aside\n"
"  --check DATADIR    verify snapshot and log without changing anything and print what was\n"
"                     found; exit 0 clean (a torn tail is not damage), 1 damaged, 2 on error\n"
"  --salvage DATADIR  keep everything before the first damage; move damaged files aside\n"
"                     (renamed with a .damaged suffix inside DATADIR; nothing is deleted)\n"
"  -h, --help         this text\n"
"  -V, --version      the version\n"
"\n"
"DATADIR, when omitted: $KVFS_DATADIR if set, else $XDG_DATA_HOME/kvfs, else\n"
"~/.local/share/kvfs. The store directory is created (mode 0700) when missing.\n"
"\n"
"Exit status: 0 after a clean close; 1 when the store cannot be opened (locked by another\n"
"process, damaged), closed cleanly, checked clean or salvaged; 2 for usage errors.\n",
		KV_MAX_KEY, (unsigned long long)KV_MAX_VALUE, kv_sync_name(o.sync), o.commit_ms);
}

enum action { ACT_SHELL, ACT_CHECK, ACT_SALVAGE, ACT_HELP, ACT_VERSION };

struct args {
	enum action action;
	const char *dir; /* NULL: the default */
	struct kv_options opts;
	int have_opts;
};

/* Fills a; on a usage error prints the reason and returns -EINVAL. */
static int parse_args(int argc, char **argv, struct args *a)
{
	static const struct option longopts[] = {
		{ "check", required_argument, NULL, 'c' },
		{ "salvage", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char err[256];
	int ch, nactions = 0;

	memset(a, 0, sizeof(*a));
	a->action = ACT_SHELL;
	kv_options_default(&a->opts);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "+:o:hV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			err[0] = '\0';
			if (kv_options_parse(&a->opts, optarg, err, sizeof(err))) {
				fprintf(stderr, PROG ": -o %s: %s\n", optarg, err[0] ? err : "invalid option");
				return -EINVAL;
			}
			a->have_opts = 1;
			break;
		case 'c':
		case 's':
			a->action = ch == 'c' ? ACT_CHECK : ACT_SALVAGE;
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
	if (nactions > 1) {
		fprintf(stderr, PROG ": --check, --salvage, --help and --version exclude each other\n");
		return -EINVAL;
	}
	if (a->action == ACT_HELP || a->action == ACT_VERSION)
		return 0;
	if (a->action != ACT_SHELL) {
		if (a->have_opts) {
			fprintf(stderr, PROG ": -o applies to the shell, not to --check or --salvage\n");
			return -EINVAL;
		}
		if (optind < argc) {
			fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
			return -EINVAL;
		}
	} else if (optind < argc) {
		a->dir = argv[optind++];
		if (optind < argc) {
			fprintf(stderr, PROG ": unexpected argument '%s'\n", argv[optind]);
			return -EINVAL;
		}
	}
	if (a->dir && !a->dir[0]) {
		fprintf(stderr, PROG ": DATADIR is empty\n");
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
		return EXIT_USAGE;
	}
	switch (a.action) {
	case ACT_HELP:
		usage(stdout);
		return fflush(stdout) == EOF ? EXIT_USAGE : 0;
	case ACT_VERSION:
		printf(PROG " (kvfs) %s\n", KV_VERSION);
		return fflush(stdout) == EOF ? EXIT_USAGE : 0;
	case ACT_CHECK:
		status = run_check(a.dir);
		break;
	case ACT_SALVAGE:
		status = run_salvage(a.dir);
		break;
	case ACT_SHELL:
	default:
		if (!a.dir) {
			if (default_datadir(&defdir))
				return EXIT_USAGE;
			a.dir = defdir;
		}
		status = run_shell(a.dir, &a.opts);
		break;
	}
	if (fflush(stdout) == EOF && !status)
		status = EXIT_STORE;
	free(defdir);
	return status;
}
