/*
 * name.c -- the store's rules for names: what a user name, an address
 * and a piece of stored text may hold, and the normal form a name is
 * stored in (store_name_normalize()).
 *
 * Guarantees:
 * - a name is accepted only as well-formed UTF-8 without control
 *   characters (C0, DEL, C1) or spaces, 1..CONF_AUTH_NAME_MAX - 1
 *   octets, with a non-empty local part and domain around its last
 *   '@'; only the domain is folded, to ASCII lower case (RFC 5321 2.4);
 * - an address is such a name with an '@', at most STORE_ADDR_MAX
 *   octets (RFC 5321 4.5.3.1.3);
 * - nothing here touches LMDB or keeps state: every call is
 *   thread-safe.
 */

#include <sys/types.h>

#include <stdint.h>
#include <string.h>

#include "config.h"
#include "store.h"
#include "store_int.h"
#include "util.h"

/*
 * 1 if s[0..len) is well-formed UTF-8 without control characters
 * (C0, DEL, C1), nor spaces unless space_ok; else 0, with err saying
 * which.
 */
int
store_text_ok(const unsigned char *s, size_t len, int space_ok, char *err,
    size_t errlen)
{
	size_t		 i = 0, n, k;
	uint32_t	 cp, min;
	unsigned char	 c;

	while (i < len) {
		c = s[i];
		if (c < 0x80) {
			if (c == ' ' && !space_ok) {
				errbuf_set(err, errlen, "contains a space");
				return 0;
			}
			if (c < 0x20 || c == 0x7f) {
				errbuf_set(err, errlen, "contains a control character");
				return 0;
			}
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
			min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
			min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
			min = 0x10000;
		} else
			goto bad;
		if (len - i - 1 < n)
			goto bad;
		for (k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				goto bad;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			goto bad;
		if (cp <= 0x9f) {
			errbuf_set(err, errlen, "contains a control character");
			return 0;
		}
		i += n + 1;
	}
	return 1;
 bad:
	errbuf_set(err, errlen, "is not valid UTF-8");
	return 0;
}

/* store_name_normalize(), saying why a name is refused. */
int
store_name_check(const char *in, char *out, size_t outlen, char *err,
    size_t errlen)
{
	const char	*at;
	size_t		 len, i;

	errbuf_set(err, errlen, "is not valid");
	if (in == NULL || out == NULL || outlen == 0)
		return -1;
	len = strnlen(in, CONF_AUTH_NAME_MAX);
	if (len == 0) {
		errbuf_set(err, errlen, "is empty");
		return -1;
	}
	if (len >= CONF_AUTH_NAME_MAX || len >= outlen) {
		errbuf_set(err, errlen, "is too long");
		return -1;
	}
	if (!store_text_ok((const unsigned char *)in, len, 0, err, errlen))
		return -1;
	if ((at = strrchr(in, '@')) != NULL) {
		if (at == in) {
			errbuf_set(err, errlen, "has an empty local part");
			return -1;
		}
		if (at[1] == '\0') {
			errbuf_set(err, errlen, "has an empty domain");
			return -1;
		}
	}
	i = at == NULL ? len : (size_t)(at - in);
	memmove(out, in, len);
	out[len] = '\0';
	for (; i < len; i++)
		if (out[i] >= 'A' && out[i] <= 'Z')
			out[i] = (char)(out[i] - 'A' + 'a');
	return 0;
}

int
store_name_normalize(const char *in, char *out, size_t outlen)
{
	return store_name_check(in, out, outlen, NULL, 0);
}

/* An address: a name with an '@', no longer than STORE_ADDR_MAX. */
int
store_addr_normalize(const char *in, char *out, size_t outlen, char *err,
    size_t errlen)
{
	if (strnlen(in, STORE_ADDR_MAX + 1) > STORE_ADDR_MAX) {
		errbuf_set(err, errlen, "is longer than 254 octets");
		return -1;
	}
	if (store_name_check(in, out, outlen, err, errlen) == -1)
		return -1;
	if (strchr(out, '@') == NULL) {
		errbuf_set(err, errlen, "has no '@'");
		return -1;
	}
	return 0;
}

void
store_name_error(const char *name, const char *why, char *err, size_t errlen)
{
	char	 safe[CONF_AUTH_NAME_MAX];

	if (name == NULL)
		name = "";
	errbuf_set(err, errlen, "user name \"%s\" %s",
	    escape_text(name, strnlen(name, CONF_AUTH_NAME_MAX), safe,
	    sizeof(safe)), why);
}
