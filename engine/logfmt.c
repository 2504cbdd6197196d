/* logfmt.c — segment and record headers (see logfmt.h). */
#include "logfmt.h"

#include <errno.h>
#include <string.h>

#include "crc32c.h"
#include "le.h"
#include "lsnname.h"

void seg_header_encode(uint8_t hdr[SEG_HDR_SIZE], const struct seg_header *h)
{
	memset(hdr, 0, SEG_HDR_SIZE);
	memcpy(hdr + SEG_OFF_MAGIC, SEG_MAGIC, 8);
	le_put32(hdr + SEG_OFF_VERSION, SEG_VERSION);
	le_put32(hdr + SEG_OFF_FLAGS, 0);
	le_put64(hdr + SEG_OFF_FIRST_LSN, h->first_lsn);
	le_put32(hdr + SEG_OFF_SALT, h->salt);
	le_put32(hdr + SEG_OFF_CRC, crc32c(0, hdr, SEG_OFF_CRC));
}

int seg_header_decode(const uint8_t hdr[SEG_HDR_SIZE], struct seg_header *h)
{
	if (memcmp(hdr + SEG_OFF_MAGIC, SEG_MAGIC, 8) ||
	    le_get32(hdr + SEG_OFF_CRC) != crc32c(0, hdr, SEG_OFF_CRC))
		return -EBADMSG;
	/* flags must be zero in versions 2 and 3: a later writer may use them for something this
	 * reader must not ignore */
	uint32_t v = le_get32(hdr + SEG_OFF_VERSION);
	if ((v != SEG_VERSION && v != SEG_VERSION_UNPADDED) || le_get32(hdr + SEG_OFF_FLAGS))
		return -EPROTONOSUPPORT;
	h->version = v;
	h->first_lsn = le_get64(hdr + SEG_OFF_FIRST_LSN);
	h->salt = le_get32(hdr + SEG_OFF_SALT);
	return 0;
}

void rec_header_encode(uint8_t hdr[REC_HDR_SIZE], uint32_t salt, const struct rec_header *h)
{
	le_put32(hdr + REC_OFF_LEN, h->len);
	le_put64(hdr + REC_OFF_LSN, h->lsn);
	le_put64(hdr + REC_OFF_BASE, h->base);
	hdr[REC_OFF_TYPE] = h->type;
	hdr[REC_OFF_FLAGS] = 0;
	le_put16(hdr + REC_OFF_RESERVED, 0);
	le_put32(hdr + REC_OFF_BODY_CRC, h->body_crc);
	le_put32(hdr + REC_OFF_HEAD_CRC, crc32c(salt, hdr + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN));
}

int rec_header_decode(const uint8_t hdr[REC_HDR_SIZE], uint32_t salt, struct rec_header *h)
{
	if (le_get32(hdr + REC_OFF_HEAD_CRC) != crc32c(salt, hdr + REC_OFF_LEN, REC_HDR_SIZE - REC_OFF_LEN) ||
	    hdr[REC_OFF_FLAGS] || le_get16(hdr + REC_OFF_RESERVED))
		return 0;
	h->len = le_get32(hdr + REC_OFF_LEN);
	h->lsn = le_get64(hdr + REC_OFF_LSN);
	h->base = le_get64(hdr + REC_OFF_BASE);
	h->type = hdr[REC_OFF_TYPE];
	h->body_crc = le_get32(hdr + REC_OFF_BODY_CRC);
	return 1;
}

void seg_name(char *buf, size_t len, uint64_t first_lsn)
{
	lsnname_format(buf, len, "wal-", first_lsn, ".log");
}

int seg_parse_name(const char *name, uint64_t *first_lsn)
{
	return lsnname_parse(name, "wal-", ".log", first_lsn);
}
