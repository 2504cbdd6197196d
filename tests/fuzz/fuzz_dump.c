/* fuzz_dump — libFuzzer target for the dump reader (mount/kvdump.c, what kv_cli --load runs).
 *
 * Input: one mode byte, then a dump. Mode bit 0 set: the checksums are recomputed as far as the
 * framing goes first, so mutations reach the checks behind them (lengths, order, count, the end).
 * The dump is read into a fresh store on a simulated disk. Whatever the input, the reader must
 * return without a crash, and a refusal must say where (an offset within the input). A dump it
 * accepts must be canonical: dumping the store it built gives back exactly the same bytes, and
 * the store it built survives a write, a close and a reopen exactly (fuzz_common.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "kvdump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Recompute the header crc, each entry's two crcs and the end record's as far as they go. */
static void fix_dump(uint8_t *p, size_t len)
{
	size_t off = KVDUMP_HEADER_SIZE;
	uint32_t h;

	if (len < KVDUMP_HEADER_SIZE)
		return;
	le_put32(p + 16, crc32c(0, p, 16));
	while (off < len && p[off] == KVDUMP_ENTRY && off + KVDUMP_ENTRY_FIXED <= len) {
		uint64_t klen = le_get32(p + off + 1), mlen = le_get32(p + off + 5);
		uint64_t vlen = le_get64(p + off + 9), head = KVDUMP_ENTRY_FIXED + klen + mlen;

		if (vlen > len || head + 4 + vlen + 4 > len - off)
			return;
		h = crc32c(0, p + off, head);
		le_put32(p + off + head, h);
		le_put32(p + off + head + 4 + vlen, crc32c(h, p + off + head + 4, vlen));
		off += head + 4 + vlen + 4;
	}
	if (off + KVDUMP_END_SIZE <= len && p[off] == KVDUMP_END) {
		le_put32(p + off + 9, crc32c(0, p, off));
		le_put32(p + off + 13, crc32c(0, p + off, 13));
	}
}

static int memfd_with(const void *data, size_t size)
{
	int fd = memfd_create("fuzz-dump", MFD_CLOEXEC);

	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || lseek(fd, 0, SEEK_SET) != 0)
		abort();
	return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct faultio *f;
	struct kv_options o;
	struct kvdump_report rep;
	struct kv *s = NULL;
	uint8_t *dump;
	size_t len;
	int in, out, rc;

	if (size < 1 || size > (1u << 20))
		return 0;
	len = size - 1;
	dump = malloc(len ? len : 1);
	if (!dump)
		abort();
	memcpy(dump, data + 1, len);
	if (data[0] & 1)
		fix_dump(dump, len);

	f = fz_disk();
	o = fz_options(f, KV_RECOVERY_STRICT);
	if (kv_open(&s, FZ_DIR, &o, NULL) != 0)
		abort();
	in = memfd_with(dump, len);
	rc = kvdump_read(s, in, &rep, NULL, NULL);
	close(in);
	if (rc) {
		if (rep.fault == KVDUMP_OK || rep.offset > len)
			abort(); /* a refusal names its fault and a place in the input */
	} else {
		char *again;
		struct stat st;

		out = memfd_with(NULL, 0);
		if (kvdump_write(s, out, &rep, NULL, NULL) != 0 || fstat(out, &st) != 0 ||
		    (size_t)st.st_size != len)
			abort();
		again = malloc(len ? len : 1);
		if (!again || pread(out, again, len, 0) != (ssize_t)len || memcmp(again, dump, len))
			abort(); /* an accepted dump is the store's own dump, byte for byte */
		free(again);
		close(out);
		/* and what it loaded survives a close and a reopen exactly */
		fz_reopen_holds(f, s, "a load");
		s = NULL;
	}
	if (s)
		fz_require(kv_close(s) == 0, "a store a load failed into closes");
	faultio_destroy(f);
	free(dump);
	return 0;
}
