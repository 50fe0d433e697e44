/*
 * fuzz_jwt.c -- JWK Sets and JWT access tokens (authd/jwt.c).
 *
 * Input: one octet that says what the rest is (its value modulo 4):
 *   0  a JWK Set, parsed; a set that parses verifies a fixed token;
 *   1  a token in compact form, verified against a fixed set holding
 *      the keys of RFC 7515 A.2 (RSA), A.3 (P-256), RFC 8037 A.4
 *      (Ed25519) and a key of the fuzzer's own;
 *   2  a claims set: signed here with the fuzzer's own Ed25519 key under
 *      a fixed header, so that the claims checks are reached at all;
 *   3  a header, a LF, and a claims set, signed the same way.
 * Properties: a token passes only with a user, an exp in the future
 * and the policy's issuer; what fails leaves no claims behind.
 */

#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "config.h"
#include "fuzz.h"
#include "jwt.h"

#define NOW	1700000000LL

static EVP_PKEY		*key;
static struct jwks	*set;
static const struct jwt_policy policy = {
	.algorithms = JWT_ALG_RS256 | JWT_ALG_ES256 | JWT_ALG_EDDSA,
	.issuer = "https://idp.example.org",
	.audience = "smtp.example.org",
	.scope = "smtp",
	.identity.user_claim = "",
	.leeway = 30,
};

/* RFC 7515 A.2: {"alg":"RS256"}, the JWS of A.2.1. */
static const char rfc7515_a2[] = "eyJhbGciOiJSUzI1NiJ9."
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxl"
    "LmNvbS9pc19yb290Ijp0cnVlfQ"
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AA"
    "uHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAyn"
    "RFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZR"
    "mB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnv"
    "Wh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_Ioy"
    "pGlUPQGe77Rw";

static const char jwks_fixed[] = "{\"keys\":["
    "{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"use\":\"sig\","
    "\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRP"
    "EwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBY"
    "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9k"
    "G4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PA"
    "cDTW9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\"},"
    "{\"kty\":\"EC\",\"kid\":\"ec1\",\"crv\":\"P-256\","
    "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"},"
    "{\"kty\":\"OKP\",\"kid\":\"ed1\",\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"},"
    "{\"kty\":\"OKP\",\"kid\":\"fuzz\",\"crv\":\"Ed25519\",\"x\":\"%s\"}"
    "]}";

static const char header_fixed[] =
    "{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"fuzz\"}";

/* base64url without padding (RFC 7515 2); out holds 4 * len / 3 + 4. */
static size_t
b64url(const uint8_t *in, size_t len, char *out)
{
	static const char	 a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t			 i, n = 0;
	uint32_t		 v;

	for (i = 0; i + 3 <= len; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
		    in[i + 2];
		out[n++] = a[v >> 18];
		out[n++] = a[(v >> 12) & 0x3f];
		out[n++] = a[(v >> 6) & 0x3f];
		out[n++] = a[v & 0x3f];
	}
	if (i < len) {
		v = (uint32_t)in[i] << 16;
		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[n++] = a[v >> 18];
		out[n++] = a[(v >> 12) & 0x3f];
		if (i + 1 < len)
			out[n++] = a[(v >> 6) & 0x3f];
	}
	out[n] = '\0';
	return n;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t	 pub[32];
	size_t	 publen = sizeof(pub);
	char	 x[64], json[sizeof(jwks_fixed) + 64], err[256];

	(void)argc; (void)argv;
	if ((key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
	    EVP_PKEY_get_raw_public_key(key, pub, &publen) != 1)
		abort();
	b64url(pub, publen, x);
	snprintf(json, sizeof(json), jwks_fixed, x);
	if ((set = jwks_parse(json, strlen(json), err, sizeof(err))) == NULL) {
		fprintf(stderr, "fuzz_jwt: %s\n", err);
		abort();
	}
	FUZZ_ASSERT(jwks_count(set) == 4);
	return 0;
}

static void
check_result(int rc, const struct jwt_claims *c, const char *err)
{
	FUZZ_ASSERT(rc == JWT_OK || rc == JWT_INVALID ||
	    rc == JWT_UNKNOWN_KID);
	FUZZ_ASSERT(memchr(c->user, '\0', sizeof(c->user)) != NULL);
	FUZZ_ASSERT(memchr(c->sub, '\0', sizeof(c->sub)) != NULL);
	FUZZ_ASSERT(memchr(c->scope, '\0', sizeof(c->scope)) != NULL);
	FUZZ_ASSERT(memchr(c->kid, '\0', sizeof(c->kid)) != NULL);
	if (rc != JWT_OK) {
		FUZZ_ASSERT(err[0] != '\0');
		FUZZ_ASSERT(c->user[0] == '\0' && c->sub[0] == '\0' &&
		    c->scope[0] == '\0' && c->exp == 0 && c->iat == 0);
		return;
	}
	FUZZ_ASSERT(err[0] == '\0');
	FUZZ_ASSERT(c->user[0] != '\0');
	FUZZ_ASSERT(c->exp + policy.leeway > NOW);
	for (size_t i = 0; c->user[i] != '\0'; i++)
		FUZZ_ASSERT((uint8_t)c->user[i] >= 0x20 &&
		    c->user[i] != 0x7f);
}

static void
verify(const char *token, size_t len)
{
	struct jwt_claims	 claims;
	char			 err[256];
	int			 rc;

	rc = jwt_verify(token, len, set, &policy, NOW, &claims, err,
	    sizeof(err));
	check_result(rc, &claims, err);
	rc = jws_verify_signature(token, len, set, policy.algorithms, err,
	    sizeof(err));
	FUZZ_ASSERT(rc == JWT_OK || err[0] != '\0');
}

/* header.payload.signature, signed with the fuzzer's key. */
static void
sign_and_verify(const uint8_t *h, size_t hlen, const uint8_t *p,
    size_t plen)
{
	EVP_MD_CTX	*md;
	uint8_t		 sig[64];
	size_t		 siglen = sizeof(sig), n;
	char		*tok;

	if ((tok = malloc(4 * (hlen + plen) / 3 + 128)) == NULL)
		abort();
	n = b64url(h, hlen, tok);
	tok[n++] = '.';
	n += b64url(p, plen, tok + n);
	if ((md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestSignInit(md, NULL, NULL, NULL, key) != 1 ||
	    EVP_DigestSign(md, sig, &siglen, (uint8_t *)tok, n) != 1)
		abort();
	EVP_MD_CTX_free(md);
	tok[n++] = '.';
	n += b64url(sig, siglen, tok + n);
	verify(tok, n);
	free(tok);
}

static void
jwks(const uint8_t *data, size_t size)
{
	struct jwks	*s;
	char		 err[256], why[256];

	if ((s = jwks_parse((const char *)data, size, err, sizeof(err))) ==
	    NULL) {
		FUZZ_ASSERT(err[0] != '\0');
		return;
	}
	FUZZ_ASSERT(jwks_count(s) > 0 && jwks_count(s) <= JWKS_MAX_KEYS);
	FUZZ_ASSERT(jwks_skipped(s, why, sizeof(why)) >= 0);
	(void)jws_verify_signature(rfc7515_a2, strlen(rfc7515_a2), s,
	    policy.algorithms, err, sizeof(err));
	jwks_free(s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t	*lf;

	if (size < 1 || size > JWT_MAX_TOKEN + 1)
		return 0;
	switch (data[0] % 4) {
	case 0:
		jwks(data + 1, size - 1);
		break;
	case 1:
		verify((const char *)data + 1, size - 1);
		break;
	case 2:
		sign_and_verify((const uint8_t *)header_fixed,
		    strlen(header_fixed), data + 1, size - 1);
		break;
	case 3:
		if ((lf = memchr(data + 1, '\n', size - 1)) == NULL)
			return 0;
		sign_and_verify(data + 1, (size_t)(lf - data - 1), lf + 1,
		    size - (size_t)(lf - data) - 1);
		break;
	}
	return 0;
}
