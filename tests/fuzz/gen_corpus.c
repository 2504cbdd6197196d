/* gen_corpus — writes the fuzz targets' seed corpus from real stores made by the current engine,
 * so that the seeds follow the formats: run it after a format change (meson compile -C BUILD
 * fuzz-corpus, or BUILD/tests/fuzz/gen_corpus tests/fuzz/corpus).
 *
 * It builds fuzz_store.h's store on a simulated disk (stage 1: every kind of operation, all in
 * the log; stage 2: a cleaner pass, a checkpoint, log after it) and writes, replacing every
 * gen-* file in CORPUS/<target>/ (regress-* and hand-written seeds stay):
 *   wal/         each segment of both stages as it is, one with its checksums left to the
 *                target, two consecutive segments split where the second begins, the last
 *                segment cut in the middle of a record (a torn tail) and followed by zeros, a
 *                segment that is only its header
 *   record/      the payload of every operations record of both stages
 *   checkpoint/  stage 2's checkpoint: as it is, with checksums to fix, kept next to the
 *                store's own
 *   dump/        kv_cli --dump's stream of each stage's store, and of an empty store
 * The salts are random per segment, so rerunning changes the wal seeds' bytes, not their
 * meaning. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_store.h"
#include "kvdump.h"

static const char *outdir;

static void gen_write(const char *target, const char *name, const void *head, size_t hlen,
		      const void *body, size_t blen)
{
	char path[4096];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s/gen-%s", outdir, target, name);
	fp = fopen(path, "wb");
	if (!fp || (hlen && fwrite(head, 1, hlen, fp) != hlen) ||
	    (blen && fwrite(body, 1, blen, fp) != blen) || fclose(fp)) {
		perror(path);
		exit(1);
	}
}

/* Remove the gen-* files of a target directory (creating it when missing). */
static void gen_clear(const char *target)
{
	char path[4096];
	DIR *d;
	struct dirent *e;

	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	if (mkdir(path, 0755) && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	d = opendir(path);
	if (!d) {
		perror(path);
		exit(1);
	}
	while ((e = readdir(d)) != NULL) {
		char file[8192];
		if (strncmp(e->d_name, "gen-", 4))
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		if (unlink(file)) {
			perror(file);
			exit(1);
		}
	}
	closedir(d);
}

static void *gen_read(struct faultio *f, const char *name, size_t *len)
{
	char path[256];
	void *data;

	snprintf(path, sizeof(path), FZ_DIR "/%s", name);
	fz_ok(faultio_read_file(f, path, &data, len), path);
	return data;
}

/* fuzz_wal's input head: flags, split (u16), lsn byte. */
static void wal_seed(const char *name, uint8_t flags, size_t split, const void *seg, size_t len)
{
	uint8_t head[4] = { flags, (uint8_t)split, (uint8_t)(split >> 8), 0 };
	if (split > 0xffff)
		abort();
	gen_write("wal", name, head, sizeof(head), seg, len);
}

/* The payloads of the operations records of a segment image. */
static void record_seeds(const char *stage, const uint8_t *p, size_t len)
{
	struct seg_header sh;
	uint64_t off = SEG_HDR_SIZE;
	char name[128];

	fz_ok(len < SEG_HDR_SIZE ? -EBADMSG : seg_header_decode(p, &sh), "segment header");
	while (off + REC_HDR_SIZE <= len) {
		struct rec_header rh;
		if (!rec_header_decode(p + off, sh.salt, &rh) || rh.len > len - off - REC_HDR_SIZE)
			break;
		if (rh.type == REC_TYPE_OPS) {
			snprintf(name, sizeof(name), "%s-lsn%llu", stage, (unsigned long long)rh.lsn);
			gen_write("record", name, NULL, 0, p + off + REC_HDR_SIZE, rh.len);
		}
		off += REC_HDR_SIZE + rh.len;
	}
}

/* The end of a segment's last record (where its preallocated zeros, if any, begin). */
static size_t segment_used(const uint8_t *p, size_t len)
{
	struct seg_header sh;
	uint64_t off = SEG_HDR_SIZE;

	fz_ok(len < SEG_HDR_SIZE ? -EBADMSG : seg_header_decode(p, &sh), "segment header");
	while (off + REC_HDR_SIZE <= len) {
		struct rec_header rh;
		if (!rec_header_decode(p + off, sh.salt, &rh) || rh.len > len - off - REC_HDR_SIZE)
			break;
		off += REC_HDR_SIZE + rh.len;
	}
	return (size_t)off;
}

static void log_seeds(struct faultio *f, const char *stage)
{
	char **names, name[128];
	size_t n = fz_store_files(f, "wal-", &names);
	uint8_t *prev = NULL;
	size_t prev_len = 0;

	for (size_t i = 0; i < n; i++) {
		size_t len, used;
		uint8_t *seg = gen_read(f, names[i], &len);

		used = segment_used(seg, len);
		snprintf(name, sizeof(name), "%s-%s", stage, names[i]);
		wal_seed(name, 0x03, 0, seg, used);
		record_seeds(stage, seg, used);
		if (i == 0) {
			snprintf(name, sizeof(name), "%s-%s-raw", stage, names[i]);
			wal_seed(name, 0x00, 0, seg, used);
		}
		if (prev) {
			/* two consecutive segments, split where the second begins */
			uint8_t *two = malloc(prev_len + used);
			if (!two)
				abort();
			memcpy(two, prev, prev_len);
			memcpy(two + prev_len, seg, used);
			snprintf(name, sizeof(name), "%s-%s-pair", stage, names[i]);
			wal_seed(name, 0x07, prev_len, two, prev_len + used);
			free(two);
		}
		if (i + 1 == n && used > SEG_HDR_SIZE + REC_HDR_SIZE) {
			/* a torn tail: the last record cut in half, then zeros */
			snprintf(name, sizeof(name), "%s-torn-tail", stage);
			wal_seed(name, 0x0b, 0, seg, used - (used - SEG_HDR_SIZE) / 4);
		}
		if (i == 0 && !strcmp(stage, "log")) {
			/* a segment that is only its header (issue 5's empty-window case) */
			wal_seed("empty-segment", 0x03, 0, seg, SEG_HDR_SIZE);
		}
		free(prev);
		prev = seg;
		prev_len = used;
	}
	free(prev);
	faultio_free_names(names, n);
}

static int memfd(void)
{
	int fd = memfd_create("gen-dump", MFD_CLOEXEC);
	if (fd < 0) {
		perror("memfd_create");
		exit(1);
	}
	return fd;
}

static void dump_seed(struct faultio *f, const char *name)
{
	struct kv_options o = fz_options(f, KV_RECOVERY_STRICT);
	struct kvdump_report rep;
	struct kv *s = NULL;
	struct stat st;
	uint8_t *buf, mode;
	char fixed[128];
	int fd = memfd();

	fz_ok(kv_open(&s, FZ_DIR, &o, NULL), "open for a dump");
	fz_ok(kvdump_write(s, fd, &rep, NULL, NULL), "dump");
	fz_ok(kv_close(s), "close");
	if (fstat(fd, &st))
		abort();
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size)
		abort();
	mode = 0;
	gen_write("dump", name, &mode, 1, buf, (size_t)st.st_size);
	mode = 1;
	snprintf(fixed, sizeof(fixed), "%s-fixed", name);
	gen_write("dump", fixed, &mode, 1, buf, (size_t)st.st_size);
	free(buf);
	close(fd);
}

int main(int argc, char **argv)
{
	struct faultio *f, *empty;
	char **names;
	size_t n, len;
	uint8_t *ck, flags;

	if (argc != 2) {
		fprintf(stderr, "usage: gen_corpus CORPUS_DIR\n");
		return 2;
	}
	outdir = argv[1];
	gen_clear("wal");
	gen_clear("record");
	gen_clear("checkpoint");
	gen_clear("dump");

	empty = fz_disk();
	dump_seed(empty, "empty");
	faultio_destroy(empty);

	f = fz_disk();
	fz_store_log(f);
	log_seeds(f, "log");
	dump_seed(f, "log");
	fz_store_ckpt(f);
	log_seeds(f, "ckpt");
	dump_seed(f, "ckpt");

	n = fz_store_files(f, "ckpt-", &names);
	if (n != 1)
		abort();
	ck = gen_read(f, names[0], &len);
	flags = 0;
	gen_write("checkpoint", "store", &flags, 1, ck, len);
	flags = 1;
	gen_write("checkpoint", "store-fixed", &flags, 1, ck, len);
	flags = 4;
	gen_write("checkpoint", "store-kept", &flags, 1, ck, len);
	free(ck);
	faultio_free_names(names, n);
	faultio_destroy(f);
	printf("corpus written under %s\n", outdir);
	return 0;
}
