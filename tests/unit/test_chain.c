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
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "authd.h"
#include "chain.h"
#include "config.h"
#include "hashpool.h"
#include "proto.h"

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
	cr_assert_eq(imsg_get_data(&imsg, &v, sizeof(v)), 0);
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
