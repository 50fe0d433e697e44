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
 * Each type of checker is a struct checker_ops (chain.h), found in
 * the table of checkers.c; nothing here knows one type from another.
 * The cache cooperates through the generic hooks: it observes the
 * verdicts of the cacheable checkers before the client hears them,
 * and its lookup may leave hints in the attempt: checkers to skip (a
 * password refused a moment ago), and an answer for a checker that
 * tempfails (stale-if-error).
 */

#include <sys/uio.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "chain.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "util.h"

static struct checker	 checkers[CONF_CHECKERS_MAX];
static int		 ncheckers;
static int		 observers[CONF_CHECKERS_MAX];	/* indexes */
static int		 nobservers;
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
static const char *delay_text(uint32_t);

static const char *const result_names[] = {
	[AUTH_OK] = "ok",
	[AUTH_FAIL] = "fail",
	[AUTH_TEMPFAIL] = "tempfail",
};

/*
 * One decided attempt, in the metrics (common/metrics.c); authctl
 * stats adds the same series up by checker (chain_stats_foreach), so
 * the two never disagree.
 */
static void
attempt_count(const struct auth_ctx *ctx, const char *checker, int result)
{
	if (result < AUTH_OK || result > AUTH_TEMPFAIL)
		return;
	if (checker == NULL)
		checker = "none";
	metrics_add(M_AUTH_ATTEMPTS, 1, mech_name(ctx->mechanism), checker,
	    result_names[result]);
	metrics_observe(M_AUTH_SECONDS, metrics_since_usec(&ctx->started),
	    checker);
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
priv_unref(struct checker *c)
{
	if (c->priv != NULL && --c->priv->refs == 0 && c->ops->free != NULL)
		c->ops->free(c->priv);
	c->priv = NULL;
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
		priv_unref(&checkers[i]);
	ncheckers = nobservers = 0;
	TAILQ_FOREACH(cc, &conf->checkers, entry) {
		memset(&c, 0, sizeof(c));
		if ((c.ops = checker_ops_of(cc->type)) == NULL) {
			log_warnx("checker %s: unknown type %d", cc->name,
			    (int)cc->type);
			return -1;
		}
		c.conf = cc;
		c.pconf = conf;
		c.index = n;
		c.mechanisms = checker_conf_mechanisms(cc);
		if (c.ops->init(&c, conf) == -1)
			return -1;
		checkers[n] = c;
		if (c.ops->observe != NULL)
			observers[nobservers++] = n;
		n++;
	}
	ncheckers = n;
	return 0;
}

/*
 * Note one more address the user may send as.  -1 when it is empty,
 * longer than an address may be, or there is no room left: the
 * addresses that fit still count.
 */
int
auth_found_addr(struct auth_found *f, const char *addr)
{
	size_t	 len = strlen(addr);
	const char *p;
	int	 n = 0;

	for (p = f->addrs; p < f->addrs + f->addrs_len; p += strlen(p) + 1)
		n++;
	if (len == 0 || len > STORE_ADDR_MAX || n == AUTH_ADDRS_MAX ||
	    f->addrs_len + len + 1 > sizeof(f->addrs))
		return -1;
	memcpy(f->addrs + f->addrs_len, addr, len + 1);
	f->addrs_len += len + 1;
	return 0;
}

/*
 * Decided: penalty.c counts it (a failure's delay, a login's address)
 * and then calls chain_verdict().  The checker's name is copied: a
 * reload may free its configuration meanwhile.
 */
static void
chain_finish(struct auth_ctx *ctx, int result, const char *checker)
{
	ctx->verdict = result;
	if (checker != NULL)
		strlcpy(ctx->verdict_by, checker, sizeof(ctx->verdict_by));
	penalty_after(ctx, result);
}

/* A verdict reached outside the chain's walk (a SCRAM exchange). */
void
chain_decided(struct auth_ctx *ctx, int result, const char *checker)
{
	chain_finish(ctx, result, checker);
}

/* The audit line, and the verdict to whoever still waits for it. */
void
chain_verdict(struct auth_ctx *ctx)
{
	struct auth_verdict	 v;
	struct iovec		 iov[3];
	char			 user[CONF_AUTH_NAME_MAX * 4];
	char			 app[sizeof(ctx->app_label) * 4 + 32];
	const char		*checker = ctx->verdict_by[0] != '\0' ?
				    ctx->verdict_by : NULL;
	int			 result = ctx->verdict, scram;
	long			 ms = elapsed_ms(&ctx->started);

	/* A token login that named nobody is audited as whom it proved. */
	if (ctx->user[0] == '\0' && result == AUTH_OK)
		escape_text(ctx->canonical, strlen(ctx->canonical), user,
		    sizeof(user));
	else
		escape_text(ctx->user, strlen(ctx->user), user, sizeof(user));
	app[0] = '\0';
	if (ctx->app_label[0] != '\0') {
		/* Which app password: a label is letters, digits, ._- */
		strlcpy(app, " app-password=", sizeof(app));
		strlcat(app, ctx->app_label, sizeof(app));
		if (ctx->send_only)
			strlcat(app, " send-only=yes", sizeof(app));
	}
	log_info("auth result=%s user=\"%s\" mech=%s checker=%s%s%s%s%s "
	    "session=%016llx client=%s listener=%s ms=%ld%s%s%s%s",
	    result == AUTH_OK ? "ok" : result == AUTH_FAIL ? "fail" :
	    "tempfail", user, mech_name(ctx->mechanism),
	    checker != NULL ? checker : "none", app,
	    ctx->hints.answered ? " " : "",
	    ctx->hints.answered ? ctx->hints.fallback_tag : "",
	    ctx->hints.answered ? "=yes" : "",
	    (unsigned long long)ctx->session_id, ctx->client, ctx->listener,
	    ms, ctx->why != NULL ? " reason=" : "",
	    ctx->why != NULL ? ctx->why : "",
	    ctx->repeat ? " repeat=yes" : "",
	    ctx->delay_ms > 0 ? delay_text(ctx->delay_ms) : "");

	if (ctx->wc != NULL) {
		memset(&v, 0, sizeof(v));
		v.req_id = ctx->req_id;
		v.result = (uint32_t)result;
		v.delay_ms = ctx->delay_ms;
		if (result == AUTH_OK) {
			strlcpy(v.user, ctx->canonical, sizeof(v.user));
			v.addrs_len = (uint32_t)ctx->found.addrs_len;
		}
		if (checker != NULL)
			strlcpy(v.checker, checker, sizeof(v.checker));
		iov[0].iov_base = &v;
		iov[0].iov_len = sizeof(v);
		iov[1].iov_base = ctx->found.addrs;
		iov[1].iov_len = v.addrs_len;
		/* SCRAM's ok carries server-final (RFC 5802 3) after it. */
		scram = result == AUTH_OK && ctx->server_final[0] != '\0';
		iov[2].iov_base = ctx->server_final;
		iov[2].iov_len = scram ? strlen(ctx->server_final) : 0;
		imsgev_composev(&ctx->wc->iev, scram ? IMSG_SCRAM_OK :
		    IMSG_AUTH_VERDICT, 0, iov, scram ? 3 : 2);
		TAILQ_REMOVE(&ctx->wc->pending, ctx, entry);
	}
	attempt_count(ctx, checker, result);
	chain_ctx_free(ctx);
}

/* " delay=1500ms", for the audit line. */
static const char *
delay_text(uint32_t ms)
{
	static char	 buf[32];

	snprintf(buf, sizeof(buf), " delay=%ums", ms);
	return buf;
}

void
chain_ctx_free(struct auth_ctx *ctx)
{
	if (ctx->password != NULL)
		freezero(ctx->password, ctx->pwlen + 1);
	if (ctx->job_free != NULL && ctx->job != NULL)
		ctx->job_free(ctx->job);
	free(ctx->current);
	freezero(ctx, sizeof(*ctx));
}

/*
 * Tell the observers (the cache) what a cacheable checker decided, so
 * that a client that logs in again at once finds it there.  1: one of
 * them is busy and calls chain_checker_done() again when it is not.
 */
static int
observers_tell(struct auth_ctx *ctx)
{
	struct checker	*o;

	if (!ctx->current->ops->cacheable || ctx->result == AUTH_TEMPFAIL)
		return 0;
	while (ctx->observing < nobservers) {
		o = &checkers[observers[ctx->observing++]];
		if (o->ops->observe(o, ctx->current, ctx,
		    chain_checker_done) == 1)
			return 1;
	}
	return 0;
}

/*
 * A fallback a checker left earlier (the cache's stale entry) answers
 * for this one, which could not tell.  1 if it did.
 */
static int
fallback_answer(struct auth_ctx *ctx)
{
	struct auth_hints	*h = &ctx->hints;

	if (ctx->result != AUTH_TEMPFAIL ||
	    (h->fallback & (1U << ctx->current->index)) == 0)
		return 0;
	h->answered = 1;
	ctx->why = NULL;
	if (h->fallback_tag != NULL && strcmp(h->fallback_tag, "stale") == 0)
		metrics_add(M_CACHE_LOOKUPS, 1, h->fallback_by, "stale");
	strlcpy(ctx->canonical, h->fallback_user, sizeof(ctx->canonical));
	ctx->found = h->fallback_found;
	chain_finish(ctx, AUTH_OK, h->fallback_by);
	return 1;
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

	if (ctx->lookup != NULL) {
		metrics_add(M_CACHE_LOOKUPS, 1, cc->name, ctx->lookup);
		ctx->lookup = NULL;
	}
	if (observers_tell(ctx))
		return;		/* back here once they know */
	ctx->observing = 0;
	inflight--;
	priv_unref(c);
	if (ctx->wc == NULL && ctx->cancelled) {
		chain_ctx_free(ctx);
		return;
	}
	if (fallback_answer(ctx))
		return;
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
		    (ctx->hints.skip & (1U << i)) == 0)
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
	/* What the checker before found is not this one's finding. */
	memset(&ctx->found, 0, sizeof(ctx->found));
	inflight++;
	ctx->result = AUTH_TEMPFAIL;
	ctx->current->ops->start(ctx->current, ctx);
}

/* Refused before any checker: still audited, still a verdict. */
void
chain_reject(struct auth_ctx *ctx)
{
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	chain_finish(ctx, AUTH_FAIL, NULL);
}

/*
 * Refused by the penalties, unchecked (an account locked): audited,
 * not counted again, answered after the first delay.
 */
void
chain_refuse(struct auth_ctx *ctx, int result, const char *why)
{
	ctx->verdict = result;
	ctx->why = why;
	ctx->delay_ms = (uint32_t)(authd->conf->failure_delay > 0 ?
	    authd->conf->failure_delay : 0);
	chain_verdict(ctx);
}

/*
 * The session went away: nobody waits for the verdict.  A checker
 * that can stop its check does so now; any other finishes it (so does
 * an observer busy with its verdict), and the attempt is dropped then
 * (checker_decided).  On the loop, never from within a checker.
 */
void
chain_cancel(struct auth_ctx *ctx)
{
	struct checker	*c = ctx->current;

	if (ctx->wc != NULL) {
		TAILQ_REMOVE(&ctx->wc->pending, ctx, entry);
		ctx->wc = NULL;
	}
	ctx->cancelled = 1;
	if (c == NULL || c->ops->cancel == NULL || ctx->observing > 0 ||
	    ctx->penalty_busy)
		return;
	c->ops->cancel(c, ctx);
	inflight--;
	priv_unref(c);
	chain_ctx_free(ctx);
	retired_free();
}

/*
 * The penalties have spoken (penalty_before): 1 if that ended the
 * attempt (the session left meanwhile, or the account is refused
 * unchecked), 0 to go on and check the credential.
 */
int
chain_penalty_ended(struct auth_ctx *ctx, const char *refused)
{
	if (ctx->wc == NULL && ctx->cancelled) {
		chain_ctx_free(ctx);
		return 1;
	}
	if (refused != NULL) {
		chain_refuse(ctx, AUTH_TEMPFAIL, refused);
		return 1;
	}
	return 0;
}

static void
chain_go(struct auth_ctx *ctx, const char *refused)
{
	if (chain_penalty_ended(ctx, refused))
		return;
	ctx->next = 0;
	chain_step(ctx);
}

void
chain_start(struct auth_ctx *ctx)
{
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	penalty_before(ctx, chain_go);
}

/* authctl stats: the metric's series, added up by checker. */
struct stats_sum {
	int		 n;
	struct {
		char		 checker[METRIC_LABEL_MAX];
		unsigned long	 count[4];
	}		 c[CONF_CHECKERS_MAX * 4 + 1];
};

static void
stats_add(const char label[METRIC_LABELS_MAX][METRIC_LABEL_MAX],
    const uint64_t *v, void *arg)
{
	struct stats_sum	*sum = arg;
	int			 i, r;

	for (r = AUTH_OK; r <= AUTH_TEMPFAIL; r++)
		if (strcmp(label[2], result_names[r]) == 0)
			break;
	if (r > AUTH_TEMPFAIL)
		return;
	for (i = 0; i < sum->n; i++)
		if (strcmp(sum->c[i].checker, label[1]) == 0)
			break;
	if (i == sum->n) {
		if (sum->n == (int)(sizeof(sum->c) / sizeof(sum->c[0])))
			return;
		strlcpy(sum->c[sum->n++].checker, label[1],
		    sizeof(sum->c[0].checker));
	}
	sum->c[i].count[r] += (unsigned long)v[0];
}

/* For authctl stats: each checker's counts, "none" last. */
void
chain_stats_foreach(void (*cb)(const char *, const unsigned long *, void *),
    void *arg)
{
	struct stats_sum	*sum;
	int			 i;

	if ((sum = calloc(1, sizeof(*sum))) == NULL)
		return;
	metrics_foreach(M_AUTH_ATTEMPTS, stats_add, sum);
	for (i = 0; i < sum->n; i++)
		if (strcmp(sum->c[i].checker, "none") != 0)
			cb(sum->c[i].checker, sum->c[i].count, arg);
	for (i = 0; i < sum->n; i++)
		if (strcmp(sum->c[i].checker, "none") == 0)
			cb(sum->c[i].checker, sum->c[i].count, arg);
	free(sum);
}

/* Before each answer to metrics: what each checker's health is now. */
void
chain_metrics_collect(void)
{
	const struct fleet_counter_name	*n;
	struct checker			*c;
	uint64_t			 v;
	int				 up, breaker;

	for (int i = 0; i < ncheckers; i++) {
		c = &checkers[i];
		breaker = 0;
		up = c->ops->health != NULL ? c->ops->health(c, &breaker) : 1;
		metrics_set(M_CHECKER_UP, up, c->conf->name);
		metrics_set(M_CHECKER_BREAKER_OPEN, breaker, c->conf->name);
	}
	/* penalty.c's counters, those authctl stats prints, by name. */
	for (n = fleet_counter_names; n->name != NULL; n++) {
		memcpy(&v, (const char *)&fleet_counters + n->offset,
		    sizeof(v));
		metrics_set(M_PENALTIES, (int64_t)v, n->name);
	}
}

/* One line of a checker's own state; 0, or -1 if it has none. */
int
chain_checker_stats(int index, char *buf, size_t len)
{
	if (index < 0 || index >= ncheckers ||
	    checkers[index].ops->stats == NULL)
		return -1;
	checkers[index].ops->stats(&checkers[index], buf, len);
	return 0;
}
