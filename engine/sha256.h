/*
 * sha256.h — SHA-256 (FIPS 180-4), one-shot and incremental, plus lower-case hex output.
 * Used to hash canonical specs (run identity) and, where needed, files. Owns no memory; each
 * context belongs to the caller's thread, so the functions are thread-safe.
 */
#ifndef SHA256_H
#define SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_LEN 32

/* Incremental state. Caller-owned; fill with sha256_init before use. */
struct sha256_ctx {
	uint32_t h[8];
	uint64_t nbytes;        /* message length so far */
	uint8_t buf[64];        /* partial block */
	size_t nbuf;
};

void sha256_init(struct sha256_ctx *c);
/* data may be NULL when len is 0. */
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
/* Writes the digest; c must be re-initialized before reuse. */
void sha256_final(struct sha256_ctx *c, uint8_t out[SHA256_LEN]);

/* One-shot digest of len bytes. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);

/* Lower-case hex of a digest into hex[65] (NUL-terminated). */
void sha256_hex(const uint8_t digest[SHA256_LEN], char hex[2 * SHA256_LEN + 1]);

#endif
