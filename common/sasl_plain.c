/*
 * sasl_plain.c -- the PLAIN message, RFC 4616 2.
 */

#include <string.h>

#include "sasl_plain.h"

int
sasl_plain_split(const uint8_t *msg, size_t len,
    const struct sasl_plain_bounds *b, struct sasl_plain *p)
{
	const uint8_t	*nul1, *nul2;

	memset(p, 0, sizeof(*p));
	if ((nul1 = memchr(msg, '\0', len)) == NULL)
		return -1;
	nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - msg));
	/* RFC 4616 2: passwd is 1*SAFE, and SAFE excludes NUL */
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
	    p->authzid_len > b->authzid_max ||
	    p->authcid_len > b->authcid_max ||
	    p->passwd_len > b->passwd_max)
		return -1;
	return 0;
}
