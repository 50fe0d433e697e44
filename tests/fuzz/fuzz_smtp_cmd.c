/*
 * fuzz_smtp_cmd.c -- the SMTP session engine of the worker: command
 * parsing (worker/smtp_cmd.c), AUTH (smtp_auth.c, sasl.c), DATA
 * (smtp_message.c, smtp_data.c) and the line reader around them
 * (smtp_session.c), driven without a socket.
 *
 * Input: one octet that picks the session's circumstances, then what
 * the client sends, all of it at once (pipelining).  The profile
 * octet: bit 0 bare-newlines normalize; bits 1-2 sender-check exact,
 * domain, off; bit 3 the listener offers STARTTLS; bit 4 it requires
 * TLS; bit 5 it requires AUTH; bit 6 TLS is up already; bit 7 the
 * client is not on loopback.
 *
 * The session lives in one end of a libevent bufferevent pair, the
 * client is the other end: what the client writes moves into the
 * session's input as a read would put it there, the replies move to
 * the client, and session_resume(), the entry point the delivery and
 * authd use, runs session_process() as the read callback would.
 * Deliveries go to the console method.  authd is the other end of a
 * real socketpair: every AUTH_REQUEST the worker sends is read back
 * and must pass authd's own checks (authd/request.c), and the verdict
 * goes back the way authd's would: ok when the secret starts with
 * "ok", tempfail with "tf", fail otherwise, and fail for a user name
 * authd would refuse.
 *
 * Properties: every reply line is "DDD[ -]text" CR LF with no control
 * characters, and authd never refuses what a worker composed.  With
 * FUZZ_VERBOSE set in the environment the replies are shown on stderr.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "authd.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"
#include "store.h"
#include "worker.h"

struct worker		*worker;

static struct worker	 fuzz_worker;
static struct listener	 listener;
static struct imsgbuf	 authd_side;	/* what authd reads and writes */
static int		 session_gone;
static int		 verbose;	/* FUZZ_VERBOSE set: replies shown */

/* worker.c's, which the fuzzer does not link: the session was freed. */
void
worker_session_gone(void)
{
	session_gone = 1;
}

static void
timer_noop(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
}

static void
authd_handler(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
}

static void
checker_add(struct portcullis_conf *conf, const char *name,
    enum checker_type type, uint32_t mechanisms, const char *scope)
{
	struct checker_conf	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		abort();
	strlcpy(c->name, name, sizeof(c->name));
	c->type = type;
	c->mechanisms = mechanisms;
	strlcpy(c->oauth.scope, scope, sizeof(c->oauth.scope));
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct portcullis_conf	*conf;
	struct local_domain	*d;
	struct netaddr		*n;
	struct sockaddr_in	*sin;
	int			 sp[2];

	(void)argc; (void)argv;
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	/* Everything is formatted, nothing below LOG_CRIT is written. */
	log_init(0, LOG_MAIL);
	openlog("fuzz_smtp_cmd", LOG_PERROR, LOG_MAIL);
	setlogmask(LOG_UPTO(LOG_CRIT));

	worker = &fuzz_worker;
	TAILQ_INIT(&worker->sessions);
	if ((worker->base = event_base_new()) == NULL ||
	    (conf = config_new_empty()) == NULL)
		abort();
	worker->conf = conf;
	strlcpy(conf->hostname, "mx.example.org", sizeof(conf->hostname));
	if ((d = calloc(1, sizeof(*d))) == NULL)
		abort();
	strlcpy(d->name, "example.org", sizeof(d->name));
	TAILQ_INSERT_TAIL(&conf->local_domains, d, entry);
	/*
	 * Loopback is trusted: no failure delay, no penalty kept.  The
	 * other client's penalties live in smtp_auth.c from one input to
	 * the next, and each one made costs a leak check.
	 */
	if ((n = calloc(1, sizeof(*n))) == NULL)
		abort();
	sin = (struct sockaddr_in *)&n->ss;
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x7f000000);
	n->prefixlen = 8;
	TAILQ_INSERT_TAIL(&conf->trusted_networks, n, entry);
	checker_add(conf, "local", CHECKER_STATIC, 0, "");
	checker_add(conf, "idp", CHECKER_OAUTH, SASL_TOKEN_MECHS, "smtp");
	conf->deliver = DELIVER_CONSOLE;
	conf->failure_delay = 0;
	conf->max_message_size = 64 * 1024;
	conf->max_recipients = 8;
	conf->max_errors = 20;
	if (deliver_init(worker->base, conf, -1) == -1)
		abort();

	strlcpy(listener.name, "submission", sizeof(listener.name));
	listener.fd = -1;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1 ||
	    imsgev_init(&worker->authd, worker->base, sp[0], 0, "authd",
	    authd_handler, NULL, NULL) == -1 ||
	    fcntl(sp[1], F_SETFL, O_NONBLOCK) == -1 ||
	    imsgbuf_init(&authd_side, sp[1]) == -1)
		abort();
	return 0;
}

/* RFC 5321 4.2: Reply-code [ SP / "-" textstring ] CRLF. */
static void
check_replies(struct bufferevent *client)
{
	struct evbuffer	*out = bufferevent_get_input(client);
	size_t		 len = evbuffer_get_length(out), i, start;
	const uint8_t	*p;

	if (len == 0)
		return;
	if ((p = evbuffer_pullup(out, -1)) == NULL)
		abort();
	if (verbose)
		fwrite(p, 1, len, stderr);
	for (start = 0; start < len; start = i + 2) {
		for (i = start; i < len && p[i] != '\r' && p[i] != '\n'; i++)
			FUZZ_ASSERT(p[i] >= 0x20 && p[i] != 0x7f);
		FUZZ_ASSERT(i + 1 < len && p[i] == '\r' && p[i + 1] == '\n');
		FUZZ_ASSERT(i - start >= 3);
		FUZZ_ASSERT(p[start] >= '2' && p[start] <= '5');
		FUZZ_ASSERT(p[start + 1] >= '0' && p[start + 1] <= '9');
		FUZZ_ASSERT(p[start + 2] >= '0' && p[start + 2] <= '9');
		FUZZ_ASSERT(i - start == 3 || p[start + 3] == ' ' ||
		    p[start + 3] == '-');
	}
	evbuffer_drain(out, len);
}

static const char fuzz_addrs[] = "alias@example.org\0other@elsewhere.example";

static void
verdict_for(const struct auth_request *req, const struct auth_cred *cred,
    struct auth_verdict *v)
{
	memset(v, 0, sizeof(*v));
	v->req_id = req->req_id;
	if (cred->secret_len >= 2 && memcmp(cred->secret, "ok", 2) == 0)
		v->result = AUTH_OK;
	else if (cred->secret_len >= 2 && memcmp(cred->secret, "tf", 2) == 0)
		v->result = AUTH_TEMPFAIL;
	else
		v->result = AUTH_FAIL;
	/* authd answers with the name normalised, or refuses it. */
	if (cred->user_len == 0)
		strlcpy(v->user, "alice@example.org", sizeof(v->user));
	else {
		memcpy(v->user, cred->user, cred->user_len);
		if (store_name_normalize(v->user, v->user,
		    sizeof(v->user)) == -1) {
			memset(v->user, 0, sizeof(v->user));
			v->result = AUTH_FAIL;
		}
	}
	if (v->result != AUTH_OK)
		memset(v->user, 0, sizeof(v->user));
	strlcpy(v->checker, "fuzz", sizeof(v->checker));
}

/*
 * authd's side: read what the worker sent, check it as authd would,
 * and queue the verdicts.  With answer 0 the requests are only read
 * (the session is gone, or the input ends).
 */
static void
authd_serve(int answer)
{
	struct auth_request	 req;
	struct auth_cred	 cred;
	struct auth_verdict	 v;
	struct iovec		 iov[2];
	struct imsg		 imsg;
	ssize_t			 n;

	while (imsgbuf_queuelen(&worker->authd.ibuf) > 0)
		FUZZ_ASSERT(imsgbuf_write(&worker->authd.ibuf) == 0);
	FUZZ_ASSERT(imsgbuf_read(&authd_side) == 1);
	while ((n = imsg_get(&authd_side, &imsg)) > 0) {
		switch (imsg_get_type(&imsg)) {
		case IMSG_AUTH_REQUEST:
			FUZZ_ASSERT(auth_request_decode(&imsg, &req, &cred) ==
			    0);
			FUZZ_ASSERT(req.mechanism & (SASL_PASSWORD_MECHS |
			    SASL_TOKEN_MECHS));
			verdict_for(&req, &cred, &v);
			/* An ok names two more addresses the user may use. */
			if (v.result == AUTH_OK)
				v.addrs_len = sizeof(fuzz_addrs);
			iov[0].iov_base = &v;
			iov[0].iov_len = sizeof(v);
			iov[1].iov_base = (void *)(uintptr_t)fuzz_addrs;
			iov[1].iov_len = v.addrs_len;
			if (answer)
				FUZZ_ASSERT(imsg_composev(&authd_side,
				    IMSG_AUTH_VERDICT, 0, 0, -1, iov, 2) != -1);
			break;
		case IMSG_AUTH_CANCEL:
			break;
		default:
			FUZZ_ASSERT(!"unexpected message to authd");
		}
		imsg_free(&imsg);
	}
	FUZZ_ASSERT(n == 0);
}

/* The worker's side: the verdicts, as worker.c hands them on. */
static void
worker_receive(void)
{
	struct imsg	 imsg;
	ssize_t		 n;

	while (imsgbuf_queuelen(&authd_side) > 0)
		FUZZ_ASSERT(imsgbuf_write(&authd_side) == 0);
	FUZZ_ASSERT(imsgbuf_read(&worker->authd.ibuf) == 1);
	while ((n = imsg_get(&worker->authd.ibuf, &imsg)) > 0) {
		FUZZ_ASSERT(imsg_get_type(&imsg) == IMSG_AUTH_VERDICT);
		FUZZ_ASSERT(smtp_auth_verdict(&worker->authd, &imsg) == 0);
		imsg_free(&imsg);
	}
	FUZZ_ASSERT(n == 0);
}

static struct session *
fuzz_session_start(uint8_t profile, struct bufferevent **client)
{
	struct portcullis_conf	*conf = worker->conf;
	struct bufferevent	*pair[2];
	struct session		*s;
	static uint64_t		 id;

	conf->bare_newlines = (profile & 0x01) ? BARE_NEWLINES_NORMALIZE :
	    BARE_NEWLINES_REJECT;
	conf->sender_check = ((profile >> 1) & 0x03) % 3;
	listener.flags = 0;
	if (profile & 0x08)
		listener.flags |= LISTEN_STARTTLS;
	if (profile & 0x10)
		listener.flags |= LISTEN_TLS_REQUIRE;
	if (profile & 0x20)
		listener.flags |= LISTEN_AUTH_REQUIRE;

	if ((s = calloc(1, sizeof(*s))) == NULL ||
	    bufferevent_pair_new(worker->base, 0, pair) == -1)
		abort();
	s->bev = pair[0];
	*client = pair[1];
	/* Both ends read: the pair moves data as soon as it is written. */
	bufferevent_enable(pair[0], EV_READ);
	bufferevent_enable(pair[1], EV_READ);
	if ((s->timer = evtimer_new(worker->base, timer_noop, s)) == NULL)
		abort();
	s->listener = &listener;
	s->id = ++id;
	s->started = time(NULL);
	s->tls = (profile & 0x40) != 0;
	if (s->tls)
		strlcpy(s->tls_desc, "TLSv1.3 TLS_AES_256_GCM_SHA384",
		    sizeof(s->tls_desc));
	strlcpy(s->client_addr, (profile & 0x80) ? "2001:db8::25" :
	    "127.0.0.1", sizeof(s->client_addr));
	TAILQ_INSERT_TAIL(&worker->sessions, s, entry);
	worker->nsessions++;
	s->state = STATE_INIT;
	session_reply(s, "220 %s ESMTP portcullis", conf->hostname);
	return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bufferevent	*client;
	struct session		*s;
	struct evbuffer		*in, *pending;
	size_t			 before;
	enum smtp_state		 state;

	if (size < 1)
		return 0;
	session_gone = 0;
	s = fuzz_session_start(data[0], &client);
	in = bufferevent_get_input(s->bev);
	pending = bufferevent_get_output(client);
	evbuffer_add(pending, data + 1, size - 1);

	/* Each round goes as far as the session can without a peer. */
	for (int round = 0; round < 256 && !session_gone; round++) {
		before = evbuffer_get_length(in) + evbuffer_get_length(pending);
		state = s->state;
		session_resume(s);
		check_replies(client);
		if (session_gone)
			break;
		if (s->state == STATE_AUTH_WAIT) {
			authd_serve(1);
			worker_receive();
			check_replies(client);
			continue;
		}
		if (s->closing)
			break;
		if (evbuffer_get_length(in) + evbuffer_get_length(pending) ==
		    before && s->state == state)
			break;
	}
	if (!session_gone)
		session_free(s);
	check_replies(client);
	bufferevent_free(client);
	/* libevent frees bufferevents from its loop: let it. */
	FUZZ_ASSERT(event_base_loop(worker->base, EVLOOP_NONBLOCK) != -1);
	/* Cancels of requests in flight: read and dropped. */
	authd_serve(0);
	return 0;
}
