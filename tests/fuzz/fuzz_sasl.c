/*
 * fuzz_sasl.c -- the SASL decoders of the worker (worker/sasl.c).
 *
 * Input: what a client sends as one AUTH response, before or after
 * base64.  The input goes through the PLAIN, XOAUTH2 and OAUTHBEARER
 * parsers as a decoded message, and through the strict base64 decoder;
 * when that accepts it, the decoded octets go through the parsers too
 * (that is the worker's path for every mechanism, LOGIN included) and
 * through the LOGIN rules.  Properties:
 *   - base64 is canonical: what decodes encodes back to the input;
 *   - PLAIN's three parts tile the message, within the name limits;
 *   - a token is inside the message, b64token octets only, and the
 *     user is a NUL-terminated name without control characters;
 *   - a refused message leaves the token struct wiped.
 * The scope of a token error challenge is fuzzed with the input too.
 */

#include <string.h>

#include "fuzz.h"
#include "sasl.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static int
is_b64token_char(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~' || c == '+' || c == '/' || c == '=';
}

static void
check_plain(const uint8_t *msg, size_t len)
{
	struct sasl_plain	 p;

	if (sasl_plain_parse(msg, len, &p) == -1)
		return;
	FUZZ_ASSERT(p.authzid == msg);
	FUZZ_ASSERT(p.authcid == msg + p.authzid_len + 1);
	FUZZ_ASSERT(p.passwd == p.authcid + p.authcid_len + 1);
	FUZZ_ASSERT(p.authzid_len + p.authcid_len + p.passwd_len + 2 == len);
	FUZZ_ASSERT(p.authcid_len > 0 && p.authcid_len <= SASL_NAME_MAX);
	FUZZ_ASSERT(p.passwd_len > 0 && p.passwd_len <= SASL_NAME_MAX);
	FUZZ_ASSERT(p.authzid_len <= SASL_NAME_MAX);
	FUZZ_ASSERT(memchr(p.authcid, '\0', p.authcid_len) == NULL);
	FUZZ_ASSERT(memchr(p.passwd, '\0', p.passwd_len) == NULL);
}

static void
check_token(const uint8_t *msg, size_t len, int xoauth2)
{
	struct sasl_token	 t;
	static const uint8_t	 zero[sizeof(t)];
	size_t			 ulen;
	int			 rv;

	rv = xoauth2 ? sasl_xoauth2_parse(msg, len, &t) :
	    sasl_oauthbearer_parse(msg, len, &t);
	if (rv == -1) {
		FUZZ_ASSERT(memcmp(&t, zero, sizeof(t)) == 0);
		return;
	}
	FUZZ_ASSERT(rv == 0);
	ulen = strnlen(t.user, sizeof(t.user));
	FUZZ_ASSERT(ulen <= SASL_NAME_MAX);
	FUZZ_ASSERT(!xoauth2 || ulen > 0);
	for (size_t i = 0; i < ulen; i++)
		FUZZ_ASSERT((uint8_t)t.user[i] >= 0x20 &&
		    (uint8_t)t.user[i] != 0x7f);
	FUZZ_ASSERT(t.token >= msg && t.token + t.token_len <= msg + len);
	FUZZ_ASSERT(t.token_len > 0 && t.token_len <= SASL_TOKEN_MAX);
	FUZZ_ASSERT(t.token[0] != '=');
	for (size_t i = 0; i < t.token_len; i++)
		FUZZ_ASSERT(is_b64token_char(t.token[i]));
}

/* LOGIN: each answer a name or password of 1..255 octets, no NUL. */
static int
login_answer_ok(const uint8_t *msg, size_t len)
{
	return len > 0 && len <= SASL_NAME_MAX &&
	    memchr(msg, '\0', len) == NULL;
}

static void
check_messages(const uint8_t *msg, size_t len)
{
	check_plain(msg, len);
	check_token(msg, len, 1);
	check_token(msg, len, 0);
	(void)login_answer_ok(msg, len);
}

static void
check_b64(const uint8_t *data, size_t size)
{
	uint8_t	 out[8192], *small;
	char	*again;
	size_t	 outlen = 0, smalllen;

	if (sasl_b64_decode((const char *)data, size, out, sizeof(out),
	    &outlen) == -1)
		return;
	FUZZ_ASSERT(outlen <= sizeof(out));
	FUZZ_ASSERT(outlen == size / 4 * 3 - (size > 0 && data[size - 1] ==
	    '=') - (size > 1 && data[size - 2] == '='));
	/* Strict base64 is canonical: it encodes back to the input. */
	if ((again = malloc(size + 1)) == NULL)
		abort();
	FUZZ_ASSERT(sasl_b64_encode(out, outlen, again, size + 1) == 0);
	FUZZ_ASSERT(strlen(again) == size && memcmp(again, data, size) == 0);
	free(again);
	/* An output buffer of exactly the decoded size is enough. */
	if ((small = malloc(outlen ? outlen : 1)) == NULL)
		abort();
	FUZZ_ASSERT(sasl_b64_decode((const char *)data, size, small, outlen,
	    &smalllen) == 0 && smalllen == outlen);
	FUZZ_ASSERT(memcmp(small, out, outlen) == 0);
	if (outlen > 0)
		FUZZ_ASSERT(sasl_b64_decode((const char *)data, size, small,
		    outlen - 1, &smalllen) == -1);
	free(small);
	check_messages(out, outlen);
}

static void
check_scope(const uint8_t *data, size_t size)
{
	char	 scope[300], out[600];
	uint8_t	 json[600];
	size_t	 n = size < sizeof(scope) - 1 ? size : sizeof(scope) - 1;
	size_t	 jlen;

	memcpy(scope, data, n);
	scope[n] = '\0';
	for (int xoauth2 = 0; xoauth2 < 2; xoauth2++) {
		if (sasl_token_error(xoauth2, scope, out, sizeof(out)) == -1)
			continue;
		FUZZ_ASSERT(sasl_b64_decode(out, strlen(out), json,
		    sizeof(json), &jlen) == 0);
		FUZZ_ASSERT(jlen > 2 && json[0] == '{' &&
		    json[jlen - 1] == '}');
		/* The scope needs no escaping: no quote, no backslash. */
		for (size_t i = 0; i < jlen; i++)
			FUZZ_ASSERT(json[i] >= 0x20 && json[i] < 0x7f &&
			    json[i] != '\\');
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_messages(data, size);
	check_b64(data, size);
	check_scope(data, size);
	return 0;
}
