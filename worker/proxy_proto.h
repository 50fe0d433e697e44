/*
 * proxy_proto.h -- the PROXY protocol header a balancer puts before
 * the client's first byte (HAProxy's doc/proxy-protocol.txt, versions
 * 1 and 2).  A pure parser: no I/O, no logging, so the unit tests and
 * the fuzzer reach it without a socket.
 */
#ifndef PORTCULLIS_PROXY_PROTO_H
#define PORTCULLIS_PROXY_PROTO_H

#include <sys/types.h>
#include <sys/socket.h>

#include <stddef.h>
#include <stdint.h>

/* 2.1: the longest version 1 line, CR LF included. */
#define PROXY_V1_MAX		107
/* 2.2: the fixed part of version 2, before the address block. */
#define PROXY_V2_FIXED		16
/*
 * 2: both formats are meant to fit the smallest segment every host
 * must take (576 - 40 octets); a version 2 header that declares more
 * is refused as too long, whatever TLVs it carries.
 */
#define PROXY_HEADER_MAX	536

struct proxy_header {
	int			 version;	/* 1 or 2 */
	/*
	 * 0: LOCAL (2.2), UNKNOWN (2.1) or an unspecified family: the
	 * connection's own endpoints stand, as if there were no header.
	 */
	int			 has_addr;
	struct sockaddr_storage	 src;		/* the client, port set */
	socklen_t		 srclen;
	struct sockaddr_storage	 dst;		/* where it connected to */
	socklen_t		 dstlen;
};

/*
 * Reads the header at the start of buf[0..len).
 *   > 0   the header is complete and valid: its length in octets, and
 *         *h filled; the octets after it are the client's;
 *    0    not complete yet, and every octet seen belongs to the header
 *         (the caller may consume them all and read on);
 *   -1    not a valid header, or too long: err says why.
 */
int	proxy_header_parse(const uint8_t *buf, size_t len,
	    struct proxy_header *h, char *err, size_t errlen);

#endif /* PORTCULLIS_PROXY_PROTO_H */
