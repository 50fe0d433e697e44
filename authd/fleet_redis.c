/*
 * fleet_redis.c -- penalties and limits shared by a fleet through
 * Redis ("state redis" in portcullis.conf), with hiredis's
 * asynchronous API on authd's own libevent loop: authd never waits for
 * Redis.
 *
 * Each question is one small Lua script (atomic: INCR and EXPIRE go
 * together, a limit is checked and counted at once), sent with EVALSHA
 * (EVAL once after a NOSCRIPT).  Every request has a deadline (state
 * ... timeout); a request that misses it, an error or a lost
 * connection is answered from this node's own counters (fleet.c keeps
 * them warm), or refused with fail-closed.  An outage is logged once
 * and counted; the connection is made again with a back-off, and the
 * counters are shared again as soon as Redis answers.
 *
 * What goes to Redis: an address's and an account's failure counts, the
 * addresses that logged in as an account, the sending counts.  Never a
 * password or a hash of one: the repeat hashes stay on the node.
 * hiredis 0.14 (Debian 12) has no TLS: use a Unix socket or a trusted
 * network (portcullis.conf(5)).
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>
#include <openssl/sha.h>

#include "authd.h"
#include "fleet.h"
#include "log.h"

#define KEY_PREFIX		"portcullis:"
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define REDIS_PASSWORD_MAX	512
#define ARGS_MAX		8

enum script_id { S_CHECK, S_FAIL, S_OK, S_LIMIT, S_COUNT };

/* Each returns an array of integers. */
static struct script {
	const char	*text;
	char		 sha[SHA_DIGEST_LENGTH * 2 + 1];
} scripts[S_COUNT] = {
	/* KEYS: account, "known" pair.  -> { failures, known } */
	[S_CHECK] = { "return {tonumber(redis.call('GET',KEYS[1]) or 0),"
	    "redis.call('EXISTS',KEYS[2])}" },
	/*
	 * KEYS: address, account; ARGV: grow the address, count the
	 * account, forget, window.  -> { address's, account's }
	 */
	[S_FAIL] = { "local a,u "
	    "if ARGV[1]=='1' then a=redis.call('INCR',KEYS[1]) "
	    "redis.call('EXPIRE',KEYS[1],ARGV[3]) "
	    "else a=tonumber(redis.call('GET',KEYS[1]) or 0) end "
	    "if ARGV[2]=='1' then u=redis.call('INCR',KEYS[2]) "
	    "if redis.call('TTL',KEYS[2])<0 then "
	    "redis.call('EXPIRE',KEYS[2],ARGV[4]) end "
	    "else u=tonumber(redis.call('GET',KEYS[2]) or 0) end "
	    "return {a,u}" },
	/* KEYS: address, "known" pair; ARGV: known-for, has a user */
	[S_OK] = { "redis.call('DEL',KEYS[1]) "
	    "if ARGV[2]=='1' then "
	    "redis.call('SET',KEYS[2],'1','EX',ARGV[1]) end return {0}" },
	/*
	 * KEYS: the account's count [, the address's]; ARGV: n, max,
	 * window.  -> { 0 counted, or the index of the one over }
	 */
	[S_LIMIT] = { "local n=tonumber(ARGV[1]) "
	    "for i=1,#KEYS do if tonumber(redis.call('GET',KEYS[i]) or 0)+n"
	    ">tonumber(ARGV[2]) then return {i} end end "
	    "for i=1,#KEYS do redis.call('INCRBY',KEYS[i],n) "
	    "if redis.call('TTL',KEYS[i])<0 then "
	    "redis.call('EXPIRE',KEYS[i],ARGV[3]) end end return {0}" },
};

/* One request in flight; outlives its fleet_req if it times out. */
struct call {
	struct fleet_req	*req;		/* NULL once answered */
	struct event		*timer;
	enum script_id		 script;
	int			 nkeys;
	int			 argc;
	char			*argv[ARGS_MAX + 3];
	size_t			 argl[ARGS_MAX + 3];
	int			 retried;	/* EVAL after NOSCRIPT */
};

static struct {
	const struct portcullis_conf *conf;
	char			 where[CONF_STATE_PATH_MAX];
	redisAsyncContext	*ac;
	int			 connected;	/* and authenticated */
	int			 down;		/* an outage was logged */
	int			 backoff_ms;
	struct event		*retry;
	char			 password[REDIS_PASSWORD_MAX];
	int			 generation;
} rs;

static void	redis_connect(void);
static void	call_send(struct call *);

static void
scripts_hash(void)
{
	uint8_t	 md[SHA_DIGEST_LENGTH];

	for (int i = 0; i < S_COUNT; i++) {
		SHA1((const uint8_t *)scripts[i].text,
		    strlen(scripts[i].text), md);
		for (int j = 0; j < SHA_DIGEST_LENGTH; j++)
			snprintf(scripts[i].sha + j * 2, 3, "%02x", md[j]);
	}
}

/* The outage is logged once, and counted; back-off from the bottom. */
static void
redis_outage(const char *why)
{
	rs.connected = 0;
	if (!rs.down) {
		rs.down = 1;
		fleet_counters.state_outages++;
		log_warnx("state: Redis at %s unavailable (%s): using this "
		    "node's own counters%s", rs.where, why,
		    rs.conf->state.fail_closed ? "; fail-closed: logins and "
		    "limited mail get 454 and 451" : "");
	}
}

static void
retry_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	redis_connect();
}

static void
retry_later(void)
{
	struct timeval	 tv;

	if (rs.conf == NULL || rs.conf->state.type != STATE_REDIS)
		return;
	if (rs.backoff_ms == 0)
		rs.backoff_ms = BACKOFF_MIN_MS;
	tv.tv_sec = rs.backoff_ms / 1000;
	tv.tv_usec = (rs.backoff_ms % 1000) * 1000;
	rs.backoff_ms = rs.backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS :
	    rs.backoff_ms * 2;
	if (rs.retry == NULL && (rs.retry = evtimer_new(authd->base,
	    retry_cb, NULL)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(rs.retry, &tv);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	if (ac != rs.ac)
		return;
	rs.ac = NULL;
	redis_outage(status == REDIS_OK ? "disconnected" : ac->errstr[0] !=
	    '\0' ? ac->errstr : "connection lost");
	retry_later();
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	if (ac != rs.ac)
		return;
	if (status != REDIS_OK) {
		/* hiredis frees the context after this callback. */
		rs.ac = NULL;
		redis_outage(ac->errstr[0] != '\0' ? ac->errstr :
		    "cannot connect");
		retry_later();
	}
}

/* The answer to AUTH, or to PING without one: the link is usable. */
static void
on_ready(redisAsyncContext *ac, void *r, void *priv)
{
	redisReply	*reply = r;

	(void)priv;
	if (ac != rs.ac || reply == NULL)
		return;
	if (reply->type == REDIS_REPLY_ERROR) {
		log_warnx("state: Redis at %s refused us: %.*s", rs.where,
		    (int)reply->len, reply->str);
		redis_outage("refused");
		redisAsyncDisconnect(ac);
		return;
	}
	rs.connected = 1;
	rs.backoff_ms = 0;
	if (rs.down) {
		rs.down = 0;
		fleet_counters.state_reconnects++;
		log_info("state: Redis at %s is back: penalties and limits "
		    "are shared again", rs.where);
	} else
		log_info("state: Redis at %s: penalties and limits are "
		    "shared", rs.where);
}

static void
redis_connect(void)
{
	const char	*w = rs.where, *colon;
	char		 host[INET6_ADDRSTRLEN + 2];
	size_t		 len;

	if (rs.ac != NULL)
		return;
	if (strncmp(w, "unix:", 5) == 0)
		rs.ac = redisAsyncConnectUnix(w + 5);
	else {
		colon = strrchr(w, ':');
		len = (size_t)(colon - w);
		if (w[0] == '[') {
			w++;
			len -= 2;
		}
		if (len >= sizeof(host))
			len = sizeof(host) - 1;
		memcpy(host, w, len);
		host[len] = '\0';
		rs.ac = redisAsyncConnect(host, atoi(colon + 1));
	}
	if (rs.ac == NULL || rs.ac->err) {
		redis_outage(rs.ac != NULL ? rs.ac->errstr : "out of memory");
		if (rs.ac != NULL)
			redisAsyncFree(rs.ac);
		rs.ac = NULL;
		retry_later();
		return;
	}
	if (redisLibeventAttach(rs.ac, authd->base) != REDIS_OK)
		fatalx("redisLibeventAttach");
	redisAsyncSetConnectCallback(rs.ac, on_connect);
	redisAsyncSetDisconnectCallback(rs.ac, on_disconnect);
	/* Sent once connected; the answer makes the link usable. */
	if (rs.password[0] != '\0')
		redisAsyncCommand(rs.ac, on_ready, NULL, "AUTH %s",
		    rs.password);
	else
		redisAsyncCommand(rs.ac, on_ready, NULL, "PING");
}

/* The password file's first line; read at each configuration. */
static void
password_read(const char *path)
{
	FILE	*f;
	size_t	 n;

	explicit_bzero(rs.password, sizeof(rs.password));
	if (path[0] == '\0')
		return;
	if ((f = fopen(path, "re")) == NULL) {
		log_warn("state: %s", path);
		return;
	}
	if (fgets(rs.password, sizeof(rs.password), f) == NULL)
		log_warnx("state: %s: empty", path);
	fclose(f);
	n = strcspn(rs.password, "\r\n");
	explicit_bzero(rs.password + n, sizeof(rs.password) - n);
}

void
fleet_redis_configure(const struct portcullis_conf *conf)
{
	int	 same;

	if (scripts[0].sha[0] == '\0')
		scripts_hash();
	same = rs.conf != NULL && rs.conf->state.type == STATE_REDIS &&
	    conf->state.type == STATE_REDIS &&
	    strcmp(rs.where, conf->state.redis) == 0;
	rs.conf = conf;
	password_read(conf->state.password_file);
	if (same)
		return;
	/* Another place, or none: the old link goes. */
	if (rs.ac != NULL) {
		redisAsyncContext	*ac = rs.ac;

		rs.ac = NULL;
		redisAsyncFree(ac);
	}
	if (rs.retry != NULL)
		evtimer_del(rs.retry);
	rs.connected = rs.down = rs.backoff_ms = 0;
	strlcpy(rs.where, conf->state.redis, sizeof(rs.where));
	if (conf->state.type == STATE_REDIS)
		redis_connect();
}

int
fleet_redis_usable(void)
{
	return rs.conf != NULL && rs.conf->state.type == STATE_REDIS &&
	    rs.ac != NULL && rs.connected;
}

static void
call_free(struct call *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c);
}

/* Answered from this node's counters: Redis could not. */
static void
call_local(struct call *c, const char *why)
{
	struct fleet_req	*r = c->req;

	c->req = NULL;
	if (c->timer != NULL)
		evtimer_del(c->timer);
	fleet_counters.state_errors++;
	fleet_counters.state_local++;
	log_debug("state: Redis at %s: %s; answered locally", rs.where, why);
	if (rs.conf->state.fail_closed && r->op != FLEET_OK)
		r->failed = 1;
	r->done(r);
}

static void
call_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct call	*c = arg;

	(void)fd; (void)ev;
	if (c->req == NULL)
		return;
	call_local(c, "timeout");
	/*
	 * A Redis that does not answer is down: start again.  Freed, not
	 * disconnected: a disconnect would wait for the answers that do
	 * not come.  The calls it held are answered NULL, and go.
	 */
	if (rs.ac != NULL) {
		redisAsyncContext	*ac = rs.ac;

		rs.ac = NULL;
		redis_outage("timeout");
		redisAsyncFree(ac);
		retry_later();
	}
}

static long long
reply_int(const redisReply *r, size_t i)
{
	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements ||
	    r->element[i]->type != REDIS_REPLY_INTEGER)
		return -1;
	return r->element[i]->integer;
}

/* Redis's answer replaces the one fleet.c gave from this node's. */
static void
call_answer(struct call *c, const redisReply *reply)
{
	struct fleet_req	*r = c->req;
	long long		 a = reply_int(reply, 0), b = reply_int(reply, 1);

	switch (r->op) {
	case FLEET_CHECK:
		r->account_count = a < 0 ? 0 : (uint32_t)a;
		r->known = b > 0;
		break;
	case FLEET_FAIL:
		r->addr_count = a < 0 ? 0 : (uint32_t)a;
		r->account_count = b < 0 ? 0 : (uint32_t)b;
		break;
	case FLEET_LIMIT:
		/* counted here, refused there: take ours back */
		if (a > 0 && r->over == 0)
			fleet_local_limit_undo(r);
		r->over = a > 0 ? (int)a : 0;
		break;
	case FLEET_OK:
		break;
	}
	r->shared = 1;
	fleet_counters.state_shared++;
}

static void
call_reply(redisAsyncContext *ac, void *rp, void *priv)
{
	struct call		*c = priv;
	struct fleet_req	*r;
	redisReply		*reply = rp;

	(void)ac;
	if (c->req == NULL) {		/* answered already: timed out */
		call_free(c);
		return;
	}
	if (reply == NULL) {
		call_local(c, "connection lost");
		call_free(c);
		return;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		if (!c->retried && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
		    rs.ac != NULL) {
			c->retried = 1;
			call_send(c);
			return;
		}
		log_warnx("state: Redis at %s: %.*s", rs.where,
		    (int)reply->len, reply->str);
		call_local(c, "error");
		call_free(c);
		return;
	}
	call_answer(c, reply);
	r = c->req;
	c->req = NULL;
	call_free(c);
	r->done(r);
}

/* EVALSHA sha nkeys keys... args..., or EVAL script after NOSCRIPT. */
static void
call_send(struct call *c)
{
	const char	*argv[ARGS_MAX + 3];
	size_t		 argl[ARGS_MAX + 3];
	char		 nkeys[8];
	int		 i;

	snprintf(nkeys, sizeof(nkeys), "%d", c->nkeys);
	argv[0] = c->retried ? "EVAL" : "EVALSHA";
	argv[1] = c->retried ? scripts[c->script].text :
	    scripts[c->script].sha;
	argv[2] = nkeys;
	for (i = 0; i < 3; i++)
		argl[i] = strlen(argv[i]);
	for (i = 0; i < c->argc; i++) {
		argv[3 + i] = c->argv[i];
		argl[3 + i] = c->argl[i];
	}
	if (redisAsyncCommandArgv(rs.ac, call_reply, c, 3 + c->argc, argv,
	    argl) != REDIS_OK) {
		call_local(c, "cannot send");
		call_free(c);
	}
}

static void
call_arg(struct call *c, const char *prefix, const char *a, const char *b)
{
	char	*s;
	int	 n;

	if (c->argc == ARGS_MAX)
		fatalx("%s: too many arguments", __func__);
	n = asprintf(&s, "%s%s%s%s", prefix, a, b != NULL ? " " : "",
	    b != NULL ? b : "");
	if (n == -1)
		fatal("asprintf");
	c->argv[c->argc] = s;
	c->argl[c->argc++] = (size_t)n;
}

static void
call_num(struct call *c, long long v)
{
	char	 buf[32];

	snprintf(buf, sizeof(buf), "%lld", v);
	call_arg(c, "", buf, NULL);
}

static const char *
limit_key(enum limit_kind k, int user)
{
	if (k == LIMIT_RECIPIENTS)
		return user ? KEY_PREFIX "lru:" : KEY_PREFIX "lra:";
	return user ? KEY_PREFIX "lmu:" : KEY_PREFIX "lma:";
}

/* The script and its keys and arguments for r. */
static void
call_build(struct call *c, const struct fleet_req *r)
{
	const struct penalty_conf *p = &rs.conf->penalty;

	switch (r->op) {
	case FLEET_CHECK:
		c->script = S_CHECK;
		c->nkeys = 2;
		call_arg(c, KEY_PREFIX "u:", r->user, NULL);
		call_arg(c, KEY_PREFIX "k:", r->user, r->addr);
		break;
	case FLEET_FAIL:
		c->script = S_FAIL;
		c->nkeys = 2;
		call_arg(c, KEY_PREFIX "a:", r->addr, NULL);
		call_arg(c, KEY_PREFIX "u:", r->user, NULL);
		call_num(c, r->grow_addr && r->addr[0] != '\0');
		call_num(c, r->count_account && r->user[0] != '\0');
		call_num(c, p->forget);
		call_num(c, p->account_window);
		break;
	case FLEET_OK:
		c->script = S_OK;
		c->nkeys = 2;
		call_arg(c, KEY_PREFIX "a:", r->addr, NULL);
		call_arg(c, KEY_PREFIX "k:", r->user, r->addr);
		call_num(c, p->known_for);
		call_num(c, r->user[0] != '\0');
		break;
	case FLEET_LIMIT:
		c->script = S_LIMIT;
		c->nkeys = r->addr[0] != '\0' ? 2 : 1;
		call_arg(c, limit_key(r->kind, 1), r->user, NULL);
		if (r->addr[0] != '\0')
			call_arg(c, limit_key(r->kind, 0), r->addr, NULL);
		call_num(c, r->n);
		call_num(c, r->max);
		call_num(c, r->window);
		break;
	}
}

void
fleet_redis_submit(struct fleet_req *r)
{
	struct call	*c;
	struct timeval	 tv;
	int		 ms = rs.conf->state.timeout;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->req = r;
	call_build(c, r);
	if ((c->timer = evtimer_new(authd->base, call_timeout, c)) == NULL)
		fatalx("evtimer_new");
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	call_send(c);
}

/* authctl penalty clear: the address's and the account's counts. */
void
fleet_redis_clear(const char *what)
{
	if (!fleet_redis_usable() || what[0] == '\0')
		return;
	redisAsyncCommand(rs.ac, NULL, NULL, "DEL %s%s %s%s",
	    KEY_PREFIX "a:", what, KEY_PREFIX "u:", what);
}
