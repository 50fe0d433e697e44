/*
 * deliver_relay.c -- delivery to the next hop over SMTP or LMTP.
 *
 * The message is streamed: deliver_begin() connects and starts the
 * dialogue (greeting, EHLO or LHLO, STARTTLS if configured, MAIL,
 * RCPT for every recipient, DATA), deliver_write() dot-stuffs what it
 * gets and queues it, and deliver_end() sends the final dot.  The
 * client gets 250 only once the next hop said 250 (LMTP: for every
 * recipient); nothing is acknowledged that was not handed on.
 *
 * Commands are sent one at a time, each after the reply to the one
 * before: the next hop is near (loopback or a local network), a round
 * trip costs little, and a strict lock-step keeps the reply matching
 * simple and obviously right.  What the session writes before the
 * next hop said 354 waits in memory, bounded by the flow control of
 * deliver.h: above DELIVER_HIGH_WATER octets queued the session stops
 * reading from its client, and it is resumed once the queue is below
 * half of that.
 *
 * Outcomes, as the client sees them:
 *	next hop said 250		250 2.0.0 Ok: relayed (its text)
 *	unreachable, lost, timeout	451 4.4.1 Next hop unreachable
 *	a 4xx at any stage		451 4.x.x of the reply, or 4.0.0
 *	a 5xx at any stage		554 5.x.x of the reply, or 5.0.0
 *	not SMTP			451 4.5.0 Next hop protocol error
 *	a refused RCPT fails the whole delivery: the session had accepted
 *	that recipient already.
 *
 * The host in the relay URL must be a numeric address: the worker is
 * chrooted into an empty directory, without resolv.conf or a resolver
 * it could reach, so it cannot resolve names.
 *
 * STARTTLS ("deliver to relay URL tls") puts an OpenSSL filter
 * bufferevent on top of the socket's, so the same code drives a plain
 * and an encrypted connection.  The next hop's certificate is not
 * verified: the URL names a numeric
 * address, for which certificates are rarely issued, and the CA store
 * is out of reach after the chroot.  TLS here keeps a passive listener
 * on the path between this host and the next hop from reading the
 * mail; it does not authenticate the next hop.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <netinet/in.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "log.h"
#include "deliver_int.h"
#include "smtp_reply.h"

#define RELAY_LOW_WATER		(DELIVER_HIGH_WATER / 2)

int	relay_connect_timeout = 30;
int	relay_reply_timeout = 300;	/* RFC 5321 4.5.3.2: 5 minutes */
int	relay_quit_timeout = 10;
int	relay_active;

/* The dialogue; the state names the reply we wait for. */
enum relay_state {
	R_CONNECT,	/* the TCP connection */
	R_GREETING,	/* 220 */
	R_EHLO,		/* 250 to EHLO or LHLO */
	R_STARTTLS,	/* 220 to STARTTLS */
	R_HANDSHAKE,	/* the TLS handshake */
	R_MAIL,
	R_RCPT,
	R_DATA,		/* 354 */
	R_BODY,		/* no reply: the message streams */
	R_DOT,		/* the reply (LMTP: replies) to the final dot */
	R_QUIT,
	R_CLOSED,
};

static const char *const relay_state_names[] = {
	"connect", "greeting", "EHLO", "STARTTLS", "TLS handshake", "MAIL",
	"RCPT", "DATA", "message", "end of data", "QUIT", "closed",
};

struct relay {
	struct delivery		 d;
	enum relay_state	 state;
	int			 owned;		/* deliver_end/abort not yet */
	int			 ended;		/* deliver_end() was called */
	int			 have_result;
	int			 want_resume;
	int			 bol;		/* next octet starts a line */
	int			 lmtp;
	int			 body_8bit;
	int			 smtputf8;
	int			 ext_8bitmime;
	int			 ext_smtputf8;
	int			 ext_starttls;
	int			 tls_active;
	struct bufferevent	*sock;		/* the TCP connection */
	struct bufferevent	*bev;		/* sock, or TLS on top of it */
	struct evbuffer_cb_entry *outbuf_cb;
	struct event		*timer;
	struct event		*wake;
	struct evbuffer		*pre;		/* the message before 354 */
	char			 sender[SMTP_PATH_MAX];
	char			**rcpts;
	size_t			 nrcpts;
	size_t			 rcpt_next;	/* RCPT: index; DOT: replies */
	uint64_t		 octets;
	struct smtp_reply	 reply;		/* being read */
	struct smtp_reply	 first_temp;	/* LMTP: first 4xx */
	struct smtp_reply	 first_perm;	/* LMTP: first 5xx */
	struct smtp_reply	 first_ok;	/* LMTP: first 2xx */
	int			 result_code;
	char			 result_status[16];
	char			 result_text[256];
};

/* What relay_init() made of the configuration. */
static struct {
	int			 ok;
	int			 lmtp;
	struct sockaddr_storage	 ss;
	socklen_t		 sslen;
	char			 name[CONF_URL_MAX];	/* for logs */
	char			 helo[CONF_HOST_MAX];
	SSL_CTX			*ssl_ctx;		/* relay_tls only */
} relay_conf;

static void	relay_readcb(struct bufferevent *, void *);
static void	relay_eventcb(struct bufferevent *, short, void *);
static void	relay_timercb(evutil_socket_t, short, void *);
static void	relay_wakecb(evutil_socket_t, short, void *);
static void	relay_outbufcb(struct evbuffer *,
		    const struct evbuffer_cb_info *, void *);
static int	relay_handle_reply(struct relay *);
static void	relay_send(struct relay *, const char *, ...)
		    __attribute__((__format__ (printf, 2, 3)));

/*
 * Configuration
 */

/* "host", "host:port", "[v6]:port", maybe with a "/": split. */
static int
relay_url_host_port(const char *p, char *host, size_t hostsz, char *port,
    size_t portsz)
{
	const char	*end;
	size_t		 len;

	if (*p == '[') {
		if ((end = strchr(p, ']')) == NULL)
			return -1;
		len = end - p - 1;
		p++;
		end++;
	} else {
		end = p + strcspn(p, ":/");
		len = end - p;
	}
	if (len == 0 || len >= hostsz)
		return -1;
	memcpy(host, p, len);
	host[len] = '\0';
	if (*end == ':') {
		end++;
		len = strspn(end, "0123456789");
		if (len == 0 || len >= portsz)
			return -1;
		memcpy(port, end, len);
		port[len] = '\0';
		end += len;
	} else
		strlcpy(port, relay_conf.lmtp ? "24" : "25", portsz);
	if (*end == '/')
		end++;
	return *end == '\0' ? 0 : -1;
}

static int
relay_parse_url(const char *url)
{
	char		 host[CONF_URL_MAX], port[8];
	struct addrinfo	 hints, *res;
	int		 error;

	if (strncmp(url, "smtp://", 7) == 0)
		relay_conf.lmtp = 0;
	else if (strncmp(url, "lmtp://", 7) == 0)
		relay_conf.lmtp = 1;
	else {
		log_warnx("deliver: relay URL \"%s\": want smtp://host:port "
		    "or lmtp://host:port", url);
		return -1;
	}
	if (relay_url_host_port(url + 7, host, sizeof(host), port,
	    sizeof(port)) == -1)
		goto bad;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if ((error = getaddrinfo(host, port, &hints, &res)) != 0) {
		if (error == EAI_NONAME)
			log_warnx("deliver: relay URL \"%s\": relay host must "
			    "be a numeric address (a chrooted worker cannot "
			    "resolve names)", url);
		else
			log_warnx("deliver: relay URL \"%s\": %s", url,
			    gai_strerror(error));
		return -1;
	}
	if (res->ai_addrlen > sizeof(relay_conf.ss)) {
		freeaddrinfo(res);
		goto bad;
	}
	memcpy(&relay_conf.ss, res->ai_addr, res->ai_addrlen);
	relay_conf.sslen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
 bad:
	log_warnx("deliver: relay URL \"%s\" is not valid", url);
	return -1;
}

static void
relay_cleanup(void)
{
	SSL_CTX_free(relay_conf.ssl_ctx);
	memset(&relay_conf, 0, sizeof(relay_conf));
}

static int
relay_valid_helo(const char *name)
{
	if (*name == '\0')
		return 0;
	for (; *name != '\0'; name++)
		if (!isalnum((unsigned char)*name) && strchr("-._:[]",
		    *name) == NULL)
			return 0;
	return 1;
}

/*
 * A bad URL does not stop the worker: every delivery fails with 451
 * and says why in the log, and the clients keep their mail.
 */
static int
relay_init(void)
{
	struct portcullis_conf	*conf = deliver_env.conf;

	relay_cleanup();
	strlcpy(relay_conf.name, conf->relay_url, sizeof(relay_conf.name));
	strlcpy(relay_conf.helo, relay_valid_helo(conf->hostname) ?
	    conf->hostname : "localhost", sizeof(relay_conf.helo));
	if (conf->relay_tls) {
		if ((relay_conf.ssl_ctx = SSL_CTX_new(TLS_client_method())) ==
		    NULL) {
			log_warnx("deliver: relay: SSL_CTX_new failed");
			return -1;
		}
		SSL_CTX_set_min_proto_version(relay_conf.ssl_ctx,
		    TLS1_2_VERSION);
		SSL_CTX_set_options(relay_conf.ssl_ctx,
		    SSL_OP_NO_RENEGOTIATION);
		/* See the top of this file for why nothing is verified. */
		SSL_CTX_set_verify(relay_conf.ssl_ctx, SSL_VERIFY_NONE, NULL);
	}
	if (relay_parse_url(conf->relay_url) == 0)
		relay_conf.ok = 1;
	return 0;
}

/*
 * The connection
 */

static void
relay_arm(struct relay *r, int seconds)
{
	struct timeval	 tv;

	tv.tv_sec = seconds;
	tv.tv_usec = 0;
	evtimer_add(r->timer, &tv);
}

static void
relay_send(struct relay *r, const char *fmt, ...)
{
	va_list	 ap;
	char	 line[SMTP_PATH_MAX + 64];
	int	 n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		return;	/* cannot happen: the paths are bounded */
	log_debug("session %016llx: relay: >>> %s",
	    (unsigned long long)r->d.session_id, line);
	evbuffer_add_printf(bufferevent_get_output(r->bev), "%s\r\n", line);
}

static void
relay_close(struct relay *r)
{
	if (r->sock != NULL) {
		if (r->outbuf_cb != NULL)
			evbuffer_remove_cb_entry(bufferevent_get_output(
			    r->sock), r->outbuf_cb);
		r->outbuf_cb = NULL;
		bufferevent_setcb(r->bev, NULL, NULL, NULL, NULL);
		bufferevent_free(r->bev);	/* frees sock under TLS */
	}
	r->sock = r->bev = NULL;
	if (r->timer != NULL)
		evtimer_del(r->timer);
	r->state = R_CLOSED;
}

static void
relay_free(struct relay *r)
{
	size_t	 i;

	relay_close(r);
	if (r->timer != NULL)
		event_free(r->timer);
	if (r->wake != NULL)
		event_free(r->wake);
	if (r->pre != NULL)
		evbuffer_free(r->pre);
	for (i = 0; i < r->nrcpts; i++)
		free(r->rcpts[i]);
	free(r->rcpts);
	free(r);
	relay_active--;
}

/* Free r once neither the session nor the connection needs it. */
static int
relay_maybe_free(struct relay *r)
{
	if (r->owned || r->sock != NULL)
		return 0;
	relay_free(r);
	return 1;
}

static size_t
relay_pending(struct relay *r)
{
	size_t	 n = 0;

	if (r->have_result)
		return 0;
	if (r->pre != NULL)
		n += evbuffer_get_length(r->pre);
	if (r->bev != NULL)
		n += evbuffer_get_length(bufferevent_get_output(r->bev));
	if (r->sock != NULL && r->sock != r->bev)
		n += evbuffer_get_length(bufferevent_get_output(r->sock));
	return n;
}

/*
 * The outcome.  The first one counts.  If the session already called
 * deliver_end() it gets the answer now; otherwise it gets it from
 * deliver_end(), and meanwhile its writes are dropped.
 */
static void
relay_result(struct relay *r, int code, const char *status,
    const char *text)
{
	if (r->have_result)
		return;
	r->have_result = 1;
	r->result_code = code;
	strlcpy(r->result_status, status, sizeof(r->result_status));
	strlcpy(r->result_text, text, sizeof(r->result_text));
	if (r->pre != NULL) {
		evbuffer_free(r->pre);
		r->pre = NULL;
	}
	if (r->owned && r->ended) {
		r->owned = 0;
		deliver_done(&r->d, code, status, text);
	} else if (r->want_resume)
		event_active(r->wake, EV_TIMEOUT, 0);
}

static void
relay_fail(struct relay *r, int code, const char *status, const char *text,
    const char *why)
{
	if (!r->have_result)
		log_warnx("session %016llx: relay to %s failed in %s: %s",
		    (unsigned long long)r->d.session_id, relay_conf.name,
		    relay_state_names[r->state], why);
	relay_result(r, code, status, text);
}

static void
relay_unreachable(struct relay *r, const char *why)
{
	relay_fail(r, 451, "4.4.1", "Next hop unreachable", why);
}

/*
 * Polite end: QUIT where a command may be sent (not in the middle of
 * the message, not while a reply to DATA could still open it), else
 * just close.  May free r.
 */
static void
relay_quit(struct relay *r)
{
	switch (r->state) {
	case R_GREETING:
	case R_EHLO:
	case R_STARTTLS:
	case R_MAIL:
	case R_RCPT:
	case R_DATA:
	case R_DOT:
		/* Only called once the awaited reply arrived. */
		if (r->sock != NULL) {
			relay_send(r, "QUIT");
			r->state = R_QUIT;
			relay_arm(r, relay_quit_timeout);
			return;
		}
		break;
	default:
		break;
	}
	relay_close(r);
	relay_maybe_free(r);
}

/* A failure of the connection itself.  May free r. */
static void
relay_drop(struct relay *r, const char *why)
{
	relay_unreachable(r, why);
	relay_close(r);
	relay_maybe_free(r);
}

/*
 * Replies
 */

/* RFC 5321 4.1.1.1: the EHLO keywords that change what we send. */
static void
relay_ehlo_keyword(struct relay *r, const char *text)
{
	size_t	 n = strcspn(text, " ");

	if (n == 8 && strncasecmp(text, "STARTTLS", n) == 0)
		r->ext_starttls = 1;
	else if (n == 8 && strncasecmp(text, "8BITMIME", n) == 0)
		r->ext_8bitmime = 1;
	else if (n == 8 && strncasecmp(text, "SMTPUTF8", n) == 0)
		r->ext_smtputf8 = 1;
}

/*
 * Read one whole reply into r->reply (smtp_reply.c parses it).
 * 1: r->reply holds it; 0: more input needed; -1: not SMTP.
 */
static int
relay_read_reply(struct relay *r, struct evbuffer *in)
{
	const char	*text;
	char		*line;
	size_t		 len;
	int		 first, rv;

	do {
		line = evbuffer_readln(in, &len, EVBUFFER_EOL_CRLF);
		if (line == NULL)
			return smtp_reply_pending(evbuffer_get_length(in)) ==
			    SMTP_REPLY_ERROR ? -1 : 0;
		first = r->reply.lines == 0;
		rv = smtp_reply_feed(&r->reply, line, len, &text);
		/* The first line of the reply to EHLO is the greeting. */
		if (rv != SMTP_REPLY_ERROR && r->state == R_EHLO && !first)
			relay_ehlo_keyword(r, text);
		free(line);
	} while (rv == SMTP_REPLY_MORE);
	return rv == SMTP_REPLY_DONE ? 1 : -1;
}

/*
 * The next hop refused: 4xx becomes 451, 5xx 554, with its enhanced
 * status when it gave one of the same class, and its text cleaned.
 */
static void
relay_refused(struct relay *r, const struct smtp_reply *rp,
    const char *what)
{
	char	 shown[RELAY_SHOW_MAX + 1], text[256], why[512];
	int	 temp = rp->code / 100 != 5;

	deliver_sanitise(shown, sizeof(shown), rp->text);
	if (rp->code < 400) {
		/* a 2xx or 3xx where it makes no sense */
		snprintf(why, sizeof(why), "%s: unexpected %d %s", what,
		    rp->code, shown);
		relay_fail(r, 451, "4.5.0", "Next hop protocol error", why);
		return;
	}
	snprintf(text, sizeof(text), "Next hop %s: %s",
	    temp ? "temporarily refused" : "refused", shown);
	snprintf(why, sizeof(why), "%s: %d %s%s%s", what, rp->code,
	    rp->status, rp->status[0] != '\0' ? " " : "", shown);
	relay_fail(r, temp ? 451 : 554,
	    rp->status[0] != '\0' ? rp->status : (temp ? "4.0.0" : "5.0.0"),
	    text, why);
}

static int
relay_needs_utf8(const struct relay *r)
{
	const unsigned char	*p;
	size_t			 i;

	for (p = (const unsigned char *)r->sender; *p != '\0'; p++)
		if (*p >= 0x80)
			return 1;
	for (i = 0; i < r->nrcpts; i++)
		for (p = (const unsigned char *)r->rcpts[i]; *p != '\0'; p++)
			if (*p >= 0x80)
				return 1;
	return 0;
}

static void
relay_send_ehlo(struct relay *r)
{
	r->ext_8bitmime = r->ext_smtputf8 = r->ext_starttls = 0;
	relay_send(r, "%s %s", r->lmtp ? "LHLO" : "EHLO", relay_conf.helo);
	r->state = R_EHLO;
	relay_arm(r, relay_reply_timeout);
}

/* 0: MAIL sent; -1: the delivery failed (r not freed). */
static int
relay_send_mail(struct relay *r)
{
	int	 utf8 = 0;

	/*
	 * RFC 6531 3.4: a message that needs SMTPUTF8 must not go to a
	 * server without it; one that merely asked for it may.  8-bit
	 * content goes even without 8BITMIME, as most MTAs do: refusing
	 * it would bounce mail that the next hop would take.
	 */
	if (r->smtputf8 && r->ext_smtputf8)
		utf8 = 1;
	else if (r->smtputf8 && relay_needs_utf8(r)) {
		relay_fail(r, 554, "5.6.7",
		    "Next hop refused: SMTPUTF8 not supported",
		    "the next hop does not offer SMTPUTF8");
		return -1;
	}
	relay_send(r, "MAIL FROM:<%s>%s%s", r->sender,
	    r->body_8bit && r->ext_8bitmime ? " BODY=8BITMIME" : "",
	    utf8 ? " SMTPUTF8" : "");
	r->state = R_MAIL;
	relay_arm(r, relay_reply_timeout);
	return 0;
}

static void
relay_send_rcpt(struct relay *r)
{
	relay_send(r, "RCPT TO:<%s>", r->rcpts[r->rcpt_next]);
	r->state = R_RCPT;
	relay_arm(r, relay_reply_timeout);
}

static void
relay_send_dot(struct relay *r)
{
	struct evbuffer	*out = bufferevent_get_output(r->bev);

	if (!r->bol)
		evbuffer_add(out, "\r\n", 2);
	evbuffer_add(out, ".\r\n", 3);
	log_debug("session %016llx: relay: >>> . (%llu octets)",
	    (unsigned long long)r->d.session_id,
	    (unsigned long long)r->octets);
	r->state = R_DOT;
	r->rcpt_next = 0;
	/* RFC 5321 4.5.3.2.6: 10 minutes for the reply to the dot. */
	relay_arm(r, 2 * relay_reply_timeout);
}

/* STARTTLS said 220: put TLS between us and the socket. */
static int
relay_start_tls(struct relay *r)
{
	struct bufferevent	*bev;
	SSL			*ssl;

	/* Anything sent before our handshake is an injection attempt. */
	if (evbuffer_get_length(bufferevent_get_input(r->sock)) > 0) {
		relay_fail(r, 451, "4.5.0", "Next hop protocol error",
		    "data after the reply to STARTTLS");
		return -1;
	}
	if ((ssl = SSL_new(relay_conf.ssl_ctx)) == NULL) {
		relay_fail(r, 451, "4.3.0", "Local error in processing",
		    "SSL_new failed");
		return -1;
	}
	bev = bufferevent_openssl_filter_new(deliver_env.base, r->sock, ssl,
	    BUFFEREVENT_SSL_CONNECTING, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL) {
		/*
		 * libevent may or may not have freed the SSL and the
		 * socket's bufferevent on its way out: leak rather than
		 * free twice (this is an allocation failure).
		 */
		r->sock = r->bev = NULL;
		r->outbuf_cb = NULL;
		relay_fail(r, 451, "4.3.0", "Local error in processing",
		    "bufferevent_openssl_filter_new failed");
		return -1;
	}
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	r->bev = bev;
	r->tls_active = 1;
	bufferevent_setcb(bev, relay_readcb, NULL, relay_eventcb, r);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	r->state = R_HANDSHAKE;
	relay_arm(r, relay_reply_timeout);
	return 0;
}

/* LMTP (RFC 2033 4.2): one reply to the dot per accepted recipient. */
static int
relay_lmtp_reply(struct relay *r)
{
	const struct smtp_reply	*rp = &r->reply;
	const char			*rcpt = r->rcpts[r->rcpt_next];
	char				 shown[RELAY_SHOW_MAX + 1];

	if (rp->code / 100 == 2) {
		if (r->first_ok.code == 0)
			r->first_ok = *rp;
	} else {
		deliver_sanitise(shown, sizeof(shown), rp->text);
		log_warnx("session %016llx: relay: next hop refused "
		    "<%s>: %d %s %s", (unsigned long long)r->d.session_id,
		    rcpt, rp->code, rp->status, shown);
		if (rp->code / 100 == 4) {
			if (r->first_temp.code == 0)
				r->first_temp = *rp;
		} else if (r->first_perm.code == 0)
			r->first_perm = *rp;	/* 5xx, or nonsense */
	}
	if (++r->rcpt_next < r->nrcpts)
		return 0;
	/*
	 * One SMTP reply cannot say "delivered to some": a partial
	 * success is reported as a failure of the whole message.  A
	 * temporary failure wins, so that the client retries (those
	 * that got it may get it twice); only permanent failures give
	 * 554 (the client's bounce then names recipients who got it).
	 */
	if (r->first_temp.code != 0)
		relay_refused(r, &r->first_temp, "end of data (LMTP)");
	else if (r->first_perm.code != 0)
		relay_refused(r, &r->first_perm, "end of data (LMTP)");
	else
		r->reply = r->first_ok;
	return 1;
}

static void
relay_success(struct relay *r)
{
	char	 shown[RELAY_SHOW_MAX + 1], text[256];

	deliver_sanitise(shown, sizeof(shown), r->reply.text);
	log_debug("session %016llx: relayed to %s, %llu octets: %d %s",
	    (unsigned long long)r->d.session_id, relay_conf.name,
	    (unsigned long long)r->octets, r->reply.code, shown);
	if (shown[0] != '\0')
		snprintf(text, sizeof(text), "Ok: relayed (%s)", shown);
	else
		strlcpy(text, "Ok: relayed", sizeof(text));
	relay_result(r, 250, "2.0.0", text);
}

/* Done with the connection, at once.  Always -1: stop reading. */
static int
relay_stop(struct relay *r)
{
	relay_close(r);
	relay_maybe_free(r);
	return -1;
}

/* EHLO said 250: STARTTLS if we must, else MAIL. */
static int
relay_ehlo_done(struct relay *r)
{
	if (relay_conf.ssl_ctx != NULL && !r->tls_active) {
		if (!r->ext_starttls) {
			relay_fail(r, 451, "4.7.0",
			    "Next hop does not offer STARTTLS",
			    "STARTTLS required but not offered");
			relay_quit(r);
			return -1;
		}
		relay_send(r, "STARTTLS");
		r->state = R_STARTTLS;
		relay_arm(r, relay_reply_timeout);
		return 0;
	}
	if (relay_send_mail(r) == -1) {
		relay_quit(r);
		return -1;
	}
	return 0;
}

/* One RCPT answered: the next, or DATA after the last. */
static int
relay_rcpt_done(struct relay *r)
{
	char	 what[SMTP_PATH_MAX + 16];

	if (r->reply.code / 100 != 2) {
		snprintf(what, sizeof(what), "RCPT TO:<%s>",
		    r->rcpts[r->rcpt_next]);
		relay_refused(r, &r->reply, what);
		relay_quit(r);
		return -1;
	}
	if (++r->rcpt_next < r->nrcpts) {
		relay_send_rcpt(r);
		return 0;
	}
	relay_send(r, "DATA");
	r->state = R_DATA;
	relay_arm(r, relay_reply_timeout);
	return 0;
}

/* DATA said 354: what the session wrote meanwhile goes out. */
static int
relay_data_go(struct relay *r)
{
	r->state = R_BODY;
	if (evbuffer_add_buffer(bufferevent_get_output(r->bev),
	    r->pre) == -1) {
		relay_fail(r, 451, "4.3.0", "Local error in processing",
		    "out of memory");
		return relay_stop(r);
	}
	evbuffer_free(r->pre);
	r->pre = NULL;
	if (r->ended)
		relay_send_dot(r);
	return 0;
}

/* The reply (LMTP: one of the replies) to the final dot. */
static int
relay_dot_done(struct relay *r)
{
	if (r->lmtp) {
		if (relay_lmtp_reply(r) == 0) {
			relay_arm(r, 2 * relay_reply_timeout);
			return 0;
		}
		if (!r->have_result)
			relay_success(r);
	} else if (r->reply.code / 100 == 2)
		relay_success(r);
	else
		relay_refused(r, &r->reply, "end of data");
	relay_quit(r);
	return -1;
}

/*
 * One reply in r->reply, in r->state.  0: go on reading; -1: stop
 * (r may be gone).
 */
static int
relay_handle_reply(struct relay *r)
{
	const struct smtp_reply	*rp = &r->reply;
	int			 ok = rp->code / 100 == 2;

	evtimer_del(r->timer);
	switch (r->state) {
	case R_GREETING:
		if (!ok)
			break;
		relay_send_ehlo(r);
		return 0;
	case R_EHLO:
		if (!ok)
			break;
		return relay_ehlo_done(r);
	case R_STARTTLS:
		if (rp->code != 220)
			break;
		return relay_start_tls(r) == -1 ? relay_stop(r) : 0;
	case R_MAIL:
		if (!ok)
			break;
		r->rcpt_next = 0;
		relay_send_rcpt(r);
		return 0;
	case R_RCPT:
		return relay_rcpt_done(r);
	case R_DATA:
		if (rp->code != 354)
			break;
		return relay_data_go(r);
	case R_DOT:
		return relay_dot_done(r);
	case R_QUIT:
		return relay_stop(r);
	case R_BODY:
		/* Nothing was asked: the next hop gives up (421 ...). */
		relay_refused(r, rp, "unsolicited reply during the message");
		return relay_stop(r);
	default:
		relay_fail(r, 451, "4.5.0", "Next hop protocol error",
		    "unexpected reply");
		return relay_stop(r);
	}
	/* The awaited reply said no. */
	relay_refused(r, rp, "reply");
	relay_quit(r);
	return -1;
}

static void
relay_readcb(struct bufferevent *bev, void *arg)
{
	struct relay	*r = arg;
	int		 rv;

	(void)bev;
	while (r->bev != NULL) {
		rv = relay_read_reply(r, bufferevent_get_input(r->bev));
		if (rv == 0)
			return;
		if (rv == -1) {
			relay_fail(r, 451, "4.5.0", "Next hop protocol error",
			    "a reply that is not SMTP");
			relay_close(r);
			relay_maybe_free(r);
			return;
		}
		if (log_getverbose() > 0) {
			char	 shown[RELAY_SHOW_MAX + 1];

			deliver_sanitise(shown, sizeof(shown), r->reply.text);
			log_debug("session %016llx: relay: <<< %d %s %s",
			    (unsigned long long)r->d.session_id,
			    r->reply.code, r->reply.status, shown);
		}
		if (relay_handle_reply(r) == -1)
			return;
	}
}

static void
relay_eventcb(struct bufferevent *bev, short what, void *arg)
{
	struct relay	*r = arg;
	SSL		*ssl;
	char		 why[160];
	unsigned long	 sslerr;
	int		 error;

	if (what & BEV_EVENT_CONNECTED) {
		evtimer_del(r->timer);
		if (r->state == R_HANDSHAKE) {
			ssl = bufferevent_openssl_get_ssl(bev);
			log_debug("session %016llx: relay: %s with %s",
			    (unsigned long long)r->d.session_id,
			    SSL_get_version(ssl), SSL_get_cipher_name(ssl));
			relay_send_ehlo(r);
			return;
		}
		log_debug("session %016llx: relay: connected to %s",
		    (unsigned long long)r->d.session_id, relay_conf.name);
		r->state = R_GREETING;
		relay_arm(r, relay_reply_timeout);
		return;
	}
	if (r->state == R_QUIT) {
		relay_close(r);
		relay_maybe_free(r);
		return;
	}
	error = EVUTIL_SOCKET_ERROR();
	if (what & BEV_EVENT_TIMEOUT)
		strlcpy(why, "timeout writing to the next hop", sizeof(why));
	else if (what & BEV_EVENT_EOF)
		strlcpy(why, "the next hop closed the connection",
		    sizeof(why));
	else if (r->tls_active &&
	    (sslerr = bufferevent_get_openssl_error(bev)) != 0)
		snprintf(why, sizeof(why), "TLS: %s",
		    ERR_reason_error_string(sslerr) != NULL ?
		    ERR_reason_error_string(sslerr) : "unknown error");
	else
		snprintf(why, sizeof(why), "%s",
		    evutil_socket_error_to_string(error));
	relay_drop(r, why);
}

static void
relay_timercb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;

	(void)fd;
	(void)what;
	switch (r->state) {
	case R_QUIT:
		relay_close(r);
		relay_maybe_free(r);
		break;
	case R_CONNECT:
		relay_drop(r, "connect timeout");
		break;
	default:
		relay_drop(r, "timeout waiting for a reply");
		break;
	}
}

/* Deferred: the session may read again (never called from its calls). */
static void
relay_wakecb(evutil_socket_t fd, short what, void *arg)
{
	struct relay	*r = arg;
	void		(*resume)(void *);

	(void)fd;
	(void)what;
	if (!r->want_resume || !r->owned || r->ended)
		return;
	if (relay_pending(r) > RELAY_LOW_WATER)
		return;
	r->want_resume = 0;
	resume = r->d.resume;
	if (resume != NULL)
		resume(r->d.arg);	/* last: it may end the delivery */
}

/* The socket drained some: maybe the session may read again. */
static void
relay_outbufcb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct relay	*r = arg;

	(void)buf;
	if (info->n_deleted > 0 && r->want_resume &&
	    relay_pending(r) <= RELAY_LOW_WATER)
		event_active(r->wake, EV_TIMEOUT, 0);
}

/*
 * The delivery API
 */

static int
relay_valid_path(const char *path)
{
	for (; *path != '\0'; path++)
		if ((unsigned char)*path < 0x20 || *path == 0x7f ||
		    *path == '<' || *path == '>')
			return 0;
	return 1;
}

static struct relay *
relay_new(const struct envelope *env, deliver_done_cb done, void *arg)
{
	struct relay	*r;
	size_t		 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	relay_active++;
	deliver_head_init(&r->d, &deliver_relay_ops, env, done, arg);
	r->owned = 1;
	r->bol = 1;
	r->lmtp = relay_conf.lmtp;
	r->body_8bit = env->body_8bit;
	r->smtputf8 = env->smtputf8;
	strlcpy(r->sender, env->sender, sizeof(r->sender));
	r->timer = evtimer_new(deliver_env.base, relay_timercb, r);
	r->wake = event_new(deliver_env.base, -1, 0, relay_wakecb, r);
	r->pre = evbuffer_new();
	r->rcpts = calloc(env->nrcpts, sizeof(*r->rcpts));
	if (r->timer == NULL || r->wake == NULL || r->pre == NULL ||
	    r->rcpts == NULL)
		goto fail;
	for (i = 0; i < env->nrcpts; i++) {
		if ((r->rcpts[i] = strdup(env->rcpts[i])) == NULL)
			goto fail;
		r->nrcpts++;
	}
	return r;
 fail:
	r->owned = 0;
	relay_free(r);
	return NULL;
}

static struct delivery *
relay_begin(const struct envelope *env, deliver_done_cb done, void *arg)
{
	struct relay	*r;
	struct timeval	 tv;
	size_t		 i;
	unsigned long long sid = env->session_id;

	if (!relay_conf.ok) {
		log_warnx("session %016llx: relay URL \"%s\" unusable (relay "
		    "host must be a numeric address)", sid, relay_conf.name);
		return NULL;
	}
	if (env->nrcpts == 0 || !relay_valid_path(env->sender)) {
		log_warnx("session %016llx: relay: bad envelope", sid);
		return NULL;
	}
	for (i = 0; i < env->nrcpts; i++)
		if (!relay_valid_path(env->rcpts[i])) {
			log_warnx("session %016llx: relay: bad recipient", sid);
			return NULL;
		}
	if ((r = relay_new(env, done, arg)) == NULL) {
		log_warn("session %016llx: relay", sid);
		return NULL;
	}
	r->sock = bufferevent_socket_new(deliver_env.base, -1,
	    BEV_OPT_CLOSE_ON_FREE);
	if (r->sock == NULL) {
		log_warnx("session %016llx: relay: bufferevent_socket_new",
		    sid);
		r->owned = 0;
		relay_free(r);
		return NULL;
	}
	r->bev = r->sock;
	r->outbuf_cb = evbuffer_add_cb(bufferevent_get_output(r->sock),
	    relay_outbufcb, r);
	bufferevent_setcb(r->sock, relay_readcb, NULL, relay_eventcb, r);
	/* Reads are timed per reply by r->timer; writes by libevent. */
	tv.tv_sec = relay_reply_timeout;
	tv.tv_usec = 0;
	bufferevent_set_timeouts(r->sock, NULL, &tv);
	bufferevent_enable(r->sock, EV_READ | EV_WRITE);
	r->state = R_CONNECT;
	relay_arm(r, relay_connect_timeout);
	if (bufferevent_socket_connect(r->sock,
	    (struct sockaddr *)&relay_conf.ss, relay_conf.sslen) == -1) {
		/* reported at deliver_end(); the session reads on */
		relay_unreachable(r, evutil_socket_error_to_string(
		    EVUTIL_SOCKET_ERROR()));
		relay_close(r);
	}
	log_debug("session %016llx: relay to %s started", sid,
	    relay_conf.name);
	return &r->d;
}

/* Copy with dot-stuffing (RFC 5321 4.5.2). */
static int
relay_stuff(struct relay *r, struct evbuffer *dst, const char *p, size_t len)
{
	const char	*end = p + len, *nl;

	while (p < end) {
		if (r->bol && *p == '.' && evbuffer_add(dst, ".", 1) == -1)
			return -1;
		if ((nl = memchr(p, '\n', end - p)) == NULL) {
			r->bol = 0;
			return evbuffer_add(dst, p, end - p);
		}
		if (evbuffer_add(dst, p, nl + 1 - p) == -1)
			return -1;
		r->bol = 1;
		p = nl + 1;
	}
	return 0;
}

static int
relay_write(struct delivery *d, const void *buf, size_t len)
{
	struct relay	*r = (struct relay *)d;
	struct evbuffer	*dst;

	if (r->have_result || r->ended)
		return -1;
	dst = r->state == R_BODY ? bufferevent_get_output(r->bev) : r->pre;
	r->octets += len;
	if (relay_stuff(r, dst, buf, len) == -1) {
		relay_fail(r, 451, "4.3.0", "Local error in processing",
		    "out of memory");
		relay_close(r);
		return -1;
	}
	if (relay_pending(r) > DELIVER_HIGH_WATER)
		r->want_resume = 1;
	return 0;
}

static void
relay_end(struct delivery *d)
{
	struct relay	*r = (struct relay *)d;

	r->ended = 1;
	if (r->have_result) {
		r->owned = 0;
		deliver_done(d, r->result_code, r->result_status,
		    r->result_text);
		relay_maybe_free(r);
		return;
	}
	/* Before 354 the dot waits in relay_handle_reply(). */
	if (r->state == R_BODY)
		relay_send_dot(r);
}

/*
 * The session is gone or refused the message: cut the connection at
 * once, so that the next hop drops the transaction (unless it had the
 * final dot already; the client never saw our 250 and will retry).
 */
static void
relay_abort(struct delivery *d)
{
	struct relay	*r = (struct relay *)d;

	r->owned = 0;
	r->d.done = NULL;
	r->d.resume = NULL;
	if (!r->have_result)
		log_debug("session %016llx: relay aborted",
		    (unsigned long long)d->session_id);
	relay_close(r);
	relay_maybe_free(r);
}

static size_t
relay_get_pending(struct delivery *d)
{
	struct relay	*r = (struct relay *)d;
	size_t		 n = relay_pending(r);

	if (n > DELIVER_HIGH_WATER)
		r->want_resume = 1;
	return n;
}

const struct deliver_ops deliver_relay_ops = {
	.name = "relay",
	.init = relay_init,
	.cleanup = relay_cleanup,
	.begin = relay_begin,
	.write = relay_write,
	.end = relay_end,
	.abort = relay_abort,
	.pending = relay_get_pending,
};
