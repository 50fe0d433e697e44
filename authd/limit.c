/*
 * limit.c -- sending limits, counted by authd for the node (or the
 * fleet, with Redis): a worker asks before it accepts a recipient or a
 * message of an authenticated session (worker/smtp_limit.c), and a yes
 * counts them, for the account and for the client address (IPv6 by
 * its penalty prefix; trusted-networks have no address limit).
 *
 * The limits are one default for every account ("limit" in
 * portcullis.conf).  Left to do, once the store's user record has
 * room for them (its layout is being changed for SCRAM): limits per
 * user in the record, set with "authctl user ... limits", looked up
 * here (authd holds the store; the lookup must not block the loop, so
 * on the hash pool or from a small cache) and sent as r->max instead
 * of the default; and the optional lock of an account that
 * crosses a hard limit.
 */

#include <sys/types.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "authd.h"
#include "fleet.h"
#include "log.h"
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
		    rcpt ? "recipient" : "message", which, r->max, r->window,
		    r->shared ? ", fleet-wide" : "");
	} else
		v.ok = 1;
	if ((wc = channel_of(j->worker_id, j->generation)) != NULL)
		imsgev_compose(&wc->iev, IMSG_LIMIT_VERDICT, 0, -1, &v,
		    sizeof(v));
	free(j);
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
	j->req.max = (uint32_t)(req.kind == LIMIT_RECIPIENTS ? l->recipients :
	    l->messages);
	j->req.window = req.kind == LIMIT_RECIPIENTS ? l->recipients_window :
	    l->messages_window;
	j->req.done = limit_done;
	j->req.arg = j;
	strlcpy(j->req.user, req.user, sizeof(j->req.user));
	if (!penalty_trusted(authd->conf, req.client))
		penalty_key(req.client, authd->conf->penalty_prefix6,
		    j->req.addr, sizeof(j->req.addr));
	if (j->req.max == 0) {		/* no such limit (a reload) */
		j->req.done(&j->req);
		return 0;
	}
	fleet_submit(&j->req);
	return 0;
}
