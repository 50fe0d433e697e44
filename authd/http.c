/*
 * http.c -- libcurl's multi interface driven by authd's event loop.
 *
 * authd must never wait for an identity provider: a provider that
 * hangs would stall every login, the local ones too.  So each request
 * is a curl easy handle in one multi handle per provider, and libcurl
 * tells us (CURLMOPT_SOCKETFUNCTION, CURLMOPT_TIMERFUNCTION) which
 * sockets to watch and when to call it back; libevent does the
 * waiting.  Connections are reused between requests to one provider.
 *
 * A provider gets at most max_requests at once; the others wait in a
 * queue.  The configured timeout counts from the moment a request is
 * made, queueing included, so that a client hears 454 within it even
 * when the provider hangs and the queue is full.
 *
 * Certificate verification is always on (CURLOPT_SSL_VERIFYPEER and
 * VERIFYHOST are libcurl's defaults and are never turned off here).
 * Only HTTP and HTTPS are allowed, redirects are not followed, and a
 * response body is capped at HTTP_BODY_MAX.
 */

#include <sys/queue.h>

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"
#include "util.h"

struct http_req {
	TAILQ_ENTRY(http_req)	 entry;
	struct http_client	*client;
	CURL			*easy;
	char			*url;
	char			*body;
	size_t			 bodylen;
	char			*auth;
	struct curl_slist	*headers;
	char			*resp;
	size_t			 resplen, respsize;
	int			 too_big;
	long			 max_age;	/* -1: none said */
	struct timespec		 made;
	int			 started;	/* in the multi handle */
	http_cb			 cb;
	void			*arg;
	char			 errbuf[CURL_ERROR_SIZE];
};
TAILQ_HEAD(http_reqlist, http_req);

struct http_client {
	char			 name[64];
	char			*ca_file;
	int			 timeout_ms;
	int			 connect_timeout_ms;
	int			 max_requests;
	CURLM			*multi;
	struct event		*timer;
	struct http_reqlist	 running;
	struct http_reqlist	 queued;
	int			 nrunning;
	struct event		*kick;		/* finish work off the stack */
	int			 busy;		/* in one of our events */
	int			 dying;		/* freed while busy */
};

/* What we watch on one of libcurl's sockets. */
struct http_sock {
	struct event		*ev;
	struct http_client	*client;
};

static struct event_base	*base;

static void	client_check_done(struct http_client *);
static void	client_start_queued(struct http_client *);
static void	client_destroy(struct http_client *);

/*
 * A callback may drop the last reference to the provider that owns the
 * client delivering it (a reload replaced it): http_client_free() then
 * only marks it, and the event that is running frees it on its way out.
 */
static void
client_enter(struct http_client *c)
{
	c->busy++;
}

static void
client_leave(struct http_client *c)
{
	if (--c->busy == 0 && c->dying)
		client_destroy(c);
}

int
http_init(struct event_base *b)
{
	base = b;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_warnx("curl_global_init failed");
		return -1;
	}
	return 0;
}

struct event_base *
http_event_base(void)
{
	return base;
}

static void
sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_sock	*hs = arg;
	struct http_client	*c = hs->client;
	int			 mask = 0, running;

	if (what & EV_READ)
		mask |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		mask |= CURL_CSELECT_OUT;
	client_enter(c);
	/* hs may be freed by this call (CURL_POLL_REMOVE). */
	curl_multi_socket_action(c->multi, fd, mask, &running);
	client_check_done(c);
	client_leave(c);
}

static int
sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *sockp)
{
	struct http_client	*c = userp;
	struct http_sock	*hs = sockp;
	short			 kind = EV_PERSIST;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			event_free(hs->ev);
			free(hs);
		}
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (hs == NULL) {
		if ((hs = calloc(1, sizeof(*hs))) == NULL)
			fatal("calloc");
		hs->client = c;
		curl_multi_assign(c->multi, fd, hs);
	} else
		event_free(hs->ev);
	if ((hs->ev = event_new(base, fd, kind, sock_event, hs)) == NULL)
		fatalx("event_new");
	event_add(hs->ev, NULL);
	return 0;
}

static void
timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_client	*c = arg;
	int			 running;

	(void)fd;
	(void)what;
	client_enter(c);
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	client_check_done(c);
	client_leave(c);
}

static int
timer_cb(CURLM *multi, long ms, void *userp)
{
	struct http_client	*c = userp;
	struct timeval		 tv;

	(void)multi;
	if (ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	return 0;
}

static void
kick_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_client	*c = arg;

	(void)fd;
	(void)what;
	client_enter(c);
	client_start_queued(c);
	if (!c->dying)
		client_check_done(c);
	client_leave(c);
}

struct http_client *
http_client_new(const struct http_client_opts *o)
{
	struct http_client	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	strlcpy(c->name, o->name, sizeof(c->name));
	if (o->ca_file != NULL && o->ca_file[0] != '\0' &&
	    (c->ca_file = strdup(o->ca_file)) == NULL)
		goto fail;
	c->timeout_ms = o->timeout_ms;
	c->connect_timeout_ms = o->connect_timeout_ms;
	c->max_requests = o->max_requests > 0 ? o->max_requests : 1;
	TAILQ_INIT(&c->running);
	TAILQ_INIT(&c->queued);
	if ((c->multi = curl_multi_init()) == NULL ||
	    (c->timer = evtimer_new(base, timer_event, c)) == NULL ||
	    (c->kick = event_new(base, -1, 0, kick_event, c)) == NULL)
		goto fail;
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
	    (long)c->max_requests);
	return c;
fail:
	http_client_free(c);
	return NULL;
}

static void
req_free(struct http_req *r)
{
	if (r->easy != NULL) {
		if (r->started)
			curl_multi_remove_handle(r->client->multi, r->easy);
		curl_easy_cleanup(r->easy);
	}
	curl_slist_free_all(r->headers);
	if (r->body != NULL)
		freezero(r->body, r->bodylen + 1);
	if (r->auth != NULL)
		freezero(r->auth, strlen(r->auth) + 1);
	free(r->url);
	/* A token endpoint's answer holds an access token. */
	if (r->resp != NULL)
		freezero(r->resp, r->respsize);
	free(r);
}

/* The requests go at once, their callbacks never run. */
void
http_client_free(struct http_client *c)
{
	struct http_req	*r;

	if (c == NULL)
		return;
	while ((r = TAILQ_FIRST(&c->queued)) != NULL) {
		TAILQ_REMOVE(&c->queued, r, entry);
		req_free(r);
	}
	while ((r = TAILQ_FIRST(&c->running)) != NULL) {
		TAILQ_REMOVE(&c->running, r, entry);
		req_free(r);
	}
	c->nrunning = 0;
	if (c->busy > 0) {
		c->dying = 1;
		return;
	}
	client_destroy(c);
}

static void
client_destroy(struct http_client *c)
{
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	if (c->timer != NULL)
		event_free(c->timer);
	if (c->kick != NULL)
		event_free(c->kick);
	free(c->ca_file);
	free(c);
}

static size_t
write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n, want;
	char		*p;

	if (r->resplen + len > HTTP_BODY_MAX) {
		r->too_big = 1;
		return 0;		/* makes curl fail the transfer */
	}
	if (r->resplen + len + 1 > r->respsize) {
		want = r->respsize == 0 ? 4096 : r->respsize;
		while (want < r->resplen + len + 1)
			want *= 2;
		if ((p = malloc(want)) == NULL)
			return 0;
		if (r->resp != NULL) {
			memcpy(p, r->resp, r->resplen);
			freezero(r->resp, r->respsize);
		}
		r->resp = p;
		r->respsize = want;
	}
	memcpy(r->resp + r->resplen, data, len);
	r->resplen += len;
	r->resp[r->resplen] = '\0';
	return len;
}

/*
 * RFC 9111 5.2.2.1: max-age=N, in seconds; no-cache and no-store mean
 * now.  A value we cannot read is as good as none.
 */
long
http_max_age(const char *v, size_t len)
{
	const char	*end = v + len, *p;
	long		 n, age = -1;
	size_t		 wl;

	for (p = v; p < end; ) {
		while (p < end && strchr(" \t\r\n,", *p) != NULL)
			p++;
		for (wl = 0; p + wl < end && strchr(" \t\r\n,", p[wl]) ==
		    NULL; wl++)
			;
		if ((wl == 8 && strncasecmp(p, "no-cache", 8) == 0) ||
		    (wl == 8 && strncasecmp(p, "no-store", 8) == 0))
			return 0;
		if (wl > 8 && strncasecmp(p, "max-age=", 8) == 0) {
			n = 0;
			for (size_t i = 8; i < wl; i++) {
				if (p[i] < '0' || p[i] > '9' || n > 100000000) {
					n = -1;
					break;
				}
				n = n * 10 + (p[i] - '0');
			}
			if (n >= 0)
				age = n;
		}
		p += wl;
	}
	return age;
}

static size_t
header_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req	*r = arg;
	size_t		 len = size * n;
	static const char name[] = "cache-control:";

	/* A new status line: the headers of the answer that counts follow. */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0)
		r->max_age = -1;
	else if (len > sizeof(name) - 1 &&
	    strncasecmp(data, name, sizeof(name) - 1) == 0)
		r->max_age = http_max_age(data + sizeof(name) - 1,
		    len - (sizeof(name) - 1));
	return len;
}

static int
req_setup(struct http_req *r, long timeout_ms)
{
	struct http_client	*c = r->client;
	CURL			*e;

	if ((r->easy = e = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
	    (long)c->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS,
	    (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_USERAGENT, "portcullis-authd");
	if (c->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if ((r->headers = curl_slist_append(NULL,
	    "Accept: application/json")) == NULL)
		return -1;
	if (r->auth != NULL) {
		struct curl_slist	*h;

		if ((h = curl_slist_append(r->headers, r->auth)) == NULL)
			return -1;
		r->headers = h;
	}
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
	if (r->body != NULL) {
		/* Not COPYPOSTFIELDS: our copy is the one we can wipe. */
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->bodylen);
	}
	return 0;
}

static void
req_finish(struct http_req *r, long status, const char *error,
    int timed_out)
{
	struct http_response	 resp;

	memset(&resp, 0, sizeof(resp));
	resp.status = status;
	resp.body = r->resp != NULL ? r->resp : "";
	resp.len = r->resplen;
	resp.error = error;
	resp.timed_out = timed_out;
	resp.max_age = r->max_age;
	r->cb(&resp, r->arg);
	req_free(r);
}

static void
client_start_queued(struct http_client *c)
{
	struct http_req	*r;
	long		 left;

	while (c->nrunning < c->max_requests &&
	    (r = TAILQ_FIRST(&c->queued)) != NULL) {
		TAILQ_REMOVE(&c->queued, r, entry);
		left = c->timeout_ms - elapsed_ms(&r->made);
		if (left <= 0) {
			req_finish(r, 0, "timed out waiting for a free "
			    "connection", 1);
			if (c->dying)
				return;
			continue;
		}
		if (req_setup(r, left) == -1 ||
		    curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
			req_finish(r, 0, "cannot start the request", 0);
			if (c->dying)
				return;
			continue;
		}
		r->started = 1;
		TAILQ_INSERT_TAIL(&c->running, r, entry);
		c->nrunning++;
	}
}

/* Hand finished transfers to their owners, then start queued ones. */
static void
client_check_done(struct http_client *c)
{
	struct http_req	*r;
	CURLMsg		*m;
	CURLcode	 rc;
	long		 status;
	int		 left;

	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		rc = m->data.result;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &r);
		status = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE,
		    &status);
		TAILQ_REMOVE(&c->running, r, entry);
		c->nrunning--;
		if (rc == CURLE_OK)
			req_finish(r, status, NULL, 0);
		else if (r->too_big)
			req_finish(r, 0, "response too large", 0);
		else
			req_finish(r, 0, r->errbuf[0] != '\0' ? r->errbuf :
			    curl_easy_strerror(rc),
			    rc == CURLE_OPERATION_TIMEDOUT);
		if (c->dying)
			return;		/* freed by that callback */
	}
	client_start_queued(c);
}

struct http_req *
http_request(struct http_client *c, const char *url, char *body,
    size_t bodylen, char *auth, http_cb cb, void *arg)
{
	struct http_req	*r;

	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->url = strdup(url)) == NULL) {
		free(r);
		if (body != NULL)
			freezero(body, bodylen + 1);
		if (auth != NULL)
			freezero(auth, strlen(auth) + 1);
		return NULL;
	}
	r->client = c;
	r->max_age = -1;
	r->body = body;
	r->bodylen = bodylen;
	r->auth = auth;
	r->cb = cb;
	r->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &r->made);
	TAILQ_INSERT_TAIL(&c->queued, r, entry);
	/* Started from the loop, so that cb never runs inside this call. */
	event_active(c->kick, 0, 0);
	return r;
}

void
http_cancel(struct http_req *r)
{
	struct http_client	*c = r->client;

	if (r->started) {
		TAILQ_REMOVE(&c->running, r, entry);
		c->nrunning--;
		event_active(c->kick, 0, 0);
	} else
		TAILQ_REMOVE(&c->queued, r, entry);
	req_free(r);
}

/* RFC 6749 appendix B: application/x-www-form-urlencoded, UTF-8. */
char *
http_form_escape(const char *s, size_t len)
{
	static const char	 hex[] = "0123456789ABCDEF";
	char			*out, *p;
	unsigned char		 ch;

	if (len > (SIZE_MAX - 1) / 3 || (out = malloc(len * 3 + 1)) == NULL)
		return NULL;
	for (p = out; len > 0; s++, len--) {
		ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' ||
		    ch == '_' || ch == '*')
			*p++ = (char)ch;
		else if (ch == ' ')
			*p++ = '+';
		else {
			*p++ = '%';
			*p++ = hex[ch >> 4];
			*p++ = hex[ch & 0x0f];
		}
	}
	*p = '\0';
	return out;
}

/* Why a request did not end in 200, for a log line. */
void
http_failure(const struct http_response *r, char *err, size_t errlen)
{
	if (r->status == 0)
		errbuf_set(err, errlen, "%s", r->error != NULL ? r->error :
		    "no answer");
	else
		errbuf_set(err, errlen, "HTTP %ld", r->status);
}
