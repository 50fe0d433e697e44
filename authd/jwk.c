/*
 * jwk.c -- the JWK Set (RFC 7517) whose keys verify JWT access tokens:
 * parsing its keys, holding the set, finding a key by kid.
 *
 * Only public keys for signatures of the three algorithms jwt.c knows
 * are kept (RSA of 2048 to 8192 bits, P-256, Ed25519), each checked by
 * OpenSSL; anything else in the set is skipped, and the first reason
 * is kept for the log.  A set is never changed once parsed.
 */

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>

#include "base64.h"
#include "config.h"
#include "jwk.h"
#include "util.h"

struct jwks {
	struct jwk	*keys;
	int		 nkeys;
	int		 nskipped;
	char		 skipped_why[128];	/* the first one */
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
uint32_t
jwa_alg_from_name(const char *name)
{
	size_t	 i;

	for (i = 0; i < sizeof(jws_algs) / sizeof(jws_algs[0]); i++)
		if (strcmp(name, jws_algs[i].name) == 0)
			return jws_algs[i].alg;
	return 0;
}

const char *
jwa_alg_name(uint32_t alg)
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
	out = base64_decode_alloc(json_string_value(v),
	    json_string_length(v), BASE64_URL | BASE64_NOPAD, len);
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
jwk_rsa(const json_t *jwk, char *err, size_t errlen)
{
	unsigned char	*nbuf = NULL, *ebuf = NULL;
	size_t		 nlen, elen;
	BIGNUM		*n = NULL, *e = NULL;
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*pkey = NULL;
	int		 bits;

	if ((nbuf = jwk_param(jwk, "n", &nlen)) == NULL ||
	    (ebuf = jwk_param(jwk, "e", &elen)) == NULL) {
		errbuf_set(err, errlen, "RSA key without valid n and e");
		goto done;
	}
	if ((n = BN_bin2bn(nbuf, (int)nlen, NULL)) == NULL ||
	    (e = BN_bin2bn(ebuf, (int)elen, NULL)) == NULL) {
		errbuf_set(err, errlen, "out of memory");
		goto done;
	}
	bits = BN_num_bits(n);
	if (bits < JWT_RSA_MIN_BITS || bits > JWT_RSA_MAX_BITS) {
		errbuf_set(err, errlen, "RSA modulus of %d bits, %d to %d "
		    "accepted", bits, JWT_RSA_MIN_BITS, JWT_RSA_MAX_BITS);
		goto done;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1) {
		errbuf_set(err, errlen, "out of memory");
		goto done;
	}
	if ((pkey = pkey_fromdata("RSA", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(err, errlen, "RSA public key invalid");
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
jwk_ec(const json_t *jwk, char *err, size_t errlen)
{
	unsigned char	*x = NULL, *y = NULL;
	unsigned char	 point[1 + 32 + 32];
	size_t		 xlen, ylen;
	OSSL_PARAM_BLD	*bld = NULL;
	EVP_PKEY	*pkey = NULL;

	if ((x = jwk_param(jwk, "x", &xlen)) == NULL ||
	    (y = jwk_param(jwk, "y", &ylen)) == NULL ||
	    xlen != 32 || ylen != 32) {
		errbuf_set(err, errlen, "P-256 key without valid x and y");
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
		errbuf_set(err, errlen, "out of memory");
		goto done;
	}
	if ((pkey = pkey_fromdata("EC", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(err, errlen, "P-256 point not on the curve");
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
jwk_ed25519(const json_t *jwk, char *err, size_t errlen)
{
	unsigned char	*x;
	size_t		 xlen;
	OSSL_PARAM_BLD	*bld;
	EVP_PKEY	*pkey = NULL;

	if ((x = jwk_param(jwk, "x", &xlen)) == NULL || xlen != 32) {
		errbuf_set(err, errlen, "Ed25519 key without valid x");
		free(x);
		return NULL;
	}
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY,
	    x, xlen) != 1)
		errbuf_set(err, errlen, "out of memory");
	else if ((pkey = pkey_fromdata("ED25519", bld)) == NULL ||
	    !pkey_public_check(pkey)) {
		errbuf_set(err, errlen, "Ed25519 public key invalid");
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
jwk_parse(const json_t *jwk, struct jwk *k, char *err, size_t errlen)
{
	const json_t	*v;
	const char	*kty, *crv;

	if (!json_is_object(jwk)) {
		errbuf_set(err, errlen, "not an object");
		return -1;
	}
	if (!json_is_string(v = json_object_get(jwk, "kty"))) {
		errbuf_set(err, errlen, "no kty");
		return -1;
	}
	kty = json_string_value(v);
	/* A private key has no business here: never hold one. */
	if (json_object_get(jwk, "d") != NULL) {
		errbuf_set(err, errlen, "private key");
		return -1;
	}
	if (!jwk_for_signatures(jwk)) {
		errbuf_set(err, errlen, "not for signatures (use, key_ops)");
		return -1;
	}
	if ((v = json_object_get(jwk, "kid")) != NULL) {
		if (!json_is_string(v) ||
		    json_string_length(v) >= sizeof(k->kid)) {
			errbuf_set(err, errlen, "kid not a string of at most "
			    "%zu octets", sizeof(k->kid) - 1);
			return -1;
		}
		strlcpy(k->kid, json_string_value(v), sizeof(k->kid));
		k->has_kid = 1;
	}
	crv = json_string_value(json_object_get(jwk, "crv"));
	if (strcmp(kty, "RSA") == 0) {
		k->alg = JWT_ALG_RS256;
		k->pkey = jwk_rsa(jwk, err, errlen);
	} else if (strcmp(kty, "EC") == 0 && crv != NULL &&
	    strcmp(crv, "P-256") == 0) {
		k->alg = JWT_ALG_ES256;
		k->pkey = jwk_ec(jwk, err, errlen);
	} else if (strcmp(kty, "OKP") == 0 && crv != NULL &&
	    strcmp(crv, "Ed25519") == 0) {
		k->alg = JWT_ALG_EDDSA;
		k->pkey = jwk_ed25519(jwk, err, errlen);
	} else {
		errbuf_set(err, errlen, "kty or crv not supported");
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
	    jwa_alg_from_name(json_string_value(v)) != k->alg)) {
		errbuf_set(err, errlen, "alg not %s", jwa_alg_name(k->alg));
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
	char		 keyerr[96];

	if ((set = calloc(1, sizeof(*set))) == NULL ||
	    (set->keys = calloc(json_array_size(keys) + 1,
	    sizeof(*set->keys))) == NULL) {
		free(set);
		errbuf_set(err, errlen, "out of memory");
		return NULL;
	}
	json_array_foreach(keys, i, v) {
		memset(&set->keys[set->nkeys], 0, sizeof(set->keys[0]));
		if (jwk_parse(v, &set->keys[set->nkeys], keyerr,
		    sizeof(keyerr)) == 0) {
			set->nkeys++;
			continue;
		}
		if (set->nskipped++ == 0)
			errbuf_set(set->skipped_why, sizeof(set->skipped_why),
			    "key %zu: %s", i, keyerr);
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

const struct jwk *
jwks_key(const struct jwks *set, int i)
{
	if (set == NULL || i < 0 || i >= set->nkeys)
		return NULL;
	return &set->keys[i];
}

int
jwks_skipped(const struct jwks *set, char *err, size_t errlen)
{
	if (set == NULL || set->nskipped == 0) {
		errbuf_set(err, errlen, "%s", "");
		return 0;
	}
	errbuf_set(err, errlen, "%s", set->skipped_why);
	return set->nskipped;
}

/*
 * The keys that may have made a signature with alg: with a kid, those
 * of that kid; without, every key of the algorithm's type (RFC 7515
 * 6).  Call with *pos 0, then again until NULL.  *kid_seen is set if
 * a key of that kid exists, whatever its type.
 */
const struct jwk *
jwks_find(const struct jwks *set, const char *kid, uint32_t alg, int *pos,
    int *kid_seen)
{
	const struct jwk	*k;

	while (*pos < set->nkeys) {
		k = &set->keys[(*pos)++];
		if (kid != NULL) {
			if (!k->has_kid || strcmp(k->kid, kid) != 0)
				continue;
			*kid_seen = 1;
		}
		if (k->alg == alg)
			return k;
	}
	return NULL;
}
