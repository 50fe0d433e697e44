/*
 * checker_lmdb.c -- users in the local LMDB store.
 *
 * Runs on the hash pool: LMDB reads are safe from any thread with
 * MDB_NOTLS.  A locked user fails (and the log says locked); an unknown
 * user is verified against the dummy hash, so that the time to refuse
 * does not tell who exists.  A store that cannot be read is a
 * tempfail, not a wrong password.
 *
 * App passwords: a password of their shape (passwd_app_canon) is
 * first compared with the user's app passwords' verifiers, an HMAC
 * keyed with the store's secret; no match, and it is tried as the
 * account's password.  The store is read at every login, so a revoked
 * or expired app password fails at once.  A send-only app password
 * logs in to send, which is all a submission server does: it is
 * refused where no mail follows (authctl test).  The time of the last
 * use is written in batches (touch_flush), never once per login.
 *
 * A user without a password (its main login is elsewhere: OAuth) logs
 * in with an app password only, if passwordless app-passwords-only
 * says so: the chain then asks no checker after this one.
 *
 * SCRAM (CRED_SCRAM) is authd/scram.c's: it reads the keys itself.
 */

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "authd.h"
#include "chain.h"
#include "hashpool.h"
#include "log.h"
#include "passwd.h"
#include "store.h"

#define TOUCH_MAX		256	/* last-used times held back */
#define TOUCH_INTERVAL		10	/* seconds between writes: at
					   most one transaction each */

/* Last-used times waiting to be written, per store. */
struct touch {
	struct store		*st;
	struct store_touch	 t;
};
static pthread_mutex_t	 touch_lock = PTHREAD_MUTEX_INITIALIZER;
static struct touch	 touches[TOUCH_MAX];
static size_t		 ntouches;
static struct event	*touch_ev;

/* Write what was taken out of touches[]: on a pool thread. */
static void
touch_write(const struct touch *t, size_t n)
{
	struct store_touch	*batch;
	char			 err[256];
	size_t			 i, j, k;

	if ((batch = calloc(n, sizeof(*batch))) == NULL) {
		log_warn("app password last-used");
		return;
	}
	/* One transaction per run of one store: they are few. */
	for (i = 0; i < n; i = j) {
		for (j = i, k = 0; j < n && t[j].st == t[i].st; j++)
			batch[k++] = t[j].t;
		if (store_app_touch(t[i].st, batch, k, err, sizeof(err)) == -1)
			log_warnx("app password last-used: %s", err);
	}
	free(batch);
}

static void
touch_flush_work(void *arg)
{
	struct touch	*batch = arg;
	size_t		 n;

	for (n = 0; n < TOUCH_MAX && batch[n].st != NULL; n++)
		;
	touch_write(batch, n);
}

static void
touch_flush_done(void *arg)
{
	free(arg);
}

/* Take the batch out under the lock, write it on the pool. */
static void
touch_flush(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	 tv = { TOUCH_INTERVAL, 0 };
	struct touch	*batch;

	(void)fd; (void)ev; (void)arg;
	if ((batch = calloc(TOUCH_MAX, sizeof(*batch))) == NULL)
		fatal("calloc");
	pthread_mutex_lock(&touch_lock);
	memcpy(batch, touches, ntouches * sizeof(*batch));
	ntouches = 0;
	pthread_mutex_unlock(&touch_lock);
	if (batch[0].st != NULL)
		hashpool_submit(touch_flush_work, touch_flush_done, batch);
	else
		free(batch);
	evtimer_add(touch_ev, &tv);
}

/* On a pool thread: remember that user's label was used now. */
static void
touch_note(struct store *st, const char *user, const char *label)
{
	struct touch	*full = NULL;
	size_t		 i, n = 0;
	int64_t		 now = (int64_t)time(NULL);

	pthread_mutex_lock(&touch_lock);
	for (i = 0; i < ntouches; i++)
		if (touches[i].st == st && strcmp(touches[i].t.user, user) == 0 &&
		    strcmp(touches[i].t.label, label) == 0)
			break;
	if (i == ntouches && ntouches == TOUCH_MAX) {
		/* Full before the timer: this thread writes them. */
		if ((full = malloc(sizeof(touches))) == NULL)
			fatal("malloc");
		memcpy(full, touches, sizeof(touches));
		n = ntouches;
		ntouches = i = 0;
	}
	if (i == ntouches) {
		touches[i].st = st;
		strlcpy(touches[i].t.user, user, sizeof(touches[i].t.user));
		strlcpy(touches[i].t.label, label, sizeof(touches[i].t.label));
		ntouches++;
	}
	touches[i].t.when = now;
	pthread_mutex_unlock(&touch_lock);
	if (n > 0)
		touch_write(full, n);
	free(full);
}

/*
 * The app password of u that pw is, if any: its index, or -1.  All of
 * them are compared, in constant time each.
 */
static int
app_match(struct checker *c, const struct store_user *u, const char *pw,
    size_t pwlen)
{
	uint8_t		 secret[STORE_SECRET_LEN], v[STORE_APP_VERIFIER_LEN];
	char		 canon[PASSWD_APP_LEN + 1], err[256];
	size_t		 i;
	int		 found = -1;

	if (u->napps == 0 ||
	    passwd_app_canon(pw, pwlen, canon, sizeof(canon)) == -1)
		return -1;
	if (store_secret(c->store, secret, err, sizeof(err)) == -1) {
		explicit_bzero(canon, sizeof(canon));
		return -1;
	}
	passwd_app_verifier(secret, sizeof(secret), u->name, canon,
	    strlen(canon), v);
	for (i = 0; i < u->napps; i++)
		if (CRYPTO_memcmp(v, u->apps[i].verifier, sizeof(v)) == 0)
			found = (int)i;
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(canon, sizeof(canon));
	explicit_bzero(v, sizeof(v));
	return found;
}

/* An app password matched: may it log in here, now? */
static void
app_verdict(struct checker *c, struct auth_ctx *ctx,
    const struct store_user *u, const struct store_app *a)
{
	size_t	 i;

	strlcpy(ctx->app_label, a->label, sizeof(ctx->app_label));
	ctx->send_only = (a->flags & STORE_APP_SEND_ONLY) != 0;
	ctx->result = AUTH_FAIL;
	if (u->locked)
		ctx->why = "locked";
	else if (a->expires != 0 && a->expires <= (int64_t)time(NULL))
		ctx->why = "app password expired";
	else if (ctx->send_only && ctx->control)
		ctx->why = "send-only app password, and nothing is sent";
	else {
		ctx->result = AUTH_OK;
		strlcpy(ctx->canonical, u->name, sizeof(ctx->canonical));
		for (i = 0; i < u->naddrs; i++)
			(void)auth_found_addr(&ctx->found, u->addrs[i]);
		touch_note(c->store, u->name, a->label);
		return;
	}
	/* It is this app password, refused: no other checker gets it. */
	ctx->hints.skip |= ~((1U << (c->index + 1)) - 1);
}

static void
lmdb_verify(struct checker *c, struct auth_ctx *ctx)
{
	struct store_user	 u;
	char			 err[256];
	size_t			 i;
	int			 app;

	if (c->store == NULL) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "store not open";
		return;
	}
	switch (store_user_get(c->store, ctx->user, &u, err, sizeof(err))) {
	case 1:
		break;
	case 0:
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
		ctx->result = AUTH_FAIL;
		ctx->why = "unknown user";
		return;
	default:
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "store error";
		return;
	}
	if ((app = app_match(c, &u, ctx->password, ctx->pwlen)) != -1) {
		app_verdict(c, ctx, &u, &u.apps[app]);
		explicit_bzero(&u, sizeof(u));
		return;
	}
	if (u.hash[0] == '\0') {
		/* No password login for this user (e.g. OAuth only). */
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
		ctx->result = AUTH_FAIL;
		ctx->why = "no password set";
		/*
		 * passwordless app-passwords-only: its password must not
		 * reach the checkers after this one (an oauth checker's
		 * password grant, which a second factor does not guard).
		 */
		if (c->pconf->passwordless_app_only) {
			ctx->hints.skip |= ~((1U << (c->index + 1)) - 1);
			ctx->why = "no password set, app password required";
		}
		explicit_bzero(&u, sizeof(u));
		return;
	}
	switch (passwd_verify(u.hash, ctx->password, ctx->pwlen)) {
	case 1:
		if (u.locked) {
			ctx->result = AUTH_FAIL;
			ctx->why = "locked";
			break;
		}
		ctx->result = AUTH_OK;
		strlcpy(ctx->canonical, u.name, sizeof(ctx->canonical));
		for (i = 0; i < u.naddrs; i++)
			(void)auth_found_addr(&ctx->found, u.addrs[i]);
		break;
	case 0:
		ctx->result = AUTH_FAIL;
		ctx->why = u.locked ? "locked" : "wrong password";
		break;
	default:
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "unusable hash";
	}
	explicit_bzero(&u, sizeof(u));
}

static int
lmdb_init(struct checker *c, struct portcullis_conf *conf)
{
	struct timeval	 tv = { TOUCH_INTERVAL, 0 };

	(void)conf;
	if ((c->store = chain_store(c->conf->path)) == NULL)
		log_warnx("checker %s: its logins fail temporarily",
		    c->conf->name);
	/* No pool, no loop (the unit tests): nothing to flush on. */
	if (touch_ev == NULL && hashpool_base() != NULL) {
		if ((touch_ev = evtimer_new(hashpool_base(), touch_flush,
		    NULL)) == NULL)
			fatalx("evtimer_new");
		evtimer_add(touch_ev, &tv);
	}
	return 0;
}

const struct checker_ops checker_lmdb_ops = {
	.name = "lmdb",
	.kinds = CRED_PASSWORD | CRED_SCRAM,	/* SCRAM: authd/scram.c */
	.cacheable = 0,		/* a local store needs no cache */
	.init = lmdb_init,
	.start = checker_pool_start,
	.verify = lmdb_verify,
};
