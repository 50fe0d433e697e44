/*
 * fuzz_ldap_filter.c -- a client's login put into an LDAP filter
 * (authd/ldap_filter.c).
 *
 * Input: the login, any octets.  Properties:
 *   - the filter is the template's "(uid=" value ")" and nothing else:
 *     the value holds no '(', ')', '*' and no NUL, so the login can
 *     only ever be one equality assertion's value (RFC 4515 3);
 *   - the value, its escapes undone, is the login octet for octet;
 *   - a login too long for the buffer is refused, never cut.
 */

#include <string.h>

#include "fuzz.h"
#include "ldap_filter.h"

#define OUT_MAX		1024

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char		 out[OUT_MAX], back[OUT_MAX], err[128];
	const char	*v;
	size_t		 vlen, i, o = 0;
	int		 hi, lo;

	if (ldap_filter_build("(uid=%u)", (const char *)data, size, out,
	    sizeof(out), err, sizeof(err)) == -1) {
		FUZZ_ASSERT(out[0] == '\0');
		/* Refused only when the escaped login cannot fit. */
		FUZZ_ASSERT(size + 6 >= sizeof(out) / 3);
		return 0;
	}
	FUZZ_ASSERT(strncmp(out, "(uid=", 5) == 0);
	vlen = strlen(out) - 6;
	FUZZ_ASSERT(out[5 + vlen] == ')');
	v = out + 5;
	FUZZ_ASSERT(memchr(v, '(', vlen) == NULL);
	FUZZ_ASSERT(memchr(v, ')', vlen) == NULL);
	FUZZ_ASSERT(memchr(v, '*', vlen) == NULL);
	for (i = 0; i < vlen; i++) {
		if (v[i] != '\\') {
			back[o++] = v[i];
			continue;
		}
		FUZZ_ASSERT(i + 2 < vlen);
		hi = hexval(v[i + 1]);
		lo = hexval(v[i + 2]);
		FUZZ_ASSERT(hi >= 0 && lo >= 0);
		back[o++] = (char)(hi << 4 | lo);
		i += 2;
	}
	FUZZ_ASSERT(o == size);
	FUZZ_ASSERT(memcmp(back, data, size) == 0);
	return 0;
}
