/*
 * base64.c -- strict base64 and base64url decoding, base64 encoding.
 *
 * Strict because what is decoded here is signed (a JWT, RFC 7515 2)
 * or must be refused when malformed (a SASL response, RFC 4954 4):
 * with lenient decoding one string would have many spellings, and a
 * changed token could still verify.
 */

#include <stdlib.h>

#include "base64.h"

static const char std_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int
b64_value(unsigned char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/*
 * How many characters carry data: without padding all of them (and a
 * lone character in the last group cannot be); padded, a multiple of
 * 4 less one or two '=' at the end.  -1 if the length is impossible.
 */
static int
data_len(const char *in, size_t inlen, int flags, size_t *len)
{
	if (flags & BASE64_NOPAD) {
		if (inlen % 4 == 1)
			return -1;
		*len = inlen;
		return 0;
	}
	if (inlen % 4 != 0)
		return -1;
	*len = inlen;
	if (*len > 0 && in[*len - 1] == '=')
		(*len)--;
	if (*len > 0 && in[*len - 1] == '=')
		(*len)--;
	return 0;
}

int
base64_decode(const char *in, size_t inlen, int flags, uint8_t *out,
    size_t outsz, size_t *outlen)
{
	unsigned int	 acc = 0;
	int		 bits = 0, v, url = (flags & BASE64_URL) != 0;
	size_t		 i, len, n = 0;

	if (data_len(in, inlen, flags, &len) == -1)
		return -1;
	if (out != NULL && len * 3 / 4 > outsz)
		return -1;
	for (i = 0; i < len; i++) {
		/* a '=' left here is padding in the middle */
		if ((v = b64_value((unsigned char)in[i], url)) == -1)
			return -1;
		acc = ((acc << 6) | (unsigned int)v) & 0x3fff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (out != NULL)
				out[n] = (acc >> bits) & 0xff;
			n++;
		}
	}
	/* RFC 4648 3.5: the bits that make no octet are zero */
	if ((acc & ((1U << bits) - 1)) != 0)
		return -1;
	if (outlen != NULL)
		*outlen = n;
	return 0;
}

uint8_t *
base64_decode_alloc(const char *in, size_t inlen, int flags, size_t *outlen)
{
	uint8_t	*out;
	size_t	 size = BASE64_DECODED_MAX(inlen) + 1;

	if ((out = malloc(size)) == NULL)
		return NULL;
	if (base64_decode(in, inlen, flags, out, size, outlen) == -1) {
		free(out);
		return NULL;
	}
	out[*outlen] = '\0';
	return out;
}

int
base64_encode(const uint8_t *in, size_t inlen, char *out, size_t outsz)
{
	size_t		 i, n = 0, groups = inlen / 3 + (inlen % 3 != 0);
	uint32_t	 acc;

	if (outsz == 0 || groups > (outsz - 1) / 4)
		return -1;
	for (i = 0; i + 3 <= inlen; i += 3) {
		acc = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[n++] = std_alphabet[acc >> 18];
		out[n++] = std_alphabet[(acc >> 12) & 0x3f];
		out[n++] = std_alphabet[(acc >> 6) & 0x3f];
		out[n++] = std_alphabet[acc & 0x3f];
	}
	if (i < inlen) {
		acc = (uint32_t)in[i] << 16;
		if (i + 1 < inlen)
			acc |= (uint32_t)in[i + 1] << 8;
		out[n++] = std_alphabet[acc >> 18];
		out[n++] = std_alphabet[(acc >> 12) & 0x3f];
		out[n++] = i + 1 < inlen ? std_alphabet[(acc >> 6) & 0x3f] :
		    '=';
		out[n++] = '=';
	}
	out[n] = '\0';
	return 0;
}
