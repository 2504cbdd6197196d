/* fuzz_wal — libFuzzer target for the log reader and recovery over wal-*.log segments (format 2:
 * a salted segment header, records with a salted head checksum and a body checksum; logfmt.h).
 *
 * Input: flags u8, split u16 (little-endian), lsn u8, then the bytes of one segment file, or of
 * two back to back, headers included (the seed corpus holds real segments: gen_corpus.c).
 * Flags:
 *   bit 0  repair each segment's header: magic, version, flags and checksum rewritten, its
 *          first LSN and salt kept (so mutations get past the header to the records)
 *   bit 1  recompute each record's head checksum (under the header's salt) and body checksum
 *          (so mutations reach the payload decoder and recovery's LSN and base rules)
 *   bit 2  two segments: the bytes split at byte `split` (clamped)
 *   bit 3  append 1 KiB of zeros to the last segment (a preallocated, unused end)
 *   bit 4  name the segments after the lsn byte (wal-1, wal-<2 + lsn>) instead of the first
 *          LSN their headers hold (a name that disagrees with its header)
 * The files go on a fresh simulated disk; fz_exercise then asserts what any store directory
 * must satisfy (fuzz_common.h): check and a refused open change nothing and agree, what opens
 * survives a write, a close and a reopen exactly, salvage leaves a store that opens. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_segment(struct faultio *f, uint64_t name_lsn, int by_header, int repair, int fix,
			int zeros, const uint8_t *bytes, size_t len)
{
	char name[64], path[128];
	size_t zlen = zeros ? 1024 : 0;
	uint8_t *buf = calloc(1, len + zlen + 1);

	if (!buf)
		abort();
	memcpy(buf, bytes, len);
	if (len >= SEG_HDR_SIZE) {
		struct seg_header h = { le_get64(buf + SEG_OFF_FIRST_LSN), le_get32(buf + SEG_OFF_SALT) };
		if (repair)
			seg_header_encode(buf, &h);
		if (by_header)
			name_lsn = h.first_lsn;
	}
	if (fix)
		fz_fix_segment(buf, len);
	seg_name(name, sizeof(name), name_lsn);
	snprintf(path, sizeof(path), FZ_DIR "/%s", name);
	if (faultio_write_file(f, path, buf, len + zlen))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct faultio *f;
	uint8_t flags, lsnb;
	size_t split;
	int repair, fix, by_header;

	if (size < 4 || size > (1u << 20))
		return 0;
	flags = data[0];
	split = le_get16(data + 1);
	lsnb = data[3];
	data += 4;
	size -= 4;
	repair = flags & 1;
	fix = flags & 2;
	by_header = !(flags & 16);

	f = fz_disk();
	if (flags & 4) {
		size_t cut = split < size ? split : size;
		uint64_t second = 2 + (uint64_t)lsnb;
		put_segment(f, 1, by_header, repair, fix, 0, data, cut);
		/* two segments named alike would be one file: keep the second apart */
		if (by_header && cut >= SEG_HDR_SIZE && size - cut >= SEG_HDR_SIZE &&
		    le_get64(data + SEG_OFF_FIRST_LSN) == le_get64(data + cut + SEG_OFF_FIRST_LSN))
			by_header = 0;
		put_segment(f, second, by_header, repair, fix, flags & 8, data + cut, size - cut);
	} else {
		put_segment(f, 1, by_header, repair, fix, flags & 8, data, size);
	}
	fz_exercise(f);
	faultio_destroy(f);
	return 0;
}
