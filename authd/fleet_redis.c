/*
 * fleet_redis.c -- penalties and limits shared by a fleet through
 * Redis ("state redis" in portcullis.conf), with hiredis's
 * asynchronous API on authd's own libevent loop: authd never waits for
 * Redis.
 *
 * A question that changes counts is one small Lua script (atomic: INCR
 * and EXPIRE go together, a limit is checked and counted at once),
 * sent with EVALSHA (EVAL once after a NOSCRIPT).  A login asks Redis
 * nothing before its password is checked unless its account is known
 * to be locked: the node whose failure locks an account publishes it
 * (and enters it in a locked set, read by a node when it subscribes),
 * every node remembers it until the lock ends, and only then asks
 * (MGET: the count, and whether this address logged in before).  A
 * login's own news (DEL the address, SET the known pair) is sent
 * without waiting for the answer, in batches (news_add()).
 *
 * Every request has a deadline (state ... timeout); one that misses
 * it, an error or a lost connection is answered from this node's own
 * counters (fleet.c keeps them warm), or refused with fail-closed.  An
 * outage is logged once and counted; the connection is made again
 * with a back-off, and the counters are shared again as soon as Redis
 * answers.
 *
 * What goes to Redis: an address's and an account's failure counts, the
 * addresses that logged in as an account, the locked accounts, the
 * sending counts, an account's refusals by its limit and its lock for
 * them (limit ... lock-after).  Never a password or a hash of one: the repeat
 * hashes stay on the node.  hiredis 0.14 (Debian 12) has no TLS: use a
 * Unix socket or a trusted network (portcullis.conf(5)).
 */

#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <time.h>
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
#define LOCK_CHANNEL		KEY_PREFIX "locks"
#define LOCKED_SET		KEY_PREFIX "locked"
#define BACKOFF_MIN_MS		100
#define BACKOFF_MAX_MS		5000
#define ARGS_MAX		16
#define ADMIN_TIMEOUT_MS	5000	/* authctl's list and clear */
#define NEWS_MAX		64	/* logins' news held for one write */
#define NEWS_MS			5

enum script_id { S_FAIL, S_LIMIT, S_LIST, S_CLEAR, S_COUNT,
    S_NONE = S_COUNT };

/* Each returns an array of integers; sha is made at the first use. */
static struct script {
	const char	*text;
	char		 sha[SHA_DIGEST_LENGTH * 2 + 1];
} scripts[S_COUNT] = {
	/*
	 * KEYS: address, account, the locked set; ARGV: grow the address,
	 * count the account, forget, window, the lock's count, the user.
	 * -> { address's, account's, the account's seconds to live }.
	 * The failure that locks an account enters it in the locked set,
	 * for the nodes that start (or subscribe) later.
	 */
	[S_FAIL] = { .text = "local a,u "
	    "if ARGV[1]=='1' then a=redis.call('INCR',KEYS[1]) "
	    "redis.call('EXPIRE',KEYS[1],ARGV[3]) "
	    "else a=tonumber(redis.call('GET',KEYS[1]) or 0) end "
	    "if ARGV[2]=='1' then u=redis.call('INCR',KEYS[2]) "
	    "if redis.call('TTL',KEYS[2])<0 then "
	    "redis.call('EXPIRE',KEYS[2],ARGV[4]) end "
	    "else u=tonumber(redis.call('GET',KEYS[2]) or 0) end "
	    "local t=redis.call('TTL',KEYS[2]) "
	    "if ARGV[2]=='1' and tonumber(ARGV[5])>0 and "
	    "u==tonumber(ARGV[5]) then redis.call('ZADD',KEYS[3],"
	    "tonumber(redis.call('TIME')[1])+t,ARGV[6]) end "
	    "return {a,u,t}" },
	/*
	 * KEYS: the account's count, its refusals, its send lock, the
	 * locked set [, the address's count]; ARGV: n, the account's max
	 * and window, the address's (a max of 0: no such limit), lock
	 * after that many refusals (0: never), for so many seconds, the
	 * user.  -> { 0 counted, 1 the account over, 2 the address;
	 * the account's refusals }.  The refusal that locks the account
	 * sets its send lock and enters it in the locked set.
	 */
	[S_LIMIT] = { .text = "local n=tonumber(ARGV[1]) "
	    "local um=tonumber(ARGV[2]) local am=tonumber(ARGV[4]) "
	    "local a=#KEYS>4 and am>0 local o=0 "
	    "if um>0 and tonumber(redis.call('GET',KEYS[1]) or 0)+n>um "
	    "then o=1 elseif a and "
	    "tonumber(redis.call('GET',KEYS[5]) or 0)+n>am then o=2 end "
	    "if o==0 then "
	    "if um>0 then redis.call('INCRBY',KEYS[1],n) "
	    "if redis.call('TTL',KEYS[1])<0 then "
	    "redis.call('EXPIRE',KEYS[1],ARGV[3]) end end "
	    "if a then redis.call('INCRBY',KEYS[5],n) "
	    "if redis.call('TTL',KEYS[5])<0 then "
	    "redis.call('EXPIRE',KEYS[5],ARGV[5]) end end "
	    "return {0,0} end "
	    "local r=0 "
	    "if o==1 and tonumber(ARGV[6])>0 then "
	    "r=redis.call('INCR',KEYS[2]) "
	    "if redis.call('TTL',KEYS[2])<0 then "
	    "redis.call('EXPIRE',KEYS[2],ARGV[3]) end "
	    "if r==tonumber(ARGV[6]) then "
	    "redis.call('SET',KEYS[3],1,'EX',ARGV[7]) "
	    "redis.call('ZADD',KEYS[4],'GT',tonumber(redis.call('TIME')[1])"
	    "+tonumber(ARGV[7]),ARGV[8]) end end "
	    "return {o,r}" },
	/*
	 * authctl penalty list.  ARGV: the prefix, the address or user
	 * ("" everything), the most rows.  -> { kind, name, count, seconds
	 * to live } per key: 1 an address's failures, 2 an account's, 3
	 * an address known for an account ("user address"), 5 an account
	 * locked for going on over its sending limit.  A name is
	 * looked up directly; everything is a SCAN, run in the script, so
	 * it holds Redis for as long as its keys take to walk.
	 */
	[S_LIST] = { .text = "local P,w,max=ARGV[1],ARGV[2],tonumber(ARGV[3]) "
	    "local out,n={},0 "
	    "local function add(kind,k) if n>=max then return end "
	    "local v=redis.call('GET',k) if not v then return end n=n+1 "
	    "out[#out+1]=kind out[#out+1]=string.sub(k,#P+3) "
	    "out[#out+1]=tonumber(v) or 0 out[#out+1]=redis.call('TTL',k) end "
	    "local function scan(kind,pat) local cur='0' repeat "
	    "local r=redis.call('SCAN',cur,'MATCH',pat,'COUNT',500) cur=r[1] "
	    "for _,k in ipairs(r[2]) do add(kind,k) end "
	    "until cur=='0' or n>=max end "
	    "if w=='' then scan(1,P..'a:*') scan(2,P..'u:*') scan(3,P..'k:*') "
	    "scan(5,P..'h:*') else add(1,P..'a:'..w) add(2,P..'u:'..w) "
	    "add(5,P..'h:'..w) end return out" },
	/*
	 * authctl penalty clear.  ARGV: the prefix, the address or user
	 * ("" everything: failures, known addresses, locks by the sending
	 * limit and their refusals, and the locked set; never the sending
	 * counts).  -> { keys deleted }
	 */
	[S_CLEAR] = { .text = "local P,w=ARGV[1],ARGV[2] local n=0 "
	    "local function scan(pat) local cur='0' repeat "
	    "local r=redis.call('SCAN',cur,'MATCH',pat,'COUNT',500) cur=r[1] "
	    "for _,k in ipairs(r[2]) do n=n+redis.call('DEL',k) end "
	    "until cur=='0' end "
	    "if w=='' then scan(P..'a:*') scan(P..'u:*') scan(P..'k:*') "
	    "scan(P..'h:*') scan(P..'lx:*') redis.call('DEL',P..'locked') "
	    "else n=redis.call('DEL',P..'a:'..w,P..'u:'..w,P..'h:'..w,"
	    "P..'lx:'..w) "
	    "redis.call('ZREM',P..'locked',w) end return {n}" },
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
	/*
	 * authctl's questions (list, clear): no fleet_req, no fallback.
	 * admin_arg marks one; admin is NULL once it has been answered.
	 */
	void			(*admin)(const redisReply *, void *);
	void			*admin_arg;
};

static struct {
	const struct portcullis_conf *conf;
	int			 redis;		/* the last conf said redis */
	char			 where[CONF_STATE_PATH_MAX];
	redisAsyncContext	*ac;
	int			 connected;	/* and authenticated */
	int			 down;		/* an outage was logged */
	int			 backoff_ms;
	struct event		*retry;
	char			 password[CONF_SECRET_MAX];
	/* the nodes' news of locked accounts (SUBSCRIBE needs its own) */
	redisAsyncContext	*sub;
	int			 subscribed;
} rs;

/*
 * A login's news (DEL, SET) waits a few milliseconds for other logins',
 * so that under load authd and Redis each read and write them in
 * batches: one write and one read for dozens of logins, where each
 * login used to wake both for a write and a read of its own (fleet_bench:
 * the CPU of a login with Redis).  Whatever is sent after them sends
 * them first, so that the connection carries events in their order.
 */
static struct {
	char			*cmd[NEWS_MAX];
	int			 len[NEWS_MAX];
	int			 n;
	struct event		*ev;
} news;

static void	redis_connect(void);
static void	call_send(struct call *);
static void	auth_send(redisAsyncContext *, redisCallbackFn *);
static void	news_flush(void);

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
static void	sub_gone(void);

static void
redis_outage(const char *why)
{
	rs.connected = 0;
	sub_gone();
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

static void	sub_connect(void);

static void
sub_gone(void)
{
	redisAsyncContext	*ac = rs.sub;

	rs.sub = NULL;
	rs.subscribed = 0;
	if (ac != NULL)
		redisAsyncFree(ac);
}

static void
sub_on_disconnect(const redisAsyncContext *ac, int status)
{
	(void)status;
	if (ac != rs.sub)
		return;
	/* Until it is back, every login asks Redis itself. */
	rs.sub = NULL;
	rs.subscribed = 0;
}

static void
sub_on_connect(const redisAsyncContext *ac, int status)
{
	if (ac == rs.sub && status != REDIS_OK) {
		rs.sub = NULL;
		rs.subscribed = 0;
	}
}

/* The accounts locked now, as the locked set has them; then informed. */
static void
locked_loaded(redisAsyncContext *ac, void *rp, void *priv)
{
	redisReply	*r = rp;
	char		 user[CONF_AUTH_NAME_MAX];
	const char	*errstr;
	long long	 until;

	(void)priv;
	if (ac != rs.ac || r == NULL || r->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_STRING ||
		    r->element[i + 1]->type != REDIS_REPLY_STRING ||
		    r->element[i]->len >= sizeof(user))
			continue;
		memcpy(user, r->element[i]->str, r->element[i]->len);
		user[r->element[i]->len] = '\0';
		until = strtonum(r->element[i + 1]->str, 1, INT64_MAX, &errstr);
		if (errstr == NULL)
			fleet_lock_note(user, (time_t)until);
	}
	rs.subscribed = rs.sub != NULL;
}

/*
 * Subscribed: what was locked before is read once, and the set loses
 * what has expired.  Until then every login asks Redis.
 */
static void
locked_load(void)
{
	long long	 now = (long long)time(NULL);

	if (rs.ac == NULL || !rs.connected)
		return;
	redisAsyncCommand(rs.ac, NULL, NULL, "ZREMRANGEBYSCORE %s -inf %lld",
	    LOCKED_SET, now);
	redisAsyncCommand(rs.ac, locked_loaded, NULL,
	    "ZRANGEBYSCORE %s %lld +inf WITHSCORES", LOCKED_SET, now);
}

/*
 * "L UNTIL USER": another node found USER locked until UNTIL (epoch);
 * "U USER": its penalties were cleared.
 */
static void
sub_message(redisAsyncContext *ac, void *rp, void *priv)
{
	redisReply	*r = rp, *kind, *msg;
	char		 user[CONF_AUTH_NAME_MAX];
	int64_t		 until;

	(void)priv;
	if (ac != rs.sub || r == NULL || r->type != REDIS_REPLY_ARRAY ||
	    r->elements != 3)
		return;
	kind = r->element[0];
	msg = r->element[2];
	if (kind->type != REDIS_REPLY_STRING)
		return;
	if (strcmp(kind->str, "subscribe") == 0) {
		locked_load();
		return;
	}
	if (strcmp(kind->str, "message") != 0 ||
	    msg->type != REDIS_REPLY_STRING)
		return;
	switch (lockmsg_parse(msg->str, msg->len, user, sizeof(user),
	    &until)) {
	case 'L':
		fleet_lock_note(user, (time_t)until);
		break;
	case 'U':
		fleet_lock_drop(user);
		break;
	default:
		log_warnx("state: Redis at %s: a malformed message on %s",
		    rs.where, LOCK_CHANNEL);
	}
}

static void
redis_publish(const char *fmt, const char *user, long long until)
{
	char	 msg[CONF_AUTH_NAME_MAX + 32];

	if (rs.ac == NULL || !rs.connected)
		return;
	if (fmt[0] == 'L')
		snprintf(msg, sizeof(msg), "L %lld %s", until, user);
	else
		snprintf(msg, sizeof(msg), "U %s", user);
	news_flush();
	redisAsyncCommand(rs.ac, NULL, NULL, "PUBLISH %s %s", LOCK_CHANNEL,
	    msg);
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
	sub_connect();
	if (rs.down) {
		rs.down = 0;
		fleet_counters.state_reconnects++;
		log_info("state: Redis at %s is back: penalties and limits "
		    "are shared again", rs.where);
	} else
		log_info("state: Redis at %s: penalties and limits are "
		    "shared", rs.where);
}

/* A new context for the configured place; NULL if none could be made. */
static redisAsyncContext *
context_new(void)
{
	redisAsyncContext	*ac;
	const char		*w = rs.where, *colon;
	char			 host[INET6_ADDRSTRLEN + 2];
	size_t			 len;

	if (strncmp(w, "unix:", 5) == 0)
		ac = redisAsyncConnectUnix(w + 5);
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
		ac = redisAsyncConnect(host, atoi(colon + 1));
	}
	if (ac != NULL && ac->err) {
		redisAsyncFree(ac);
		return NULL;
	}
	if (ac != NULL && redisLibeventAttach(ac, authd->base) != REDIS_OK)
		fatalx("redisLibeventAttach");
	return ac;
}

static void
sub_connect(void)
{
	if (rs.sub != NULL)
		return;
	if ((rs.sub = context_new()) == NULL)
		return;		/* logins ask Redis meanwhile */
	redisAsyncSetConnectCallback(rs.sub, sub_on_connect);
	redisAsyncSetDisconnectCallback(rs.sub, sub_on_disconnect);
	if (rs.password[0] != '\0')
		auth_send(rs.sub, NULL);
	redisAsyncCommand(rs.sub, sub_message, NULL, "SUBSCRIBE %s",
	    LOCK_CHANNEL);
}

static void
redis_connect(void)
{
	if (rs.ac != NULL)
		return;
	if ((rs.ac = context_new()) == NULL) {
		redis_outage("cannot connect");
		retry_later();
		return;
	}
	redisAsyncSetConnectCallback(rs.ac, on_connect);
	redisAsyncSetDisconnectCallback(rs.ac, on_disconnect);
	/* Sent once connected; the answer makes the link usable. */
	if (rs.password[0] != '\0')
		auth_send(rs.ac, on_ready);
	else
		redisAsyncCommand(rs.ac, on_ready, NULL, "PING");
}

/*
 * AUTH password, formatted here so that the one copy hiredis's
 * formatting makes is wiped.  hiredis 0.14 still copies the command
 * into its output buffer and frees that unwiped once it is written
 * (hiredis 1.x's allocator hooks could wipe it); authd dumps no core.
 */
static void
auth_send(redisAsyncContext *ac, redisCallbackFn *fn)
{
	const char	*argv[2] = { "AUTH", rs.password };
	size_t		 argl[2] = { 4, strlen(rs.password) };
	char		*cmd;
	int		 len;

	if ((len = redisFormatCommandArgv(&cmd, 2, argv, argl)) < 0)
		fatalx("%s: out of memory", __func__);
	(void)redisAsyncFormattedCommand(ac, fn, NULL, cmd, (size_t)len);
	explicit_bzero(cmd, (size_t)len);
	redisFreeCommand(cmd);
}

void
fleet_redis_configure(const struct portcullis_conf *conf)
{
	int	 same;

	if (scripts[0].sha[0] == '\0')
		scripts_hash();
	/*
	 * Not rs.conf: a reload has freed the configuration it points to
	 * (chain_retire_conf) by the time the new one comes here.
	 */
	same = rs.redis && conf->state.type == STATE_REDIS &&
	    strcmp(rs.where, conf->state.redis) == 0;
	rs.conf = conf;
	rs.redis = conf->state.type == STATE_REDIS;
	/* master read the password file (master/secret.c). */
	explicit_bzero(rs.password, sizeof(rs.password));
	if (strlcpy(rs.password, conf->state.password, sizeof(rs.password)) >=
	    sizeof(rs.password))
		fatalx("%s: Redis's password does not fit", __func__);
	if (same)
		return;
	/* Another place, or none: the old link goes. */
	if (rs.ac != NULL) {
		redisAsyncContext	*ac = rs.ac;

		rs.ac = NULL;
		redisAsyncFree(ac);
	}
	sub_gone();
	if (rs.retry != NULL)
		evtimer_del(rs.retry);
	rs.connected = rs.down = rs.backoff_ms = 0;
	strlcpy(rs.where, conf->state.redis, sizeof(rs.where));
	if (conf->state.type == STATE_REDIS)
		redis_connect();
}

/* Would this node hear of another's lock?  Else it asks every time. */
int
fleet_redis_informed(void)
{
	return rs.subscribed;
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

/*
 * An admin call's answer (NULL: none, in time), once; the call itself
 * is freed when hiredis is done with it (admin_reply).
 */
static void
admin_answer(struct call *c, const redisReply *reply)
{
	void	(*fn)(const redisReply *, void *) = c->admin;

	c->admin = NULL;
	if (c->timer != NULL)
		evtimer_del(c->timer);
	if (fn != NULL)
		fn(reply, c->admin_arg);
}

static void
admin_reply(struct call *c, const redisReply *reply)
{
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
	    c->admin != NULL && !c->retried &&
	    strncmp(reply->str, "NOSCRIPT", 8) == 0 && rs.ac != NULL) {
		c->retried = 1;
		call_send(c);
		return;
	}
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
		log_warnx("state: Redis at %s: %.*s", rs.where,
		    (int)reply->len, reply->str);
		reply = NULL;
	}
	admin_answer(c, reply);
	call_free(c);
}

static void
call_timeout(evutil_socket_t fd, short ev, void *arg)
{
	struct call	*c = arg;

	(void)fd; (void)ev;
	if (c->admin != NULL) {
		admin_answer(c, NULL);
		return;
	}
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

/* Element i of an array: an integer, or a number in a string (MGET). */
static long long
reply_int(const redisReply *r, size_t i)
{
	const redisReply	*e;
	const char		*errstr;
	char			 buf[32];
	long long		 v;

	if (r->type != REDIS_REPLY_ARRAY || i >= r->elements)
		return -1;
	e = r->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return e->integer;
	if (e->type == REDIS_REPLY_NIL)
		return 0;
	if (e->type != REDIS_REPLY_STRING || e->len >= sizeof(buf))
		return -1;
	memcpy(buf, e->str, e->len);
	buf[e->len] = '\0';
	v = strtonum(buf, 0, UINT32_MAX, &errstr);
	return errstr != NULL ? -1 : v;
}

/*
 * The account's shared count reached the lock: remember it, and the
 * node whose failure locked it tells the others.
 */
static void
fail_lock_news(const struct fleet_req *r, long long ttl)
{
	const struct penalty_conf *p = &rs.conf->penalty;
	long long		 until;

	if (p->account_max <= 0 || r->user[0] == '\0' ||
	    r->account_count < (uint32_t)p->account_max)
		return;
	until = (long long)time(NULL) + (ttl > 0 ? ttl : p->account_window);
	fleet_lock_note(r->user, (time_t)until);
	if (r->count_account && r->account_count == (uint32_t)p->account_max)
		redis_publish("L", r->user, until);
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
		/* this node's own lock stands, made in an outage */
		r->hard = r->hard || reply_int(reply, 2) > 0;
		break;
	case FLEET_FAIL:
		r->addr_count = a < 0 ? 0 : (uint32_t)a;
		r->account_count = b < 0 ? 0 : (uint32_t)b;
		fail_lock_news(r, reply_int(reply, 2));
		break;
	case FLEET_LIMIT:
		/* counted here, refused there: take ours back */
		if (a > 0 && r->over == 0)
			fleet_local_limit_undo(r);
		r->over = a > 0 ? (int)a : 0;
		r->refusals = b < 0 ? 0 : (uint32_t)b;
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
	if (c->admin_arg != NULL) {
		admin_reply(c, reply);
		return;
	}
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

	int		 head = 3;

	news_flush();
	snprintf(nkeys, sizeof(nkeys), "%d", c->nkeys);
	argv[0] = c->retried ? "EVAL" : "EVALSHA";
	if (c->script == S_NONE) {
		argv[0] = "MGET";
		head = 1;
	} else {
		argv[1] = c->retried ? scripts[c->script].text :
		    scripts[c->script].sha;
		argv[2] = nkeys;
	}
	for (i = 0; i < head; i++)
		argl[i] = strlen(argv[i]);
	for (i = 0; i < c->argc; i++) {
		argv[head + i] = c->argv[i];
		argl[head + i] = c->argl[i];
	}
	if (redisAsyncCommandArgv(rs.ac, call_reply, c, head + c->argc, argv,
	    argl) != REDIS_OK) {
		if (c->admin_arg != NULL)
			admin_answer(c, NULL);
		else
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
		c->script = S_NONE;	/* MGET account known sendlock */
		c->nkeys = 3;
		call_arg(c, KEY_PREFIX "u:", r->user, NULL);
		call_arg(c, KEY_PREFIX "k:", r->user, r->addr);
		call_arg(c, KEY_PREFIX "h:", r->user, NULL);
		break;
	case FLEET_FAIL:
		c->script = S_FAIL;
		c->nkeys = 3;
		call_arg(c, KEY_PREFIX "a:", r->addr, NULL);
		call_arg(c, KEY_PREFIX "u:", r->user, NULL);
		call_arg(c, LOCKED_SET, "", NULL);
		call_num(c, r->grow_addr && r->addr[0] != '\0');
		call_num(c, r->count_account && r->user[0] != '\0');
		call_num(c, p->forget);
		call_num(c, p->account_window);
		call_num(c, p->account_max);
		call_arg(c, "", r->user, NULL);
		break;
	case FLEET_OK:
		fatalx("%s: FLEET_OK goes by redis_ok()", __func__);
	case FLEET_LIMIT:
		c->script = S_LIMIT;
		c->nkeys = r->addr[0] != '\0' ? 5 : 4;
		call_arg(c, limit_key(r->kind, 1), r->user, NULL);
		call_arg(c, KEY_PREFIX "lx:", r->user, NULL);
		call_arg(c, KEY_PREFIX "h:", r->user, NULL);
		call_arg(c, LOCKED_SET, "", NULL);
		if (r->addr[0] != '\0')
			call_arg(c, limit_key(r->kind, 0), r->addr, NULL);
		call_num(c, r->n);
		call_num(c, r->max);
		call_num(c, r->window);
		call_num(c, r->addr_max);
		call_num(c, r->addr_window);
		call_num(c, r->lock_after);
		call_num(c, r->lock_for);
		call_arg(c, "", r->user, NULL);
		break;
	}
}

/* Send the news held; dropped if Redis is away (the node has them). */
static void
news_flush(void)
{
	int	 i;

	if (news.n == 0)
		return;
	evtimer_del(news.ev);
	for (i = 0; i < news.n; i++) {
		if (fleet_redis_usable())
			(void)redisAsyncFormattedCommand(rs.ac, NULL, NULL,
			    news.cmd[i], (size_t)news.len[i]);
		redisFreeCommand(news.cmd[i]);
	}
	news.n = 0;
}

static void
news_due(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	news_flush();
}

/* cmd, formatted by hiredis (len -1: it could not), is held. */
static void
news_add(char *cmd, int len)
{
	struct timeval	 tv = { 0, NEWS_MS * 1000 };

	if (len < 0)
		return;
	if (news.ev == NULL &&
	    (news.ev = evtimer_new(authd->base, news_due, NULL)) == NULL)
		fatalx("evtimer_new");
	news.cmd[news.n] = cmd;
	news.len[news.n] = len;
	if (++news.n == NEWS_MAX)
		news_flush();
	else if (news.n == 1)
		evtimer_add(news.ev, &tv);
}

/*
 * A login: the address's failures go, the address is known for the
 * account.  Nobody waits for it: no deadline, no answer read, and it
 * goes with the next batch of news.
 */
static void
redis_ok(struct fleet_req *r)
{
	char	 pair[CONF_AUTH_NAME_MAX + 80], *cmd;
	int	 len;

	len = redisFormatCommand(&cmd, "DEL %s%s", KEY_PREFIX "a:", r->addr);
	news_add(cmd, len);
	if (r->user[0] != '\0') {
		snprintf(pair, sizeof(pair), "%s %s", r->user, r->addr);
		len = redisFormatCommand(&cmd, "SET %s%s 1 EX %d",
		    KEY_PREFIX "k:", pair, rs.conf->penalty.known_for);
		news_add(cmd, len);
	}
	r->shared = 1;
	fleet_counters.state_shared++;
	r->done(r);
}

void
fleet_redis_submit(struct fleet_req *r)
{
	struct call	*c;
	struct timeval	 tv;
	int		 ms = rs.conf->state.timeout;

	if (r->op == FLEET_OK) {
		redis_ok(r);
		return;
	}
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

/* authctl's question to Redis, with a deadline; 0 sent, -1 cannot. */
static int
admin_call(enum script_id script, const char *what, uint32_t max,
    void (*fn)(const redisReply *, void *), void *arg)
{
	struct call	*c;
	struct timeval	 tv = { ADMIN_TIMEOUT_MS / 1000,
			    (ADMIN_TIMEOUT_MS % 1000) * 1000 };

	if (!fleet_redis_usable())
		return -1;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->script = script;
	c->admin = fn;
	c->admin_arg = arg;
	call_arg(c, "", KEY_PREFIX, NULL);
	call_arg(c, "", what, NULL);
	if (script == S_LIST)
		call_num(c, max);
	if ((c->timer = evtimer_new(authd->base, call_timeout, c)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(c->timer, &tv);
	call_send(c);
	return 0;
}

/* Is there a shared state (reachable now or not)? */
int
fleet_redis_configured(void)
{
	return rs.redis;
}

struct admin_list {
	void	(*row)(const struct ctl_penalty *, void *);
	void	(*done)(void *, int);
	void	*arg;
};

static void
list_answered(const redisReply *reply, void *arg)
{
	struct admin_list	*al = arg;
	struct ctl_penalty	 p;
	const redisReply	*name;
	const struct penalty_conf *pc = &rs.conf->penalty;
	long long		 kind, count, ttl;
	time_t			 now = time(NULL);

	for (size_t i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
	    i + 3 < reply->elements; i += 4) {
		kind = reply_int(reply, i);
		count = reply_int(reply, i + 2);
		ttl = reply->element[i + 3]->type == REDIS_REPLY_INTEGER ?
		    reply->element[i + 3]->integer : -1;
		name = reply->element[i + 1];
		if (kind < PENALTY_KIND_ADDRESS || kind > PENALTY_KIND_SENDING ||
		    kind == PENALTY_KIND_REPEATS || count < 0 ||
		    name->type != REDIS_REPLY_STRING)
			continue;
		memset(&p, 0, sizeof(p));
		p.where = PENALTY_WHERE_SHARED;
		p.kind = (uint32_t)kind;
		p.count = (uint32_t)count;
		p.expires = ttl > 0 ? (int64_t)(now + ttl) : 0;
		if ((size_t)name->len >= sizeof(p.what))
			continue;
		memcpy(p.what, name->str, name->len);
		if (kind == PENALTY_KIND_ADDRESS)
			p.delay_ms = fleet_delay(rs.conf, p.count + 1);
		if (kind == PENALTY_KIND_ACCOUNT)
			p.locked = pc->account_max > 0 &&
			    p.count >= (uint32_t)pc->account_max;
		if (kind == PENALTY_KIND_SENDING)
			p.locked = 1;
		al->row(&p, al->arg);
	}
	al->done(al->arg, reply != NULL);
	free(al);
}

/*
 * authctl penalty list: the shared penalties, rows to row(), then
 * done(arg, 1), or done(arg, 0) if Redis did not answer.  -1 (and no
 * call) if it cannot be asked now.
 */
int
fleet_redis_list(const char *what, uint32_t max,
    void (*row)(const struct ctl_penalty *, void *),
    void (*done)(void *, int), void *arg)
{
	struct admin_list	*al;

	if ((al = calloc(1, sizeof(*al))) == NULL)
		fatal("calloc");
	al->row = row;
	al->done = done;
	al->arg = arg;
	if (admin_call(S_LIST, what, max, list_answered, al) == -1) {
		free(al);
		return -1;
	}
	return 0;
}

struct admin_clear {
	void	(*done)(void *, long long);
	void	*arg;
	char	 what[CONF_AUTH_NAME_MAX + 64];
};

static void
clear_answered(const redisReply *reply, void *arg)
{
	struct admin_clear	*ac = arg;
	long long		 n = reply != NULL ? reply_int(reply, 0) : -1;

	/* The other nodes forget the lock they were told of. */
	if (n >= 0 && ac->what[0] != '\0')
		redis_publish("U", ac->what, 0);
	ac->done(ac->arg, n);
	free(ac);
}

/*
 * authctl penalty clear: the address's and the account's counts in
 * Redis (what "" everything: counts, known addresses, locked set), then
 * done(arg, keys deleted), or done(arg, -1) if Redis did not answer.
 * -1 (and no call) if it cannot be asked now.
 */
int
fleet_redis_clear(const char *what, void (*done)(void *, long long),
    void *arg)
{
	struct admin_clear	*ac;

	if ((ac = calloc(1, sizeof(*ac))) == NULL)
		fatal("calloc");
	ac->done = done;
	ac->arg = arg;
	strlcpy(ac->what, what, sizeof(ac->what));
	if (admin_call(S_CLEAR, what, 0, clear_answered, ac) == -1) {
		free(ac);
		return -1;
	}
	return 0;
}

/* This node's refusal locked user: the others hear it. */
void
fleet_redis_lock_news(const char *user, time_t until)
{
	if (fleet_redis_usable())
		redis_publish("L", user, (long long)until);
}
