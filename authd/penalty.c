/*
 * penalty.c -- authd's answer to guessing: one state per node (or per
 * fleet, with Redis) instead of one per worker, in three dimensions.
 *
 *	address	each failure from a client address (IPv6: its
 *		penalty-prefix6 network) doubles the delay before the
 *		next failure is answered, up to failure-delay-max;
 *		forgotten after "penalty address forget" without one,
 *		and at once after a login.  trusted-networks are exempt.
 *	account	after "penalty account N per WINDOW" failures for one
 *		account, from any addresses, further attempts for it
 *		are answered 454 without a password being checked,
 *		except from an address that logged in as that account
 *		within "known" (so the owner is not locked out by the
 *		attacker).  trusted-networks are not exempt.
 *	sending	an account locked by "limit ... lock-after" (limit.c):
 *		refused unchecked like a locked account, from every
 *		address.
 *	repeats	the same wrong password again from the same address
 *		(a phone with an old password, an office behind one
 *		NAT) grows nothing: fleet.c remembers a keyed hash of
 *		the last few.
 *
 * The worker applies the delay authd sends in the verdict: authd holds
 * the state and decides, the worker waits on its own timer so that
 * authd keeps no attempt open for seconds.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "fleet.h"
#include "log.h"
#include "util.h"

struct penalty_job {
	struct fleet_req	 req;
	struct auth_ctx		*ctx;
	int			 repeat;
	int			 trusted;
	void			(*cont)(struct auth_ctx *, const char *);
};

/* The unit of the address penalty: IPv6 by its prefix. */
void
penalty_key(const char *client, int prefix6, char *key, size_t len)
{
	struct in6_addr	 a6;

	if (inet_pton(AF_INET6, client, &a6) == 1 &&
	    !IN6_IS_ADDR_V4MAPPED(&a6) && prefix6 > 0 && prefix6 < 128) {
		for (int i = prefix6; i < 128; i++)
			a6.s6_addr[i / 8] &= ~(0x80 >> (i % 8));
		inet_ntop(AF_INET6, &a6, key, len);
		return;
	}
	strlcpy(key, client, len);
}

static int
prefix_match(const uint8_t *a, const uint8_t *b, size_t len, int bits)
{
	uint8_t	 mask;

	for (size_t i = 0; i < len && bits > 0; i++, bits -= 8) {
		mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((a[i] & mask) != (b[i] & mask))
			return 0;
	}
	return 1;
}

int
penalty_trusted(const struct portcullis_conf *conf, const char *client)
{
	struct netaddr	*n;
	struct in_addr	 in;
	struct in6_addr	 in6;
	int		 v4, v6;

	v4 = inet_pton(AF_INET, client, &in) == 1;
	v6 = inet_pton(AF_INET6, client, &in6) == 1;
	TAILQ_FOREACH(n, &conf->trusted_networks, entry) {
		if (v4 && n->ss.ss_family == AF_INET &&
		    prefix_match((const uint8_t *)&in, (const uint8_t *)
		    &((const struct sockaddr_in *)&n->ss)->sin_addr, 4,
		    n->prefixlen))
			return 1;
		if (v6 && n->ss.ss_family == AF_INET6 &&
		    prefix_match(in6.s6_addr, ((const struct sockaddr_in6 *)
		    &n->ss)->sin6_addr.s6_addr, 16, n->prefixlen))
			return 1;
	}
	return 0;
}

/* authctl test and the like judge a password, not a client. */
static int
penalty_exempt(const struct auth_ctx *ctx)
{
	return ctx->wc != NULL && ctx->wc->control;
}

static struct penalty_job *
job_new(struct auth_ctx *ctx, enum fleet_op op,
    void (*done)(struct fleet_req *))
{
	struct penalty_job	*j;

	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->ctx = ctx;
	j->req.op = op;
	j->req.done = done;
	j->req.arg = j;
	penalty_key(ctx->client, authd->conf->penalty_prefix6, j->req.addr,
	    sizeof(j->req.addr));
	strlcpy(j->req.user, ctx->user, sizeof(j->req.user));
	return j;
}

static void
before_done(struct fleet_req *r)
{
	struct penalty_job	*j = r->arg;
	struct auth_ctx		*ctx = j->ctx;
	const struct penalty_conf *p = &authd->conf->penalty;
	const char		*refused = NULL;
	void			(*cont)(struct auth_ctx *, const char *);

	ctx->penalty_busy = 0;
	if (r->failed)
		refused = "penalty state unavailable";
	else if (r->hard) {
		/* no known address passes: the sender logged in from it */
		fleet_counters.limit_lock_refused++;
		refused = "account locked: over its sending limit";
	} else if (p->account_max > 0 &&
	    r->account_count >= (uint32_t)p->account_max) {
		if (r->known)
			fleet_counters.account_known_passed++;
		else {
			fleet_counters.account_refused++;
			refused = "account locked";
		}
	}
	cont = j->cont;
	free(j);
	cont(ctx, refused);
}

/*
 * Before the chain: is the account locked against this address?
 * cont(ctx, NULL) to go on, or cont(ctx, why) to refuse unchecked; at
 * once, or later when Redis answers.
 */
void
penalty_before(struct auth_ctx *ctx, void (*cont)(struct auth_ctx *,
    const char *))
{
	struct penalty_job	*j;

	if (penalty_exempt(ctx) || ctx->user[0] == '\0' ||
	    (authd->conf->penalty.account_max == 0 &&
	    authd->conf->limit.lock_after == 0)) {
		cont(ctx, NULL);
		return;
	}
	j = job_new(ctx, FLEET_CHECK, before_done);
	j->cont = cont;
	ctx->penalty_busy = 1;
	fleet_submit(&j->req);
}

static void
after_fail_done(struct fleet_req *r)
{
	struct penalty_job	*j = r->arg;
	struct auth_ctx		*ctx = j->ctx;
	const struct penalty_conf *p = &authd->conf->penalty;

	ctx->penalty_busy = 0;
	if (r->failed)
		ctx->delay_ms = (uint32_t)authd->conf->failure_delay;
	else if (!j->trusted)
		ctx->delay_ms = fleet_delay(authd->conf, r->addr_count > 0 ?
		    r->addr_count : 1);
	if (ctx->delay_ms > 0)
		fleet_counters.auth_delayed++;
	if (r->count_account && p->account_max > 0 &&
	    r->account_count == (uint32_t)p->account_max) {
		fleet_counters.account_locks++;
		log_warnx("penalty: account \"%s\" locked after %u failures "
		    "within %ds, the last from %s%s", ctx->user,
		    r->account_count, p->account_window, ctx->client,
		    r->shared ? " (fleet-wide)" : "");
	}
	if (j->repeat)
		log_info("penalty: session=%016llx client=%s user=\"%s\": a "
		    "wrong password seen before, not counted again",
		    (unsigned long long)ctx->session_id, ctx->client,
		    ctx->user);
	free(j);
	chain_verdict(ctx);
}

static void
after_ok_done(struct fleet_req *r)
{
	free(r->arg);
}

/*
 * After the chain: a failure is counted (unless it is a repeat) and
 * its delay set in ctx->delay_ms; a login clears the address and
 * makes it known for the account.  Ends in chain_verdict(ctx).
 */
void
penalty_after(struct auth_ctx *ctx, int result)
{
	struct penalty_job	*j;

	if (penalty_exempt(ctx) || result == AUTH_TEMPFAIL) {
		chain_verdict(ctx);
		return;
	}
	if (result == AUTH_OK) {
		j = job_new(ctx, FLEET_OK, after_ok_done);
		/* A token login that named nobody: whom it proved. */
		if (j->req.user[0] == '\0')
			strlcpy(j->req.user, ctx->canonical,
			    sizeof(j->req.user));
		j->ctx = NULL;
		fleet_submit(&j->req);
		chain_verdict(ctx);
		return;
	}
	fleet_counters.auth_failures++;
	j = job_new(ctx, FLEET_FAIL, after_fail_done);
	j->trusted = penalty_trusted(authd->conf, ctx->client);
	if (j->trusted)
		fleet_counters.auth_trusted++;
	if (ctx->password != NULL && ctx->pwlen > 0)
		j->repeat = fleet_repeat(ctx->user, j->req.addr,
		    ctx->password, ctx->pwlen);
	if (j->repeat) {
		fleet_counters.auth_repeats++;
		ctx->repeat = 1;
	}
	j->req.grow_addr = !j->trusted && !j->repeat;
	j->req.count_account = ctx->user[0] != '\0' && !j->repeat;
	ctx->penalty_busy = 1;
	fleet_submit(&j->req);
}
