/* fuzz_record — libFuzzer target for the record payload decoder and the state machine.
 *
 * Input: a record payload. rec_validate and a full rec_reader walk must agree; a valid payload
 * is applied to a fresh index twice over (the second time on top of the first), and every entry
 * is then read back. apply_record must report -EBADMSG exactly when rec_validate does. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apply.h"
#include "index.h"
#include "record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_all(struct kvindex *ix)
{
	struct kvcursor *c;
	const void *key;
	size_t klen;
	const struct kvval *v;
	uint64_t n = 0;
	char buf[256];

	if (kvcursor_open_live(ix, NULL, 0, &c))
		return;
	while (kvcursor_next(c, &key, &klen, &v) == 1) {
		size_t mlen;
		uint64_t sz = kvval_size(v);
		if (klen > KV_MAX_KEY || sz > KV_MAX_VALUE)
			abort();
		kvval_meta(v, &mlen);
		if (mlen > KV_MAX_META)
			abort();
		kvval_read(v, 0, buf, sizeof(buf));
		if (sz > sizeof(buf))
			kvval_read(v, sz - sizeof(buf), buf, sizeof(buf));
		n++;
	}
	kvcursor_close(c);
	if (n != kvindex_count(ix))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rec_reader r;
	struct rec_op_view op;
	struct kvindex *ix;
	int valid, walk, rc;

	if (size > (1u << 20))
		return 0;
	valid = rec_validate(data, size);
	walk = rec_reader_init(&r, data, size);
	while (walk == 0 && (rc = rec_reader_next(&r, &op)) != 0)
		if (rc < 0)
			walk = rc;
	if ((valid == 0) != (walk == 0))
		abort();
	if (kvindex_create(&ix))
		abort();
	rc = apply_record(ix, data, size);
	if (valid != 0) {
		if (rc != -EBADMSG || kvindex_count(ix) != 0)
			abort(); /* malformed: nothing applied */
	} else {
		if (rc != 0)
			abort();
		read_all(ix);
		if (apply_record(ix, data, size) != 0)
			abort();
		read_all(ix);
	}
	kvindex_destroy(ix);
	return 0;
}
