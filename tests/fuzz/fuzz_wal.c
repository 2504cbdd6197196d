/* fuzz_wal — libFuzzer target for the log reader (recovery of wal-*.log segments).
 *
 * Input: flags byte, split byte, lsn byte, then segment bytes. Flags:
 *   bit 0  prepend a valid segment header (so mutations go to the records)
 *   bit 1  recompute each record's crc32c (so mutations reach the payload decoder)
 *   bit 2  split the bytes into two segments at split/256 of the way; the second is named
 *          wal-<2 + lsn byte>.log (with a valid header for that LSN when bit 0 is set)
 *   bit 3  append 1 KiB of zeros (a preallocated, unused segment end)
 * The files go on a fresh simulated disk; then kv_check, strict kv_open (read every key, write,
 * close, reopen), kv_salvage and kv_open — which must never crash, hang or leak, must agree
 * (check vs open), and salvage must leave a store that opens. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void put_segment(struct faultio *f, uint64_t first_lsn, int header, int fix, int zeros,
			const uint8_t *body, size_t blen)
{
	char name[64], path[128];
	size_t hlen = header ? WAL_HDR_SIZE : 0, zlen = zeros ? 1024 : 0;
	uint8_t *buf = calloc(1, hlen + blen + zlen + 1);

	if (!buf)
		abort();
	if (header)
		wal_encode_header(buf, first_lsn);
	memcpy(buf + hlen, body, blen);
	if (fix)
		fz_fix_wal_records(buf, hlen + blen);
	wal_segment_name(name, sizeof(name), first_lsn);
	snprintf(path, sizeof(path), FZ_DIR "/%s", name);
	if (faultio_write_file(f, path, buf, hlen + blen + zlen))
		abort();
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct faultio *f;
	uint8_t flags, split, lsnb;

	if (size < 3 || size > (1u << 20))
		return 0;
	flags = data[0];
	split = data[1];
	lsnb = data[2];
	data += 3;
	size -= 3;

	f = fz_disk();
	if (flags & 4) {
		size_t cut = size * split / 256;
		put_segment(f, 1, flags & 1, flags & 2, 0, data, cut);
		put_segment(f, 2 + (uint64_t)lsnb, flags & 1, flags & 2, flags & 8, data + cut,
			    size - cut);
	} else {
		put_segment(f, 1, flags & 1, flags & 2, flags & 8, data, size);
	}
	fz_exercise(f);
	faultio_destroy(f);
	return 0;
}
