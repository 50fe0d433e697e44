/*
 * http_request.c -- the head of an HTTP/1.x request (RFC 9112), as
 * much of it as the metrics endpoint needs, and nothing more lenient
 * than that: GET only, an origin-form target, CR LF line ends (a
 * bare LF is refused at once, RFC 9112 2.2 allows either), no
 * obsolete line folding (RFC 9112 5.2), no body, Host in HTTP/1.1
 * (RFC 9112 3.2).  Pure: no I/O, no logging; fuzzed
 * (tests/fuzz/fuzz_http_request.c).  The bearer token it copies out
 * is the caller's to wipe.
 */

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "http_request.h"

/* RFC 9110 5.6.2: tchar */
static int
is_tchar(int c)
{
	return isalnum(c) || (c != '\0' && strchr("!#$%&'*+-.^_`|~", c));
}

/* A header value's octets: visible, SP, HTAB, obs-text; no CTLs. */
static int
is_vchar(int c)
{
	return c == ' ' || c == '\t' || (c > 0x20 && c != 0x7f);
}

/* The next CR LF; a bare LF before it sets *bare (RFC 9112 2.2). */
static const char *
find_crlf(const char *p, const char *end, int *bare)
{
	for (const char *q = p; q < end; q++) {
		if (*q != '\n')
			continue;
		if (q == p || q[-1] != '\r') {
			*bare = 1;
			return NULL;
		}
		return q - 1;
	}
	return NULL;
}

/* "GET /metrics?x HTTP/1.1"; *v11 set for HTTP/1.1. */
static int
request_line(const char *p, const char *eol, struct http_request *req,
    int *v11)
{
	const char	*sp1, *sp2, *q;
	size_t		 plen;

	if ((sp1 = memchr(p, ' ', eol - p)) == NULL ||
	    (sp2 = memchr(sp1 + 1, ' ', eol - sp1 - 1)) == NULL)
		return 400;
	for (q = p; q < sp1; q++)
		if (!is_tchar((unsigned char)*q))
			return 400;
	if (sp1 == p || sp2 == sp1 + 1)
		return 400;
	if (eol - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return eol - sp2 - 1 >= 5 && memcmp(sp2 + 1, "HTTP/", 5) == 0 ?
		    505 : 400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return 505;
	*v11 = sp2[8] == '1';
	for (q = sp1 + 1; q < sp2; q++)
		if ((unsigned char)*q <= 0x20 || *q == 0x7f)
			return 400;
	if (sp1 - p != 3 || memcmp(p, "GET", 3) != 0)
		return 405;
	if (sp1[1] != '/')
		return 400;
	if ((q = memchr(sp1 + 1, '?', sp2 - sp1 - 1)) == NULL)
		q = sp2;
	plen = q - sp1 - 1;
	if (plen >= sizeof(req->path))
		plen = 0;	/* too long for any path we serve: 404 */
	memcpy(req->path, sp1 + 1, plen);
	req->path[plen] = '\0';
	return 200;
}

/* Accept: does it name OpenMetrics at all (q=0 aside)? */
static void
header_accept(const char *v, size_t len, struct http_request *req)
{
	static const char	 om[] = "application/openmetrics-text";

	for (size_t i = 0; i + sizeof(om) - 1 <= len; i++)
		if (strncasecmp(v + i, om, sizeof(om) - 1) == 0) {
			req->openmetrics = 1;
			return;
		}
}

/* Authorization: Bearer TOKEN (RFC 6750 2.1). */
static int
header_authorization(const char *v, size_t len, struct http_request *req)
{
	if (len < 7 || strncasecmp(v, "Bearer ", 7) != 0)
		return 0;	/* another scheme: no token, 401 later */
	v += 7;
	len -= 7;
	while (len > 0 && v[0] == ' ') {
		v++;
		len--;
	}
	if (len == 0 || len >= sizeof(req->bearer) || req->has_bearer)
		return 400;
	memcpy(req->bearer, v, len);
	req->bearer[len] = '\0';
	req->has_bearer = 1;
	return 0;
}

/* One "name: value" line; *host counts Host lines. */
static int
header_line(const char *p, const char *eol, struct http_request *req,
    int *host)
{
	const char	*colon, *v, *e;
	size_t		 nlen;

	if (*p == ' ' || *p == '\t')
		return 400;	/* obs-fold */
	if ((colon = memchr(p, ':', eol - p)) == NULL || colon == p)
		return 400;
	for (const char *q = p; q < colon; q++)
		if (!is_tchar((unsigned char)*q))
			return 400;
	nlen = colon - p;
	for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
		;
	for (e = eol; e > v && (e[-1] == ' ' || e[-1] == '\t'); e--)
		;
	for (const char *q = v; q < e; q++)
		if (!is_vchar((unsigned char)*q))
			return 400;
	if (nlen == 4 && strncasecmp(p, "Host", 4) == 0)
		(*host)++;
	else if (nlen == 6 && strncasecmp(p, "Accept", 6) == 0)
		header_accept(v, e - v, req);
	else if (nlen == 13 && strncasecmp(p, "Authorization", 13) == 0)
		return header_authorization(v, e - v, req);
	else if ((nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0 &&
	    !(e - v == 1 && *v == '0')) ||
	    (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0))
		return 400;	/* a GET with a body */
	return 0;
}

int
http_request_parse(const char *buf, size_t len, struct http_request *req)
{
	const char	*p = buf, *end = buf + len, *eol;
	int		 rc, v11 = 0, host = 0, nheaders = 0, bare = 0;

	memset(req, 0, sizeof(*req));
	if ((eol = find_crlf(p, end, &bare)) == NULL)
		return bare ? 400 : len >= HTTP_HEAD_MAX ? 414 : 0;
	if ((rc = request_line(p, eol, req, &v11)) != 200)
		return rc;
	for (p = eol + 2;; p = eol + 2) {
		if ((eol = find_crlf(p, end, &bare)) == NULL)
			return bare ? 400 : len >= HTTP_HEAD_MAX ? 431 : 0;
		if (eol == p)
			break;		/* the empty line ends the head */
		if (++nheaders > HTTP_HEADERS_MAX)
			return 431;
		if ((rc = header_line(p, eol, req, &host)) != 0)
			return rc;
	}
	if (eol + 2 - buf > HTTP_HEAD_MAX)
		return 431;
	if (v11 ? host != 1 : host > 1)
		return 400;
	return 200;
}
