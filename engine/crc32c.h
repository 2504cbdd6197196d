/* crc32c.h — CRC-32C (Castagnoli), the checksum of every log record and snapshot block. */
#ifndef KVFS_CRC32C_H
#define KVFS_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a||b). Start with 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The CRC of A||B from the CRCs of A and B and B's length, without reading either again:
 * crc32c_combine(crc32c(0, a), crc32c(0, b), blen) == crc32c(0, a||b). */
uint32_t crc32c_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
/* The seed s for which crc32c(s, data) == want: how a segment's salt is found again from one
 * valid record when the segment's header is damaged. */
uint32_t crc32c_solve_seed(const void *data, size_t len, uint32_t want);
/* A seed no user can guess, for checksums a reader tries at every byte offset (a log segment's
 * records, a checkpoint's entries): an image of a record or entry inside bytes a user wrote
 * fails under it. Never fails: the clock and pid stand in when the kernel has no entropy. */
uint32_t crc32c_new_salt(void);

/* Testing and measurement: the ways crc32c() and crc32c_combine() can compute, fastest last.
 * Each gives the same values; which one runs is the fastest the CPU has, at most the limit. */
enum crc32c_impl {
	CRC32C_TABLE,       /* portable: an 8-way sliced table */
	CRC32C_SSE42,       /* one chain of the SSE4.2 crc32 instruction */
	CRC32C_SSE42_CLMUL, /* three chains on long buffers, joined with carry-less multiply */
};
/* The fastest implementation this CPU has. */
enum crc32c_impl crc32c_best_impl(void);
/* Use no implementation faster than max from now on, in the whole process (a test compares
 * them; the default is no limit). Returns the previous limit. */
enum crc32c_impl crc32c_limit_impl(enum crc32c_impl max);
#endif
