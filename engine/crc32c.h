/* crc32c.h — CRC-32C (Castagnoli), the checksum of every log record and snapshot block. */
#ifndef KVFS_CRC32C_H
#define KVFS_CRC32C_H
#include <stddef.h>
#include <stdint.h>

/* Continue a CRC: crc32c(crc32c(0, a), b) == crc32c(0, a||b). Start with 0. */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
#endif
