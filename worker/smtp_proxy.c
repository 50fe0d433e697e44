/*
 * smtp_proxy.c -- a listener behind a balancer: the PROXY protocol
 * header (HAProxy's doc/proxy-protocol.txt, parsed by proxy_proto.c)
 * read before anything else on the connection.
 *
 * A listener with proxy-protocol serves its balancers only (section 5:
 * "accepting the header only from a number of known sources should be
 * safe"; section 2: the receiver "MUST not try to guess whether the
 * protocol header is present"): a connection from any other address
 * is closed at once, and one from a balancer must bring a valid header
 * within timeout proxy, or it is closed too; each refusal is logged.
 * The header is read from the raw socket before the greeting and
 * before an implicit-TLS handshake (the balancer passes TLS through),
 * and never an octet past it: the client's first octet is the
 * session's.  The address it names is the session's client address
 * from then on, for the logs, Received, penalties and authd; LOCAL and
 * UNKNOWN (a balancer's health check) keep the balancer's own.
 *
 * Nothing here blocks: the socket is non-blocking, each readable event
 * peeks at what has arrived and consumes only octets the parser says
 * belong to the header.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "proxy_proto.h"
#include "util.h"
#include "worker.h"

struct proxy_wait {
	TAILQ_ENTRY(proxy_wait)	 entry;
	struct listener		*listener;
	struct event		*ev;
	int			 fd;
	struct timespec		 started;	/* CLOCK_MONOTONIC */
	char			 peer[NI_MAXHOST];	/* the balancer */
	size_t			 len;		/* of buf, consumed */
	uint8_t			 buf[PROXY_HEADER_MAX];
};
TAILQ_HEAD(proxy_waitlist, proxy_wait);

static struct proxy_waitlist	 waits = TAILQ_HEAD_INITIALIZER(waits);
static unsigned int		 nwaits;

static void	proxy_wait_read(evutil_socket_t, short, void *);

unsigned int
proxy_waiting(void)
{
	return nwaits;
}

static int
prefix_match(const uint8_t *a, const uint8_t *net, int bits)
{
	uint8_t	 mask;

	for (size_t i = 0; bits > 0; i++, bits -= 8) {
		mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((a[i] & mask) != (net[i] & mask))
			return 0;
	}
	return 1;
}

/* Is the peer one of the listener's balancers? */
static int
proxy_source_allowed(const struct listener *l,
    const struct sockaddr_storage *ss)
{
	const uint8_t	*a;

	if (ss->ss_family == AF_INET)
		a = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	else
		return 0;
	for (int i = 0; i < l->proxy_nfrom && i < CONF_PROXY_FROM_MAX; i++)
		if (l->proxy_from[i].family == ss->ss_family &&
		    prefix_match(a, l->proxy_from[i].addr,
		    l->proxy_from[i].prefixlen))
			return 1;
	return 0;
}

static void
proxy_wait_free(struct proxy_wait *w, int close_fd)
{
	TAILQ_REMOVE(&waits, w, entry);
	nwaits--;
	event_free(w->ev);
	if (close_fd)
		close(w->fd);
	free(w);
}

/* Refused or gone: the connection ends without a word. */
static void
proxy_wait_fail(struct proxy_wait *w)
{
	proxy_wait_free(w, 1);
	worker_session_gone();
}

/* The rest of timeout proxy, counted from the accept. */
static int
proxy_wait_arm(struct proxy_wait *w)
{
	struct timeval	 tv;
	long		 left;

	left = worker->conf->timeout_proxy * 1000L - elapsed_ms(&w->started);
	if (left <= 0)
		left = 1;
	tv.tv_sec = left / 1000;
	tv.tv_usec = (left % 1000) * 1000;
	return event_add(w->ev, &tv);
}

/*
 * The client's address as the session shows it: numeric, and an
 * IPv4 client that an IPv6 balancer maps (RFC 4291 2.5.5.2) shown as
 * the IPv4 address it is, as it would be on a direct connection.
 */
static void
proxy_client_host(struct proxy_header *h, char *host, size_t size)
{
	struct sockaddr_in6	*s6 = (struct sockaddr_in6 *)&h->src;
	struct sockaddr_in	 s4;

	if (h->src.ss_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		s4.sin_port = s6->sin6_port;
		memcpy(&s4.sin_addr, &s6->sin6_addr.s6_addr[12], 4);
		memcpy(&h->src, &s4, sizeof(s4));
		h->srclen = sizeof(s4);
	}
	if (getnameinfo((struct sockaddr *)&h->src, h->srclen, host, size,
	    NULL, 0, NI_NUMERICHOST) != 0)
		(void)strlcpy(host, "unknown", size);
}

/* The header is in: the session starts as the client's. */
static void
proxy_wait_done(struct proxy_wait *w, struct proxy_header *h)
{
	struct listener	*l = w->listener;
	char		 host[NI_MAXHOST], via[NI_MAXHOST + 32];
	int		 fd = w->fd;

	if (h->has_addr)
		proxy_client_host(h, host, sizeof(host));
	else
		(void)strlcpy(host, w->peer, sizeof(host));
	(void)snprintf(via, sizeof(via), "%s (PROXY v%d%s)", w->peer,
	    h->version, h->has_addr ? "" : h->version == 1 ? " UNKNOWN" :
	    " LOCAL");
	proxy_wait_free(w, 0);
	session_start(fd, l, host, via);
	worker_session_gone();
}

static void
proxy_wait_read(evutil_socket_t fd, short what, void *arg)
{
	struct proxy_wait	*w = arg;
	struct proxy_header	 h;
	char			 err[128];
	ssize_t			 n;
	size_t			 take;
	int			 rv;

	if (what & EV_TIMEOUT) {
		log_warnx("refused %s on %s: no PROXY header within %ds",
		    w->peer, w->listener->name, worker->conf->timeout_proxy);
		proxy_wait_fail(w);
		return;
	}
	/* A look first: octets past the header are not ours to take. */
	n = recv(fd, w->buf + w->len, sizeof(w->buf) - w->len, MSG_PEEK);
	if (n == -1 && (errno == EAGAIN || errno == EINTR)) {
		if (proxy_wait_arm(w) == -1)
			proxy_wait_fail(w);
		return;
	}
	if (n <= 0) {
		/* A balancer's health check may only connect and close. */
		if ((n == 0 || errno == ECONNRESET) && w->len == 0)
			log_debug("%s on %s: closed before a PROXY header",
			    w->peer, w->listener->name);
		else
			log_warnx("refused %s on %s: %s after %zu octets of "
			    "a PROXY header", w->peer, w->listener->name,
			    n == 0 ? "closed" : strerror(errno), w->len);
		proxy_wait_fail(w);
		return;
	}
	rv = proxy_header_parse(w->buf, w->len + (size_t)n, &h, err,
	    sizeof(err));
	if (rv == -1) {
		log_warnx("refused %s on %s: PROXY header: %s", w->peer,
		    w->listener->name, err);
		proxy_wait_fail(w);
		return;
	}
	/* The whole header, or all that came, which is all header. */
	take = rv > 0 ? (size_t)rv - w->len : (size_t)n;
	if (recv(fd, w->buf + w->len, take, 0) != (ssize_t)take) {
		log_warn("refused %s on %s: reading the PROXY header",
		    w->peer, w->listener->name);
		proxy_wait_fail(w);
		return;
	}
	w->len += take;
	if (rv > 0)
		proxy_wait_done(w, &h);
	else if (w->len == sizeof(w->buf) || proxy_wait_arm(w) == -1)
		proxy_wait_fail(w);
}

/*
 * A connection on a proxy-protocol listener, from host (its peer):
 * refused at once unless the peer is one of the listener's balancers,
 * else its header is awaited.
 */
void
proxy_wait_start(int fd, struct listener *l,
    const struct sockaddr_storage *ss, const char *host)
{
	struct proxy_wait	*w;

	if (!proxy_source_allowed(l, ss)) {
		log_warnx("refused %s on %s: not a proxy-protocol source",
		    host, l->name);
		close(fd);
		return;
	}
	if (worker->nsessions + nwaits >=
	    (unsigned int)worker->conf->max_sessions) {
		log_warnx("refused %s on %s: %u sessions, the limit", host,
		    l->name, worker->nsessions + nwaits);
		close(fd);
		return;
	}
	if ((w = calloc(1, sizeof(*w))) == NULL ||
	    (w->ev = event_new(worker->base, fd, EV_READ, proxy_wait_read,
	    w)) == NULL) {
		log_warnx("refused %s on %s: out of memory", host, l->name);
		free(w);
		close(fd);
		return;
	}
	w->fd = fd;
	w->listener = l;
	(void)strlcpy(w->peer, host, sizeof(w->peer));
	(void)clock_gettime(CLOCK_MONOTONIC, &w->started);
	TAILQ_INSERT_TAIL(&waits, w, entry);
	nwaits++;
	if (proxy_wait_arm(w) == -1)
		proxy_wait_fail(w);
}

/* Shutting down: a balancer retries elsewhere what was not begun. */
void
proxy_wait_close_all(void)
{
	struct proxy_wait	*w;

	while ((w = TAILQ_FIRST(&waits)) != NULL)
		proxy_wait_free(w, 1);
}
