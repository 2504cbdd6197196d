/* fuzz_checkpoint — libFuzzer target for the checkpoint loader (ckpt-<LSN>.kvc, ckpt.h) and
 * recovery's choice of checkpoint and log.
 *
 * Input: flags u8, then the bytes of a checkpoint file (the seed corpus holds the real
 * checkpoints of fuzz_store.h's store: gen_corpus.c). Flags:
 *   bit 0  recompute the header, entry and footer checksums (so mutations reach the parser)
 *   bit 1  name the file for LSN 1 instead of the LSN its header holds
 *   bit 2  keep the store's own checkpoint next to it (else the input replaces it)
 *
 * First the loader alone: loading into an index and only verifying (no index) agree on the
 * verdict and the offset of the damage; a checkpoint it accepts is canonical: writing the loaded
 * index back (ckpt_write) gives exactly the input's bytes.
 * Then as a store: the input goes into a copy of fuzz_store.h's store (its log segments, the
 * values' bytes, and the log after its checkpoint), and fz_exercise asserts what any store
 * directory must satisfy (fuzz_common.h). */
#include "fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct faultio *base;
static char base_ckpt[64];

static void make_base(void)
{
	char **names;
	size_t n;

	base = fz_disk();
	fz_store_log(base);
	fz_store_ckpt(base);
	n = fz_store_files(base, "ckpt-", &names);
	if (n != 1)
		abort(); /* fuzz_store.h's store ends with one checkpoint */
	snprintf(base_ckpt, sizeof(base_ckpt), "%s", names[0]);
	faultio_free_names(names, n);
}

/* The loader on its own, on a disk holding only the input. */
static void check_loader(const uint8_t *buf, size_t len)
{
	struct faultio *f = fz_disk();
	const struct kvio *io = faultio_kvio(f);
	struct kvindex *ix;
	struct kvview *v;
	uint64_t lsn = 0, count = 0, bad = 0, lsn2 = 0, count2 = 0, bad2 = 0, wrote = 0;
	char name[64], path[128];
	int rc, rc2;

	if (faultio_write_file(f, FZ_DIR "/in.kvc", buf, len) || kvindex_create(&ix))
		abort();
	rc = ckpt_load(io, FZ_DIR "/in.kvc", ix, &lsn, &count, &bad, NULL, NULL);
	rc2 = ckpt_load(io, FZ_DIR "/in.kvc", NULL, &lsn2, &count2, &bad2, NULL, NULL);
	fz_require(rc == rc2, "loading and verifying a checkpoint agree");
	fz_require(rc == 0 || rc == -EBADMSG || rc == -EPROTONOSUPPORT,
		   "a checkpoint is loaded, damaged or of another version");
	if (rc == -EBADMSG)
		fz_require(bad == bad2 && bad <= len, "the damage's offset is inside the file");
	if (rc == 0) {
		void *again = NULL;
		size_t alen = 0;

		fz_require(lsn == lsn2 && count == count2 && count == kvindex_count(ix),
			   "a loaded checkpoint holds the entries its header counts");
		if (faultio_mkdirs(f, FZ_DIR "/out") || kvindex_view(ix, &v))
			abort();
		/* written back under the input's salt (version 1 is read, never written) */
		fz_require(ckpt_write(io, FZ_DIR "/out", v, lsn, le_get32(buf + 40), NULL, NULL, &wrote) == 0,
			   "a loaded index can be written as a checkpoint");
		kvview_release(v);
		ckpt_name(name, sizeof(name), lsn);
		snprintf(path, sizeof(path), FZ_DIR "/out/%s", name);
		if (faultio_read_file(f, path, &again, &alen))
			abort();
		fz_require(alen == len && wrote == len, "written back, a checkpoint has its length");
		fz_require(le_get32(buf + 8) != CKPT_VERSION || !memcmp(again, buf, len),
			   "an accepted checkpoint is canonical: written back, the same bytes");
		free(again);
	}
	kvindex_destroy(ix);
	faultio_destroy(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct faultio *f;
	uint8_t flags, *buf;
	uint64_t lsn = 1;
	char name[64], path[128];

	if (size < 1 || size > (1u << 20))
		return 0;
	if (!base)
		make_base();
	flags = data[0];
	data++;
	size--;
	buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	if (flags & 1)
		fz_fix_checkpoint(buf, size);
	check_loader(buf, size);

	if (!(flags & 2) && size >= 24)
		lsn = le_get64(buf + 16);
	f = fz_clone(base);
	if (!(flags & 4)) {
		snprintf(path, sizeof(path), FZ_DIR "/%s", base_ckpt);
		if (faultio_remove(f, path))
			abort();
	}
	ckpt_name(name, sizeof(name), lsn);
	snprintf(path, sizeof(path), FZ_DIR "/%s", name);
	if (faultio_write_file(f, path, buf, size))
		abort();
	free(buf);
	fz_exercise(f);
	faultio_destroy(f);
	return 0;
}
