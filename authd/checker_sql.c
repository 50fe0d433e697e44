/*
 * checker_sql.c -- users in PostgreSQL, as the web panels of mail hosts
 * (PostfixAdmin, ViMbAdmin, ...) keep them.
 *
 * libpq's non-blocking interface on authd's event loop: a bounded pool
 * of connections, each made with PQconnectStartParams/PQconnectPoll
 * (libpq walks the hosts of a multi-host conninfo itself, with its
 * target_session_attrs), set up once (statement_timeout, then the
 * prepared statements: PQsendPrepare), then used one query at a time
 * with PQsendQueryPrepared; the login is always the bound parameter
 * $1, never text pasted into SQL.  The stored hash is verified on the
 * hash pool, never on the loop.
 *
 * Nothing here blocks: a check waits for a connection in a bounded
 * queue, under a client-side deadline (timeout).  A database that is
 * down, hung or slow makes this checker's checks tempfail (454 if
 * nobody else says ok); other checkers and other attempts go on.  A
 * broken connection is made again at once, then with a back-off that
 * doubles up to SQL_BACKOFF_MAX_MS.  When no connection is up or on
 * its way, a check tempfails at once instead of waiting.
 *
 * An unknown user costs what a wrong password costs: the password is
 * verified against the last hash the database gave (same scheme, same
 * cost), or the dummy hash before the first, and the outcome ignored.
 * The sending addresses come from a text[] column of the row or from
 * address-query, asked only once the password matched, so that known
 * and unknown users make the same number of queries before it.
 */

#include <sys/queue.h>

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "authd.h"
#include "chain.h"
#include "hashpool.h"
#include "log.h"
#include "passwd.h"
#include "pgarray.h"
#include "util.h"

#define SQL_BACKOFF_MIN_MS	100
#define SQL_BACKOFF_MAX_MS	5000
#define SQL_HOSTS_MAX		8	/* per-host counters kept */
#define SQL_STMT_USER		"portcullis_user"
#define SQL_STMT_ADDRS		"portcullis_addrs"

enum conn_state {
	CONN_DOWN,		/* waiting for its back-off */
	CONN_CONNECTING,	/* PQconnectPoll */
	CONN_SETUP,		/* statement_timeout, PQsendPrepare */
	CONN_IDLE,
	CONN_BUSY,		/* a check's query in flight */
};

enum job_phase {
	JOB_USER,		/* the query, then the hash on the pool */
	JOB_ADDRS,		/* address-query, after a match */
};

struct sql;
struct sqljob;

struct sqlconn {
	struct sql		*sql;
	PGconn			*pg;
	enum conn_state		 state;
	int			 step;		/* setup: the next command */
	int			 flushing;	/* output not all sent */
	struct event		*ev;		/* on PQsocket() */
	int			 evfd;
	short			 evwhat;
	struct event		*timer;		/* connect deadline, back-off */
	int			 backoff;	/* milliseconds, next */
	int			 host;		/* counters; -1 none yet */
	int			 lost;		/* it was up before */
	struct sqljob		*job;		/* BUSY: whose query */
	PGresult		*res;		/* BUSY: its result */
	int			 error;		/* BUSY: an error came */
};

struct sqlhost {
	char			 name[96];	/* "host:port" */
	unsigned long		 ok, fail, tempfail, reconnects;
};

struct sql {
	struct checker_priv	 priv;		/* first: chain.c's view */
	char			 name[CONF_NAME_MAX];
	struct sql_conf		 conf;		/* a copy: the password */
	struct sqlconn		*conns;
	int			 nconns;
	TAILQ_HEAD(, sqljob)	 waiting;
	int			 nwaiting;
	struct sqlhost		 hosts[SQL_HOSTS_MAX];
	int			 nhosts;
	unsigned long		 nohost;	/* tempfails with no host */
	char			*decoy;		/* the last hash seen */
	int			 freed;		/* free() came; conns closing */
};

struct sqljob {
	TAILQ_ENTRY(sqljob)	 entry;		/* sql->waiting */
	struct sql		*sql;
	struct auth_ctx		*ctx;
	enum job_phase		 phase;
	struct event		*deadline;
	struct sqlconn		*conn;		/* its query's */
	int			 queued;
	int			 retried;	/* once, after a lost connection */
	int			 host;
	/* what the row said, for the pool thread */
	int			 rows;
	char			*hash;		/* NULL: none */
	char			*decoy;		/* for an unknown user */
	int			 enabled;
	char			 canonical[CONF_AUTH_NAME_MAX];
	char			*addrs;		/* the text[] column */
};

static struct event_base	*sql_base(void);
static void	conn_connect(struct sqlconn *);
static void	conn_io(evutil_socket_t, short, void *);
static void	conn_drop(struct sqlconn *, const char *);
static void	pool_next(struct sql *);
static void	job_end(struct sqljob *, int, const char *);
static void	job_retry(struct sqljob *);

static void	sql_free(struct checker_priv *);

static struct event_base *
sql_base(void)
{
	return authd->base;
}

/*
 * Each entry from the loop holds the pool: a check that ends inside may
 * drop the last reference (after a reload), and what follows it in the
 * same callback must not find the pool freed.
 */
static void
sql_hold(struct sql *s)
{
	s->priv.refs++;
}

static void
sql_release(struct sql *s)
{
	if (--s->priv.refs == 0)
		sql_free(&s->priv);
}

/* ---- per-host counters ---- */

static int
host_index(struct sql *s, PGconn *pg)
{
	char	 name[96];
	int	 i;

	(void)snprintf(name, sizeof(name), "%s:%s",
	    PQhost(pg) != NULL ? PQhost(pg) : "?",
	    PQport(pg) != NULL ? PQport(pg) : "?");
	for (i = 0; i < s->nhosts; i++)
		if (strcmp(s->hosts[i].name, name) == 0)
			return i;
	if (s->nhosts == SQL_HOSTS_MAX)
		return SQL_HOSTS_MAX - 1;	/* the last one takes the rest */
	strlcpy(s->hosts[s->nhosts].name, name, sizeof(s->hosts[0].name));
	return s->nhosts++;
}

static void
host_count(struct sql *s, int host, int result)
{
	struct sqlhost	*h;

	if (host < 0) {
		if (result == AUTH_TEMPFAIL)
			s->nohost++;
		return;
	}
	h = &s->hosts[host];
	if (result == AUTH_OK)
		h->ok++;
	else if (result == AUTH_FAIL)
		h->fail++;
	else
		h->tempfail++;
}

/* ---- connections ---- */

/*
 * Watch the connection's socket for what libpq wants next.  While it
 * connects, libpq may close a socket and open the next host's under
 * the same number, which epoll forgot with the close: watch it anew.
 */
static void
conn_wait(struct sqlconn *c, short what)
{
	int	 fd = PQsocket(c->pg);

	if (c->ev != NULL && (c->evfd != fd || c->evwhat != what ||
	    c->state == CONN_CONNECTING)) {
		event_free(c->ev);
		c->ev = NULL;
	}
	if (c->ev == NULL) {
		if (fd == -1)
			return;
		if ((c->ev = event_new(sql_base(), fd, what | EV_PERSIST,
		    conn_io, c)) == NULL)
			fatalx("event_new");
		c->evfd = fd;
		c->evwhat = what;
		if (event_add(c->ev, NULL) == -1)
			fatalx("event_add");
	}
}

static void
conn_unwatch(struct sqlconn *c)
{
	if (c->ev != NULL) {
		event_free(c->ev);
		c->ev = NULL;
	}
	evtimer_del(c->timer);
}

static void
conn_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sqlconn	*c = arg;
	struct sql	*s = c->sql;

	(void)fd;
	(void)what;
	sql_hold(s);
	if (c->state == CONN_DOWN)
		conn_connect(c);
	else
		conn_drop(c, "connection timed out");
	sql_release(s);
}

static void
timer_ms(struct event *ev, int ms)
{
	struct timeval	 tv;

	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(ev, &tv) == -1)
		fatalx("evtimer_add");
}

/* libpq's notices would go to stderr: the log, at debug level. */
static void
conn_notice(void *arg, const char *msg)
{
	char	 buf[512];

	(void)arg;
	escape_text(msg, strlen(msg), buf, sizeof(buf));
	log_debug("sql: notice: %s", buf);
}

/* One line of libpq's error, fit for the log. */
static const char *
conn_error(PGconn *pg, char *buf, size_t len)
{
	const char	*m = pg != NULL ? PQerrorMessage(pg) : "out of memory";
	size_t		 n = strlen(m);

	while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
		n--;
	escape_text(m, n, buf, len);
	return buf;
}

/*
 * Close it, fail its check, and make it again: at once if it was up
 * (a restart, a failover), after the back-off if it never came up.
 */
static void
conn_drop(struct sqlconn *c, const char *why)
{
	struct sql	*s = c->sql;
	char		 err[1024];
	int		 wasup = c->state == CONN_IDLE || c->state == CONN_BUSY;
	struct sqljob	*j = c->job;

	log_warnx("sql %s: %s: %s", s->name, why,
	    conn_error(c->pg, err, sizeof(err)));
	conn_unwatch(c);
	PQclear(c->res);
	c->res = NULL;
	PQfinish(c->pg);
	c->pg = NULL;
	c->job = NULL;
	c->state = CONN_DOWN;
	if (wasup)
		c->lost = 1;
	if (j != NULL) {
		j->conn = NULL;
		job_retry(j);
	}
	if (s->freed)
		return;
	if (wasup) {
		c->backoff = SQL_BACKOFF_MIN_MS;
		timer_ms(c->timer, 0);
	} else {
		timer_ms(c->timer, c->backoff);
		c->backoff = c->backoff * 2 > SQL_BACKOFF_MAX_MS ?
		    SQL_BACKOFF_MAX_MS : c->backoff * 2;
	}
	/* With nothing up or coming, waiting checks cannot be served. */
	pool_next(s);
}

static void
conn_connect(struct sqlconn *c)
{
	struct sql	*s = c->sql;
	const char	*keys[5], *vals[5];
	int		 n = 0;

	/*
	 * Before the conninfo, which may say otherwise: no GSSAPI
	 * encryption attempt, whose Kerberos library would read
	 * directories (getdents64) authd's sandbox does not allow.
	 */
	keys[n] = "gssencmode";
	vals[n++] = "disable";
	keys[n] = "dbname";
	vals[n++] = s->conf.conninfo;
	keys[n] = "fallback_application_name";
	vals[n++] = "portcullis";
	if (s->conf.password[0] != '\0') {
		keys[n] = "password";
		vals[n++] = s->conf.password;
	}
	keys[n] = NULL;
	vals[n] = NULL;
	/* expand_dbname: the conninfo is read, the password added. */
	c->pg = PQconnectStartParams(keys, vals, 1);
	c->state = CONN_CONNECTING;
	c->host = -1;
	if (c->pg == NULL || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_drop(c, "cannot connect");
		return;
	}
	(void)PQsetNoticeProcessor(c->pg, conn_notice, NULL);
	timer_ms(c->timer, s->conf.timeout);
	conn_wait(c, EV_WRITE);
}

static int
conn_send_setup(struct sqlconn *c)
{
	struct sql	*s = c->sql;
	char		 q[64];

	switch (c->step) {
	case 0:
		/* The server ends what we would stop waiting for anyway. */
		(void)snprintf(q, sizeof(q), "SET statement_timeout = %d",
		    s->conf.statement_timeout);
		return PQsendQuery(c->pg, q);
	case 1:
		return PQsendPrepare(c->pg, SQL_STMT_USER, s->conf.query, 1,
		    NULL);
	case 2:
		if (s->conf.address_query[0] == '\0')
			return -1;
		return PQsendPrepare(c->pg, SQL_STMT_ADDRS,
		    s->conf.address_query, 1, NULL);
	}
	return -1;
}

/* The next setup command, or idle once there is none. */
static void
conn_setup_next(struct sqlconn *c)
{
	if (conn_send_setup(c) == 1) {
		c->step++;
		c->flushing = 1;
		conn_wait(c, EV_READ | EV_WRITE);
		return;
	}
	if (c->step < 2 || (c->step == 2 &&
	    c->sql->conf.address_query[0] != '\0')) {
		conn_drop(c, "setup failed");
		return;
	}
	c->state = CONN_IDLE;
	c->backoff = SQL_BACKOFF_MIN_MS;
	evtimer_del(c->timer);
	conn_wait(c, EV_READ);
	pool_next(c->sql);
}

static void
conn_up(struct sqlconn *c)
{
	struct sql	*s = c->sql;

	if (PQsetnonblocking(c->pg, 1) == -1) {
		conn_drop(c, "cannot make the connection non-blocking");
		return;
	}
	c->host = host_index(s, c->pg);
	if (c->lost)
		s->hosts[c->host].reconnects++;
	log_info("sql %s: connected to %s", s->name, s->hosts[c->host].name);
	c->state = CONN_SETUP;
	c->step = 0;
	conn_setup_next(c);
}

static void
conn_poll(struct sqlconn *c)
{
	switch (PQconnectPoll(c->pg)) {
	case PGRES_POLLING_READING:
		conn_wait(c, EV_READ);
		break;
	case PGRES_POLLING_WRITING:
		conn_wait(c, EV_WRITE);
		break;
	case PGRES_POLLING_OK:
		conn_up(c);
		break;
	default:
		conn_drop(c, "cannot connect");
	}
}

/* A setup command's result: anything but success drops it. */
static int
conn_setup_result(PGresult *res)
{
	ExecStatusType	 st = PQresultStatus(res);

	PQclear(res);
	return st == PGRES_COMMAND_OK ? 0 : -1;
}

/* A query's results: the first kept, the rest (none) dropped. */
static void
conn_query_result(struct sqlconn *c, PGresult *res)
{
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		c->error = 1;
	if (c->res == NULL)
		c->res = res;
	else
		PQclear(res);
}

static void	job_result(struct sqljob *, PGresult *, int);

/* The command in flight ended (PQgetResult said NULL). */
static void
conn_command_done(struct sqlconn *c)
{
	struct sqljob	*j;
	PGresult	*res;
	int		 error;

	if (c->state == CONN_SETUP) {
		conn_setup_next(c);
		return;
	}
	j = c->job;
	res = c->res;
	error = c->error || res == NULL;
	c->job = NULL;
	c->res = NULL;
	c->error = 0;
	c->state = CONN_IDLE;
	evtimer_del(c->timer);
	if (j != NULL) {
		j->conn = NULL;
		job_result(j, res, error);
	}
	PQclear(res);
	pool_next(c->sql);
}

/* Read what came; act on each complete result. */
static void
conn_read(struct sqlconn *c)
{
	PGresult	*res;

	if (PQconsumeInput(c->pg) == 0) {
		conn_drop(c, "connection lost");
		return;
	}
	while (c->state == CONN_SETUP || c->state == CONN_BUSY) {
		if (PQisBusy(c->pg))
			return;
		if ((res = PQgetResult(c->pg)) == NULL) {
			conn_command_done(c);
			continue;
		}
		if (c->state == CONN_SETUP) {
			if (conn_setup_result(res) == -1) {
				conn_drop(c, "setup failed");
				return;
			}
		} else
			conn_query_result(c, res);
	}
	if (c->state == CONN_IDLE && PQstatus(c->pg) == CONNECTION_BAD)
		conn_drop(c, "connection lost");
}

static void
conn_io(evutil_socket_t fd, short what, void *arg)
{
	struct sqlconn	*c = arg;
	struct sql	*s = c->sql;
	int		 r = 0;

	(void)fd;
	sql_hold(s);
	if (c->state == CONN_CONNECTING)
		conn_poll(c);
	else if ((what & EV_WRITE) && c->flushing &&
	    (r = PQflush(c->pg)) == -1)
		conn_drop(c, "cannot send");
	else {
		if ((what & EV_WRITE) && c->flushing) {
			c->flushing = r == 1;
			conn_wait(c, c->flushing ? EV_READ | EV_WRITE :
			    EV_READ);
		}
		if (what & EV_READ)
			conn_read(c);
	}
	sql_release(s);
}

/* ---- checks ---- */

static void
job_free(struct sqljob *j)
{
	if (j->deadline != NULL)
		event_free(j->deadline);
	if (j->hash != NULL)
		freezero(j->hash, strlen(j->hash));
	free(j->decoy);
	free(j->addrs);
	freezero(j, sizeof(*j));
}

static void
job_end(struct sqljob *j, int result, const char *why)
{
	struct auth_ctx	*ctx = j->ctx;
	struct sql	*s = j->sql;

	if (j->queued) {
		TAILQ_REMOVE(&s->waiting, j, entry);
		s->nwaiting--;
	}
	if (j->conn != NULL) {		/* its query is abandoned */
		struct sqlconn	*c = j->conn;

		c->job = NULL;
		j->conn = NULL;
		conn_drop(c, why);
	}
	host_count(s, j->host, result);
	ctx->result = result;
	if (why != NULL)
		ctx->why = why;
	ctx->job = NULL;
	job_free(j);
	chain_checker_done(ctx);
}

static void
job_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct sqljob	*j = arg;
	struct sql	*s = j->sql;

	(void)fd;
	(void)what;
	sql_hold(s);
	job_end(j, AUTH_TEMPFAIL, "database timeout");
	sql_release(s);
}

/* Send the job's query on an idle connection. */
static void
job_send(struct sqljob *j, struct sqlconn *c)
{
	const char	*param;
	const char	*stmt;

	param = j->phase == JOB_USER ? j->ctx->user : j->canonical;
	stmt = j->phase == JOB_USER ? SQL_STMT_USER : SQL_STMT_ADDRS;
	j->conn = c;
	j->host = c->host;
	c->job = j;
	c->state = CONN_BUSY;
	c->error = 0;
	if (PQsendQueryPrepared(c->pg, stmt, 1, &param, NULL, NULL, 0) != 1) {
		conn_drop(c, "cannot send the query");
		return;
	}
	c->flushing = 1;
	conn_wait(c, EV_READ | EV_WRITE);
}

/* Any connection up or on its way? */
static int
pool_hope(const struct sql *s)
{
	for (int i = 0; i < s->nconns; i++)
		if (s->conns[i].state != CONN_DOWN)
			return 1;
	return 0;
}

/* Give idle connections to waiting checks; fail those that cannot. */
static void
pool_next(struct sql *s)
{
	struct sqljob	*j;
	int		 i;

	for (i = 0; i < s->nconns && !TAILQ_EMPTY(&s->waiting); i++) {
		if (s->conns[i].state != CONN_IDLE)
			continue;
		j = TAILQ_FIRST(&s->waiting);
		TAILQ_REMOVE(&s->waiting, j, entry);
		s->nwaiting--;
		j->queued = 0;
		job_send(j, &s->conns[i]);
	}
	while (!pool_hope(s) && (j = TAILQ_FIRST(&s->waiting)) != NULL)
		job_end(j, AUTH_TEMPFAIL, "database unreachable");
}

static void
job_queue(struct sqljob *j)
{
	struct sql	*s = j->sql;

	if (!pool_hope(s)) {
		job_end(j, AUTH_TEMPFAIL, "database unreachable");
		return;
	}
	if (s->nwaiting >= s->conf.queue) {
		job_end(j, AUTH_TEMPFAIL, "database queue full");
		return;
	}
	timer_ms(j->deadline, s->conf.timeout);
	TAILQ_INSERT_TAIL(&s->waiting, j, entry);
	s->nwaiting++;
	j->queued = 1;
	pool_next(s);
}

/*
 * Its connection was lost under its query (a restart, a failover, a
 * connection the server had closed while idle): the queries only read,
 * so it may go once more, first in line, within its own deadline.
 */
static void
job_retry(struct sqljob *j)
{
	struct sql	*s = j->sql;

	if (j->retried || s->freed) {
		job_end(j, AUTH_TEMPFAIL, "database connection lost");
		return;
	}
	j->retried = 1;
	TAILQ_INSERT_HEAD(&s->waiting, j, entry);
	s->nwaiting++;
	j->queued = 1;
}

/* PostgreSQL's booleans and the integers of other schemas. */
static int
sql_true(const char *v)
{
	static const char *const yes[] = { "t", "true", "1", "y", "yes", "on" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
	return 0;
}

/* A column of the query by name: its value, NULL if null or absent. */
static const char *
col(PGresult *res, const char *name, int *missing)
{
	int	 n;

	*missing = 0;
	if (name[0] == '\0')
		return NULL;
	if ((n = PQfnumber(res, name)) == -1) {
		*missing = 1;
		return NULL;
	}
	return PQgetisnull(res, 0, n) ? NULL : PQgetvalue(res, 0, n);
}

static void	job_verify(void *);
static void	job_verified(void *);
static void	job_checked(struct sqljob *);

/* What the user query said: keep it for the pool thread. */
static int
job_take_row(struct sqljob *j, PGresult *res)
{
	struct sql	*s = j->sql;
	const char	*v;
	int		 miss[4];

	j->rows = PQntuples(res);
	if (j->rows != 1)
		return 0;
	v = col(res, s->conf.password_column, &miss[0]);
	if (v != NULL && v[0] != '\0' && (j->hash = strdup(v)) == NULL)
		fatal("strdup");
	j->enabled = 1;
	if (s->conf.enabled_column[0] != '\0') {
		v = col(res, s->conf.enabled_column, &miss[1]);
		j->enabled = v != NULL && sql_true(v);
	} else
		miss[1] = 0;
	v = col(res, s->conf.user_column, &miss[2]);
	if (strlcpy(j->canonical, v != NULL && v[0] != '\0' ? v :
	    j->ctx->user, sizeof(j->canonical)) >= sizeof(j->canonical))
		return -1;
	v = col(res, s->conf.addresses_column, &miss[3]);
	if (v != NULL && (j->addrs = strdup(v)) == NULL)
		fatal("strdup");
	if (miss[0] || miss[1] || miss[2] || miss[3]) {
		log_warnx("sql %s: the query has no column %s", s->name,
		    miss[0] ? s->conf.password_column : miss[1] ?
		    s->conf.enabled_column : miss[2] ? s->conf.user_column :
		    s->conf.addresses_column);
		return -1;
	}
	return 0;
}

static int
addr_note(const char *addr, void *arg)
{
	struct auth_ctx	*ctx = arg;

	(void)auth_found_addr(&ctx->found, addr);
	return 0;
}

/* The address query's rows, one address in the first column of each. */
static void
job_addrs(struct sqljob *j, PGresult *res)
{
	int	 i, n = PQntuples(res);

	for (i = 0; i < n && PQnfields(res) > 0; i++)
		if (!PQgetisnull(res, i, 0))
			(void)auth_found_addr(&j->ctx->found,
			    PQgetvalue(res, i, 0));
}

/*
 * A query ended.  A data exception (SQLSTATE class 22: a login that is
 * not valid text in the database's encoding) is no user, not an outage.
 */
static void
job_result(struct sqljob *j, PGresult *res, int error)
{
	struct sql	*s = j->sql;
	const char	*state;
	char		 msg[256];

	evtimer_del(j->deadline);
	if (error) {
		state = res != NULL ? PQresultErrorField(res,
		    PG_DIAG_SQLSTATE) : NULL;
		if (j->phase == JOB_USER && state != NULL &&
		    strncmp(state, "22", 2) == 0) {
			j->rows = 0;
			goto verify;
		}
		if (res != NULL) {
			const char *m = PQresultErrorMessage(res);
			size_t	 n = strlen(m);

			while (n > 0 && m[n - 1] == '\n')
				n--;
			escape_text(m, n, msg, sizeof(msg));
			log_warnx("sql %s: query: %s", s->name, msg);
		}
		job_end(j, AUTH_TEMPFAIL, "database error");
		return;
	}
	if (j->phase == JOB_ADDRS) {
		job_addrs(j, res);
		strlcpy(j->ctx->canonical, j->canonical,
		    sizeof(j->ctx->canonical));
		job_end(j, AUTH_OK, NULL);
		return;
	}
	if (job_take_row(j, res) == -1) {
		job_end(j, AUTH_TEMPFAIL, "unusable row");
		return;
	}
	if (j->rows > 1)
		log_warnx("sql %s: %d rows for one login: refused", s->name,
		    j->rows);
verify:
	/* A real hash of this database is the fairest decoy. */
	if (j->hash != NULL) {
		free(s->decoy);
		if ((s->decoy = strdup(j->hash)) == NULL)
			fatal("strdup");
	} else if (s->decoy != NULL && (j->decoy = strdup(s->decoy)) == NULL)
		fatal("strdup");
	hashpool_submit(job_verify, job_verified, j);
}

/* On a pool thread: the hash, or the decoy for no user. */
static void
job_verify(void *arg)
{
	struct sqljob	*j = arg;
	struct auth_ctx	*ctx = j->ctx;
	int		 r;

	if (j->hash == NULL) {
		(void)passwd_verify_scheme(j->decoy != NULL ? j->decoy :
		    passwd_dummy_hash(), ctx->password, ctx->pwlen);
		ctx->result = AUTH_FAIL;
		ctx->found.refused = 1;
		ctx->why = j->rows == 0 ? "unknown user" : j->rows > 1 ?
		    "ambiguous user" : "no password set";
		return;
	}
	r = passwd_verify_scheme(j->hash, ctx->password, ctx->pwlen);
	if (r == 1 && !j->enabled) {
		ctx->result = AUTH_FAIL;
		ctx->why = "disabled";
	} else if (r == 1)
		ctx->result = AUTH_OK;
	else if (r == 0) {
		ctx->result = AUTH_FAIL;
		ctx->found.refused = 1;
		ctx->why = "wrong password";
	} else {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "unusable hash";
	}
}

/* Back on the loop: done, or the addresses first. */
static void
job_verified(void *arg)
{
	struct sqljob	*j = arg;
	struct sql	*s = j->sql;

	sql_hold(s);
	job_checked(j);
	sql_release(s);
}

static void
job_checked(struct sqljob *j)
{
	struct auth_ctx	*ctx = j->ctx;
	char		 buf[STORE_ADDR_MAX + 1];

	if (ctx->result != AUTH_OK) {
		job_end(j, ctx->result, NULL);
		return;
	}
	if (j->addrs != NULL && pgarray_each(j->addrs, buf, sizeof(buf),
	    addr_note, ctx) == -1)
		log_warnx("sql %s: %s: unreadable addresses", j->sql->name,
		    j->sql->conf.addresses_column);
	explicit_bzero(buf, sizeof(buf));
	if (j->sql->conf.address_query[0] != '\0') {
		j->phase = JOB_ADDRS;
		job_queue(j);
		return;
	}
	strlcpy(ctx->canonical, j->canonical, sizeof(ctx->canonical));
	job_end(j, AUTH_OK, NULL);
}

static void
sql_start(struct checker *chk, struct auth_ctx *ctx)
{
	struct sql	*s = (struct sql *)chk->priv;
	struct sqljob	*j;

	if (s == NULL) {
		ctx->why = "not configured";
		chain_checker_done(ctx);
		return;
	}
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->sql = s;
	j->ctx = ctx;
	j->host = -1;
	j->phase = JOB_USER;
	if ((j->deadline = evtimer_new(sql_base(), job_deadline, j)) == NULL)
		fatalx("evtimer_new");
	ctx->job = j;
	sql_hold(s);
	job_queue(j);
	sql_release(s);
}

/* ---- set-up, stats, free ---- */

static void
sql_free(struct checker_priv *priv)
{
	struct sql	*s = (struct sql *)priv;

	s->freed = 1;
	for (int i = 0; i < s->nconns; i++) {
		conn_unwatch(&s->conns[i]);
		event_free(s->conns[i].timer);
		PQclear(s->conns[i].res);
		PQfinish(s->conns[i].pg);
	}
	free(s->conns);
	free(s->decoy);
	freezero(s, sizeof(*s));	/* the database password */
}

/*
 * libpq looks for ~/.postgresql/ (client certificate, root CAs) and
 * ~/.pgpass under $HOME, which authd inherited from root: a file it may
 * not read there is an error (sslmode=prefer would then give up TLS).
 * authd's own user's home instead.
 */
static void
sql_home(void)
{
	struct passwd	*pw;

	if ((pw = getpwuid(geteuid())) != NULL &&
	    setenv("HOME", pw->pw_dir, 1) == -1)
		log_warn("setenv HOME");
}

static int
sql_init(struct checker *chk, struct portcullis_conf *conf)
{
	struct sql	*s;

	(void)conf;
	sql_home();
	if (chk->conf->sql == NULL) {
		log_warnx("checker %s: no sql settings", chk->conf->name);
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("calloc");
	s->priv.refs = 1;
	strlcpy(s->name, chk->conf->name, sizeof(s->name));
	s->conf = *chk->conf->sql;
	TAILQ_INIT(&s->waiting);
	s->nconns = s->conf.connections;
	if ((s->conns = calloc(s->nconns, sizeof(*s->conns))) == NULL)
		fatal("calloc");
	for (int i = 0; i < s->nconns; i++) {
		s->conns[i].sql = s;
		s->conns[i].host = -1;
		s->conns[i].backoff = SQL_BACKOFF_MIN_MS;
		if ((s->conns[i].timer = evtimer_new(sql_base(), conn_timer,
		    &s->conns[i])) == NULL)
			fatalx("evtimer_new");
		conn_connect(&s->conns[i]);
	}
	chk->priv = &s->priv;
	return 0;
}

static void
sql_stats(const struct checker *chk, char *buf, size_t len)
{
	const struct sql	*s = (const struct sql *)chk->priv;
	const struct sqlhost	*h;
	int			 up = 0, n;
	size_t			 off;

	for (int i = 0; i < s->nconns; i++)
		up += s->conns[i].state == CONN_IDLE ||
		    s->conns[i].state == CONN_BUSY;
	n = snprintf(buf, len, "%d/%d connections up, %d waiting, "
	    "%lu tempfail without a host", up, s->nconns, s->nwaiting,
	    s->nohost);
	for (int i = 0; i < s->nhosts && n >= 0 && (size_t)n < len; i++) {
		h = &s->hosts[i];
		off = (size_t)n;
		n = snprintf(buf + off, len - off, "; %s ok=%lu fail=%lu "
		    "tempfail=%lu reconnects=%lu", h->name, h->ok, h->fail,
		    h->tempfail, h->reconnects);
		if (n >= 0)
			n += (int)off;
	}
}

const struct checker_ops checker_sql_ops = {
	.name = "sql",
	.kinds = CRED_PASSWORD,
	.cacheable = 1,		/* a remote database: stale-if-error */
	.init = sql_init,
	.start = sql_start,
	.stats = sql_stats,
	.free = sql_free,
};
