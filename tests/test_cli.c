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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "kv.h"
#include "testutil.h"
#include "wal.h"

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

static const char *cli(void)
{
	const char *p = getenv("KV_CLI");

	ck_assert_msg(p && p[0], "KV_CLI must name the kv_cli binary");
	return p;
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
	const char *argv[] = { cli(), a1, a2, a3, a4, a5, a6, NULL };
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
	const char *argv[] = { cli(), a1, a2, a3, NULL };
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

/* 100 records, then a byte flipped inside record 50's value: damage followed by valid records.
 * Found by content, so the test does not depend on where the log puts its records. */
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
	flip_byte(wal, (size_t)(hit - data) + 8);
	free(data);
	free(wal);
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
	size_t len, off = WAL_HDR_SIZE;

	ck_assert_ptr_nonnull(wal);
	ck_assert_int_eq(tu_read_file(wal, &data, &len), 0);
	while (off + REC_HDR_SIZE <= len) {
		const unsigned char *h = (const unsigned char *)data + off;

		if (le32(h) == 0 && le32(h + 4) == 0)
			break;
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
	const char *argv[] = { "sh", "-c", "exec \"$0\" \"$@\" >/dev/full", cli(), store, NULL };
	char *err = NULL;
	int status = 0;

	ck_assert_int_eq(tu_run(argv, "EXIT\n", NULL, &err, &status), 0);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 1, "status 0x%x", status);
	ck_assert_msg(strstr(err, "writing standard output"), "%s", err);
	free(err);
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
	ck_assert_msg(strstr(r.out, "last lsn: 10\n"), "report: %s", r.out);
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
	ck_assert_msg(strstr(r.out, "status: clean\n"), "report: %s", r.out);
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
	ck_assert_msg(strstr(r.out, "kept: everything up to lsn 50\n"), "report: %s", r.out);
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
		execl(cli(), cli(), store, (char *)NULL);
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

START_TEST(value_of_1_GiB_round_trips)
{
	char *input = big_put(KV_MAX_VALUE, "FLUSH\n");
	struct result r = run(input, store, NULL, NULL, NULL, NULL, NULL);

	ck_assert_msg(r.code == 0, "exit %d: %s", r.code, r.err);
	ck_assert_str_eq(r.out, "OK\nOK\n");
	result_free(&r);
	free(input);
	r = run("GET big\n", store, NULL, NULL, NULL, NULL, NULL);
	ck_assert_int_eq(r.code, 0);
	ck_assert_uint_eq(strlen(r.out), KV_MAX_VALUE + 1);
	ck_assert(r.out[0] == 'v' && r.out[KV_MAX_VALUE - 1] == 'v' && r.out[KV_MAX_VALUE] == '\n');
	result_free(&r);
}
END_TEST

START_TEST(value_over_1_GiB_is_refused_and_the_shell_goes_on)
{
	char *input = big_put(KV_MAX_VALUE + 1, "SIZE\n");
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
	TCase *args = tcase_create("arguments");
	const char *big = getenv("KVFS_BIG_TESTS");
	SRunner *sr;
	int failed;

	seed = tu_seed();
	TCase *all[] = { proto, errs, crash, admin, args };
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
	tcase_add_test(admin, a_torn_tail_is_reported_on_stderr_and_stdout_carries_only_replies);
	tcase_add_test(admin, damaged_store_refuses_to_open_and_points_to_salvage);
	tcase_add_test(admin, check_on_a_clean_store_exits_0_prints_the_report_and_changes_nothing);
	tcase_add_test(admin, check_reports_a_torn_tail_and_still_exits_0);
	tcase_add_test(admin, check_on_a_damaged_store_exits_1_and_names_file_and_offset);
	tcase_add_test(admin, check_of_a_missing_directory_exits_2);
	tcase_add_test(admin, salvage_keeps_everything_before_the_damage_and_lets_the_store_open);
	tcase_add_test(admin, point_in_time_recovery_opens_a_damaged_store_and_reports_it_on_stderr);

	tcase_add_test(args, help_exits_0_and_documents_the_default_datadir);
	tcase_add_test(args, version_exits_0_and_prints_the_version);
	tcase_add_test(args, bad_o_option_exits_2_with_a_clear_error_and_touches_nothing);
	tcase_add_test(args, usage_errors_exit_2);
	tcase_add_test(args, default_datadir_is_KVFS_DATADIR_when_set);
	tcase_add_test(args, default_datadir_is_under_XDG_DATA_HOME_then_HOME);

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
