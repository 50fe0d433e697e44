/*
 * base64.h -- base64 (RFC 4648 4) and base64url (RFC 4648 5), strict:
 * one spelling per octet string.
 */
#ifndef PORTCULLIS_BASE64_H
#define PORTCULLIS_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* base64_decode() flags */
#define BASE64_URL	0x01	/* the URL alphabet, '-' and '_' (RFC 4648 5);
				   without it '+' and '/' (4) */
#define BASE64_NOPAD	0x02	/* no '=' at all, the length says how much
				   (RFC 7515 2); without it padded to a
				   multiple of 4, '=' only where needed */

/* The octets len characters decode to at most. */
#define BASE64_DECODED_MAX(len)	((len) / 4 * 3 + ((len) % 4) * 3 / 4)

/*
 * Decode in, refusing anything but the alphabet (no white space), bad
 * padding, and bits under the last character that make no octet
 * (RFC 4648 3.5): 0 with *outlen set (outlen may be NULL), or -1.
 * With out NULL, only checks.  -1 too when out (outsz octets) is too
 * small; BASE64_DECODED_MAX(inlen) always suffices.
 */
int	base64_decode(const char *in, size_t inlen, int flags, uint8_t *out,
	    size_t outsz, size_t *outlen);

/*
 * As base64_decode(), into memory of its own (free it), NUL-terminated
 * for the text it may hold; NULL if malformed or out of memory.
 */
uint8_t	*base64_decode_alloc(const char *in, size_t inlen, int flags,
	    size_t *outlen);

/* Padded standard base64, NUL-terminated: 0, or -1 if outsz is short. */
int	base64_encode(const uint8_t *in, size_t inlen, char *out,
	    size_t outsz);

#endif /* PORTCULLIS_BASE64_H */
