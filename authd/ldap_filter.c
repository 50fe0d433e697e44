/*
 * ldap_filter.c -- the login in an LDAP search filter (RFC 4515).
 *
 * A login comes from the client: "*" in it would make a presence or
 * substring match, ")(" a second assertion, a NUL a shorter value than
 * the one we meant.  RFC 4515 3 says which octets a value must escape
 * (NUL, '(', ')', '*', '\'); we escape exactly those, so that whatever
 * the client sends stays one equality assertion's value and matches at
 * most what that exact value matches.  Pure: no I/O, no state, fuzzed
 * (tests/fuzz/fuzz_ldap_filter.c).
 */

#include <string.h>

#include "ldap_filter.h"
#include "util.h"

int
ldap_filter_escape(const char *in, size_t len, char *out, size_t outlen)
{
	static const char	 hex[] = "0123456789abcdef";
	size_t			 i, o = 0;
	unsigned char		 c;

	if (outlen == 0)
		return -1;
	for (i = 0; i < len; i++) {
		c = (unsigned char)in[i];
		if (c == '\0' || c == '(' || c == ')' || c == '*' ||
		    c == '\\') {
			if (outlen - o < 4)
				goto full;
			out[o++] = '\\';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else {
			if (outlen - o < 2)
				goto full;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return (int)o;
full:
	out[0] = '\0';
	return -1;
}

int
ldap_filter_build(const char *tmpl, const char *login, size_t len,
    char *out, size_t outlen, char *err, size_t errlen)
{
	const char	*p;
	size_t		 o = 0;
	int		 n;

	if (outlen == 0) {
		errbuf_set(err, errlen, "no room for the filter");
		return -1;
	}
	for (p = tmpl; *p != '\0'; p++) {
		if (*p == '%' && p[1] == 'u') {
			if ((n = ldap_filter_escape(login, len, out + o,
			    outlen - o)) == -1)
				goto toolong;
			o += (size_t)n;
			p++;
			continue;
		}
		if (*p == '%' && p[1] != '%') {
			errbuf_set(err, errlen, "the filter has a %% that is "
			    "neither %%u nor %%%%");
			out[0] = '\0';
			return -1;
		}
		if (*p == '%')
			p++;
		if (outlen - o < 2)
			goto toolong;
		out[o++] = *p;
	}
	out[o] = '\0';
	return 0;
toolong:
	errbuf_set(err, errlen, "the filter with this login is longer than "
	    "%zu octets", outlen - 1);
	out[0] = '\0';
	return -1;
}
