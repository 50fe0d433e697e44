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
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "config.h"
#include "jwt.h"
#include "util.h"

/* NumericDate limits (RFC 7519 2): the epoch to the end of 9999 */
#define NUMERIC_DATE_MAX	253402300799LL

#define JWKS_PARAM_MAX		2048	/* characters of n, x, ... */

struct jwk {
	EVP_PKEY	*pkey;
	uint32_t	 alg;		/* the JWT_ALG_* its type allows */
	int		 has_kid;
	char		 kid[JWT_KID_MAX];
};

struct jwks {
	struct jwk	*keys;
	int		 nkeys;
	int		 nskipped;
	char		 skipped_why[128];	/* the first one */
};

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
};

static const struct {
	const char	*name;
	uint32_t	 alg;
} jws_algs[] = {
	{ "RS256",	JWT_ALG_RS256 },	/* RFC 7518 3.3 */
	{ "ES256",	JWT_ALG_ES256 },	/* RFC 7518 3.4 */
	{ "EdDSA",	JWT_ALG_EDDSA },	/* RFC 8037 3.1 */
	{ "Ed25519",	JWT_ALG_EDDSA },	/* RFC 9864: the same */
};

/* Names are case-sensitive (RFC 7515 4.1.1): "rs256" is no RS256. */
static uint32_t
alg_from_name(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (strcmp(name, jws_algs[i].name) == 0)
			return jws_algs[i].alg;
	return 0;
}

static const char *
alg_name(uint32_t alg)
{
	switch (alg) {
	case JWT_ALG_RS256:
		return "RS256";
	case JWT_ALG_ES256:
		return "ES256";
	case JWT_ALG_EDDSA:
		return "EdDSA";
	}
	return "?";
}

static int
b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict base64url (RFC 7515 2, RFC 4648 5): its alphabet only, no
 * padding, no white space, and the bits of the last character that
 * make no octet must be zero (RFC 4648 3.5).  Otherwise one token
 * would have many spellings, and a changed token would still verify.
 * out, if not NULL, must hold len * 3 / 4 octets.
 */
static int
b64url_decode(const char *in, size_t len, unsigned char *out,
    size_t *outlen)
{
	unsigned int	 acc = 0;
	int		 bits = 0, v;
	size_t		 i, n = 0;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		if ((v = b64url_value((unsigned char)in[i])) == -1)
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
	if ((acc & ((1U << bits) - 1)) != 0)
		return -1;
	if (outlen != NULL)
		*outlen = n;
	return 0;
}

/* As b64url_decode(), into memory of its own, NUL-terminated. */
static unsigned char *
b64url_decode_alloc(const char *in, size_t len, size_t *outlen)
{
	unsigned char	*out;

	if ((out = malloc(len * 3 / 4 + 1)) == NULL)
		return NULL;
	if (b64url_decode(in, len, out, outlen) == -1) {
		free(out);
		return NULL;
	}
	out[*outlen] = '\0';
	return out;
}

/* A JSON object from base64url, or NULL. */
static json_t *
b64url_json_object(const char *in, size_t len)
{
	unsigned char	*buf;
	size_t		 n;
	json_t		*obj;
	json_error_t	 jerr;

	if ((buf = b64url_decode_alloc(in, len, &n)) == NULL)
		return NULL;
	obj = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
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

/* ---- JWK Set (RFC 7517) ---- */

/* A base64url member of a JWK, decoded; NULL if absent or malformed. */
static unsigned char *
jwk_param(const json_t *jwk, const char *name, size_t *len)
{
	const json_t	*v;
	unsigned char	*out;

	v = json_object_get(jwk, name);
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > JWKS_PARAM_MAX)
		return NULL;
	out = b64url_decode_alloc(json_string_value(v), json_string_length(v),
	    len);
	if (out != NULL && *len == 0) {
		free(out);
		return NULL;
	}
	return out;
}

static EVP_PKEY *
pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM	*params;
	EVP_PKEY_CTX	*ctx;
	EVP_PKEY	*pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL)
		return NULL;
	ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/*
 * OpenSSL's own check: for EC that the point is on the curve and of
 * the right order, for RSA the checks of SP 800-56B 6.4.2.2 (n odd and
 * composite without small factors, 2^16 < e < 2^256).
 */
static int
pkey_public_check(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX	*ctx;
	int		 ok;

	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL)) == NULL)
		return 0;
	ok = EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/* RFC 7518 6.3.1: n and e, a modulus of 2048 bits at least */
static EVP_PKEY *
jwk_rsa(const json_t *jwk, char *why, size_t whylen)
{
	unsigned char	*nbuf = NULL, *ebuf = NULL;
	size_t		 nlen, elen;
	BIGNUM		*n = NULL, *e = NULL;
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*pkey = NULL;
	int		 bits;

	if ((nbuf = jwk_param(jwk, "n", &nlen)) == NULL ||
	    (ebuf = jwk_param(jwk, "e", &elen)) == NULL) {
		errbuf_set(why, whylen, "RSA key without valid n and e");
		goto done;
	}
	if ((n = BN_bin2bn(nbuf, (int)nlen, NULL)) == NULL ||
	    (e = BN_bin2bn(ebuf, (int)elen, NULL)) == NULL) {
		errbuf_set(why, whylen, "out of memory");
		goto done;
	}
	bits = BN_num_bits(n);
	if (bits < JWT_RSA_MIN_BITS || bits > JWT_RSA_MAX_BITS) {
		errbuf_set(why, whylen, "RSA modulus of %d bits, %d to %d "
		    "accepted", bits, JWT_RSA_MIN_BITS, JWT_RSA_MAX_BITS);
		goto done;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
		errbuf_set(why, whylen, "out of memory");
		goto done;
	}
	if ((pkey = pkey_fromdata("RSA", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(why, whylen, "RSA public key invalid");
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
 done:
	OSSL_PARAM_BLD_free(bld);
	BN_free(n);
	BN_free(e);
	free(nbuf);
	free(ebuf);
	return pkey;
}

/*
 * RFC 7518 6.2.1: x and y of P-256, each of exactly 32 octets.  A point
 * off the curve would leak the key of whoever computes with it; here
 * nobody would, but such a set is broken and says so.
 */
static EVP_PKEY *
jwk_ec(const json_t *jwk, char *why, size_t whylen)
{
	unsigned char	*x = NULL, *y = NULL;
	unsigned char	 point[1 + 32 + 32];
	size_t		 xlen, ylen;
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*pkey = NULL;

	if ((x = jwk_param(jwk, "x", &xlen)) == NULL ||
	    (y = jwk_param(jwk, "y", &ylen)) == NULL ||
	    xlen != 32 || ylen != 32) {
		errbuf_set(why, whylen, "P-256 key without valid x and y");
		goto done;
	}
	/* SEC 1 2.3.3, uncompressed */
	point[0] = 0x04;
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0) != 1 ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    point, sizeof(point)) != 1) {
		errbuf_set(why, whylen, "out of memory");
		goto done;
	}
	if ((pkey = pkey_fromdata("EC", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(why, whylen, "P-256 point not on the curve");
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
 done:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

/* RFC 8037 2: x, the 32 octets of the public key */
static EVP_PKEY *
jwk_ed25519(const json_t *jwk, char *why, size_t whylen)
{
	unsigned char	*x;
	size_t		 xlen;
	OSSL_PARAM_BLD	*bld;
	EVP_PKEY	*pkey = NULL;

	if ((x = jwk_param(jwk, "x", &xlen)) == NULL || xlen != 32) {
		errbuf_set(why, whylen, "Ed25519 key without valid x");
		free(x);
		return NULL;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    x, xlen) != 1)
		errbuf_set(why, whylen, "out of memory");
	else if ((pkey = pkey_fromdata("ED25519", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(why, whylen, "Ed25519 public key invalid");
		EVP_PKEY_free(pkey);
		pkey = NULL;
	}
	OSSL_PARAM_BLD_free(bld);
	free(x);
	return pkey;
}

/* RFC 7517 4.2, 4.3: a key for something else than signatures? */
static int
jwk_for_signatures(const json_t *jwk)
{
	const json_t	*v, *op;
	size_t		 i;

	v = json_object_get(jwk, "use");
	if (v != NULL && (!json_is_string(v) ||
	    strcmp(json_string_value(v), "sig") != 0))
		return 0;
	if ((v = json_object_get(jwk, "key_ops")) == NULL)
		return 1;
	if (!json_is_array(v))
		return 0;
	json_array_foreach(v, i, op)
		if (json_is_string(op) &&
		    strcmp(json_string_value(op), "verify") == 0)
			return 1;
	return 0;
}

/* One key of the set; -1 (and why) if it is to be skipped. */
static int
jwk_parse(const json_t *jwk, struct jwk *k, char *why, size_t whylen)
{
	const json_t	*v;
	const char	*kty, *crv;

	if (!json_is_object(jwk)) {
		errbuf_set(why, whylen, "not an object");
		return -1;
	}
	if (!json_is_string(v = json_object_get(jwk, "kty"))) {
		errbuf_set(why, whylen, "no kty");
		return -1;
	}
	kty = json_string_value(v);
	/* A private key has no business here: never hold one. */
	if (json_object_get(jwk, "d") != NULL) {
		errbuf_set(why, whylen, "private key");
		return -1;
	}
	if (!jwk_for_signatures(jwk)) {
		errbuf_set(why, whylen, "not for signatures (use, key_ops)");
		return -1;
	}
	if ((v = json_object_get(jwk, "kid")) != NULL) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= sizeof(k->kid)) {
			errbuf_set(why, whylen, "kid not a string of at most "
			    "%zu octets", sizeof(k->kid) - 1);
			return -1;
		}
		strlcpy(k->kid, json_string_value(v), sizeof(k->kid));
		k->has_kid = 1;
	}
	crv = json_string_value(json_object_get(jwk, "crv"));
	if (strcmp(kty, "RSA") == 0) {
		k->alg = JWT_ALG_RS256;
		k->pkey = jwk_rsa(jwk, why, whylen);
	} else if (strcmp(kty, "EC") == 0 && crv != NULL &&
	    strcmp(crv, "P-256") == 0) {
		k->alg = JWT_ALG_ES256;
		k->pkey = jwk_ec(jwk, why, whylen);
	} else if (strcmp(kty, "OKP") == 0 && crv != NULL &&
	    strcmp(crv, "Ed25519") == 0) {
		k->alg = JWT_ALG_EDDSA;
		k->pkey = jwk_ed25519(jwk, why, whylen);
	} else {
		errbuf_set(why, whylen, "kty or crv not supported");
		return -1;
	}
	if (k->pkey == NULL)
		return -1;
	/*
	 * RFC 7517 4.4: a key named for one algorithm serves no other.
	 * Checked here, so every key kept serves the one alg of its type.
	 */
	v = json_object_get(jwk, "alg");
	if (v != NULL && (!json_is_string(v) ||
	    alg_from_name(json_string_value(v)) != k->alg)) {
		errbuf_set(why, whylen, "alg not %s", alg_name(k->alg));
		EVP_PKEY_free(k->pkey);
		k->pkey = NULL;
		return -1;
	}
	return 0;
}

static struct jwks *
jwks_load(const json_t *keys, char *err, size_t errlen)
{
	struct jwks	*set;
	const json_t	*v;
	size_t		 i;
	char		 why[96];

	if ((set = calloc(1, sizeof(*set))) == NULL ||
	    (set->keys = calloc(json_array_size(keys) + 1,
	    sizeof(*set->keys))) == NULL) {
		free(set);
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	json_array_foreach(keys, i, v) {
		memset(&set->keys[set->nkeys], 0, sizeof(set->keys[0]));
		if (jwk_parse(v, &set->keys[set->nkeys], why,
		    sizeof(why)) == 0) {
			set->nkeys++;
			continue;
		}
		if (set->nskipped++ == 0)
			errbuf_set(set->skipped_why, sizeof(set->skipped_why),
			    "key %zu: %s", i, why);
	}
	if (set->nkeys == 0) {
		if (set->nskipped == 0)
			errbuf_set(err, errlen, "JWKS has no key");
		else
			errbuf_set(err, errlen, "JWKS has no usable key "
			    "(%d skipped, %s)", set->nskipped,
			    set->skipped_why);
		jwks_free(set);
		return NULL;
	}
	return set;
}

struct jwks *
jwks_parse(const char *json, size_t len, char *err, size_t errlen)
{
	json_t		*root;
	const json_t	*keys;
	json_error_t	 jerr;
	struct jwks	*set = NULL;

	if (len > JWKS_MAX_LEN) {
		errbuf_set(err, errlen, "JWKS longer than %d octets",
		    JWKS_MAX_LEN);
		return NULL;
	}
	ERR_set_mark();
	if ((root = json_loadb(json, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		errbuf_set(err, errlen, "JWKS not JSON: line %d: %s",
		    jerr.line, jerr.text);
		goto done;
	}
	/* RFC 7517 5: an object with a "keys" array */
	keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys))
		errbuf_set(err, errlen, "JWKS has no keys array");
	else if (json_array_size(keys) > JWKS_MAX_KEYS)
		errbuf_set(err, errlen, "JWKS has more than %d keys",
		    JWKS_MAX_KEYS);
	else
		set = jwks_load(keys, err, errlen);
 done:
	json_decref(root);
	ERR_pop_to_mark();
	return set;
}

void
jwks_free(struct jwks *set)
{
	int	 i;

	if (set == NULL)
		return;
	for (i = 0; i < set->nkeys; i++)
		EVP_PKEY_free(set->keys[i].pkey);
	free(set->keys);
	free(set);
}

int
jwks_count(const struct jwks *set)
{
	return set == NULL ? 0 : set->nkeys;
}

int
jwks_skipped(const struct jwks *set, char *why, size_t whylen)
{
	if (set == NULL || set->nskipped == 0) {
		errbuf_set(why, whylen, "%s", "");
		return 0;
	}
	errbuf_set(why, whylen, "%s", set->skipped_why);
	return set->nskipped;
}

/* ---- JWS (RFC 7515) ---- */

/* RFC 7515 4.1.9: media types, "application/" may be left out */
static int
typ_ok(const char *typ)
{
	if (strncasecmp(typ, "application/", 12) == 0)
		typ += 12;
	/* RFC 9068 4 wants at+jwt; Microsoft Entra sends JWT. */
	return strcasecmp(typ, "at+jwt") == 0 || strcasecmp(typ, "jwt") == 0;
}

static int
jws_header(struct jws *jws, const json_t *h, uint32_t algorithms,
    char *err, size_t errlen)
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
	if ((jws->alg = alg_from_name(json_string_value(v))) == 0) {
		errbuf_set(err, errlen, "alg \"%s\" refused",
		    escape_text(json_string_value(v), json_string_length(v),
		    buf, sizeof(buf)));
		return -1;
	}
	if ((jws->alg & algorithms) == 0) {
		errbuf_set(err, errlen, "alg %s not enabled",
		    alg_name(jws->alg));
		return -1;
	}
	v = json_object_get(h, "typ");
	if (v != NULL && (!json_is_string(v) ||
	    !typ_ok(json_string_value(v)))) {
		errbuf_set(err, errlen, "typ not at+jwt or JWT");
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
    uint32_t algorithms, char *err, size_t errlen)
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
	if (b64url_decode(jws->payload, jws->payloadlen, NULL, NULL) == -1) {
		errbuf_set(err, errlen, "payload not base64url");
		return -1;
	}
	if ((jws->sig = b64url_decode_alloc(dot2 + 1, end - dot2 - 1,
	    &jws->siglen)) == NULL) {
		errbuf_set(err, errlen, "signature not base64url");
		return -1;
	}
	if ((h = b64url_json_object(token, dot1 - token)) == NULL) {
		errbuf_set(err, errlen, "header not a base64url JSON object");
		return -1;
	}
	rc = jws_header(jws, h, algorithms, err, errlen);
	json_decref(h);
	return rc;
}

static void
jws_close(struct jws *jws)
{
	free(jws->sig);
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
	int			 i, kid_seen = 0, tried = 0;

	for (i = 0; i < set->nkeys; i++) {
		k = &set->keys[i];
		if (jws->has_kid) {
			if (!k->has_kid || strcmp(k->kid, jws->kid) != 0)
				continue;
			kid_seen = 1;
		}
		if (k->alg != jws->alg)
			continue;
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
		errbuf_set(err, errlen, "no %s key%s", alg_name(jws->alg),
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
	if (jws_open(&jws, token, len, algorithms, err, errlen) == 0)
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

/* Is tok (toklen octets) one of the space-separated words of list? */
static int
word_in(const char *list, const char *tok, size_t toklen)
{
	const char	*p = list, *end;
	size_t		 n;

	while (*p != '\0') {
		if (*p == ' ') {
			p++;
			continue;
		}
		end = strchr(p, ' ');
		n = end == NULL ? strlen(p) : (size_t)(end - p);
		if (n == toklen && memcmp(p, tok, n) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* Has the scope claim (a string or an array of strings) this scope? */
static int
scope_has(const json_t *scope, const char *tok, size_t toklen)
{
	const json_t	*v;
	size_t		 i;

	if (json_is_string(scope))
		return word_in(json_string_value(scope), tok, toklen);
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
	const char	*p;
	size_t		 n;

	scope = scope_claim(claims);
	if (scope != NULL)
		scope_copy(scope, out->scope, sizeof(out->scope));
	if (required == NULL || *required == '\0')
		return 0;
	/* RFC 6749 3.3: words that match exactly, "smtpx" is no "smtp" */
	for (p = required; *p != '\0'; p += n) {
		if ((n = strcspn(p, " ")) == 0) {
			n = 1;
			continue;
		}
		if (scope == NULL || !scope_has(scope, p, n)) {
			errbuf_set(err, errlen, "scope %.*s not granted",
			    (int)n, p);
			return -1;
		}
	}
	return 0;
}

static int
claims_user(const json_t *claims, const char *user_claim,
    struct jwt_claims *out, char *err, size_t errlen)
{
	const json_t	*v;
	const char	*name = user_claim;

	v = json_object_get(claims, "sub");
	if (json_is_string(v) && claim_text_ok(json_string_value(v),
	    sizeof(out->sub)))
		strlcpy(out->sub, json_string_value(v), sizeof(out->sub));
	if (name == NULL || *name == '\0') {
		name = "username";
		v = json_object_get(claims, name);
		if (v == NULL || json_is_null(v)) {
			name = "sub";
			v = json_object_get(claims, name);
		}
	} else
		v = json_object_get(claims, name);
	if (v == NULL) {
		errbuf_set(err, errlen, "no %s claim", name);
		return -1;
	}
	if (!json_is_string(v) || !claim_text_ok(json_string_value(v),
	    sizeof(out->user))) {
		errbuf_set(err, errlen, "%s claim not a user name", name);
		return -1;
	}
	strlcpy(out->user, json_string_value(v), sizeof(out->user));
	return 0;
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
	if (claims_user(claims, pol->user_claim, out, err, errlen) == -1)
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
	if (jws_open(&jws, token, len, pol->algorithms, err, errlen) == -1) {
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
		out->exp = out->iat = 0;
	}
	jws_close(&jws);
	ERR_pop_to_mark();
	return rc;
}
