/*
 * test_http_request.c -- the metrics endpoint's request parser
 * (common/http_request.c): what Prometheus sends, and each refusal.
 */

#include <criterion/criterion.h>

#include <string.h>

#include "http_request.h"

static int
parse(const char *text, struct http_request *req)
{
	return http_request_parse(text, strlen(text), req);
}

Test(http_request, prometheus_scrape)
{
	struct http_request	 req;

	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9425\r\n"
	    "User-Agent: Prometheus/2.42.0\r\nAccept: application/"
	    "openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
	    "Accept-Encoding: gzip\r\n\r\n", &req), 200);
	cr_assert_str_eq(req.path, "/metrics");
	cr_assert_eq(req.openmetrics, 1);
	cr_assert_eq(req.has_bearer, 0);
	cr_assert_eq(parse("GET /metrics?x=1 HTTP/1.0\r\n\r\n", &req), 200);
	cr_assert_str_eq(req.path, "/metrics");
	cr_assert_eq(req.openmetrics, 0);
	cr_assert_eq(parse("GET /healthz HTTP/1.1\r\nhost: x\r\n"
	    "authorization: bearer  tok en\r\n\r\n", &req), 200);
	cr_assert_eq(req.has_bearer, 1);
	cr_assert_str_eq(req.bearer, "tok en");
}

Test(http_request, incomplete_then_too_long)
{
	struct http_request	 req;
	char			 big[HTTP_HEAD_MAX + 10];

	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: x\r\n", &req), 0);
	cr_assert_eq(parse("GET /metr", &req), 0);
	memset(big, 'a', sizeof(big));
	memcpy(big, "GET /", 5);
	cr_assert_eq(http_request_parse(big, sizeof(big), &req), 414);
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	cr_assert_eq(http_request_parse(big, sizeof(big), &req), 431);
}

Test(http_request, refusals)
{
	struct http_request	 req;

	cr_assert_eq(parse("POST /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &req),
	    405);
	cr_assert_eq(parse("HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &req),
	    405);
	cr_assert_eq(parse("GET /metrics HTTP/2.0\r\n\r\n", &req), 505);
	cr_assert_eq(parse("GET /metrics FTP/1.0\r\n\r\n", &req), 400);
	cr_assert_eq(parse("GET metrics HTTP/1.1\r\nHost: x\r\n\r\n", &req),
	    400);
	/* RFC 9112 3.2: HTTP/1.1 needs exactly one Host */
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\n\r\n", &req), 400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n"
	    "\r\n", &req), 400);
	/* RFC 9112 5.2: no obs-fold; no body on a GET; CR LF only */
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n x\r\n\r\n",
	    &req), 400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n"
	    "Content-Length: 5\r\n\r\n", &req), 400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", &req), 400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\nHost: a\n\n", &req), 400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\n\n", &req),
	    400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHo st: a\r\n\r\n", &req),
	    400);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\rb\r\n\r\n",
	    &req), 400);
}
