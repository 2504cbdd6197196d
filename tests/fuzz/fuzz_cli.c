/* fuzz_cli — libFuzzer target for kv_cli's command shell (line reader, command parser, quoted
 * strings).
 *
 * First the quoting rules alone (mount/kvquote.h), on the input's bytes as a string: its quoted
 * form is one line that decodes, also in place, back to exactly those bytes; a string printed
 * plain is one line that cannot be mistaken for a quoted one; kvq_print writes what kvq_quote
 * makes; and decoding the input itself as a quoted string stays within it.
 * Then the shell:
 * mount/kv_cli.c is compiled into this file with its main renamed, and run in-process on each
 * input: argv {kv_cli, -o sync=none,segment_bytes=65536,cleaner=off, DIR} (no background
 * thread), standard input a memfd holding the input and then an "EXIT" line, standard output
 * /dev/null. Whatever the commands did, the shell leaves a store that kv_check finds clean. DIR is a store under /dev/shm
 * (tmpfs: the engine's fsyncs cost nothing) or else $TMPDIR, emptied before each input.
 * An input may end the shell early (its own EXIT, or a line the shell gives up on).
 * GLIBC_TUNABLES names glibc.malloc.hugetlb before the first input, so that kv_cli's start-up
 * (mount/hugepages.h) never re-executes the fuzzer: the documented opt-out. */
#define main kv_cli_main
int kv_cli_main(int argc, char **argv);
#include "../../mount/kv_cli.c"
#undef main
#include "../../mount/kvcmd.c"
#include "../../mount/kvdump.c"
#include "../../mount/kvquote.c"
#include "../../mount/hugepages.c"
#include "../../mount/stdfds.c"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char store_dir[256];
static int devnull = -1;

static void empty_store(void)
{
	DIR *d = opendir(store_dir);
	struct dirent *e;
	char path[512];

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", store_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

static void cleanup(void)
{
	empty_store();
	rmdir(store_dir);
	/* the parent made by mkdtemp */
	*strrchr(store_dir, '/') = '\0';
	rmdir(store_dir);
}

static void setup(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[200];

	if (access("/dev/shm", W_OK) == 0)
		base = "/dev/shm";
	if (!base || !base[0])
		base = "/tmp";
	snprintf(tmpl, sizeof(tmpl), "%s/kvfs-fuzz-cli-XXXXXX", base);
	if (!mkdtemp(tmpl))
		abort();
	snprintf(store_dir, sizeof(store_dir), "%s/store", tmpl);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0)
		abort();
	if (setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=0", 1) != 0)
		abort();
	atexit(cleanup);
}

static void check_quoting(const uint8_t *data, size_t size)
{
	char *q = malloc(kvq_quoted_max(size)), *d = malloc(size + 1), *printed = NULL;
	size_t qlen = kvq_quote(q, data, size), dlen = 0, used = 0, at = 0, plen = 0;
	enum kvq_error e;
	FILE *mem;

	if (!q || !d)
		abort();
	/* the quoted form: one line of printable bytes, quotes at both ends */
	if (qlen < 2 || q[0] != '"' || q[qlen - 1] != '"' || memchr(q, '\n', qlen))
		abort();
	for (size_t i = 0; i < qlen; i++)
		if ((unsigned char)q[i] < 0x20 || q[i] == 0x7f)
			abort();
	if (kvq_unquote(q, qlen, d, &dlen, &used, &e, &at) || used != qlen || dlen != size ||
	    memcmp(d, data, size))
		abort();
	/* in place, as the parser decodes */
	if (kvq_unquote(q, qlen, q, &dlen, &used, &e, &at) || dlen != size || memcmp(q, data, size))
		abort();
	qlen = kvq_quote(q, data, size); /* again: decoding in place overwrote it */
	/* plain: one line, not taken for a quoted string, no escape in it */
	if (!kvq_needs_quotes(data, size, KVQ_VALUE) &&
	    ((size && data[0] == '"') || memchr(data, '\n', size) || memchr(data, '\\', size)))
		abort();
	if (!kvq_needs_quotes(data, size, KVQ_KEY) && (size == 0 || memchr(data, ' ', size)))
		abort();
	/* kvq_print writes the same as kvq_quote when it quotes */
	mem = open_memstream(&printed, &plen);
	if (!mem || kvq_print(mem, data, size, KVQ_KEY, 0) || fclose(mem))
		abort();
	if (kvq_needs_quotes(data, size, KVQ_KEY) ? plen != qlen || memcmp(printed, q, qlen) :
	    plen != size || memcmp(printed, data, size))
		abort();
	free(printed);
	/* the input as a quoted string: decoding stays within it */
	if (size && data[0] == '"') {
		memcpy(d, data, size);
		if (kvq_unquote(d, size, d, &dlen, &used, &e, &at) == 0 ? used > size || dlen > used :
		    at > size || e == KVQ_OK)
			abort();
	}
	free(q);
	free(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char exit_line[] = "\nEXIT\n";
	const char *tail = exit_line;
	size_t tlen = sizeof(exit_line) - 1;
	char *argv[] = { "kv_cli", "-o", "sync=none,segment_bytes=65536,cleaner=off", store_dir, NULL };
	int in, saved_in, saved_out, rc;

	if (size > (1u << 20))
		return 0;
	check_quoting(data, size);
	if (devnull < 0)
		setup();
	empty_store();

	in = memfd_create("fuzz-cli-stdin", MFD_CLOEXEC);
	if (in < 0)
		abort();
	if (size == 0 || data[size - 1] == '\n') {
		tail++; /* no empty line before EXIT */
		tlen--;
	}
	if ((size && write(in, data, size) != (ssize_t)size) ||
	    write(in, tail, tlen) != (ssize_t)tlen ||
	    lseek(in, 0, SEEK_SET) != 0)
		abort();
	fflush(stdout);
	saved_in = dup(STDIN_FILENO);
	saved_out = dup(STDOUT_FILENO);
	if (saved_in < 0 || saved_out < 0 || dup2(in, STDIN_FILENO) < 0 ||
	    dup2(devnull, STDOUT_FILENO) < 0)
		abort();
	close(in);
	clearerr(stdout);

	optind = 0; /* glibc: reinitialise getopt for this run */
	/* its exit status says whether some command failed: any input may make one fail */
	kv_cli_main(4, argv);

	fflush(stdout);
	clearerr(stdout);
	if (dup2(saved_in, STDIN_FILENO) < 0 || dup2(saved_out, STDOUT_FILENO) < 0)
		abort();
	close(saved_in);
	close(saved_out);
	/* the shell closed the store: what it left checks clean (the store exists unless the shell
	 * gave up before opening it) */
	if (access(store_dir, F_OK) == 0) {
		struct kv_report rep;
		rc = kv_check(store_dir, NULL, NULL, &rep);
		if (rc) {
			fprintf(stderr, "fuzz property failed: kv_check after the shell: %s (damage %d)\n",
				strerror(-rc), (int)rep.damage);
			abort();
		}
	}
	return 0;
}
