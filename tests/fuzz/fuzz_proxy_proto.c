/*
 * fuzz_proxy_proto.c -- the PROXY protocol header parser of the worker
 * (worker/proxy_proto.c).
 *
 * Input: the first octets a balancer sends on a proxy-protocol
 * listener.  Properties:
 *   - the answer is -1, 0, or a length within the input and within
 *     PROXY_HEADER_MAX;
 *   - a header is judged on its own octets: the same answer from the
 *     header alone, and every proper prefix of it waits (0), so the
 *     worker never consumes an octet of the client's;
 *   - "wait" (0) means every octet is the header's: no longer input
 *     makes a header that ends inside this one;
 *   - a refusal stands whatever follows, and says why;
 *   - an address, when there is one, is IPv4 or IPv6 with its length.
 */

#include <sys/socket.h>

#include <netinet/in.h>

#include <string.h>

#include "fuzz.h"
#include "proxy_proto.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static int
parse(const uint8_t *data, size_t size, struct proxy_header *h, char *err,
    size_t errlen)
{
	err[0] = '\0';
	return proxy_header_parse(data, size, h, err, errlen);
}

static void
check_address(const struct proxy_header *h)
{
	if (!h->has_addr)
		return;
	FUZZ_ASSERT(h->src.ss_family == h->dst.ss_family);
	if (h->src.ss_family == AF_INET)
		FUZZ_ASSERT(h->srclen == sizeof(struct sockaddr_in) &&
		    h->dstlen == sizeof(struct sockaddr_in));
	else
		FUZZ_ASSERT(h->src.ss_family == AF_INET6 &&
		    h->srclen == sizeof(struct sockaddr_in6) &&
		    h->dstlen == sizeof(struct sockaddr_in6));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_header	 h, h2;
	uint8_t			 twice[2 * PROXY_HEADER_MAX];
	char			 err[256];
	int			 rv, rv2;

	if (size > PROXY_HEADER_MAX)
		size = PROXY_HEADER_MAX;
	rv = parse(data, size, &h, err, sizeof(err));
	FUZZ_ASSERT(rv >= -1 && rv <= (int)size);
	if (rv == -1) {
		FUZZ_ASSERT(err[0] != '\0' && memchr(err, '\0',
		    sizeof(err)) != NULL);
		memcpy(twice, data, size);
		memcpy(twice + size, data, size);
		FUZZ_ASSERT(parse(twice, 2 * size, &h2, err,
		    sizeof(err)) == -1);
		return 0;
	}
	if (rv == 0) {
		FUZZ_ASSERT(size < PROXY_HEADER_MAX);
		memcpy(twice, data, size);
		memcpy(twice + size, data, size);
		rv2 = parse(twice, 2 * size, &h2, err, sizeof(err));
		FUZZ_ASSERT(rv2 <= 0 || rv2 > (int)size);
		return 0;
	}
	FUZZ_ASSERT(h.version == 1 || h.version == 2);
	check_address(&h);
	rv2 = parse(data, (size_t)rv, &h2, err, sizeof(err));
	FUZZ_ASSERT(rv2 == rv && memcmp(&h, &h2, sizeof(h)) == 0);
	for (int i = 0; i < rv; i++)
		FUZZ_ASSERT(parse(data, (size_t)i, &h2, err,
		    sizeof(err)) == 0);
	return 0;
}
