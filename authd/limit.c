/*
 * limit.c -- sending limits, counted by authd for the node (or the
 * fleet, with Redis): a worker asks before it accepts a recipient or a
 * message of an authenticated session (worker/smtp_limit.c), and a yes
 * counts them, for the account and for the client address (IPv6 by
 * its penalty prefix; trusted-networks have no address limit).
 *
 * An account's limit is its own (store record version 3, "authctl
 * user limits") when an lmdb checker's store holds the user, else the
 * default ("limit" in portcullis.conf); an address always has the
 * default.  The store is read on the loop, in the request: one LMDB
 * read transaction on a mapped file and a record decode: 0.6-0.9 us
 * measured here with 1000 users (a loop of store_user_get()), no disk
 * I/O once the pages are cached, and no cache of ours to go stale:
 * authctl's change counts from the next message.
 *
 * "limit ... lock-after N for D": the Nth refusal of an account by its
 * own limit within that limit's window locks the account for D, like
 * the penalties' account lock (one state per node, or per fleet with
 * Redis; "authctl penalty clear USER" lifts it) but with no exception
 * for known addresses: the sender over the limit is the one who logged
 * in.  penalty.c refuses its logins.
 */

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "chain.h"
#include "fleet.h"
#include "log.h"
#include "store.h"
#include "util.h"

/* One request counts a recipient or a message: more is a bad worker. */
#define LIMIT_COUNT_MAX		1000

struct limit_job {
	struct fleet_req	 req;
	uint64_t		 req_id;
	uint64_t		 session_id;
	uint32_t		 worker_id;
	uint32_t		 generation;
	char			 client[64];
};

/* The channel of the worker that asked, if it is still there. */
static struct worker_channel *
channel_of(uint32_t id, uint32_t generation)
{
	struct worker_channel	*wc;

	TAILQ_FOREACH(wc, &authd->channels, entry)
		if (wc->worker_id == id && wc->generation == generation)
			return wc;
	return NULL;
}

/* The account went on over its limit lock_after times: locked. */
static void
limit_lock(struct fleet_req *r, const struct limit_job *j,
    const char *user)
{
	fleet_counters.limit_locks++;
	fleet_sendlock(r, time(NULL) + r->lock_for);
	log_warnx("limit: account locked: session=%016llx user=\"%s\" "
	    "client=%s: %u refusals over its %s limit within %ds; locked "
	    "for %ds%s", (unsigned long long)j->session_id, user, j->client,
	    r->refusals, r->kind == LIMIT_RECIPIENTS ? "recipient" :
	    "message", r->window, r->lock_for,
	    r->shared ? ", fleet-wide" : "");
}

static void
limit_done(struct fleet_req *r)
{
	struct limit_job	*j = r->arg;
	struct worker_channel	*wc;
	struct limit_verdict	 v;
	const char		*which = r->over == 2 ? "address" : "account";
	int			 rcpt = r->kind == LIMIT_RECIPIENTS;
	char			 user[CONF_AUTH_NAME_MAX * 4];

	memset(&v, 0, sizeof(v));
	v.req_id = j->req_id;
	if (r->failed) {
		v.tempfail = 1;
		fleet_counters.limit_tempfail++;
	} else if (r->over) {
		strlcpy(v.which, which, sizeof(v.which));
		if (rcpt)
			fleet_counters.limit_recipients_refused++;
		else
			fleet_counters.limit_messages_refused++;
		escape_text(r->user, strlen(r->user), user, sizeof(user));
		log_info("limit: session=%016llx user=\"%s\" client=%s: over "
		    "the %s limit of the %s (%u per %ds)%s",
		    (unsigned long long)j->session_id, user, j->client,
		    rcpt ? "recipient" : "message", which, r->over == 2 ?
		    r->addr_max : r->max, r->over == 2 ? r->addr_window :
		    r->window, r->shared ? ", fleet-wide" : "");
		if (r->over == 1 && r->lock_after > 0 &&
		    r->refusals == (uint32_t)r->lock_after)
			limit_lock(r, j, user);
	} else
		v.ok = 1;
	if ((wc = channel_of(j->worker_id, j->generation)) != NULL)
		imsgev_compose(&wc->iev, IMSG_LIMIT_VERDICT, 0, -1, &v,
		    sizeof(v));
	free(j);
}

/*
 * The user's own limit of kind, from the first lmdb checker's store
 * that holds the user: 1 (*out set), or 0 (none there: the default).
 */
static int
limit_of_user(const char *user, int kind, struct store_limit *out)
{
	const struct checker	*cs;
	struct store_user	 u;
	char			 err[256];
	int			 n, i, rc;

	cs = chain_checkers(&n);
	for (i = 0; i < n; i++) {
		if (cs[i].ops != &checker_lmdb_ops || cs[i].store == NULL)
			continue;
		rc = store_user_get(cs[i].store, user, &u, err, sizeof(err));
		if (rc == 1)
			*out = u.limits[kind];
		explicit_bzero(&u, sizeof(u));
		if (rc == 1)
			return 1;
		if (rc == -1)	/* corrupt: the default, and say so */
			log_warnx("limit: %s", err);
	}
	return 0;
}

/* The account's limit (its own or the default), the address's. */
static void
limit_set(struct fleet_req *r, const struct limit_conf *l)
{
	struct store_limit	 own;
	int			 rcpt = r->kind == LIMIT_RECIPIENTS;

	r->addr_max = (uint32_t)(rcpt ? l->recipients : l->messages);
	r->addr_window = rcpt ? l->recipients_window : l->messages_window;
	r->max = r->addr_max;
	r->window = r->addr_window;
	r->lock_after = l->lock_after;
	r->lock_for = l->lock_for;
	if (!limit_of_user(r->user, rcpt ? STORE_LIMIT_RECIPIENTS :
	    STORE_LIMIT_MESSAGES, &own))
		return;
	if (own.mode == STORE_LIMIT_NONE)
		r->max = 0;
	else if (own.mode == STORE_LIMIT_VALUE) {
		r->max = own.max;
		r->window = (int)own.window;
	}
}

/*
 * IMSG_LIMIT_REQUEST from a worker, which may be compromised: the
 * fields are checked, and -1 closes its channel.
 */
int
limit_request(struct worker_channel *wc, struct imsg *imsg)
{
	const struct limit_conf	*l = &authd->conf->limit;
	struct limit_request	 req;
	struct limit_job	*j;

	imsgev_data(imsg, &req, sizeof(req));
	if (memchr(req.user, '\0', sizeof(req.user)) == NULL ||
	    memchr(req.client, '\0', sizeof(req.client)) == NULL ||
	    req.user[0] == '\0' || req.count == 0 ||
	    req.count > LIMIT_COUNT_MAX ||
	    (req.kind != LIMIT_RECIPIENTS && req.kind != LIMIT_MESSAGES))
		return -1;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	j->req_id = req.req_id;
	j->session_id = req.session_id;
	j->worker_id = wc->worker_id;
	j->generation = wc->generation;
	strlcpy(j->client, req.client, sizeof(j->client));
	j->req.op = FLEET_LIMIT;
	j->req.kind = (enum limit_kind)req.kind;
	j->req.n = req.count;
	j->req.done = limit_done;
	j->req.arg = j;
	strlcpy(j->req.user, req.user, sizeof(j->req.user));
	limit_set(&j->req, l);
	if (!penalty_trusted(authd->conf, req.client))
		penalty_key(req.client, authd->conf->penalty_prefix6,
		    j->req.addr, sizeof(j->req.addr));
	if (j->req.max == 0 && (j->req.addr_max == 0 ||
	    j->req.addr[0] == '\0')) {	/* none applies */
		j->req.done(&j->req);
		return 0;
	}
	fleet_submit(&j->req);
	return 0;
}
