/* fuzz_snapshot — libFuzzer target for the snapshot reader.
 *
 * Input: flags byte, then the bytes of a snapshot file, named snap-<LSN>.kvs after the LSN its
 * header holds (or snap-0000000000000001.kvs, whatever the header says, with bit 2). Flags:
 *   bit 0  recompute the header, entry and footer crc32c values (so mutations reach the parser)
 *   bit 1  also put a valid, empty log segment for LSN + 1 after the snapshot
 *   bit 2  name the file for LSN 1
 * Then kv_check, strict kv_open (read every key, write, close, reopen), kv_salvage, kv_open:
 * never a crash, hang or leak; check agrees with open; salvage leaves a store that opens. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct faultio *f;
	uint8_t flags, *buf;
	uint64_t lsn = 1;
	char name[64], path[128];

	if (size < 1 || size > (1u << 20))
		return 0;
	flags = data[0];
	data++;
	size--;
	buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	if (flags & 1)
		fz_fix_snapshot(buf, size);

	if (!(flags & 4) && size >= 24)
		lsn = le_get64(buf + 16);

	f = fz_disk();
	snapshot_name(name, sizeof(name), lsn);
	snprintf(path, sizeof(path), FZ_DIR "/%s", name);
	if (faultio_write_file(f, path, buf, size))
		abort();
	if (flags & 2) {
		uint8_t hdr[WAL_HDR_SIZE];
		wal_encode_header(hdr, lsn + 1);
		wal_segment_name(name, sizeof(name), lsn + 1);
		snprintf(path, sizeof(path), FZ_DIR "/%s", name);
		if (faultio_write_file(f, path, hdr, sizeof(hdr)))
			abort();
	}
	free(buf);
	fz_exercise(f);
	faultio_destroy(f);
	return 0;
}
