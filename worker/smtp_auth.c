/*
 * smtp_auth.c -- SMTP AUTH (RFC 4954) in the worker: the framing of
 * PLAIN (RFC 4616), LOGIN, XOAUTH2 and OAUTHBEARER (RFC 7628), and
 * the hand-over to authd.
 *
 * The worker never judges a password or a token: it decodes the
 * exchange into "authzid NUL authcid NUL password" or "user NUL
 * token", sends that to authd, wipes it, and acts on the verdict.  A
 * failure is answered after a delay that grows with the failures of
 * the client's address (a timer, never a sleep); after
 * max-auth-failures in one session the session ends with 421.  If
 * authd is unreachable the answer is 454, at once.
 *
 * A refused token is answered in two steps (RFC 7628 3.2.2): after
 * the delay, a 334 error challenge; after the client's dummy
 * response, the 535.  The failure is counted once, like any other.
 *
 * SCRAM (RFC 5802) is relayed, never judged: client-first goes to
 * authd with this session's channel binding data (IMSG_SCRAM_START),
 * server-first comes back as a 334, client-final goes on
 * (IMSG_SCRAM_FINAL), and on success server-final is a last 334 the
 * client answers with an empty line before the 235 (RFC 4954 4).
 * -PLUS is offered on TLS sessions only.
 */

#include <sys/socket.h>
#include <sys/tree.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/bufferevent_ssl.h>

#include "base64.h"
#include "bounds.h"
#include "log.h"
#include "proto.h"
#include "sasl.h"
#include "scram.h"
#include "tls.h"
#include "worker.h"

#define REPLY_AUTH_TEMPFAIL	"454 4.7.0 Temporary authentication failure"

_Static_assert(SASL_NAME_MAX + 1 + SASL_TOKEN_MAX <= AUTH_CRED_MAX,
    "user NUL token must fit an AUTH_REQUEST");

static int	pending_cmp(struct session *, struct session *);
static void	auth_failure_count(struct session *);
static void	auth_failed_reply(struct session *);

RB_HEAD(pending_tree, session);
RB_PROTOTYPE(pending_tree, session, auth_entry, pending_cmp)
RB_GENERATE(pending_tree, session, auth_entry, pending_cmp)
static struct pending_tree pending = RB_INITIALIZER(&pending);

static uint64_t		 next_req_id;

static int
pending_cmp(struct session *a, struct session *b)
{
	return a->auth_req_id < b->auth_req_id ? -1 :
	    a->auth_req_id > b->auth_req_id;
}

/* The mechanisms some configured checker verifies. */
static uint32_t
mechanisms_configured(void)
{
	struct checker_conf	*c;
	uint32_t		 m = 0;

	TAILQ_FOREACH(c, &worker->conf->checkers, entry)
		m |= conf_checker_mechanisms(c);
	return m;
}

static int
client_is_loopback(struct session *s)
{
	return strncmp(s->client_addr, "127.", 4) == 0 ||
	    strcmp(s->client_addr, "::1") == 0 ||
	    strncmp(s->client_addr, "::ffff:127.", 11) == 0;
}

/*
 * RFC 4954 4 and RFC 8314: passwords travel under TLS.  Loopback is
 * the exception, unless the listener requires TLS anyway.
 */
static int
auth_allowed_now(struct session *s)
{
	if (s->tls)
		return 1;
	if (s->listener->flags & LISTEN_TLS_REQUIRE)
		return 0;
	return client_is_loopback(s);
}

/* The SASL_* bits AUTH offers now; 0 when it is not offered. */
static uint32_t
mechanisms_offered(struct session *s)
{
	if (s->auth_user[0] != '\0' || !auth_allowed_now(s))
		return 0;
	/* Nothing to bind to without TLS. */
	if (!s->tls)
		return mechanisms_configured() & ~SASL_SCRAM_SHA256_PLUS;
	return mechanisms_configured();
}

/* For EHLO: "PLAIN LOGIN ...", or NULL when AUTH is not offered now. */
const char *
smtp_auth_mechanisms(struct session *s)
{
	static char		 list[128];
	const struct sasl_mech	*mech;
	uint32_t		 m = mechanisms_offered(s);

	if (m == 0)
		return NULL;
	list[0] = '\0';
	for (mech = sasl_mechs; mech->name != NULL; mech++)
		if (mech->bit & m) {
			strlcat(list, " ", sizeof(list));
			strlcat(list, mech->name, sizeof(list));
		}
	return list + 1;
}

static void
auth_end(struct session *s)
{
	struct auth_cancel	 c;

	if (s->auth_login_user != NULL) {
		freezero(s->auth_login_user, strlen(s->auth_login_user) + 1);
		s->auth_login_user = NULL;
	}
	/* A SCRAM exchange authd holds for the client's next step. */
	if (s->auth_req_id != 0) {
		RB_REMOVE(pending_tree, &pending, s);
		c.req_id = s->auth_req_id;
		imsgev_compose(&worker->authd, IMSG_AUTH_CANCEL, worker->id,
		    -1, &c, sizeof(c));
		s->auth_req_id = 0;
	}
	if (s->auth_scram_ok != NULL) {
		freezero(s->auth_scram_ok, sizeof(*s->auth_scram_ok));
		s->auth_scram_ok = NULL;
	}
	free(s->auth_scram_addrs);
	s->auth_scram_addrs = NULL;
	s->auth_scram_step = 0;
	s->auth_mech = 0;
	s->auth_challenged = 0;
	s->state = s->auth_prev;
}

/*
 * Hand authd the next message of an exchange: a header, then the
 * client's octets.  req_id: a new exchange, whose answer finds the
 * session by it; 0 for the next step of one already pending.
 */
static void
auth_ask(struct session *s, uint32_t type, const void *hdr, size_t hdrlen,
    const uint8_t *msg, size_t len, uint64_t req_id)
{
	struct iovec	 iov[2];

	iov[0].iov_base = (void *)(uintptr_t)hdr;
	iov[0].iov_len = hdrlen;
	iov[1].iov_base = (void *)(uintptr_t)msg;
	iov[1].iov_len = len;
	/* A closed channel (authd restarting) fails here too. */
	if (imsgev_composev(&worker->authd, type, worker->id, iov, 2) == -1) {
		auth_end(s);
		smtp_reply_error(s, REPLY_AUTH_TEMPFAIL);
		return;
	}
	if (req_id != 0) {
		s->auth_req_id = req_id;
		RB_INSERT(pending_tree, &pending, s);
	}
	s->state = STATE_AUTH_WAIT;
	evtimer_del(s->timer);
}

static void
auth_send(struct session *s, const uint8_t *cred, size_t len)
{
	struct auth_request	 req;

	memset(&req, 0, sizeof(req));
	req.req_id = ++next_req_id;
	req.session_id = s->id;
	req.mechanism = s->auth_mech;
	req.cred_len = (uint32_t)len;
	strlcpy(req.client, s->client_addr, sizeof(req.client));
	strlcpy(req.listener, s->listener->name, sizeof(req.listener));
	auth_ask(s, IMSG_AUTH_REQUEST, &req, sizeof(req), cred, len,
	    req.req_id);
}

/* PLAIN's message, checked here too so that junk never reaches authd. */
static void
auth_plain(struct session *s, const uint8_t *msg, size_t len)
{
	struct sasl_plain	 p;

	if (sasl_plain_parse(msg, len, &p) == -1) {
		auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Malformed PLAIN message");
		return;
	}
	auth_send(s, msg, len);
}

/* LOGIN: the two answers become a PLAIN message without authzid. */
static void
auth_login_password(struct session *s, const uint8_t *pw, size_t pwlen)
{
	uint8_t		 msg[2 * SASL_NAME_MAX + 3];
	size_t		 ulen = strlen(s->auth_login_user);

	if (ulen == 0 || ulen > SASL_NAME_MAX || pwlen == 0 ||
	    pwlen > SASL_NAME_MAX || memchr(pw, '\0', pwlen) != NULL) {
		auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Malformed LOGIN exchange");
		return;
	}
	msg[0] = '\0';
	memcpy(msg + 1, s->auth_login_user, ulen);
	msg[1 + ulen] = '\0';
	memcpy(msg + 2 + ulen, pw, pwlen);
	auth_send(s, msg, 2 + ulen + pwlen);
	explicit_bzero(msg, sizeof(msg));
}

static void
auth_login_user(struct session *s, const uint8_t *user, size_t len)
{
	if (len == 0 || len > SASL_NAME_MAX || memchr(user, '\0', len)) {
		auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Malformed LOGIN exchange");
		return;
	}
	if ((s->auth_login_user = strndup((const char *)user, len)) == NULL)
		fatal("strndup");
	/* base64 of "Password:" */
	session_reply(s, "334 UGFzc3dvcmQ6");
}

/*
 * XOAUTH2 and OAUTHBEARER: checked here so that junk never reaches
 * authd, then sent on as "user NUL token" (common/proto.h).
 */
static void
auth_token(struct session *s, const uint8_t *msg, size_t len)
{
	struct sasl_token	 t;
	uint8_t			 cred[AUTH_CRED_MAX];
	size_t			 ulen;
	int			 xoauth2 = s->auth_mech == SASL_XOAUTH2;

	if ((xoauth2 ? sasl_xoauth2_parse(msg, len, &t) :
	    sasl_oauthbearer_parse(msg, len, &t)) == -1) {
		auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Malformed %s message",
		    xoauth2 ? "XOAUTH2" : "OAUTHBEARER");
		return;
	}
	ulen = strlen(t.user);
	memcpy(cred, t.user, ulen);
	cred[ulen] = '\0';
	memcpy(cred + ulen + 1, t.token, t.token_len);
	auth_send(s, cred, ulen + 1 + t.token_len);
	explicit_bzero(cred, ulen + 1 + t.token_len);
	explicit_bzero(&t, sizeof(t));
}

/* IMSG_SCRAM_START: client-first and what authd must bind it to. */
static void
scram_send_first(struct session *s, const uint8_t *msg, size_t len)
{
	struct scram_start	 ss;
	SSL			*ssl = s->tls ?
				    bufferevent_openssl_get_ssl(s->bev) : NULL;

	memset(&ss, 0, sizeof(ss));
	ss.req_id = ++next_req_id;
	ss.session_id = s->id;
	ss.mechanism = s->auth_mech;
	ss.msg_len = (uint32_t)len;
	if (s->tls)
		ss.flags |= SCRAM_START_TLS;
	ss.exporter_len = (uint32_t)tls_cb_exporter(ssl, ss.exporter,
	    sizeof(ss.exporter));
	ss.endpoint_len = (uint32_t)tls_cb_endpoint(ssl, ss.endpoint,
	    sizeof(ss.endpoint));
	ss.unique_len = (uint32_t)tls_cb_unique(ssl, ss.unique,
	    sizeof(ss.unique));
	strlcpy(ss.client, s->client_addr, sizeof(ss.client));
	strlcpy(ss.listener, s->listener->name, sizeof(ss.listener));
	auth_ask(s, IMSG_SCRAM_START, &ss, sizeof(ss), msg, len, ss.req_id);
}

static void
scram_send_final(struct session *s, const uint8_t *msg, size_t len)
{
	struct scram_step	 st;

	memset(&st, 0, sizeof(st));
	st.req_id = s->auth_req_id;
	st.msg_len = (uint32_t)len;
	auth_ask(s, IMSG_SCRAM_FINAL, &st, sizeof(st), msg, len, 0);
}

static void	auth_ok(struct session *, const struct auth_verdict *, char *);
static int	verdict_addrs(struct ibuf *, const struct auth_verdict *,
		    char **);

/* One SCRAM message from the client, checked here so junk never
   reaches authd. */
static void
auth_scram(struct session *s, const uint8_t *msg, size_t len)
{
	struct scram_client_first	 f;
	struct scram_client_final	 fin;
	struct auth_verdict		 v;
	char				*addrs;

	switch (s->auth_scram_step) {
	case 0:
		if (scram_client_first_parse(msg, len, &f) == -1)
			break;
		scram_send_first(s, msg, len);
		return;
	case 1:
		if (scram_client_final_parse(msg, len, &fin) == -1)
			break;
		explicit_bzero(&fin, sizeof(fin));
		scram_send_final(s, msg, len);
		return;
	default:
		/* RFC 4954 4: server-final is acknowledged empty. */
		if (len != 0)
			break;
		v = *s->auth_scram_ok;
		addrs = s->auth_scram_addrs;
		s->auth_scram_addrs = NULL;
		auth_ok(s, &v, addrs);
		return;
	}
	auth_end(s);
	smtp_reply_error(s, "501 5.5.2 Malformed SCRAM message");
}

/* authd's server-first: a 334, and the client's final comes next. */
void
smtp_auth_scram_challenge(struct imsg *imsg)
{
	struct scram_step	 st;
	struct session		 key, *s;
	struct ibuf		 ibuf;
	char			 b64[SCRAM_MSG_MAX];

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &st, sizeof(st)) == -1 ||
	    st.msg_len != ibuf_size(&ibuf) ||
	    base64_encode(ibuf_data(&ibuf), st.msg_len, b64,
	    sizeof(b64)) == -1)
		return;
	key.auth_req_id = st.req_id;
	if ((s = RB_FIND(pending_tree, &pending, &key)) == NULL ||
	    s->state != STATE_AUTH_WAIT || s->auth_scram_step != 0)
		return;
	s->auth_scram_step = 1;
	s->state = STATE_AUTH;
	session_reply(s, "334 %s", b64);
	session_resume(s);
}

/* authd said ok: server-final as a 334, the 235 once it is answered. */
void
smtp_auth_scram_ok(struct imsg *imsg)
{
	struct auth_verdict	 v;
	struct session		 key, *s;
	struct ibuf		 ibuf;
	char			 b64[128], *addrs;

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &v, sizeof(v)) == -1 ||
	    verdict_addrs(&ibuf, &v, &addrs) == -1)
		return;
	if (base64_encode(ibuf_data(&ibuf), ibuf_size(&ibuf), b64,
	    sizeof(b64)) == -1) {
		free(addrs);
		return;
	}
	v.user[sizeof(v.user) - 1] = '\0';
	v.checker[sizeof(v.checker) - 1] = '\0';
	key.auth_req_id = v.req_id;
	if ((s = RB_FIND(pending_tree, &pending, &key)) == NULL ||
	    s->auth_scram_step != 1) {
		free(addrs);
		return;
	}
	free(s->auth_scram_addrs);
	s->auth_scram_addrs = addrs;
	RB_REMOVE(pending_tree, &pending, s);
	s->auth_req_id = 0;
	if ((s->auth_scram_ok = malloc(sizeof(*s->auth_scram_ok))) == NULL)
		fatal("malloc");
	*s->auth_scram_ok = v;
	s->auth_scram_step = 2;
	s->state = STATE_AUTH;
	session_reply(s, "334 %s", b64);
	session_resume(s);
}

/*
 * The client's answer to the error challenge: RFC 7628 3.2.3 wants
 * %x01 (XOAUTH2 clients send an empty line), but whatever it is, the
 * exchange has failed.  "*" is the one answer that differs, and even
 * it counts as the failure it is: cancelling must not be a way round
 * max-auth-failures.
 */
static void
auth_challenge_answered(struct session *s, const char *b64)
{
	int	 cancelled = strcmp(b64, "*") == 0;

	auth_end(s);
	if (!cancelled) {
		auth_failed_reply(s);
		return;
	}
	smtp_reply_error(s, "501 5.0.0 Authentication cancelled");
	auth_failure_count(s);
}

/* One client answer (base64, "=" for empty, "*" to cancel). */
static void
auth_step(struct session *s, const char *b64)
{
	uint8_t	 buf[SMTP_AUTH_LINE_MAX];
	size_t	 len = 0;

	if (s->auth_challenged) {
		auth_challenge_answered(s, b64);
		return;
	}
	if (strcmp(b64, "*") == 0) {
		auth_end(s);
		smtp_reply_error(s, "501 5.0.0 Authentication cancelled");
		return;
	}
	if (strcmp(b64, "=") != 0 &&
	    sasl_b64_decode(b64, strlen(b64), buf, sizeof(buf), &len) == -1) {
		auth_end(s);
		smtp_reply_error(s, "501 5.5.2 Invalid base64 data");
		return;
	}
	if (s->auth_mech & SASL_SCRAM_MECHS)
		auth_scram(s, buf, len);
	else if (s->auth_mech == SASL_PLAIN)
		auth_plain(s, buf, len);
	else if (s->auth_mech & SASL_TOKEN_MECHS)
		auth_token(s, buf, len);
	else if (s->auth_login_user == NULL)
		auth_login_user(s, buf, len);
	else
		auth_login_password(s, buf, len);
	explicit_bzero(buf, len);
}

static uint32_t
mechanism_by_name(const char *name)
{
	const struct sasl_mech	*m = mech_by_name(name);

	return m != NULL ? m->bit : 0;
}

/*
 * After the state: AUTH is refused when no checker is configured, and
 * before TLS where passwords must not travel in the clear.
 */
const char *
smtp_auth_policy(struct session *s)
{
	if (mechanisms_configured() == 0)
		return "502 5.5.1 AUTH not available";
	if (mechanisms_offered(s) == 0)
		return "530 5.7.0 Must issue a STARTTLS command first";
	return NULL;
}

/* "AUTH mechanism [initial-response]": the table checked the rest. */
void
smtp_auth_command(struct session *s, char *arg)
{
	char		*mech = arg, *ir;

	if ((ir = strchr(arg, ' ')) != NULL)
		*ir++ = '\0';
	if ((s->auth_mech = mechanism_by_name(mech) &
	    mechanisms_offered(s)) == 0) {
		smtp_reply_error(s, "504 5.5.4 Unrecognized authentication "
		    "type");
		return;
	}
	s->auth_prev = s->state;
	s->state = STATE_AUTH;
	if (ir != NULL && *ir != '\0')
		auth_step(s, ir);
	else if (s->auth_mech != SASL_LOGIN)
		session_reply(s, "334 ");	/* RFC 4954 4: empty */
	else
		session_reply(s, "334 VXNlcm5hbWU6");	/* "Username:" */
}

void
smtp_auth_response(struct session *s, char *line)
{
	auth_step(s, line);
}

/* One failed exchange, whatever its last reply; too many end the session. */
static void
auth_failure_count(struct session *s)
{
	if (!s->closing && ++s->auth_failures >=
	    (unsigned int)worker->conf->max_auth_failures) {
		log_info("session %016llx: %u failed authentications, closing",
		    (unsigned long long)s->id, s->auth_failures);
		session_close_after(s, "421 4.7.0 %s Too many failed "
		    "authentications, closing transmission channel",
		    worker->conf->hostname);
	}
}

static void
auth_failed_reply(struct session *s)
{
	smtp_reply_error(s, "535 5.7.8 Authentication credentials invalid");
	auth_failure_count(s);
}

/* The scope all oauth checkers of mech want, for the challenge; or NULL. */
static const char *
token_scope(uint32_t mech)
{
	struct checker_conf	*c;
	const char		*scope = NULL;

	TAILQ_FOREACH(c, &worker->conf->checkers, entry) {
		if (c->type != CHECKER_OAUTH || !(c->mechanisms & mech))
			continue;
		if (memchr(c->oauth.scope, '\0', sizeof(c->oauth.scope)) ==
		    NULL)
			return NULL;
		if (scope != NULL && strcmp(scope, c->oauth.scope) != 0)
			return NULL;
		scope = c->oauth.scope;
	}
	return scope;
}

/*
 * RFC 7628 3.2.2: a refused token gets an error challenge, not yet the
 * 535, and the exchange waits in STATE_AUTH for the client's answer
 * (timeouts and disconnects as for any other AUTH continuation).
 */
static void
auth_token_challenge(struct session *s)
{
	char	 b64[SMTP_LINE_MAX - 6];	/* "334 " and CR LF */
	int	 xoauth2 = s->auth_mech == SASL_XOAUTH2;

	/* A scope too long, or not a scope, is left out. */
	if (sasl_token_error(xoauth2, token_scope(s->auth_mech), b64,
	    sizeof(b64)) == -1 &&
	    sasl_token_error(xoauth2, NULL, b64, sizeof(b64)) == -1)
		fatalx("%s: challenge does not fit", __func__);
	s->auth_challenged = 1;
	s->state = STATE_AUTH;
	session_reply(s, "334 %s", b64);
}

/* The verdict was fail and its delay is over: tell the client. */
static void
auth_failed(struct session *s)
{
	if (s->auth_mech & SASL_TOKEN_MECHS)
		auth_token_challenge(s);
	else {
		auth_end(s);
		auth_failed_reply(s);
	}
	session_resume(s);
}

/* The verdict was tempfail (authd said when): 454. */
static void
auth_tempfailed(struct session *s)
{
	auth_end(s);
	smtp_reply_error(s, REPLY_AUTH_TEMPFAIL);
	session_resume(s);
}

static void
auth_delay_done(evutil_socket_t fd, short ev, void *arg)
{
	struct session	*s = arg;

	(void)fd; (void)ev;
	if (s->auth_delay != NULL)
		event_free(s->auth_delay);
	s->auth_delay = NULL;
	if (s->auth_tempfail)
		auth_tempfailed(s);
	else
		auth_failed(s);
}

/*
 * authd decides the delay (its penalties of the address and the
 * account, authd/penalty.c); it is waited for here, on a timer.
 */
static void
auth_fail(struct session *s, uint32_t ms, int tempfail)
{
	struct timeval	 tv;

	s->auth_tempfail = tempfail;
	if (ms > (uint32_t)worker->conf->failure_delay_max)
		ms = (uint32_t)worker->conf->failure_delay_max;
	if (ms == 0) {
		auth_delay_done(-1, 0, s);
		return;
	}
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if ((s->auth_delay = evtimer_new(worker->base, auth_delay_done, s)) ==
	    NULL)
		fatalx("evtimer_new");
	evtimer_add(s->auth_delay, &tv);
}

static void
auth_ok(struct session *s, const struct auth_verdict *v, char *addrs)
{
	strlcpy(s->auth_user, v->user, sizeof(s->auth_user));
	free(s->auth_addrs);
	s->auth_addrs = addrs;
	s->auth_addrs_len = addrs != NULL ? v->addrs_len : 0;
	log_info("session %016llx: authenticated as %s by %s",
	    (unsigned long long)s->id, s->auth_user, v->checker);
	auth_end(s);
	session_reply(s, "235 2.7.0 Authentication successful");
	session_resume(s);
}

/*
 * The addresses after a verdict: addrs_len octets of non-empty
 * NUL-ended addresses, no more than a record holds.  NULL in *out when
 * there are none; -1 when authd sent something else.
 */
static int
verdict_addrs(struct ibuf *ib, const struct auth_verdict *v, char **out)
{
	size_t	 len = v->addrs_len, i, n = 0, start = 0;
	char	*a;

	*out = NULL;
	if (len > ibuf_size(ib) || len > AUTH_ADDRS_BYTES)
		return -1;
	if (len == 0)
		return 0;
	if ((a = malloc(len)) == NULL)
		fatal("malloc");
	if (ibuf_get(ib, a, len) == -1)
		fatal("verdict addresses");
	for (i = 0; i < len; i++) {
		if (a[i] != '\0')
			continue;
		if (i == start || i - start > STORE_ADDR_MAX ||
		    ++n > AUTH_ADDRS_MAX) {
			free(a);
			return -1;
		}
		start = i + 1;
	}
	if (start != len) {
		free(a);
		return -1;
	}
	*out = a;
	return 0;
}

int
smtp_auth_verdict(struct imsgev *iev, struct imsg *imsg)
{
	struct auth_verdict	 v;
	struct session		 key, *s;
	struct ibuf		 ib;
	char			*addrs;

	/* The minimum length was checked by worker.c's from_authd table. */
	if (imsg_get_ibuf(imsg, &ib) == -1 || ibuf_get(&ib, &v, sizeof(v)) ==
	    -1)
		fatal("verdict");
	v.user[sizeof(v.user) - 1] = '\0';
	v.checker[sizeof(v.checker) - 1] = '\0';
	if (verdict_addrs(&ib, &v, &addrs) == -1 || ibuf_size(&ib) != 0) {
		free(addrs);
		return imsgev_reject(iev, "verdict with malformed addresses");
	}
	key.auth_req_id = v.req_id;
	if ((s = RB_FIND(pending_tree, &pending, &key)) == NULL) {
		free(addrs);
		return 0;	/* the session went away meanwhile */
	}
	RB_REMOVE(pending_tree, &pending, s);
	s->auth_req_id = 0;
	if (v.result != AUTH_OK) {
		free(addrs);
		addrs = NULL;
	}
	switch (v.result) {
	case AUTH_OK:
		auth_ok(s, &v, addrs);
		break;
	case AUTH_FAIL:
		auth_fail(s, v.delay_ms, 0);
		break;
	default:
		auth_fail(s, v.delay_ms, 1);
	}
	return 0;
}

/* authd died: nobody will answer what is pending. */
void
smtp_auth_authd_lost(void)
{
	struct session	*s, *next;

	RB_FOREACH_SAFE(s, pending_tree, &pending, next) {
		RB_REMOVE(pending_tree, &pending, s);
		s->auth_req_id = 0;
		auth_end(s);
		smtp_reply_error(s, REPLY_AUTH_TEMPFAIL);
		session_resume(s);
	}
}

void
smtp_auth_session_gone(struct session *s)
{
	struct auth_cancel	 c;

	if (s->auth_req_id != 0) {
		RB_REMOVE(pending_tree, &pending, s);
		c.req_id = s->auth_req_id;
		imsgev_compose(&worker->authd, IMSG_AUTH_CANCEL, worker->id,
		    -1, &c, sizeof(c));
		s->auth_req_id = 0;
	}
	if (s->auth_delay != NULL) {
		event_free(s->auth_delay);
		s->auth_delay = NULL;
	}
	if (s->auth_login_user != NULL) {
		freezero(s->auth_login_user, strlen(s->auth_login_user) + 1);
		s->auth_login_user = NULL;
	}
	if (s->auth_scram_ok != NULL) {
		freezero(s->auth_scram_ok, sizeof(*s->auth_scram_ok));
		s->auth_scram_ok = NULL;
	}
	free(s->auth_scram_addrs);
	s->auth_scram_addrs = NULL;
}
