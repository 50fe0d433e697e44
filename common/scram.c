/*
 * scram.c -- parsers of the two messages a SCRAM client sends (RFC
 * 5802 7), for SCRAM-SHA-256 and -PLUS (RFC 7677).
 *
 * Strict: the attributes in their order, a saslname's '=' only as
 * "=2C" or "=3D", printable nonces without ',', base64 as RFC 4648 4
 * says, the mandatory-extension "m=" refused (RFC 5802 7: a server
 * that does not know it must fail), no NUL anywhere.  Pure: no I/O,
 * no state, no logging.
 */

#include <string.h>

#include "base64.h"
#include "scram.h"

/* printable = %x21-2B / %x2D-7E: no ',' (RFC 5802 7) */
static int
printable(const uint8_t *p, size_t len)
{
	size_t	 i;

	if (len == 0)
		return 0;
	for (i = 0; i < len; i++)
		if (p[i] < 0x21 || p[i] > 0x7e || p[i] == ',')
			return 0;
	return 1;
}

/* The end of the attribute at p: the next ',' or end. */
static size_t
attr_len(const uint8_t *p, size_t len)
{
	const uint8_t	*c = memchr(p, ',', len);

	return c != NULL ? (size_t)(c - p) : len;
}

/*
 * saslname (RFC 5802 7): UTF-8 without NUL, ',' and '=', which come
 * as "=2C" and "=3D".  Decoded into out (outlen octets, NUL ended).
 * UTF-8 validity is the user name rules' business (store_name_*).
 */
static int
saslname(const uint8_t *p, size_t len, char *out, size_t outlen)
{
	size_t	 i, o = 0;
	char	 c;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		c = (char)p[i];
		if (c == '\0' || c == ',')
			return -1;
		if (c == '=') {
			if (len - i < 3)
				return -1;
			if (p[i + 1] == '2' && p[i + 2] == 'C')
				c = ',';
			else if (p[i + 1] == '3' && p[i + 2] == 'D')
				c = '=';
			else
				return -1;
			i += 2;
		}
		if (o + 1 >= outlen)
			return -1;
		out[o++] = c;
	}
	out[o] = '\0';
	return 0;
}

/* gs2-cbind-flag "," [authzid] ",": the header's length, or -1. */
static int
gs2_header(const uint8_t *m, size_t len, struct scram_client_first *f)
{
	size_t	 o = 0, n;

	if (len < 3)
		return -1;
	f->cbflag = (char)m[0];
	if (m[0] == 'n' || m[0] == 'y') {
		o = 1;
	} else if (m[0] == 'p' && m[1] == '=') {
		/* cb-name = 1*(ALPHA / DIGIT / "." / "-") */
		n = attr_len(m + 2, len - 2);
		if (n == 0 || n >= sizeof(f->cbname))
			return -1;
		for (size_t i = 0; i < n; i++) {
			uint8_t	 c = m[2 + i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9') || c == '.' || c == '-'))
				return -1;
		}
		memcpy(f->cbname, m + 2, n);
		f->cbname[n] = '\0';
		o = 2 + n;
	} else
		return -1;
	if (o >= len || m[o++] != ',')
		return -1;
	if (o + 2 <= len && m[o] == 'a' && m[o + 1] == '=') {
		n = attr_len(m + o + 2, len - o - 2);
		if (saslname(m + o + 2, n, f->authzid, sizeof(f->authzid)) == -1)
			return -1;
		o += 2 + n;
	}
	if (o >= len || m[o++] != ',')
		return -1;
	return (int)o;
}

int
scram_client_first_parse(const uint8_t *m, size_t len,
    struct scram_client_first *f)
{
	size_t	 o, n;
	int	 h;

	memset(f, 0, sizeof(*f));
	if (len > SCRAM_MSG_MAX || memchr(m, '\0', len) != NULL ||
	    (h = gs2_header(m, len, f)) == -1)
		goto bad;
	o = f->gs2_len = (size_t)h;
	f->bare = (const char *)m + o;
	f->bare_len = len - o;
	/* "m=" first would be a mandatory extension: refused. */
	if (len - o < 2 || m[o] != 'n' || m[o + 1] != '=')
		goto bad;
	n = attr_len(m + o + 2, len - o - 2);
	if (saslname(m + o + 2, n, f->user, sizeof(f->user)) == -1)
		goto bad;
	o += 2 + n;
	if (len - o < 3 || m[o] != ',' || m[o + 1] != 'r' || m[o + 2] != '=')
		goto bad;
	o += 3;
	n = attr_len(m + o, len - o);
	if (n > SCRAM_NONCE_MAX || !printable(m + o, n))
		goto bad;
	f->nonce = (const char *)m + o;
	f->nonce_len = n;
	o += n;
	/* Extensions after the nonce are allowed and ignored (RFC 5802 7). */
	if (o < len && m[o] != ',')
		goto bad;
	return 0;
 bad:
	memset(f, 0, sizeof(*f));
	return -1;
}

int
scram_client_final_parse(const uint8_t *m, size_t len,
    struct scram_client_final *f)
{
	const uint8_t	*p;
	size_t		 o = 0, n, plen;

	memset(f, 0, sizeof(*f));
	if (len > SCRAM_MSG_MAX || memchr(m, '\0', len) != NULL ||
	    len < 2 || m[0] != 'c' || m[1] != '=')
		goto bad;
	n = attr_len(m + 2, len - 2);
	if (n == 0 || base64_decode((const char *)m + 2, n, 0, NULL, 0,
	    NULL) == -1)
		goto bad;
	f->cbind = (const char *)m + 2;
	f->cbind_len = n;
	o = 2 + n;
	if (len - o < 3 || m[o] != ',' || m[o + 1] != 'r' || m[o + 2] != '=')
		goto bad;
	o += 3;
	n = attr_len(m + o, len - o);
	if (n > 2 * SCRAM_NONCE_MAX || !printable(m + o, n))
		goto bad;
	f->nonce = (const char *)m + o;
	f->nonce_len = n;
	o += n;
	/* The proof is the last attribute: find the last ",p=". */
	for (p = m + len; p > m + o && p[-1] != ','; p--)
		;
	if (p == m + o || (size_t)(m + len - p) < 2 || p[0] != 'p' ||
	    p[1] != '=')
		goto bad;
	f->without_proof_len = (size_t)(p - 1 - m);
	plen = (size_t)(m + len - p) - 2;
	if (base64_decode((const char *)p + 2, plen, 0, f->proof,
	    sizeof(f->proof), &n) == -1 || n != SCRAM_PROOF_LEN)
		goto bad;
	/* Anything between the nonce and the proof: extensions. */
	if (f->without_proof_len != o && m[o] != ',')
		goto bad;
	return 0;
 bad:
	memset(f, 0, sizeof(*f));
	return -1;
}
