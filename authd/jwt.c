/*
 * jwt.c -- local validation of JWT access tokens.
 *
 * A token is three parts of strict base64url (RFC 7515 7.1).  Its
 * header names the algorithm: only RS256, ES256 and EdDSA exist here,
 * and only those the policy enables.  "none" and the HMAC algorithms
 * are refused outright: a verifier that let the token choose HS256
 * could be fooled by a MAC made with the public key as the secret.
 * The key comes from the configured JWK Set and from nowhere else (a
 * header's jwk, jku, x5u and x5c are ignored), and its type must be the
 * algorithm's.  The payload is not even decoded until the signature
 * verified; then its claims are checked (RFC 7519 4.1, RFC 9068 4).
 *
 * Every JSON object is loaded with JSON_REJECT_DUPLICATES: jansson
 * refuses an object that names a member twice, as RFC 7515 5.2 and
 * RFC 7519 4 allow, so that no two parsers can read two different
 * tokens from one.  jansson also refuses \u0000 in strings and text
 * that is not UTF-8, so the strings taken from a token are C strings.
 *
 * OpenSSL's error queue is left as it was found (ERR_set_mark), so a
 * forged token leaves nothing behind for the caller's next TLS call.
 */

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "base64.h"
#include "config.h"
#include "jwt.h"
#include "scope.h"
#include "util.h"

/* NumericDate limits (RFC 7519 2): the epoch to the end of 9999 */
#define NUMERIC_DATE_MAX	253402300799LL

/* a token taken apart, with its header checked */
struct jws {
	const char	*input;		/* header.payload, signed */
	size_t		 inputlen;
	const char	*payload;	/* still base64url */
	size_t		 payloadlen;
	unsigned char	*sig;
	size_t		 siglen;
	uint32_t	 alg;
	int		 has_kid;
	char		 kid[JWT_KID_MAX];
	int		 typ_refused;
};

/* A JSON object from base64url, or NULL. */
static json_t *
b64url_json_object(const char *in, size_t len)
{
	unsigned char	*buf;
	size_t		 n;
	json_t		*obj;
	json_error_t	 jerr;

	if ((buf = base64_decode_alloc(in, len, BASE64_URL | BASE64_NOPAD,
	    &n)) == NULL)
		return NULL;
	obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
	/* a part of a bearer token: wiped like the token */
	freezero(buf, n + 1);
	if (obj != NULL && !json_is_object(obj)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

/*
 * Text from a token that names a user: not empty, and no C0 or C1
 * control character or DEL that could forge a log line or a header.
 * jansson already guarantees UTF-8 without NUL.
 */
static int
claim_text_ok(const char *s, size_t max)
{
	const unsigned char	*p;

	if (*s == '\0' || strlen(s) >= max)
		return 0;
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return 0;
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			return 0;
	}
	return 1;
}

/* ---- JWS (RFC 7515) ---- */

/*
 * RFC 9068 4: an access token says typ at+jwt, so that an ID token or
 * another JWT signed by the same keys cannot pass for one.  RFC 7515
 * 4.1.9: a media type, "application/" may be left out.  Relaxed, for
 * providers that send none or "JWT" (Microsoft Entra): those too.
 */
static int
typ_ok(const json_t *v, int relaxed)
{
	const char	*typ;

	if (v == NULL)
		return relaxed;
	if (!json_is_string(v))
		return 0;
	typ = json_string_value(v);
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	if (strcasecmp(typ, "at+jwt") == 0)
		return 1;
	return relaxed && strcasecmp(typ, "jwt") == 0;
}

static int
jws_header(struct jws *jws, const json_t *h, uint32_t algorithms,
    int typ_relaxed, char *err, size_t errlen)
{
	const json_t	*v;
	char		 buf[32];

	/* RFC 7515 4.1.11: we understand no extension, so none is ok. */
	if (json_object_get(h, "crit") != NULL) {
		errbuf_set(err, errlen, "header has crit");
		return -1;
	}
	if (!json_is_string(v = json_object_get(h, "alg"))) {
		errbuf_set(err, errlen, "header has no alg");
		return -1;
	}
	if ((jws->alg = jwa_alg_from_name(json_string_value(v))) == 0) {
		errbuf_set(err, errlen, "alg \"%s\" refused",
		    escape_text(json_string_value(v), json_string_length(v),
		    buf, sizeof(buf)));
		return -1;
	}
	if ((jws->alg & algorithms) == 0) {
		errbuf_set(err, errlen, "alg %s not enabled",
		    jwa_alg_name(jws->alg));
		return -1;
	}
	if (!typ_ok(json_object_get(h, "typ"), typ_relaxed)) {
		errbuf_set(err, errlen, typ_relaxed ? "typ not at+jwt or JWT" :
		    "typ not at+jwt (RFC 9068 4)");
		jws->typ_refused = 1;
		return -1;
	}
	/* RFC 7519 5.2: a content type means a nested JWT; not here. */
	if (json_object_get(h, "cty") != NULL) {
		errbuf_set(err, errlen, "header has cty");
		return -1;
	}
	if ((v = json_object_get(h, "kid")) != NULL) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= sizeof(jws->kid)) {
			errbuf_set(err, errlen, "kid not a string of at most "
			    "%zu octets", sizeof(jws->kid) - 1);
			return -1;
		}
		strlcpy(jws->kid, json_string_value(v), sizeof(jws->kid));
		jws->has_kid = 1;
	}
	return 0;
}

/* Take a token apart (RFC 7515 7.1) and check its header. */
static int
jws_open(struct jws *jws, const char *token, size_t len,
    uint32_t algorithms, int typ_relaxed, char *err, size_t errlen)
{
	const char	*dot1, *dot2, *end = token + len;
	json_t		*h;
	int		 rc;

	memset(jws, 0, sizeof(*jws));
	if (len > JWT_MAX_TOKEN) {
		errbuf_set(err, errlen, "token longer than %d octets",
		    JWT_MAX_TOKEN);
		return -1;
	}
	if ((dot1 = memchr(token, '.', len)) == NULL ||
	    (dot2 = memchr(dot1 + 1, '.', end - dot1 - 1)) == NULL ||
	    memchr(dot2 + 1, '.', end - dot2 - 1) != NULL) {
		/* A JWE has five parts, RFC 7516 7.1; nor is it for us. */
		errbuf_set(err, errlen, "not three parts (compact JWS)");
		return -1;
	}
	jws->input = token;
	jws->inputlen = dot2 - token;
	jws->payload = dot1 + 1;
	jws->payloadlen = dot2 - dot1 - 1;
	if (base64_decode(jws->payload, jws->payloadlen,
	    BASE64_URL | BASE64_NOPAD, NULL, 0, NULL) == -1) {
		errbuf_set(err, errlen, "payload not base64url");
		return -1;
	}
	if ((jws->sig = base64_decode_alloc(dot2 + 1, end - dot2 - 1,
	    BASE64_URL | BASE64_NOPAD, &jws->siglen)) == NULL) {
		errbuf_set(err, errlen, "signature not base64url");
		return -1;
	}
	if ((h = b64url_json_object(token, dot1 - token)) == NULL) {
		errbuf_set(err, errlen, "header not a base64url JSON object");
		return -1;
	}
	rc = jws_header(jws, h, algorithms, typ_relaxed, err, errlen);
	json_decref(h);
	return rc;
}

static void
jws_close(struct jws *jws)
{
	if (jws->sig != NULL)
		freezero(jws->sig, jws->siglen + 1);
	jws->sig = NULL;
}

/*
 * RFC 7518 3.4: ES256 signs with r and s of 32 octets each, end to
 * end; OpenSSL wants them in DER (SEC 1 C.8).  NULL if out of memory.
 */
static unsigned char *
ecdsa_der(const unsigned char *raw, int *derlen)
{
	ECDSA_SIG	*es;
	BIGNUM		*r, *s;
	unsigned char	*der = NULL;

	if ((es = ECDSA_SIG_new()) == NULL)
		return NULL;
	r = BN_bin2bn(raw, 32, NULL);
	s = BN_bin2bn(raw + 32, 32, NULL);
	if (r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
		BN_free(r);
		BN_free(s);
		ECDSA_SIG_free(es);
		return NULL;
	}
	if ((*derlen = i2d_ECDSA_SIG(es, &der)) <= 0)
		der = NULL;
	ECDSA_SIG_free(es);
	return der;
}

/* 1 if sig is key's signature of msg under alg. */
static int
signature_ok(const struct jwk *key, uint32_t alg, const unsigned char *msg,
    size_t msglen, const unsigned char *sig, size_t siglen)
{
	EVP_MD_CTX	*ctx = NULL;
	EVP_PKEY_CTX	*pctx;
	unsigned char	*der = NULL;
	const char	*md = "SHA256";
	int		 derlen, ok = 0;

	if (key->alg != alg)
		return 0;
	switch (alg) {
	case JWT_ALG_RS256:
		/* RFC 8017 8.2.2: exactly as long as the modulus */
		if (siglen != (size_t)EVP_PKEY_get_size(key->pkey))
			return 0;
		break;
	case JWT_ALG_ES256:
		if (siglen != 64 || (der = ecdsa_der(sig, &derlen)) == NULL)
			return 0;
		sig = der;
		siglen = (size_t)derlen;
		break;
	case JWT_ALG_EDDSA:
		/* RFC 8032 5.1: PureEdDSA hashes on its own */
		if (siglen != 64)
			return 0;
		md = NULL;
		break;
	default:
		return 0;
	}
	if ((ctx = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestVerifyInit_ex(ctx, &pctx, md, NULL, NULL, key->pkey,
	    NULL) != 1)
		goto done;
	/* RFC 7518 3.3: RSASSA-PKCS1-v1_5, never PSS */
	if (alg == JWT_ALG_RS256 &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) <= 0)
		goto done;
	ok = EVP_DigestVerify(ctx, sig, siglen, msg, msglen) == 1;
 done:
	EVP_MD_CTX_free(ctx);
	OPENSSL_free(der);
	return ok;
}

/*
 * RFC 7515 6: with a kid, the keys of that kid; without, every key of
 * the algorithm's type, any one of which may have signed.
 */
static int
jws_check_signature(const struct jws *jws, const struct jwks *set,
    char *err, size_t errlen)
{
	const struct jwk	*k;
	int			 pos = 0, kid_seen = 0, tried = 0;

	while ((k = jwks_find(set, jws->has_kid ? jws->kid : NULL, jws->alg,
	    &pos, &kid_seen)) != NULL) {
		tried++;
		if (signature_ok(k, jws->alg,
		    (const unsigned char *)jws->input, jws->inputlen,
		    jws->sig, jws->siglen))
			return JWT_OK;
	}
	if (jws->has_kid && !kid_seen) {
		errbuf_set(err, errlen, "unknown kid");
		return JWT_UNKNOWN_KID;
	}
	if (tried == 0) {
		errbuf_set(err, errlen, "no %s key%s", jwa_alg_name(jws->alg),
		    jws->has_kid ? " of that kid" : "");
		return JWT_INVALID;
	}
	errbuf_set(err, errlen, "bad signature");
	return JWT_INVALID;
}

int
jws_verify_signature(const char *token, size_t len, const struct jwks *set,
    uint32_t algorithms, char *err, size_t errlen)
{
	struct jws	 jws;
	int		 rc = JWT_INVALID;

	errbuf_set(err, errlen, "%s", "");
	ERR_set_mark();
	/* fixed vectors of other RFCs: typ JWT or none */
	if (jws_open(&jws, token, len, algorithms, 1, err, errlen) == 0)
		rc = jws_check_signature(&jws, set, err, errlen);
	jws_close(&jws);
	ERR_pop_to_mark();
	return rc;
}

/* ---- claims (RFC 7519 4.1, RFC 9068 2.2) ---- */

/*
 * RFC 7519 2: NumericDate, seconds, perhaps with a fraction; rounded
 * the way that is stricter for the claim.  -1: absent, 0: ok, -2: bad.
 */
static int
numeric_date(const json_t *claims, const char *name, int round_up,
    int64_t *out)
{
	const json_t	*v;
	double		 d;

	if ((v = json_object_get(claims, name)) == NULL)
		return -1;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0 ||
		    json_integer_value(v) > NUMERIC_DATE_MAX)
			return -2;
		*out = json_integer_value(v);
		return 0;
	}
	if (!json_is_real(v))
		return -2;
	d = json_real_value(v);
	if (!(d >= 0 && d <= (double)NUMERIC_DATE_MAX))
		return -2;
	*out = (int64_t)d;
	if (round_up && (double)*out < d)
		(*out)++;
	return 0;
}

static int
claims_times(const json_t *claims, int64_t now, int leeway,
    struct jwt_claims *out, char *err, size_t errlen)
{
	int64_t	 t;

	if (leeway < 0)
		leeway = 0;
	/* RFC 7519 4.1.4; RFC 9068 2.2 makes exp required */
	switch (numeric_date(claims, "exp", 0, &out->exp)) {
	case -1:
		errbuf_set(err, errlen, "no exp");
		return -1;
	case -2:
		errbuf_set(err, errlen, "exp not a date");
		return -1;
	}
	if (out->exp + leeway <= now) {
		errbuf_set(err, errlen, "expired %lld s ago",
		    (long long)(now - out->exp));
		return -1;
	}
	/* RFC 7519 4.1.5 */
	switch (numeric_date(claims, "nbf", 1, &t)) {
	case -2:
		errbuf_set(err, errlen, "nbf not a date");
		return -1;
	case 0:
		if (t - leeway > now) {
			errbuf_set(err, errlen, "not valid for %lld s (nbf)",
			    (long long)(t - now));
			return -1;
		}
	}
	/* RFC 7519 4.1.6: issued in the future is a broken clock */
	switch (numeric_date(claims, "iat", 1, &out->iat)) {
	case -2:
		errbuf_set(err, errlen, "iat not a date");
		return -1;
	case -1:
		out->iat = 0;
		break;
	case 0:
		if (out->iat - leeway > now) {
			errbuf_set(err, errlen, "issued %lld s in the future",
			    (long long)(out->iat - now));
			return -1;
		}
	}
	return 0;
}

/* RFC 7519 4.1.3: a string, or an array of strings, one of them ours */
static int
audience_ok(const json_t *aud, const char *audience)
{
	const json_t	*v;
	size_t		 i;
	int		 found = 0;

	if (json_is_string(aud))
		return strcmp(json_string_value(aud), audience) == 0;
	if (!json_is_array(aud))
		return 0;
	json_array_foreach(aud, i, v) {
		if (!json_is_string(v))
			return 0;
		if (strcmp(json_string_value(v), audience) == 0)
			found = 1;
	}
	return found;
}

/* Has the scope claim (a string or an array of strings) this scope? */
static int
scope_has(const json_t *scope, const char *tok, size_t toklen)
{
	const json_t	*v;
	size_t		 i;

	if (json_is_string(scope))
		return scope_has_token(json_string_value(scope), tok,
		    toklen);
	json_array_foreach(scope, i, v)
		if (json_string_length(v) == toklen &&
		    memcmp(json_string_value(v), tok, toklen) == 0)
			return 1;
	return 0;
}

/* A scope claim as this module reads it, or NULL if it is none. */
static const json_t *
scope_claim(const json_t *claims)
{
	const json_t	*scope, *v;
	size_t		 i;

	/* RFC 9068 2.2.3 and RFC 8693 4.2: "scope"; Entra and Okta: "scp" */
	if ((scope = json_object_get(claims, "scope")) == NULL)
		scope = json_object_get(claims, "scp");
	if (json_is_string(scope))
		return scope;
	if (!json_is_array(scope))
		return NULL;
	json_array_foreach(scope, i, v)
		if (!json_is_string(v))
			return NULL;
	return scope;
}

/* Whole scopes, space-separated, as many as fit: for the log. */
static void
scope_copy(const json_t *scope, char *out, size_t outlen)
{
	const json_t	*v;
	const char	*p, *end;
	size_t		 i, n, o = 0;

	out[0] = '\0';
	if (json_is_string(scope)) {
		for (p = json_string_value(scope); *p != '\0'; p += n) {
			if (*p == ' ') {
				n = 1;
				continue;
			}
			end = strchr(p, ' ');
			n = end == NULL ? strlen(p) : (size_t)(end - p);
			if (o + (o > 0) + n >= outlen)
				return;
			o += snprintf(out + o, outlen - o, "%s%.*s",
			    o > 0 ? " " : "", (int)n, p);
		}
		return;
	}
	json_array_foreach(scope, i, v) {
		n = json_string_length(v);
		if (n == 0 || o + (o > 0) + n >= outlen)
			return;
		o += snprintf(out + o, outlen - o, "%s%s", o > 0 ? " " : "",
		    json_string_value(v));
	}
}

static int
claims_scope(const json_t *claims, const char *required,
    struct jwt_claims *out, char *err, size_t errlen)
{
	const json_t	*scope;
	const char	*p = required, *w;
	size_t		 n;

	scope = scope_claim(claims);
	if (scope != NULL)
		scope_copy(scope, out->scope, sizeof(out->scope));
	if (required == NULL || *required == '\0')
		return 0;
	/* RFC 6749 3.3: words that match exactly, "smtpx" is no "smtp" */
	while ((w = scope_next(&p, &n)) != NULL) {
		if (scope == NULL || !scope_has(scope, w, n)) {
			errbuf_set(err, errlen, "scope %.*s not granted",
			    (int)n, w);
			return -1;
		}
	}
	return 0;
}

static int
nonempty(const char *s)
{
	return s != NULL && *s != '\0';
}

/* A claim's value for err: escaped, and short. */
static const char *
claim_for_log(const json_t *v, char *buf, size_t len)
{
	if (!json_is_string(v))
		return "(not a string)";
	return escape_text(json_string_value(v), json_string_length(v), buf,
	    len);
}

/* The token's client, by client_claim; "" if it names none. */
static const char *
identity_client(const json_t *claims, const struct token_rules *r,
    char *client, size_t clientlen, char *err, size_t errlen)
{
	const json_t	*v;
	const char	*name;
	char		 buf[64];

	/* RFC 9068 2.2 and RFC 7662 2.2: client_id; Keycloak, Entra: azp */
	name = nonempty(r->client_claim) ? r->client_claim : "client_id";
	if ((v = json_object_get(claims, name)) == NULL &&
	    !nonempty(r->client_claim))
		v = json_object_get(claims, name = "azp");
	if (v != NULL && (!json_is_string(v) ||
	    !claim_text_ok(json_string_value(v), clientlen))) {
		errbuf_set(err, errlen, "%s claim not a client id", name);
		return "client not allowed";
	}
	if (v != NULL)
		strlcpy(client, json_string_value(v), clientlen);
	if (!nonempty(r->clients))
		return NULL;
	if (client[0] == '\0') {
		errbuf_set(err, errlen, "no %s claim: its client is unknown",
		    name);
		return "client not allowed";
	}
	if (!scope_has_token(r->clients, client, strlen(client))) {
		errbuf_set(err, errlen, "client \"%s\" not allowed",
		    claim_for_log(v, buf, sizeof(buf)));
		return "client not allowed";
	}
	return NULL;
}

const char *
token_identity(const json_t *claims, const struct token_rules *r,
    char *user, size_t userlen, char *client, size_t clientlen, char *err,
    size_t errlen)
{
	const json_t	*v, *sub;
	const char	*name, *why;

	user[0] = client[0] = '\0';
	if ((why = identity_client(claims, r, client, clientlen, err,
	    errlen)) != NULL)
		return why;
	sub = json_object_get(claims, "sub");
	if (nonempty(r->user_claim)) {
		/* configured: that claim, and no other */
		name = r->user_claim;
		v = json_object_get(claims, name);
	} else {
		/*
		 * RFC 9068 5: in a token of the client credentials grant,
		 * sub is the client's own id; it names no user.
		 */
		if (client[0] != '\0' && json_is_string(sub) &&
		    strcmp(json_string_value(sub), client) == 0) {
			errbuf_set(err, errlen, "sub is the token's client id: "
			    "a client's token, of no user");
			return "token of no user";
		}
		name = "username";
		if ((v = json_object_get(claims, name)) == NULL ||
		    json_is_null(v)) {
			name = "sub";
			v = sub;
		}
	}
	if (v == NULL || json_is_null(v)) {
		errbuf_set(err, errlen, "no %s claim", name);
		return "token of no user";
	}
	if (!json_is_string(v) || !claim_text_ok(json_string_value(v),
	    userlen)) {
		errbuf_set(err, errlen, "%s claim not a user name", name);
		return "unusable user in token";
	}
	strlcpy(user, json_string_value(v), userlen);
	return NULL;
}

static int
claims_user(const json_t *claims, const struct token_rules *r,
    struct jwt_claims *out, char *err, size_t errlen)
{
	const json_t	*v;

	v = json_object_get(claims, "sub");
	if (json_is_string(v) && claim_text_ok(json_string_value(v),
	    sizeof(out->sub)))
		strlcpy(out->sub, json_string_value(v), sizeof(out->sub));
	out->why = token_identity(claims, r, out->user, sizeof(out->user),
	    out->client, sizeof(out->client), err, errlen);
	return out->why == NULL ? 0 : -1;
}

static int
claims_check(const json_t *claims, const struct jwt_policy *pol,
    int64_t now, struct jwt_claims *out, char *err, size_t errlen)
{
	const json_t	*v;

	if (claims_times(claims, now, pol->leeway, out, err, errlen) == -1)
		return -1;
	/* RFC 7519 4.1.1, RFC 9068 4: exactly the issuer we trust */
	if (pol->issuer != NULL && *pol->issuer != '\0') {
		v = json_object_get(claims, "iss");
		if (!json_is_string(v) ||
		    strcmp(json_string_value(v), pol->issuer) != 0) {
			errbuf_set(err, errlen, "wrong issuer");
			return -1;
		}
	}
	/* RFC 9068 4: a token for another resource is not for us */
	if (pol->audience != NULL && *pol->audience != '\0' &&
	    !audience_ok(json_object_get(claims, "aud"), pol->audience)) {
		errbuf_set(err, errlen, "audience not ours");
		return -1;
	}
	if (claims_user(claims, &pol->identity, out, err, errlen) == -1)
		return -1;
	return claims_scope(claims, pol->scope, out, err, errlen);
}

int
jwt_verify(const char *token, size_t len, const struct jwks *set,
    const struct jwt_policy *pol, int64_t now, struct jwt_claims *out,
    char *err, size_t errlen)
{
	struct jws	 jws;
	json_t		*claims;
	int		 rc;

	memset(out, 0, sizeof(*out));
	errbuf_set(err, errlen, "%s", "");
	ERR_set_mark();
	if (jws_open(&jws, token, len, pol->algorithms, pol->typ_relaxed,
	    err, errlen) == -1) {
		if (jws.typ_refused)
			out->why = "not an access token (typ)";
		rc = JWT_INVALID;
		goto done;
	}
	strlcpy(out->kid, jws.kid, sizeof(out->kid));
	if ((rc = jws_check_signature(&jws, set, err, errlen)) != JWT_OK)
		goto done;
	/* RFC 7519 7.2 10: the payload is the claims set, an object */
	if ((claims = b64url_json_object(jws.payload,
	    jws.payloadlen)) == NULL) {
		errbuf_set(err, errlen, "payload not a JSON object");
		rc = JWT_INVALID;
		goto done;
	}
	if (claims_check(claims, pol, now, out, err, errlen) == -1)
		rc = JWT_INVALID;
	json_decref(claims);
 done:
	if (rc != JWT_OK) {
		/* nothing of a token that failed passes for a result */
		out->user[0] = out->sub[0] = out->scope[0] = '\0';
		out->client[0] = '\0';
		out->exp = out->iat = 0;
	}
	jws_close(&jws);
	ERR_pop_to_mark();
	return rc;
}
