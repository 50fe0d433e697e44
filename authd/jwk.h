/*
 * jwk.h -- a JWK Set (RFC 7517): the public keys that verify JWT
 * access tokens (jwt.h), and the JWA names of their algorithms.
 *
 * Pure: no I/O, no logging, no global state.  A parsed struct jwks is
 * never changed, so the hash pool's threads may share one; the caller
 * swaps in a new set after a refresh and frees the old one when no
 * thread uses it any more.
 */
#ifndef PORTCULLIS_JWK_H
#define PORTCULLIS_JWK_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "bounds.h"

#define JWT_RSA_MIN_BITS 2048
#define JWT_RSA_MAX_BITS 8192

/* One key kept: public, for signatures, of one algorithm. */
struct jwk {
	EVP_PKEY	*pkey;
	uint32_t	 alg;		/* the JWT_ALG_* its type allows */
	int		 has_kid;
	char		 kid[JWT_KID_MAX];
};

struct jwks;

/*
 * Parse a JWK Set.  Keys this module cannot use (another "use", a
 * private key, an unknown kty or crv, an RSA modulus under 2048 bits,
 * an EC point off the curve, ...) are skipped; a set left with no key
 * is an error, described in err.
 */
struct jwks	*jwks_parse(const char *json, size_t len, char *err,
		    size_t errlen);
void		 jwks_free(struct jwks *);
/* keys kept */
int		 jwks_count(const struct jwks *);
/* the i-th key kept, 0 <= i < jwks_count(); NULL past the end */
const struct jwk *jwks_key(const struct jwks *, int i);
/* keys skipped; why holds the reason for the first, for the log */
int		 jwks_skipped(const struct jwks *, char *err, size_t errlen);

/*
 * The keys of alg that may have signed, by kid (NULL: the token named
 * none, any key of alg): start with *pos 0 and call until NULL.
 * *kid_seen becomes 1 when a key has that kid, of whatever type.
 */
const struct jwk *jwks_find(const struct jwks *, const char *kid,
		    uint32_t alg, int *pos, int *kid_seen);

/* JWA names (RFC 7518 3.1, RFC 8037 3.1), case-sensitive; 0 if unknown */
uint32_t	 jwa_alg_from_name(const char *);
const char	*jwa_alg_name(uint32_t alg);

#endif /* PORTCULLIS_JWK_H */
