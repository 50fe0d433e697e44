/*
 * sasl.c -- the worker's SASL decoding: strict base64 and the PLAIN
 * message with the worker's bounds (the code is common/base64.c and
 * common/sasl_plain.c, shared with authd), and the bearer-token
 * messages of XOAUTH2 and OAUTHBEARER.
 *
 * RFC 4954 4: a response that is not valid base64 is refused (501),
 * so the decoder accepts the standard alphabet only, padding only at
 * the end and only as needed, and no white space.
 *
 * The token parsers are as strict: a message that does not follow its
 * grammar never reaches authd, whose checkers send tokens on to a
 * provider.  What they return points into the caller's message, except
 * the user, which is copied (OAUTHBEARER's needs unescaping).
 */

#include <stdio.h>
#include <string.h>

#include "base64.h"
#include "sasl.h"
#include "scope.h"

/* RFC 4954 4: the standard alphabet, padded, nothing else. */
int
sasl_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t outsz,
    size_t *outlen)
{
	return base64_decode(in, inlen, 0, out, outsz, outlen);
}

int
sasl_b64_encode(const uint8_t *in, size_t inlen, char *out, size_t outsz)
{
	return base64_encode(in, inlen, out, outsz);
}

/* The worker's bounds: RFC 4616 2, 255 octets each. */
static const struct sasl_plain_bounds plain_bounds = {
	.authzid_max = SASL_NAME_MAX,
	.authcid_max = SASL_NAME_MAX,
	.passwd_max = SASL_NAME_MAX,
};

int
sasl_plain_parse(const uint8_t *msg, size_t len, struct sasl_plain *p)
{
	return sasl_plain_split(msg, len, &plain_bounds, p);
}

#define KVSEP	0x01	/* RFC 7628 3.1; XOAUTH2 borrows it */

static int
is_alpha(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int
is_digit(uint8_t c)
{
	return c >= '0' && c <= '9';
}

/*
 * A name goes to authd and into its logs: no control characters,
 * though the grammars would let some through.
 */
static int
is_name_char(uint8_t c)
{
	return c >= 0x20 && c != 0x7f;
}

/* Does [p, end) start with the string s, exactly? */
static int
starts_with(const uint8_t *p, const uint8_t *end, const char *s)
{
	size_t	 n = strlen(s);

	return (size_t)(end - p) >= n && memcmp(p, s, n) == 0;
}

/*
 * RFC 6750 2.1: credentials = "Bearer" 1*SP b64token, the scheme
 * matched without regard to case (RFC 7235 2.1), and b64token =
 * 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
 * XOAUTH2 is stricter: Google documents exactly one space.
 */
static int
bearer_parse(const uint8_t *v, size_t len, int one_space,
    struct sasl_token *t)
{
	const uint8_t	*end = v + len, *tok;
	size_t		 i;

	if (len < 6)
		return -1;
	for (i = 0; i < 6; i++)
		if ((v[i] | 0x20) != (uint8_t)"bearer"[i])
			return -1;
	v += 6;
	if (v == end || *v != ' ')
		return -1;
	while (v < end && *v == ' ') {
		v++;
		if (one_space)
			break;
	}
	tok = v;
	while (v < end && (is_alpha(*v) || is_digit(*v) || *v == '-' ||
	    *v == '.' || *v == '_' || *v == '~' || *v == '+' || *v == '/'))
		v++;
	if (v == tok)
		return -1;
	while (v < end && *v == '=')
		v++;
	if (v != end || (size_t)(end - tok) > SASL_TOKEN_MAX)
		return -1;
	t->token = tok;
	t->token_len = (size_t)(end - tok);
	return 0;
}

static int
xoauth2_parse(const uint8_t *p, const uint8_t *end, struct sasl_token *t)
{
	const uint8_t	*sep;
	size_t		 ulen;

	if (!starts_with(p, end, "user="))
		return -1;
	p += 5;
	if ((sep = memchr(p, KVSEP, (size_t)(end - p))) == NULL)
		return -1;
	ulen = (size_t)(sep - p);
	if (ulen == 0 || ulen > SASL_NAME_MAX)
		return -1;
	for (size_t i = 0; i < ulen; i++)
		if (!is_name_char(p[i]))
			return -1;
	memcpy(t->user, p, ulen);
	t->user[ulen] = '\0';
	p = sep + 1;
	if (!starts_with(p, end, "auth="))
		return -1;
	p += 5;
	if ((sep = memchr(p, KVSEP, (size_t)(end - p))) == NULL ||
	    bearer_parse(p, (size_t)(sep - p), 1, t) == -1)
		return -1;
	/* The pair's separator, then the message's: nothing after. */
	p = sep + 1;
	if (end - p != 1 || *p != KVSEP)
		return -1;
	return 0;
}

int
sasl_xoauth2_parse(const uint8_t *msg, size_t len, struct sasl_token *t)
{
	memset(t, 0, sizeof(*t));
	if (memchr(msg, '\0', len) != NULL ||
	    xoauth2_parse(msg, msg + len, t) == -1) {
		explicit_bzero(t, sizeof(*t));
		return -1;
	}
	return 0;
}

/*
 * RFC 5801 4: gs2-authzid = "a=" saslname; saslname =
 * 1*(UTF8-char-safe / "=2C" / "=3D"), so a raw ',' ends it and any
 * other '=' is an error.  Returns the first octet after the name.
 */
static const uint8_t *
saslname_parse(const uint8_t *p, const uint8_t *end, char *name)
{
	size_t	 n = 0;
	uint8_t	 c;

	while (p < end && *p != ',') {
		if (*p == '=') {
			if (starts_with(p, end, "=2C"))
				c = ',';
			else if (starts_with(p, end, "=3D"))
				c = '=';
			else
				return NULL;
			p += 3;
		} else if (is_name_char(*p))
			c = *p++;
		else
			return NULL;
		if (n == SASL_NAME_MAX)
			return NULL;
		name[n++] = (char)c;
	}
	if (n == 0)
		return NULL;
	name[n] = '\0';
	return p;
}

/*
 * gs2-header = gs2-cbind-flag "," [ gs2-authzid ] ","; we offer no
 * -PLUS mechanism, so "p=" (the client requires channel binding) is
 * refused, and so is RFC 5801's "F," which RFC 7628 does not allow.
 */
static const uint8_t *
gs2_header_parse(const uint8_t *p, const uint8_t *end, struct sasl_token *t)
{
	if (p == end || (*p != 'n' && *p != 'y'))
		return NULL;
	p++;
	if (p == end || *p++ != ',')
		return NULL;
	if (starts_with(p, end, "a=") &&
	    (p = saslname_parse(p + 2, end, t->user)) == NULL)
		return NULL;
	if (p == end || *p++ != ',')
		return NULL;
	return p;
}

/* RFC 7628 3.1: value = *(VCHAR / SP / HTAB / CR / LF) */
static int
kv_value_ok(const uint8_t *v, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((v[i] < 0x21 || v[i] > 0x7e) && v[i] != ' ' &&
		    v[i] != '\t' && v[i] != '\r' && v[i] != '\n')
			return 0;
	return 1;
}

/*
 * client-resp = gs2-header kvsep *kvpair kvsep, kvpair = key "="
 * value kvsep, key = 1*ALPHA.  "auth" once and only once; host and
 * port, and keys we do not know, are checked and ignored.
 */
static int
oauthbearer_parse(const uint8_t *p, const uint8_t *end, struct sasl_token *t)
{
	const uint8_t	*key, *sep;
	size_t		 keylen;
	int		 have_auth = 0;

	if ((p = gs2_header_parse(p, end, t)) == NULL)
		return -1;
	if (p == end || *p++ != KVSEP)
		return -1;
	for (;;) {
		if (p == end)
			return -1;
		if (*p == KVSEP)
			break;
		for (key = p; p < end && is_alpha(*p); p++)
			;
		keylen = (size_t)(p - key);
		if (keylen == 0 || p == end || *p++ != '=')
			return -1;
		if ((sep = memchr(p, KVSEP, (size_t)(end - p))) == NULL ||
		    !kv_value_ok(p, (size_t)(sep - p)))
			return -1;
		if (keylen == 4 && memcmp(key, "auth", 4) == 0) {
			if (have_auth++ ||
			    bearer_parse(p, (size_t)(sep - p), 0, t) == -1)
				return -1;
		}
		p = sep + 1;
	}
	if (end - p != 1 || !have_auth)
		return -1;
	return 0;
}

int
sasl_oauthbearer_parse(const uint8_t *msg, size_t len, struct sasl_token *t)
{
	memset(t, 0, sizeof(*t));
	if (memchr(msg, '\0', len) != NULL ||
	    oauthbearer_parse(msg, msg + len, t) == -1) {
		explicit_bzero(t, sizeof(*t));
		return -1;
	}
	return 0;
}

/*
 * RFC 7628 3.2.2: {"status":"invalid_token"}, the scope that would do
 * when there is one.  Google's XOAUTH2 says the same in its own words.
 * NQCHAR needs no JSON escaping: no '"', no '\'.
 */
int
sasl_token_error(int xoauth2, const char *scope, char *out, size_t outsz)
{
	char	 json[512];
	int	 n;

	if (scope != NULL && *scope != '\0' && !scope_valid(scope))
		return -1;
	if (scope == NULL || *scope == '\0')
		n = snprintf(json, sizeof(json), "{\"status\":\"%s\"%s}",
		    xoauth2 ? "401" : "invalid_token",
		    xoauth2 ? ",\"schemes\":\"bearer\"" : "");
	else
		n = snprintf(json, sizeof(json), "{\"status\":\"%s\"%s,"
		    "\"scope\":\"%s\"}", xoauth2 ? "401" : "invalid_token",
		    xoauth2 ? ",\"schemes\":\"bearer\"" : "", scope);
	if (n < 0 || (size_t)n >= sizeof(json))
		return -1;
	return sasl_b64_encode((const uint8_t *)json, (size_t)n, out, outsz);
}
