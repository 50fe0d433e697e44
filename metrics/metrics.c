/*
 * metrics.c -- portcullis-metrics: the Prometheus endpoint.
 *
 * Started by master when portcullis.conf says "metrics listen on";
 * its whole configuration is one IMSG_CONF_METRICS (the listening
 * socket, the workers' user and chroot, the bearer token if any).  It
 * chroots, drops to the workers' user and enters its own sandbox
 * before it accepts a connection.  It holds no counter of anyone
 * else's: a scrape asks master, authd and every worker over imsg
 * (IMSG_METRICS_ASK, channels that master hands over) and waits at
 * most ASK_DEADLINE_MS; a process that did not answer by then is
 * served from its last answer, with portcullis_process_up 0.  One
 * round of asks serves every scrape that arrives while it runs.
 *
 * HTTP is the least that Prometheus needs (http_request.c): GET
 * /metrics and /healthz, every answer closes the connection.  Each
 * connection is bounded in size (HTTP_HEAD_MAX), in time to send its
 * head (HEAD_TIMEOUT_SEC: a slowloris gets nothing) and to read its
 * answer (WRITE_TIMEOUT_SEC), and in number (CONNS_MAX: past it a
 * connection is answered 503 and closed at once), so a slow or hostile
 * scraper costs only its own connection, and nothing of the SMTP side:
 * master, authd and the workers only ever answer an ask on a channel
 * whose queue is bounded (metrics.c in common).
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "http_request.h"
#include "imsgev.h"
#include "log.h"
#include "metrics.h"
#include "privsep.h"
#include "proto.h"
#include "sandbox.h"

#define ASK_DEADLINE_MS		250	/* for a process's answer */
#define HEAD_TIMEOUT_SEC	5	/* a request's head, whole */
#define WRITE_TIMEOUT_SEC	10	/* the answer, read by the client */
#define CONNS_MAX		64	/* connections at once */
#define ACCEPT_BURST		64	/* accepts per wake-up */
#define PEERS_MAX		1024	/* channels: workers of two
					   generations, authd, master */

struct peer {
	TAILQ_ENTRY(peer)	 entry;
	struct imsgev		 iev;	/* master's is mx.master */
	struct imsgev		*ch;
	uint32_t		 role;
	uint32_t		 id;
	char			 name[32];
	int			 pending;	/* asked, no END yet */
	int			 up;		/* answered last round */
	struct metrics_in	*last, *cur;
	size_t			 nlast, ncur, caplast, capcur;
};
TAILQ_HEAD(peerlist, peer);

struct conn {
	TAILQ_ENTRY(conn)	 entry;
	int			 fd;
	struct event		*ev;
	struct event		*timer;
	size_t			 len;
	char			 buf[HTTP_HEAD_MAX];
	int			 openmetrics;
	int			 waiting;	/* on mx.waiting */
	char			*out;
	size_t			 outlen, outoff;
};
TAILQ_HEAD(connlist, conn);

static struct {
	struct event_base	*base;
	struct imsgev		 master;
	struct peer		*master_peer;
	struct peerlist		 peers;
	size_t			 npeers;
	struct connlist		 conns;		/* all but waiting */
	struct connlist		 waiting;	/* for the round */
	size_t			 nconns;
	int			 lfd;
	struct event		*lev;
	struct event		*lresume;
	struct event		*deadline;
	uint64_t		 seq;
	int			 collecting;
	struct metrics_config	 conf;
} mx;

static int	master_setup(struct imsgev *, struct imsg *);
static int	master_channel(struct imsgev *, struct imsg *);
static int	master_shutdown(struct imsgev *, struct imsg *);
static int	peer_sample(struct imsgev *, struct imsg *);
static int	peer_end(struct imsgev *, struct imsg *);
static void	master_closed(struct imsgev *);
static void	conn_write(evutil_socket_t, short, void *);
static void	conn_free(struct conn *);

/* Its one piece of configuration, and then the running table. */
static const struct imsg_dispatch from_master_conf[] = {
	{ IMSG_CONF_METRICS, sizeof(struct metrics_config),
	    IMSGEV_FD | IMSGEV_ONCE, master_setup },
	{ 0, 0, 0, NULL }
};

/* master answers asks on this channel too, like any other peer. */
static const struct imsg_dispatch from_master_running[] = {
	{ IMSG_METRICS_CHANNEL, sizeof(struct metrics_peer), IMSGEV_FD,
	    master_channel },
	{ IMSG_METRICS_SAMPLE, sizeof(struct metrics_sample), 0,
	    peer_sample },
	{ IMSG_METRICS_END, sizeof(struct metrics_ask), 0, peer_end },
	{ IMSG_CTL_SHUTDOWN, 0, 0, master_shutdown },
	{ IMSG_CTL_VERBOSE, sizeof(int), 0, privsep_verbose },
	{ 0, 0, 0, NULL }
};

/* What authd and a worker may send: answers, nothing else. */
static const struct imsg_dispatch from_peer[] = {
	{ IMSG_METRICS_SAMPLE, sizeof(struct metrics_sample), 0,
	    peer_sample },
	{ IMSG_METRICS_END, sizeof(struct metrics_ask), 0, peer_end },
	{ 0, 0, 0, NULL }
};

static const char *
role_name(uint32_t role)
{
	switch (role) {
	case METRICS_PEER_MASTER:
		return "master";
	case METRICS_PEER_AUTHD:
		return "authd";
	default:
		return "worker";
	}
}

/* ---- the peers and the rounds of asks ---- */

static struct peer *
peer_new(uint32_t role, uint32_t id)
{
	struct peer	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->role = role;
	p->id = id;
	if (role == METRICS_PEER_WORKER)
		snprintf(p->name, sizeof(p->name), "worker %u", id);
	else
		strlcpy(p->name, role_name(role), sizeof(p->name));
	TAILQ_INSERT_TAIL(&mx.peers, p, entry);
	mx.npeers++;
	return p;
}

static void
peer_free(struct peer *p)
{
	TAILQ_REMOVE(&mx.peers, p, entry);
	mx.npeers--;
	free(p->last);
	free(p->cur);
	free(p);
}

/* A process that went away: its counters went with it. */
static void
peer_closed(struct imsgev *iev)
{
	struct peer	*p = iev->arg;

	log_debug("metrics: %s channel closed", p->name);
	peer_free(p);
}

static int
master_channel(struct imsgev *iev, struct imsg *imsg)
{
	struct metrics_peer	 mp;
	struct peer		*p;
	int			 fd = imsg_get_fd(imsg);

	(void)iev;
	imsgev_data(imsg, &mp, sizeof(mp));
	if ((mp.role != METRICS_PEER_AUTHD && mp.role != METRICS_PEER_WORKER)
	    || mx.npeers >= PEERS_MAX || (p = peer_new(mp.role, mp.id)) ==
	    NULL) {
		log_warnx("metrics: channel to %s %u refused",
		    role_name(mp.role), mp.id);
		close(fd);
		return 0;
	}
	p->ch = &p->iev;
	if (imsgev_init(&p->iev, mx.base, fd, 0, p->name, NULL, peer_closed,
	    p) == -1) {
		log_warn("metrics: %s channel", p->name);
		close(fd);
		peer_free(p);
		return 0;
	}
	imsgev_set_table(&p->iev, from_peer);
	log_debug("metrics: channel to %s", p->name);
	return 0;
}

static struct peer *
peer_of(struct imsgev *iev)
{
	return iev == &mx.master ? mx.master_peer : iev->arg;
}

static int
peer_sample(struct imsgev *iev, struct imsg *imsg)
{
	struct peer		*p = peer_of(iev);
	struct metrics_in	*m, *n;

	if (!p->pending)
		return 0;	/* a late answer to a round that is over */
	if (p->ncur >= 4096)
		return imsgev_reject(iev, "more samples than any process "
		    "counts");
	if (p->ncur == p->capcur) {
		p->capcur = p->capcur ? p->capcur * 2 : 64;
		if ((n = reallocarray(p->cur, p->capcur, sizeof(*n))) == NULL)
			fatal("metrics");
		p->cur = n;
	}
	m = &p->cur[p->ncur];
	imsgev_data(imsg, &m->s, sizeof(m->s));
	if (m->s.seq != mx.seq)
		return 0;
	if (metrics_check(&m->s, p->role) == -1)
		return imsgev_reject(iev, "a sample of a metric %s does not "
		    "count", p->name);
	m->role = p->role;
	m->slot = p->role == METRICS_PEER_WORKER ? p->id : 0;
	p->ncur++;
	return 0;
}

static void	round_done(void);

static int
peer_end(struct imsgev *iev, struct imsg *imsg)
{
	struct peer		*p = peer_of(iev);
	struct metrics_ask	 ask;
	struct metrics_in	*t;
	struct peer		*q;
	size_t			 cap;

	imsgev_data(imsg, &ask, sizeof(ask));
	if (!p->pending || ask.seq != mx.seq)
		return 0;
	t = p->last;
	cap = p->caplast;
	p->last = p->cur;
	p->nlast = p->ncur;
	p->caplast = p->capcur;
	p->cur = t;
	p->capcur = cap;
	p->ncur = 0;
	p->pending = 0;
	p->up = 1;
	TAILQ_FOREACH(q, &mx.peers, entry)
		if (q->pending)
			return 0;
	round_done();
	return 0;
}

static void
round_start(void)
{
	struct timeval		 tv = { 0, ASK_DEADLINE_MS * 1000 };
	struct metrics_ask	 ask;
	struct peer		*p;

	mx.collecting = 1;
	mx.seq++;
	memset(&ask, 0, sizeof(ask));
	ask.seq = mx.seq;
	TAILQ_FOREACH(p, &mx.peers, entry) {
		p->ncur = 0;
		p->pending = 1;
		imsgev_compose(p->ch, IMSG_METRICS_ASK, 0, -1, &ask,
		    sizeof(ask));
	}
	evtimer_add(mx.deadline, &tv);
}

static void
round_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct peer	*p;

	(void)fd; (void)ev; (void)arg;
	TAILQ_FOREACH(p, &mx.peers, entry)
		if (p->pending) {
			p->pending = 0;
			p->up = 0;
			log_debug("metrics: %s did not answer in %d ms",
			    p->name, ASK_DEADLINE_MS);
		}
	round_done();
}

/* What one scrape shows: every peer's last answer, and our own. */
struct gather {
	struct metrics_in	*v;
	size_t			 n, cap;
};

static struct metrics_in *
gather_next(struct gather *g)
{
	struct metrics_in	*nv;

	if (g->n == g->cap) {
		g->cap = g->cap ? g->cap * 2 : 256;
		if ((nv = reallocarray(g->v, g->cap, sizeof(*nv))) == NULL)
			fatal("metrics");
		g->v = nv;
	}
	memset(&g->v[g->n], 0, sizeof(g->v[0]));
	return &g->v[g->n++];
}

static void
gather_own(const char label[METRIC_LABELS_MAX][METRIC_LABEL_MAX],
    const uint64_t *v, void *arg)
{
	struct metrics_in	*m = gather_next(arg);

	m->role = METRIC_SRC_METRICS;
	m->s.metric = M_HTTP_REQUESTS;
	memcpy(m->s.label, label, sizeof(m->s.label));
	memcpy(m->s.v, v, sizeof(m->s.v));
}

static void
gather(struct gather *g)
{
	struct metrics_in	*m;
	struct peer		*p;

	TAILQ_FOREACH(p, &mx.peers, entry) {
		for (size_t i = 0; i < p->nlast; i++)
			*gather_next(g) = p->last[i];
		m = gather_next(g);
		m->role = METRIC_SRC_METRICS;
		m->s.metric = M_PEER_UP;
		strlcpy(m->s.label[0], role_name(p->role),
		    sizeof(m->s.label[0]));
		snprintf(m->s.label[1], sizeof(m->s.label[1]), "%u",
		    p->role == METRICS_PEER_WORKER ? p->id : 0);
		m->s.v[0] = (uint64_t)p->up;
	}
	metrics_foreach(M_HTTP_REQUESTS, gather_own, g);
}

/* ---- HTTP ---- */

static const char *
status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

static void
count_code(int code)
{
	char	 c[8];

	snprintf(c, sizeof(c), "%d", code);
	metrics_add(M_HTTP_REQUESTS, 1, c);
}

/* The whole answer, headers and body, then the connection closes. */
static void
conn_respond(struct conn *c, int code, const char *ctype, const char *body,
    size_t blen)
{
	struct timeval	 tv = { WRITE_TIMEOUT_SEC, 0 };
	FILE		*f;
	size_t		 size;

	count_code(code);
	if ((f = open_memstream(&c->out, &size)) == NULL) {
		conn_free(c);
		return;
	}
	fprintf(f, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n"
	    "Content-Length: %zu\r\nConnection: close\r\n", code,
	    status_text(code), ctype, blen);
	if (code == 405)
		fputs("Allow: GET\r\n", f);
	if (code == 401)
		fputs("WWW-Authenticate: Bearer realm=\"portcullis\"\r\n", f);
	fputs("\r\n", f);
	fwrite(body, 1, blen, f);
	if (fclose(f) != 0) {
		conn_free(c);
		return;
	}
	c->outlen = size;
	c->outoff = 0;
	event_free(c->ev);
	c->ev = event_new(mx.base, c->fd, EV_WRITE | EV_PERSIST, conn_write,
	    c);
	if (c->ev == NULL) {
		conn_free(c);
		return;
	}
	evtimer_add(c->timer, &tv);
	event_add(c->ev, NULL);
}

static void
conn_error(struct conn *c, int code)
{
	char	 body[64];
	int	 n;

	n = snprintf(body, sizeof(body), "%d %s\n", code, status_text(code));
	conn_respond(c, code, "text/plain; charset=utf-8", body, (size_t)n);
}

static void
round_done(void)
{
	struct gather		 g = { NULL, 0, 0 };
	struct conn		*c;
	char			*text[2] = { NULL, NULL };
	size_t			 len[2] = { 0, 0 };
	FILE			*f;
	int			 om;

	evtimer_del(mx.deadline);
	mx.collecting = 0;
	gather(&g);
	while ((c = TAILQ_FIRST(&mx.waiting)) != NULL) {
		TAILQ_REMOVE(&mx.waiting, c, entry);
		TAILQ_INSERT_TAIL(&mx.conns, c, entry);
		c->waiting = 0;
		om = c->openmetrics;
		/* Rendering sorts and merges g in place: once is enough. */
		if (text[om] == NULL &&
		    (f = open_memstream(&text[om], &len[om])) != NULL) {
			if (metrics_render(f, g.v, g.n, om) == -1 ||
			    fclose(f) != 0) {
				free(text[om]);
				text[om] = NULL;
			}
		}
		if (text[om] == NULL) {
			conn_error(c, 503);
			continue;
		}
		conn_respond(c, 200, om ? "application/openmetrics-text; "
		    "version=1.0.0; charset=utf-8" : "text/plain; "
		    "version=0.0.4; charset=utf-8", text[om], len[om]);
	}
	free(text[0]);
	free(text[1]);
	free(g.v);
}

static void
conn_free(struct conn *c)
{
	TAILQ_REMOVE(c->waiting ? &mx.waiting : &mx.conns, c, entry);
	if (c->ev != NULL)
		event_free(c->ev);
	event_free(c->timer);
	close(c->fd);
	free(c->out);
	explicit_bzero(c->buf, sizeof(c->buf));	/* a bearer token */
	free(c);
	mx.nconns--;
}

static void
conn_write(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;
	ssize_t		 n;

	(void)ev;
	n = send(fd, c->out + c->outoff, c->outlen - c->outoff,
	    MSG_NOSIGNAL);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	c->outoff += (size_t)n;
	if (c->outoff == c->outlen) {
		(void)shutdown(fd, SHUT_WR);
		conn_free(c);
	}
}

/* Every octet looked at, whatever differs first: no timing oracle. */
static int
same_octets(const char *a, const char *b, size_t len)
{
	volatile unsigned char	 diff = 0;

	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)a[i] ^ (unsigned char)b[i];
	return diff == 0;
}

static int
token_ok(const struct http_request *req)
{
	size_t	 a, b;

	if (!mx.conf.has_token)
		return 1;
	if (!req->has_bearer)
		return 0;
	a = strlen(req->bearer);
	b = strlen(mx.conf.token);
	/* The lengths may differ in time; the octets may not. */
	return a == b && same_octets(req->bearer, mx.conf.token, a);
}

static void
conn_route(struct conn *c, struct http_request *req)
{
	static const char	 ok[] = "ok\n";

	if (strcmp(req->path, "/healthz") == 0) {
		conn_respond(c, 200, "text/plain; charset=utf-8", ok,
		    sizeof(ok) - 1);
		return;
	}
	if (strcmp(req->path, "/metrics") != 0) {
		conn_error(c, 404);
		return;
	}
	if (!token_ok(req)) {
		conn_error(c, 401);
		return;
	}
	/* Wait for the round: in flight, or one started now. */
	event_del(c->ev);
	evtimer_del(c->timer);
	c->openmetrics = req->openmetrics;
	TAILQ_REMOVE(&mx.conns, c, entry);
	TAILQ_INSERT_TAIL(&mx.waiting, c, entry);
	c->waiting = 1;
	if (!mx.collecting)
		round_start();
}

static void
conn_read(evutil_socket_t fd, short ev, void *arg)
{
	struct conn		*c = arg;
	struct http_request	 req;
	ssize_t			 n;
	int			 rc;

	(void)ev;
	n = recv(fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
	if (n == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);
		return;
	}
	c->len += (size_t)n;
	rc = http_request_parse(c->buf, c->len, &req);
	if (rc == 0 && c->len == sizeof(c->buf))
		rc = 431;
	if (rc == 200)
		conn_route(c, &req);
	else if (rc != 0)
		conn_error(c, rc);
	explicit_bzero(&req, sizeof(req));
}

/* A head not complete in time, or an answer not read in time. */
static void
conn_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct conn	*c = arg;

	(void)fd; (void)ev;
	if (c->out == NULL) {
		count_code(408);
		log_debug("metrics: request head not complete in %d s",
		    HEAD_TIMEOUT_SEC);
	}
	conn_free(c);
}

/* Over the limit: one short answer without waiting, then close. */
static void
conn_refuse(int fd)
{
	static const char	 busy[] = "HTTP/1.1 503 Service Unavailable"
	    "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

	count_code(503);
	(void)send(fd, busy, sizeof(busy) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

static void
conn_new(int fd)
{
	struct timeval	 tv = { HEAD_TIMEOUT_SEC, 0 };
	struct conn	*c;

	if (mx.nconns >= CONNS_MAX) {
		conn_refuse(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->ev = event_new(mx.base, fd, EV_READ | EV_PERSIST, conn_read, c);
	c->timer = evtimer_new(mx.base, conn_timeout, c);
	if (c->ev == NULL || c->timer == NULL) {
		if (c->ev != NULL)
			event_free(c->ev);
		if (c->timer != NULL)
			event_free(c->timer);
		close(fd);
		free(c);
		return;
	}
	TAILQ_INSERT_TAIL(&mx.conns, c, entry);
	mx.nconns++;
	event_add(c->ev, NULL);
	evtimer_add(c->timer, &tv);
}

static void
accept_resume(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	event_add(mx.lev, NULL);
}

static void
http_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct timeval	 tv = { 1, 0 };
	int		 fd;

	(void)ev; (void)arg;
	for (int i = 0; i < ACCEPT_BURST; i++) {
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd != -1) {
			conn_new(fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE) {
			/* Out of descriptors: pause, do not spin. */
			log_warn("metrics: accept");
			event_del(mx.lev);
			evtimer_add(mx.lresume, &tv);
		}
		return;
	}
}

/* ---- set-up ---- */

static int
master_setup(struct imsgev *iev, struct imsg *imsg)
{
	struct hello	 hello;

	imsgev_data(imsg, &mx.conf, sizeof(mx.conf));
	mx.conf.user[sizeof(mx.conf.user) - 1] = '\0';
	mx.conf.chroot[sizeof(mx.conf.chroot) - 1] = '\0';
	mx.conf.token[sizeof(mx.conf.token) - 1] = '\0';
	mx.lfd = imsg_get_fd(imsg);
	if (privsep_drop(mx.conf.user, mx.conf.chroot))
		log_debug("metrics: running as %s in %s", mx.conf.user,
		    mx.conf.chroot);
	sandbox_enter(SANDBOX_METRICS, 0);

	if ((mx.master_peer = peer_new(METRICS_PEER_MASTER, 0)) == NULL)
		fatal("calloc");
	mx.master_peer->ch = &mx.master;
	mx.deadline = evtimer_new(mx.base, round_deadline, NULL);
	mx.lev = event_new(mx.base, mx.lfd, EV_READ | EV_PERSIST,
	    http_accept, NULL);
	mx.lresume = evtimer_new(mx.base, accept_resume, NULL);
	if (mx.deadline == NULL || mx.lev == NULL || mx.lresume == NULL)
		fatalx("metrics: events");
	event_add(mx.lev, NULL);
	imsgev_set_table(iev, from_master_running);

	memset(&hello, 0, sizeof(hello));
	hello.version = PROTO_VERSION;
	imsgev_compose(iev, IMSG_CHILD_READY, 0, -1, &hello, sizeof(hello));
	return 0;
}

static int
master_shutdown(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
	/* A scrape is not worth a grace period. */
	event_base_loopexit(mx.base, NULL);
	return 0;
}

static void
master_closed(struct imsgev *iev)
{
	(void)iev;
	log_info("metrics: master went away, exiting");
	exit(0);
}

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullis-metrics [-dv]\n"
	    "(started by portcullisd, not by hand)\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	int	 ch, debug = 0, verbose = 0;

	privsep_title_init(argc, argv);
	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	privsep_child_init("metrics", debug, verbose);
	TAILQ_INIT(&mx.peers);
	TAILQ_INIT(&mx.conns);
	TAILQ_INIT(&mx.waiting);
	mx.lfd = -1;
	mx.base = privsep_child_loop(&mx.master, from_master_conf,
	    master_closed);
	event_base_dispatch(mx.base);
	log_info("metrics: exiting");
	return 0;
}
