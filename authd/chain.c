/*
 * chain.c -- the ordered chain of credential checkers.
 *
 * Twisted's CascadingChecker, grown up: a credential is offered to
 * each checker that verifies its kind, in the configured order, until
 * one says ok.  fail means "wrong or unknown": the next one is asked,
 * or the chain stops there if that checker says on-fail stop.
 * tempfail means "cannot tell now" (a backend down): likewise, and if
 * nobody says ok the answer is tempfail, so the client hears 454 and
 * tries again, instead of 535 and a wrong conclusion.
 *
 * Local checks run on the hash pool; remote ones (oauth) run on the
 * event loop and call back; between two checks the attempt lives on
 * the event loop.  One audit line per attempt says who, how, which
 * checker, the result and the time it took; never the secret.
 *
 * When an oauth checker has decided, the cache (if one is configured)
 * learns its verdict.  A cache entry that expired not long ago may
 * still answer for a provider that cannot be reached (stale-if-error):
 * the cache marks it in the attempt, and the provider's tempfail turns
 * into that answer.
 */

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "chain.h"
#include "hashpool.h"
#include "log.h"
#include "store.h"
#include "util.h"

static struct checker	 checkers[CONF_CHECKERS_MAX];
static int		 ncheckers;
static struct checker	*cache;		/* in checkers[], or NULL */
static unsigned int	 inflight;
static struct portcullis_conf *retired[16];	/* wait for inflight 0 */
static int		 nretired;

/*
 * A reload replaces the configuration while checks may still run on
 * the pool with pointers into the old one: it is freed only once no
 * check is in flight.
 */
void
chain_retire_conf(struct portcullis_conf *conf)
{
	if (inflight == 0) {
		config_free(conf);
		return;
	}
	if (nretired == (int)(sizeof(retired) / sizeof(retired[0]))) {
		/* A reload storm: keeping it is safer than freeing it. */
		log_warnx("chain: too many reloads in flight, one old "
		    "configuration is not freed");
		return;
	}
	retired[nretired++] = conf;
}

static void
retired_free(void)
{
	while (inflight == 0 && nretired > 0)
		config_free(retired[--nretired]);
}

static void	chain_step(struct auth_ctx *);

static struct {
	char		 checker[CONF_NAME_MAX];
	unsigned long	 count[4];
} stats[CONF_CHECKERS_MAX + 1];

void
authd_stats_count(const char *checker, int result)
{
	int	 i;

	if (result < AUTH_OK || result > AUTH_TEMPFAIL)
		return;
	if (checker == NULL)
		checker = "none";
	for (i = 0; i < CONF_CHECKERS_MAX && stats[i].checker[0] != '\0';
	    i++)
		if (strcmp(stats[i].checker, checker) == 0)
			break;
	if (stats[i].checker[0] == '\0')
		strlcpy(stats[i].checker, checker, sizeof(stats[i].checker));
	stats[i].count[result]++;
}


uint32_t
chain_mechanisms(void)
{
	uint32_t	 m = 0;

	for (int i = 0; i < ncheckers; i++)
		m |= checkers[i].mechanisms;
	return m;
}

/*
 * One LMDB environment is opened once per process, whatever number of
 * checkers use it (an lmdb checker and the cache may share one): POSIX
 * locks are per process, and closing a second handle would drop the
 * first one's.  They stay open for good; a reload that drops a checker
 * leaves its environment open, which costs a descriptor and a mapping.
 */
struct store *
chain_store(const char *path)
{
	static struct {
		char		 path[PATH_MAX];
		struct store	*st;
	} stores[CONF_CHECKERS_MAX * 2];
	static int	 nstores;
	char		 err[256];
	int		 i;

	for (i = 0; i < nstores; i++)
		if (strcmp(stores[i].path, path) == 0) {
			if (stores[i].st != NULL)
				return stores[i].st;
			break;
		}
	if (i == nstores) {
		if (nstores == (int)(sizeof(stores) / sizeof(stores[0]))) {
			log_warnx("%s: too many stores", path);
			return NULL;
		}
		strlcpy(stores[i].path, path, sizeof(stores[i].path));
		nstores++;
	}
	/* Retried at the next reload when it failed. */
	if ((stores[i].st = store_open(path, STORE_CREATE, err,
	    sizeof(err))) == NULL)
		log_warnx("%s", err);
	return stores[i].st;
}

static void
priv_unref(struct checker_priv *p)
{
	if (p != NULL && --p->refs == 0)
		p->free(p);
}

const struct checker *
chain_checkers(int *n)
{
	*n = ncheckers;
	return checkers;
}

int
chain_configure(struct portcullis_conf *conf)
{
	struct checker_conf	*cc;
	struct checker		 c;
	int			 n = 0;

	/* A check in flight holds its own reference to what it uses. */
	for (int i = 0; i < ncheckers; i++)
		priv_unref(checkers[i].priv);
	ncheckers = 0;
	cache = NULL;
	TAILQ_FOREACH(cc, &conf->checkers, entry) {
		memset(&c, 0, sizeof(c));
		c.conf = cc;
		c.index = n;
		switch (cc->type) {
		case CHECKER_LMDB:
			if (checker_lmdb_init(&c) == -1)
				return -1;
			break;
		case CHECKER_STATIC:
			if (checker_static_init(&c, conf) == -1)
				return -1;
			break;
		case CHECKER_OAUTH:
			if (checker_oauth_init(&c) == -1)
				return -1;
			break;
		case CHECKER_CACHE:
			if (checker_cache_init(&c, conf) == -1)
				return -1;
			break;
		}
		c.mechanisms = cc->mechanisms != 0 ? cc->mechanisms :
		    SASL_PASSWORD_MECHS;
		checkers[n] = c;
		if (cc->type == CHECKER_CACHE)
			cache = &checkers[n];
		n++;
	}
	ncheckers = n;
	return 0;
}

static void
chain_finish(struct auth_ctx *ctx, int result, const char *checker)
{
	struct auth_verdict	 v;
	struct timespec		 now;
	char			 user[CONF_AUTH_NAME_MAX * 4];
	long			 ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - ctx->started.tv_sec) * 1000 +
	    (now.tv_nsec - ctx->started.tv_nsec) / 1000000;
	/* A token login that named nobody is audited as whom it proved. */
	if (ctx->user[0] == '\0' && result == AUTH_OK)
		escape_text(ctx->canonical, strlen(ctx->canonical), user,
		    sizeof(user));
	else
		escape_text(ctx->user, strlen(ctx->user), user, sizeof(user));
	log_info("auth result=%s user=\"%s\" mech=%s checker=%s%s "
	    "session=%016llx client=%s listener=%s ms=%ld%s%s",
	    result == AUTH_OK ? "ok" : result == AUTH_FAIL ? "fail" :
	    "tempfail", user, mech_name(ctx->mechanism),
	    checker != NULL ? checker : "none",
	    ctx->answered_stale ? " stale=yes" : "",
	    (unsigned long long)ctx->session_id, ctx->client, ctx->listener,
	    ms, ctx->why != NULL ? " reason=" : "",
	    ctx->why != NULL ? ctx->why : "");

	if (ctx->wc != NULL) {
		memset(&v, 0, sizeof(v));
		v.req_id = ctx->req_id;
		v.result = (uint32_t)result;
		if (result == AUTH_OK)
			strlcpy(v.user, ctx->canonical, sizeof(v.user));
		if (checker != NULL)
			strlcpy(v.checker, checker, sizeof(v.checker));
		imsgev_compose(&ctx->wc->iev, IMSG_AUTH_VERDICT, 0, -1, &v,
		    sizeof(v));
		TAILQ_REMOVE(&ctx->wc->pending, ctx, entry);
	}
	authd_stats_count(checker, result);
	chain_ctx_free(ctx);
}

void
chain_ctx_free(struct auth_ctx *ctx)
{
	if (ctx->password != NULL)
		freezero(ctx->password, ctx->pwlen + 1);
	free(ctx->current);
	freezero(ctx, sizeof(*ctx));
}

static void
job_work(void *arg)
{
	struct auth_ctx	*ctx = arg;

	ctx->result = AUTH_TEMPFAIL;
	ctx->current->verify(ctx->current, ctx);
}

static void
job_done(void *arg)
{
	chain_checker_done(arg);
}

/*
 * A checker has decided: on the loop, whichever way it ran.  cc may
 * belong to a configuration retired by a reload, which can be freed
 * only once the decision is acted on (chain_checker_done).
 */
static void
checker_decided(struct auth_ctx *ctx)
{
	struct checker		*c = ctx->current;
	struct checker_conf	*cc = c->conf;

	/*
	 * The cache learns the verdict before the client does: a client
	 * that logs in again at once must find it there.
	 */
	if (!ctx->remembered && cc->type == CHECKER_OAUTH && cache != NULL &&
	    ctx->result != AUTH_TEMPFAIL) {
		ctx->remembered = 1;
		if (cache_remember(cache, c, ctx, ctx->result,
		    chain_checker_done) == 1)
			return;		/* back here once it is written */
	}
	ctx->remembered = 0;
	inflight--;
	priv_unref(c->priv);
	c->priv = NULL;
	if (ctx->wc == NULL && ctx->cancelled) {
		chain_ctx_free(ctx);
		return;
	}
	/* stale-if-error: the provider is down, the cache remembers. */
	if (ctx->result == AUTH_TEMPFAIL && cache != NULL &&
	    (ctx->stale & (1U << c->index))) {
		ctx->answered_stale = 1;
		ctx->why = NULL;
		strlcpy(ctx->canonical, ctx->stale_user,
		    sizeof(ctx->canonical));
		chain_finish(ctx, AUTH_OK, cache->conf->name);
		return;
	}
	switch (ctx->result) {
	case AUTH_OK:
		chain_finish(ctx, AUTH_OK, cc->name);
		return;
	case AUTH_FAIL:
		if (cc->on_fail == CHAIN_STOP) {
			chain_finish(ctx, AUTH_FAIL, cc->name);
			return;
		}
		break;
	default:
		ctx->tempfail_seen = 1;
		if (cc->on_tempfail == CHAIN_STOP) {
			chain_finish(ctx, AUTH_TEMPFAIL, cc->name);
			return;
		}
	}
	chain_step(ctx);
}

void
chain_checker_done(struct auth_ctx *ctx)
{
	checker_decided(ctx);
	retired_free();
}

static void
chain_step(struct auth_ctx *ctx)
{
	int	 i;

	for (i = ctx->next; i < ncheckers; i++)
		if ((checkers[i].mechanisms & ctx->mechanism) &&
		    (ctx->skip & (1U << i)) == 0)
			break;
	if (i >= ncheckers) {
		chain_finish(ctx, ctx->tempfail_seen ? AUTH_TEMPFAIL :
		    AUTH_FAIL, NULL);
		return;
	}
	ctx->next = i + 1;
	if (ctx->current == NULL &&
	    (ctx->current = malloc(sizeof(*ctx->current))) == NULL)
		fatal("malloc");
	*ctx->current = checkers[i];
	if (ctx->current->priv != NULL)
		ctx->current->priv->refs++;
	ctx->why = NULL;
	inflight++;
	if (ctx->current->start != NULL) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->current->start(ctx->current, ctx);
	} else
		hashpool_submit(job_work, job_done, ctx);
}

/* Refused before any checker: still audited, still a verdict. */
void
chain_reject(struct auth_ctx *ctx)
{
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	chain_finish(ctx, AUTH_FAIL, NULL);
}

void
chain_start(struct auth_ctx *ctx)
{
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	ctx->next = 0;
	chain_step(ctx);
}

/* For authctl stats: each checker's counts, "none" last. */
void
chain_stats_foreach(void (*cb)(const char *, const unsigned long *, void *),
    void *arg)
{
	for (int i = 0; i <= CONF_CHECKERS_MAX && stats[i].checker[0] != '\0';
	    i++)
		cb(stats[i].checker, stats[i].count, arg);
}
