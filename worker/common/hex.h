/*
 * hex.h
 *	  Hex text <-> bytes, for frames in logs, replay files, ground-truth
 *	  files and bytea literals.
 */
#ifndef WORKER_HEX_H
#define WORKER_HEX_H

#include <stddef.h>
#include <stdint.h>

/* Upper-case hex of n bytes, no separators, NUL-terminated (2n+1 bytes). */
extern void hex_encode(const uint8_t *bytes, size_t n, char *out);

/*
 * Decodes hex digits, skipping spaces between byte pairs; stops at the end
 * of the string. Returns the number of bytes, or -1 on a bad digit, an odd
 * digit count or more than cap bytes.
 */
extern int hex_decode(const char *text, uint8_t *out, size_t cap);

#endif /* WORKER_HEX_H */
