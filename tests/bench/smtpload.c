/*
 * smtpload -- a load generator for SMTP submission servers.
 *
 * C concurrent connections each run sessions of: connect, 220, EHLO,
 * optional STARTTLS or implicit TLS, optional AUTH PLAIN with an initial
 * response, m messages of k recipients and S octets (pipelined when the
 * server offers PIPELINING, unless --no-pipelining), QUIT.  Latencies are kept as samples and
 * sorted for percentiles; every reply that is not the one expected is an
 * error, and any error makes the exit status 1.
 *
 * TLS is not verified: this is a loopback benchmark, not a mail client.
 *
 * With --ack-log, every message carries a Message-ID of its own, and
 * its fate (the reply that decided it, or the loss of the connection,
 * and at which stage) is written to a file, one line per message: the
 * fault tests compare that with what the server delivered.
 */

#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <err.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stddef.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>

#define MAX_LINE	4096		/* longest reply line accepted */
#define LINE_MAX_OCTETS	76		/* body line length, below 78 */

enum state {
	S_CONNECT,
	S_GREETING,
	S_EHLO,
	S_STARTTLS,
	S_EHLO2,
	S_IDLE,
	S_AUTH,
	S_MAIL,
	S_RCPT,
	S_DATA,
	S_DOT,
	S_QUIT,
	S_DONE
};

struct samples {
	double		*v;
	size_t		 n;
	size_t		 cap;
};

struct user {
	char		*name;
	char		*b64;		/* base64("\0user\0password") */
};

struct session {
	int			 slot;
	int			 active;
	SSL_SESSION		*resume;	/* --resume: the last ticket;
						   kept across the slot's
						   sessions (session_start
						   clears from state on) */
	enum state		 state;
	struct bufferevent	*bev;
	int			 tls;		/* TLS is up (or being set up) */
	int			 pipelining;
	int			 failed;	/* an error was counted */
	int			 txn_failed;	/* in a pipelined transaction */
	int			 ehlo_lines;
	int			 ml_code;	/* code of a multi-line reply */
	int			 msg;		/* messages done */
	int			 rcpt;		/* RCPT replies read */
	uint64_t		 seq;		/* session number, from 0 */
	int			 msg_open;	/* --ack-log: fate not logged */
	char			 msgid[128];	/* --ack-log: of this message */
	const struct user	*user;
	double			 t_connect;
	double			 t_tls;		/* STARTTLS's 220 read */
	double			 t_auth;
	double			 t_txn;
};

static struct {
	const char	*host;
	const char	*port;
	const char	*sni;
	const char	*from;
	const char	*to;
	const char	*ehlo;
	const char	*authfile;
	const char	*acklog;
	int		 conc;
	long		 nsessions;	/* 0: not given */
	long		 seconds;	/* 0: not given */
	int		 msgs;
	int		 rcpts;
	long		 size;
	int		 starttls;
	int		 tls;
	int		 no_pipelining;	/* wait for each reply */
	int		 idle;
	int		 json;
	int		 resume;	/* offer each slot's last session */
	int		 verbose;
	long		 timeout;
} cf;

static struct {
	uint64_t	 started;
	uint64_t	 completed;	/* without any error */
	uint64_t	 failed;	/* with at least one error */
	uint64_t	 messages;	/* accepted: 250 after the dot */
	uint64_t	 codes[1000];	/* non-2xx/3xx replies by code */
	uint64_t	 unexpected;	/* 2xx/3xx where another was due */
	uint64_t	 malformed;	/* not a reply line */
	uint64_t	 conn_errors;	/* connect failed, reset, early EOF */
	uint64_t	 tls_errors;
	uint64_t	 tls_resumed;	/* handshakes that resumed */
	uint64_t	 timeouts;
	struct samples	 lat_connect;
	struct samples	 lat_tls;	/* STARTTLS handshakes */
	struct samples	 lat_auth;
	struct samples	 lat_txn;
} st;

static struct event_base	*base;
static SSL_CTX			*ssl_ctx;
static struct sockaddr_storage	 dst;
static socklen_t		 dstlen;
static struct session		*sessions;
static struct user		*users;
static size_t			 nusers, next_user;
static char			*body;		/* dot-stuffed, with ".\r\n" */
static size_t			 bodylen;
static char			**rcpt_addrs;
static int			 active;
static int			 stopping;
static int			 idle_open, idle_resolved, idle_announced;
static double			 t_start, t_end;
static struct timeval		 tv_timeout;
static const struct timeval	 tv_zero;
static FILE			*ackfp;
static long			 mypid;

static void	session_start(struct session *);
static void	session_end(struct session *);
static void	send_quit(struct session *);
static void	maybe_finish(void);

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
sample_add(struct samples *s, double v)
{
	double *nv;
	size_t ncap;

	if (s->n == s->cap) {
		ncap = s->cap ? s->cap * 2 : 1024;
		if ((nv = reallocarray(s->v, ncap, sizeof(*nv))) == NULL)
			err(1, "reallocarray");
		s->v = nv;
		s->cap = ncap;
	}
	s->v[s->n++] = v;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted samples. */
static double
pct(const struct samples *s, double q)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	rank = (size_t)(q * s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->v[rank - 1];
}

static void
fail_reply(struct session *s, int code)
{
	if (code >= 200 && code < 400)
		st.unexpected++;
	else if (code >= 0 && code < 1000)
		st.codes[code]++;
	else
		st.malformed++;
	s->failed = 1;
}

/*
 * --ack-log: the fate of the message in flight, once.  what is a reply
 * code ("250", "451") or "drop" (connection closed, reset or refused)
 * or "timeout"; the stage says where the message was.
 */
static void
ack(struct session *s, const char *what, const char *stage)
{
	if (ackfp == NULL || !s->msg_open)
		return;
	s->msg_open = 0;
	fprintf(ackfp, "%s %s %s %.0f\n", s->msgid, what, stage,
	    now_ms() - t_start);
}

static void
ack_code(struct session *s, int code, const char *stage)
{
	char	 buf[16];

	snprintf(buf, sizeof(buf), "%03d", code);
	ack(s, buf, stage);
}

/* The connection is gone: where was the message? */
static void
ack_lost(struct session *s, const char *what)
{
	switch (s->state) {
	case S_MAIL:
		ack(s, what, "mail");
		break;
	case S_RCPT:
		ack(s, what, "rcpt");
		break;
	case S_DATA:
		ack(s, what, "data");
		break;
	case S_DOT:
		/*
		 * Octets still queued here never reached the server, the
		 * final dot among them: it cannot have the message.  Once
		 * all is written the server may have taken it and its 250
		 * may be what was lost.
		 */
		if (s->bev != NULL && evbuffer_get_length(
		    bufferevent_get_output(s->bev)) > 0)
			ack(s, what, "body");
		else
			ack(s, what, "dot");
		break;
	default:
		ack(s, what, "other");
		break;
	}
}

static void
sendf(struct session *s, const char *fmt, ...)
    __attribute__((__format__(__printf__, 2, 3)));

static void
sendf(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (cf.verbose) {
		fprintf(stderr, "%d S%d >>> ", s->slot, s->state);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	va_start(ap, fmt);
	evbuffer_add_vprintf(bufferevent_get_output(s->bev), fmt, ap);
	va_end(ap);
}

static const char *
mail_from(const struct session *s)
{
	if (cf.from == NULL && s->user != NULL &&
	    strchr(s->user->name, '@') != NULL)
		return s->user->name;
	return cf.from != NULL ? cf.from : "smtpload@example.org";
}

static void
send_ehlo(struct session *s, enum state next)
{
	s->state = next;
	s->ehlo_lines = 0;
	s->pipelining = 0;
	sendf(s, "EHLO %s\r\n", cf.ehlo);
}

/* MAIL, RCPTs and DATA: one write when pipelining, else MAIL only. */
static void
send_mail(struct session *s)
{
	int i;

	s->state = S_MAIL;
	s->rcpt = 0;
	s->txn_failed = 0;
	s->t_txn = now_ms();
	if (ackfp != NULL) {
		snprintf(s->msgid, sizeof(s->msgid),
		    "smtpload.%ld.%llu.%d@%s", mypid,
		    (unsigned long long)s->seq, s->msg, cf.ehlo);
		s->msg_open = 1;
	}
	sendf(s, "MAIL FROM:<%s>\r\n", mail_from(s));
	if (!s->pipelining)
		return;
	for (i = 0; i < cf.rcpts; i++)
		sendf(s, "RCPT TO:<%s>\r\n", rcpt_addrs[i]);
	sendf(s, "DATA\r\n");
}

static void
send_auth(struct session *s)
{
	s->state = S_AUTH;
	s->t_auth = now_ms();
	sendf(s, "AUTH PLAIN %s\r\n", s->user->b64);
}

static void
send_quit(struct session *s)
{
	s->state = S_QUIT;
	sendf(s, "QUIT\r\n");
}

/* After the (last) EHLO: idle, AUTH or the first message. */
static void
session_ready(struct session *s)
{
	if (cf.idle && stopping) {
		idle_resolved++;
		send_quit(s);
		maybe_finish();
		return;
	}
	if (cf.idle) {
		s->state = S_IDLE;
		bufferevent_set_timeouts(s->bev, NULL, NULL);
		idle_open++;
		idle_resolved++;
		maybe_finish();
		return;
	}
	if (s->user != NULL)
		send_auth(s);
	else if (cf.msgs == 0)
		send_quit(s);
	else
		send_mail(s);
}

static void	read_cb(struct bufferevent *, void *);
static void	event_cb(struct bufferevent *, short, void *);

/*
 * A client SSL for s; with --resume it offers the session (ticket) the
 * slot was last given, as a client that reconnects does.
 */
static SSL *
client_ssl(struct session *s)
{
	SSL	*ssl;

	if ((ssl = SSL_new(ssl_ctx)) == NULL)
		errx(1, "SSL_new");
	if (cf.sni != NULL)
		SSL_set_tlsext_host_name(ssl, cf.sni);
	if (cf.resume && s->resume != NULL)
		(void)SSL_set_session(ssl, s->resume);
	return ssl;
}

/*
 * A session that ended well: the slot keeps it for its next connection
 * (a resumed one keeps the ticket it resumed with), and it is marked
 * shut down, since OpenSSL marks one freed without a shutdown
 * unresumable (ssl_clear_bad_session).
 */
static void
keep_session(struct session *s, SSL *ssl)
{
	SSL_SESSION	*sess;

	SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
	if ((sess = SSL_get1_session(ssl)) == NULL)
		return;
	if (s->resume != NULL)
		SSL_SESSION_free(s->resume);
	s->resume = sess;
}

static void
start_tls_filter(struct session *s)
{
	struct bufferevent *fb;
	SSL *ssl;

	ssl = client_ssl(s);
	fb = bufferevent_openssl_filter_new(base, s->bev, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (fb == NULL) {
		SSL_free(ssl);
		st.tls_errors++;
		s->failed = 1;
		session_end(s);
		return;
	}
	s->bev = fb;
	s->tls = 1;
	s->t_tls = now_ms();
	bufferevent_setcb(fb, read_cb, NULL, event_cb, s);
	bufferevent_set_timeouts(fb, &tv_timeout, &tv_timeout);
	bufferevent_enable(fb, EV_READ | EV_WRITE);
	send_ehlo(s, S_EHLO2);
}

/*
 * One complete reply (the last line of it) has arrived: advance.
 * Returns 0 to go on reading, -1 when the session's buffer must not be
 * read any further (ended, or replaced by a TLS filter).
 */
static int
on_reply(struct session *s, int code)
{
	double t = now_ms();

	switch (s->state) {
	case S_GREETING:
		if (code != 220) {
			fail_reply(s, code);
			send_quit(s);
			return 0;
		}
		sample_add(&st.lat_connect, t - s->t_connect);
		send_ehlo(s, S_EHLO);
		return 0;
	case S_EHLO:
	case S_EHLO2:
		if (code != 250) {
			fail_reply(s, code);
			send_quit(s);
			return 0;
		}
		if (s->state == S_EHLO && cf.starttls) {
			s->state = S_STARTTLS;
			sendf(s, "STARTTLS\r\n");
			return 0;
		}
		session_ready(s);
		return 0;
	case S_STARTTLS:
		if (code != 220) {
			fail_reply(s, code);
			send_quit(s);
			return 0;
		}
		/* Nothing may follow the 220 in the clear. */
		if (evbuffer_get_length(bufferevent_get_input(s->bev)) > 0) {
			st.malformed++;
			s->failed = 1;
			session_end(s);
			return -1;
		}
		start_tls_filter(s);
		return -1;
	case S_AUTH:
		if (code != 235) {
			fail_reply(s, code);
			send_quit(s);
			return 0;
		}
		sample_add(&st.lat_auth, t - s->t_auth);
		if (cf.msgs == 0) {
			/* -m 0: the authentication path alone. */
			send_quit(s);
			return 0;
		}
		send_mail(s);
		return 0;
	case S_MAIL:
		if (code != 250) {
			fail_reply(s, code);
			ack_code(s, code, "mail");
			if (!s->pipelining) {
				send_quit(s);
				return 0;
			}
			s->txn_failed = 1;
		}
		s->state = S_RCPT;
		if (!s->pipelining)
			sendf(s, "RCPT TO:<%s>\r\n", rcpt_addrs[0]);
		return 0;
	case S_RCPT:
		if (code != 250 && code != 251) {
			fail_reply(s, code);
			ack_code(s, code, "rcpt");
			if (!s->pipelining) {
				send_quit(s);
				return 0;
			}
			s->txn_failed = 1;
		}
		s->rcpt++;
		if (s->rcpt < cf.rcpts) {
			if (!s->pipelining)
				sendf(s, "RCPT TO:<%s>\r\n",
				    rcpt_addrs[s->rcpt]);
			return 0;
		}
		s->state = S_DATA;
		if (!s->pipelining)
			sendf(s, "DATA\r\n");
		return 0;
	case S_DATA:
		if (code != 354) {
			fail_reply(s, code);
			ack_code(s, code, "data");
			send_quit(s);
			return 0;
		}
		s->state = S_DOT;
		if (s->txn_failed) {
			/* RFC 2920 3.1: an accepted DATA gets a lone dot. */
			sendf(s, ".\r\n");
			return 0;
		}
		if (ackfp != NULL)
			sendf(s, "Message-ID: <%s>\r\n", s->msgid);
		evbuffer_add_reference(bufferevent_get_output(s->bev),
		    body, bodylen, NULL, NULL);
		return 0;
	case S_DOT:
		ack_code(s, code, "dot");
		if (code != 250) {
			fail_reply(s, code);
			send_quit(s);
			return 0;
		}
		if (s->txn_failed) {
			send_quit(s);
			return 0;
		}
		sample_add(&st.lat_txn, t - s->t_txn);
		st.messages++;
		if (++s->msg < cf.msgs && !stopping)
			send_mail(s);
		else
			send_quit(s);
		return 0;
	case S_QUIT:
		if (code != 221)
			fail_reply(s, code);
		session_end(s);
		return -1;
	case S_IDLE:
	default:
		/* A reply nobody asked for (a 421 while idle, say). */
		fail_reply(s, code);
		session_end(s);
		return -1;
	}
}

static void
ehlo_line(struct session *s, const char *text, size_t len)
{
	/* The first line is the greeting; keywords follow. */
	if (s->ehlo_lines++ == 0)
		return;
	/* --no-pipelining: a client that never uses it (RFC 2920 is optional). */
	if (cf.no_pipelining)
		return;
	if (len >= 10 && strncasecmp(text, "PIPELINING", 10) == 0 &&
	    (len == 10 || text[10] == ' '))
		s->pipelining = 1;
}

static void
read_cb(struct bufferevent *bev, void *arg)
{
	struct session *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	char *line;
	size_t len;
	int code, last;

	while ((line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF)) != NULL) {
		if (len < 3 || !isdigit((unsigned char)line[0]) ||
		    !isdigit((unsigned char)line[1]) ||
		    !isdigit((unsigned char)line[2]) ||
		    (len > 3 && line[3] != ' ' && line[3] != '-')) {
			free(line);
			st.malformed++;
			s->failed = 1;
			session_end(s);
			return;
		}
		if (cf.verbose)
			fprintf(stderr, "%d S%d <<< %s\n", s->slot, s->state,
			    line);
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 +
		    (line[2] - '0');
		last = len == 3 || line[3] == ' ';
		if (s->ml_code != 0 && s->ml_code != code) {
			free(line);
			st.malformed++;
			s->failed = 1;
			session_end(s);
			return;
		}
		if (s->state == S_EHLO || s->state == S_EHLO2)
			ehlo_line(s, len > 4 ? line + 4 : "",
			    len > 4 ? len - 4 : 0);
		free(line);
		if (!last) {
			s->ml_code = code;
			continue;
		}
		s->ml_code = 0;
		if (on_reply(s, code) == -1)
			return;
	}
	if (evbuffer_get_length(in) > MAX_LINE) {
		st.malformed++;
		s->failed = 1;
		session_end(s);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct session *s = arg;
	unsigned long e;
	int one = 1;

	if (what & BEV_EVENT_CONNECTED) {
		/* Also the end of a STARTTLS handshake: its latency. */
		if (s->state != S_CONNECT) {
			if (s->t_tls > 0)
				sample_add(&st.lat_tls, now_ms() - s->t_tls);
			s->t_tls = 0;
			if (SSL_session_reused(bufferevent_openssl_get_ssl(bev)))
				st.tls_resumed++;
			return;
		}
		setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY,
		    &one, sizeof(one));
		s->state = S_GREETING;
		return;
	}
	/*
	 * A server that closes right after its last reply (Postfix after
	 * 221, over TLS) can make libevent's TLS filter report the end
	 * before it has handed us that reply: read what is there first.
	 */
	if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		read_cb(bev, s);
		if (!s->active || s->bev != bev)
			return;
	}
	if (what & BEV_EVENT_TIMEOUT) {
		st.timeouts++;
		s->failed = 1;
		ack_lost(s, "timeout");
	} else if (what & BEV_EVENT_ERROR) {
		e = s->tls ? bufferevent_get_openssl_error(bev) : 0;
		if (e != 0) {
			st.tls_errors++;
			while (bufferevent_get_openssl_error(bev) != 0)
				;
		} else
			st.conn_errors++;
		s->failed = 1;
	} else if (what & BEV_EVENT_EOF) {
		/* Expected only after a 421 or a counted error. */
		if (!s->failed) {
			st.conn_errors++;
			s->failed = 1;
		}
	}
	session_end(s);
}

static void
session_start(struct session *s)
{
	struct bufferevent *bev;
	SSL *ssl;

	memset(&s->state, 0, sizeof(*s) - offsetof(struct session, state));
	s->active = 1;
	active++;
	s->seq = st.started++;
	if (nusers > 0) {
		s->user = &users[next_user];
		next_user = (next_user + 1) % nusers;
	}
	if (cf.tls) {
		ssl = client_ssl(s);
		bev = bufferevent_openssl_socket_new(base, -1, ssl,
		    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
		s->tls = 1;
	} else
		bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		errx(1, "bufferevent");
	s->bev = bev;
	s->state = S_CONNECT;
	bufferevent_setcb(bev, read_cb, NULL, event_cb, s);
	bufferevent_set_timeouts(bev, &tv_timeout, &tv_timeout);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	s->t_connect = now_ms();
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&dst,
	    dstlen) == -1) {
		/* The bufferevent is already freed on this failure. */
		s->bev = NULL;
		st.conn_errors++;
		s->failed = 1;
		session_end(s);
	}
}

static int
want_more(void)
{
	if (stopping || cf.idle)
		return 0;
	if (cf.nsessions > 0 && st.started >= (uint64_t)cf.nsessions)
		return 0;
	return 1;
}

static void
maybe_finish(void)
{
	if (cf.idle && !idle_announced && idle_resolved >= cf.idle) {
		idle_announced = 1;
		printf("idle: %d sessions open\n", idle_open);
		fflush(stdout);
	}
	if (active == 0) {
		t_end = now_ms();
		event_base_loopbreak(base);
	}
}

static void
restart_cb(evutil_socket_t fd, short what, void *arg)
{
	struct session *s = arg;

	(void)fd;
	(void)what;
	active--;
	if (want_more())
		session_start(s);
	else {
		s->active = 0;
		s->state = S_DONE;
		maybe_finish();
	}
}

static void
session_end(struct session *s)
{
	if (!s->active)
		return;
	/* Ended with a message open: malformed reply or lost connection. */
	ack_lost(s, "drop");
	if (cf.idle && s->state < S_IDLE)
		idle_resolved++;
	if (cf.resume && s->tls && !s->failed && s->bev != NULL &&
	    bufferevent_openssl_get_ssl(s->bev) != NULL)
		keep_session(s, bufferevent_openssl_get_ssl(s->bev));
	if (s->bev != NULL)
		bufferevent_free(s->bev);
	s->bev = NULL;
	s->active = 0;
	s->state = S_DONE;
	active--;
	if (s->failed)
		st.failed++;
	else
		st.completed++;
	if (want_more()) {
		/* From the loop: a failing connect must not recurse. */
		active++;
		s->active = 1;
		s->state = S_CONNECT;
		if (event_base_once(base, -1, EV_TIMEOUT, restart_cb, s,
		    &tv_zero) == -1)
			errx(1, "event_base_once");
		return;
	}
	maybe_finish();
}

static void
stop(void)
{
	int i;

	if (stopping)
		return;
	stopping = 1;
	if (!cf.idle)
		return;
	for (i = 0; i < cf.idle; i++) {
		if (sessions[i].active && sessions[i].state == S_IDLE) {
			bufferevent_set_timeouts(sessions[i].bev, &tv_timeout,
			    &tv_timeout);
			send_quit(&sessions[i]);
		}
	}
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	static int count;

	(void)sig;
	(void)what;
	(void)arg;
	if (count++ > 0) {
		/* Second signal: give up on the sessions in flight. */
		t_end = now_ms();
		event_base_loopbreak(base);
		return;
	}
	stop();
}

static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	stop();
}

static char *
base64(const unsigned char *in, size_t len)
{
	char *out;

	if ((out = malloc(4 * ((len + 2) / 3) + 1)) == NULL)
		err(1, NULL);
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

static void
load_users(const char *path)
{
	FILE *fp;
	char *line = NULL, *colon, *buf;
	size_t cap = 0, ulen, plen;
	ssize_t n;

	if ((fp = fopen(path, "r")) == NULL)
		err(1, "%s", path);
	while ((n = getline(&line, &cap, fp)) != -1) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0 || line[0] == '#')
			continue;
		if ((colon = strchr(line, ':')) == NULL)
			errx(1, "%s: line without \"user:password\"", path);
		*colon = '\0';
		ulen = strlen(line);
		plen = strlen(colon + 1);
		if ((buf = malloc(ulen + plen + 2)) == NULL)
			err(1, NULL);
		buf[0] = '\0';
		memcpy(buf + 1, line, ulen);
		buf[ulen + 1] = '\0';
		memcpy(buf + ulen + 2, colon + 1, plen);
		if ((users = reallocarray(users, nusers + 1,
		    sizeof(*users))) == NULL)
			err(1, NULL);
		if ((users[nusers].name = strdup(line)) == NULL)
			err(1, NULL);
		users[nusers].b64 = base64((unsigned char *)buf,
		    ulen + plen + 2);
		freezero(buf, ulen + plen + 2);
		nusers++;
	}
	free(line);
	fclose(fp);
	if (nusers == 0)
		errx(1, "%s: no users", path);
}

/* to@example.org, k = 3: to0@example.org, to1@example.org, ... */
static void
make_rcpts(void)
{
	const char *at;
	int i;

	if ((rcpt_addrs = calloc(cf.rcpts, sizeof(*rcpt_addrs))) == NULL)
		err(1, NULL);
	if ((at = strrchr(cf.to, '@')) == NULL)
		errx(1, "--to %s: no domain", cf.to);
	for (i = 0; i < cf.rcpts; i++)
		if (asprintf(&rcpt_addrs[i], "%.*s%d%s", (int)(at - cf.to),
		    cf.to, i, at) == -1)
			err(1, NULL);
}

static void
body_add(char **p, size_t *len, size_t *cap, const char *s, size_t n)
{
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		if ((*p = realloc(*p, *cap)) == NULL)
			err(1, NULL);
	}
	memcpy(*p + *len, s, n);
	*len += n;
	(*p)[*len] = '\0';
}

/*
 * A message of exactly cf.size octets when it is larger than its headers:
 * headers, an empty line, lines of at most 76 octets plus CRLF, some of
 * them starting with a dot.  Then dot-stuffed and terminated.
 */
static void
make_body(void)
{
	char *msg = NULL, date[64], line[LINE_MAX_OCTETS + 3];
	size_t len = 0, cap = 0, rem, l, i, nline = 0;
	time_t now = time(NULL);
	struct tm tm;
	char *hdr;
	int hl;

	localtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z", &tm);
	hl = asprintf(&hdr, "From: <%s>\r\nTo: <%s>\r\n"
	    "Subject: smtpload test message\r\nDate: %s\r\n"
	    "MIME-Version: 1.0\r\n"
	    "Content-Type: text/plain; charset=us-ascii\r\n\r\n",
	    cf.from != NULL ? cf.from : (nusers > 0 &&
	    strchr(users[0].name, '@') != NULL ? users[0].name :
	    "smtpload@example.org"), rcpt_addrs[0], date);
	if (hl == -1)
		err(1, NULL);
	body_add(&msg, &len, &cap, hdr, hl);
	free(hdr);
	rem = (size_t)cf.size > len ? (size_t)cf.size - len : 0;
	while (rem >= 2) {
		l = LINE_MAX_OCTETS;
		if (rem - (l + 2) == 1)
			l--;
		if (rem <= l + 2)
			l = rem - 2;
		for (i = 0; i < l; i++)
			line[i] = 'a' + (nline + i) % 26;
		if (l > 0 && nline % 8 == 7)
			line[0] = '.';
		line[l] = '\r';
		line[l + 1] = '\n';
		body_add(&msg, &len, &cap, line, l + 2);
		rem -= l + 2;
		nline++;
	}
	/* Dot-stuff. */
	cap = len * 2 + 8;
	if ((body = malloc(cap)) == NULL)
		err(1, NULL);
	for (i = 0, bodylen = 0; i < len; i++) {
		if (msg[i] == '.' && (i == 0 || msg[i - 1] == '\n'))
			body[bodylen++] = '.';
		body[bodylen++] = msg[i];
	}
	memcpy(body + bodylen, ".\r\n", 3);
	bodylen += 3;
	free(msg);
}

static void
raise_nofile(rlim_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "getrlimit");
	if (rl.rlim_cur >= need)
		return;
	if (rl.rlim_max < need) {
		rl.rlim_max = need;	/* works as root */
		rl.rlim_cur = need;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
			return;
		getrlimit(RLIMIT_NOFILE, &rl);
		warnx("RLIMIT_NOFILE: %llu wanted, hard limit %llu",
		    (unsigned long long)need,
		    (unsigned long long)rl.rlim_max);
		need = rl.rlim_max;
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		err(1, "setrlimit");
}

static uint64_t
total_errors(void)
{
	uint64_t n;
	int i;

	n = st.unexpected + st.malformed + st.conn_errors + st.tls_errors +
	    st.timeouts;
	for (i = 0; i < 1000; i++)
		n += st.codes[i];
	return n;
}

static void
print_lat_text(const char *name, const struct samples *s)
{
	printf("%-20s n=%zu p50=%.3f p99=%.3f max=%.3f\n", name, s->n,
	    pct(s, 0.50), pct(s, 0.99), pct(s, 1.0));
}

static void
print_lat_json(const char *name, const struct samples *s)
{
	printf("\"%s\":{\"n\":%zu,\"p50\":%.3f,\"p99\":%.3f,\"max\":%.3f},",
	    name, s->n, pct(s, 0.50), pct(s, 0.99), pct(s, 1.0));
}

static void
report(void)
{
	double secs = (t_end - t_start) / 1e3;
	double sps, mps;
	int i, first;

	if (secs <= 0)
		secs = 1e-9;
	sps = st.completed / secs;
	mps = st.messages / secs;
	if (st.lat_connect.n > 0)
		qsort(st.lat_connect.v, st.lat_connect.n, sizeof(double),
		    cmp_double);
	if (st.lat_auth.n > 0)
		qsort(st.lat_auth.v, st.lat_auth.n, sizeof(double),
		    cmp_double);
	if (st.lat_tls.n > 0)
		qsort(st.lat_tls.v, st.lat_tls.n, sizeof(double),
		    cmp_double);
	if (st.lat_txn.n > 0)
		qsort(st.lat_txn.v, st.lat_txn.n, sizeof(double),
		    cmp_double);

	if (cf.json) {
		printf("{\"host\":\"%s\",\"port\":\"%s\",\"tls\":\"%s\","
		    "\"auth\":%s,\"concurrency\":%d,\"messages_per_session\":%d,"
		    "\"rcpts\":%d,\"size\":%ld,\"pipelining\":%s,",
		    cf.host, cf.port, cf.tls ? "implicit" : cf.starttls ?
		    "starttls" : "none", nusers > 0 ? "true" : "false",
		    cf.idle ? cf.idle : cf.conc, cf.msgs, cf.rcpts, cf.size,
		    cf.no_pipelining ? "false" : "true");
		if (cf.idle)
			printf("\"idle_open\":%d,", idle_open);
		printf("\"elapsed_s\":%.3f,\"sessions_started\":%llu,"
		    "\"sessions_completed\":%llu,\"sessions_failed\":%llu,"
		    "\"sessions_per_s\":%.1f,\"messages\":%llu,"
		    "\"messages_per_s\":%.1f,", secs,
		    (unsigned long long)st.started,
		    (unsigned long long)st.completed,
		    (unsigned long long)st.failed, sps,
		    (unsigned long long)st.messages, mps);
		print_lat_json("connect_ms", &st.lat_connect);
		print_lat_json("starttls_ms", &st.lat_tls);
		print_lat_json("auth_ms", &st.lat_auth);
		print_lat_json("transaction_ms", &st.lat_txn);
		printf("\"error_replies\":{");
		for (i = 0, first = 1; i < 1000; i++) {
			if (st.codes[i] == 0)
				continue;
			printf("%s\"%d\":%llu", first ? "" : ",", i,
			    (unsigned long long)st.codes[i]);
			first = 0;
		}
		printf("},\"unexpected_replies\":%llu,\"malformed_replies\":%llu,"
		    "\"connection_errors\":%llu,\"tls_errors\":%llu,"
		    "\"tls_resumed\":%llu,"
		    "\"timeouts\":%llu,\"errors\":%llu}\n",
		    (unsigned long long)st.unexpected,
		    (unsigned long long)st.malformed,
		    (unsigned long long)st.conn_errors,
		    (unsigned long long)st.tls_errors,
		    (unsigned long long)st.tls_resumed,
		    (unsigned long long)st.timeouts,
		    (unsigned long long)total_errors());
		return;
	}
	printf("%-20s %.3f\n", "elapsed_s", secs);
	if (cf.idle)
		printf("%-20s %d\n", "idle_open", idle_open);
	printf("%-20s %llu\n", "sessions_started",
	    (unsigned long long)st.started);
	printf("%-20s %llu\n", "sessions_completed",
	    (unsigned long long)st.completed);
	printf("%-20s %llu\n", "sessions_failed",
	    (unsigned long long)st.failed);
	printf("%-20s %.1f\n", "sessions_per_s", sps);
	printf("%-20s %llu\n", "messages", (unsigned long long)st.messages);
	printf("%-20s %.1f\n", "messages_per_s", mps);
	print_lat_text("connect_ms", &st.lat_connect);
	print_lat_text("starttls_ms", &st.lat_tls);
	print_lat_text("auth_ms", &st.lat_auth);
	print_lat_text("transaction_ms", &st.lat_txn);
	printf("%-20s", "error_replies");
	for (i = 0, first = 1; i < 1000; i++) {
		if (st.codes[i] == 0)
			continue;
		printf(" %d=%llu", i, (unsigned long long)st.codes[i]);
		first = 0;
	}
	printf("%s\n", first ? " none" : "");
	printf("%-20s %llu\n", "unexpected_replies",
	    (unsigned long long)st.unexpected);
	printf("%-20s %llu\n", "malformed_replies",
	    (unsigned long long)st.malformed);
	printf("%-20s %llu\n", "connection_errors",
	    (unsigned long long)st.conn_errors);
	printf("%-20s %llu\n", "tls_errors", (unsigned long long)st.tls_errors);
	printf("%-20s %llu\n", "tls_resumed",
	    (unsigned long long)st.tls_resumed);
	printf("%-20s %llu\n", "timeouts", (unsigned long long)st.timeouts);
	printf("%-20s %llu\n", "errors", (unsigned long long)total_errors());
}

static void __attribute__((__noreturn__))
usage(void)
{
	fprintf(stderr, "usage: %s [--json] [--starttls | --tls] "
	    "[--auth userfile] [-c concurrency]\n"
	    "\t[-h host] [-k rcpts] [-m messages] [-n sessions] [-p port] "
	    "[--resume] [-s size]\n"
	    "\t[-t seconds] [-v] [--ack-log file] [--ehlo name] "
	    "[--from addr]\n\t[--idle count] [--no-pipelining] [--sni name] "
	    "[--timeout seconds] [--to addr]\n",
	    getprogname());
	exit(2);
}

static long
num(const char *s, const char *what, long lo, long hi)
{
	const char *errstr;
	long long v;

	v = strtonum(s, lo, hi, &errstr);
	if (errstr != NULL)
		errx(2, "%s %s: %s", what, s, errstr);
	return (long)v;
}

enum {
	OPT_STARTTLS = 256, OPT_TLS, OPT_AUTH, OPT_FROM, OPT_TO, OPT_EHLO,
	OPT_IDLE, OPT_JSON, OPT_TIMEOUT, OPT_SNI, OPT_ACKLOG, OPT_NOPIPE,
	OPT_RESUME, OPT_HELP
};

static const struct option longopts[] = {
	{ "starttls",	no_argument,		NULL, OPT_STARTTLS },
	{ "tls",	no_argument,		NULL, OPT_TLS },
	{ "auth",	required_argument,	NULL, OPT_AUTH },
	{ "from",	required_argument,	NULL, OPT_FROM },
	{ "to",		required_argument,	NULL, OPT_TO },
	{ "ehlo",	required_argument,	NULL, OPT_EHLO },
	{ "idle",	required_argument,	NULL, OPT_IDLE },
	{ "json",	no_argument,		NULL, OPT_JSON },
	{ "timeout",	required_argument,	NULL, OPT_TIMEOUT },
	{ "sni",	required_argument,	NULL, OPT_SNI },
	{ "ack-log",	required_argument,	NULL, OPT_ACKLOG },
	{ "no-pipelining", no_argument,		NULL, OPT_NOPIPE },
	{ "resume",	no_argument,		NULL, OPT_RESUME },
	{ "help",	no_argument,		NULL, OPT_HELP },
	{ NULL,		0,			NULL, 0 }
};

int
main(int argc, char *argv[])
{
	struct addrinfo hints, *res;
	struct event *sigint, *sigterm, *timer = NULL;
	struct in6_addr a6;
	struct timeval tv;
	int ch, error, i, n;

	cf.host = "127.0.0.1";
	cf.conc = 1;
	cf.msgs = 1;
	cf.rcpts = 1;
	cf.size = 4096;
	cf.to = "to@example.org";
	cf.ehlo = "smtpload.example";
	cf.timeout = 30;

	while ((ch = getopt_long(argc, argv, "c:h:k:m:n:p:s:t:v", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			cf.conc = num(optarg, "-c", 1, 1000000);
			break;
		case 'h':
			cf.host = optarg;
			break;
		case 'k':
			cf.rcpts = num(optarg, "-k", 1, 100000);
			break;
		case 'm':
			cf.msgs = num(optarg, "-m", 0, INT_MAX);
			break;
		case 'n':
			cf.nsessions = num(optarg, "-n", 1, LONG_MAX);
			break;
		case 'p':
			cf.port = optarg;
			break;
		case 's':
			cf.size = num(optarg, "-s", 0, 1L << 30);
			break;
		case 't':
			cf.seconds = num(optarg, "-t", 1, 100000000);
			break;
		case 'v':
			cf.verbose = 1;
			break;
		case OPT_STARTTLS:
			cf.starttls = 1;
			break;
		case OPT_TLS:
			cf.tls = 1;
			break;
		case OPT_RESUME:
			cf.resume = 1;
			break;
		case OPT_AUTH:
			cf.authfile = optarg;
			break;
		case OPT_FROM:
			cf.from = optarg;
			break;
		case OPT_TO:
			cf.to = optarg;
			break;
		case OPT_EHLO:
			cf.ehlo = optarg;
			break;
		case OPT_IDLE:
			cf.idle = num(optarg, "--idle", 1, 1000000);
			break;
		case OPT_JSON:
			cf.json = 1;
			break;
		case OPT_TIMEOUT:
			cf.timeout = num(optarg, "--timeout", 1, 86400);
			break;
		case OPT_SNI:
			cf.sni = optarg;
			break;
		case OPT_ACKLOG:
			cf.acklog = optarg;
			break;
		case OPT_NOPIPE:
			cf.no_pipelining = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (cf.tls && cf.starttls)
		errx(2, "--tls and --starttls exclude each other");
	if (cf.port == NULL)
		cf.port = cf.tls ? "465" : "587";
	if (cf.nsessions == 0 && cf.seconds == 0 && !cf.idle)
		cf.nsessions = cf.conc;
	if (cf.nsessions > 0 && cf.conc > cf.nsessions)
		cf.conc = cf.nsessions;
	/* SNI carries host names only (RFC 6066 3). */
	if (cf.sni == NULL && inet_pton(AF_INET6, cf.host, &a6) != 1 &&
	    inet_pton(AF_INET, cf.host, &a6) != 1)
		cf.sni = cf.host;
	tv_timeout.tv_sec = cf.timeout;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	if ((error = getaddrinfo(cf.host, cf.port, &hints, &res)) != 0)
		errx(1, "%s port %s: %s", cf.host, cf.port,
		    gai_strerror(error));
	memcpy(&dst, res->ai_addr, res->ai_addrlen);
	dstlen = res->ai_addrlen;
	freeaddrinfo(res);

	if (cf.authfile != NULL)
		load_users(cf.authfile);
	if (cf.acklog != NULL) {
		if (strcmp(cf.acklog, "-") == 0)
			ackfp = stderr;
		else if ((ackfp = fopen(cf.acklog, "w")) == NULL)
			err(1, "%s", cf.acklog);
		mypid = (long)getpid();
	}
	make_rcpts();
	make_body();

	if (cf.tls || cf.starttls) {
		if ((ssl_ctx = SSL_CTX_new(TLS_client_method())) == NULL)
			errx(1, "SSL_CTX_new");
		/* No verification: a loopback benchmark. */
		SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_NONE, NULL);
	}

	n = cf.idle ? cf.idle : cf.conc;
	raise_nofile((rlim_t)n + 64);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		errx(1, "event_base_new");
	if ((sessions = calloc(n, sizeof(*sessions))) == NULL)
		err(1, NULL);
	sigint = evsignal_new(base, SIGINT, signal_cb, NULL);
	sigterm = evsignal_new(base, SIGTERM, signal_cb, NULL);
	evsignal_add(sigint, NULL);
	evsignal_add(sigterm, NULL);
	if (cf.seconds > 0) {
		timer = evtimer_new(base, timer_cb, NULL);
		tv.tv_sec = cf.seconds;
		tv.tv_usec = 0;
		evtimer_add(timer, &tv);
	}

	t_start = now_ms();
	for (i = 0; i < n; i++) {
		sessions[i].slot = i;
		if (cf.idle || want_more())
			session_start(&sessions[i]);
	}
	if (active > 0)
		event_base_dispatch(base);
	if (t_end == 0)
		t_end = now_ms();

	/* Abandoned by a second signal: their fate is unknown. */
	for (i = 0; ackfp != NULL && i < n; i++)
		if (sessions[i].active)
			ack_lost(&sessions[i], "abandoned");
	if (ackfp != NULL && ackfp != stderr && fclose(ackfp) == EOF)
		warn("%s", cf.acklog);
	report();
	fflush(stdout);
	if (timer != NULL)
		event_free(timer);
	event_free(sigint);
	event_free(sigterm);
	return total_errors() > 0 || st.failed > 0;
}
