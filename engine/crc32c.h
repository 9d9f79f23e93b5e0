/*
 * crc32c.h — CRC-32C (Castagnoli, the iSCSI/ext4/btrfs checksum), used to detect corruption of
 * checkpoint tensors. Hardware CRC32 instructions on x86-64 with SSE4.2 (checked at run time),
 * a byte-at-a-time table otherwise; both give the same value. Owns nothing; the table is
 * a constant, so every function is thread-safe.
 */
#ifndef CRC32C_H
#define CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continues a CRC-32C over len more bytes: crc32c(crc32c(0, a), b) == crc32c(0, a ++ b).
 * Start with crc = 0. data may be NULL when len is 0.
 */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* The portable table-driven form (what crc32c uses without SSE4.2); for tests. */
uint32_t crc32c_sw(uint32_t crc, const void *data, size_t len);

#endif
