/*
 * test_chain.c -- the checker chain, after Twisted's CascadingChecker
 * test: the chain verifies the union of its checkers' kinds; a user of
 * the first checker logs in, so does a user known only to the second;
 * a user known to none fails.  And what Twisted's chain did not have:
 * tempfail then ok is ok, tempfail then fail is tempfail, on-fail stop
 * stops.  Requests go in and verdicts come out over a real imsg
 * channel, as a worker would see them.
 */

#include <sys/socket.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "authd.h"
#include "chain.h"
#include "config.h"
#include "fleet.h"
#include "hashpool.h"
#include "proto.h"
#include "store.h"

struct authd	*authd;		/* the chain's files expect it */

static struct event_base	*base;
static struct portcullis_conf	*conf;
static struct worker_channel	 wc;
static struct imsgbuf		 peer;
static int			 sp[2];

static void
dispatch(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	(void)imsg;
}

static struct checker_conf *
add_checker(const char *name, enum checker_type type)
{
	struct checker_conf	*c = calloc(1, sizeof(*c));

	strlcpy(c->name, name, sizeof(c->name));
	c->type = type;
	/* An lmdb checker whose store cannot open: always tempfail. */
	strlcpy(c->path, "/dev/null/nowhere", sizeof(c->path));
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);
	return c;
}

static void
add_user(const char *checker, const char *name, const char *password)
{
	struct static_user	*u = calloc(1, sizeof(*u));

	strlcpy(u->checker, checker, sizeof(u->checker));
	strlcpy(u->name, name, sizeof(u->name));
	strlcpy(u->password, password, sizeof(u->password));
	TAILQ_INSERT_TAIL(&conf->static_users, u, entry);
}

static void
setup(void)
{
	base = event_base_new();
	conf = config_new_empty();
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(imsgev_init(&wc.iev, base, sp[0], 0, "test", dispatch,
	    NULL, &wc), 0);
	TAILQ_INIT(&wc.pending);
	cr_assert_eq(imsgbuf_init(&peer, sp[1]), 0);
	cr_assert_eq(hashpool_init(base, 2), 0);
	authd = calloc(1, sizeof(*authd));
	authd->conf = conf;
	fleet_configure(conf);
}

TestSuite(chain, .init = setup, .timeout = 20);

/* The two checkers of the original test, in this order. */
static void
twisted_chain(void)
{
	add_checker("ch1", CHECKER_STATIC);
	add_checker("ch2", CHECKER_STATIC);
	add_user("ch1", "foo", "bar");
	add_user("ch1", "boo", "far");
	add_user("ch2", "for", "bao");
}

static struct auth_verdict
login(const char *user, const char *password)
{
	struct auth_ctx		*ctx = calloc(1, sizeof(*ctx));
	struct auth_verdict	 v;
	struct imsg		 imsg;
	struct ibuf		 ibuf;
	ssize_t			 n;
	static uint64_t		 id;

	cr_assert_eq(chain_configure(conf), 0);
	ctx->wc = &wc;
	ctx->req_id = ++id;
	ctx->mechanism = SASL_PLAIN;
	strlcpy(ctx->user, user, sizeof(ctx->user));
	ctx->password = strdup(password);
	ctx->pwlen = strlen(password);
	strlcpy(ctx->client, "192.0.2.1", sizeof(ctx->client));
	TAILQ_INSERT_TAIL(&wc.pending, ctx, entry);
	chain_start(ctx);
	for (;;) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		fcntl(sp[1], F_SETFL, O_NONBLOCK);
		(void)imsgbuf_read(&peer);
		if ((n = imsg_get(&peer, &imsg)) > 0)
			break;
		usleep(1000);
	}
	cr_assert_eq(imsg_get_type(&imsg), IMSG_AUTH_VERDICT);
	/* the verdict, then addrs_len octets of addresses */
	cr_assert_eq(imsg_get_ibuf(&imsg, &ibuf), 0);
	cr_assert_eq(ibuf_get(&ibuf, &v, sizeof(v)), 0);
	cr_assert_eq(ibuf_size(&ibuf), v.addrs_len);
	imsg_free(&imsg);
	cr_assert_eq(v.req_id, id);
	cr_assert(TAILQ_EMPTY(&wc.pending), "the attempt is finished");
	return v;
}

Test(chain, kinds_are_the_union)
{
	struct checker_conf	*c;

	c = add_checker("plainonly", CHECKER_STATIC);
	c->mechanisms = SASL_PLAIN;
	c = add_checker("loginonly", CHECKER_STATIC);
	c->mechanisms = SASL_LOGIN;
	add_user("plainonly", "a", "b");
	add_user("loginonly", "a", "b");
	cr_assert_eq(chain_configure(conf), 0);
	cr_assert_eq(chain_mechanisms(), SASL_PLAIN | SASL_LOGIN);
}

Test(chain, login_first_checker)
{
	struct auth_verdict	 v;

	twisted_chain();
	v = login("foo", "bar");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.user, "foo");
	cr_assert_str_eq(v.checker, "ch1");
}

Test(chain, login_second_checker)
{
	struct auth_verdict	 v;

	twisted_chain();
	v = login("for", "bao");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "ch2", "only the second knows \"for\"");
}

Test(chain, login_fail)
{
	twisted_chain();
	cr_assert_eq(login("foo", "wrong").result, AUTH_FAIL);
	cr_assert_eq(login("nobody", "bar").result, AUTH_FAIL);
}

Test(chain, tempfail_then_ok_is_ok)
{
	struct auth_verdict	 v;

	add_checker("down", CHECKER_LMDB);
	add_checker("up", CHECKER_STATIC);
	add_user("up", "u", "p");
	v = login("u", "p");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "up");
}

Test(chain, tempfail_then_fail_is_tempfail)
{
	add_checker("down", CHECKER_LMDB);
	add_checker("up", CHECKER_STATIC);
	add_user("up", "u", "p");
	cr_assert_eq(login("u", "wrong").result, AUTH_TEMPFAIL,
	    "a backend that could not tell must not become 535");
}

Test(chain, on_fail_stop_stops)
{
	struct checker_conf	*c;

	c = add_checker("first", CHECKER_STATIC);
	c->on_fail = CHAIN_STOP;
	add_checker("second", CHECKER_STATIC);
	add_user("first", "someone", "x");
	add_user("second", "u", "p");
	cr_assert_eq(login("u", "p").result, AUTH_FAIL,
	    "the second checker is never asked");
}

Test(chain, on_tempfail_stop_stops)
{
	struct checker_conf	*c;

	c = add_checker("down", CHECKER_LMDB);
	c->on_tempfail = CHAIN_STOP;
	add_checker("up", CHECKER_STATIC);
	add_user("up", "u", "p");
	cr_assert_eq(login("u", "p").result, AUTH_TEMPFAIL);
}

Test(chain, mechanism_restriction_skips_a_checker)
{
	struct checker_conf	*c;

	c = add_checker("loginonly", CHECKER_STATIC);
	c->mechanisms = SASL_LOGIN;
	add_user("loginonly", "u", "p");
	cr_assert_eq(login("u", "p").result, AUTH_FAIL,
	    "a PLAIN credential is not offered to a LOGIN-only checker");
}

Test(chain, hashed_static_password)
{
	/* sha512-crypt of "secret" with salt "portcullis" */
	add_checker("h", CHECKER_STATIC);
	add_user("h", "u", "$6$portcullis$mO9ys7okpXYvIIaYj9pTZnY2AuNScmD/EDM"
	    "ofIng74lJkf7KOJBbjX2LmzubWVVnUokz0Me4vS.1E/BjmEg0X.");
	cr_assert_eq(login("u", "secret").result, AUTH_OK);
	cr_assert_eq(login("u", "Secret").result, AUTH_FAIL);
}

/*
 * A type of checker the chain has never heard of, registered through
 * the table of checkers.c: chain.c needs no line for it.  It decides
 * on the loop, a turn later, as a remote checker would.
 */
#define CHECKER_DUMMY		((enum checker_type)100)
#define CHECKER_DUMMY_CACHED	((enum checker_type)101)

static int	 dummy_refuses;		/* every password is wrong */
static int	 dummy_started;

static void
dummy_decided(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev;
	chain_checker_done(arg);
}

static void
dummy_start(struct checker *c, struct auth_ctx *ctx)
{
	struct timeval	 tv = { 0, 0 };

	(void)c;
	dummy_started++;
	if (!dummy_refuses && strcmp(ctx->password, "dummy-pw") == 0) {
		ctx->result = AUTH_OK;
		strlcpy(ctx->canonical, ctx->user, sizeof(ctx->canonical));
	} else {
		ctx->result = AUTH_FAIL;
		ctx->found.refused = 1;
	}
	cr_assert_eq(event_base_once(base, -1, EV_TIMEOUT, dummy_decided, ctx,
	    &tv), 0);
}

static int
dummy_init(struct checker *c, struct portcullis_conf *pconf)
{
	(void)c; (void)pconf;
	return 0;
}

static const struct checker_ops dummy_ops = {
	.name = "dummy",
	.kinds = CRED_PASSWORD,
	.init = dummy_init,
	.start = dummy_start,
};

static const struct checker_ops dummy_cached_ops = {
	.name = "dummy-cached",
	.kinds = CRED_PASSWORD,
	.cacheable = 1,
	.init = dummy_init,
	.start = dummy_start,
};

static void
dummies(void)
{
	cr_assert_eq(checker_register(CHECKER_DUMMY, &dummy_ops), 0);
	cr_assert_eq(checker_register(CHECKER_DUMMY_CACHED,
	    &dummy_cached_ops), 0);
}

Test(chain, a_new_type_needs_only_the_table)
{
	struct auth_verdict	 v;

	dummies();
	add_checker("none", CHECKER_STATIC);
	add_checker("d", CHECKER_DUMMY);
	cr_assert_eq(chain_configure(conf), 0);
	cr_assert_eq(chain_mechanisms(), mech_of_kinds(CRED_PASSWORD),
	    "the mechanisms follow from the type's kinds");
	v = login("u", "dummy-pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "d");
	cr_assert_str_eq(v.user, "u");
	cr_assert_eq(login("u", "other").result, AUTH_FAIL);
	cr_assert_eq(dummy_started, 2);
}

Test(chain, unknown_type_is_refused)
{
	add_checker("x", (enum checker_type)99);
	cr_assert_eq(chain_configure(conf), -1);
}

/* A cancel hook stops the check; the chain drops the attempt. */
static int	 dummy_cancelled;

static void
dummy_slow_start(struct checker *c, struct auth_ctx *ctx)
{
	(void)c;
	ctx->job = &dummy_cancelled;	/* never decides by itself */
}

static void
dummy_cancel(struct checker *c, struct auth_ctx *ctx)
{
	(void)c;
	cr_assert_eq(ctx->job, &dummy_cancelled);
	dummy_cancelled++;
}

static const struct checker_ops dummy_slow_ops = {
	.name = "slow",
	.kinds = CRED_PASSWORD,
	.init = dummy_init,
	.start = dummy_slow_start,
	.cancel = dummy_cancel,
};

Test(chain, cancel_stops_a_check)
{
	struct auth_ctx	*ctx = calloc(1, sizeof(*ctx));

	cr_assert_eq(checker_register(CHECKER_DUMMY, &dummy_slow_ops), 0);
	add_checker("slow", CHECKER_DUMMY);
	cr_assert_eq(chain_configure(conf), 0);
	ctx->wc = &wc;
	ctx->mechanism = SASL_PLAIN;
	ctx->password = strdup("pw");
	ctx->pwlen = 2;
	TAILQ_INSERT_TAIL(&wc.pending, ctx, entry);
	chain_start(ctx);
	chain_cancel(ctx);
	cr_assert_eq(dummy_cancelled, 1);
	cr_assert(TAILQ_EMPTY(&wc.pending));
}

static char	 cachedir[64];

static struct checker_conf *
add_cache(void)
{
	struct checker_conf	*c;

	strlcpy(cachedir, "/tmp/test_chain.XXXXXX", sizeof(cachedir));
	cr_assert_not_null(mkdtemp(cachedir));
	c = add_checker("c", CHECKER_CACHE);
	snprintf(c->path, sizeof(c->path), "%s/db", cachedir);
	snprintf(c->cache.key_file, sizeof(c->cache.key_file),
	    "%s/cache.key", cachedir);
	c->cache.ttl = 3600;
	c->mechanisms = SASL_PLAIN;
	return c;
}

static int
count_entry(const struct store_cache_entry *e, void *arg)
{
	(void)e;
	(*(int *)arg)++;
	return 0;
}

static int
cache_entries(void)
{
	char	 err[256];
	int	 n = 0;

	cr_assert_eq(store_cache_list(chain_store(conf->checkers.tqh_first->
	    path), NULL, count_entry, &n, err, sizeof(err)), 0, "%s", err);
	return n;
}

Test(chain, cache_remembers_a_cacheable_ok)
{
	struct auth_verdict	 v;
	char			 buf[128];

	dummies();
	add_cache();
	add_checker("d", CHECKER_DUMMY_CACHED)->mechanisms = SASL_PLAIN;
	v = login("u", "dummy-pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "d");
	cr_assert_eq(cache_entries(), 1, "learnt before the client heard");
	cr_assert_eq(chain_checker_stats(0, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "usable, for 1 checkers");
	cr_assert_eq(chain_checker_stats(1, buf, sizeof(buf)), -1,
	    "the dummy has no stats hook");
	dummy_refuses = 1;
	v = login("u", "dummy-pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "c", "the cache answered");
	cr_assert_eq(dummy_started, 1, "the provider was not asked again");
	cr_assert_eq(login("u", "other").result, AUTH_FAIL);
}

Test(chain, cache_ignores_a_local_checker)
{
	struct auth_verdict	 v;

	dummies();
	add_cache();
	add_checker("d", CHECKER_DUMMY)->mechanisms = SASL_PLAIN;
	add_checker("s", CHECKER_STATIC);
	add_user("s", "local", "pw");
	v = login("u", "dummy-pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "d");
	v = login("local", "pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "s");
	cr_assert_eq(cache_entries(), 0, "no verdict of a non-cacheable "
	    "checker is kept");
	dummy_refuses = 1;
	cr_assert_eq(login("u", "dummy-pw").result, AUTH_FAIL);
}

/*
 * A stale cache entry's addresses are the fallback's, not the next
 * checker's: a checker that decides gives its own addresses (here
 * none), and only a tempfail answered from the stale entry carries
 * the entry's.  The first dummy plays the cache's stale note.
 */
static int	 dummy_second_tempfails;

static void
dummy_stale_start(struct checker *c, struct auth_ctx *ctx)
{
	struct auth_hints	*h = &ctx->hints;
	struct timeval		 tv = { 0, 0 };

	(void)c;
	h->fallback |= 1U << 1;
	strlcpy(h->fallback_user, ctx->user, sizeof(h->fallback_user));
	strlcpy(h->fallback_by, "stale-cache", sizeof(h->fallback_by));
	h->fallback_tag = "stale";
	cr_assert_eq(auth_found_addr(&h->fallback_found, "old@example.org"), 0);
	ctx->result = AUTH_FAIL;
	cr_assert_eq(event_base_once(base, -1, EV_TIMEOUT, dummy_decided, ctx,
	    &tv), 0);
}

static void
dummy_second_start(struct checker *c, struct auth_ctx *ctx)
{
	struct timeval	 tv = { 0, 0 };

	(void)c;
	cr_assert_eq(ctx->found.addrs_len, 0, "a fresh finding per checker");
	ctx->result = dummy_second_tempfails ? AUTH_TEMPFAIL : AUTH_OK;
	strlcpy(ctx->canonical, ctx->user, sizeof(ctx->canonical));
	cr_assert_eq(event_base_once(base, -1, EV_TIMEOUT, dummy_decided, ctx,
	    &tv), 0);
}

static const struct checker_ops dummy_stale_ops = {
	.name = "stale", .kinds = CRED_PASSWORD, .init = dummy_init,
	.start = dummy_stale_start,
};
static const struct checker_ops dummy_second_ops = {
	.name = "second", .kinds = CRED_PASSWORD, .init = dummy_init,
	.start = dummy_second_start,
};

Test(chain, stale_addresses_only_with_the_stale_answer)
{
	struct auth_verdict	 v;

	cr_assert_eq(checker_register(CHECKER_DUMMY, &dummy_stale_ops), 0);
	cr_assert_eq(checker_register(CHECKER_DUMMY_CACHED,
	    &dummy_second_ops), 0);
	add_checker("stale", CHECKER_DUMMY);
	add_checker("second", CHECKER_DUMMY_CACHED);
	v = login("u", "pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "second");
	cr_assert_eq(v.addrs_len, 0, "the stale entry's addresses leaked");
	dummy_second_tempfails = 1;
	v = login("u", "pw");
	cr_assert_eq(v.result, AUTH_OK);
	cr_assert_str_eq(v.checker, "stale-cache");
	cr_assert_eq(v.addrs_len, strlen("old@example.org") + 1);
}
