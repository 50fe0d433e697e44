/*
 * sasl.c -- strict base64 and the PLAIN message.
 *
 * RFC 4954 4: a response that is not valid base64 is refused (501),
 * so the decoder accepts the standard alphabet only, padding only at
 * the end and only as needed, and no white space.
 */

#include <string.h>

#include "sasl.h"

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int
sasl_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outsz,
    size_t *outlen)
{
	size_t		 i, n = 0, pad = 0;
	uint32_t	 acc;
	int		 v[4];

	if (inlen % 4 != 0)
		return -1;
	if (inlen >= 1 && in[inlen - 1] == '=')
		pad++;
	if (inlen >= 2 && in[inlen - 2] == '=')
		pad++;
	if (inlen / 4 * 3 - pad > outsz)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		int last = i + 4 == inlen;

		for (int k = 0; k < 4; k++) {
			if (last && in[i + k] == '=' && k >= 4 - (int)pad) {
				v[k] = 0;
				continue;
			}
			if ((v[k] = b64_value((unsigned char)in[i + k])) == -1)
				return -1;
		}
		acc = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
		    (uint32_t)v[2] << 6 | (uint32_t)v[3];
		/* Bits under the padding must be zero (RFC 4648 3.5). */
		if (last && ((pad == 1 && (acc & 0xff)) ||
		    (pad == 2 && (acc & 0xffff))))
			return -1;
		out[n++] = acc >> 16;
		if (!last || pad < 2)
			out[n++] = (acc >> 8) & 0xff;
		if (!last || pad < 1)
			out[n++] = acc & 0xff;
	}
	*outlen = n;
	return 0;
}

int
sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *p)
{
	const uint8_t	*nul1, *nul2;

	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	if (nul2 == NULL || memchr(nul2 + 1, '\0',
	    len - (size_t)(nul2 + 1 - msg)) != NULL)
		return -1;
	p->authzid = msg;
	p->authzid_len = (size_t)(nul1 - msg);
	p->authcid = nul1 + 1;
	p->authcid_len = (size_t)(nul2 - nul1 - 1);
	p->passwd = nul2 + 1;
	p->passwd_len = len - (size_t)(nul2 + 1 - msg);
	if (p->authcid_len == 0 || p->passwd_len == 0 ||
	    p->authzid_len > SASL_NAME_MAX || p->authcid_len > SASL_NAME_MAX ||
	    p->passwd_len > SASL_NAME_MAX)
		return -1;
	return 0;
}
