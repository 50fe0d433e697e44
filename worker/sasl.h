/*
 * sasl.h -- the SASL framing the worker decodes before anything goes
 * to authd: strict base64 (RFC 4648 4), the PLAIN message (RFC 4616
 * 2), and the bearer-token messages of XOAUTH2 and OAUTHBEARER
 * (RFC 7628 3.1).  Pure functions, so the fuzzers and tests reach
 * them without a session.
 */
#ifndef PORTCULLIS_SASL_H
#define PORTCULLIS_SASL_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"
#include "sasl_plain.h"

/*
 * Strict base64 (RFC 4648 4, base64.h): 0 and *outlen set, or -1: bad
 * alphabet, padding, or too long.
 */
int	sasl_b64_decode(const char *in, size_t inlen, uint8_t *out,
	    size_t outsz, size_t *outlen);

/* 0 with a NUL-terminated out, or -1 when outsz is too small. */
int	sasl_b64_encode(const uint8_t *in, size_t inlen, char *out,
	    size_t outsz);

/*
 * 0, or -1 for a message that is not authzid NUL authcid NUL passwd,
 * each part at most SASL_NAME_MAX octets (RFC 4616 2).
 */
int	sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *);

/* What the token mechanisms carry: the bearer token, and who for. */
struct sasl_token {
	char		 user[SASL_NAME_MAX + 1];  /* "": none named */
	const uint8_t	*token;			   /* into the message */
	size_t		 token_len;		   /* without "Bearer " */
};

/*
 * 0, or -1 (and the struct wiped) for a message that is not
 * "user=" USER ^A "auth=Bearer " TOKEN ^A ^A.
 */
int	sasl_xoauth2_parse(const uint8_t *msg, size_t len,
	    struct sasl_token *);

/* 0, or -1 (and the struct wiped) for anything but RFC 7628 3.1. */
int	sasl_oauthbearer_parse(const uint8_t *msg, size_t len,
	    struct sasl_token *);

/*
 * The error challenge for a refused token, base64 for a 334 line:
 * RFC 7628 3.2.2's JSON, or Google's for XOAUTH2.  scope (NULL or ""
 * for none) must be an RFC 6749 3.3 scope.  0, or -1 for a bad scope
 * or an out too small.
 */
int	sasl_token_error(int xoauth2, const char *scope, char *out,
	    size_t outsz);

#endif /* PORTCULLIS_SASL_H */
