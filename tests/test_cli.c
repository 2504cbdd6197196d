/* test_cli.c — kv_cli as a script sees it: the line protocol, --check, --salvage, locking, the
 * exit codes, and what survives a kill -9.
 *
 * Every test drives the real binary (KV_CLI) through pipes in a fresh scratch store. Not covered
 * here: the read-only reply after a failed log write (cannot be provoked from outside the process;
 * the engine's fault tests cover the state, reply_write_error in kv_cli.c the wording). The 1 GiB
 * value tests run only with KVFS_BIG_TESTS=1: they move gigabytes through pipes and memory. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "crc32c.h"
#include "kv.h"
#include "kvio.h"
#include "le.h"
#include "mountutil.h"
#include "testutil.h"
#include "logfmt.h"

#define READ_TIMEOUT_MS 30000 /* a hang guard, not a timing check: sanitizer builds are slow */

static uint64_t seed;      /* this run's seed (tu_seed in main, inherited by each forked test) */
static char tmp[PATH_MAX]; /* scratch directory of the running test */
static char store[PATH_MAX + 16];

static void setup(void)
{
	ck_assert_int_eq(tu_tmpdir(tmp, sizeof(tmp)), 0);
	snprintf(store, sizeof(store), "%s/store", tmp);
}

static void teardown(void)
{
	tu_rmrf(tmp);
}


/* ---- running kv_cli ---------------------------------------------------------------------- */

struct result {
	int code; /* exit status; the process must have exited, not been killed */
	char *out, *err;
};

static void result_free(struct result *r)
{
	free(r->out);
	free(r->err);
}

/* kv_cli with up to six arguments (NULL-terminated), fed input. */
static struct result run(const char *input, const char *a1, const char *a2, const char *a3,
			 const char *a4, const char *a5, const char *a6)
{
	const char *argv[] = { mt_kv_cli(), a1, a2, a3, a4, a5, a6, NULL };
	struct result r = { 0 };
	int status = 0;

	ck_assert_int_eq(tu_run(argv, input, &r.out, &r.err, &status), 0);
	ck_assert_msg(WIFEXITED(status), "kv_cli did not exit normally (status %#x); stderr: %s",
		      status, r.err);
	r.code = WEXITSTATUS(status);
	return r;
}

/* The shell over the test's store: input in, stdout must be exactly expected, exit 0. */
static void expect_replies(const char *input, const char *expected)
{
	struct result r = run(input, store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_msg(r.code == 0, "exit %d; stderr: %s", r.code, r.err);
	ck_assert_str_eq(r.out, expected);
	result_free(&r);
}

/* Each line of out (which must have exactly n lines) starts with "ERR ". */
static void expect_all_err(const char *out, int n)
{
	const char *p = out;
	int lines = 0;

	while (*p) {
		const char *nl = strchr(p, '\n');

		ck_assert_msg(nl, "reply without a newline: %s", p);
		ck_assert_msg(strncmp(p, "ERR ", 4) == 0 && nl - p > 4, "not an ERR reply: %.*s",
			      (int)(nl - p), p);
		lines++;
		p = nl + 1;
	}
	ck_assert_int_eq(lines, n);
}

/* A kv_cli driven line by line. */
struct proc {
	pid_t pid;
	int in, out;
};

static struct proc spawn(const char *a1, const char *a2, const char *a3)
{
	const char *argv[] = { mt_kv_cli(), a1, a2, a3, NULL };
	struct proc p;

	ck_assert_int_eq(tu_spawn(argv, &p.in, &p.out, &p.pid), 0);
	return p;
}

static void send_text(struct proc *p, const char *text)
{
	ck_assert_int_eq(tu_write_all(p->in, text, strlen(text)), 0);
}

static void expect_line(struct proc *p, const char *expected)
{
	char line[4096];
	int n = tu_read_line(p->out, line, sizeof(line), READ_TIMEOUT_MS);

	ck_assert_msg(n >= 0, "no reply (expected '%s'): %s", expected, strerror(-n));
	ck_assert_str_eq(line, expected);
}

static void kill9(struct proc *p)
{
	int status = 0;

	ck_assert_int_eq(tu_kill(p->pid, &status), 0);
	ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	close(p->in);
	close(p->out);
}

/* Close stdin (end of input = EXIT) and return the exit status. */
static int finish(struct proc *p)
{
	int status = 0;

	close(p->in);
	while (waitpid(p->pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	close(p->out);
	ck_assert_msg(WIFEXITED(status), "kv_cli killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

/* ---- stores on disk ---------------------------------------------------------------------- */

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert_int_ge(asprintf(&p, "%s/%s", dir, name), 0);
	return p;
}

/* The one file in the store matching pattern (e.g. "wal-*.log"); the last in name order when
 * there are several. NULL when none. */
static char *store_file(const char *pattern)
{
	char *pat = path_in(store, pattern), *found = NULL;
	glob_t g;

	if (glob(pat, 0, NULL, &g) == 0) {
		found = strdup(g.gl_pathv[g.gl_pathc - 1]);
		globfree(&g);
	}
	free(pat);
	return found;
}

static void flip_byte(const char *path, size_t off)
{
	char *data;
	size_t len;

	ck_assert_int_eq(tu_read_file(path, &data, &len), 0);
	ck_assert_uint_lt(off, len);
	data[off] ^= 0x5a;
	ck_assert_int_eq(tu_write_file(path, data, len), 0);
	free(data);
}

static const char *value_of(int i)
{
	static char v[128];

	snprintf(v, sizeof(v), "value-%03d-%s", i, "the-rest-of-it-makes-each-record-longer");
	return v;
}

/* "PUT k000 value-000-...\n" ... for keys [from, to). */
static char *put_lines(int from, int to)
{
	size_t cap = (size_t)(to - from) * 160 + 1, len = 0;
	char *s = malloc(cap);

	ck_assert_ptr_nonnull(s);
	s[0] = '\0';
	for (int i = from; i < to; i++)
		len += (size_t)snprintf(s + len, cap - len, "PUT k%03d %s\n", i, value_of(i));
	return s;
}

/* A store with n records k000..k(n-1), closed cleanly. */
static void make_store(int n)
{
	char *input = put_lines(0, n), *expected = malloc((size_t)n * 3 + 1);

	ck_assert_ptr_nonnull(expected);
	expected[0] = '\0';
	for (int i = 0; i < n; i++)
		strcat(expected, "OK\n");
	expect_replies(input, expected);
	free(input);
	free(expected);
}

/* 100 records, then a byte flipped inside record 50's key: damage followed by valid records,
 * which salvage cuts at (a damaged key name is never applied; a damaged value byte alone costs
 * only its key: DURABILITY 4.4). Found by content (the key stands a few bytes before the
 * value), so the test does not depend on where the log puts its records. */
static void make_damaged_store(void)
{
	char *wal, *data;
	const char *hit;
	size_t len;

	make_store(100);
	wal = store_file("wal-*.log");
	ck_assert_msg(wal, "no log segment in %s", store);
	ck_assert_int_eq(tu_read_file(wal, &data, &len), 0);
	hit = memmem(data, len, value_of(50), strlen(value_of(50)));
	ck_assert_msg(hit, "record 50 not found in %s", wal);
	while (hit > data && memcmp(hit, "k050", 4))
		hit--;
	ck_assert_msg(hit > data, "record 50's key not found in %s", wal);
	flip_byte(wal, (size_t)(hit - data) + 2);
	free(data);
	free(wal);
}

/* 100 records, then a byte flipped inside record 50's value: damage provably in value bytes
 * only, which costs only k050 (DURABILITY 4.2, 4.4). */
static void make_value_damaged_store(void)
{
	char *wal, *data;
	const char *hit;
	size_t len;

	make_store(100);
	wal = store_file("wal-*.log");
	ck_assert_msg(wal, "no log segment in %s", store);
	ck_assert_int_eq(tu_read_file(wal, &data, &len), 0);
	hit = memmem(data, len, value_of(50), strlen(value_of(50)));
	ck_assert_msg(hit, "record 50 not found in %s", wal);
	flip_byte(wal, (size_t)(hit - data) + 12);
	free(data);
	free(wal);
}

/* 10 records, SNAP, 2 more; then a byte of the checkpoint's 48-byte header flipped (attack4
 * finding 1: its salt and counts). */
static void make_checkpoint_header_damaged_store(void)
{
	char *input = put_lines(0, 10), *more = put_lines(10, 12), *ck;
	size_t n = strlen(input);

	input = realloc(input, n + strlen(more) + 8);
	ck_assert_ptr_nonnull(input);
	strcpy(input + n, "SNAP\n");
	strcat(input, more);
	expect_replies(input, "OK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\nOK\n");
	ck = store_file("ckpt-*.kvc");
	ck_assert_msg(ck, "no checkpoint in %s", store);
	flip_byte(ck, 20);
	free(ck);
	free(input);
	free(more);
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A half-written record header right after the last record of the last segment: a torn tail.
 * Walks the record framing of wal.h (a record with length 0 and crc 0 is the zero tail). */
static void tear_the_tail(void)
{
	static const unsigned char torn[6] = { 0x11, 0x22, 0x33, 0x44, 0x10, 0x00 };
	char *wal = store_file("wal-*.log"), *data;
	size_t len, off = SEG_HDR_SIZE;

	ck_assert_ptr_nonnull(wal);
	ck_assert_int_eq(tu_read_file(wal, &data, &len), 0);
	while (off + REC_HDR_SIZE <= len) {
		const unsigned char *h = (const unsigned char *)data + off;

		if (le32(h) == 0 && le32(h + 4) == 0) {
			/* the padding before the close mark (docs/FORMAT.md 3.3), or the end */
			size_t b = (off + LOG_BLOCK - 1) / LOG_BLOCK * LOG_BLOCK;
			if (b == off || b + REC_HDR_SIZE > len || le32((const unsigned char *)data + b) == 0)
				break;
			off = b;
			continue;
		}
		off += REC_HDR_SIZE + le32(h + 4);
	}
	ck_assert_uint_le(off, len);
	if (off + sizeof(torn) > len) {
		char *bigger = realloc(data, off + sizeof(torn));

		ck_assert_ptr_nonnull(bigger);
		data = bigger;
		len = off + sizeof(torn);
	}
	memcpy(data + off, torn, sizeof(torn));
	ck_assert_int_eq(tu_write_file(wal, data, len), 0);
	free(data);
	free(wal);
}

/* After a crash with records k000..k(total-1) attempted in order: the store must hold exactly
 * k000..k(n-1) for some n, each with its value. Returns n. */
static int surviving_prefix(int total)
{
	size_t cap = (size_t)total * 16 + 16, len = 0;
	char *input = malloc(cap), *line, *save = NULL;
	struct result r;
	int n = 0, i = 0;
	long size;

	ck_assert_ptr_nonnull(input);
	for (int k = 0; k < total; k++)
		len += (size_t)snprintf(input + len, cap - len, "GET k%03d\n", k);
	snprintf(input + len, cap - len, "SIZE\n");
	r = run(input, store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "reopen failed: exit %d: %s", r.code, r.err);
	for (line = strtok_r(r.out, "\n", &save); line && i < total;
	     line = strtok_r(NULL, "\n", &save), i++) {
		if (strcmp(line, "(nil)") == 0)
			continue;
		ck_assert_msg(n == i, "k%03d present after k%03d is missing: not a prefix", i, n);
		ck_assert_str_eq(line, value_of(i));
		n++;
	}
	ck_assert_int_eq(i, total);
	ck_assert_ptr_nonnull(line);
	size = strtol(line, NULL, 10);
	ck_assert_int_eq(size, n);
	result_free(&r);
	free(input);
	return n;
}

/* The sanitizers' shadow memory and quarantine make a process's RSS say nothing about its own
 * allocations. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

/* kv_cli with binary standard input and output: files, for dumps. */
struct fresult {
	int code;        /* exit status; the process must have exited */
	char *err;       /* its stderr */
	long maxrss_kb;  /* its peak resident memory */
};

static void fresult_free(struct fresult *r)
{
	free(r->err);
}

/* argv with stdin from in and stdout to out (NULL: /dev/null for either), and files limited to
 * fsize bytes (0: no limit; SIGXFSZ ignored, so a write past it fails with EFBIG). */
static struct fresult run_files_limited(const char *const argv[], const char *in, const char *out,
					rlim_t fsize)
{
	char *errpath = path_in(tmp, "stderr.txt");
	struct fresult r = { 0 };
	struct rusage ru;
	int status = 0;
	pid_t pid;

	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int fi = open(in ? in : "/dev/null", O_RDONLY);
		int fo = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
		int fe = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (fi < 0 || fo < 0 || fe < 0 || dup2(fi, 0) < 0 || dup2(fo, 1) < 0 || dup2(fe, 2) < 0)
			_exit(127);
		if (fsize) {
			struct rlimit rl = { fsize, fsize };

			signal(SIGXFSZ, SIG_IGN);
			if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
				_exit(127);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	while (wait4(pid, &status, 0, &ru) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(status), "kv_cli did not exit normally (status %#x)", status);
	r.code = WEXITSTATUS(status);
	r.maxrss_kb = ru.ru_maxrss;
	ck_assert_int_eq(tu_read_file(errpath, &r.err, NULL), 0);
	free(errpath);
	return r;
}

static struct fresult run_files(const char *const argv[], const char *in, const char *out)
{
	return run_files_limited(argv, in, out, 0);
}

/* The shell over dir: input in, stdout must be exactly expected, exit 0. */
static void expect_replies_in(const char *dir, const char *input, const char *expected)
{
	struct result r = run(input, dir, NULL, NULL, NULL, NULL, NULL);

	ck_assert_msg(r.code == 0, "exit %d; stderr: %s", r.code, r.err);
	ck_assert_str_eq(r.out, expected);
	result_free(&r);
}

/* The shell over the test's store, every command answered without ERR. */
static void run_ok(const char *input)
{
	struct result r = run(input, store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_msg(r.code == 0, "exit %d; stdout: %.200s; stderr: %s", r.code, r.out, r.err);
	result_free(&r);
}

/* ---- the protocol ------------------------------------------------------------------------ */

START_TEST(put_replies_ok_and_get_returns_the_value)
{
	expect_replies("PUT greeting hello\nGET greeting\n", "OK\nhello\n");
}
END_TEST

START_TEST(put_of_an_existing_key_replaces_its_value)
{
	expect_replies("PUT k one\nPUT k two\nGET k\nSIZE\n", "OK\nOK\ntwo\n1\n");
}
END_TEST

START_TEST(get_of_an_absent_key_replies_nil)
{
	expect_replies("GET nothing\n", "(nil)\n");
}
END_TEST

START_TEST(del_replies_ok_then_nil_when_the_key_is_absent)
{
	expect_replies("PUT k v\nDEL k\nDEL k\nGET k\nDEL never\n", "OK\nOK\n(nil)\n(nil)\n(nil)\n");
}
END_TEST

START_TEST(size_replies_the_number_of_keys)
{
	expect_replies("SIZE\nPUT a 1\nPUT b 2\nPUT a 3\nSIZE\nDEL b\nSIZE\n",
		       "0\nOK\nOK\nOK\n2\nOK\n1\n");
}
END_TEST

START_TEST(snap_replies_ok_once_a_snapshot_is_on_disk)
{
	struct result r;

	expect_replies("PUT a 1\nPUT b 2\nSNAP\n", "OK\nOK\nOK\n");
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_msg(strstr(r.out, "snapshot: lsn 2"), "no snapshot at lsn 2 in:\n%s", r.out);
	result_free(&r);
}
END_TEST

START_TEST(flush_replies_ok)
{
	expect_replies("FLUSH\nPUT a 1\nFLUSH\n", "OK\nOK\nOK\n");
}
END_TEST

START_TEST(exit_replies_ok_after_closing_and_reads_no_further)
{
	expect_replies("PUT a 1\nEXIT\nPUT b 2\n", "OK\nOK\n");
	expect_replies("SIZE\nGET a\n", "1\n1\n");
}
END_TEST

START_TEST(commands_are_case_insensitive_and_keys_are_not)
{
	expect_replies("put a 1\nGet a\ngEt A\nsize\nFlush\nsnap\ndel a\nSize\nexit\n",
		       "OK\n1\n(nil)\n1\nOK\nOK\nOK\n0\nOK\n");
}
END_TEST

START_TEST(value_is_the_rest_of_the_line_with_its_spaces)
{
	expect_replies("PUT k  two spaces  and trailing  \nGET k\n", "OK\n two spaces  and trailing  \n");
}
END_TEST

START_TEST(empty_value_is_allowed)
{
	expect_replies("PUT k \nGET k\nSIZE\n", "OK\n\n1\n");
}
END_TEST

START_TEST(a_trailing_carriage_return_is_stripped)
{
	expect_replies("PUT k v\r\nGET k\r\nSIZE\r\n", "OK\nv\n1\n");
}
END_TEST

START_TEST(a_last_line_without_newline_is_still_a_command)
{
	expect_replies("PUT k v\nGET k", "OK\nv\n");
}
END_TEST

START_TEST(values_of_many_megabytes_round_trip)
{
	size_t vlen = 24u << 20; /* far beyond any line buffer's first size */
	char *input = malloc(vlen + 64), *expected = malloc(vlen + 16);
	struct result r;

	ck_assert_ptr_nonnull(input);
	ck_assert_ptr_nonnull(expected);
	memcpy(input, "PUT big ", 8);
	for (size_t i = 0; i < vlen; i++)
		input[8 + i] = (char)('a' + i % 26);
	strcpy(input + 8 + vlen, "\nGET big\n");
	memcpy(expected, "OK\n", 3);
	memcpy(expected + 3, input + 8, vlen);
	strcpy(expected + 3 + vlen, "\n");
	r = run(input, store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_uint_eq(strlen(r.out), vlen + 4);
	ck_assert(memcmp(r.out, expected, vlen + 4) == 0);
	result_free(&r);
	free(input);
	free(expected);
}
END_TEST

START_TEST(each_reply_is_flushed_before_the_next_command_is_read)
{
	/* Lock step: the next command is sent only once the previous reply has arrived. */
	struct proc p = spawn(store, NULL, NULL);

	send_text(&p, "PUT a 1\n");
	expect_line(&p, "OK");
	send_text(&p, "GET a\n");
	expect_line(&p, "1");
	send_text(&p, "NOPE\n");
	{
		char line[256];

		ck_assert_int_gt(tu_read_line(p.out, line, sizeof(line), READ_TIMEOUT_MS), 4);
		ck_assert(strncmp(line, "ERR ", 4) == 0);
	}
	send_text(&p, "SIZE\n");
	expect_line(&p, "1");
	ck_assert_int_eq(finish(&p), 1); /* one command was answered ERR */
}
END_TEST

/* ---- errors: ERR and the shell goes on --------------------------------------------------- */

START_TEST(unknown_command_replies_err_and_the_shell_goes_on)
{
	struct result r = run("FROB a\nGETT a\nPUT a 1\nGET a\n", store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strncmp(r.out, "ERR unknown command", 19) == 0, "got: %s", r.out);
	ck_assert_msg(strstr(r.out, "\nERR unknown command"), "got: %s", r.out);
	ck_assert_msg(strstr(r.out, "\nOK\n1\n"), "the shell did not go on: %s", r.out);
	result_free(&r);
}
END_TEST

START_TEST(missing_arguments_reply_err)
{
	struct result r = run("GET\nDEL\nPUT\nPUT k\nGET  \n", store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	expect_all_err(r.out, 5);
	result_free(&r);
	expect_replies("SIZE\n", "0\n");
}
END_TEST

START_TEST(extra_arguments_reply_err)
{
	/* "EXIT x" is an error, not an exit: the SIZE after it is still answered. */
	struct result r = run("GET a b\nDEL a b\nSIZE x\nSNAP x\nFLUSH x\nEXIT x\n", store, NULL, NULL,
			      NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	expect_all_err(r.out, 6);
	result_free(&r);
	r = run("PUT a 1\nGET a b\nSIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "OK\nERR GET takes one key (quote a key that holds spaces: GET \"a b\")\n1\n");
	result_free(&r);
}
END_TEST

START_TEST(empty_line_replies_err)
{
	struct result r = run("\n   \n", store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	expect_all_err(r.out, 2);
	result_free(&r);
}
END_TEST

START_TEST(key_of_4096_bytes_is_accepted_and_4097_refused)
{
	char *input = malloc(4 * (KV_MAX_KEY + 16)), *key = malloc(KV_MAX_KEY + 2);
	struct result r;

	ck_assert_ptr_nonnull(input);
	ck_assert_ptr_nonnull(key);
	memset(key, 'k', KV_MAX_KEY + 1);
	key[KV_MAX_KEY + 1] = '\0';
	/* the 4097-byte key first, then the same key cut to 4096 */
	sprintf(input, "PUT %s v\nGET %s\nPUT %.*s v\nGET %.*s\n", key, key, (int)KV_MAX_KEY, key,
		(int)KV_MAX_KEY, key);
	r = run(input, store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "ERR key too long (at most 4096 bytes)\n"
				"ERR key too long (at most 4096 bytes)\nOK\nv\n");
	result_free(&r);
	free(input);
	free(key);
}
END_TEST

/* ---- persistence and crashes ------------------------------------------------------------- */

START_TEST(end_of_input_is_exit_and_data_persists_across_runs)
{
	expect_replies("PUT a 1\nPUT b two words\nDEL a\nPUT c 3\nFLUSH\n", "OK\nOK\nOK\nOK\nOK\n");
	expect_replies("GET a\nGET b\nGET c\nSIZE\n", "(nil)\ntwo words\n3\n2\n");
}
END_TEST

START_TEST(seed_demo_flushed_writes_survive_kill_9)
{
	struct proc p = spawn(store, NULL, NULL);

	send_text(&p, "PUT x 100\nPUT y 200\nFLUSH\n");
	expect_line(&p, "OK");
	expect_line(&p, "OK");
	expect_line(&p, "OK");
	kill9(&p);
	expect_replies("GET x\nGET y\nSIZE\n", "100\n200\n2\n");
}
END_TEST

START_TEST(unflushed_writes_recover_to_a_prefix_after_kill_9)
{
	/* sync=none: nothing is promised, but whatever survives is k000..k(n-1), whole. */
	uint64_t rng = seed ^ 0x9e3779b97f4a7c15ull;
	char *input = put_lines(0, 200);
	struct proc p = spawn("-o", "sync=none", store);
	struct timespec pause;
	int n;

	send_text(&p, input);
	pause.tv_sec = 0;
	pause.tv_nsec = (long)(tu_rand(&rng) % 20) * 1000000;
	nanosleep(&pause, NULL);
	kill9(&p);
	n = surviving_prefix(200);
	fprintf(stderr, "unflushed_writes_recover_to_a_prefix_after_kill_9: %d of 200 survived\n", n);
	free(input);
}
END_TEST

START_TEST(with_sync_none_a_flush_mid_stream_is_kept_and_the_rest_is_a_prefix)
{
	uint64_t rng = seed ^ 0xbf58476d1ce4e5b9ull;
	int flushed = 1 + (int)(tu_rand(&rng) % 199), n;
	char *before = put_lines(0, flushed), *after = put_lines(flushed, 200);
	struct proc p = spawn("-o", "sync=none", store);

	send_text(&p, before);
	send_text(&p, "FLUSH\n");
	for (int i = 0; i <= flushed; i++)
		expect_line(&p, "OK");
	send_text(&p, after);
	kill9(&p);
	n = surviving_prefix(200);
	ck_assert_msg(n >= flushed, "only %d of %d flushed writes survived (seed %llu)", n, flushed,
		      (unsigned long long)seed);
	free(before);
	free(after);
}
END_TEST

START_TEST(batch_writes_older_than_the_commit_interval_survive_kill_9)
{
	/* sync=batch: every write acknowledged long (here 200 commit intervals) before the kill
	 * survives it, the rest is a prefix of what followed. */
	uint64_t rng = seed ^ 0x2545f4914f6cdd1dull;
	int acked = 1 + (int)(tu_rand(&rng) % 150), n;
	char *before = put_lines(0, acked), *after = put_lines(acked, 200);
	struct proc p = spawn("-o", "sync=batch,commit_ms=5", store);
	struct timespec pause = { 1, 0 };

	send_text(&p, before);
	for (int i = 0; i < acked; i++)
		expect_line(&p, "OK");
	nanosleep(&pause, NULL);
	send_text(&p, after);
	kill9(&p);
	n = surviving_prefix(200);
	ck_assert_msg(n >= acked, "only %d of %d acknowledged writes survived (seed %llu)", n, acked,
		      (unsigned long long)seed);
	free(before);
	free(after);
}
END_TEST

START_TEST(a_reader_that_goes_away_ends_the_shell_without_sigpipe)
{
	struct proc p = spawn(store, NULL, NULL);
	int code;

	close(p.out);
	p.out = open("/dev/null", O_RDONLY); /* for finish() to close */
	send_text(&p, "PUT a 1\n");
	code = finish(&p);
	ck_assert_int_eq(code, 1);
	/* closed cleanly: not locked, and the write that could not be answered is there */
	expect_replies("GET a\n", "1\n");
}
END_TEST

/* ---- locking and opening ----------------------------------------------------------------- */

START_TEST(second_cli_on_the_same_store_is_refused_while_the_first_runs)
{
	struct proc first = spawn(store, NULL, NULL);
	struct result r;

	send_text(&first, "PUT a 1\n");
	expect_line(&first, "OK"); /* the first one has the store open */
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strstr(r.err, store), "the message does not name the store: %s", r.err);
	ck_assert_msg(strstr(r.err, "lock") || strstr(r.err, "in use"), "no reason given: %s", r.err);
	ck_assert_msg(!strchr(r.err, '\n') || strchr(r.err, '\n') == r.err + strlen(r.err) - 1,
		      "more than one line: %s", r.err);
	result_free(&r);
	send_text(&first, "EXIT\n");
	expect_line(&first, "OK");
	ck_assert_int_eq(finish(&first), 0);
}
END_TEST

START_TEST(a_torn_tail_is_reported_on_stderr_and_stdout_carries_only_replies)
{
	struct result r;

	make_store(10);
	tear_the_tail();
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "10\n");
	ck_assert_msg(strstr(r.err, "torn"), "no report of the torn tail: %s", r.err);
	result_free(&r);
}
END_TEST

/* The reply to EXIT is the last word: if it cannot be written, the exit status says so. */
START_TEST(an_exit_whose_reply_cannot_be_written_fails)
{
	const char *argv[] = { "sh", "-c", "exec \"$0\" \"$@\" >/dev/full", mt_kv_cli(), store, NULL };
	char *err = NULL;
	int status = 0;

	ck_assert_int_eq(tu_run(argv, "EXIT\n", NULL, &err, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
	ck_assert_msg(strstr(err, "writing standard output"), "%s", err);
	free(err);
}
END_TEST

START_TEST(a_directory_of_other_files_is_refused_with_one_line_and_left_alone)
{
	char *mine = path_in(tmp, "mine"), *lock;
	struct result r;

	ck_assert_int_eq(tu_write_file(mine, "keep", 4), 0);
	r = run("PUT a 1\n", tmp, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strstr(r.err, "not a kvfs store") && strstr(r.err, "'mine'") &&
		      strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "%s", r.err);
	result_free(&r);
	lock = path_in(tmp, "LOCK");
	ck_assert_int_eq(access(lock, F_OK), -1); /* nothing was made there */
	r = run(NULL, "--check", tmp, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 2);
	ck_assert_msg(strstr(r.err, "not a kvfs store"), "%s", r.err);
	result_free(&r);
	free(mine);
	free(lock);
}
END_TEST

/* A new store whose first segment cannot be made (here files are limited to 4 KiB: LOCK fits,
 * the segment does not; a 4 KiB tmpfs fails the same way with ENOSPC) is refused with one line
 * naming the segment, and leaves nothing behind: not the files, not the directory it made. */
START_TEST(a_new_store_without_room_for_its_first_segment_is_refused_and_leaves_nothing)
{
	const char *argv[] = { mt_kv_cli(), store, "PUT", "k", "v", NULL };
	struct fresult fr = run_files_limited(argv, NULL, NULL, 4096);
	struct stat st;

	ck_assert_msg(fr.code == 1, "exit %d: %s", fr.code, fr.err);
	ck_assert_msg(strstr(fr.err, "wal-0000000000000001.log: File too large"), "%s", fr.err);
	ck_assert_msg(strchr(fr.err, '\n') == fr.err + strlen(fr.err) - 1, "not one line: %s", fr.err);
	ck_assert_int_eq(lstat(store, &st), -1);
	ck_assert_int_eq(errno, ENOENT);
	fresult_free(&fr);

	/* with room, the same command makes the store */
	struct result r = run(NULL, store, "PUT", "k", "v", NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	result_free(&r);
	expect_replies("GET k\n", "v\n");
}
END_TEST

START_TEST(a_clean_open_prints_nothing_on_stderr)
{
	struct result r;

	make_store(3);
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "3\n");
	ck_assert_str_eq(r.err, "");
	result_free(&r);
}
END_TEST

START_TEST(damaged_store_refuses_to_open_and_points_to_salvage)
{
	struct result r;

	make_damaged_store();
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strstr(r.err, "--salvage"), "no way out named: %s", r.err);
	ck_assert_msg(strstr(r.err, "wal-"), "the damaged file is not named: %s", r.err);
	result_free(&r);
}
END_TEST

/* ---- --check and --salvage --------------------------------------------------------------- */

START_TEST(check_on_a_clean_store_exits_0_prints_the_report_and_changes_nothing)
{
	char *wal, *before, *after;
	size_t blen, alen;
	struct result r;

	make_store(10);
	wal = store_file("wal-*.log");
	ck_assert_ptr_nonnull(wal);
	ck_assert_int_eq(tu_read_file(wal, &before, &blen), 0);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "last lsn: 11\n"), "report: %s", r.out); /* and the close mark */
	ck_assert_msg(strstr(r.out, "damage: none\n"), "report: %s", r.out);
	ck_assert_msg(strstr(r.out, "torn tail: none\n"), "report: %s", r.out);
	ck_assert_msg(strstr(r.out, "status: clean\n"), "report: %s", r.out);
	ck_assert_int_eq(tu_read_file(wal, &after, &alen), 0);
	ck_assert(blen == alen && memcmp(before, after, blen) == 0);
	result_free(&r);
	free(before);
	free(after);
	free(wal);
}
END_TEST

START_TEST(check_reports_a_torn_tail_and_still_exits_0)
{
	struct result r;

	make_store(10);
	tear_the_tail();
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "torn tail: ") && !strstr(r.out, "torn tail: none"), "report: %s",
		      r.out);
	/* the torn bytes are the written ones (11 22 33 44 10), not the zero after them */
	ck_assert_msg(strstr(r.out, "torn tail: 5 bytes") && strstr(r.out, "(then 1 zero bytes"),
		      "report: %s", r.out);
	/* not "clean" outright: a lost last block of synced records would look the same */
	ck_assert_msg(strstr(r.out, "if the disk lost that block, records synced before it\n"),
		      "report: %s", r.out);
	ck_assert_msg(strstr(r.out, "status: clean up to lsn 11, where a torn tail was cut"),
		      "report: %s", r.out);
	result_free(&r);
}
END_TEST

/* A log that does not end in a close mark (a crash) is clean only as far as can be known: no
 * mark vouches for its last records, and a lost block of them would look the same. */
START_TEST(check_of_a_log_not_closed_cleanly_does_not_say_plain_clean)
{
	char *wal = NULL, *data;
	size_t len;
	struct result r;

	make_store(10);
	wal = store_file("wal-*.log");
	ck_assert_ptr_nonnull(wal);
	ck_assert_int_eq(tu_read_file(wal, &data, &len), 0);
	/* the file ends with the close mark (a header and records_end): cut it and its padding */
	ck_assert_uint_ge(len, REC_HDR_SIZE + MARK_PAYLOAD);
	ck_assert_uint_eq((unsigned char)data[len - MARK_PAYLOAD - REC_HDR_SIZE + REC_OFF_TYPE], REC_TYPE_MARK);
	size_t end = le32((const unsigned char *)data + len - MARK_PAYLOAD);
	ck_assert_int_eq(tu_write_file(wal, data, end), 0);
	free(data);
	free(wal);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "status: clean up to lsn 10, the end of a log not closed cleanly"),
		      "report: %s", r.out);
	result_free(&r);
}
END_TEST

START_TEST(check_on_a_damaged_store_exits_1_and_names_file_and_offset)
{
	struct result r;

	make_damaged_store();
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 1, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "damage: wal-"), "report: %s", r.out);
	ck_assert_msg(strstr(r.out, " offset "), "report: %s", r.out);
	ck_assert_msg(strstr(r.out, "status: damaged"), "report: %s", r.out);
	result_free(&r);
}
END_TEST

START_TEST(check_of_a_missing_directory_exits_2)
{
	struct result r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 2);
	ck_assert_msg(strstr(r.err, store), "stderr: %s", r.err);
	result_free(&r);
}
END_TEST

START_TEST(salvage_keeps_everything_before_the_damage_and_lets_the_store_open)
{
	struct result r;
	char *aside, expected[256];

	make_damaged_store();
	r = run(NULL, "--salvage", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "kept: the state up to lsn 50\n"), "report: %s", r.out);
	ck_assert_msg(strstr(r.out, "set aside: 1 files"), "report: %s", r.out);
	result_free(&r);
	aside = store_file("*damaged*");
	ck_assert_msg(aside, "nothing set aside in %s", store);
	free(aside);
	snprintf(expected, sizeof(expected), "50\n%s\n(nil)\n", value_of(49));
	expect_replies("SIZE\nGET k049\nGET k050\n", expected);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "still damaged after salvage: %s", r.out);
	result_free(&r);
}
END_TEST

/* What salvage is said to keep depends on the damage: the refusal, --check's verdict and
 * salvage's report each say it for the damage at hand. Damaged framing: the records before it. */
START_TEST(damaged_framing_is_refused_saying_salvage_keeps_the_records_before_it)
{
	struct result r;

	make_damaged_store();
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "run 'kv_cli --salvage ") && strstr(r.err, "': it keeps every "
		      "record before the first damaged one and sets the rest aside, setting damaged "
		      "files aside (nothing is deleted)"), "%s", r.err);
	result_free(&r);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.out, "status: damaged; 'kv_cli --salvage ") &&
		      strstr(r.out, "' keeps every record before the first damaged one and sets the "
			     "rest aside\n"), "%s", r.out);
	result_free(&r);
}
END_TEST

/* A damaged value byte: every record is kept, only its key dropped, and each message says so
 * (not "everything before the damage", which would be 50 keys fewer). */
START_TEST(a_damaged_value_is_refused_saying_salvage_drops_only_its_key)
{
	struct result r;

	make_value_damaged_store();
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "the first 'k050'") && strstr(r.err, "': it keeps every record "
		      "and drops only the key(s) whose value bytes are damaged, setting damaged files "
		      "aside") && !strstr(r.err, "before the"), "%s", r.err);
	result_free(&r);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.out, "' keeps every record and drops only the key(s) whose value bytes "
			     "are damaged\n"), "%s", r.out);
	result_free(&r);
	r = run(NULL, "--salvage", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "kept: the state up to lsn 101, less 1 key(s) (the first "
			     "'k050')\n"), "%s", r.out);
	result_free(&r);
	expect_replies("SIZE\nGET k050\nGET k099\n", "99\n(nil)\nvalue-099-the-rest-of-it-makes-each-"
		       "record-longer\n");
}
END_TEST

/* A damaged checkpoint header: salvage keeps every entry it can prove and the log after it; its
 * report says how many were kept, never "no entry lost" (attack4 finding 4c). */
START_TEST(a_damaged_checkpoint_header_is_refused_saying_salvage_keeps_every_provable_entry)
{
	struct result r;

	make_checkpoint_header_damaged_store();
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "(damaged checkpoint)") && strstr(r.err, "': it keeps every "
		      "checkpoint entry it can prove (the LSN is the file's name's) and the log after "
		      "the checkpoint"), "%s", r.err);
	result_free(&r);
	r = run(NULL, "--check", store, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.out, "' keeps every checkpoint entry it can prove"), "%s", r.out);
	result_free(&r);
	r = run(NULL, "--salvage", store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "checkpoint entries: all 10 entries kept: its header is damaged") &&
		      !strstr(r.out, "no entry lost") && strstr(r.out, "kept: the state up to lsn "),
		      "%s", r.out);
	result_free(&r);
	expect_replies("SIZE\nGET k011\n", "12\nvalue-011-the-rest-of-it-makes-each-record-longer\n");
}
END_TEST

/* ---- a cleaner's pending relocation whose copy is damaged -------------------------------- */

#define P_KEYS 64   /* keys of 4000 bytes; every 4th stays live and the cleaner relocates it */
#define P_VLEN 4000
#define P_SMALL 10  /* small keys written after the cleaner's pass */

/* Key i's value: its number, then letters; distinct per key, so that its source and its copy
 * are found by them. */
static void pending_value(char *v, int i)
{
	for (int j = 0; j < P_VLEN; j++)
		v[j] = (char)('a' + (i * 131 + j * 7 + j / 13) % 26);
	v[0] = (char)('0' + i / 10);
	v[1] = (char)('0' + i % 10);
	v[P_VLEN] = '\0';
}

static int fail_checkpoint_rename; /* set: the rename that lands a checkpoint fails */

static int rename_failing_checkpoints(const struct kvio *io, const char *from, const char *to)
{
	if (fail_checkpoint_rename && strstr(to, "/ckpt-"))
		return -EIO;
	return kvio_posix.rename(io, from, to);
}

static void quiet_log(void *arg, const char *line)
{
	(void)arg;
	(void)line;
}

static void pending_options(struct kv_options *o, const struct kvio *io)
{
	kv_options_default(o);
	o->io = io;
	o->segment_bytes = 65536;
	o->checkpoint_bytes = 1ull << 40; /* no checkpoint but the ones asked for */
	o->cleaner = 0;
	o->log = quiet_log;
}

/* In a child whose end is a kill -9 (no close): P_KEYS keys, 3 of 4 deleted, a checkpoint, then
 * a forced cleaner pass whose own checkpoint fails at its rename. Its RELOCATE record lies after
 * the newest checkpoint (pending), the segments it copied from still there. 0, or the step that
 * went otherwise. */
static int pending_relocation_child(void)
{
	struct kvio io = kvio_posix;
	struct kv_options o;
	struct kv *kv = NULL;
	char k[16], v[P_VLEN + 1];
	uint64_t moved = 0;

	io.rename = rename_failing_checkpoints;
	pending_options(&o, &io);
	if (kv_open(&kv, store, &o, NULL))
		return 1;
	for (int i = 0; i < P_KEYS; i++) {
		snprintf(k, sizeof(k), "r%03d", i);
		pending_value(v, i);
		if (kv_put(kv, k, strlen(k), v, P_VLEN))
			return 2;
	}
	if (kv_flush(kv))
		return 3;
	for (int i = 0; i < P_KEYS; i++) {
		snprintf(k, sizeof(k), "r%03d", i);
		if (i % 4 && kv_del(kv, k, strlen(k)))
			return 4;
	}
	if (kv_flush(kv) || kv_snapshot(kv))
		return 5;
	fail_checkpoint_rename = 1;
	return kv_clean(kv, 1, &moved) ? 0 : 6;
}

/* The pending store, then P_SMALL PUTs after it (so that a record vouches for the relocation's)
 * and a clean close; then one byte flipped in the middle of the first relocated value's copy
 * (found by its bytes: the last of the two places they lie). key gets its key, seg the copy's
 * segment, *chunk the offset of its failing chunk (the copy's first byte: one chunk holds it). */
static void make_pending_copy_damaged_store(char *key, size_t klen, char *seg, size_t slen,
					    uint64_t *chunk)
{
	struct kv_options o;
	struct kv *kv = NULL;
	char k[16], v[P_VLEN + 1];
	int status = 0;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(pending_relocation_child());
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "building the store: status %#x",
		      status);
	pending_options(&o, NULL);
	ck_assert_int_eq(kv_open(&kv, store, &o, NULL), 0);
	for (int i = 0; i < P_SMALL; i++) {
		snprintf(k, sizeof(k), "s%03d", i);
		ck_assert_int_eq(kv_put(kv, k, strlen(k), "small", 5), 0);
	}
	ck_assert_int_eq(kv_close(kv), 0);

	char *pat = path_in(store, "wal-*.log");
	glob_t g;
	ck_assert_int_eq(glob(pat, 0, NULL, &g), 0);
	free(pat);
	for (int i = 0; i < P_KEYS; i += 4) {
		const char *last = NULL;
		size_t places = 0, at = 0;
		pending_value(v, i);
		for (size_t f = 0; f < g.gl_pathc; f++) {
			char *data;
			size_t len;
			ck_assert_int_eq(tu_read_file(g.gl_pathv[f], &data, &len), 0);
			for (const char *p = data; (p = memmem(p, len - (size_t)(p - data), v, P_VLEN));
			     p++) {
				places++;
				last = g.gl_pathv[f];
				at = (size_t)(p - data);
			}
			free(data);
		}
		if (places < 2)
			continue; /* not moved by the cleaner */
		ck_assert_uint_eq(places, 2);
		flip_byte(last, at + P_VLEN / 2);
		snprintf(key, klen, "r%03d", i);
		snprintf(seg, slen, "%s", strrchr(last, '/') + 1);
		*chunk = at;
		globfree(&g);
		return;
	}
	ck_abort_msg("no relocated value found in %s", store);
}

/* The words every report of that damage carries, after "FILE offset N (" or "damaged at offset N
 * (". */
static void read_back_words(char *buf, size_t len, const char *key)
{
	snprintf(buf, len, "value bytes of 1 key(s), the first '%s', copied here by the cleaner in a "
		 "record no checkpoint holds yet, fail their checksum; read back from the segment they "
		 "were copied from, where they check: nothing lost)\n", key);
}

/* kv_cli MODE run on the store make_pending_copy_damaged_store makes (the damaged key in key):
 * it exits 0 and its report names the damage, where and which key, in read_back_words. */
static struct result report_of_pending_copy_damage(const char *mode, char *key, size_t klen)
{
	char seg[64], line[600], words[400];
	uint64_t chunk = 0;
	struct result r;

	make_pending_copy_damaged_store(key, klen, seg, sizeof(seg), &chunk);
	r = run(NULL, mode, store, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s%s", r.code, r.out, r.err);
	read_back_words(words, sizeof(words), key);
	snprintf(line, sizeof(line), "\ndamage in a pending relocation: %s offset %llu (%s", seg,
		 (unsigned long long)chunk, words);
	ck_assert_msg(strstr(r.out, line), "no line\n%s\nin the report:\n%s", line + 1, r.out);
	return r;
}

/* A damaged copy the store read back from its source costs nothing: --check takes the store
 * (exit 0, "status: clean", as for damage in records the checkpoint holds) and says where the
 * damage is, which key it hit, and that nothing was lost. */
START_TEST(check_names_damage_read_back_from_a_pending_relocation_s_source_and_exits_0)
{
	char key[16];
	struct result r = report_of_pending_copy_damage("--check", key, sizeof(key));

	ck_assert_msg(strstr(r.out, "damage: none\n") && strstr(r.out, "status: clean\n"), "%s", r.out);
	result_free(&r);
}
END_TEST

/* --salvage says the same, loses no key, sets nothing aside; the key reads its bytes. */
START_TEST(salvage_names_damage_read_back_from_a_pending_relocation_s_source_and_keeps_the_key)
{
	char key[16], v[P_VLEN + 2], input[32];
	struct result r = report_of_pending_copy_damage("--salvage", key, sizeof(key));

	ck_assert_msg(strstr(r.out, "kept: the state up to lsn ") && !strstr(r.out, ", less ") &&
		      strstr(r.out, "set aside: 0 files"), "%s", r.out);
	result_free(&r);
	pending_value(v, atoi(key + 1));
	strcat(v, "\n");
	snprintf(input, sizeof(input), "GET %s\n", key);
	expect_replies(input, v);
}
END_TEST

/* An open (the shell's, as kvfs's mount) takes the store and notes the damage on stderr, in the
 * same words; stdout carries only the replies. */
START_TEST(an_open_notes_damage_read_back_from_a_pending_relocation_s_source_on_stderr)
{
	char key[16], seg[64], line[PATH_MAX + 600], words[400];
	uint64_t chunk = 0;
	struct result r;

	make_pending_copy_damaged_store(key, sizeof(key), seg, sizeof(seg), &chunk);
	r = run("SIZE\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.out, "26\n"); /* P_KEYS / 4 + P_SMALL */
	read_back_words(words, sizeof(words), key);
	snprintf(line, sizeof(line), "kv_cli: %s/%s: damaged at offset %llu (%s", store, seg,
		 (unsigned long long)chunk, words);
	ck_assert_msg(strstr(r.err, line), "no line\n%s\non stderr:\n%s", line, r.err);
	result_free(&r);
}
END_TEST

START_TEST(point_in_time_recovery_opens_a_damaged_store_and_reports_it_on_stderr)
{
	struct result r;

	make_damaged_store();
	r = run("SIZE\n", "-o", "recovery=point_in_time", store, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.out, "50\n");
	ck_assert_msg(r.err[0], "the recovery is not reported");
	result_free(&r);
}
END_TEST

/* ---- arguments --------------------------------------------------------------------------- */

START_TEST(help_exits_0_and_documents_the_default_datadir)
{
	struct result r = run(NULL, "--help", NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 0);
	ck_assert(strstr(r.out, "Usage: kv_cli"));
	ck_assert(strstr(r.out, "$KVFS_DATADIR"));
	ck_assert(strstr(r.out, "$XDG_DATA_HOME/kvfs"));
	ck_assert(strstr(r.out, "~/.local/share/kvfs"));
	ck_assert(strstr(r.out, "--salvage"));
	result_free(&r);
}
END_TEST

START_TEST(version_exits_0_and_prints_the_version)
{
	struct result r = run(NULL, "--version", NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 0);
	ck_assert_msg(strstr(r.out, KV_VERSION), "got: %s", r.out);
	result_free(&r);
}
END_TEST

START_TEST(bad_o_option_exits_2_with_a_clear_error_and_touches_nothing)
{
	struct result r = run("SIZE\n", "-o", "sync=sometimes", store, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 2);
	ck_assert_str_eq(r.out, "");
	ck_assert_msg(strstr(r.err, "sync"), "stderr: %s", r.err);
	result_free(&r);
	r = run("SIZE\n", "-o", "commit_ms=5,colour=blue", store, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 2);
	ck_assert_msg(strstr(r.err, "colour"), "stderr: %s", r.err);
	result_free(&r);
	ck_assert_int_eq(access(store, F_OK), -1);
}
END_TEST

START_TEST(every_store_option_out_of_range_is_refused_naming_its_range)
{
	static const char *const cases[][2] = {
		{ "commit_ms=0", "'commit_ms' (a whole number from 1 to 60000)" },
		{ "commit_ms=60001", "'commit_ms' (a whole number from 1 to 60000)" },
		{ "commit_ms=-5", "'commit_ms' (a whole number from 1 to 60000)" },
		{ "checkpoint_bytes=4095", "'checkpoint_bytes' (a size in bytes from 4K to 1T; a K, M, "
					   "G or T suffix, either case, counts in 1024s)" },
		{ "snapshot_wal_bytes=2T", "'snapshot_wal_bytes' (a size in bytes from 4K to 1T" },
		{ "segment_bytes=1x", "'segment_bytes' (a size in bytes from 4K to 1T" },
		{ "sync=sometimes", "'sync' (one of batch|always|none)" },
		{ "recovery=lenient", "'recovery' (one of strict|point_in_time)" },
		{ "cleaner=maybe", "'cleaner' (one of on|off)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r = run("SIZE\n", "-o", cases[i][0], store, NULL, NULL, NULL);

		ck_assert_int_eq(r.code, 2);
		ck_assert_msg(strstr(r.err, cases[i][1]), "-o %s: stderr: %s", cases[i][0], r.err);
		result_free(&r);
	}
	ck_assert_int_eq(access(store, F_OK), -1);
}
END_TEST

/* attack4 finding 4: 1g was refused while 1G was taken */
START_TEST(a_size_option_takes_its_suffix_in_either_case)
{
	struct result r = run("SIZE\n", "-o", "checkpoint_bytes=1g,segment_bytes=64m", store, NULL, NULL,
			      NULL);

	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.out, "0\n");
	result_free(&r);
}
END_TEST

START_TEST(usage_errors_exit_2)
{
	static const char *const cases[][3] = {
		{ "--frobnicate", NULL, NULL },
		{ "-x", NULL, NULL },
		{ "one", "two", NULL },
		{ "--check", NULL, NULL },
		{ "--check", "a", "b" },
		{ "--check", "a", "--salvage=b" },
		{ "-o", NULL, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r = run(NULL, cases[i][0], cases[i][1], cases[i][2], NULL, NULL, NULL);

		ck_assert_msg(r.code == 2, "case %zu: exit %d", i, r.code);
		ck_assert_msg(r.err[0], "case %zu: no message", i);
		result_free(&r);
	}
}
END_TEST

START_TEST(default_datadir_is_KVFS_DATADIR_when_set)
{
	struct result r;

	setenv("KVFS_DATADIR", store, 1);
	r = run("PUT a 1\n", NULL, NULL, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	result_free(&r);
	unsetenv("KVFS_DATADIR");
	expect_replies("GET a\n", "1\n");
}
END_TEST

START_TEST(default_datadir_is_under_XDG_DATA_HOME_then_HOME)
{
	char *xdg = path_in(tmp, "xdg/data"), *home = path_in(tmp, "home");
	char *in_xdg = path_in(xdg, "kvfs"), *in_home = path_in(home, ".local/share/kvfs");
	struct stat st;
	struct result r;

	unsetenv("KVFS_DATADIR");
	setenv("XDG_DATA_HOME", xdg, 1);
	setenv("HOME", home, 1);
	ck_assert_int_eq(mkdir(home, 0700), 0);
	r = run("PUT a 1\n", NULL, NULL, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	result_free(&r);
	ck_assert_int_eq(stat(in_xdg, &st), 0); /* missing parents created */

	unsetenv("XDG_DATA_HOME");
	r = run("PUT b 2\n", NULL, NULL, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	result_free(&r);
	ck_assert_int_eq(stat(in_home, &st), 0);
	free(xdg);
	free(home);
	free(in_xdg);
	free(in_home);
}
END_TEST

START_TEST(at_a_terminal_the_prompt_goes_to_stderr_and_blank_lines_pass)
{
	int master, slave, outp[2], errp[2], status;
	char out[256], err[256];
	ssize_t n, on = 0, en = 0;
	pid_t pid;

	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pipe(outp), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(slave, 0);
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		execl(mt_kv_cli(), mt_kv_cli(), store, (char *)NULL);
		_exit(127);
	}
	close(slave);
	close(outp[1]);
	close(errp[1]);
	/* SIZE, a blank line (no reply at a prompt), then end of input (^D at a line's start) */
	ck_assert_int_eq(tu_write_all(master, "SIZE\n\n\x04", 7), 0);
	while ((n = read(outp[0], out + on, sizeof(out) - 1 - (size_t)on)) > 0)
		on += n;
	while ((n = read(errp[0], err + en, sizeof(err) - 1 - (size_t)en)) > 0)
		en += n;
	out[on] = err[en] = '\0';
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(master);
	close(outp[0]);
	close(errp[0]);
	ck_assert_str_eq(out, "0\n");
	ck_assert_msg(strstr(err, "kv> "), "no prompt on stderr: '%s'", err);
}
END_TEST

/* ---- quoting ----------------------------------------------------------------------------- */

START_TEST(a_value_holding_newlines_is_one_quoted_reply_line)
{
	expect_replies("PUT k \"a\\nb\\n\"\nGET k\nSIZE\n", "OK\n\"a\\nb\\n\"\n1\n");
}
END_TEST

START_TEST(control_bytes_backslashes_and_invalid_utf8_are_escaped)
{
	/* a plain value (not beginning with ") is stored byte for byte, backslash included */
	expect_replies("PUT tab \"x\\ty\"\nPUT bs a\\b\nPUT ff \"\\xff\\x00\\x7f\"\nPUT cr \"\\r\"\n"
		       "PUT c1 \"\\xc2\\x85\"\nPUT overlong \"\\xc0\\xaf\"\n"
		       "GET tab\nGET bs\nGET ff\nGET cr\nGET c1\nGET overlong\n",
		       "OK\nOK\nOK\nOK\nOK\nOK\n"
		       "\"x\\ty\"\n\"a\\\\b\"\n\"\\xff\\x00\\x7f\"\n\"\\r\"\n\"\\xc2\\x85\"\n"
		       "\"\\xc0\\xaf\"\n");
}
END_TEST

START_TEST(plain_text_and_valid_utf8_are_printed_as_they_are)
{
	expect_replies("PUT u h\xc3\xa9llo w\xc3\xb6rld \xe2\x98\x83 \xf0\x9d\x84\x9e\n"
		       "PUT q say \"hi\" twice\"\nPUT ok OK\nPUT e ERRATA\n"
		       "GET u\nGET q\nGET ok\nGET e\n",
		       "OK\nOK\nOK\nOK\n"
		       "h\xc3\xa9llo w\xc3\xb6rld \xe2\x98\x83 \xf0\x9d\x84\x9e\n"
		       "say \"hi\" twice\"\nOK\nERRATA\n");
}
END_TEST

START_TEST(a_value_beginning_with_a_quote_is_printed_quoted)
{
	expect_replies("PUT k \"\\\"quoted\\\" word\"\nGET k\n", "OK\n\"\\\"quoted\\\" word\"\n");
}
END_TEST

START_TEST(values_that_would_read_as_a_reply_are_quoted)
{
	expect_replies("PUT a (nil)\nPUT b ERR\nPUT c ERR boom\nGET a\nGET b\nGET c\nGET none\n",
		       "OK\nOK\nOK\n\"(nil)\"\n\"ERR\"\n\"ERR boom\"\n(nil)\n");
}
END_TEST

START_TEST(a_quoted_key_may_hold_spaces_and_newlines)
{
	expect_replies("PUT \"a b\" one\nPUT \"l1\\nl2\" two\nPUT \"\" root\n"
		       "GET \"a b\"\nGET \"l1\\nl2\"\nGET \"\"\nDEL \"a b\"\nGET \"a b\"\nSIZE\n",
		       "OK\nOK\nOK\none\ntwo\nroot\nOK\n(nil)\n2\n");
}
END_TEST

START_TEST(an_empty_quoted_value_is_an_empty_value)
{
	expect_replies("PUT k \"\"\nGET k\nPUT j \"\"  \nGET j\n", "OK\n\nOK\n\n");
}
END_TEST

START_TEST(bad_quoting_replies_err_and_the_shell_goes_on)
{
	struct result r = run("PUT k \"open\nPUT k \"bad \\q escape\"\nPUT k \"x\" tail\n"
			      "GET \"a\"b\nGET \"\\x4\"\nPUT k ok\nGET k\n",
			      store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out,
			 "ERR unterminated quoted string (no closing '\"')\n"
			 "ERR bad escape at offset 11 (known: \\\\ \\\" \\n \\r \\t \\a \\b \\f \\v \\xHH)\n"
			 "ERR text after the closing quote of the value (a value that begins with '\"' "
			 "is a quoted string)\n"
			 "ERR text after the closing quote at offset 7\n"
			 "ERR bad escape at offset 5 (known: \\\\ \\\" \\n \\r \\t \\a \\b \\f \\v \\xHH)\n"
			 "OK\nok\n");
	result_free(&r);
}
END_TEST

/* Every byte string, escaped by the test's own encoder, goes in; what GET prints goes back in
 * under another key and prints the same; --raw gives the bytes themselves. */
START_TEST(what_get_prints_can_be_put_back_unchanged)
{
	uint64_t rng = seed ^ 0x5851f42d4c957f2dull;
	char *in = malloc(64 * 1024), *in2 = malloc(64 * 1024), *raw_path = path_in(tmp, "raw");
	struct result r, r2;

	ck_assert_ptr_nonnull(in);
	ck_assert_ptr_nonnull(in2);
	for (int round = 0; round < 20; round++) {
		unsigned char val[256];
		size_t vlen = tu_rand(&rng) % sizeof(val), n = 0;
		char *nl, *raw;
		size_t rawlen;

		for (size_t i = 0; i < vlen; i++) {
			uint64_t pick = tu_rand(&rng) % 4;

			/* mostly the bytes that matter: controls, quote, backslash, high bytes */
			val[i] = pick == 0 ? (unsigned char)(tu_rand(&rng) % 32) :
				 pick == 1 ? (unsigned char)"\"\\ \x7f\xc3\xa9\xe2\x82\xac"[tu_rand(&rng) % 9] :
				 (unsigned char)tu_rand(&rng);
		}
		n += (size_t)sprintf(in + n, "PUT k \"");
		for (size_t i = 0; i < vlen; i++)
			n += (size_t)sprintf(in + n, "\\x%02x", val[i]);
		sprintf(in + n, "\"\nGET k\n");
		r = run(in, store, NULL, NULL, NULL, NULL, NULL);
		ck_assert_msg(r.code == 0, "seed %llu round %d: exit %d: %s", (unsigned long long)seed,
			      round, r.code, r.err);
		ck_assert(strncmp(r.out, "OK\n", 3) == 0);
		nl = strchr(r.out + 3, '\n');
		ck_assert_msg(nl && nl[1] == '\0', "seed %llu: GET's reply is not one line: %s",
			      (unsigned long long)seed, r.out + 3);
		*nl = '\0';
		snprintf(in2, 64 * 1024, "PUT k2 %s\nGET k2\n", r.out + 3);
		r2 = run(in2, store, NULL, NULL, NULL, NULL, NULL);
		ck_assert_int_eq(r2.code, 0);
		ck_assert_msg(strncmp(r2.out, "OK\n", 3) == 0 && strncmp(r2.out + 3, r.out + 3,
			      strlen(r.out + 3)) == 0, "seed %llu: put back as %s, got %s",
			      (unsigned long long)seed, r.out + 3, r2.out);
		result_free(&r);
		result_free(&r2);
		{
			const char *argv[] = { mt_kv_cli(), "--raw", store, "GET", "k2", NULL };
			struct fresult fr = run_files(argv, NULL, raw_path);

			ck_assert_int_eq(fr.code, 0);
			fresult_free(&fr);
		}
		ck_assert_int_eq(tu_read_file(raw_path, &raw, &rawlen), 0);
		ck_assert_uint_eq(rawlen, vlen + 1);
		ck_assert_msg(memcmp(raw, val, vlen) == 0 && raw[vlen] == '\n',
			      "seed %llu: --raw differs", (unsigned long long)seed);
		free(raw);
	}
	free(in);
	free(in2);
	free(raw_path);
}
END_TEST

START_TEST(raw_prints_values_and_keys_unquoted)
{
	struct result r = run("PUT \"a b\" \"x\\ny\"\nGET \"a b\"\nLIST\n", "--raw", store, NULL, NULL,
			      NULL, NULL);

	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "OK\nx\ny\n1\na b\n");
	result_free(&r);
}
END_TEST

/* ---- LIST -------------------------------------------------------------------------------- */

START_TEST(list_prints_the_count_then_every_key_in_byte_order)
{
	expect_replies("LIST\nPUT b 1\nPUT a/2 2\nPUT a 3\nPUT \"a b\" 4\nPUT \"\\xff\" 5\nLIST\n",
		       "0\nOK\nOK\nOK\nOK\nOK\n5\na\n\"a b\"\na/2\nb\n\"\\xff\"\n");
}
END_TEST

START_TEST(list_takes_a_prefix_and_a_limit)
{
	expect_replies("PUT a/1 x\nPUT a/2 x\nPUT a/3 x\nPUT ab x\nPUT b x\n"
		       "LIST a/\nLIST a/ 2\nLIST \"\" 1\nLIST a/ 0\nLIST zz\n",
		       "OK\nOK\nOK\nOK\nOK\n3\na/1\na/2\na/3\n2\na/1\na/2\n1\na/1\n0\n0\n");
}
END_TEST

START_TEST(list_after_a_key_pages_through_every_key_once)
{
	char *input = put_lines(0, 100), *cmd = malloc(256);
	int seen = 0;
	char last[64] = "";

	ck_assert_ptr_nonnull(cmd);
	run_ok(input);
	for (int page = 0; page < 20; page++) {
		struct result r;
		char *line, *save = NULL;
		long n;

		snprintf(cmd, 256, page ? "LIST k 7 %s\n" : "LIST k 7\n", last);
		r = run(cmd, store, NULL, NULL, NULL, NULL, NULL);
		ck_assert_int_eq(r.code, 0);
		line = strtok_r(r.out, "\n", &save);
		n = strtol(line, NULL, 10);
		for (long i = 0; i < n; i++) {
			char want[16];

			line = strtok_r(NULL, "\n", &save);
			snprintf(want, sizeof(want), "k%03d", seen++);
			ck_assert_str_eq(line, want);
			snprintf(last, sizeof(last), "%s", line);
		}
		ck_assert_ptr_null(strtok_r(NULL, "\n", &save));
		result_free(&r);
		if (n < 7)
			break;
	}
	ck_assert_int_eq(seen, 100);
	free(input);
	free(cmd);
}
END_TEST

START_TEST(list_with_a_bad_limit_or_too_many_arguments_replies_err)
{
	struct result r = run("LIST a x\nLIST a -1\nLIST a 1 b c\nLIST\n", store, NULL, NULL, NULL,
			      NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "ERR LIST limit must be a number, not 'x'\n"
				"ERR LIST limit must be a number, not '-1'\n"
				"ERR LIST takes at most a prefix, a limit and a key to list after\n0\n");
	result_free(&r);
}
END_TEST

/* ---- exit status and one-shot mode ------------------------------------------------------- */

START_TEST(the_shell_exits_1_at_the_end_when_any_command_answered_err)
{
	struct result r = run("PUT a 1\nBOGUS\nGET a\nFLUSH\n", store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "OK\nERR unknown command 'BOGUS'\n1\nOK\n");
	result_free(&r);
	/* and the writes are all there: the store was closed cleanly */
	expect_replies("GET a\n", "1\n");
}
END_TEST

START_TEST(one_shot_runs_one_command_and_prints_its_reply)
{
	struct result r = run(NULL, store, "PUT", "greeting", "hello", NULL, NULL);

	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "OK\n");
	result_free(&r);
	r = run(NULL, store, "get", "greeting", NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "hello\n");
	result_free(&r);
	r = run(NULL, store, "GET", "absent", NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "(nil)\n");
	result_free(&r);
	r = run(NULL, store, "LIST", NULL, NULL, NULL, NULL);
	ck_assert_str_eq(r.out, "1\ngreeting\n");
	result_free(&r);
	r = run(NULL, store, "EXIT", NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_str_eq(r.out, "OK\n");
	result_free(&r);
}
END_TEST

START_TEST(one_shot_arguments_are_tokens_and_put_joins_its_value)
{
	struct result r = run(NULL, store, "PUT", "a key", "two", " words", NULL);

	ck_assert_int_eq(r.code, 0);
	result_free(&r);
	r = run(NULL, store, "PUT", "q", "\"x\\ny\"", NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	result_free(&r);
	expect_replies("GET \"a key\"\nGET q\n", "two  words\n\"x\\ny\"\n");
}
END_TEST

START_TEST(one_shot_exits_1_when_its_reply_is_err)
{
	char big[6001], *outpath = path_in(tmp, "out"), *out;
	const char *argv[] = { mt_kv_cli(), "-o", "segment_bytes=1M", store, "PUT", "big", big, NULL };
	struct result r;
	struct fresult fr;

	/* a store whose segment the clean close cut to 4,136 bytes (the close mark starts a block:
	 * FORMAT.md 3.3) and whose space reserve was sized for 1 MiB segments, then a reopen that
	 * cannot make its new 1 MiB segments (files are limited to 512 KiB): failing to make a
	 * segment fails only the write that needed it (engine/kv.h), and the store stays as it was.
	 * (The store is made with 1 MiB segments, not 4 KiB ones: then the reopen's reserve, sized
	 * from the 4,136-byte segment, would need to grow past the limit and the open would fail
	 * before the write.) */
	r = run(NULL, "-o", "segment_bytes=1M", store, "PUT", "k", "v");
	ck_assert_int_eq(r.code, 0);
	result_free(&r);
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fr = run_files_limited(argv, NULL, outpath, 512 << 10);
	ck_assert_msg(fr.code == 1, "exit %d: %s", fr.code, fr.err);
	ck_assert_int_eq(tu_read_file(outpath, &out, NULL), 0);
	ck_assert_str_eq(out, "ERR File too large\n");
	free(out);
	fresult_free(&fr);
	expect_replies("SIZE\nGET k\n", "1\nv\n");
	free(outpath);
}
END_TEST

START_TEST(a_wrong_one_shot_command_is_a_usage_error_and_creates_nothing)
{
	static const char *const cases[][3] = {
		{ "FROB", NULL, NULL },
		{ "GET", NULL, NULL },
		{ "GET", "a", "b" },
		{ "PUT", "k", NULL },
		{ "SIZE", "x", NULL },
		{ "LIST", "a", "many" },
		{ "GET", "\"open", NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r = run(NULL, store, cases[i][0], cases[i][1], cases[i][2], NULL, NULL);

		ck_assert_msg(r.code == 2, "case %zu: exit %d", i, r.code);
		ck_assert_str_eq(r.out, "");
		ck_assert_msg(strstr(r.err, "Usage:"), "case %zu: %s", i, r.err);
		result_free(&r);
		ck_assert_msg(access(store, F_OK) < 0, "case %zu created the store", i);
	}
}
END_TEST

START_TEST(a_command_word_is_never_taken_for_a_datadir)
{
	static const char *const cases[][3] = {
		{ "GET", NULL, NULL },
		{ "get", "k", NULL },
		{ "LIST", NULL, NULL },
		{ "-o", "sync=none", "SIZE" },
		{ "--dump", "PUT", NULL },
	};
	char cwd[PATH_MAX];

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir(tmp), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct result r = run(NULL, cases[i][0], cases[i][1], cases[i][2], NULL, NULL, NULL);

		ck_assert_msg(r.code == 2, "case %zu: exit %d", i, r.code);
		ck_assert_msg(strstr(r.err, "is a command, not a DATADIR"), "case %zu: %s", i, r.err);
		result_free(&r);
	}
	ck_assert_int_eq(access("GET", F_OK), -1);
	ck_assert_int_eq(access("get", F_OK), -1);
	ck_assert_int_eq(access("LIST", F_OK), -1);
	ck_assert_int_eq(access("SIZE", F_OK), -1);
	ck_assert_int_eq(access("PUT", F_OK), -1);
	/* ./GET is a directory */
	{
		struct result r = run(NULL, "./GET", "SIZE", NULL, NULL, NULL, NULL);

		ck_assert_int_eq(r.code, 0);
		ck_assert_str_eq(r.out, "0\n");
		result_free(&r);
	}
	ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

/* ---- --dump and --load ------------------------------------------------------------------- */

/* The entries of the metadata test store: binary keys (the empty key, a NUL, a newline, the
 * longest key), metadata of 0 to 1024 bytes, empty values and one that spans several chunks. */
struct test_entry {
	char key[KV_MAX_KEY];
	size_t klen;
	unsigned char meta[KV_MAX_META];
	size_t mlen;
	size_t vlen;
	unsigned pattern; /* value byte i is (i * 31 + pattern) & 0xff */
};

/* Bytes [off, off + len) of a test value. */
static void fill_value_at(unsigned char *v, uint64_t off, size_t len, unsigned pattern)
{
	for (size_t i = 0; i < len; i++)
		v[i] = (unsigned char)(((off + i) * 31 + pattern) & 0xff);
}

static void fill_value(unsigned char *v, size_t len, unsigned pattern)
{
	fill_value_at(v, 0, len, pattern);
}

static struct test_entry *test_entries(size_t *n)
{
	static struct test_entry e[6];
	size_t i = 0;

	memset(e, 0, sizeof(e));
	e[i].klen = 0; /* the root's key in a mounted store */
	e[i].mlen = 57;
	memset(e[i].meta, 0x41, 57);
	i++;
	memcpy(e[i].key, "a\nb\0c", 5);
	e[i].klen = 5;
	e[i].vlen = 300;
	e[i].pattern = 7;
	i++;
	memset(e[i].key, 'k', KV_MAX_KEY);
	e[i].klen = KV_MAX_KEY;
	e[i].mlen = KV_MAX_META;
	memset(e[i].meta, 0xee, KV_MAX_META);
	e[i].vlen = 1;
	e[i].pattern = 'v';
	i++;
	memcpy(e[i].key, "big", 3);
	e[i].klen = 3;
	e[i].mlen = 5;
	memcpy(e[i].meta, "\x01\x02\x03\x04\x05", 5);
	e[i].vlen = (3u << 20) + 17; /* over three 1 MiB chunks */
	e[i].pattern = 3;
	i++;
	memcpy(e[i].key, "empty", 5);
	e[i].klen = 5;
	i++;
	memcpy(e[i].key, "\xff\xfe", 2);
	e[i].klen = 2;
	e[i].vlen = 1;
	e[i].pattern = 'x';
	i++;
	*n = i;
	return e;
}

static void put_entries(const char *dir, const struct test_entry *e, size_t n)
{
	struct kv_options o;
	struct kv *kv = NULL;

	kv_options_default(&o);
	ck_assert_int_eq(kv_open(&kv, dir, &o, NULL), 0);
	for (size_t i = 0; i < n; i++) {
		unsigned char *v = malloc(e[i].vlen + 1);
		struct kv_batch *b = NULL;

		ck_assert_ptr_nonnull(v);
		fill_value(v, e[i].vlen, e[i].pattern);
		ck_assert_int_eq(kv_batch_new(&b), 0);
		ck_assert_int_eq(kv_batch_put(b, e[i].key, e[i].klen, e[i].meta, e[i].mlen, v,
					      e[i].vlen), 0);
		ck_assert_int_eq(kv_apply(kv, b, NULL), 0);
		kv_batch_free(b);
		free(v);
	}
	ck_assert_int_eq(kv_close(kv), 0);
}

/* The store at dir holds exactly the entries e, metadata and values byte for byte. */
static void assert_store_holds(const char *dir, const struct test_entry *e, size_t n)
{
	struct kv_options o;
	struct kv_stats st;
	struct kv *kv = NULL;
	unsigned char *want = malloc(1u << 20), *got = malloc(1u << 20), meta[KV_MAX_META];

	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	kv_options_default(&o);
	ck_assert_int_eq(kv_open(&kv, dir, &o, NULL), 0);
	kv_stats(kv, &st);
	ck_assert_uint_eq(st.keys, n);
	for (size_t i = 0; i < n; i++) {
		uint64_t size = 0;
		size_t mlen = sizeof(meta), rd = 0;

		ck_assert_msg(kv_stat(kv, e[i].key, e[i].klen, &size, meta, &mlen) == 0,
			      "entry %zu is missing", i);
		ck_assert_uint_eq(size, e[i].vlen);
		ck_assert_uint_eq(mlen, e[i].mlen);
		ck_assert(memcmp(meta, e[i].meta, mlen) == 0);
		for (uint64_t off = 0; off < e[i].vlen; off += rd) {
			size_t step = e[i].vlen - off < (1u << 20) ? (size_t)(e[i].vlen - off) : 1u << 20;

			fill_value_at(want, off, step, e[i].pattern);
			ck_assert_int_eq(kv_read(kv, e[i].key, e[i].klen, off, got, step, &rd), 0);
			ck_assert_uint_eq(rd, step);
			ck_assert_msg(memcmp(got, want, step) == 0, "entry %zu: value differs at %llu", i,
				      (unsigned long long)off);
		}
	}
	ck_assert_int_eq(kv_close(kv), 0);
	free(want);
	free(got);
}

static void dump_store(const char *dir, const char *file)
{
	const char *argv[] = { mt_kv_cli(), "--dump", dir, NULL };
	struct fresult r = run_files(argv, NULL, file);

	ck_assert_msg(r.code == 0, "dump: exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.err, "");
	fresult_free(&r);
}

static struct fresult load_store(const char *dir, const char *file)
{
	const char *argv[] = { mt_kv_cli(), "--load", dir, NULL };

	return run_files(argv, file, NULL);
}

START_TEST(dump_and_load_round_trip_keys_metadata_and_values)
{
	char *file = path_in(tmp, "dump"), *copy = path_in(tmp, "copy"), *again = path_in(tmp, "dump2");
	char *a, *b;
	size_t alen, blen, n;
	struct test_entry *e = test_entries(&n);
	struct fresult r;

	put_entries(store, e, n);
	dump_store(store, file);
	r = load_store(copy, file);
	ck_assert_msg(r.code == 0, "load: exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.err, "");
	fresult_free(&r);
	assert_store_holds(copy, e, n);
	/* the dump of the copy is the same bytes: a dump depends only on the entries */
	dump_store(copy, again);
	ck_assert_int_eq(tu_read_file(file, &a, &alen), 0);
	ck_assert_int_eq(tu_read_file(again, &b, &blen), 0);
	ck_assert(alen == blen && memcmp(a, b, alen) == 0);
	free(a);
	free(b);
	free(file);
	free(copy);
	free(again);
}
END_TEST

START_TEST(a_loaded_store_is_durable_and_checks_clean)
{
	char *file = path_in(tmp, "dump"), *copy = path_in(tmp, "copy");
	struct result r;
	struct fresult fr;

	run_ok("PUT a 1\nPUT b 2\n");
	dump_store(store, file);
	fr = load_store(copy, file);
	ck_assert_int_eq(fr.code, 0);
	fresult_free(&fr);
	r = run(NULL, "--check", copy, NULL, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "%s", r.out);
	/* everything is in the snapshot the load ends with */
	ck_assert_msg(strstr(r.out, "snapshot: lsn 2, 2 keys\n"), "%s", r.out);
	result_free(&r);
	free(file);
	free(copy);
}
END_TEST

/* ---- --backup ---- */

START_TEST(a_backup_opens_as_the_store_and_is_verified)
{
	char *copy = path_in(tmp, "copy"), *copy2 = path_in(tmp, "copy2");
	size_t n;
	struct test_entry *e = test_entries(&n);
	struct result r;

	put_entries(store, e, n);
	r = run(NULL, "--backup", store, copy, NULL, NULL, NULL);
	ck_assert_msg(r.code == 0, "backup: exit %d: %s %s", r.code, r.out, r.err);
	ck_assert_msg(strstr(r.out, "status: verified"), "%s", r.out);
	ck_assert_str_eq(r.err, "");
	result_free(&r);
	assert_store_holds(copy, e, n);
	/* read-only, the files are copied as they are */
	r = run(NULL, "-o", "ro", "--backup", store, copy2, NULL);
	ck_assert_msg(r.code == 0, "ro backup: exit %d: %s %s", r.code, r.out, r.err);
	result_free(&r);
	assert_store_holds(copy2, e, n);
	free(copy);
	free(copy2);
}
END_TEST

START_TEST(a_backup_refuses_a_destination_that_holds_something_and_needs_one)
{
	char *copy = path_in(tmp, "copy"), *mine = path_in(copy, "mine"), *elsewhere = path_in(tmp, "x");
	struct result r;

	run_ok("PUT a 1\n");
	ck_assert_int_eq(mkdir(copy, 0700), 0);
	ck_assert_int_eq(tu_write_file(mine, "keep", 4), 0);
	r = run(NULL, "--backup", store, copy, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "not empty"), "%s", r.err);
	result_free(&r);
	r = run(NULL, "--backup", store, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 2);
	ck_assert_msg(strstr(r.err, "needs a DEST"), "%s", r.err);
	result_free(&r);
	r = run(NULL, "--backup", copy, elsewhere, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	result_free(&r);
	free(copy);
	free(mine);
	free(elsewhere);
}
END_TEST

START_TEST(the_dump_of_one_key_is_the_documented_bytes)
{
	/* docs/FORMAT.md section 11.4: x = 100, no metadata */
	static const unsigned char want[] = {
		0x4b, 0x56, 0x46, 0x53, 0x44, 0x4d, 0x50, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x91, 0x30, 0xdb, 0x8f, 0x45, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x78, 0xc4, 0x0a, 0x96, 0x92, 0x31, 0x30,
		0x30, 0x13, 0x57, 0xaa, 0xf8, 0x54, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xf4, 0xe0, 0xdf, 0x6d,
		0x2c, 0xee, 0xcc, 0x52,
	};
	char *file = path_in(tmp, "dump"), *got;
	size_t len;

	run_ok("PUT x 100\n");
	dump_store(store, file);
	ck_assert_int_eq(tu_read_file(file, &got, &len), 0);
	ck_assert_uint_eq(len, sizeof(want));
	for (size_t i = 0; i < len; i++)
		ck_assert_msg((unsigned char)got[i] == want[i], "byte %zu: %02x, documented %02x", i,
			      (unsigned char)got[i], want[i]);
	free(got);
	free(file);
}
END_TEST

/* ---- memory of a dump and a load ---- */

/* A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"). */
static long proc_kb(pid_t pid, const char *field)
{
	char path[64], *text, *p;
	long kb = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	ck_assert_int_eq(tu_read_file(path, &text, NULL), 0);
	p = strstr(text, field);
	if (p)
		kb = strtol(p + strlen(field) + 1, NULL, 10);
	free(text);
	ck_assert_int_ge(kb, 0);
	return kb;
}

/* kv_cli with plain glibc malloc (the documented opt-out of mount/hugepages.h, which keeps freed
 * memory mapped and so hides what a process holds), stdin and stdout as given (-1: /dev/null). */
static pid_t spawn_plain_malloc(const char *const argv[], int in, int out)
{
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		if (null < 0 || dup2(in >= 0 ? in : null, 0) < 0 || dup2(out >= 0 ? out : null, 1) < 0)
			_exit(127);
		setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0", 1);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static void reap_ok(pid_t pid)
{
	int status = 0;

	while (waitpid(pid, &status, 0) < 0)
		ck_assert_int_eq(errno, EINTR);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "kv_cli: status %#x", status);
}

#define BIG_VALUE (64u << 20)

/* While it writes a 64 MiB value, kv_cli --dump holds little more than the open store does: it
 * reads the value in chunks, never whole. Its resident memory is sampled after every MiB the
 * test reads from the pipe (kv_cli waits on the full pipe in between), against that of a shell
 * idle on the same store. */
START_TEST(a_dump_holds_no_copy_of_a_large_value)
{
	static struct test_entry e = { .key = "huge", .klen = 4, .vlen = BIG_VALUE, .pattern = 9 };
	const char *shell_argv[] = { mt_kv_cli(), store, NULL };
	const char *dump_argv[] = { mt_kv_cli(), "--dump", store, NULL };
	int in[2], out[2];
	long idle, peak = 0;
	char *buf = malloc(1u << 20), line[64];
	uint64_t total = 0;
	ssize_t n;
	pid_t pid;

	ck_assert_ptr_nonnull(buf);
	put_entries(store, &e, 1);
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	pid = spawn_plain_malloc(shell_argv, in[0], out[1]);
	close(in[0]);
	close(out[1]);
	ck_assert_int_eq(tu_write_all(in[1], "SIZE\n", 5), 0);
	ck_assert_int_gt(tu_read_line(out[0], line, sizeof(line), READ_TIMEOUT_MS), 0);
	idle = proc_kb(pid, "VmRSS:");
	close(in[1]);
	close(out[0]);
	reap_ok(pid);

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	pid = spawn_plain_malloc(dump_argv, -1, out[1]);
	close(out[1]);
	while ((n = read(out[0], buf, 1u << 20)) != 0) {
		ck_assert_int_gt(n, 0);
		total += (uint64_t)n;
		if (total < BIG_VALUE) { /* still inside the value: kv_cli is alive */
			long rss = proc_kb(pid, "VmRSS:");

			peak = rss > peak ? rss : peak;
		}
	}
	close(out[0]);
	reap_ok(pid);
	ck_assert_uint_gt(total, BIG_VALUE);
	fprintf(stderr, "a_dump_holds_no_copy_of_a_large_value: kv_cli RSS idle on the store %ld "
		"KiB, during the dump at most %ld KiB\n", idle, peak);
	if (SANITIZED)
		fprintf(stderr, "a_dump_holds_no_copy_of_a_large_value: not checked under a "
			"sanitizer (shadow memory)\n");
	else
		ck_assert_int_le(peak, idle + 16 * 1024);
	free(buf);
}
END_TEST

/* kv_cli --load holds the store it builds (the value, in memory), the log it has not yet written
 * (up to 32 MiB under sync=none) and its chunk buffers; never the whole value besides. Its peak
 * memory is read once it has taken the whole dump and waits for the end of input. */
START_TEST(a_load_holds_no_copy_of_a_large_value)
{
	static struct test_entry e = { .key = "huge", .klen = 4, .vlen = BIG_VALUE, .pattern = 9 };
	char *file = path_in(tmp, "dump"), *copy = path_in(tmp, "copy"), *data;
	const char *load_argv[] = { mt_kv_cli(), "--load", copy, NULL };
	char path[64], *sys;
	size_t len;
	long hwm;
	int in[2], waited = 0, pending;
	pid_t pid;

	put_entries(store, &e, 1);
	dump_store(store, file);
	ck_assert_int_eq(tu_read_file(file, &data, &len), 0);
	ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	pid = spawn_plain_malloc(load_argv, in[0], -1);
	close(in[0]);
	ck_assert_int_eq(tu_write_all(in[1], data, len), 0);
	/* until the pipe is empty and kv_cli blocks reading its stdin for the end of input (a hang
	 * guard of a minute, not a timing) */
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (;;) {
		ck_assert_int_eq(ioctl(in[1], FIONREAD, &pending), 0);
		ck_assert_int_eq(tu_read_file(path, &sys, NULL), 0);
		if (pending == 0 && strncmp(sys, "0 0x0 ", 6) == 0) {
			free(sys);
			break;
		}
		free(sys);
		ck_assert_msg(waited++ < 6000, "kv_cli --load did not take the whole dump");
		usleep(10000);
	}
	hwm = proc_kb(pid, "VmHWM:");
	close(in[1]);
	reap_ok(pid);
	fprintf(stderr, "a_load_holds_no_copy_of_a_large_value: kv_cli --load peak RSS %ld KiB for "
		"a %u MiB value\n", hwm, BIG_VALUE >> 20);
	if (SANITIZED)
		fprintf(stderr, "a_load_holds_no_copy_of_a_large_value: not checked under a "
			"sanitizer (shadow memory)\n");
	else
		ck_assert_int_le(hwm, (long)(BIG_VALUE >> 10) + 48 * 1024);
	assert_store_holds(copy, &e, 1);
	free(data);
	free(file);
	free(copy);
}
END_TEST

/* A small dump with metadata, for the damage tests. */
static char *small_dump(size_t *len)
{
	static const struct test_entry proto[] = {
		{ .key = "", .klen = 0, .meta = "m", .mlen = 1, .vlen = 3, .pattern = 1 },
		{ .key = "a\nb", .klen = 3, .vlen = 0 },
		{ .key = "key", .klen = 3, .meta = "meta", .mlen = 4, .vlen = 5, .pattern = 2 },
	};
	static struct test_entry e[3];
	char *file = path_in(tmp, "small.dump"), *data;

	memcpy(e, proto, sizeof(e));
	put_entries(store, e, 3);
	dump_store(store, file);
	ck_assert_int_eq(tu_read_file(file, &data, len), 0);
	free(file);
	return data;
}

/* Loading data must fail with exit 1 and one line naming an offset, and leave no trace. */
static void assert_load_refused(const char *data, size_t len, const char *what, size_t at)
{
	char *file = path_in(tmp, "bad.dump"), *dest = path_in(tmp, "dest");
	char *scratch = path_in(tmp, "dest.tmp-load");
	struct fresult r;

	ck_assert_int_eq(tu_write_file(file, data, len), 0);
	r = load_store(dest, file);
	ck_assert_msg(r.code == 1, "%s %zu: exit %d: %s", what, at, r.code, r.err);
	ck_assert_msg(strstr(r.err, "offset "), "%s %zu: no offset named: %s", what, at, r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "%s %zu: not one line: %s",
		      what, at, r.err);
	ck_assert_msg(access(dest, F_OK) < 0, "%s %zu: %s exists", what, at, dest);
	ck_assert_msg(access(scratch, F_OK) < 0, "%s %zu: %s left behind", what, at, scratch);
	fresult_free(&r);
	free(file);
	free(dest);
	free(scratch);
}

START_TEST(damage_at_any_byte_of_a_dump_is_refused_and_leaves_nothing)
{
	size_t len;
	char *dump = small_dump(&len), *bad = malloc(len);

	ck_assert_ptr_nonnull(bad);
	for (size_t i = 0; i < len; i++) {
		for (int flip = 0; flip < 2; flip++) {
			memcpy(bad, dump, len);
			bad[i] ^= flip ? 0x01 : 0x80;
			assert_load_refused(bad, len, "byte flipped at", i);
		}
	}
	free(bad);
	free(dump);
}
END_TEST

START_TEST(a_dump_cut_anywhere_is_refused_and_leaves_nothing)
{
	size_t len;
	char *dump = small_dump(&len);

	for (size_t cut = 0; cut < len; cut++)
		assert_load_refused(dump, cut, "cut to", cut);
	free(dump);
}
END_TEST

START_TEST(bytes_after_the_end_record_are_refused)
{
	size_t len;
	char *dump = small_dump(&len), *more = malloc(len + 1);
	char *file = path_in(tmp, "more.dump"), *dest = path_in(tmp, "dest");
	struct fresult r;

	ck_assert_ptr_nonnull(more);
	memcpy(more, dump, len);
	more[len] = '\n';
	assert_load_refused(more, len + 1, "one byte more at", len);
	ck_assert_int_eq(tu_write_file(file, more, len + 1), 0);
	r = load_store(dest, file);
	ck_assert_msg(strstr(r.err, "after the dump's end record"), "%s", r.err);
	fresult_free(&r);
	free(more);
	free(dump);
	free(file);
	free(dest);
}
END_TEST

/* A dump made by hand: the header, then records. */
static size_t dump_header(unsigned char *p, uint32_t version)
{
	memcpy(p, "KVFSDMP", 8);
	memset(p + 8, 0, 8);
	p[8] = (unsigned char)version;
	le_put32(p + 16, crc32c(0, p, 16));
	return 20;
}

START_TEST(a_value_over_the_limit_is_refused_as_too_big)
{
	unsigned char d[64];
	size_t n = dump_header(d, 1);
	struct fresult r;
	char *file = path_in(tmp, "big.dump"), *dest = path_in(tmp, "dest");

	d[n] = 'E';
	le_put32(d + n + 1, 1);
	le_put32(d + n + 5, 0);
	le_put32(d + n + 9, 0);
	le_put32(d + n + 13, 512); /* vlen 2^41, past the 1 TiB limit */
	d[n + 17] = 'k';
	le_put32(d + n + 18, crc32c(0, d + n, 18));
	n += 22;
	ck_assert_int_eq(tu_write_file(file, d, n), 0);
	r = load_store(dest, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "offset 20 has a value of 2199023255552 bytes"), "%s", r.err);
	ck_assert_int_eq(access(dest, F_OK), -1);
	fresult_free(&r);
	free(file);
	free(dest);
}
END_TEST

START_TEST(an_unknown_version_or_not_a_dump_is_refused_saying_so)
{
	unsigned char d[64];
	size_t n = dump_header(d, 2);
	struct fresult r;
	char *file = path_in(tmp, "v2.dump"), *dest = path_in(tmp, "dest");

	ck_assert_int_eq(tu_write_file(file, d, n), 0);
	r = load_store(dest, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "version"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(tu_write_file(file, "PUT a 1\n", 8), 0);
	r = load_store(dest, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "not a kvfs dump"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(access(dest, F_OK), -1);
	free(file);
	free(dest);
}
END_TEST

START_TEST(load_goes_into_a_missing_or_empty_directory_only)
{
	char *file = path_in(tmp, "dump"), *empty = path_in(tmp, "empty"), *full = path_in(tmp, "full");
	char *plain = path_in(tmp, "plain"), *inside = path_in(full, "keep");
	char *data;
	size_t len;
	struct fresult r;

	run_ok("PUT a 1\n");
	dump_store(store, file);
	ck_assert_int_eq(mkdir(empty, 0755), 0);
	r = load_store(empty, file);
	ck_assert_msg(r.code == 0, "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(mkdir(full, 0755), 0);
	ck_assert_int_eq(tu_write_file(inside, "mine", 4), 0);
	r = load_store(full, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "not empty"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(tu_read_file(inside, &data, &len), 0);
	ck_assert_str_eq(data, "mine");
	free(data);
	ck_assert_int_eq(tu_write_file(plain, "x", 1), 0);
	r = load_store(plain, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "not a directory"), "%s", r.err);
	fresult_free(&r);
	/* the store itself is never loaded over */
	r = load_store(store, file);
	ck_assert_int_eq(r.code, 1);
	fresult_free(&r);
	free(file);
	free(empty);
	free(full);
	free(plain);
	free(inside);
}
END_TEST

START_TEST(dump_of_a_missing_or_empty_directory_is_refused_and_creates_nothing)
{
	const char *argv[] = { mt_kv_cli(), "--dump", store, NULL };
	struct fresult r = run_files(argv, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "no store there"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(access(store, F_OK), -1);
	ck_assert_int_eq(mkdir(store, 0700), 0);
	r = run_files(argv, NULL, NULL);
	ck_assert_int_eq(r.code, 1);
	fresult_free(&r);
	ck_assert_int_eq(rmdir(store), 0); /* still empty */
}
END_TEST

START_TEST(leftovers_of_a_killed_load_are_cleared_by_the_next_load)
{
	char *file = path_in(tmp, "dump"), *dest = path_in(tmp, "dest");
	char *scratch = path_in(tmp, "dest.tmp-load");
	struct test_entry e = { .key = "half", .klen = 4, .vlen = 1, .pattern = 1 };
	struct fresult r;

	run_ok("PUT a 1\n");
	dump_store(store, file);
	put_entries(scratch, &e, 1); /* what a load killed half way leaves */
	r = load_store(dest, file);
	ck_assert_msg(r.code == 0, "%s", r.err);
	ck_assert_msg(strstr(r.err, "removed") && strstr(r.err, scratch), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(access(scratch, F_OK), -1);
	expect_replies_in(dest, "LIST\n", "1\na\n");
	free(file);
	free(dest);
	free(scratch);
}
END_TEST

START_TEST(a_load_in_progress_or_a_foreign_scratch_directory_is_left_alone)
{
	char *file = path_in(tmp, "dump"), *dest = path_in(tmp, "dest");
	char *scratch = path_in(tmp, "dest.tmp-load"), *foreign = path_in(scratch, "notes.txt");
	struct kv_options o;
	struct kv *kv = NULL;
	struct fresult r;

	run_ok("PUT a 1\n");
	dump_store(store, file);
	kv_options_default(&o);
	ck_assert_int_eq(kv_open(&kv, scratch, &o, NULL), 0); /* a load running */
	r = load_store(dest, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "another load"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(kv_close(kv), 0);
	ck_assert_int_eq(tu_write_file(foreign, "mine", 4), 0);
	r = load_store(dest, file);
	ck_assert_int_eq(r.code, 1);
	ck_assert_msg(strstr(r.err, "notes.txt"), "%s", r.err);
	fresult_free(&r);
	ck_assert_int_eq(access(foreign, F_OK), 0);
	ck_assert_int_eq(access(dest, F_OK), -1);
	free(file);
	free(dest);
	free(scratch);
	free(foreign);
}
END_TEST

START_TEST(a_dump_is_not_written_to_a_terminal)
{
	int master, slave, status;
	char err[512];
	ssize_t n, en = 0;
	int errp[2];
	pid_t pid;

	run_ok("PUT a 1\n");
	ck_assert_int_eq(openpty(&master, &slave, NULL, NULL, NULL), 0);
	ck_assert_int_eq(pipe(errp), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		dup2(slave, 1);
		dup2(errp[1], 2);
		execl(mt_kv_cli(), mt_kv_cli(), "--dump", store, (char *)NULL);
		_exit(127);
	}
	close(slave);
	close(errp[1]);
	while ((n = read(errp[0], err + en, sizeof(err) - 1 - (size_t)en)) > 0)
		en += n;
	err[en] = '\0';
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 2);
	ck_assert_msg(strstr(err, "terminal"), "%s", err);
	close(master);
	close(errp[0]);
}
END_TEST

/* ---- 1 GiB values (KVFS_BIG_TESTS=1) ----------------------------------------------------- */

/* "PUT big " and vlen bytes of value, newline, then tail. */
static char *big_put(size_t vlen, const char *tail)
{
	char *s = malloc(8 + vlen + strlen(tail) + 2);

	ck_assert_ptr_nonnull(s);
	memcpy(s, "PUT big ", 8);
	memset(s + 8, 'v', vlen);
	s[8 + vlen] = '\n';
	strcpy(s + 9 + vlen, tail);
	return s;
}

/* ... and its PUT holds the value in memory once (issue 10 found 4.2 GB: the line buffer, the
 * batch, the log buffer and an index copy). The child's peak resident memory is measured
 * (wait4's ru_maxrss), about 1.02 GiB; the bound, 1.5 GiB, leaves room for overheads but not
 * for a second copy. */
START_TEST(value_of_1_GiB_round_trips)
{
	const char *argv[] = { mt_kv_cli(), store, NULL };
	char *input = big_put(KV_MAX_WRITE, "FLUSH\n"), *inpath = path_in(tmp, "in.txt");
	char *outpath = path_in(tmp, "out.txt"), *out;
	struct fresult fr;
	struct result r;

	ck_assert_int_eq(tu_write_file(inpath, input, strlen(input)), 0);
	free(input);
	fr = run_files(argv, inpath, outpath);
	ck_assert_msg(fr.code == 0, "exit %d: %s", fr.code, fr.err);
	ck_assert_int_eq(tu_read_file(outpath, &out, NULL), 0);
	ck_assert_str_eq(out, "OK\nOK\n");
	free(out);
	fprintf(stderr, "a 1 GiB PUT peaked at %ld KiB resident\n", fr.maxrss_kb);
	ck_assert_msg(fr.maxrss_kb < 1536L * 1024, "a 1 GiB PUT peaked at %ld KiB resident",
		      fr.maxrss_kb);
	fresult_free(&fr);
	ck_assert_int_eq(unlink(inpath), 0);
	free(inpath);
	free(outpath);
	r = run("GET big\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_uint_eq(strlen(r.out), KV_MAX_WRITE + 1);
	ck_assert(r.out[0] == 'v' && r.out[KV_MAX_WRITE - 1] == 'v' && r.out[KV_MAX_WRITE] == '\n');
	result_free(&r);
}
END_TEST

START_TEST(value_over_1_GiB_is_refused_and_the_shell_goes_on)
{
	char *input = big_put(KV_MAX_WRITE + 1, "SIZE\n");
	struct result r = run(input, store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_int_eq(r.code, 1);
	ck_assert_str_eq(r.out, "ERR value too long (at most 1073741824 bytes)\n0\n");
	result_free(&r);
	free(input);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("cli");
	TCase *proto = tcase_create("protocol"), *errs = tcase_create("errors");
	TCase *crash = tcase_create("persistence"), *admin = tcase_create("check_salvage_open");
	TCase *args = tcase_create("arguments"), *quoting = tcase_create("quoting");
	TCase *list = tcase_create("list"), *oneshot = tcase_create("one_shot");
	TCase *dump = tcase_create("dump_load");
	const char *big = getenv("KVFS_BIG_TESTS");
	SRunner *sr;
	int failed;

	seed = tu_seed();
	TCase *all[] = { proto, errs, crash, admin, args, quoting, list, oneshot, dump };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		tcase_add_checked_fixture(all[i], setup, teardown);
		tcase_set_timeout(all[i], 300);
		suite_add_tcase(su, all[i]);
	}

	tcase_add_test(proto, put_replies_ok_and_get_returns_the_value);
	tcase_add_test(proto, an_exit_whose_reply_cannot_be_written_fails);
	tcase_add_test(proto, put_of_an_existing_key_replaces_its_value);
	tcase_add_test(proto, get_of_an_absent_key_replies_nil);
	tcase_add_test(proto, del_replies_ok_then_nil_when_the_key_is_absent);
	tcase_add_test(proto, size_replies_the_number_of_keys);
	tcase_add_test(proto, snap_replies_ok_once_a_snapshot_is_on_disk);
	tcase_add_test(proto, flush_replies_ok);
	tcase_add_test(proto, exit_replies_ok_after_closing_and_reads_no_further);
	tcase_add_test(proto, commands_are_case_insensitive_and_keys_are_not);
	tcase_add_test(proto, value_is_the_rest_of_the_line_with_its_spaces);
	tcase_add_test(proto, empty_value_is_allowed);
	tcase_add_test(proto, a_trailing_carriage_return_is_stripped);
	tcase_add_test(proto, a_last_line_without_newline_is_still_a_command);
	tcase_add_test(proto, values_of_many_megabytes_round_trip);
	tcase_add_test(proto, each_reply_is_flushed_before_the_next_command_is_read);
	tcase_add_test(proto, at_a_terminal_the_prompt_goes_to_stderr_and_blank_lines_pass);

	tcase_add_test(errs, unknown_command_replies_err_and_the_shell_goes_on);
	tcase_add_test(errs, missing_arguments_reply_err);
	tcase_add_test(errs, extra_arguments_reply_err);
	tcase_add_test(errs, empty_line_replies_err);
	tcase_add_test(errs, key_of_4096_bytes_is_accepted_and_4097_refused);

	tcase_add_test(crash, end_of_input_is_exit_and_data_persists_across_runs);
	tcase_add_test(crash, seed_demo_flushed_writes_survive_kill_9);
	tcase_add_test(crash, unflushed_writes_recover_to_a_prefix_after_kill_9);
	tcase_add_test(crash, with_sync_none_a_flush_mid_stream_is_kept_and_the_rest_is_a_prefix);
	tcase_add_test(crash, batch_writes_older_than_the_commit_interval_survive_kill_9);
	tcase_add_test(crash, a_reader_that_goes_away_ends_the_shell_without_sigpipe);

	tcase_add_test(admin, second_cli_on_the_same_store_is_refused_while_the_first_runs);
	tcase_add_test(admin, a_clean_open_prints_nothing_on_stderr);
	tcase_add_test(admin, a_new_store_without_room_for_its_first_segment_is_refused_and_leaves_nothing);
	tcase_add_test(admin, a_directory_of_other_files_is_refused_with_one_line_and_left_alone);
	tcase_add_test(admin, a_torn_tail_is_reported_on_stderr_and_stdout_carries_only_replies);
	tcase_add_test(admin, damaged_store_refuses_to_open_and_points_to_salvage);
	tcase_add_test(admin, check_on_a_clean_store_exits_0_prints_the_report_and_changes_nothing);
	tcase_add_test(admin, check_reports_a_torn_tail_and_still_exits_0);
	tcase_add_test(admin, check_of_a_log_not_closed_cleanly_does_not_say_plain_clean);
	tcase_add_test(admin, check_on_a_damaged_store_exits_1_and_names_file_and_offset);
	tcase_add_test(admin, check_of_a_missing_directory_exits_2);
	tcase_add_test(admin, salvage_keeps_everything_before_the_damage_and_lets_the_store_open);
	tcase_add_test(admin, damaged_framing_is_refused_saying_salvage_keeps_the_records_before_it);
	tcase_add_test(admin, a_damaged_value_is_refused_saying_salvage_drops_only_its_key);
	tcase_add_test(admin, a_damaged_checkpoint_header_is_refused_saying_salvage_keeps_every_provable_entry);
	tcase_add_test(admin, point_in_time_recovery_opens_a_damaged_store_and_reports_it_on_stderr);
	tcase_add_test(admin, check_names_damage_read_back_from_a_pending_relocation_s_source_and_exits_0);
	tcase_add_test(admin, salvage_names_damage_read_back_from_a_pending_relocation_s_source_and_keeps_the_key);
	tcase_add_test(admin, an_open_notes_damage_read_back_from_a_pending_relocation_s_source_on_stderr);

	tcase_add_test(args, help_exits_0_and_documents_the_default_datadir);
	tcase_add_test(args, version_exits_0_and_prints_the_version);
	tcase_add_test(args, bad_o_option_exits_2_with_a_clear_error_and_touches_nothing);
	tcase_add_test(args, every_store_option_out_of_range_is_refused_naming_its_range);
	tcase_add_test(args, a_size_option_takes_its_suffix_in_either_case);
	tcase_add_test(args, usage_errors_exit_2);
	tcase_add_test(args, default_datadir_is_KVFS_DATADIR_when_set);
	tcase_add_test(args, default_datadir_is_under_XDG_DATA_HOME_then_HOME);

	tcase_add_test(quoting, a_value_holding_newlines_is_one_quoted_reply_line);
	tcase_add_test(quoting, control_bytes_backslashes_and_invalid_utf8_are_escaped);
	tcase_add_test(quoting, plain_text_and_valid_utf8_are_printed_as_they_are);
	tcase_add_test(quoting, a_value_beginning_with_a_quote_is_printed_quoted);
	tcase_add_test(quoting, values_that_would_read_as_a_reply_are_quoted);
	tcase_add_test(quoting, a_quoted_key_may_hold_spaces_and_newlines);
	tcase_add_test(quoting, an_empty_quoted_value_is_an_empty_value);
	tcase_add_test(quoting, bad_quoting_replies_err_and_the_shell_goes_on);
	tcase_add_test(quoting, what_get_prints_can_be_put_back_unchanged);
	tcase_add_test(quoting, raw_prints_values_and_keys_unquoted);

	tcase_add_test(list, list_prints_the_count_then_every_key_in_byte_order);
	tcase_add_test(list, list_takes_a_prefix_and_a_limit);
	tcase_add_test(list, list_after_a_key_pages_through_every_key_once);
	tcase_add_test(list, list_with_a_bad_limit_or_too_many_arguments_replies_err);

	tcase_add_test(oneshot, the_shell_exits_1_at_the_end_when_any_command_answered_err);
	tcase_add_test(oneshot, one_shot_runs_one_command_and_prints_its_reply);
	tcase_add_test(oneshot, one_shot_arguments_are_tokens_and_put_joins_its_value);
	tcase_add_test(oneshot, one_shot_exits_1_when_its_reply_is_err);
	tcase_add_test(oneshot, a_wrong_one_shot_command_is_a_usage_error_and_creates_nothing);
	tcase_add_test(oneshot, a_command_word_is_never_taken_for_a_datadir);

	tcase_add_test(dump, dump_and_load_round_trip_keys_metadata_and_values);
	tcase_add_test(dump, a_backup_opens_as_the_store_and_is_verified);
	tcase_add_test(dump, a_backup_refuses_a_destination_that_holds_something_and_needs_one);
	tcase_add_test(dump, a_loaded_store_is_durable_and_checks_clean);
	tcase_add_test(dump, the_dump_of_one_key_is_the_documented_bytes);
	tcase_add_test(dump, a_dump_holds_no_copy_of_a_large_value);
	tcase_add_test(dump, a_load_holds_no_copy_of_a_large_value);
	tcase_add_test(dump, damage_at_any_byte_of_a_dump_is_refused_and_leaves_nothing);
	tcase_add_test(dump, a_dump_cut_anywhere_is_refused_and_leaves_nothing);
	tcase_add_test(dump, bytes_after_the_end_record_are_refused);
	tcase_add_test(dump, a_value_over_the_limit_is_refused_as_too_big);
	tcase_add_test(dump, an_unknown_version_or_not_a_dump_is_refused_saying_so);
	tcase_add_test(dump, load_goes_into_a_missing_or_empty_directory_only);
	tcase_add_test(dump, dump_of_a_missing_or_empty_directory_is_refused_and_creates_nothing);
	tcase_add_test(dump, leftovers_of_a_killed_load_are_cleared_by_the_next_load);
	tcase_add_test(dump, a_load_in_progress_or_a_foreign_scratch_directory_is_left_alone);
	tcase_add_test(dump, a_dump_is_not_written_to_a_terminal);

	if (big && strcmp(big, "1") == 0) {
		TCase *huge = tcase_create("huge");

		tcase_add_checked_fixture(huge, setup, teardown);
		tcase_set_timeout(huge, 900);
		tcase_add_test(huge, value_of_1_GiB_round_trips);
		tcase_add_test(huge, value_over_1_GiB_is_refused_and_the_shell_goes_on);
		suite_add_tcase(su, huge);
	} else {
		fprintf(stderr, "1 GiB value tests not run (set KVFS_BIG_TESTS=1)\n");
	}

	sr = srunner_create(su);
	srunner_run_all(sr, CK_ENV);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
