/*
 * proxy_proto.c -- the PROXY protocol header, versions 1 and 2, as
 * HAProxy's doc/proxy-protocol.txt (2020/03/05) defines them; section
 * numbers below are that document's.
 *
 * Strict: anything that does not follow the grammar exactly is refused
 * (2.1: "Any sequence which does not exactly match the protocol must be
 * discarded"), and refused as early as the octets seen allow, so a
 * client that talks SMTP or TLS to a proxy-protocol listener is told
 * off at its first octet rather than at the timeout.  The caller may
 * hand in a partial header: the answer 0 promises that every octet
 * seen belongs to the header, so reading on never takes an octet of
 * the client's.  Nothing here reads past len or PROXY_HEADER_MAX.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <string.h>

#include "proxy_proto.h"
#include "util.h"

/* 2.2: the twelve octets that open a version 2 header. */
static const uint8_t v2_signature[12] = {
	0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a
};

#define V1_PREFIX		"PROXY "
#define V1_PREFIX_LEN		6

/* 2.2: the 13th octet, version in the high nibble, command in the low. */
#define V2_VERSION		0x20
#define V2_CMD_LOCAL		0x00
#define V2_CMD_PROXY		0x01
/* 2.2: the 14th octet, family in the high nibble, protocol in the low. */
#define V2_AF_UNSPEC		0x0
#define V2_AF_INET		0x1
#define V2_AF_INET6		0x2
#define V2_AF_UNIX		0x3
#define V2_PROTO_UNSPEC		0x0
#define V2_PROTO_STREAM		0x1
#define V2_PROTO_DGRAM		0x2
/* 2.2: the address blocks' lengths, ports included. */
#define V2_LEN_INET		12
#define V2_LEN_INET6		36
#define V2_LEN_UNIX		216
/* 2.2: a TLV is a type octet and a 16-bit length before its value. */
#define V2_TLV_HEAD		3

/*
 * 2.1: a port, decimal, 0 to 65535, and no leading zero ("to avoid any
 * possible confusion with octal numbers").
 */
static int
v1_port(const char *s, in_port_t *port)
{
	unsigned long	 n = 0;
	size_t		 i;

	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i == 5)
			return -1;
		n = n * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || (s[0] == '0' && i > 1) || n > 65535)
		return -1;
	*port = htons((in_port_t)n);
	return 0;
}

/*
 * 2.1: IPv4 as exactly four decimal numbers 0..255 without leading
 * zeroes; inet_pton(3) checks the rest, but not every libc refuses
 * "010.1.1.1" for us.
 */
static int
v1_inet(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in	*sin = (struct sockaddr_in *)ss;
	size_t			 digits = 0;

	for (const char *p = s;; p++) {
		if (*p >= '0' && *p <= '9') {
			if (digits == 1 && p[-1] == '0')
				return -1;
			digits++;
			continue;
		}
		if (*p != '.' && *p != '\0')
			return -1;
		if (*p == '\0')
			break;
		digits = 0;
	}
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, s, &sin->sin_addr) != 1)
		return -1;
	sin->sin_family = AF_INET;
	*sslen = sizeof(*sin);
	return 0;
}

/* 2.1: IPv6 in hexadecimal groups, with at most one "::". */
static int
v1_inet6(const char *s, struct sockaddr_storage *ss, socklen_t *sslen)
{
	struct sockaddr_in6	*sin6 = (struct sockaddr_in6 *)ss;

	/* inet_pton(3) also takes the dotted tail of a mapped address. */
	if (s[strspn(s, "0123456789abcdefABCDEF:.")] != '\0')
		return -1;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET6, s, &sin6->sin6_addr) != 1)
		return -1;
	sin6->sin6_family = AF_INET6;
	*sslen = sizeof(*sin6);
	return 0;
}

static void
set_port(struct sockaddr_storage *ss, in_port_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = port;
	else
		((struct sockaddr_in6 *)ss)->sin6_port = port;
}

/*
 * 2.1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport,
 * each separator exactly one space; or "PROXY UNKNOWN" and anything
 * up to the CR LF, which the receiver ignores.  line has no CR LF.
 */
static int
v1_fields(char *line, struct proxy_header *h, char *err, size_t errlen)
{
	char		*field[5], *p = line + V1_PREFIX_LEN;
	in_port_t	 sport, dport;
	int		 (*addr)(const char *, struct sockaddr_storage *,
			    socklen_t *);
	size_t		 n;

	if (strncmp(p, "UNKNOWN", 7) == 0 && (p[7] == '\0' || p[7] == ' '))
		return 0;
	for (n = 0; n < 5; n++) {
		field[n] = p;
		if ((p = strchr(p, ' ')) == NULL) {
			n++;
			break;
		}
		*p++ = '\0';
	}
	if (n != 5 || p != NULL) {
		errbuf_set(err, errlen, "version 1: want 5 fields after "
		    "PROXY");
		return -1;
	}
	if (strcmp(field[0], "TCP4") == 0)
		addr = v1_inet;
	else if (strcmp(field[0], "TCP6") == 0)
		addr = v1_inet6;
	else {
		errbuf_set(err, errlen, "version 1: unknown protocol");
		return -1;
	}
	if (addr(field[1], &h->src, &h->srclen) == -1 ||
	    addr(field[2], &h->dst, &h->dstlen) == -1) {
		errbuf_set(err, errlen, "version 1: bad %s address",
		    field[0]);
		return -1;
	}
	if (v1_port(field[3], &sport) == -1 ||
	    v1_port(field[4], &dport) == -1) {
		errbuf_set(err, errlen, "version 1: bad port");
		return -1;
	}
	set_port(&h->src, sport);
	set_port(&h->dst, dport);
	h->has_addr = 1;
	return 0;
}

/*
 * 2.1: one line of US-ASCII ending in CR LF within PROXY_V1_MAX
 * octets; "The receiver must not tolerate a single CR or LF character
 * to end the line".
 */
static int
v1_parse(const uint8_t *buf, size_t len, struct proxy_header *h,
    char *err, size_t errlen)
{
	char	 line[PROXY_V1_MAX + 1];
	size_t	 i;

	for (i = 0; i < len && buf[i] != '\r'; i++)
		if (buf[i] < 0x20 || buf[i] > 0x7e) {
			errbuf_set(err, errlen, "version 1: octet 0x%02x in "
			    "the line", buf[i]);
			return -1;
		}
	/* The CR is at i, or will be at best. */
	if (i + 2 > PROXY_V1_MAX) {
		errbuf_set(err, errlen, "version 1: no CR LF within %d "
		    "octets", PROXY_V1_MAX);
		return -1;
	}
	if (i + 1 >= len)
		return 0;
	if (buf[i + 1] != '\n') {
		errbuf_set(err, errlen, "version 1: CR without LF");
		return -1;
	}
	memcpy(line, buf, i);
	line[i] = '\0';
	h->version = 1;
	if (v1_fields(line, h, err, errlen) == -1)
		return -1;
	return (int)i + 2;
}

/*
 * 2.2: the TLVs after the address block, skipped, but only if they
 * tile the rest of the header exactly: a TLV whose length runs past
 * the end is a malformed header, not one to read past.
 */
static int
v2_tlvs(const uint8_t *p, size_t len, char *err, size_t errlen)
{
	size_t	 vlen;

	while (len > 0) {
		if (len < V2_TLV_HEAD) {
			errbuf_set(err, errlen, "version 2: truncated TLV");
			return -1;
		}
		vlen = ((size_t)p[1] << 8) | p[2];
		if (vlen > len - V2_TLV_HEAD) {
			errbuf_set(err, errlen, "version 2: TLV type 0x%02x "
			    "longer than the header", p[0]);
			return -1;
		}
		p += V2_TLV_HEAD + vlen;
		len -= V2_TLV_HEAD + vlen;
	}
	return 0;
}

/* 2.2: the address block of TCP over IPv4 or IPv6. */
static void
v2_addresses(const uint8_t *a, int family, struct proxy_header *h)
{
	struct sockaddr_in	*s4 = (struct sockaddr_in *)&h->src;
	struct sockaddr_in	*d4 = (struct sockaddr_in *)&h->dst;
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&h->src;
	struct sockaddr_in6	*d6 = (struct sockaddr_in6 *)&h->dst;

	memset(&h->src, 0, sizeof(h->src));
	memset(&h->dst, 0, sizeof(h->dst));
	if (family == V2_AF_INET) {
		s4->sin_family = d4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
		memcpy(&d4->sin_addr, a + 4, 4);
		memcpy(&s4->sin_port, a + 8, 2);
		memcpy(&d4->sin_port, a + 10, 2);
		h->srclen = h->dstlen = sizeof(*s4);
	} else {
		s6->sin6_family = d6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
		memcpy(&d6->sin6_addr, a + 16, 16);
		memcpy(&s6->sin6_port, a + 32, 2);
		memcpy(&d6->sin6_port, a + 34, 2);
		h->srclen = h->dstlen = sizeof(*s6);
	}
	h->has_addr = 1;
}

/*
 * 2.2: the fixed part, then as many octets as it declares.  Every
 * combination of family and protocol the document defines is taken;
 * those we do not use (UDP, UNIX) fall back to UNSPEC, the real
 * endpoints, as 2.2 asks of a receiver that does not implement them.
 */
static int
v2_parse(const uint8_t *buf, size_t len, struct proxy_header *h,
    char *err, size_t errlen)
{
	size_t	 total, need;
	int	 family, proto;

	if (len < PROXY_V2_FIXED)
		return 0;
	if ((buf[12] & 0xf0) != V2_VERSION) {
		errbuf_set(err, errlen, "version 2: version %d",
		    buf[12] >> 4);
		return -1;
	}
	if ((buf[12] & 0x0f) > V2_CMD_PROXY) {
		errbuf_set(err, errlen, "version 2: command %d",
		    buf[12] & 0x0f);
		return -1;
	}
	family = buf[13] >> 4;
	proto = buf[13] & 0x0f;
	if (family > V2_AF_UNIX || proto > V2_PROTO_DGRAM) {
		errbuf_set(err, errlen, "version 2: family and protocol "
		    "0x%02x", buf[13]);
		return -1;
	}
	total = PROXY_V2_FIXED + (((size_t)buf[14] << 8) | buf[15]);
	if (total > PROXY_HEADER_MAX) {
		errbuf_set(err, errlen, "version 2: %zu octets, more than %d",
		    total, PROXY_HEADER_MAX);
		return -1;
	}
	if (len < total)
		return 0;
	h->version = 2;
	/* 2.2 LOCAL: "discard the protocol block including the family". */
	if ((buf[12] & 0x0f) == V2_CMD_LOCAL)
		return (int)total;
	if (family == V2_AF_UNSPEC || proto == V2_PROTO_UNSPEC)
		return (int)total;	/* nothing more can be read in it */
	need = family == V2_AF_INET ? V2_LEN_INET : family == V2_AF_INET6 ?
	    V2_LEN_INET6 : V2_LEN_UNIX;
	if (total - PROXY_V2_FIXED < need) {
		errbuf_set(err, errlen, "version 2: address block of %zu "
		    "octets, want %zu", total - PROXY_V2_FIXED, need);
		return -1;
	}
	if (v2_tlvs(buf + PROXY_V2_FIXED + need,
	    total - PROXY_V2_FIXED - need, err, errlen) == -1)
		return -1;
	if (family != V2_AF_UNIX && proto == V2_PROTO_STREAM)
		v2_addresses(buf + PROXY_V2_FIXED, family, h);
	return (int)total;
}

/*
 * 2.2 "Identifying the protocol version": the version 2 signature, or
 * "PROXY" for version 1; anything else is dropped.  A partial header
 * is judged on the octets there are.
 */
int
proxy_header_parse(const uint8_t *buf, size_t len, struct proxy_header *h,
    char *err, size_t errlen)
{
	size_t	 n;

	memset(h, 0, sizeof(*h));
	if (len == 0)
		return 0;
	if (buf[0] == v2_signature[0]) {
		n = len < sizeof(v2_signature) ? len : sizeof(v2_signature);
		if (memcmp(buf, v2_signature, n) != 0)
			goto bad;
		return v2_parse(buf, len, h, err, errlen);
	}
	n = len < V1_PREFIX_LEN ? len : V1_PREFIX_LEN;
	if (memcmp(buf, V1_PREFIX, n) != 0)
		goto bad;
	if (len <= V1_PREFIX_LEN)
		return 0;
	return v1_parse(buf, len, h, err, errlen);

 bad:
	errbuf_set(err, errlen, "not a PROXY protocol header");
	return -1;
}
