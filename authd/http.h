/*
 * http.h -- HTTP requests to identity providers, on authd's event loop.
 */
#ifndef PORTCULLIS_HTTP_H
#define PORTCULLIS_HTTP_H

#include <stddef.h>

#include <event2/event.h>

#include "bounds.h"

struct http_client;
struct http_req;

/* What came back.  status 0: no HTTP answer at all (error says why). */
struct http_response {
	long		 status;
	const char	*body;		/* NUL-terminated; "" when none */
	size_t		 len;
	const char	*error;		/* transport error, or NULL */
	int		 timed_out;
	long		 max_age;	/* seconds, from Cache-Control
					   (RFC 9111 5.2.2.1); 0 for
					   no-cache or no-store; -1:
					   it said nothing */
};

typedef void	(*http_cb)(const struct http_response *, void *arg);

struct http_client_opts {
	const char	*name;		/* for the log: the checker */
	const char	*ca_file;	/* NULL or "": the system's */
	int		 timeout_ms;	/* per request, queueing included */
	int		 connect_timeout_ms;
	int		 max_requests;	/* at once; the rest wait */
};

int	 http_init(struct event_base *);
/* The loop http_init() was given, for the callers' own timers. */
struct event_base *http_event_base(void);
struct http_client *http_client_new(const struct http_client_opts *);
/* Requests in flight are cancelled: their callbacks never run. */
void	 http_client_free(struct http_client *);

/*
 * POST an application/x-www-form-urlencoded body, or GET when body is
 * NULL.  body and auth (a whole "Authorization: ..." header line, or
 * NULL) are malloc'd strings the request takes over: they may hold a
 * password or a client secret, so it wipes and frees them when it
 * ends.  cb runs exactly once, later, on the loop, unless the request
 * is cancelled.  NULL only when out of memory.
 */
struct http_req *http_request(struct http_client *, const char *url,
	    char *body, size_t bodylen, char *auth, http_cb cb, void *arg);
void	 http_cancel(struct http_req *);

/* The max-age of a Cache-Control value, as in struct http_response. */
long	 http_max_age(const char *value, size_t len);

/* Helpers for building request bodies (RFC 6749 appendix B). */
char	*http_form_escape(const char *, size_t);	/* malloc'd */
/* Why a request did not end in 200, for a log line. */
void	http_failure(const struct http_response *, char *err,
	    size_t errlen);

#endif /* PORTCULLIS_HTTP_H */
