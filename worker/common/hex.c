/*
 * hex.c
 *	  Hex text <-> bytes (see hex.h).
 */
#include "hex.h"

static int
hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

void
hex_encode(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789ABCDEF";

	for (size_t i = 0; i < n; i++)
	{
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0x0F];
	}
	out[2 * n] = '\0';
}

int
hex_decode(const char *text, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (;;)
	{
		int hi, lo;

		while (*text == ' ' || *text == '\t')
			text++;
		if (*text == '\0' || *text == '\n' || *text == '\r')
			return (int) n;
		hi = hex_digit(text[0]);
		lo = hex_digit(text[1]);
		if (hi < 0 || lo < 0 || n >= cap)
			return -1;
		out[n++] = (uint8_t) (hi << 4 | lo);
		text += 2;
	}
}
