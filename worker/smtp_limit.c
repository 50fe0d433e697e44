/*
 * smtp_limit.c -- sending limits ("limit messages N per T recipients N
 * per T"), asked of authd, which keeps the counts of each account and
 * client address for the node or, with Redis, for the fleet.
 *
 * Asked before the reply that accepts: a recipient before RCPT's 250,
 * a message after its final dot but before the 250 (the delivery is
 * held until then, and aborted if refused: a refused message is never
 * in the spool).  Nothing accepted is refused afterwards.  Over the
 * limit: 451 4.7.1 (RFC 3463 4.7.1: delivery not authorized, a
 * temporary refusal; the client may try later).  Only authenticated
 * sessions are limited: they are what a stolen password sends.  Which
 * limit applies (the default or the user's own) is authd's business.
 */

#include <sys/tree.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "proto.h"
#include "worker.h"

static int	limit_cmp(struct session *, struct session *);
RB_HEAD(limit_tree, session);
RB_PROTOTYPE(limit_tree, session, limit_entry, limit_cmp)
RB_GENERATE(limit_tree, session, limit_entry, limit_cmp)
static struct limit_tree waiting = RB_INITIALIZER(&waiting);
static uint64_t	 next_req_id;

static int
limit_cmp(struct session *a, struct session *b)
{
	return a->limit_req_id < b->limit_req_id ? -1 :
	    a->limit_req_id > b->limit_req_id;
}

/*
 * Does authd need asking for this session?  Whenever limits are on:
 * a user's own value in the store may apply where the default is none,
 * and only authd reads the store.
 */
static int
limit_applies(struct session *s)
{
	return s->auth_user[0] != '\0' && worker->conf->limit.on;
}

/*
 * Ask authd; then(s, ok) once it answers, or at once (ok) when kind
 * does not apply.  -1: authd is not there (then() is not called).
 */
int
smtp_limit_ask(struct session *s, enum limit_kind kind, uint32_t count,
    void (*then)(struct session *, int))
{
	struct limit_request	 req;

	if (!limit_applies(s)) {
		then(s, 1);
		return 0;
	}
	if (!worker->authd.open)
		return -1;
	memset(&req, 0, sizeof(req));
	req.req_id = ++next_req_id;
	req.session_id = s->id;
	req.kind = kind;
	req.count = count;
	strlcpy(req.user, s->auth_user, sizeof(req.user));
	strlcpy(req.client, s->client_addr, sizeof(req.client));
	if (imsgev_compose(&worker->authd, IMSG_LIMIT_REQUEST, worker->id,
	    -1, &req, sizeof(req)) == -1)
		return -1;
	s->limit_req_id = req.req_id;
	s->limit_kind = kind;
	s->limit_then = then;
	RB_INSERT(limit_tree, &waiting, s);
	evtimer_del(s->timer);
	return 0;
}

static void
limit_answer(struct session *s, int ok)
{
	void	(*then)(struct session *, int) = s->limit_then;

	RB_REMOVE(limit_tree, &waiting, s);
	s->limit_req_id = 0;
	s->limit_then = NULL;
	then(s, ok);
}

/*
 * The 451 for a refusal, and its log line; which is "" when authd
 * could not tell.  Not the client's error (max-errors): like 452 for
 * too many recipients, RFC 5321 4.5.3.1.10.
 */
void
smtp_limit_refused(struct session *s, enum limit_kind kind, const char *which)
{
	const struct limit_conf	*l = &worker->conf->limit;
	int			 rcpt = kind == LIMIT_RECIPIENTS;

	if (which[0] == '\0') {
		log_info("session %016llx: sending limits could not be "
		    "checked", (unsigned long long)s->id);
		session_reply(s, "451 4.3.0 Sending limits cannot be checked "
		    "now; try again later");
		return;
	}
	log_info("session %016llx: %s limit reached for %s %s (%d per %ds)",
	    (unsigned long long)s->id, rcpt ? "recipient" : "message",
	    which, strcmp(which, "address") == 0 ? s->client_addr :
	    s->auth_user, rcpt ? l->recipients : l->messages,
	    rcpt ? l->recipients_window : l->messages_window);
	session_reply(s, "451 4.7.1 Sending limit reached: too many %s "
	    "from this %s; try again later", rcpt ? "recipients" : "messages",
	    which);
}

void
smtp_limit_verdict(struct imsg *imsg)
{
	struct limit_verdict	 v;
	struct session		 key, *s;

	imsgev_data(imsg, &v, sizeof(v));
	v.which[sizeof(v.which) - 1] = '\0';
	key.limit_req_id = v.req_id;
	if ((s = RB_FIND(limit_tree, &waiting, &key)) == NULL)
		return;		/* the session went away meanwhile */
	strlcpy(s->limit_which, v.tempfail ? "" : v.which,
	    sizeof(s->limit_which));
	limit_answer(s, v.ok != 0);
}

/* authd went away: nobody answers; refuse what waits, for now. */
void
smtp_limit_authd_lost(void)
{
	struct session	*s, *next;

	RB_FOREACH_SAFE(s, limit_tree, &waiting, next) {
		s->limit_which[0] = '\0';
		limit_answer(s, 0);
	}
}

void
smtp_limit_session_gone(struct session *s)
{
	if (s->limit_req_id != 0) {
		RB_REMOVE(limit_tree, &waiting, s);
		s->limit_req_id = 0;
		s->limit_then = NULL;
	}
}
