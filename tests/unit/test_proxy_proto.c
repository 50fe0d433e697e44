/*
 * test_proxy_proto.c -- the PROXY protocol header parser
 * (worker/proxy_proto.c) against HAProxy's doc/proxy-protocol.txt:
 * version 1 lines (2.1) and version 2 blocks (2.2), whole, cut at
 * every octet, and refused for every way the document says to refuse.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "proxy_proto.h"

static const uint8_t sig[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

static char	 err[256];

static int
parse(const void *buf, size_t len, struct proxy_header *h)
{
	err[0] = '\0';
	return proxy_header_parse(buf, len, h, err, sizeof(err));
}

static int
parse_str(const char *s, struct proxy_header *h)
{
	return parse(s, strlen(s), h);
}

/* The source address and port as "ADDR PORT". */
static const char *
src(const struct proxy_header *h)
{
	static char	 buf[INET6_ADDRSTRLEN + 8];
	char		 a[INET6_ADDRSTRLEN];
	const void	*p;
	int		 port;

	if (h->src.ss_family == AF_INET) {
		p = &((const struct sockaddr_in *)&h->src)->sin_addr;
		port = ntohs(((const struct sockaddr_in *)&h->src)->sin_port);
	} else {
		p = &((const struct sockaddr_in6 *)&h->src)->sin6_addr;
		port = ntohs(((const struct sockaddr_in6 *)&h->src)->sin6_port);
	}
	cr_assert_not_null(inet_ntop(h->src.ss_family, p, a, sizeof(a)));
	(void)snprintf(buf, sizeof(buf), "%s %d", a, port);
	return buf;
}

/* A version 2 header: fixed part, then body of blen octets. */
static size_t
v2(uint8_t *out, int ver_cmd, int fam, const void *body, size_t blen)
{
	memcpy(out, sig, sizeof(sig));
	out[12] = (uint8_t)ver_cmd;
	out[13] = (uint8_t)fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen > 0)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

/* Every proper prefix of a good header is "not yet", never refused. */
static void
assert_prefixes_wait(const uint8_t *buf, size_t len)
{
	struct proxy_header	 h;

	for (size_t i = 0; i < len; i++)
		cr_assert_eq(parse(buf, i, &h), 0, "prefix %zu of %zu: %s", i,
		    len, err);
}

Test(proxy_proto, v1_tcp4)
{
	const char		*s = "PROXY TCP4 192.0.2.7 198.51.100.1 56324 "
				    "587\r\nEHLO x\r\n";
	struct proxy_header	 h;
	struct sockaddr_in	*d = (struct sockaddr_in *)&h.dst;

	cr_assert_eq(parse_str(s, &h), 45, "%s", err);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.has_addr, 1);
	cr_assert_str_eq(src(&h), "192.0.2.7 56324");
	cr_assert_eq(h.srclen, sizeof(struct sockaddr_in));
	cr_assert_eq(d->sin_family, AF_INET);
	cr_assert_eq(ntohs(d->sin_port), 587);
	assert_prefixes_wait((const uint8_t *)s, 45);
}

Test(proxy_proto, v1_tcp6_and_limits)
{
	/* 2.1's worst cases: 104 octets for TCP6, 107 for UNKNOWN. */
	const char *tcp6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	const char *unknown = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:"
	    "ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxy_header	 h;
	char			 longer[200];

	cr_assert_eq(strlen(tcp6), 104);
	cr_assert_eq(parse_str(tcp6, &h), 104, "%s", err);
	cr_assert_str_eq(src(&h), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
	    "65535");
	cr_assert_eq(strlen(unknown), 107);
	cr_assert_eq(parse_str(unknown, &h), 107, "%s", err);
	cr_assert_eq(h.has_addr, 0);
	/* One octet more and there is no CR LF within 107. */
	(void)snprintf(longer, sizeof(longer), "PROXY UNKNOWN %094d\r\n", 0);
	cr_assert_eq(strlen(longer), 110);
	cr_assert_eq(parse_str(longer, &h), -1);
	cr_assert_str_eq(err, "version 1: no CR LF within 107 octets");
	longer[105] = '\r';
	longer[106] = '\n';
	cr_assert_eq(parse(longer, 107, &h), 107, "%s", err);
	longer[105] = '0';
	longer[106] = '\r';
	cr_assert_eq(parse(longer, 107, &h), -1);
	/* Still waiting at 106 octets without a CR would be a lie. */
	cr_assert_eq(parse(longer, 106, &h), -1);

	cr_assert_eq(parse_str("PROXY TCP6 ::1 2001:db8::1 0 25\r\n", &h), 33);
	cr_assert_str_eq(src(&h), "::1 0");
	cr_assert_eq(parse_str("PROXY UNKNOWN\r\n", &h), 15);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.has_addr, 0);
}

Test(proxy_proto, v1_refused)
{
	static const struct {
		const char	*line;
		const char	*why;
	} bad[] = {
		{ "GET / HTTP/1.1\r\n", "not a PROXY protocol header" },
		{ "EHLO x\r\n", "not a PROXY protocol header" },
		{ "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		    "not a PROXY protocol header" },
		{ "PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		    "version 1: want 5 fields after PROXY" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		    "version 1: want 5 fields after PROXY" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
		    "version 1: want 5 fields after PROXY" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
		    "version 1: want 5 fields after PROXY" },
		{ "PROXY\r\n", "not a PROXY protocol header" },
		{ "PROXY \r\n", "version 1: want 5 fields after PROXY" },
		{ "PROXY UNKNOWNX\r\n", "version 1: want 5 fields after PROXY" },
		{ "PROXY TCP7 1.2.3.4 5.6.7.8 1 2\r\n",
		    "version 1: unknown protocol" },
		{ "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		    "version 1: unknown protocol" },
		{ "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
		    "version 1: unknown protocol" },
		{ "PROXY TCP4 1.2.3.04 5.6.7.8 1 2\r\n",
		    "version 1: bad TCP4 address" },
		{ "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		    "version 1: bad TCP4 address" },
		{ "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
		    "version 1: bad TCP4 address" },
		{ "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
		    "version 1: bad TCP4 address" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8. 1 2\r\n",
		    "version 1: bad TCP4 address" },
		{ "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
		    "version 1: bad TCP6 address" },
		{ "PROXY TCP6 ::1 ::g 1 2\r\n", "version 1: bad TCP6 address" },
		{ "PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		    "version 1: bad TCP6 address" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", "version 1: bad port" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
		    "version 1: bad port" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "version 1: bad port" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 +2\r\n", "version 1: bad port" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 100000\r\n",
		    "version 1: bad port" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		    "version 1: octet 0x0a in the line" },
		{ "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rx",
		    "version 1: CR without LF" },
		{ "PROXY TCP4 1.2.3.4\t5.6.7.8 1 2\r\n",
		    "version 1: octet 0x09 in the line" },
		{ "PROXY UNKNOWN \x80\r\n", "version 1: octet 0x80 in the line" },
	};
	struct proxy_header	 h;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse_str(bad[i].line, &h), -1, "%s",
		    bad[i].line);
		cr_assert_str_eq(err, bad[i].why, "%s", bad[i].line);
	}
	/* A NUL is no end of string here. */
	cr_assert_eq(parse("PROXY TCP4\0 1.2.3.4", 19, &h), -1);
	cr_assert_str_eq(err, "version 1: octet 0x00 in the line");
	/* Refused at the first octet that cannot begin a header. */
	cr_assert_eq(parse("E", 1, &h), -1);
	cr_assert_eq(parse("PROXX", 5, &h), -1);
	cr_assert_eq(parse("\x16\x03\x01", 3, &h), -1);
	cr_assert_eq(parse("", 0, &h), 0);
}

Test(proxy_proto, v2_tcp4_with_tlvs)
{
	uint8_t	 body[12 + 3 + 11 + 3 + 7], buf[256];
	struct proxy_header	 h;
	size_t	 len;

	memcpy(body, "\xc0\x00\x02\x07\x7f\x00\x00\x01\xdc\x04\x02\x4b", 12);
	/* PP2_TYPE_AUTHORITY, then PP2_TYPE_SSL with a sub-TLV. */
	memcpy(body + 12, "\x02\x00\x0b" "example.org", 14);
	memcpy(body + 26, "\x20\x00\x07\x01\x00\x00\x00\x00\x21\x00", 10);
	len = v2(buf, 0x21, 0x11, body, sizeof(body));
	cr_assert_eq(len, 16 + 36);
	/* A sub-TLV's octets are the SSL TLV's own business. */
	buf[len] = 'E';
	cr_assert_eq(parse(buf, len + 1, &h), (int)len, "%s", err);
	cr_assert_eq(h.version, 2);
	cr_assert_eq(h.has_addr, 1);
	cr_assert_str_eq(src(&h), "192.0.2.7 56324");
	cr_assert_eq(ntohs(((struct sockaddr_in *)&h.dst)->sin_port), 587);
	assert_prefixes_wait(buf, len);
}

Test(proxy_proto, v2_tcp6_local_unspec)
{
	uint8_t	 body[36], buf[600];
	struct proxy_header	 h;
	size_t	 len;

	memset(body, 0, sizeof(body));
	cr_assert(inet_pton(AF_INET6, "2001:db8::7", body) == 1);
	body[32] = 0x9c;
	body[33] = 0x40;
	len = v2(buf, 0x21, 0x21, body, sizeof(body));
	cr_assert_eq(parse(buf, len, &h), 52, "%s", err);
	cr_assert_str_eq(src(&h), "2001:db8::7 40000");
	cr_assert_eq(h.srclen, sizeof(struct sockaddr_in6));

	/* LOCAL: addresses, whatever they say, are the connection's. */
	len = v2(buf, 0x20, 0x21, body, sizeof(body));
	cr_assert_eq(parse(buf, len, &h), 52);
	cr_assert_eq(h.has_addr, 0);
	len = v2(buf, 0x20, 0x00, NULL, 0);
	cr_assert_eq(parse(buf, len, &h), 16);
	cr_assert_eq(h.version, 2);
	cr_assert_eq(h.has_addr, 0);
	/* PROXY with UNSPEC, UDP or UNIX: the real endpoints too. */
	len = v2(buf, 0x21, 0x00, "junk", 4);
	cr_assert_eq(parse(buf, len, &h), 20);
	cr_assert_eq(h.has_addr, 0);
	len = v2(buf, 0x21, 0x22, body, sizeof(body));
	cr_assert_eq(parse(buf, len, &h), 52);
	cr_assert_eq(h.has_addr, 0);
	memset(buf + 16, 0, 216);
	len = v2(buf, 0x21, 0x31, buf + 16, 216);
	cr_assert_eq(parse(buf, len, &h), 232);
	cr_assert_eq(h.has_addr, 0);
}

Test(proxy_proto, v2_refused)
{
	uint8_t	 buf[700], body[600];
	struct proxy_header	 h;
	size_t	 len;

	memset(body, 0, sizeof(body));
	len = v2(buf, 0x11, 0x11, body, 12);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: version 1");
	len = v2(buf, 0x22, 0x11, body, 12);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: command 2");
	len = v2(buf, 0x21, 0x41, body, 12);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: family and protocol 0x41");
	len = v2(buf, 0x21, 0x13, body, 12);
	cr_assert_eq(parse(buf, len, &h), -1);
	/* Refused from the fixed part alone: no waiting for 64 KiB. */
	len = v2(buf, 0x21, 0x11, body, 521);
	cr_assert_eq(parse(buf, 16, &h), -1);
	cr_assert_str_eq(err, "version 2: 537 octets, more than 536");
	len = v2(buf, 0x21, 0x11, body, 520);
	cr_assert_eq(parse(buf, len, &h), -1);	/* 508 zero octets: TLVs */
	cr_assert_str_eq(err, "version 2: truncated TLV");
	/* Short address blocks. */
	len = v2(buf, 0x21, 0x11, body, 11);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: address block of 11 octets, want 12");
	len = v2(buf, 0x21, 0x21, body, 12);
	cr_assert_eq(parse(buf, len, &h), -1);
	len = v2(buf, 0x21, 0x31, body, 36);
	cr_assert_eq(parse(buf, len, &h), -1);
	/* A TLV that runs past the end, or a stray octet after one. */
	memcpy(body + 12, "\x04\x00\x05xxxx", 7);
	len = v2(buf, 0x21, 0x11, body, 19);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: TLV type 0x04 longer than the header");
	memcpy(body + 12, "\x04\x00\x00\x04", 4);
	len = v2(buf, 0x21, 0x11, body, 16);
	cr_assert_eq(parse(buf, len, &h), -1);
	cr_assert_str_eq(err, "version 2: truncated TLV");
	/* A wrong signature octet, wherever it is. */
	for (size_t i = 0; i < 12; i++) {
		len = v2(buf, 0x21, 0x11, body, 12);
		buf[i] ^= 0x40;
		cr_assert_eq(parse(buf, len, &h), -1, "octet %zu", i);
		cr_assert_eq(parse(buf, i + 1, &h), -1, "octet %zu", i);
	}
}

Test(proxy_proto, v2_largest)
{
	uint8_t	 buf[PROXY_HEADER_MAX], body[PROXY_HEADER_MAX - 16];
	struct proxy_header	 h;
	size_t	 len, tlv = sizeof(body) - 12 - 3;

	memset(body, 'x', sizeof(body));
	memcpy(body, "\x0a\x00\x00\x01\x0a\x00\x00\x02\x00\x01\x00\x02", 12);
	body[12] = 0xe0;
	body[13] = (uint8_t)(tlv >> 8);
	body[14] = (uint8_t)tlv;
	len = v2(buf, 0x21, 0x11, body, sizeof(body));
	cr_assert_eq(len, PROXY_HEADER_MAX);
	cr_assert_eq(parse(buf, len, &h), PROXY_HEADER_MAX, "%s", err);
	cr_assert_str_eq(src(&h), "10.0.0.1 1");
}
