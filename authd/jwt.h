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

/*
 * Whose a token is, and which client it was issued to: one rule for
 * the claims of a JWT and the members of an introspection answer
 * (token_identity()).
 */
struct token_rules {
	const char	*user_claim;	/* NULL or "": "username", if
					   absent "sub" */
	const char	*client_claim;	/* NULL or "": "client_id", if
					   absent "azp" */
	const char	*clients;	/* NULL or "": any client; else the
					   client ids allowed, space-
					   separated */
};

struct jwt_policy {
	uint32_t	 algorithms;	/* JWT_ALG_* of config.h */
	int		 typ_relaxed;	/* 0: typ must be at+jwt (RFC 9068
					   4); 1: JWT or none will do */
	const char	*issuer;	/* NULL or "": not checked */
	const char	*audience;	/* NULL or "": not checked */
	const char	*scope;		/* NULL or "": none needed;
					   else each of its words */
	struct token_rules identity;
	int		 leeway;	/* seconds, for exp, nbf and iat */
};

/* what a valid token says; text is as sent: escape it for the log */
struct jwt_claims {
	char		 user[256];	/* token_identity() */
	char		 client[256];	/* "" if the token names none */
	char		 sub[256];	/* "" if absent or unusable */
	char		 scope[256];	/* whole scopes, as fit */
	int64_t		 exp;
	int64_t		 iat;		/* 0 if absent */
	char		 kid[JWT_KID_MAX];	/* set once the header
						   parsed, on failure too */
	const char	*why;		/* on failure, for the audit line:
					   a constant; NULL: "invalid
					   token" */
};

struct json_t;

/*
 * Who a token names, from its claims (a JWT's payload or an RFC 7662
 * answer), the one rule for both:
 * - with a user claim configured, that claim, and nothing else;
 * - without, "username", else "sub" -- but a token whose sub is its
 *   own client id is a client's token (the client credentials grant,
 *   RFC 9068 5) and names no user;
 * - with allowed clients, the token's client id (client_claim) must be
 *   one of them.
 * NULL when user (and client, "" if none) are set; else the reason for
 * the audit line, a constant, with the details in err (text from the
 * token escaped).
 */
const char	*token_identity(const struct json_t *claims,
		    const struct token_rules *, char *user, size_t userlen,
		    char *client, size_t clientlen, char *err, size_t errlen);

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
