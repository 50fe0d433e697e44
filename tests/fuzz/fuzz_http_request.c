/*
 * fuzz_http_request.c -- the metrics endpoint's request parser
 * (common/http_request.c), fed what a scraper or an attacker sends.
 *
 * Input: one octet that says where to cut, then the bytes of a
 * request.  Each is parsed from a buffer of exactly its length (so a
 * read past the end is caught), and the properties are:
 *   - the answer is one of 0, 200, 400, 405, 414, 431, 505;
 *   - after 200 the path is a string of fewer than HTTP_PATH_MAX
 *     octets, empty or starting with '/', without '?', and a bearer
 *     token, if any, is a string that fits METRICS_TOKEN_MAX;
 *   - reading more never changes a decision: once a prefix gets an
 *     answer other than 0, the whole input gets the same one (the
 *     server answers as soon as it knows).
 */

#include <string.h>

#include "fuzz.h"
#include "http_request.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	return 0;
}

static int
parse_exact(const uint8_t *data, size_t len, struct http_request *req)
{
	char	*buf;
	int	 rc;

	if ((buf = malloc(len > 0 ? len : 1)) == NULL)
		abort();
	memcpy(buf, data, len);
	rc = http_request_parse(buf, len, req);
	free(buf);
	return rc;
}

static void
check(int rc, const struct http_request *req)
{
	size_t	 plen;

	FUZZ_ASSERT(rc == 0 || rc == 200 || rc == 400 || rc == 405 ||
	    rc == 414 || rc == 431 || rc == 505);
	if (rc != 200)
		return;
	plen = strnlen(req->path, sizeof(req->path));
	FUZZ_ASSERT(plen < sizeof(req->path));
	FUZZ_ASSERT(plen == 0 || req->path[0] == '/');
	FUZZ_ASSERT(memchr(req->path, '?', plen) == NULL);
	FUZZ_ASSERT(strnlen(req->bearer, sizeof(req->bearer)) <
	    sizeof(req->bearer));
	FUZZ_ASSERT(req->has_bearer || req->bearer[0] == '\0');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct http_request	 req;
	size_t			 cut;
	int			 whole, part;

	if (size < 1)
		return 0;
	cut = data[0];
	data++;
	size--;
	cut = size > 0 ? (cut * size) / 255 : 0;
	whole = parse_exact(data, size, &req);
	check(whole, &req);
	part = parse_exact(data, cut, &req);
	check(part, &req);
	if (part != 0)
		FUZZ_ASSERT(part == whole);
	return 0;
}
