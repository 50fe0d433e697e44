/*
 * smtp_session.c -- accepting connections and running sessions.
 *
 * Each worker accepts on the listening sockets master gave it: its own
 * on Linux, where the kernel spreads connections over the workers'
 * SO_REUSEPORT group; elsewhere one shared by all, where whichever
 * wins the accept serves the client (master/listen.c).  A session lives in one bufferevent (an
 * OpenSSL one once TLS is up) and never blocks the loop.  Commands are
 * taken from the input in order and their replies queued; the output
 * goes out when the loop comes back, so pipelined commands (RFC 2920)
 * get their replies in one write.  While a command waits for another
 * party (the delivery's answer after DATA), no further input is read
 * as commands.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>

#include "log.h"
#include "metrics.h"
#include "tls.h"
#include "worker.h"

#define SESSION_LINGER_TRIES	250	/* of 20 ms: 5 s for the last reply */
#define HEAP_QUIET_MS		1000	/* no new session or handshake */

#define EARLY_TALKER_REPLY \
	"554 5.5.0 Protocol error: talked before the greeting\r\n"

struct listen_event {
	struct event		*ev;
	struct listener		*listener;
};

static struct listen_event	 listen_events[CONF_LISTENERS_MAX];
static int			 nlisten_events;
static struct event		*accept_pause_ev;
#ifdef __GLIBC__
static struct event		*heap_trim_ev;
#endif

static int	addr_count_cmp(struct addr_count *, struct addr_count *);

static int
addr_count_cmp(struct addr_count *a, struct addr_count *b)
{
	return strcmp(a->addr, b->addr);
}

RB_HEAD(addr_tree, addr_count);
RB_PROTOTYPE(addr_tree, addr_count, entry, addr_count_cmp)
RB_GENERATE(addr_tree, addr_count, entry, addr_count_cmp)
static struct addr_tree	addr_counts = RB_INITIALIZER(&addr_counts);

/* A count that no session holds goes, so the tree stays small. */
static void
addr_count_unused(struct addr_count *ac)
{
	if (ac->count == 0) {
		RB_REMOVE(addr_tree, &addr_counts, ac);
		free(ac);
	}
}

/*
 * A TLS handshake allocates some 40 KiB for a moment, between the few
 * KiB a session keeps, and glibc's malloc returns nothing from the
 * middle of its heap: after a burst of connections every idle session
 * would seem to cost twice what it holds.  Once the worker has been
 * quiet for HEAP_QUIET_MS after a burst, malloc_trim(3) gives the
 * free pages back (madvise; the heap stays where it is).  Under steady
 * load it never runs: the free memory is reused there anyway.  Other
 * systems' malloc (OpenBSD's) gives pages back by itself.
 */
#ifdef __GLIBC__
static void
heap_trim(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	(void)malloc_trim(0);
}
#endif

static void
heap_trim_later(void)
{
#ifdef __GLIBC__
	struct timeval	 tv = { HEAP_QUIET_MS / 1000,
			    (HEAP_QUIET_MS % 1000) * 1000 };

	if (heap_trim_ev == NULL &&
	    (heap_trim_ev = evtimer_new(worker->base, heap_trim, NULL)) ==
	    NULL)
		return;
	evtimer_add(heap_trim_ev, &tv);
#endif
}

static void	session_read(struct bufferevent *, void *);
static void	session_write(struct bufferevent *, void *);
static void	session_event(struct bufferevent *, short, void *);
static void	session_process(struct session *);
static void	session_vreply(struct session *, const char *, va_list)
		    __attribute__((__format__ (printf, 2, 0)));

static void
session_vreply(struct session *s, const char *fmt, va_list ap)
{
	struct evbuffer	*out = bufferevent_get_output(s->bev);

	evbuffer_add_vprintf(out, fmt, ap);
	evbuffer_add(out, "\r\n", 2);
}

void
session_reply(struct session *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
}

/* An error reply; it counts towards max-errors. */
void
smtp_reply_error(struct session *s, const char *fmt, ...)
{
	char	 line[SMTP_LINE_MAX];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	session_reply(s, "%s", line);
	if (++s->errors >= (unsigned int)worker->conf->max_errors) {
		log_info("session %016llx: too many errors, closing",
		    (unsigned long long)s->id);
		session_close_after(s, "421 4.7.0 %s Too many errors, closing "
		    "transmission channel", worker->conf->hostname);
	}
}

/* RFC 5321 4.1.1.5: forget the envelope, keep the session. */
void
smtp_transaction_reset(struct session *s)
{
	for (size_t i = 0; i < s->env.nrcpts; i++)
		free(s->env.rcpts[i]);
	free(s->env.rcpts);
	s->env.rcpts = NULL;
	s->env.nrcpts = 0;
	s->rcpt_cap = 0;
	s->env.sender[0] = '\0';
	s->env.body_8bit = 0;
	s->env.smtputf8 = 0;
	if (s->state == STATE_MAIL || s->state == STATE_RCPT)
		s->state = STATE_HELO;
}

/* Send a last line, stop reading, free once the output has drained. */
void
session_close_after(struct session *s, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	session_vreply(s, fmt, ap);
	va_end(ap);
	s->closing = 1;
	bufferevent_disable(s->bev, EV_READ);
}

void
session_free(struct session *s)
{
	smtp_auth_session_gone(s);
	smtp_limit_session_gone(s);
	free(s->limit_rcpt);
	if (s->delivery != NULL)
		deliver_abort(s->delivery);
	s->delivery = NULL;
	smtp_transaction_reset(s);
	TAILQ_REMOVE(&worker->sessions, s, entry);
	worker->nsessions--;
	metrics_add(M_SESSIONS_ACTIVE, (uint64_t)-1, s->listener->name);
	if (s->ac != NULL) {
		s->ac->count--;
		addr_count_unused(s->ac);
	}
	event_free(s->timer);
	/* A handshake waiting for the key process keeps the socket. */
	if (s->tls_accept != NULL && tls_accept_free(s->tls_accept)) {
		log_debug("session %016llx: its handshake waits for the key "
		    "process and ends on its own", (unsigned long long)s->id);
		bufferevent_setfd(s->bev, -1);
	}
	bufferevent_free(s->bev);
	SSL_free(s->tls_pending);
	free(s->auth_addrs);
	heap_trim_later();
	log_info("session %016llx: closed, %u message(s)",
	    (unsigned long long)s->id, s->messages);
	free(s);
	worker_session_gone();
}

/*
 * Output not yet on the wire.  Under STARTTLS the filter's buffer
 * drains into the socket's own bufferevent first: freeing the session
 * when only the former is empty would lose the last reply.
 */
static size_t
session_output_pending(struct session *s)
{
	struct bufferevent	*u = bufferevent_get_underlying(s->bev);
	size_t			 n;

	n = evbuffer_get_length(bufferevent_get_output(s->bev));
	if (u != NULL)
		n += evbuffer_get_length(bufferevent_get_output(u));
	return n;
}

/* Free a closing session once its last words are out. */
static void
session_finish(struct session *s)
{
	struct timeval	 tv = { 0, 20000 };

	if (session_output_pending(s) == 0 ||
	    ++s->linger > SESSION_LINGER_TRIES) {
		session_free(s);
		return;
	}
	evtimer_add(s->timer, &tv);
}

static void
session_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s = arg;
	struct timeval	 linger = { 10, 0 };

	(void)fd; (void)ev;
	if (s->closing && s->linger > 0) {
		session_finish(s);
		return;
	}
	log_info("session %016llx: timeout", (unsigned long long)s->id);
	if (s->delivery != NULL) {
		deliver_abort(s->delivery);
		s->delivery = NULL;
	}
	if (s->closing || s->state == STATE_TLS_ACCEPT ||
	    s->tls_accept != NULL) {
		session_free(s);
		return;
	}
	session_close_after(s, "421 4.4.2 %s Timeout, closing transmission "
	    "channel", worker->conf->hostname);
	/* A client that does not read must not hold the session. */
	evtimer_add(s->timer, &linger);
}

/* Command or data timeout, capped by the session's total time. */
void
session_timer_reset(struct session *s)
{
	struct portcullis_conf	*conf = worker->conf;
	struct timeval		 tv;
	time_t			 left;

	if (s->closing)
		return;
	tv.tv_sec = s->state == STATE_DATA ? conf->timeout_data :
	    conf->timeout_command;
	tv.tv_usec = 0;
	left = s->started + conf->timeout_session - time(NULL);
	if (left < tv.tv_sec)
		tv.tv_sec = left > 0 ? left : 0;
	evtimer_add(s->timer, &tv);
}

static void
session_greet(struct session *s)
{
	s->state = STATE_INIT;
	session_reply(s, "220 %s ESMTP portcullis", worker->conf->hostname);
	session_timer_reset(s);
}

/*
 * RFC 5321 4.3.1: the client waits for the greeting.  One that has
 * already talked (a spam engine in a hurry) is refused.
 */
static int
session_early_talker(int fd)
{
	char	 c;

	return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

static void
session_tls_up(struct session *s)
{
	SSL	*ssl = bufferevent_openssl_get_ssl(s->bev);

	s->tls = 1;
	heap_trim_later();
	metrics_add(M_TLS_HANDSHAKES, 1, s->listener->name,
	    SSL_get_version(ssl), "ok");
	tls_describe(ssl, s->tls_desc, sizeof(s->tls_desc));
	log_info("session %016llx: TLS established, %s%s",
	    (unsigned long long)s->id, s->tls_desc,
	    SSL_session_reused(ssl) ? ", resumed" : "");
	if (s->state == STATE_TLS_ACCEPT)
		session_greet(s);
	else
		session_timer_reset(s);
}

/*
 * RFC 3207 4.2: after the handshake the session starts over, and
 * whatever the client sent after STARTTLS in the clear is discarded,
 * never executed (the CVE-2011-0411 injection).
 *
 * The 220 goes out in the clear first; meanwhile nothing is read, so
 * the ClientHello waits in the kernel.  Then the plaintext
 * bufferevent gives its socket to an OpenSSL one (session_tls_switch)
 * rather than staying under it as a filter: one bufferevent less per
 * session, and libevent's filter reads until OpenSSL has no more,
 * which leaves OpenSSL holding a 16 KiB read buffer in every idle
 * session despite SSL_MODE_RELEASE_BUFFERS; on a socket it stops when
 * the record is consumed and the buffer is released.
 */
void
session_starttls(struct session *s)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);

	evbuffer_drain(in, evbuffer_get_length(in));
	if ((s->tls_pending = tls_session_new(s->listener)) == NULL) {
		tls_log_error(s->id, "STARTTLS");
		session_close_after(s, "421 4.7.0 %s TLS not available",
		    worker->conf->hostname);
		return;
	}
	bufferevent_disable(s->bev, EV_READ);
	smtp_transaction_reset(s);
	/* Nothing more is read as a command until the handshake is done. */
	s->state = STATE_TLS_ACCEPT;
	s->esmtp = 0;
	s->helo[0] = '\0';
}

/*
 * Under TLS each write of the session's output becomes its own record
 * and its own send (a socket bufferevent: OpenSSL writes to the socket
 * itself), so a reply that follows another before the client's ACK
 * would wait for Nagle's algorithm and the client's delayed ACK, up
 * to 40 ms on Linux.  Plaintext output leaves in one writev per turn
 * of the loop and keeps Nagle.
 */
static void
tls_nodelay(int fd)
{
	int	 one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Octets from the client, after TLS: counted as they arrive. */
static void
session_bytes_in(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct session	*s = arg;

	(void)buf;
	if (info->n_added > 0)
		metrics_add(M_BYTES_RECEIVED, info->n_added,
		    s->listener->name);
}

static void
session_count_input(struct session *s)
{
	if (evbuffer_add_cb(bufferevent_get_input(s->bev), session_bytes_in,
	    s) == NULL)
		log_warnx("session %016llx: input not counted",
		    (unsigned long long)s->id);
}

/*
 * The handshake is over (tls.c, tls_accept_start()): the socket goes
 * to an OpenSSL bufferevent, open already.  ssl NULL: it failed.
 */
static void
session_tls_done(void *arg, SSL *ssl)
{
	struct session		*s = arg;
	struct bufferevent	*tbev;
	evutil_socket_t		 fd = bufferevent_getfd(s->bev);

	s->tls_accept = NULL;
	if (ssl == NULL) {
		tls_log_error(s->id, "TLS");
		session_free(s);
		return;
	}
	tbev = bufferevent_openssl_socket_new(worker->base, fd, ssl,
	    BUFFEREVENT_SSL_OPEN,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (tbev == NULL) {
		SSL_free(ssl);
		log_warnx("session %016llx: TLS bufferevent failed",
		    (unsigned long long)s->id);
		session_free(s);
		return;
	}
	/* The socket is tbev's now: freeing the old one must not close it. */
	bufferevent_setfd(s->bev, -1);
	bufferevent_free(s->bev);
	/* The client may hang up without close_notify; SMTP has its own
	 * framing, so that is the end of the session, not an error. */
	bufferevent_openssl_set_allow_dirty_shutdown(tbev, 1);
	s->bev = tbev;
	session_count_input(s);
	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
	bufferevent_enable(s->bev, EV_READ);
	session_tls_up(s);
	session_process(s);
}

/*
 * Hand the socket to a handshake that may pause for the key process
 * (the 220 is out, for STARTTLS).  The plaintext bufferevent keeps
 * the socket meanwhile, idle, so that a session freed during the
 * handshake closes it as always.
 */
static void
session_tls_begin(struct session *s, SSL *ssl)
{
	evutil_socket_t		 fd = bufferevent_getfd(s->bev);

	bufferevent_disable(s->bev, EV_READ | EV_WRITE);
	tls_nodelay(fd);
	if ((s->tls_accept = tls_accept_start(worker->base, ssl, fd,
	    session_tls_done, s)) == NULL) {
		SSL_free(ssl);
		log_warnx("session %016llx: TLS handshake could not start",
		    (unsigned long long)s->id);
		session_free(s);
	}
}

/* The 220 is out: the handshake. */
static void
session_tls_switch(struct session *s)
{
	SSL	*ssl = s->tls_pending;

	s->tls_pending = NULL;
	s->state = STATE_INIT;
	session_tls_begin(s, ssl);
}

static struct addr_count *
addr_count_get(const char *addr)
{
	struct addr_count	 key, *ac;

	strlcpy(key.addr, addr, sizeof(key.addr));
	if ((ac = RB_FIND(addr_tree, &addr_counts, &key)) != NULL)
		return ac;
	if ((ac = calloc(1, sizeof(*ac))) == NULL)
		return NULL;
	strlcpy(ac->addr, addr, sizeof(ac->addr));
	RB_INSERT(addr_tree, &addr_counts, ac);
	return ac;
}

/* Refuse a connection over a limit with 421, in the clear, and move on. */
static void
session_refuse(int fd, const char *reason)
{
	char	 line[SMTP_LINE_MAX];
	int	 n;

	n = snprintf(line, sizeof(line), "421 4.7.0 %s %s\r\n",
	    worker->conf->hostname, reason);
	if (n > 0)
		(void)send(fd, line, (size_t)n < sizeof(line) ? (size_t)n :
		    sizeof(line) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static struct session *
session_alloc(int fd, struct listener *l, const char *host)
{
	struct session	*s;
	SSL		*ssl = NULL;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	/* Implicit TLS: the handshake gets the socket once registered. */
	if ((l->flags & LISTEN_SMTPS) && (ssl = tls_session_new(l)) == NULL) {
		free(s);
		return NULL;
	}
	s->tls_pending = ssl;
	s->bev = bufferevent_socket_new(worker->base, fd,
	    BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
	if (s->bev == NULL) {
		SSL_free(ssl);
		free(s);
		return NULL;
	}
	if ((s->timer = evtimer_new(worker->base, session_timeout, s)) ==
	    NULL) {
		bufferevent_free(s->bev);
		SSL_free(ssl);
		free(s);
		return NULL;
	}
	s->listener = l;
	s->id = ((uint64_t)arc4random() << 32) | arc4random();
	s->started = time(NULL);
	strlcpy(s->client_addr, host, sizeof(s->client_addr));
	return s;
}

/*
 * The limits on sessions, and RFC 5321 4.3.1: the client waits for the
 * greeting.  The client's count if it may go on; else the connection
 * is refused and closed, and NULL.
 */
static struct addr_count *
session_admit(int fd, struct listener *l, const char *host)
{
	struct portcullis_conf	*conf = worker->conf;
	struct addr_count	*ac;

	if (worker->nsessions + proxy_waiting() >=
	    (unsigned int)conf->max_sessions) {
		log_warnx("refused %s on %s: %u sessions, the limit", host,
		    l->name, worker->nsessions + proxy_waiting());
		session_refuse(fd, "Too many sessions, try again later");
		return NULL;
	}
	if ((ac = addr_count_get(host)) == NULL) {
		session_refuse(fd, "Out of memory");
		return NULL;
	}
	if (ac->count >= (unsigned int)conf->max_sessions_per_addr) {
		log_warnx("refused %s on %s: %u sessions from that address",
		    host, l->name, ac->count);
		addr_count_unused(ac);
		session_refuse(fd, "Too many connections from your address");
		return NULL;
	}
	if (!(l->flags & LISTEN_SMTPS) &&
	    conf->early_talkers == EARLY_TALKERS_REJECT &&
	    session_early_talker(fd)) {
		log_info("refused %s on %s: talked before the greeting", host,
		    l->name);
		addr_count_unused(ac);
		(void)send(fd, EARLY_TALKER_REPLY, strlen(EARLY_TALKER_REPLY),
		    MSG_DONTWAIT | MSG_NOSIGNAL);
		close(fd);
		return NULL;
	}
	return ac;
}

/*
 * A session for the client at host, on a socket whose next octet is
 * the client's: straight from accept, or after a balancer's PROXY
 * header (via names the balancer, else NULL).
 */
void
session_start(int fd, struct listener *l, const char *host, const char *via)
{
	struct addr_count	*ac;
	struct session		*s;
	SSL			*ssl;

	if ((ac = session_admit(fd, l, host)) == NULL)
		return;
	if ((s = session_alloc(fd, l, host)) == NULL) {
		log_warnx("session on %s from %s: out of memory", l->name,
		    host);
		addr_count_unused(ac);
		close(fd);
		return;
	}
	s->ac = ac;
	ac->count++;
	heap_trim_later();
	TAILQ_INSERT_TAIL(&worker->sessions, s, entry);
	worker->nsessions++;
	metrics_add(M_SESSIONS, 1, l->name);
	metrics_add(M_SESSIONS_ACTIVE, 1, l->name);
	session_count_input(s);
	if (via != NULL)
		log_info("session %016llx: connection from %s on %s via %s",
		    (unsigned long long)s->id, host, l->name, via);
	else
		log_info("session %016llx: connection from %s on %s",
		    (unsigned long long)s->id, host, l->name);

	bufferevent_setcb(s->bev, session_read, session_write, session_event,
	    s);
	bufferevent_setwatermark(s->bev, EV_READ, 0, SESSION_INPUT_MAX);
	if (l->flags & LISTEN_SMTPS) {
		s->state = STATE_TLS_ACCEPT;
		session_timer_reset(s);
		ssl = s->tls_pending;
		s->tls_pending = NULL;
		session_tls_begin(s, ssl);
		return;
	}
	session_greet(s);
	bufferevent_enable(s->bev, EV_READ);
}

static void
session_new(int fd, struct listener *l, struct sockaddr_storage *ss,
    socklen_t sslen)
{
	char	 host[NI_MAXHOST];

	if (getnameinfo((struct sockaddr *)ss, sslen, host, sizeof(host),
	    NULL, 0, NI_NUMERICHOST) != 0)
		strlcpy(host, "unknown", sizeof(host));
	/* Its balancer speaks first: the client's address comes next. */
	if (l->flags & LISTEN_PROXY) {
		proxy_wait_start(fd, l, ss, host);
		return;
	}
	session_start(fd, l, host, NULL);
}

/*
 * Take one line from the input.  Returns 1 with a NUL-terminated
 * command in line, 0 when no whole line is there yet, 2 after dropping
 * the tail of an overlong line, -1 for a line too long and -2 for one
 * with a NUL octet.
 */
static int
session_getline(struct session *s, char *line, size_t linesz)
{
	struct evbuffer		*in = bufferevent_get_input(s->bev);
	struct evbuffer_ptr	 eol;
	size_t			 eol_len, len;

	eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
	if (eol.pos == -1) {
		/* Keep memory bounded: an overlong line is dropped as it comes. */
		if (s->discarding) {
			evbuffer_drain(in, evbuffer_get_length(in));
			return 0;
		}
		if (evbuffer_get_length(in) < linesz)
			return 0;
		evbuffer_drain(in, evbuffer_get_length(in));
		s->discarding = 1;
		return -1;
	}
	len = (size_t)eol.pos;
	if (s->discarding) {
		/* The tail of a line already answered with 500. */
		evbuffer_drain(in, len + eol_len);
		s->discarding = 0;
		return 2;
	}
	if (len + 2 > linesz) {
		evbuffer_drain(in, len + eol_len);
		return -1;
	}
	evbuffer_remove(in, line, len);
	evbuffer_drain(in, eol_len);
	line[len] = '\0';
	if (memchr(line, '\0', len) != NULL)
		return -2;
	return 1;
}

static void
session_process(struct session *s)
{
	char	 line[SMTP_AUTH_LINE_MAX];
	int	 rv;

	/* A delivery that answers at once resumes us from inside. */
	if (s->processing)
		return;
	s->processing = 1;
	while (!s->closing) {
		if (session_output_pending(s) > SESSION_OUTPUT_MAX) {
			/* session_write() goes on once the client has read. */
			s->output_blocked = 1;
			break;
		}
		if (s->state == STATE_DATA) {
			smtp_data_input(s);
			if (s->state == STATE_DATA)
				break;
			continue;
		}
		if (s->state == STATE_DATA_DONE ||
		    s->state == STATE_TLS_ACCEPT ||
		    s->state == STATE_AUTH_WAIT ||
		    s->state == STATE_LIMIT_WAIT)
			break;
		if ((rv = session_getline(s, line, sizeof(line))) == 0)
			break;
		session_timer_reset(s);
		if (rv == 2)
			continue;
		if (rv == -1)
			smtp_reply_error(s, "500 5.5.2 Line too long");
		else if (rv == -2)
			smtp_reply_error(s, "500 5.5.2 NUL octet in command");
		else if (s->state == STATE_AUTH) {
			smtp_auth_response(s, line);
			explicit_bzero(line, sizeof(line));
		} else {
			smtp_command(s, line);
			explicit_bzero(line, sizeof(line));
		}
	}
	s->processing = 0;
}

static void
session_read(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;
	struct evbuffer	*in = bufferevent_get_input(bev);

	if (s->closing) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	session_process(s);
	if (s->closing && session_output_pending(s) == 0)
		session_free(s);
}

/* A command that waited (the delivery's answer) is done: go on. */
void
session_resume(struct session *s)
{
	session_timer_reset(s);
	bufferevent_enable(s->bev, EV_READ);
	if (s->processing)
		return;
	session_process(s);
	if (s->closing && session_output_pending(s) == 0)
		session_free(s);
}

static void
session_write(struct bufferevent *bev, void *arg)
{
	struct session	*s = arg;

	(void)bev;
	if (s->closing) {
		if (s->linger == 0)
			session_finish(s);
		return;
	}
	if (s->tls_pending != NULL) {
		if (session_output_pending(s) == 0)
			session_tls_switch(s);
		return;
	}
	if (s->output_blocked) {
		s->output_blocked = 0;
		session_process(s);
		if (s->closing && session_output_pending(s) == 0)
			session_free(s);
	}
}

static void
session_event(struct bufferevent *bev, short events, void *arg)
{
	struct session	*s = arg;

	if (events & BEV_EVENT_CONNECTED) {
		session_tls_up(s);
		session_process(s);
		return;
	}
	/* A handshake that ended before it was done, either way. */
	if (!s->tls && (events & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) &&
	    bufferevent_openssl_get_ssl(bev) != NULL)
		metrics_add(M_TLS_HANDSHAKES, 1, s->listener->name, "unknown",
		    "failed");
	if (events & BEV_EVENT_ERROR) {
		if (s->state == STATE_TLS_ACCEPT || bufferevent_openssl_get_ssl(
		    bev) != NULL)
			tls_log_bufferevent_error(s->id, "TLS", bev);
		else if (errno != 0 && errno != ECONNRESET)
			log_warn("session %016llx", (unsigned long long)s->id);
	} else if (events & BEV_EVENT_EOF)
		log_debug("session %016llx: client closed the connection",
		    (unsigned long long)s->id);
	session_free(s);
}

static void
accept_resume(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	if (!worker->shutting_down)
		smtp_listen_start();
}

static void
accept_pause(void)
{
	struct timeval	 tv = { 1, 0 };

	smtp_listen_stop();
	if (accept_pause_ev == NULL)
		accept_pause_ev = evtimer_new(worker->base, accept_resume,
		    NULL);
	evtimer_add(accept_pause_ev, &tv);
}

static void
smtp_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct listener		*l = arg;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen = sizeof(ss);
	int			 fd;

	(void)ev;
	fd = accept4(lfd, (struct sockaddr *)&ss, &sslen,
	    SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd == -1) {
		switch (errno) {
		case EAGAIN:		/* another worker won the race */
		case EINTR:
		case ECONNABORTED:
			return;
		case EMFILE:
		case ENFILE:
			log_warn("worker %u: accept", worker->id);
			accept_pause();
			return;
		default:
			log_warn("worker %u: accept", worker->id);
			return;
		}
	}
	session_new(fd, l, &ss, sslen);
}

void
smtp_listen_start(void)
{
	struct listener	*l;

	if (nlisten_events == 0) {
		TAILQ_FOREACH(l, &worker->conf->listeners, entry) {
			if (l->fd == -1 || nlisten_events == CONF_LISTENERS_MAX)
				continue;
			if ((l->flags & (LISTEN_SMTPS | LISTEN_STARTTLS)) &&
			    !tls_available(l))
				log_warnx("listener %s: no TLS context; TLS "
				    "sessions will be refused", l->name);
			listen_events[nlisten_events].listener = l;
			listen_events[nlisten_events].ev = event_new(
			    worker->base, l->fd, EV_READ | EV_PERSIST,
			    smtp_accept, l);
			nlisten_events++;
		}
	}
	for (int i = 0; i < nlisten_events; i++)
		event_add(listen_events[i].ev, NULL);
}

void
smtp_listen_stop(void)
{
	for (int i = 0; i < nlisten_events; i++)
		event_del(listen_events[i].ev);
	if (accept_pause_ev != NULL)
		evtimer_del(accept_pause_ev);
}

/*
 * A socket of our own (Linux) takes the connections the kernel queued
 * on it down with it, reset: serve them instead, as the sessions of
 * the grace period.  A shared socket's queue stays for the others.
 */
static void
listen_drain(struct listener *l)
{
#ifdef __linux__
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	int			 fd;

	for (;;) {
		sslen = sizeof(ss);
		if ((fd = accept4(l->fd, (struct sockaddr *)&ss, &sslen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC)) == -1)
			break;
		session_new(fd, l, &ss, sslen);
	}
#else
	(void)l;
#endif
}

/* Shutting down: give the sockets back so the port stops accepting. */
void
smtp_listen_close(void)
{
	smtp_listen_stop();
	for (int i = 0; i < nlisten_events; i++) {
		listen_drain(listen_events[i].listener);
		event_free(listen_events[i].ev);
		close(listen_events[i].listener->fd);
		listen_events[i].listener->fd = -1;
	}
	nlisten_events = 0;
}

void
smtp_close_all(const char *reply)
{
	struct session	*s;

	proxy_wait_close_all();
	TAILQ_FOREACH(s, &worker->sessions, entry)
		if (!s->closing)
			session_close_after(s, "%s", reply);
}
