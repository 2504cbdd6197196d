/* lsnname.h — names of the files that carry an LSN: PREFIX + 16 lowercase hex digits + SUFFIX
 * (wal-<lsn>.log, snap-<lsn>.kvs). Zero-padded so that name order is LSN order. */
#ifndef KVFS_LSNNAME_H
#define KVFS_LSNNAME_H
#include <stddef.h>
#include <stdint.h>

void lsnname_format(char *buf, size_t len, const char *prefix, uint64_t lsn, const char *suffix);
/* The largest LSN a name may carry (2^63 - 1). */
#define LSNNAME_MAX INT64_MAX
/* 0 and *lsn when name is exactly PREFIX<16 hex>SUFFIX with a number at most LSNNAME_MAX;
 * -EINVAL otherwise. */
int lsnname_parse(const char *name, const char *prefix, const char *suffix, uint64_t *lsn);
#endif
