/*
 * http_request.h -- the pure parser of the metrics endpoint's HTTP
 * requests (RFC 9112), for portcullis-metrics and its fuzz target.
 */
#ifndef PORTCULLIS_HTTP_REQUEST_H
#define PORTCULLIS_HTTP_REQUEST_H

#include <stddef.h>

#include "proto.h"

/* A request's head, request line included; past it: 431 and close. */
#define HTTP_HEAD_MAX		8192
#define HTTP_PATH_MAX		64	/* longer: 404, none served */
#define HTTP_HEADERS_MAX	64	/* header lines */

struct http_request {
	char	 path[HTTP_PATH_MAX];	/* without the query */
	int	 openmetrics;		/* Accept names OpenMetrics */
	int	 has_bearer;
	char	 bearer[METRICS_TOKEN_MAX];	/* Authorization */
};

/*
 * 0: the head is not complete yet, read more.  200: a GET whose head
 * parsed; the caller routes req->path.  Else the status to answer
 * with before closing: 400 (malformed), 405 (not GET), 414 (request
 * line too long), 431 (head too long), 505 (not HTTP/1.x).
 */
int	http_request_parse(const char *buf, size_t len,
	    struct http_request *req);

#endif /* PORTCULLIS_HTTP_REQUEST_H */
