/*
 * smtp_message.c -- the DATA phase of a session: start the delivery,
 * stamp the Received header, stream the message through the data
 * filter into the delivery, and answer once the delivery has.
 *
 * The 250 after the final dot comes from the delivery method and only
 * once the message is safe (spool: fsync'd; relay: the next hop said
 * 250).  A message refused for its content (size, bare CR or LF, long
 * lines, NUL) is read to its end and then refused as a whole.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>

#include "log.h"
#include "metrics.h"
#include "worker.h"

#define DATA_CHUNK	16384

static uint8_t	 data_out[DATA_OUT_MAX(DATA_CHUNK)];

/*
 * RFC 5321 4.4 and RFC 3848: the protocol word says ESMTP, with S for
 * TLS and A for AUTH.
 */
static const char *
received_with(struct session *s)
{
	if (!s->esmtp)
		return "SMTP";
	if (s->tls && s->auth_user[0] != '\0')
		return "ESMTPSA";
	if (s->tls)
		return "ESMTPS";
	if (s->auth_user[0] != '\0')
		return "ESMTPA";
	return "ESMTP";
}

/* Only printable ASCII from the client reaches the header. */
static void
header_safe(char *dst, const char *src, size_t len)
{
	size_t	 i;

	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (src[i] > 0x20 && src[i] < 0x7f && src[i] != '(' &&
		    src[i] != ')') ? src[i] : '_';
	dst[i] = '\0';
}

static int
received_header(struct session *s)
{
	char		 buf[2048], helo[SMTP_PATH_MAX], date[64], tls[128];
	struct tm	 tm;
	time_t		 now = time(NULL);
	int		 n;

	header_safe(helo, s->helo, sizeof(helo));
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	tls[0] = '\0';
	if (s->tls)
		snprintf(tls, sizeof(tls), "\r\n\t(using %s)", s->tls_desc);
	n = snprintf(buf, sizeof(buf),
	    "Received: from %s ([%s])\r\n"
	    "\tby %s (portcullis) with %s id %016llx.%u%s%s%s%s;\r\n"
	    "\t%s\r\n",
	    helo, s->client_addr, worker->conf->hostname, received_with(s),
	    (unsigned long long)s->id, s->messages + 1, tls,
	    s->env.nrcpts == 1 ? "\r\n\tfor <" : "",
	    s->env.nrcpts == 1 ? s->env.rcpts[0] : "",
	    s->env.nrcpts == 1 ? ">" : "", date);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	return deliver_write(s->delivery, buf, (size_t)n);
}

/*
 * RFC 1870 section 6.1 and RFC 3463 4.3.1: while the spool is below
 * its floor (or short of the size the client announced), MAIL is
 * answered 452 before the client sends a byte of the message.  Not
 * the client's error: it does not count towards max-errors.  0: go on.
 */
int
smtp_mail_room(struct session *s, uint64_t size)
{
	if (deliver_spool_room(size) == 0)
		return 0;
	session_reply(s, "452 4.3.1 Insufficient system storage");
	return -1;
}

static void
data_resume(void *arg)
{
	struct session	*s = arg;

	if (s->state == STATE_DATA)
		session_resume(s);
}

void
smtp_data_start(struct session *s)
{
	struct portcullis_conf	*conf = worker->conf;

	s->env.session_id = s->id;
	strlcpy(s->env.client_addr, s->client_addr,
	    sizeof(s->env.client_addr));
	strlcpy(s->env.helo, s->helo, sizeof(s->env.helo));
	strlcpy(s->env.auth_user, s->auth_user, sizeof(s->env.auth_user));
	errno = 0;
	s->delivery = deliver_begin(&s->env, smtp_data_done, s);
	if (s->delivery == NULL) {
		metrics_add(M_MESSAGES, 1, "refused", deliver_no_space(errno) ?
		    "no_space" : "local_error");
		if (deliver_no_space(errno))
			session_reply(s, "452 4.3.1 Insufficient system "
			    "storage");
		else
			smtp_reply_error(s, "451 4.3.0 Local error in "
			    "processing");
		return;
	}
	deliver_set_resume(s->delivery, data_resume);
	(void)received_header(s);
	data_filter_init(&s->df, conf->bare_newlines ==
	    BARE_NEWLINES_NORMALIZE, conf->max_message_size);
	s->state = STATE_DATA;
	session_reply(s, "354 End data with <CR><LF>.<CR><LF>");
	session_timer_reset(s);
}

/* The message is refused for what it is; say why. */
static void
data_refuse(struct session *s)
{
	unsigned int	 f = s->df.flags;

	log_info("session %016llx: message refused:%s%s%s%s",
	    (unsigned long long)s->id,
	    f & DATA_TOO_BIG ? " too big" : "",
	    f & DATA_BARE_NEWLINE ? " bare CR or LF" : "",
	    f & DATA_NUL ? " NUL octet" : "",
	    f & DATA_LINE_TOO_LONG ? " line too long" : "");
	metrics_add(M_MESSAGES, 1, "refused", f & DATA_TOO_BIG ? "too_big" :
	    f & DATA_BARE_NEWLINE ? "bare_newline" : f & DATA_NUL ? "nul" :
	    "line_too_long");
	if (f & DATA_TOO_BIG)
		smtp_reply_error(s, "552 5.3.4 Message size exceeds fixed "
		    "maximum message size");
	else if (f & DATA_BARE_NEWLINE)
		smtp_reply_error(s, "550 5.5.2 Bare CR or LF in message; "
		    "lines must end with CR LF");
	else if (f & DATA_NUL)
		smtp_reply_error(s, "554 5.6.0 NUL octet in message");
	else
		smtp_reply_error(s, "554 5.6.0 Message has lines over 1000 "
		    "octets");
}

static void	data_limited(struct session *, int);

static void
data_end(struct session *s)
{
	struct delivery	*d = s->delivery;

	if (s->df.flags != 0) {
		if (d != NULL)
			deliver_abort(d);
		s->delivery = NULL;
		data_refuse(s);
		smtp_transaction_reset(s);
		s->state = STATE_HELO;
		return;
	}
	s->state = STATE_DATA_DONE;
	evtimer_del(s->timer);
	/* The sending limit first: no 250 for what is then refused. */
	if (smtp_limit_ask(s, LIMIT_MESSAGES, 1, data_limited) == -1) {
		s->limit_which[0] = '\0';
		data_limited(s, 0);
	}
}

/*
 * Within the message limit: deliver (the answer may come at once,
 * spool, or later, relay).  Over it: the message goes, spool file and
 * all, and the client hears 451.
 */
static void
data_limited(struct session *s, int ok)
{
	if (ok) {
		clock_gettime(CLOCK_MONOTONIC, &s->data_end);
		deliver_end(s->delivery);
		return;
	}
	if (s->delivery != NULL)
		deliver_abort(s->delivery);
	s->delivery = NULL;
	smtp_limit_refused(s, LIMIT_MESSAGES, s->limit_which);
	smtp_transaction_reset(s);
	s->state = STATE_HELO;
	session_resume(s);
}

/* The delivery's answer: its outcome and time, and the message's. */
static void
data_count(struct session *s, int code)
{
	static const char	*outcome[] = { "ok", "tempfail", "permfail" };
	const char		*o;

	o = code / 100 == 2 ? outcome[0] : code / 100 == 4 ? outcome[1] :
	    outcome[2];
	metrics_add(M_DELIVERIES, 1, deliver_method(), o);
	metrics_observe(M_DELIVERY_SECONDS, metrics_since_usec(&s->data_end),
	    deliver_method());
	metrics_add(M_MESSAGES, 1, code / 100 == 2 ? "accepted" : "refused",
	    code / 100 == 2 ? "ok" : code / 100 == 4 ? "delivery_tempfail" :
	    "delivery_failed");
}

void
smtp_data_done(void *arg, int code, const char *status, const char *text)
{
	struct session	*s = arg;

	s->delivery = NULL;
	data_count(s, code);
	log_info("session %016llx: message from <%s> to %zu recipient(s), "
	    "%llu octets: %d %s %s", (unsigned long long)s->id,
	    s->env.sender, s->env.nrcpts, (unsigned long long)s->df.size,
	    code, status, text);
	if (code / 100 == 2) {
		s->messages++;
		session_reply(s, "%d %s %s", code, status, text);
	} else
		smtp_reply_error(s, "%d %s %s", code, status, text);
	smtp_transaction_reset(s);
	if (s->state == STATE_DATA_DONE)
		s->state = STATE_HELO;
	session_resume(s);
}

/* Feed what the client sent into the filter and on to the delivery. */
void
smtp_data_input(struct session *s)
{
	struct evbuffer	*in = bufferevent_get_input(s->bev);
	size_t		 len, used, outlen;
	uint8_t		*p;

	while (s->state == STATE_DATA &&
	    (len = evbuffer_get_length(in)) > 0) {
		if (s->delivery != NULL &&
		    deliver_pending(s->delivery) > DELIVER_HIGH_WATER) {
			/* The next hop is slower than the client. */
			bufferevent_disable(s->bev, EV_READ);
			return;
		}
		if (len > DATA_CHUNK)
			len = DATA_CHUNK;
		if ((p = evbuffer_pullup(in, (ssize_t)len)) == NULL)
			fatalx("evbuffer_pullup");
		used = data_filter_feed(&s->df, p, len, data_out, &outlen);
		if (outlen > 0 && s->delivery != NULL && s->df.flags == 0)
			(void)deliver_write(s->delivery, data_out, outlen);
		evbuffer_drain(in, used);
		if (s->df.flags != 0 && s->delivery != NULL) {
			/* Refused anyway: stop storing it now. */
			deliver_abort(s->delivery);
			s->delivery = NULL;
		}
		if (s->df.done)
			data_end(s);
		else
			session_timer_reset(s);
	}
}
