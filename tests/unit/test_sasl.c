/*
 * test_sasl.c -- strict base64 (RFC 4648), the PLAIN message (RFC
 * 4616) and the XOAUTH2 and OAUTHBEARER messages (RFC 7628), as the
 * worker decodes them before anything reaches authd; and the error
 * challenge of a refused token.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "base64.h"
#include "sasl.h"
#include "scope.h"

static int
decode(const char *in, char *out, size_t outsz, size_t *len)
{
	return sasl_b64_decode(in, strlen(in), (uint8_t *)out, outsz, len);
}

Test(sasl, base64_round_values)
{
	char	 out[64];
	size_t	 len;

	cr_assert_eq(decode("", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(decode("Zg==", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 1);
	cr_assert_eq(memcmp(out, "f", 1), 0);
	cr_assert_eq(decode("Zm8=", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(decode("Zm9v", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(out, "foo", 3), 0);
	cr_assert_eq(decode("AGFsaWNlAHNlY3JldA==", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 13);
	cr_assert_eq(memcmp(out, "\0alice\0secret", 13), 0);
}

Test(sasl, base64_strictness)
{
	char	 out[64];
	size_t	 len;
	const char *bad[] = {
		"Zg",		/* no padding */
		"Zg=",		/* short padding */
		"Z===",		/* too much padding */
		"Zm9v\r\n",	/* white space */
		"Zm 9v",
		"Zm9v====",
		"Zh==",		/* bits under the padding */
		"Zm9=Zm9v",	/* padding inside */
		"Zm9*",		/* outside the alphabet */
		"Zm9-",		/* base64url is not base64 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(decode(bad[i], out, sizeof(out), &len), -1,
		    "accepted \"%s\"", bad[i]);
}

Test(sasl, base64_output_bound)
{
	char	 out[2];
	size_t	 len;

	cr_assert_eq(decode("Zm9v", out, sizeof(out), &len), -1);
}

Test(sasl, plain_message)
{
	struct sasl_plain	 p;

	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice\0secret", 13,
	    &p), 0);
	cr_assert_eq(p.authzid_len, 0);
	cr_assert_eq(p.authcid_len, 5);
	cr_assert_eq(memcmp(p.authcid, "alice", 5), 0);
	cr_assert_eq(p.passwd_len, 6);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"alice\0alice\0pw", 14,
	    &p), 0);
	cr_assert_eq(p.authzid_len, 5);
}

Test(sasl, plain_refuses_malformed)
{
	struct sasl_plain	 p;
	uint8_t			 longname[300 + 4];

	/* no NUL, one NUL, three NULs, empty user, empty password */
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"alice", 5, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice", 6, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0a\0b\0c", 7, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0\0pw", 4, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice\0", 7, &p), -1);
	memset(longname, 'a', sizeof(longname));
	longname[0] = '\0';
	longname[301] = '\0';
	cr_assert_eq(sasl_plain_parse(longname, sizeof(longname), &p), -1);
}

/*
 * The token mechanisms: XOAUTH2 (Google's and Microsoft's) and
 * OAUTHBEARER (RFC 7628 3.1).  ^A is %x01.
 */

#define XO_GOOGLE	"user=someuser@example.com\1auth=Bearer " \
			"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\1\1"
#define XO_GOOGLE_TOKEN	"ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
/* RFC 7628 4.1, with the token of 4.2 */
#define OB_RFC		"n,a=user@example.com,\1host=server.example.com" \
			"\1port=143\1auth=Bearer vF9dft4qmTc2Nvb3RlckBhdHRh" \
			"dmlzdGEuY29tCg==\1\1"
#define OB_RFC_TOKEN	"vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg=="

static int
xoauth2(const char *msg, size_t len, struct sasl_token *t)
{
	return sasl_xoauth2_parse((const uint8_t *)msg, len, t);
}

static int
oauthbearer(const char *msg, size_t len, struct sasl_token *t)
{
	return sasl_oauthbearer_parse((const uint8_t *)msg, len, t);
}

#define XO(s, t)	xoauth2((s), sizeof(s) - 1, (t))
#define OB(s, t)	oauthbearer((s), sizeof(s) - 1, (t))

static void
assert_token(const struct sasl_token *t, const char *user, const char *token)
{
	cr_assert_str_eq(t->user, user);
	cr_assert_eq(t->token_len, strlen(token));
	cr_assert_eq(memcmp(t->token, token, t->token_len), 0);
}

Test(sasl, xoauth2_google_example)
{
	struct sasl_token	 t;

	cr_assert_eq(XO(XO_GOOGLE, &t), 0);
	assert_token(&t, "someuser@example.com", XO_GOOGLE_TOKEN);
}

Test(sasl, xoauth2_scheme_case_and_padding)
{
	struct sasl_token	 t;

	cr_assert_eq(XO("user=u\1auth=bEARER a-b.c_d~e+f/g==\1\1", &t), 0);
	assert_token(&t, "u", "a-b.c_d~e+f/g==");
}

Test(sasl, xoauth2_refuses_malformed)
{
	struct sasl_token	 t;
	const struct {
		const char	*msg;
		size_t		 len;
	} bad[] = {
#define B(s)	{ s, sizeof(s) - 1 }
		B(""),
		B("\1"),
		B("user=u\1auth=Bearer tok\1"),		/* no final ^A */
		B("user=u\1auth=Bearer tok"),
		B("user=u\1auth=Bearer tok\1\1\1"),	/* one too many */
		B("user=u\1auth=Bearer tok\1\1x"),	/* trailing junk */
		B("user=u\1auth=Bearer t\0k\1\1"),	/* NUL */
		B("user=u\0\1auth=Bearer tok\1\1"),
		B("user=u\1auth=Basic dTpw\1\1"),	/* not Bearer */
		B("user=u\1auth=Bearertok\1\1"),	/* no space */
		B("user=u\1auth=Bearer  tok\1\1"),	/* two spaces */
		B("user=u\1auth=Bearer \1\1"),		/* empty token */
		B("user=u\1auth=Bearer\1\1"),
		B("user=u\1auth=Bearer to ken\1\1"),	/* bad token chars */
		B("user=u\1auth=Bearer tok=en\1\1"),	/* '=' inside */
		B("user=u\1auth=Bearer ==\1\1"),	/* only padding */
		B("user=u\1auth=Bearer tök\1\1"),
		B("user=u\1auth=Bearer tok,\1\1"),
		B("user=\1auth=Bearer tok\1\1"),	/* empty user */
		B("auth=Bearer tok\1user=u\1\1"),	/* wrong order */
		B("auth=Bearer tok\1\1"),		/* no user */
		B("user=u\1\1"),			/* no auth */
		B("user=u\1host=h\1auth=Bearer tok\1\1"), /* unknown field */
		B("User=u\1auth=Bearer tok\1\1"),
		B("user=u\1Auth=Bearer tok\1\1"),
		B("user=u\tv\1auth=Bearer tok\1\1"),	/* control in user */
		B("user=u\1auth=Bearer tok\1auth=Bearer tok\1\1"),
#undef B
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0xa5, sizeof(t));
		cr_assert_eq(xoauth2(bad[i].msg, bad[i].len, &t), -1,
		    "accepted bad[%zu]", i);
		/* Nothing of a refused message is left behind. */
		cr_assert_eq(t.user[0], '\0');
		cr_assert_null(t.token);
	}
}

Test(sasl, xoauth2_lengths)
{
	struct sasl_token	 t;
	char			 msg[AUTH_CRED_MAX + 64];
	size_t			 n;

	/* The longest user and token. */
	n = (size_t)snprintf(msg, sizeof(msg), "user=%0*d\1auth=Bearer ",
	    SASL_NAME_MAX, 0);
	memset(msg + n, 'x', SASL_TOKEN_MAX);
	n += SASL_TOKEN_MAX;
	memcpy(msg + n, "\1\1", 2);
	cr_assert_eq(xoauth2(msg, n + 2, &t), 0);
	cr_assert_eq(strlen(t.user), SASL_NAME_MAX);
	cr_assert_eq(t.token_len, SASL_TOKEN_MAX);

	/* One more octet of token. */
	memcpy(msg + n, "x\1\1", 3);
	cr_assert_eq(xoauth2(msg, n + 3, &t), -1);

	/* One more octet of user. */
	n = (size_t)snprintf(msg, sizeof(msg), "user=%0*d\1auth=Bearer t\1\1",
	    SASL_NAME_MAX + 1, 0);
	cr_assert_eq(xoauth2(msg, n, &t), -1);
}

Test(sasl, oauthbearer_rfc7628_example)
{
	struct sasl_token	 t;

	cr_assert_eq(OB(OB_RFC, &t), 0);
	assert_token(&t, "user@example.com", OB_RFC_TOKEN);
}

Test(sasl, oauthbearer_valid)
{
	struct sasl_token	 t;

	/* No authzid: the token names the user. */
	cr_assert_eq(OB("n,,\1auth=Bearer tok\1\1", &t), 0);
	assert_token(&t, "", "tok");
	/* "y": the client could bind, and thinks we cannot. */
	cr_assert_eq(OB("y,,\1auth=Bearer tok\1\1", &t), 0);
	/* Escaped authzid (RFC 5801 4). */
	cr_assert_eq(OB("n,a=a=2Cb=3Dc,\1auth=Bearer tok\1\1", &t), 0);
	assert_token(&t, "a,b=c", "tok");
	/* auth first, then host and port; scheme in any case. */
	cr_assert_eq(OB("n,,\1auth=BEARER tok\1host=h.example\1port=587\1\1",
	    &t), 0);
	assert_token(&t, "", "tok");
	/* RFC 6750 2.1: 1*SP after the scheme. */
	cr_assert_eq(OB("n,,\1auth=Bearer   tok\1\1", &t), 0);
	assert_token(&t, "", "tok");
	/* Keys we do not know, values with SP HTAB CR LF, empty values. */
	cr_assert_eq(OB("n,,\1xtra=a b\tc\r\n\1host=\1auth=Bearer tok\1\1",
	    &t), 0);
	assert_token(&t, "", "tok");
}

Test(sasl, oauthbearer_refuses_malformed)
{
	struct sasl_token	 t;
	const struct {
		const char	*msg;
		size_t		 len;
	} bad[] = {
#define B(s)	{ s, sizeof(s) - 1 }
		B(""),
		B("\1"),				/* the dummy response */
		B("n,,\1\1"),				/* no auth */
		B("n,,\1host=h\1port=1\1\1"),
		B("n,,\1auth=Bearer tok\1"),		/* no final ^A */
		B("n,,\1auth=Bearer tok"),
		B("n,,\1auth=Bearer tok\1\1\1"),	/* trailing */
		B("n,,\1auth=Bearer tok\1\1x"),
		B("n,,\1auth=Bearer t\0k\1\1"),		/* NUL */
		B("n,a=u\0,\1auth=Bearer tok\1\1"),
		B("n,,\1auth=Basic dTpw\1\1"),		/* scheme */
		B("n,,\1auth=Bearertok\1\1"),		/* no space */
		B("n,,\1auth=Bearer \1\1"),		/* empty token */
		B("n,,\1auth=\1\1"),
		B("n,,\1auth=Bearer to ken\1\1"),	/* bad token chars */
		B("n,,\1auth=Bearer tok\t\1\1"),
		B("n,,\1auth=Bearer t=k\1\1"),
		B("n,,\1auth=Bearer tok\1auth=Bearer tok\1\1"), /* twice */
		B("n,,\1auth=Bearer a\1host=h\1auth=Bearer b\1\1"),
		B("p=tls-unique,,\1auth=Bearer tok\1\1"), /* channel binding */
		B("p=tls-server-end-point,a=u,\1auth=Bearer tok\1\1"),
		B("F,n,,\1auth=Bearer tok\1\1"),	/* non-standard flag */
		B("x,,\1auth=Bearer tok\1\1"),		/* unknown flag */
		B("N,,\1auth=Bearer tok\1\1"),
		B(",,\1auth=Bearer tok\1\1"),
		B("n\1auth=Bearer tok\1\1"),		/* short gs2 header */
		B("n,\1auth=Bearer tok\1\1"),
		B("n,,auth=Bearer tok\1\1"),		/* no ^A after it */
		B("n,a=,\1auth=Bearer tok\1\1"),	/* empty authzid */
		B("n,a=u=41,\1auth=Bearer tok\1\1"),	/* bad escape */
		B("n,a=u=2c,\1auth=Bearer tok\1\1"),	/* lower case */
		B("n,a=u=,\1auth=Bearer tok\1\1"),
		B("n,a=u=2,\1auth=Bearer tok\1\1"),
		B("n,a=u\1v,\1auth=Bearer tok\1\1"),	/* control */
		B("n,b=u,\1auth=Bearer tok\1\1"),	/* not a= */
		B("n,a=u\1auth=Bearer tok\1\1"),	/* unterminated */
		B("n,,\1=v\1auth=Bearer tok\1\1"),	/* empty key */
		B("n,,\1ho-st=v\1auth=Bearer tok\1\1"),	/* key not ALPHA */
		B("n,,\1host\1auth=Bearer tok\1\1"),	/* no '=' */
		B("n,,\1host=h\xc3\xa9\1auth=Bearer tok\1\1"), /* not VCHAR */
		B("n,,\1host=\x7f\1auth=Bearer tok\1\1"),
#undef B
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&t, 0xa5, sizeof(t));
		cr_assert_eq(oauthbearer(bad[i].msg, bad[i].len, &t), -1,
		    "accepted bad[%zu]", i);
		cr_assert_eq(t.user[0], '\0');
		cr_assert_null(t.token);
	}
}

Test(sasl, oauthbearer_lengths)
{
	struct sasl_token	 t;
	char			 msg[AUTH_CRED_MAX + 1024];
	size_t			 n;

	/* 255 octets once unescaped, though the wire form is longer. */
	n = (size_t)snprintf(msg, sizeof(msg), "n,a=");
	for (int i = 0; i < SASL_NAME_MAX; i++)
		n += (size_t)snprintf(msg + n, sizeof(msg) - n, "=2C");
	n += (size_t)snprintf(msg + n, sizeof(msg) - n, ",\1auth=Bearer ");
	memset(msg + n, 'x', SASL_TOKEN_MAX);
	n += SASL_TOKEN_MAX;
	memcpy(msg + n, "\1\1", 2);
	cr_assert_eq(oauthbearer(msg, n + 2, &t), 0);
	cr_assert_eq(strlen(t.user), SASL_NAME_MAX);
	cr_assert_eq(t.user[0], ',');
	cr_assert_eq(t.token_len, SASL_TOKEN_MAX);
	memcpy(msg + n, "x\1\1", 3);
	cr_assert_eq(oauthbearer(msg, n + 3, &t), -1);

	n = (size_t)snprintf(msg, sizeof(msg), "n,a=%0*d,\1auth=Bearer t\1\1",
	    SASL_NAME_MAX + 1, 0);
	cr_assert_eq(oauthbearer(msg, n, &t), -1);
}

/*
 * Every proper prefix of a valid message is incomplete: refused, and
 * read no further than its end (each copy is its own allocation, for
 * the sanitizers to watch).
 */
static void
assert_prefixes_refused(int (*parse)(const char *, size_t,
    struct sasl_token *), const char *msg, size_t len)
{
	struct sasl_token	 t;

	for (size_t n = 0; n < len; n++) {
		char	*p = malloc(n > 0 ? n : 1);

		cr_assert_not_null(p);
		memcpy(p, msg, n);
		cr_assert_eq(parse(p, n, &t), -1, "accepted %zu of %zu", n,
		    len);
		free(p);
	}
}

Test(sasl, token_truncated_everywhere)
{
	assert_prefixes_refused(xoauth2, XO_GOOGLE, sizeof(XO_GOOGLE) - 1);
	assert_prefixes_refused(oauthbearer, OB_RFC, sizeof(OB_RFC) - 1);
	assert_prefixes_refused(oauthbearer, "n,a=a=2Cb,\1auth=Bearer t\1\1",
	    26);
}

/* Each message with one octet changed: no crash, whatever the answer. */
Test(sasl, token_mutated)
{
	struct sasl_token	 t;
	char			 m[sizeof(OB_RFC)];
	const uint8_t		 octets[] = { 0, 1, ' ', ',', '=', 'a', 0xff };

	for (size_t i = 0; i < sizeof(OB_RFC) - 1; i++)
		for (size_t k = 0; k < sizeof(octets); k++) {
			memcpy(m, OB_RFC, sizeof(m));
			m[i] = (char)octets[k];
			(void)oauthbearer(m, sizeof(m) - 1, &t);
			memcpy(m, XO_GOOGLE, sizeof(XO_GOOGLE));
			if (i < sizeof(XO_GOOGLE) - 1) {
				m[i] = (char)octets[k];
				(void)xoauth2(m, sizeof(XO_GOOGLE) - 1, &t);
			}
		}
}

static void
assert_b64_encode(const char *in, size_t len, const char *want)
{
	char	 out[64];
	uint8_t	 back[64];
	size_t	 backlen;

	cr_assert_eq(sasl_b64_encode((const uint8_t *)in, len, out,
	    sizeof(out)), 0);
	cr_assert_str_eq(out, want);
	cr_assert_eq(sasl_b64_decode(out, strlen(out), back, sizeof(back),
	    &backlen), 0);
	cr_assert_eq(backlen, len);
	cr_assert_eq(memcmp(back, in, len), 0);
}

Test(sasl, base64_encode)
{
	char	 out[9];

	/* RFC 4648 10 */
	assert_b64_encode("", 0, "");
	assert_b64_encode("f", 1, "Zg==");
	assert_b64_encode("fo", 2, "Zm8=");
	assert_b64_encode("foo", 3, "Zm9v");
	assert_b64_encode("foob", 4, "Zm9vYg==");
	assert_b64_encode("fooba", 5, "Zm9vYmE=");
	assert_b64_encode("foobar", 6, "Zm9vYmFy");
	assert_b64_encode("\1", 1, "AQ==");
	assert_b64_encode("\xff\xfe\0", 3, "//4A");

	/* The output and its NUL must fit. */
	cr_assert_eq(sasl_b64_encode((const uint8_t *)"foobar", 6, out, 9), 0);
	cr_assert_eq(sasl_b64_encode((const uint8_t *)"foobar", 6, out, 8), -1);
	cr_assert_eq(sasl_b64_encode((const uint8_t *)"fooba", 5, out, 8), -1);
	cr_assert_eq(sasl_b64_encode((const uint8_t *)"", 0, out, 0), -1);
}

static void
assert_token_error(int xoauth2, const char *scope, const char *json)
{
	char	 b64[512], got[512];
	size_t	 len;

	cr_assert_eq(sasl_token_error(xoauth2, scope, b64, sizeof(b64)), 0);
	cr_assert_eq(sasl_b64_decode(b64, strlen(b64), (uint8_t *)got,
	    sizeof(got) - 1, &len), 0);
	got[len] = '\0';
	cr_assert_str_eq(got, json);
}

Test(sasl, token_error_challenge)
{
	char	 b64[512];

	/* RFC 7628 3.2.2 */
	assert_token_error(0, NULL, "{\"status\":\"invalid_token\"}");
	assert_token_error(0, "", "{\"status\":\"invalid_token\"}");
	assert_token_error(0, "mail smtp.send",
	    "{\"status\":\"invalid_token\",\"scope\":\"mail smtp.send\"}");
	/* Google's XOAUTH2 answer */
	assert_token_error(1, NULL,
	    "{\"status\":\"401\",\"schemes\":\"bearer\"}");
	assert_token_error(1, "https://mail.google.com/",
	    "{\"status\":\"401\",\"schemes\":\"bearer\","
	    "\"scope\":\"https://mail.google.com/\"}");
	/* The exact bytes, as a client would see them. */
	cr_assert_eq(sasl_token_error(0, NULL, b64, sizeof(b64)), 0);
	cr_assert_str_eq(b64, "eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=");

	/* Not RFC 6749 3.3 scopes: nothing would escape them in JSON. */
	cr_assert_eq(sasl_token_error(0, "a\"b", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, "a\\b", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, "a\nb", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, " a", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, "a ", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, "a  b", b64, sizeof(b64)), -1);
	cr_assert_eq(sasl_token_error(0, "\xc3\xa9", b64, sizeof(b64)), -1);
	/* Too small an output. */
	cr_assert_eq(sasl_token_error(0, NULL, b64, 36), -1);
	cr_assert_eq(sasl_token_error(0, NULL, b64, 37), 0);
}

/* ---- common/base64.c: the URL alphabet, as jwt.c uses it ---- */

static int
url(const char *in, uint8_t *out, size_t outsz, size_t *len)
{
	return base64_decode(in, strlen(in), BASE64_URL | BASE64_NOPAD, out,
	    outsz, len);
}

Test(base64, url_alphabet_unpadded)
{
	uint8_t	 out[16];
	size_t	 len;

	/* RFC 4648 10, without the padding */
	cr_assert_eq(url("Zg", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 1);
	cr_assert_eq(url("Zm9vYg", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 4);
	cr_assert_eq(memcmp(out, "foob", 4), 0);
	cr_assert_eq(url("-_8", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(out[0], 0xfb);
	cr_assert_eq(out[1], 0xff);
	cr_assert_eq(url("Zg==", out, sizeof(out), &len), -1, "no padding");
	cr_assert_eq(url("+/8", out, sizeof(out), &len), -1, "no '+' '/'");
	cr_assert_eq(url("Z", out, sizeof(out), &len), -1, "a lone char");
	cr_assert_eq(url("Zh", out, sizeof(out), &len), -1,
	    "bits that make no octet must be zero");
	cr_assert_eq(url("Zm9vYg", NULL, 0, NULL), 0, "checking only");
	cr_assert_eq(url("Zm9vYg", out, 3, &len), -1, "too small");
	cr_assert_eq(decode("-_8=", (char *)out, sizeof(out), &len), -1,
	    "the standard alphabet has no '-' '_'");
}

Test(base64, decode_alloc)
{
	size_t	 len;
	uint8_t	*p = base64_decode_alloc("Zm9v", 4, BASE64_URL |
	    BASE64_NOPAD, &len);

	cr_assert_not_null(p);
	cr_assert_eq(len, 3);
	cr_assert_str_eq((char *)p, "foo");
	free(p);
	cr_assert_null(base64_decode_alloc("Zm9v=", 5, BASE64_URL, &len));
	cr_assert_eq(BASE64_DECODED_MAX(6), 4);
	cr_assert_eq(BASE64_DECODED_MAX(8), 6);
}

/* ---- common/scope.c (RFC 6749 3.3) ---- */

Test(scope, what_a_scope_is)
{
	cr_assert(scope_valid("openid"));
	cr_assert(scope_valid("openid email https://mail.google.com/"));
	cr_assert(scope_valid("!#[]~"));
	cr_assert_not(scope_valid(""));
	cr_assert_not(scope_valid(" openid"));
	cr_assert_not(scope_valid("openid "));
	cr_assert_not(scope_valid("openid  email"), "single spaces");
	cr_assert_not(scope_valid("a\"b"));
	cr_assert_not(scope_valid("a\\b"));
	cr_assert_not(scope_valid("a\tb"));
	cr_assert_not(scope_valid("caf\xc3\xa9"));
	cr_assert(scope_token_valid("https://mail.google.com/"));
	cr_assert_not(scope_token_valid("openid email"), "one token only");
	cr_assert_not(scope_token_valid(""));
}

Test(scope, whole_words)
{
	cr_assert(scope_contains("openid smtp email", "smtp"));
	cr_assert(scope_contains("openid smtp email", "email openid"));
	cr_assert(scope_contains("a  b", "b"), "a provider's double space");
	cr_assert(scope_contains("anything", ""));
	cr_assert_not(scope_contains("smtpx", "smtp"));
	cr_assert_not(scope_contains("xsmtp", "smtp"));
	cr_assert_not(scope_contains("smtp", "smtp imap"));
	cr_assert_not(scope_contains("", "smtp"));
	cr_assert_not(scope_contains("SMTP", "smtp"), "case counts");
	cr_assert(scope_has_token("a b c", "bc", 1));
	cr_assert_not(scope_has_token("a bc", "b", 1));
}

/* ---- common/sasl_plain.c: authd's bounds are not the worker's ---- */

Test(plain, each_side_its_bounds)
{
	static const struct sasl_plain_bounds authd_like = {
		.authzid_max = 1024, .authcid_max = 255, .passwd_max = 1024,
	};
	struct sasl_plain	 p;
	uint8_t			 msg[400];

	memset(msg, 'a', sizeof(msg));
	msg[300] = '\0';		/* a 300-octet authzid */
	msg[301] = 'u';
	msg[302] = '\0';
	cr_assert_eq(sasl_plain_parse(msg, sizeof(msg), &p), -1,
	    "the worker's bound is 255");
	cr_assert_eq(sasl_plain_split(msg, sizeof(msg), &authd_like, &p), 0);
	cr_assert_eq(p.authzid_len, 300);
	cr_assert_eq(p.authcid_len, 1);
	cr_assert_eq(p.passwd_len, sizeof(msg) - 303);
	msg[350] = '\0';
	cr_assert_eq(sasl_plain_split(msg, sizeof(msg), &authd_like, &p), -1,
	    "no NUL in the password, whatever the bounds");
}
