/*
 * jwt.h -- local validation of JWT access tokens (RFC 7519, RFC 9068)
 * in the JWS compact serialisation (RFC 7515), with public keys from a
 * JWK Set (RFC 7517, jwk.h).
 *
 * Pure: no I/O, no logging, no global state.  A parsed struct jwks is
 * never changed, so the hash pool's threads may share one; the caller
 * swaps in a new set after a refresh and frees the old one when no
 * thread uses it any more.
 */
#ifndef PORTCULLIS_JWT_H
#define PORTCULLIS_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "jwk.h"

#define JWT_MAX_TOKEN	16384		/* octets, compact form */

/* what jwt_verify() and jws_verify_signature() return */
enum jwt_result {
	JWT_OK = 0,
	JWT_INVALID,		/* forged, expired, malformed: no login */
	JWT_UNKNOWN_KID,	/* well-formed, its kid not in the set: the
				   set may be stale; refresh, retry */
};

struct jwt_policy {
	uint32_t	 algorithms;	/* JWT_ALG_* of config.h */
	const char	*issuer;	/* NULL or "": not checked */
	const char	*audience;	/* NULL or "": not checked */
	const char	*scope;		/* NULL or "": none needed;
					   else each of its words */
	const char	*user_claim;	/* NULL or "": "username", if
					   absent "sub" */
	int		 leeway;	/* seconds, for exp, nbf and iat */
};

/* what a valid token says; text is as sent: escape it for the log */
struct jwt_claims {
	char		 user[256];	/* from policy->user_claim */
	char		 sub[256];	/* "" if absent or unusable */
	char		 scope[256];	/* whole scopes, as fit */
	int64_t		 exp;
	int64_t		 iat;		/* 0 if absent */
	char		 kid[JWT_KID_MAX];	/* set once the header
						   parsed, on failure too */
};

/*
 * Verify a JWT access token: its signature with a key of the set, then
 * its claims against the policy at time now (seconds since the epoch).
 * Returns an enum jwt_result; err says why not, for an administrator,
 * and never holds the token or its signature.
 */
int		 jwt_verify(const char *token, size_t len,
		    const struct jwks *, const struct jwt_policy *,
		    int64_t now, struct jwt_claims *out, char *err,
		    size_t errlen);

/*
 * The first half of jwt_verify(): the header and the signature only,
 * the payload is not even decoded.  For tests with the fixed vectors
 * of RFC 7515 and RFC 8037, whose payloads are no access tokens.
 */
int		 jws_verify_signature(const char *token, size_t len,
		    const struct jwks *, uint32_t algorithms, char *err,
		    size_t errlen);

#endif /* PORTCULLIS_JWT_H */
