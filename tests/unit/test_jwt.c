/*
 * test_jwt.c -- unit tests of authd/jwt.c: access tokens signed with
 * RS256, ES256 and EdDSA verify and give their claims; expired, early,
 * foreign, forged and malformed tokens do not; the classic attacks
 * (alg none, HS256 with the public key as the secret, a key of one type
 * used for another algorithm, a key in the token's own header) fail;
 * a JWK Set keeps only keys fit for signatures.
 *
 * The keys are made afresh by OpenSSL for every test and the tokens
 * signed here.  The fixed vectors are RFC 7515 A.2 (RS256), A.3
 * (ES256) and A.1 (HS256, refused), and RFC 8037 A.4 (EdDSA), each
 * checked by hand with Python's cryptography package as well.
 */

#include <sys/types.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "config.h"
#include "jwt.h"

#define NOW	1700000000LL
#define ISS	"https://idp.example.org/realm"
#define AUD	"smtp.example.org"
#define ALL_ALGS (JWT_ALG_RS256 | JWT_ALG_ES256 | JWT_ALG_EDDSA)

/* everything a valid token has but its exp */
#define STD_NOIAT "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\"," \
		"\"username\":\"alice\",\"sub\":\"u-1\"," \
		"\"scope\":\"openid smtp\""
#define STD	STD_NOIAT ",\"iat\":1700000000"
#define P_OK	"{\"exp\":1700000300," STD "}"
#define H_RS	"{\"alg\":\"RS256\",\"typ\":\"at+jwt\",\"kid\":\"rsa1\"}"
#define H_ES	"{\"alg\":\"ES256\",\"typ\":\"at+jwt\",\"kid\":\"ec1\"}"
#define H_ED	"{\"alg\":\"EdDSA\",\"typ\":\"at+jwt\",\"kid\":\"ed1\"}"

static EVP_PKEY			*rsa, *ec, *ed;
static struct jwks		*set;
static struct jwt_policy	 policy;
static struct jwt_claims	 claims;
static char			 err[256];

/* what a test allocated, freed after it: the sanitizers count leaks */
static void	*garbage[512];
static int	 ngarbage;

static void *
keep(void *p)
{
	cr_assert_not_null(p);
	cr_assert_lt(ngarbage, (int)(sizeof(garbage) / sizeof(garbage[0])));
	garbage[ngarbage++] = p;
	return p;
}

static char *fmt(const char *, ...)
    __attribute__((__format__ (printf, 1, 2)));

static char *
fmt(const char *f, ...)
{
	va_list	 ap;
	char	*s;

	va_start(ap, f);
	cr_assert_geq(vasprintf(&s, f, ap), 0);
	va_end(ap);
	return keep(s);
}

static char *
b64url(const void *data, size_t len)
{
	char	*out, *p;
	int	 n;

	out = keep(malloc(4 * ((len + 2) / 3) + 1));
	n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (p = out; *p != '\0'; p++)
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	return out;
}

static unsigned char *
unb64url(const char *in, size_t len, size_t *outlen)
{
	char		*std;
	unsigned char	*out;
	size_t		 i, pad = (4 - len % 4) % 4;
	int		 n;

	std = keep(calloc(1, len + pad + 1));
	for (i = 0; i < len; i++)
		std[i] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	memset(std + len, '=', pad);
	out = keep(malloc(len + 3));
	n = EVP_DecodeBlock(out, (unsigned char *)std, (int)(len + pad));
	cr_assert_geq(n, 0);
	*outlen = (size_t)n - pad;
	return out;
}

/*
 * Each test runs in a process of its own, and an RSA key of 2048 bits
 * takes a tenth of a second to make: the runner makes one before the
 * tests and hands it down to them in the environment.
 */
#define RSA_ENV	"PORTCULLIS_TEST_JWT_RSA"

ReportHook(PRE_ALL)(struct criterion_test_set *tests)
{
	EVP_PKEY	*k;
	BIO		*bio;
	char		*pem, *s;
	long		 len;

	(void)tests;
	if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) == NULL)
		return;
	if ((bio = BIO_new(BIO_s_mem())) != NULL &&
	    PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) == 1 &&
	    (len = BIO_get_mem_data(bio, &pem)) > 0 &&
	    (s = strndup(pem, (size_t)len)) != NULL) {
		setenv(RSA_ENV, s, 1);
		free(s);
	}
	BIO_free(bio);
	EVP_PKEY_free(k);
}

static EVP_PKEY *
rsa_from_env(void)
{
	const char	*pem = getenv(RSA_ENV);
	BIO		*bio;
	EVP_PKEY	*k;

	if (pem == NULL || (bio = BIO_new_mem_buf(pem, -1)) == NULL)
		return NULL;
	k = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	return k;
}

static EVP_PKEY *
keygen(const char *type)
{
	EVP_PKEY	*k;

	if (strcmp(type, "RSA") == 0) {
		if ((k = rsa_from_env()) == NULL)
			k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	} else if (strcmp(type, "RSA1024") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	else if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	cr_assert_not_null(k, "keygen %s", type);
	return k;
}

static char *
bn_b64url(EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM		*bn = NULL;
	unsigned char	 buf[1024];
	int		 n;

	cr_assert_eq(EVP_PKEY_get_bn_param(k, param, &bn), 1, "%s", param);
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	BN_free(bn);
	cr_assert_gt(n, 0);
	return b64url(buf, (size_t)n);
}

/* The public JWK of k, with its kid (if any) and extra members. */
static char *
jwk_of(EVP_PKEY *k, const char *kid, const char *extra)
{
	char		*kidm = "";
	unsigned char	 raw[32];
	size_t		 len = sizeof(raw);

	if (kid != NULL)
		kidm = fmt(",\"kid\":\"%s\"", kid);
	if (EVP_PKEY_is_a(k, "RSA"))
		return fmt("{\"kty\":\"RSA\"%s,\"n\":\"%s\",\"e\":\"%s\"%s}",
		    kidm, bn_b64url(k, OSSL_PKEY_PARAM_RSA_N, 0),
		    bn_b64url(k, OSSL_PKEY_PARAM_RSA_E, 0), extra);
	if (EVP_PKEY_is_a(k, "EC"))
		return fmt("{\"kty\":\"EC\",\"crv\":\"P-256\"%s,\"x\":\"%s\","
		    "\"y\":\"%s\"%s}", kidm,
		    bn_b64url(k, OSSL_PKEY_PARAM_EC_PUB_X, 32),
		    bn_b64url(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32), extra);
	cr_assert_eq(EVP_PKEY_get_raw_public_key(k, raw, &len), 1);
	return fmt("{\"kty\":\"OKP\",\"crv\":\"Ed25519\"%s,\"x\":\"%s\"%s}",
	    kidm, b64url(raw, len), extra);
}

static struct jwks *
parse(const char *json)
{
	return jwks_parse(json, strlen(json), err, sizeof(err));
}

/* The signature of input by k, as JWS wants it, base64url. */
static char *
sign_input(EVP_PKEY *k, const char *input)
{
	EVP_MD_CTX		*ctx;
	ECDSA_SIG		*es;
	const unsigned char	*p;
	unsigned char		*sig, raw[64];
	size_t			 len;
	const char		*md = EVP_PKEY_is_a(k, "ED25519") ? NULL :
				    "SHA256";

	ctx = EVP_MD_CTX_new();
	cr_assert_eq(EVP_DigestSignInit_ex(ctx, NULL, md, NULL, NULL, k,
	    NULL), 1);
	cr_assert_eq(EVP_DigestSign(ctx, NULL, &len,
	    (const unsigned char *)input, strlen(input)), 1);
	sig = keep(malloc(len));
	cr_assert_eq(EVP_DigestSign(ctx, sig, &len,
	    (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	if (!EVP_PKEY_is_a(k, "EC"))
		return b64url(sig, len);
	/* RFC 7518 3.4: r and s, 32 octets each, not DER */
	p = sig;
	cr_assert_not_null(es = d2i_ECDSA_SIG(NULL, &p, (long)len));
	cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32), 32);
	cr_assert_eq(BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32), 32);
	ECDSA_SIG_free(es);
	return b64url(raw, sizeof(raw));
}

static char *
signing_input(const char *header, const char *payload)
{
	return fmt("%s.%s", b64url(header, strlen(header)),
	    b64url(payload, strlen(payload)));
}

static char *
token(EVP_PKEY *k, const char *header, const char *payload)
{
	char	*input = signing_input(header, payload);

	return fmt("%s.%s", input, sign_input(k, input));
}

/* An HMAC-SHA256 token (RFC 7518 3.2) with secret as its key. */
static char *
token_hs256(const char *header, const char *payload, const void *secret,
    size_t secretlen)
{
	char		*input = signing_input(header, payload);
	unsigned char	 mac[32];
	size_t		 len;

	cr_assert_not_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL,
	    secret, secretlen, (const unsigned char *)input, strlen(input),
	    mac, sizeof(mac), &len));
	return fmt("%s.%s", input, b64url(mac, len));
}

static int
verify_at(const char *tok, int64_t now)
{
	return jwt_verify(tok, strlen(tok), set, &policy, now, &claims, err,
	    sizeof(err));
}

static int
verify(const char *tok)
{
	return verify_at(tok, NOW);
}

static void
setup(void)
{
	rsa = keygen("RSA");
	ec = keygen("EC");
	ed = keygen("ED25519");
	set = parse(fmt("{\"keys\":[%s,%s,%s]}",
	    jwk_of(rsa, "rsa1", ",\"use\":\"sig\",\"alg\":\"RS256\""),
	    jwk_of(ec, "ec1", ",\"alg\":\"ES256\""),
	    jwk_of(ed, "ed1", "")));
	cr_assert_not_null(set, "%s", err);
	policy.algorithms = ALL_ALGS;
	policy.issuer = ISS;
	policy.audience = AUD;
	policy.scope = "smtp";
	policy.identity.user_claim = "";
	policy.leeway = 30;
	/* Most tokens below have no typ; Test(jwt, typ*) sets it strict. */
	policy.typ_relaxed = 1;
}

static void
teardown(void)
{
	jwks_free(set);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
	while (ngarbage > 0)
		free(garbage[--ngarbage]);
}

TestSuite(jwt, .init = setup, .fini = teardown, .timeout = 30);
TestSuite(jwks, .fini = teardown, .timeout = 30);
TestSuite(jws_vectors, .fini = teardown, .timeout = 30);

/* ---- valid tokens ---- */

Test(jwt, valid_tokens_of_each_algorithm)
{
	cr_assert_eq(jwks_count(set), 3);
	cr_expect_eq(verify(token(rsa, H_RS, P_OK)), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "alice");
	cr_expect_str_eq(claims.sub, "u-1");
	cr_expect_str_eq(claims.scope, "openid smtp");
	cr_expect_str_eq(claims.kid, "rsa1");
	cr_expect_eq(claims.exp, NOW + 300);
	cr_expect_eq(claims.iat, NOW);
	cr_expect_str_eq(err, "");
	cr_expect_eq(verify(token(ec, H_ES, P_OK)), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.kid, "ec1");
	cr_expect_eq(verify(token(ed, H_ED, P_OK)), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.kid, "ed1");
	cr_expect_str_eq(claims.user, "alice");
	/* RFC 9864 names EdDSA with Ed25519 "Ed25519" */
	cr_expect_eq(verify(token(ed, "{\"alg\":\"Ed25519\",\"kid\":\"ed1\"}",
	    P_OK)), JWT_OK, "%s", err);
}

/* RFC 7515 6: without a kid, any key of the algorithm's type may do. */
Test(jwt, without_kid_every_key_of_the_type_is_tried)
{
	EVP_PKEY	*ec2 = keygen("EC");

	jwks_free(set);
	set = parse(fmt("{\"keys\":[%s,%s,%s]}", jwk_of(rsa, NULL, ""),
	    jwk_of(ec, NULL, ""), jwk_of(ec2, NULL, "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(verify(token(rsa, "{\"alg\":\"RS256\"}", P_OK)), JWT_OK,
	    "%s", err);
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\"}", P_OK)), JWT_OK,
	    "%s", err);
	cr_expect_eq(verify(token(ec2, "{\"alg\":\"ES256\"}", P_OK)), JWT_OK,
	    "%s", err);
	cr_expect_str_eq(claims.kid, "");
	/* no Ed25519 key at all */
	cr_expect_eq(verify(token(ed, "{\"alg\":\"EdDSA\"}", P_OK)),
	    JWT_INVALID);
	/* a kid, but the keys have none: the set may be stale */
	cr_expect_eq(verify(token(ec, H_ES, P_OK)), JWT_UNKNOWN_KID);
	EVP_PKEY_free(ec2);
}

/* RFC 7517 4.5 wants distinct kids; some sets reuse one per type. */
Test(jwt, one_kid_two_types)
{
	jwks_free(set);
	set = parse(fmt("{\"keys\":[%s,%s]}", jwk_of(rsa, "k", ""),
	    jwk_of(ec, "k", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"k\"}",
	    P_OK)), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(rsa, "{\"alg\":\"RS256\",\"kid\":\"k\"}",
	    P_OK)), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ed, "{\"alg\":\"EdDSA\",\"kid\":\"k\"}",
	    P_OK)), JWT_INVALID);
}

/* RFC 9068 4: strict, at+jwt only; relaxed, JWT or none too */
Test(jwt, typ)
{
	static const char *const strict[] = {
		"at+jwt", "application/at+jwt", "AT+JWT", "Application/AT+JWT",
	};
	static const char *const relaxed[] = {
		"JWT", "jwt", "application/jwt",
	};
	static const char *const bad[] = {
		"\"JOSE\"", "\"id_token+jwt\"", "\"\"", "\"at+jwt \"", "1",
		"null", "[\"JWT\"]", "\"application/\"", "\"text/jwt\"",
	};
	size_t	 i;
	int	 r;

	for (r = 0; r <= 1; r++) {
		policy.typ_relaxed = r;
		for (i = 0; i < sizeof(strict) / sizeof(strict[0]); i++)
			cr_expect_eq(verify(token(ec, fmt("{\"alg\":\"ES256\","
			    "\"kid\":\"ec1\",\"typ\":\"%s\"}", strict[i]),
			    P_OK)), JWT_OK, "%s: %s", strict[i], err);
		for (i = 0; i < sizeof(relaxed) / sizeof(relaxed[0]); i++) {
			cr_expect_eq(verify(token(ec, fmt("{\"alg\":\"ES256\","
			    "\"kid\":\"ec1\",\"typ\":\"%s\"}", relaxed[i]),
			    P_OK)), r ? JWT_OK : JWT_INVALID, "%s", relaxed[i]);
			if (!r) {
				cr_expect_str_eq(err, "typ not at+jwt (RFC 9068 "
				    "4)");
				cr_expect_str_eq(claims.why,
				    "not an access token (typ)");
			}
		}
		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
			cr_expect_eq(verify(token(ec, fmt("{\"alg\":\"ES256\","
			    "\"kid\":\"ec1\",\"typ\":%s}", bad[i]), P_OK)),
			    JWT_INVALID, "%s", bad[i]);
		/* no typ at all: RFC 9068 4 requires one */
		cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\","
		    "\"kid\":\"ec1\"}", P_OK)), r ? JWT_OK : JWT_INVALID,
		    "%s", err);
	}
}

/* ---- times: exp, nbf, iat and the leeway ---- */

Test(jwt, expired_and_leeway_edges)
{
	char	*tok = token(ec, H_ES, "{\"exp\":1700000000,"
	    "\"iat\":1699999000," STD_NOIAT "}");

	/* valid while now < exp + leeway (RFC 7519 4.1.4) */
	cr_expect_eq(verify_at(tok, NOW), JWT_OK, "%s", err);
	cr_expect_eq(verify_at(tok, NOW + 29), JWT_OK, "%s", err);
	cr_expect_eq(verify_at(tok, NOW + 30), JWT_INVALID);
	cr_expect_str_eq(err, "expired 30 s ago");
	cr_expect_str_eq(claims.user, "");
	cr_expect_eq(verify_at(tok, NOW + 86400), JWT_INVALID);
	policy.leeway = 0;
	cr_expect_eq(verify_at(tok, NOW - 1), JWT_OK, "%s", err);
	cr_expect_eq(verify_at(tok, NOW), JWT_INVALID);
	/* a negative leeway is none */
	policy.leeway = -100;
	cr_expect_eq(verify_at(tok, NOW - 1), JWT_OK, "%s", err);
	cr_expect_eq(verify_at(tok, NOW), JWT_INVALID);
}

Test(jwt, nbf_in_the_future)
{
	char	*tok = token(ec, H_ES,
	    "{\"exp\":1700000300,\"nbf\":1700000030," STD "}");

	/* valid once nbf - leeway <= now (RFC 7519 4.1.5) */
	cr_expect_eq(verify_at(tok, NOW), JWT_OK, "%s", err);
	cr_expect_eq(verify_at(tok, NOW - 1), JWT_INVALID);
	cr_expect_str_eq(err, "not valid for 31 s (nbf)");
	policy.leeway = 0;
	cr_expect_eq(verify_at(tok, NOW + 29), JWT_INVALID);
	cr_expect_eq(verify_at(tok, NOW + 30), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ec, H_ES,
	    "{\"exp\":1700000300,\"nbf\":\"soon\"," STD "}")), JWT_INVALID);
}

Test(jwt, iat_in_the_future)
{
	static const char	 p[] = "{\"exp\":1700000300,\"iss\":\"" ISS
	    "\",\"aud\":\"" AUD "\",\"username\":\"alice\",\"scope\":\"smtp\",";

	cr_expect_eq(verify(token(ec, H_ES, fmt("%s\"iat\":%lld}", p,
	    NOW + 30))), JWT_OK, "%s", err);
	cr_expect_eq(claims.iat, NOW + 30);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s\"iat\":%lld}", p,
	    NOW + 31))), JWT_INVALID);
	cr_expect_str_eq(err, "issued 31 s in the future");
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s\"iat\":\"now\"}", p))),
	    JWT_INVALID);
	/* no iat is fine, and says 0 */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s\"sub\":\"x\"}", p))),
	    JWT_OK, "%s", err);
	cr_expect_eq(claims.iat, 0);
}

Test(jwt, exp_missing_or_not_a_date)
{
	static const char *const bad[] = {
		"{" STD "}",
		"{\"exp\":\"1700000300\"," STD "}",
		"{\"exp\":null," STD "}",
		"{\"exp\":true," STD "}",
		"{\"exp\":[1700000300]," STD "}",
		"{\"exp\":-1," STD "}",
		"{\"exp\":1e300," STD "}",
		"{\"exp\":9223372036854775807," STD "}",
		"{\"exp\":253402300800," STD "}",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(token(ec, H_ES, bad[i])), JWT_INVALID,
		    "%s", bad[i]);
	cr_expect_eq(verify(token(ec, H_ES, "{" STD "}")), JWT_INVALID);
	cr_expect_str_eq(err, "no exp");
	/* RFC 7519 2: a NumericDate may have a fraction; exp rounds down */
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300.5," STD "}")),
	    JWT_OK, "%s", err);
	cr_expect_eq(claims.exp, NOW + 300);
	policy.leeway = 0;
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000000.5," STD "}")),
	    JWT_INVALID);
}

/* ---- issuer, audience ---- */

Test(jwt, issuer)
{
	static const char	 rest[] = "\"aud\":\"" AUD "\",\"username\":"
	    "\"alice\",\"scope\":\"smtp\"";

	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":\"https://evil.example\",%s}", rest))), JWT_INVALID);
	cr_expect_str_eq(err, "wrong issuer");
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":\"" ISS "/\",%s}", rest))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":[\"" ISS "\"],%s}", rest))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,%s}",
	    rest))), JWT_INVALID);
	/* not checked when the policy names none */
	policy.issuer = "";
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,%s}",
	    rest))), JWT_OK, "%s", err);
	policy.issuer = NULL;
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":\"https://evil.example\",%s}", rest))), JWT_OK, "%s",
	    err);
}

Test(jwt, audience)
{
	static const char	 p[] = "{\"exp\":1700000300,\"iss\":\"" ISS
	    "\",\"username\":\"alice\",\"scope\":\"smtp\"";

	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":\"other\"}", p))),
	    JWT_INVALID);
	cr_expect_str_eq(err, "audience not ours");
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":\"" AUD "x\"}",
	    p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s}", p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":[\"a\",\"" AUD
	    "\",\"b\"]}", p))), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":[\"" AUD "\"]}",
	    p))), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":[\"a\",\"b\"]}",
	    p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":[]}", p))),
	    JWT_INVALID);
	/* RFC 7519 4.1.3: an array of strings, nothing else */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":[\"" AUD "\",1]}",
	    p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"aud\":{\"" AUD "\":1}}",
	    p))), JWT_INVALID);
	policy.audience = "";
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s}", p))), JWT_OK, "%s",
	    err);
}

/* ---- scope ---- */

Test(jwt, scope)
{
	static const char	 p[] = "{\"exp\":1700000300,\"iss\":\"" ISS
	    "\",\"aud\":\"" AUD "\",\"username\":\"alice\"";
	static const char *const good[] = {
		"\"scope\":\"smtp\"", "\"scope\":\"openid smtp email\"",
		"\"scope\":\"  smtp  \"", "\"scp\":[\"openid\",\"smtp\"]",
		"\"scp\":\"openid smtp\"", "\"scope\":[\"smtp\"]",
	};
	static const char *const bad[] = {
		"\"scope\":\"smtpx\"", "\"scope\":\"xsmtp smtp-send\"",
		"\"scope\":\"SMTP\"", "\"scope\":\"\"", "\"scope\":\"openid\"",
		"\"scp\":[\"smtpx\"]", "\"scp\":[\"openid smtp\"]",
		"\"scp\":[\"smtp\",1]", "\"scope\":1", "\"scope\":null",
		/* "scope" wins over "scp" */
		"\"scope\":\"openid\",\"scp\":[\"smtp\"]",
		"\"other\":\"smtp\"",
	};
	size_t	 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect_eq(verify(token(ec, H_ES, fmt("%s,%s}", p, good[i]))),
		    JWT_OK, "%s: %s", good[i], err);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(token(ec, H_ES, fmt("%s,%s}", p, bad[i]))),
		    JWT_INVALID, "%s", bad[i]);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"scope\":\"smtpx\"}",
	    p))), JWT_INVALID);
	cr_expect_str_eq(err, "scope smtp not granted");
	/* every scope the policy names */
	policy.scope = "smtp openid";
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"scope\":\"openid "
	    "smtp\"}", p))), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"scope\":\"smtp\"}",
	    p))), JWT_INVALID);
	/* none needed: none there is fine */
	policy.scope = "";
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s}", p))), JWT_OK, "%s",
	    err);
	cr_expect_str_eq(claims.scope, "");
	policy.scope = NULL;
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"scope\":1}", p))),
	    JWT_OK, "%s", err);
}

Test(jwt, scope_copy_keeps_whole_scopes)
{
	char	 many[600];
	size_t	 i;

	for (i = 0; i < 100; i++)
		memcpy(many + 6 * i, i == 99 ? "smtp  " : "scope ", 6);
	many[599] = '\0';
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"username\":\"u\","
	    "\"scope\":\"%s\"}", many))), JWT_OK, "%s", err);
	/* 42 of the 99 "scope"s fit in 256 octets, "smtp" does not */
	cr_expect_eq(strlen(claims.scope), 42 * 6 - 1);
	cr_expect_eq(claims.scope[strlen(claims.scope) - 1], 'e');
	cr_expect_eq(verify(token(ec, H_ES, fmt("{\"exp\":1700000300,"
	    "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"username\":\"u\","
	    "\"scp\":[\"a\",\"smtp\",\"b\"]}"))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.scope, "a smtp b");
}

/* ---- the user ---- */

Test(jwt, user_claim)
{
	static const char	 p[] = "{\"exp\":1700000300,\"iss\":\"" ISS
	    "\",\"aud\":\"" AUD "\",\"scope\":\"smtp\"";
	char			 long_name[300];

	/* "username" first, then "sub" */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"s\","
	    "\"username\":\"bob\"}", p))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "bob");
	cr_expect_str_eq(claims.sub, "s");
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"s\"}", p))),
	    JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "s");
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s}", p))), JWT_INVALID);
	cr_expect_str_eq(err, "no sub claim");
	/* a username that is there but unusable is no reason to take sub */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"s\","
	    "\"username\":\"\"}", p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"s\","
	    "\"username\":7}", p))), JWT_INVALID);
	/* control characters: C0, DEL, C1 */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":"
	    "\"a\\nb\"}", p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":"
	    "\"a\\u007fb\"}", p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":"
	    "\"a\\u0085b\"}", p))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":"
	    "\"a\\u0000b\"}", p))), JWT_INVALID);
	/* UTF-8 is fine */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":"
	    "\"j\\u00fcrgen\"}", p))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "j\xc3\xbcrgen");
	/* under 256 octets */
	memset(long_name, 'a', sizeof(long_name));
	long_name[255] = '\0';
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"%s\"}", p,
	    long_name))), JWT_OK, "%s", err);
	cr_expect_eq(strlen(claims.user), 255);
	long_name[255] = 'a';
	long_name[256] = '\0';
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"%s\"}", p,
	    long_name))), JWT_INVALID);
	/* a sub too long for the log is left out, not fatal */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"u\","
	    "\"sub\":\"%s\"}", p, long_name))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.sub, "");
	/* a claim the policy names: that one, and no other */
	policy.identity.user_claim = "email";
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"u\","
	    "\"email\":\"u@example.org\"}", p))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "u@example.org");
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"u\","
	    "\"sub\":\"s\"}", p))), JWT_INVALID);
	cr_expect_str_eq(err, "no email claim");
	policy.identity.user_claim = "sub";
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"username\":\"u\","
	    "\"sub\":\"s\"}", p))), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "s");
}

/* ---- whose token: one rule for JWTs and introspection answers ---- */

static const char *
identity_of(const char *json, const struct token_rules *r, char *user,
    char *client)
{
	json_t		*o;
	const char	*why;

	o = json_loads(json, 0, NULL);
	cr_assert_not_null(o, "%s", json);
	why = token_identity(o, r, user, 256, client, 256, err, sizeof(err));
	json_decref(o);
	return why;
}

/* RFC 9068 5: a client credentials token's sub is the client itself. */
Test(jwt, token_of_a_client_names_no_user)
{
	static const char	 p[] = "{\"exp\":1700000300,\"iss\":\"" ISS
	    "\",\"aud\":\"" AUD "\",\"scope\":\"smtp\"";
	struct token_rules	 none = { NULL, NULL, NULL };
	struct token_rules	 mail = { "preferred_username", NULL, NULL };
	char			 user[256], client[256];

	/* the JWT of a client credentials grant, as oidc-provider makes it */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"portcullis\","
	    "\"client_id\":\"portcullis\"}", p))), JWT_INVALID);
	cr_expect_str_eq(claims.why, "token of no user");
	cr_expect_str_eq(claims.user, "");
	cr_expect_str_eq(err, "sub is the token's client id: a client's "
	    "token, of no user");
	/* Keycloak names the client in azp */
	cr_expect_eq(verify(token(ec, H_ES, fmt("%s,\"sub\":\"svc\","
	    "\"azp\":\"svc\"}", p))), JWT_INVALID);
	cr_expect_str_eq(claims.why, "token of no user");
	/* a username beside it does not make it a user's token */
	cr_expect_str_eq(identity_of("{\"sub\":\"c\",\"client_id\":\"c\","
	    "\"username\":\"c\"}", &none, user, client), "token of no user");
	/* a user's token of the same client is fine */
	cr_expect_null(identity_of("{\"sub\":\"u-1\",\"client_id\":\"c\"}",
	    &none, user, client));
	cr_expect_str_eq(user, "u-1");
	cr_expect_str_eq(client, "c");
	/* the introspection answers of RFC 7662 2.2, the same rule */
	cr_expect_null(identity_of("{\"active\":true,\"client_id\":\"c\","
	    "\"username\":\"alice\",\"sub\":\"alice\"}", &none, user,
	    client));
	cr_expect_str_eq(user, "alice");
	cr_expect_str_eq(identity_of("{\"active\":true,\"client_id\":"
	    "\"c\"}", &none, user, client), "token of no user");
	cr_expect_str_eq(err, "no sub claim");
	cr_expect_str_eq(identity_of("{\"active\":true,\"client_id\":\"c\","
	    "\"sub\":\"c\"}", &none, user, client), "token of no user");
	/* a configured user claim: present, whatever sub is; absent, no */
	cr_expect_null(identity_of("{\"sub\":\"c\",\"client_id\":\"c\","
	    "\"preferred_username\":\"bob\"}", &mail, user, client));
	cr_expect_str_eq(user, "bob");
	cr_expect_str_eq(identity_of("{\"sub\":\"u-1\",\"client_id\":"
	    "\"c\",\"username\":\"bob\"}", &mail, user, client),
	    "token of no user");
	cr_expect_str_eq(err, "no preferred_username claim");
	cr_expect_str_eq(user, "");
	cr_expect_str_eq(identity_of("{\"preferred_username\":null}", &mail,
	    user, client), "token of no user");
	cr_expect_str_eq(identity_of("{\"preferred_username\":[\"a\"]}",
	    &mail, user, client), "unusable user in token");
}

Test(jwt, allowed_clients)
{
	struct token_rules	 some = { NULL, NULL, "mail-app  thunderbird" };
	struct token_rules	 appid = { NULL, "appid", "mail-app" };
	char			 user[256], client[256];

	cr_expect_null(identity_of("{\"sub\":\"u\",\"client_id\":"
	    "\"mail-app\"}", &some, user, client));
	cr_expect_null(identity_of("{\"sub\":\"u\",\"azp\":"
	    "\"thunderbird\"}", &some, user, client));
	cr_expect_str_eq(client, "thunderbird");
	/* client_id first, azp only without it */
	cr_expect_str_eq(identity_of("{\"sub\":\"u\",\"client_id\":\"evil\","
	    "\"azp\":\"mail-app\"}", &some, user, client),
	    "client not allowed");
	cr_expect_str_eq(err, "client \"evil\" not allowed");
	cr_expect_str_eq(identity_of("{\"sub\":\"u\",\"client_id\":"
	    "\"mail\"}", &some, user, client), "client not allowed");
	cr_expect_str_eq(identity_of("{\"sub\":\"u\"}", &some, user,
	    client), "client not allowed");
	cr_expect_str_eq(err, "no azp claim: its client is unknown");
	cr_expect_str_eq(identity_of("{\"sub\":\"u\",\"client_id\":7}",
	    &some, user, client), "client not allowed");
	/* a configured claim, and no other */
	cr_expect_null(identity_of("{\"sub\":\"u\",\"appid\":"
	    "\"mail-app\"}", &appid, user, client));
	cr_expect_str_eq(identity_of("{\"sub\":\"u\",\"client_id\":"
	    "\"mail-app\"}", &appid, user, client), "client not allowed");
	cr_expect_str_eq(err, "no appid claim: its client is unknown");
	/* and through jwt_verify */
	policy.identity.clients = "mail-app";
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300," STD
	    ",\"client_id\":\"other\"}")), JWT_INVALID);
	cr_expect_str_eq(claims.why, "client not allowed");
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300," STD
	    ",\"client_id\":\"mail-app\"}")), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.client, "mail-app");
}

/* Keycloak: aud an array, ours among others */
Test(jwt, audience_array)
{
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300,\"iss\":\""
	    ISS "\",\"aud\":[\"account\",\"" AUD "\"],\"username\":"
	    "\"alice\",\"scope\":\"smtp\"}")), JWT_OK, "%s", err);
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300,\"iss\":\""
	    ISS "\",\"aud\":[\"account\"],\"username\":\"alice\","
	    "\"scope\":\"smtp\"}")), JWT_INVALID);
}

/* ---- the algorithm ---- */

Test(jwt, alg_none)
{
	char	*input = signing_input("{\"alg\":\"none\"}", P_OK);

	cr_expect_eq(verify(fmt("%s.", input)), JWT_INVALID);
	cr_expect_str_eq(err, "alg \"none\" refused");
	cr_expect_eq(verify(input), JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.", signing_input("{\"alg\":\"none\","
	    "\"kid\":\"rsa1\"}", P_OK))), JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.", signing_input("{\"alg\":\"None\"}",
	    P_OK))), JWT_INVALID);
	/* with a real signature too */
	cr_expect_eq(verify(fmt("%s.%s", input, sign_input(rsa, input))),
	    JWT_INVALID);
	/* and whatever the policy says */
	policy.algorithms = 0xffffffff;
	cr_expect_eq(verify(fmt("%s.", input)), JWT_INVALID);
}

/*
 * The attack of 2015: a verifier that takes the algorithm from the
 * token checks an HMAC made with the RSA public key as its secret.
 */
Test(jwt, hs256_with_the_public_key_as_secret)
{
	BIO	*bio = BIO_new(BIO_s_mem());
	char	*pem, *jwk = jwk_of(rsa, "rsa1", "");
	long	 len;

	cr_assert_eq(PEM_write_bio_PUBKEY(bio, rsa), 1);
	len = BIO_get_mem_data(bio, &pem);
	cr_assert_gt(len, 0);
	policy.algorithms = 0xffffffff;
	cr_expect_eq(verify(token_hs256("{\"alg\":\"HS256\",\"typ\":\"JWT\","
	    "\"kid\":\"rsa1\"}", P_OK, pem, (size_t)len)), JWT_INVALID);
	cr_expect_str_eq(err, "alg \"HS256\" refused");
	cr_expect_eq(verify(token_hs256("{\"alg\":\"HS256\"}", P_OK, pem,
	    (size_t)len)), JWT_INVALID);
	cr_expect_eq(verify(token_hs256("{\"alg\":\"HS256\",\"kid\":\"rsa1\"}",
	    P_OK, jwk, strlen(jwk))), JWT_INVALID);
	BIO_free(bio);
}

/* A set with a symmetric key: skipped, and HS256 refused anyway. */
Test(jwt, oct_key_never_used)
{
	static const char	 k[] = "secretsecretsecretsecretsecret!!";

	jwks_free(set);
	set = parse(fmt("{\"keys\":[{\"kty\":\"oct\",\"kid\":\"h\","
	    "\"k\":\"%s\"},%s]}", b64url(k, 32), jwk_of(ec, "ec1", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), 1);
	cr_expect_eq(verify(token_hs256("{\"alg\":\"HS256\",\"kid\":\"h\"}",
	    P_OK, k, 32)), JWT_INVALID);
}

Test(jwt, other_algorithms_refused)
{
	static const char *const algs[] = {
		"HS256", "HS384", "HS512", "PS256", "RS384", "RS512",
		"ES384", "ES512", "ES256K", "Ed448", "rs256", "RS256 ", "",
		"EDDSA",
	};
	char	*input;
	size_t	 i;

	policy.algorithms = 0xffffffff;
	for (i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		input = signing_input(fmt("{\"alg\":\"%s\",\"kid\":\"rsa1\"}",
		    algs[i]), P_OK);
		cr_expect_eq(verify(fmt("%s.%s", input, sign_input(rsa,
		    input))), JWT_INVALID, "%s", algs[i]);
	}
	cr_expect_eq(verify(token(rsa, "{\"kid\":\"rsa1\"}", P_OK)),
	    JWT_INVALID);
	cr_expect_str_eq(err, "header has no alg");
	cr_expect_eq(verify(token(rsa, "{\"alg\":256,\"kid\":\"rsa1\"}",
	    P_OK)), JWT_INVALID);
}

/* RFC 7515 10.7 and RFC 8725 3.1: the key decides, not the token. */
Test(jwt, algorithm_must_fit_the_key)
{
	/* ES256 on an RSA kid, signed with the EC key */
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}",
	    P_OK)), JWT_INVALID);
	cr_expect_str_eq(err, "no ES256 key of that kid");
	cr_expect_eq(verify(token(rsa, "{\"alg\":\"RS256\",\"kid\":\"ec1\"}",
	    P_OK)), JWT_INVALID);
	cr_expect_eq(verify(token(ed, "{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}",
	    P_OK)), JWT_INVALID);
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ed1\"}",
	    P_OK)), JWT_INVALID);
}

Test(jwt, algorithm_disabled_by_policy)
{
	policy.algorithms = JWT_ALG_ES256 | JWT_ALG_EDDSA;
	cr_expect_eq(verify(token(rsa, H_RS, P_OK)), JWT_INVALID);
	cr_expect_str_eq(err, "alg RS256 not enabled");
	cr_expect_eq(verify(token(ec, H_ES, P_OK)), JWT_OK, "%s", err);
	policy.algorithms = JWT_ALG_RS256;
	cr_expect_eq(verify(token(ec, H_ES, P_OK)), JWT_INVALID);
	cr_expect_eq(verify(token(ed, H_ED, P_OK)), JWT_INVALID);
	cr_expect_eq(verify(token(rsa, H_RS, P_OK)), JWT_OK, "%s", err);
	policy.algorithms = 0;
	cr_expect_eq(verify(token(rsa, H_RS, P_OK)), JWT_INVALID);
}

/* A key in the token's own header is never trusted (RFC 8725 3.10). */
Test(jwt, key_in_header_ignored)
{
	EVP_PKEY	*evil = keygen("EC");
	char		*jwk = jwk_of(evil, NULL, "");

	cr_expect_eq(verify(token(evil, fmt("{\"alg\":\"ES256\",\"jwk\":%s}",
	    jwk), P_OK)), JWT_INVALID);
	cr_expect_str_eq(err, "bad signature");
	cr_expect_eq(verify(token(evil, fmt("{\"alg\":\"ES256\",\"kid\":"
	    "\"ec1\",\"jwk\":%s,\"jku\":\"https://evil.example/jwks\"}",
	    jwk), P_OK)), JWT_INVALID);
	EVP_PKEY_free(evil);
}

Test(jwt, unknown_kid)
{
	EVP_PKEY	*other = keygen("EC");

	cr_expect_eq(verify(token(other, "{\"alg\":\"ES256\",\"kid\":\"new\"}",
	    P_OK)), JWT_UNKNOWN_KID);
	cr_expect_str_eq(err, "unknown kid");
	cr_expect_str_eq(claims.kid, "new");
	cr_expect_str_eq(claims.user, "");
	/* and after the refresh, the new key verifies */
	jwks_free(set);
	set = parse(fmt("{\"keys\":[%s,%s]}", jwk_of(ec, "ec1", ""),
	    jwk_of(other, "new", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(verify(token(other, "{\"alg\":\"ES256\",\"kid\":\"new\"}",
	    P_OK)), JWT_OK, "%s", err);
	/* kid is case-sensitive (RFC 7515 4.1.4) */
	cr_expect_eq(verify(token(other, "{\"alg\":\"ES256\",\"kid\":\"NEW\"}",
	    P_OK)), JWT_UNKNOWN_KID);
	/* a kid no key could have */
	cr_expect_eq(verify(token(ec, fmt("{\"alg\":\"ES256\",\"kid\":"
	    "\"%0200d\"}", 0), P_OK)), JWT_INVALID);
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":1}", P_OK)),
	    JWT_INVALID);
	EVP_PKEY_free(other);
}

/* ---- forgeries ---- */

static void
tamper_payload(EVP_PKEY *k, const char *header)
{
	char	*tok = token(k, header, P_OK), *sig = strrchr(tok, '.');
	char	*forged;

	forged = fmt("%s%s", signing_input(header, "{\"exp\":1700000300,"
	    "\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"username\":\"root\","
	    "\"scope\":\"openid smtp\"}"), sig);
	cr_expect_eq(verify(forged), JWT_INVALID, "%s", header);
	cr_expect_str_eq(err, "bad signature");
	cr_expect_str_eq(claims.user, "");
}

Test(jwt, tampered_payload)
{
	tamper_payload(rsa, H_RS);
	tamper_payload(ec, H_ES);
	tamper_payload(ed, H_ED);
}

static void
tamper_signature(EVP_PKEY *k, const char *header)
{
	char		*tok = token(k, header, P_OK);
	char		*dot = strrchr(tok, '.');
	unsigned char	*sig;
	size_t		 len, i;

	sig = unb64url(dot + 1, strlen(dot + 1), &len);
	*dot = '\0';
	for (i = 0; i < len; i += len / 4) {
		sig[i] ^= 0x01;
		cr_expect_eq(verify(fmt("%s.%s", tok, b64url(sig, len))),
		    JWT_INVALID, "%s octet %zu", header, i);
		sig[i] ^= 0x01;
	}
	cr_expect_eq(verify(fmt("%s.%s", tok, b64url(sig, len))), JWT_OK,
	    "%s", err);
	/* too short, too long, empty */
	cr_expect_eq(verify(fmt("%s.%s", tok, b64url(sig, len - 1))),
	    JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.%s", tok, b64url(sig + 1, len - 1))),
	    JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.%sAAA", tok, b64url(sig, len - 1))),
	    JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.", tok)), JWT_INVALID);
}

Test(jwt, tampered_signature)
{
	tamper_signature(rsa, H_RS);
	tamper_signature(ec, H_ES);
	tamper_signature(ed, H_ED);
}

/* RFC 7518 3.4: r||s; the DER that OpenSSL makes is no JWS signature */
Test(jwt, es256_signature_in_der_refused)
{
	char		*input = signing_input(H_ES, P_OK);
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	unsigned char	 der[80];
	size_t		 len = sizeof(der);

	cr_assert_eq(EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL,
	    ec, NULL), 1);
	cr_assert_eq(EVP_DigestSign(ctx, der, &len,
	    (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	cr_expect_eq(verify(fmt("%s.%s", input, b64url(der, len))),
	    JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.%s", input, sign_input(ec, input))),
	    JWT_OK, "%s", err);
}

/* RFC 7518 3.3: RS256 is PKCS #1 v1.5; a PSS signature is not one */
Test(jwt, rs256_is_pkcs1_v1_5)
{
	char		*input = signing_input(H_RS, P_OK);
	EVP_MD_CTX	*ctx = EVP_MD_CTX_new();
	EVP_PKEY_CTX	*pctx;
	unsigned char	 sig[256];
	size_t		 len = sizeof(sig);

	cr_assert_eq(EVP_DigestSignInit_ex(ctx, &pctx, "SHA256", NULL, NULL,
	    rsa, NULL), 1);
	cr_assert_gt(EVP_PKEY_CTX_set_rsa_padding(pctx,
	    RSA_PKCS1_PSS_PADDING), 0);
	cr_assert_eq(EVP_DigestSign(ctx, sig, &len,
	    (const unsigned char *)input, strlen(input)), 1);
	EVP_MD_CTX_free(ctx);
	cr_assert_eq(len, 256);
	cr_expect_eq(verify(fmt("%s.%s", input, b64url(sig, len))),
	    JWT_INVALID);
	cr_expect_str_eq(err, "bad signature");
}

/* ---- the compact serialisation ---- */

static char *
replace_char(const char *tok, size_t at, char c)
{
	char	*s = fmt("%s", tok);

	s[at] = c;
	return s;
}

Test(jwt, strict_base64url)
{
	char	*tok = token(ed, H_ED, P_OK);
	char	*dot1 = strchr(tok, '.'), *dot2 = strrchr(tok, '.');
	size_t	 len = strlen(tok), h = (size_t)(dot1 - tok);
	size_t	 s = (size_t)(dot2 - tok) + 1;
	char	 last;

	cr_assert_eq(verify(tok), JWT_OK, "%s", err);
	/* padding anywhere */
	cr_expect_eq(verify(fmt("%s==", tok)), JWT_INVALID);
	cr_expect_eq(verify(fmt("%.*s=%s", (int)h, tok, dot1)), JWT_INVALID);
	cr_expect_eq(verify(fmt("%.*s=%s", (int)(dot2 - tok), tok, dot2)),
	    JWT_INVALID);
	/* the other alphabet, RFC 4648 4 */
	cr_expect_eq(verify(replace_char(tok, s + 3, '+')), JWT_INVALID);
	cr_expect_eq(verify(replace_char(tok, s + 3, '/')), JWT_INVALID);
	cr_expect_eq(verify(replace_char(tok, 2, '+')), JWT_INVALID);
	/* white space */
	cr_expect_eq(verify(fmt("%s\n", tok)), JWT_INVALID);
	cr_expect_eq(verify(fmt(" %s", tok)), JWT_INVALID);
	cr_expect_eq(verify(fmt("%.*s %s", (int)(s + 4), tok, tok + s + 4)),
	    JWT_INVALID);
	cr_expect_eq(verify(fmt("%.*s\r\n%s", (int)h, tok, dot1)),
	    JWT_INVALID);
	cr_expect_eq(err[0] != '\0', 1);
	/*
	 * 64 octets of signature are 86 characters, the last with four
	 * bits that make no octet.  Set one: same octets, other token.
	 */
	cr_assert_eq(len - s, 86);
	last = tok[len - 1];
	cr_assert(strchr("AQgw", last) != NULL, "%c", last);
	cr_expect_eq(verify(replace_char(tok, len - 1, last + 1)),
	    JWT_INVALID);
	cr_expect_str_eq(err, "signature not base64url");
	/* one character too many: no octet at all */
	cr_expect_eq(verify(fmt("%sA", tok)), JWT_INVALID);
	/* a NUL inside, with the length counting it */
	tok = fmt("%s", tok);
	tok[s + 3] = '\0';
	cr_expect_eq(jwt_verify(tok, len, set, &policy, NOW, &claims, err,
	    sizeof(err)), JWT_INVALID);
}

/* trailing bits in the header and payload too */
Test(jwt, strict_base64url_header_payload)
{
	/* 28 octets: 38 characters, the last with 4 bits to spare */
	static const char	 hdr[] =
	    "{\"alg\":\"ES256\",\"kid\":\"ec1\"} ";
	char			*input, *tok, *h;
	size_t			 hlen;

	input = signing_input(hdr, P_OK);
	tok = fmt("%s.%s", input, sign_input(ec, input));
	cr_assert_eq(verify(tok), JWT_OK, "%s", err);
	h = b64url(hdr, strlen(hdr));
	hlen = strlen(h);
	cr_assert_eq(hlen, 38);
	cr_assert(strchr("AQgw", h[hlen - 1]) != NULL, "%s", h);
	cr_expect_eq(verify(replace_char(tok, hlen - 1, h[hlen - 1] + 1)),
	    JWT_INVALID);
	cr_expect_str_eq(err, "header not a base64url JSON object");
}

Test(jwt, parts)
{
	char	*tok = token(ec, H_ES, P_OK);
	char	*dot2 = strrchr(tok, '.');

	cr_expect_eq(verify(""), JWT_INVALID);
	cr_expect_eq(verify("."), JWT_INVALID);
	cr_expect_eq(verify(".."), JWT_INVALID);
	cr_expect_eq(verify("..."), JWT_INVALID);
	/* two parts: an unsigned token */
	cr_expect_eq(verify(fmt("%.*s", (int)(dot2 - tok), tok)),
	    JWT_INVALID);
	cr_expect_str_eq(err, "not three parts (compact JWS)");
	/* four */
	cr_expect_eq(verify(fmt("%s.", tok)), JWT_INVALID);
	cr_expect_eq(verify(fmt("%s.%s", tok, dot2 + 1)), JWT_INVALID);
	/* five: a JWE (RFC 7516 7.1) */
	cr_expect_eq(verify(fmt("%s.AAAA.AAAA", tok)), JWT_INVALID);
	cr_expect_eq(verify("eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ."
	    "AAAA.AAAA.AAAA.AAAA"), JWT_INVALID);
	/* empty header, empty payload */
	cr_expect_eq(verify(fmt("%s", strchr(tok, '.'))), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, "")), JWT_INVALID);
}

Test(jwt, huge_token)
{
	char	*pad, *tok;
	size_t	 n;

	/* just under the cap: fine */
	pad = keep(malloc(20000));
	memset(pad, 'x', 20000);
	n = 11000;
	pad[n] = '\0';
	tok = token(ec, H_ES, fmt("{\"exp\":1700000300,\"pad\":\"%s\"," STD
	    "}", pad));
	cr_assert_leq(strlen(tok), JWT_MAX_TOKEN);
	cr_expect_eq(verify(tok), JWT_OK, "%s", err);
	/* over it: refused before anything is decoded */
	pad[n] = 'x';
	pad[13000] = '\0';
	tok = token(ec, H_ES, fmt("{\"exp\":1700000300,\"pad\":\"%s\"," STD
	    "}", pad));
	cr_assert_gt(strlen(tok), JWT_MAX_TOKEN);
	cr_expect_eq(verify(tok), JWT_INVALID);
	cr_expect_str_eq(err, "token longer than 16384 octets");
}

Test(jwt, crit_header)
{
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"crit\":[\"exp\"],\"exp\":1700000300}", P_OK)), JWT_INVALID);
	cr_expect_str_eq(err, "header has crit");
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"crit\":[]}", P_OK)), JWT_INVALID);
	/* RFC 7797: an unencoded payload needs crit, and is refused */
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"b64\":false,\"crit\":[\"b64\"]}", P_OK)), JWT_INVALID);
	/* a nested JWT (RFC 7519 5.2) */
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"cty\":\"JWT\"}", P_OK)), JWT_INVALID);
}

Test(jwt, header_and_payload_must_be_objects)
{
	static const char *const bad[] = {
		"\"ES256\"", "[\"ES256\"]", "null", "1", "{", "",
		"{\"alg\":\"ES256\",\"kid\":\"ec1\"}x",
		"{\"alg\":\"ES256\",\"kid\":\"ec1\"} {}",
		/* RFC 7515 5.2: a member named twice */
		"{\"alg\":\"ES256\",\"kid\":\"ec1\",\"alg\":\"ES256\"}",
		"{\"alg\":\"none\",\"kid\":\"ec1\",\"alg\":\"ES256\"}",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(token(ec, bad[i], P_OK)), JWT_INVALID,
		    "%s", bad[i]);
	cr_expect_eq(verify(token(ec, H_ES, "[1700000300]")), JWT_INVALID);
	cr_expect_str_eq(err, "payload not a JSON object");
	cr_expect_eq(verify(token(ec, H_ES, "\"" P_OK "\"")), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300,"
	    "\"username\":\"root\"," STD "}")), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300,"
	    "\"exp\":1900000000," STD "}")), JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, "\xef\xbb\xbf" P_OK)),
	    JWT_INVALID);
	cr_expect_eq(verify(token(ec, H_ES, "{\"exp\":1700000300,"
	    "\"username\":\"\xff\"," STD "}")), JWT_INVALID);
}

/* err is for the log: no part of the token, nothing unescaped */
Test(jwt, errors_never_hold_the_token)
{
	static const char *const headers[] = {
		"{\"alg\":\"x\\u0001\\\"y\",\"kid\":\"ec1\"}",
		"{\"alg\":\"ES256\",\"kid\":\"ec1\",\"x\":\"",
		"{\"alg\":\"HS256\",\"kid\":\"ec1\"}", H_ES,
	};
	char			*tok, *input;
	size_t			 i;

	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		input = signing_input(headers[i], "{\"exp\":1}");
		tok = fmt("%s.%s", input, sign_input(ec, input));
		cr_expect_eq(verify(tok), JWT_INVALID, "%s", headers[i]);
		cr_expect_null(strstr(err, strrchr(tok, '.') + 1));
		cr_expect_null(strstr(err, fmt("%.8s", tok)));
		cr_expect_null(strstr(err, "\x01"));
		cr_expect_neq(err[0], '\0');
	}
	cr_expect_str_eq(err, "expired 1699999999 s ago");
}

/* OpenSSL's error queue is as it was: nothing for the next TLS call. */
Test(jwt, openssl_error_queue_untouched)
{
	char		*tok = token(rsa, H_RS, P_OK);
	char		*dot = strrchr(tok, '.');
	unsigned char	*sig;
	size_t		 len;

	ERR_clear_error();
	sig = unb64url(dot + 1, strlen(dot + 1), &len);
	sig[7] ^= 0x01;
	*dot = '\0';
	cr_expect_eq(verify(fmt("%s.%s", tok, b64url(sig, len))), JWT_INVALID);
	cr_expect_str_eq(err, "bad signature");
	cr_expect_eq(verify(token(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}",
	    P_OK)), JWT_OK);
	cr_expect_null(parse("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}"));
	cr_expect_eq(ERR_peek_error(), 0UL);
}

struct thread_arg {
	const char	*tokens[3];
	int		 failures;
};

static void *
verify_many(void *p)
{
	struct thread_arg	*ta = p;
	struct jwt_claims	 c;
	char			 e[128];
	int			 i;

	for (i = 0; i < 300; i++)
		if (jwt_verify(ta->tokens[i % 3], strlen(ta->tokens[i % 3]),
		    set, &policy, NOW, &c, e, sizeof(e)) != JWT_OK ||
		    strcmp(c.user, "alice") != 0)
			ta->failures++;
	return NULL;
}

/* One set, many threads: the hash pool's case. */
Test(jwt, threads_share_a_set)
{
	pthread_t		 t[4];
	struct thread_arg	 ta[4];
	int			 i;

	for (i = 0; i < 4; i++) {
		ta[i].tokens[0] = token(rsa, H_RS, P_OK);
		ta[i].tokens[1] = token(ec, H_ES, P_OK);
		ta[i].tokens[2] = token(ed, H_ED, P_OK);
		ta[i].failures = 0;
		cr_assert_eq(pthread_create(&t[i], NULL, verify_many, &ta[i]),
		    0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(ta[i].failures, 0);
	}
}

/* ---- JWK Sets ---- */

Test(jwks, malformed)
{
	static const char *const bad[] = {
		"", "not json", "{", "[]", "{}", "{\"keys\":{}}",
		"{\"keys\":\"x\"}", "{\"keys\":[]}", "{\"keys\":[1,\"a\",[]]}",
		"{\"keys\":[{}]}", "{\"keys\":[{\"kty\":\"RSA\"}]}",
		"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\"}]}",
		"{\"keys\":[],\"keys\":[]}",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_null(parse(bad[i]), "%s", bad[i]);
		cr_expect_neq(err[0], '\0');
	}
	cr_expect_null(parse("{\"keys\":[]}"));
	cr_expect_str_eq(err, "JWKS has no key");
	cr_expect_null(parse("{}"));
	cr_expect_str_eq(err, "JWKS has no keys array");
	cr_expect_eq(jwks_count(NULL), 0);
	jwks_free(NULL);
}

Test(jwks, rsa_1024_refused)
{
	EVP_PKEY	*weak = keygen("RSA1024");
	EVP_PKEY	*k = keygen("EC");

	cr_expect_null(parse(fmt("{\"keys\":[%s]}", jwk_of(weak, "w", ""))));
	cr_expect_str_eq(err, "JWKS has no usable key (1 skipped, key 0: "
	    "RSA modulus of 1024 bits, 2048 to 8192 accepted)");
	/* skipped beside a good one */
	set = parse(fmt("{\"keys\":[%s,%s]}", jwk_of(weak, "w", ""),
	    jwk_of(k, "k", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), 1);
	cr_expect_eq(jwks_skipped(set, err, sizeof(err)), 1);
	cr_expect_str_eq(err, "key 0: RSA modulus of 1024 bits, 2048 to "
	    "8192 accepted");
	EVP_PKEY_free(weak);
	EVP_PKEY_free(k);
}

Test(jwks, rsa_parameters)
{
	EVP_PKEY	*k = keygen("RSA");
	char		*n = bn_b64url(k, OSSL_PKEY_PARAM_RSA_N, 0);
	unsigned char	 nbuf[257];
	size_t		 len;

	/* e of 1, even, missing; n padded, not base64url */
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
	    "\"e\":\"AQ\"}]}", n)));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
	    "\"e\":\"AQAC\"}]}", n)));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\"}]}",
	    n)));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s=\","
	    "\"e\":\"AQAB\"}]}", n)));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":1,"
	    "\"e\":\"AQAB\"}]}")));
	/* an even modulus is no RSA modulus */
	memcpy(nbuf, unb64url(n, strlen(n), &len), 256);
	cr_assert_eq(len, 256);
	nbuf[255] &= 0xfe;
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
	    "\"e\":\"AQAB\"}]}", b64url(nbuf, 256))));
	/* a leading zero octet is tolerated (RFC 7518 6.3.1.1 says none) */
	nbuf[0] = 0;
	memcpy(nbuf + 1, unb64url(n, strlen(n), &len), 256);
	set = parse(fmt("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"%s\","
	    "\"e\":\"AQAB\"}]}", b64url(nbuf, 257)));
	cr_expect_not_null(set, "%s", err);
	EVP_PKEY_free(k);
}

Test(jwks, ec_point_not_on_curve)
{
	EVP_PKEY	*k = keygen("EC");
	char		*x = bn_b64url(k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
	char		*y = bn_b64url(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
	unsigned char	*raw;
	size_t		 len;

	set = parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
	    "\"x\":\"%s\",\"y\":\"%s\"}]}", x, y));
	cr_assert_not_null(set, "%s", err);
	jwks_free(set);
	set = NULL;
	raw = unb64url(y, strlen(y), &len);
	cr_assert_eq(len, 32);
	raw[31] ^= 0x01;
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":"
	    "\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, b64url(raw, 32))));
	cr_expect_str_eq(err, "JWKS has no usable key (1 skipped, key 0: "
	    "P-256 point not on the curve)");
	/* coordinates of other lengths (RFC 7518 6.2.1.2) */
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":"
	    "\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, b64url(raw, 31))));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":"
	    "\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", b64url("\0", 1), y)));
	/* another curve */
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"crv\":"
	    "\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}]}", x, y)));
	cr_expect_null(parse(fmt("{\"keys\":[{\"kty\":\"EC\",\"x\":\"%s\","
	    "\"y\":\"%s\"}]}", x, y)));
	/* an Ed25519 key of the wrong size */
	cr_expect_null(parse("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
	    "\"x\":\"AAAA\"}]}"));
	EVP_PKEY_free(k);
}

/* Never hold a private key: such a key is skipped, not used. */
Test(jwks, private_keys_skipped)
{
	EVP_PKEY	*k = keygen("EC"), *e = keygen("ED25519");
	char		 why[128];

	set = parse(fmt("{\"keys\":[%s,%s]}", jwk_of(k, "priv",
	    ",\"d\":\"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI\""),
	    jwk_of(e, "pub", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), 1);
	cr_expect_eq(jwks_skipped(set, why, sizeof(why)), 1);
	cr_expect_str_eq(why, "key 0: private key");
	cr_expect_null(parse(fmt("{\"keys\":[%s]}",
	    jwk_of(k, "priv", ",\"d\":\"AAAA\""))));
	EVP_PKEY_free(k);
	EVP_PKEY_free(e);
}

Test(jwks, use_key_ops_alg_kid)
{
	EVP_PKEY	*k = keygen("EC"), *okp = keygen("ED25519");
	static const char *const skipped[] = {
		",\"use\":\"enc\"", ",\"use\":\"\"", ",\"use\":1",
		",\"key_ops\":[\"encrypt\"]", ",\"key_ops\":\"verify\"",
		",\"key_ops\":[]", ",\"alg\":\"RS256\"", ",\"alg\":\"ES384\"",
		",\"alg\":\"ECDH-ES\"", ",\"alg\":1", ",\"kid\":2",
	};
	static const char *const kept[] = {
		"", ",\"use\":\"sig\"", ",\"key_ops\":[\"sign\",\"verify\"]",
		",\"alg\":\"ES256\"", ",\"x5c\":[\"AAAA\"]",
		",\"use\":\"sig\",\"alg\":\"ES256\",\"key_ops\":[\"verify\"]",
	};
	char		 kid[JWT_KID_MAX + 1];
	size_t		 i;

	for (i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
		cr_expect_null(parse(fmt("{\"keys\":[%s]}", jwk_of(k, NULL,
		    skipped[i]))), "%s", skipped[i]);
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		set = parse(fmt("{\"keys\":[%s]}", jwk_of(k, "k", kept[i])));
		cr_expect_not_null(set, "%s: %s", kept[i], err);
		jwks_free(set);
	}
	set = NULL;
	/* an OKP key may name EdDSA or Ed25519, nothing else */
	set = parse(fmt("{\"keys\":[%s,%s,%s]}",
	    jwk_of(okp, "a", ",\"alg\":\"EdDSA\""),
	    jwk_of(okp, "b", ",\"alg\":\"Ed25519\""),
	    jwk_of(okp, "c", ",\"alg\":\"ES256\"")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), 2);
	/* kids of 127 octets, not 128 */
	memset(kid, 'k', sizeof(kid));
	kid[JWT_KID_MAX - 1] = '\0';
	jwks_free(set);
	set = parse(fmt("{\"keys\":[%s]}", jwk_of(k, kid, "")));
	cr_expect_not_null(set, "%s", err);
	kid[JWT_KID_MAX - 1] = 'k';
	kid[JWT_KID_MAX] = '\0';
	cr_expect_null(parse(fmt("{\"keys\":[%s]}", jwk_of(k, kid, ""))));
	EVP_PKEY_free(k);
	EVP_PKEY_free(okp);
}

Test(jwks, unknown_types_skipped)
{
	EVP_PKEY	*k = keygen("ED25519");

	set = parse(fmt("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"%s\"},"
	    "{\"kty\":\"OKP\",\"crv\":\"Ed448\",\"x\":\"AAAA\"},"
	    "{\"kty\":\"rsa\",\"n\":\"AAAA\",\"e\":\"AQAB\"},"
	    "{\"kty\":1},\"key\",%s]}",
	    b64url("0123456789abcdef0123456789abcdef", 32),
	    jwk_of(k, "ok", "")));
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), 1);
	cr_expect_eq(jwks_skipped(set, err, sizeof(err)), 6);
	cr_expect_str_eq(err, "key 0: kty or crv not supported");
	EVP_PKEY_free(k);
}

Test(jwks, limits)
{
	EVP_PKEY	*k = keygen("ED25519");
	char		*one = jwk_of(k, NULL, ""), *many, *big;
	size_t		 i, n = strlen(one);

	many = keep(malloc((n + 1) * (JWKS_MAX_KEYS + 1) + 16));
	strcpy(many, "{\"keys\":[");
	for (i = 0; i < JWKS_MAX_KEYS; i++) {
		strcat(many, one);
		strcat(many, ",");
	}
	many[strlen(many) - 1] = '\0';
	set = parse(fmt("%s]}", many));
	cr_expect_not_null(set, "%s", err);
	cr_expect_eq(jwks_count(set), JWKS_MAX_KEYS);
	cr_expect_null(parse(fmt("%s,%s]}", many, one)));
	cr_expect_str_eq(err, "JWKS has more than 64 keys");
	big = keep(malloc(JWKS_MAX_LEN + 100));
	memset(big, ' ', JWKS_MAX_LEN + 99);
	big[JWKS_MAX_LEN + 99] = '\0';
	memcpy(big, "{\"keys\":[", 9);
	memcpy(big + 9, one, n);
	memcpy(big + JWKS_MAX_LEN + 97, "]}", 2);
	cr_expect_null(jwks_parse(big, strlen(big), err, sizeof(err)));
	cr_expect_str_eq(err, "JWKS longer than 262144 octets");
	EVP_PKEY_free(k);
}

/* ---- fixed vectors ---- */

/* RFC 7515 A.2.1 and A.3.1: {"iss":"joe","exp":1300819380,...} */
#define RFC7515_PAYLOAD "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQog" \
	"Imh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"

static const char rfc7515_a2_jwks[] = "{\"keys\":[{\"kty\":\"RSA\","
    "\"n\":\"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
    "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRP"
    "EwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBY"
    "UsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9k"
    "G4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PA"
    "cDTW9gb54h4FRWyuXpoQ\",\"e\":\"AQAB\"}]}";

static const char rfc7515_a2[] = "eyJhbGciOiJSUzI1NiJ9." RFC7515_PAYLOAD
    ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AA"
    "uHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAyn"
    "RFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZR"
    "mB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnv"
    "Wh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_Ioy"
    "pGlUPQGe77Rw";

static const char rfc7515_a3_jwks[] = "{\"keys\":[{\"kty\":\"EC\","
    "\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}]}";

static const char rfc7515_a3[] = "eyJhbGciOiJFUzI1NiJ9." RFC7515_PAYLOAD
    ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApm"
    "WQxfKTUJqPP3-Kg6NU1Q";

/* RFC 8037 A.4: {"alg":"EdDSA"}, "Example of Ed25519 signing" */
static const char rfc8037_a4_jwks[] = "{\"keys\":[{\"kty\":\"OKP\","
    "\"crv\":\"Ed25519\","
    "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}]}";

static const char rfc8037_a4[] = "eyJhbGciOiJFZERTQSJ9."
    "RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
    "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt"
    "9g7sVvpAr_MuM0KAg";

/* RFC 7515 A.1: HS256, {"typ":"JWT","alg":"HS256"} */
static const char rfc7515_a1[] = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9."
    RFC7515_PAYLOAD ".dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

static void
vector(const char *jwks, const char *jws, uint32_t alg)
{
	char	*t;
	size_t	 len = strlen(jws);

	set = parse(jwks);
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jws_verify_signature(jws, len, set, alg, err,
	    sizeof(err)), JWT_OK, "%s", err);
	cr_expect_str_eq(err, "");
	/* not enabled */
	cr_expect_eq(jws_verify_signature(jws, len, set, ALL_ALGS & ~alg, err,
	    sizeof(err)), JWT_INVALID);
	/* a changed payload, a changed signature */
	t = fmt("%s", jws);
	t[strchr(t, '.') - t + 2] ^= 0x01;
	cr_expect_eq(jws_verify_signature(t, len, set, alg, err, sizeof(err)),
	    JWT_INVALID);
	t = fmt("%s", jws);
	t[len - 10] = t[len - 10] == 'A' ? 'B' : 'A';
	cr_expect_eq(jws_verify_signature(t, len, set, alg, err, sizeof(err)),
	    JWT_INVALID);
	cr_expect_str_eq(err, "bad signature");
}

Test(jws_vectors, rfc7515_a2_rs256)
{
	vector(rfc7515_a2_jwks, rfc7515_a2, JWT_ALG_RS256);
}

Test(jws_vectors, rfc7515_a3_es256)
{
	vector(rfc7515_a3_jwks, rfc7515_a3, JWT_ALG_ES256);
}

Test(jws_vectors, rfc8037_a4_eddsa)
{
	/* its header has no typ */
	struct jwt_policy	 p = { .algorithms = JWT_ALG_EDDSA,
				       .typ_relaxed = 1 };

	vector(rfc8037_a4_jwks, rfc8037_a4, JWT_ALG_EDDSA);
	/* its payload is no claims set */
	cr_expect_eq(jwt_verify(rfc8037_a4, strlen(rfc8037_a4), set, &p, NOW,
	    &claims, err, sizeof(err)), JWT_INVALID);
	cr_expect_str_eq(err, "payload not a JSON object");
}

/* The RS256 vector all the way through: its claims are a JWT's. */
Test(jws_vectors, rfc7515_a2_as_a_jwt)
{
	struct jwt_policy	 p = {
		.algorithms = JWT_ALG_RS256,
		.issuer = "joe",
		.typ_relaxed = 1,	/* its typ is JWT */
		.identity.user_claim = "iss",
	};
	size_t			 len = strlen(rfc7515_a2);

	set = parse(rfc7515_a2_jwks);
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jwt_verify(rfc7515_a2, len, set, &p, 1300819000, &claims,
	    err, sizeof(err)), JWT_OK, "%s", err);
	cr_expect_str_eq(claims.user, "joe");
	cr_expect_eq(claims.exp, 1300819380);
	cr_expect_eq(jwt_verify(rfc7515_a2, len, set, &p, 1300819380, &claims,
	    err, sizeof(err)), JWT_INVALID);
	p.audience = "joe";
	cr_expect_eq(jwt_verify(rfc7515_a2, len, set, &p, 1300819000, &claims,
	    err, sizeof(err)), JWT_INVALID);
	cr_expect_str_eq(err, "audience not ours");
}

Test(jws_vectors, rfc7515_a1_hs256_refused)
{
	set = parse(rfc7515_a2_jwks);
	cr_assert_not_null(set, "%s", err);
	cr_expect_eq(jws_verify_signature(rfc7515_a1, strlen(rfc7515_a1), set,
	    0xffffffff, err, sizeof(err)), JWT_INVALID);
	cr_expect_str_eq(err, "alg \"HS256\" refused");
}
