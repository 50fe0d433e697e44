/*
 * sasl.h -- the SASL framing the worker decodes before anything goes
 * to authd: strict base64 (RFC 4648 4) and the PLAIN message
 * (RFC 4616 2).  Pure functions, so the fuzzers and tests reach them
 * without a session.
 */
#ifndef PORTCULLIS_SASL_H
#define PORTCULLIS_SASL_H

#include <stddef.h>
#include <stdint.h>

#define SASL_NAME_MAX	255	/* RFC 4616: authcid, authzid, passwd */

/* 0 and *outlen set, or -1: bad alphabet, padding, or too long. */
int	sasl_b64_decode(const char *in, size_t inlen, uint8_t *out,
	    size_t outsz, size_t *outlen);

struct sasl_plain {
	const uint8_t	*authzid;
	size_t		 authzid_len;
	const uint8_t	*authcid;
	size_t		 authcid_len;
	const uint8_t	*passwd;
	size_t		 passwd_len;
};

/* 0, or -1 for a message that is not authzid NUL authcid NUL passwd. */
int	sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *);

#endif /* PORTCULLIS_SASL_H */
