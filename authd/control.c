/*
 * control.c -- authd's control socket, for authctl(8).
 *
 * master binds the socket (mode 0600, root's) and hands it over; authd
 * accepts, and checks each caller's uid again with getpeereid(): root,
 * or authd's own user when nothing runs as root.  A caller is served
 * like a worker channel, through a dispatch table: a malformed request
 * closes that connection only.
 *
 *	CTL_HELLO	first, and only first: both sides' PROTO_VERSION
 *	CTL_TEST	runs the live chain for a credential
 *	CTL_STATS	counts per checker and result
 *	CTL_RELOAD	asks master to reload, as SIGHUP does
 *	CTL_KEYS	the keys the checkers trust (ops->keys)
 *	CTL_REFRESH	the checkers fetch their keys now (ops->refresh);
 *			answered when the fetches ended
 *	CTL_PENALTY_LIST	this node's penalties (fleet.c)
 *	CTL_PENALTY_CLEAR	lift those of an address or a user, here
 *			and in Redis
 *
 * The checkers are reached through their ops only: control.c knows no
 * type of checker.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd.h"
#include "fleet.h"
#include "log.h"
#include "proto.h"
#include "util.h"

static struct event	*control_ev;

/*
 * A control request still waiting: a CTL_REFRESH whose checkers have
 * not all answered, or a penalty list or clear waiting on Redis.
 */
struct ctl_wait {
	TAILQ_ENTRY(ctl_wait)	 entry;
	struct worker_channel	*wc;		/* NULL once it closed */
	int			 pending;
};
static TAILQ_HEAD(, ctl_wait) ctl_waits = TAILQ_HEAD_INITIALIZER(ctl_waits);

static int	control_hello(struct imsgev *, struct imsg *);
static int	control_test(struct imsgev *, struct imsg *);
static int	control_stats(struct imsgev *, struct imsg *);
static int	control_reload(struct imsgev *, struct imsg *);
static int	control_keys(struct imsgev *, struct imsg *);
static int	control_refresh(struct imsgev *, struct imsg *);
static int	control_penalty_list(struct imsgev *, struct imsg *);
static int	control_penalty_clear(struct imsgev *, struct imsg *);

/* Until the versions are known to agree, nothing but the hello. */
static const struct imsg_dispatch from_client_hello[] = {
	{ IMSG_CTL_HELLO, sizeof(struct hello), 0, control_hello },
	{ 0, 0, 0, NULL }
};

static const struct imsg_dispatch from_client[] = {
	{ IMSG_CTL_TEST, sizeof(struct auth_request), IMSGEV_MIN,
	    control_test },
	{ IMSG_CTL_STATS, 0, 0, control_stats },
	{ IMSG_CTL_RELOAD, 0, 0, control_reload },
	{ IMSG_CTL_KEYS, sizeof(struct ctl_checker), 0, control_keys },
	{ IMSG_CTL_REFRESH, sizeof(struct ctl_checker), 0, control_refresh },
	{ IMSG_CTL_PENALTY_LIST, sizeof(struct ctl_penalty), 0,
	    control_penalty_list },
	{ IMSG_CTL_PENALTY_CLEAR, sizeof(struct ctl_penalty), 0,
	    control_penalty_clear },
	{ 0, 0, 0, NULL }
};

static void
control_stats_one(const char *checker, const unsigned long *count,
    void *arg)
{
	struct worker_channel	*wc = arg;
	struct ctl_stats	 st;

	memset(&st, 0, sizeof(st));
	strlcpy(st.checker, checker, sizeof(st.checker));
	st.ok = count[AUTH_OK];
	st.fail = count[AUTH_FAIL];
	st.tempfail = count[AUTH_TEMPFAIL];
	imsgev_compose(&wc->iev, IMSG_CTL_STATS_REPLY, 0, -1, &st,
	    sizeof(st));
}

/*
 * authctl says its version first, and hears ours in any case: on a
 * mismatch both sides can then name both versions.  The answer must
 * leave before the refusal closes the connection.
 */
static int
control_hello(struct imsgev *iev, struct imsg *imsg)
{
	struct hello	 theirs, ours;

	imsgev_data(imsg, &theirs, sizeof(theirs));
	memset(&ours, 0, sizeof(ours));
	ours.version = PROTO_VERSION;
	imsgev_compose(iev, IMSG_CTL_HELLO, 0, -1, &ours, sizeof(ours));
	if (theirs.version != PROTO_VERSION) {
		(void)imsgev_flush(iev);
		return imsgev_reject(iev, "authctl speaks protocol version "
		    "%u, authd speaks %u", theirs.version, PROTO_VERSION);
	}
	imsgev_set_table(iev, from_client);
	return 0;
}

static int
control_test(struct imsgev *iev, struct imsg *imsg)
{
	return authd_auth_request(iev->arg, imsg);
}

static int
control_stats(struct imsgev *iev, struct imsg *imsg)
{
	const struct fleet_counter_name	*n;
	const struct checker		*cs;
	struct ctl_counter		 c;
	struct ctl_stats_line		 sl;
	int				 i, nc;

	(void)imsg;
	chain_stats_foreach(control_stats_one, iev->arg);
	/* Then what each checker says of itself (per ldap server...). */
	cs = chain_checkers(&nc);
	for (i = 0; i < nc; i++) {
		memset(&sl, 0, sizeof(sl));
		if (chain_checker_stats(i, sl.line, sizeof(sl.line)) == -1)
			continue;
		strlcpy(sl.checker, cs[i].conf->name, sizeof(sl.checker));
		imsgev_compose(iev, IMSG_CTL_STATS_LINE, 0, -1, &sl,
		    sizeof(sl));
	}
	for (n = fleet_counter_names; n->name != NULL; n++) {
		memset(&c, 0, sizeof(c));
		strlcpy(c.name, n->name, sizeof(c.name));
		memcpy(&c.value, (const char *)&fleet_counters + n->offset,
		    sizeof(c.value));
		imsgev_compose(iev, IMSG_CTL_COUNTER, 0, -1, &c, sizeof(c));
	}
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
	return 0;
}

static void
control_penalty_row(const struct ctl_penalty *p, void *arg)
{
	struct worker_channel	*wc = arg;

	imsgev_compose(&wc->iev, IMSG_CTL_PENALTY, 0, -1, p, sizeof(*p));
}

/* A row for whoever still waits on w. */
static void
control_wait_row(const struct ctl_penalty *p, void *arg)
{
	struct ctl_wait	*w = arg;

	if (w->wc != NULL)
		control_penalty_row(p, w->wc);
}

static struct ctl_wait *
control_wait(struct imsgev *iev)
{
	struct ctl_wait	*w;

	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->wc = iev->arg;
	TAILQ_INSERT_TAIL(&ctl_waits, w, entry);
	return w;
}

/* A shared state configured but not answering: one row says so. */
static void
control_wait_end(struct ctl_wait *w, int answered)
{
	struct ctl_penalty	 p;

	if (w->wc != NULL) {
		if (!answered) {
			memset(&p, 0, sizeof(p));
			p.where = PENALTY_WHERE_DOWN;
			control_penalty_row(&p, w->wc);
		}
		imsgev_compose(&w->wc->iev, IMSG_CTL_END, 0, -1, NULL, 0);
	}
	TAILQ_REMOVE(&ctl_waits, w, entry);
	free(w);
}

static void
control_penalty_listed(void *arg, int answered)
{
	control_wait_end(arg, answered);
}

/* This node's penalties, then the shared ones (Redis) if any. */
static int
control_penalty_list(struct imsgev *iev, struct imsg *imsg)
{
	struct ctl_penalty	 which;
	struct ctl_wait		*w;

	imsgev_data(imsg, &which, sizeof(which));
	which.what[sizeof(which.what) - 1] = '\0';
	fleet_list(which.what, control_penalty_row, iev->arg);
	if (!fleet_redis_configured()) {
		imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
		return 0;
	}
	w = control_wait(iev);
	if (fleet_redis_list(which.what, CTL_PENALTY_ROWS_MAX,
	    control_wait_row, control_penalty_listed, w) == -1)
		control_wait_end(w, 0);
	return 0;
}

static void
control_penalty_cleared(void *arg, long long n)
{
	struct ctl_wait		*w = arg;
	struct ctl_penalty	 p;

	log_info("control: penalties cleared in the shared state: %s",
	    n >= 0 ? "done" : "Redis did not answer");
	if (n >= 0 && w->wc != NULL) {
		memset(&p, 0, sizeof(p));
		p.where = PENALTY_WHERE_SHARED;
		p.count = (uint32_t)n;
		control_penalty_row(&p, w->wc);
	}
	control_wait_end(w, n >= 0);
}

/* Here at once; in the shared state (Redis) when it answers. */
static int
control_penalty_clear(struct imsgev *iev, struct imsg *imsg)
{
	struct ctl_penalty	 which;
	struct ctl_wait		*w;
	char			 shown[sizeof(which.what) * 4];

	imsgev_data(imsg, &which, sizeof(which));
	which.what[sizeof(which.what) - 1] = '\0';
	which.count = fleet_clear(which.what);
	which.where = PENALTY_WHERE_NODE;
	escape_text(which.what, strlen(which.what), shown, sizeof(shown));
	log_info("control: penalties cleared for %s: %u entries here",
	    which.what[0] != '\0' ? shown : "everything", which.count);
	imsgev_compose(iev, IMSG_CTL_PENALTY, 0, -1, &which, sizeof(which));
	if (!fleet_redis_configured()) {
		imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
		return 0;
	}
	w = control_wait(iev);
	if (fleet_redis_clear(which.what, control_penalty_cleared, w) == -1)
		control_wait_end(w, 0);
	return 0;
}

static int
control_reload(struct imsgev *iev, struct imsg *imsg)
{
	(void)imsg;
	log_info("control: reload requested");
	imsgev_compose(&authd->master, IMSG_CTL_RELOAD, 0, -1, NULL, 0);
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
	return 0;
}

/* The checkers a request names: all, or the one of that name. */
static int
control_names(const struct checker *c, const struct ctl_checker *which)
{
	return which->checker[0] == '\0' ||
	    strcmp(which->checker, c->conf->name) == 0;
}

static void
control_key_row(const struct ctl_key *k, void *arg)
{
	struct worker_channel	*wc = arg;

	imsgev_compose(&wc->iev, IMSG_CTL_KEY, 0, -1, k, sizeof(*k));
}

static int
control_keys(struct imsgev *iev, struct imsg *imsg)
{
	const struct checker	*cs;
	struct ctl_checker	 which;
	int			 n;

	imsgev_data(imsg, &which, sizeof(which));
	which.checker[sizeof(which.checker) - 1] = '\0';
	cs = chain_checkers(&n);
	for (int i = 0; i < n; i++)
		if (cs[i].ops->keys != NULL && control_names(&cs[i], &which))
			cs[i].ops->keys(&cs[i], control_key_row, iev->arg);
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
	return 0;
}

static void
control_refreshed(void *arg, const struct ctl_refreshed *r)
{
	struct ctl_wait	*w = arg;

	if (r != NULL && w->wc != NULL)
		imsgev_compose(&w->wc->iev, IMSG_CTL_REFRESHED, 0, -1, r,
		    sizeof(*r));
	if (--w->pending > 0)
		return;
	if (w->wc != NULL)
		imsgev_compose(&w->wc->iev, IMSG_CTL_END, 0, -1, NULL, 0);
	TAILQ_REMOVE(&ctl_waits, w, entry);
	free(w);
}

static int
control_refresh(struct imsgev *iev, struct imsg *imsg)
{
	const struct checker	*cs;
	struct ctl_checker	 which;
	struct ctl_wait		*w;
	int			 n;

	imsgev_data(imsg, &which, sizeof(which));
	which.checker[sizeof(which.checker) - 1] = '\0';
	if ((w = calloc(1, sizeof(*w))) == NULL)
		fatal("calloc");
	w->wc = iev->arg;
	/* one for this loop, so that an answer given at once ends nothing */
	w->pending = 1;
	TAILQ_INSERT_TAIL(&ctl_waits, w, entry);
	log_info("control: key refresh requested for %s",
	    which.checker[0] != '\0' ? "one checker" : "every checker");
	cs = chain_checkers(&n);
	for (int i = 0; i < n; i++)
		if (cs[i].ops->refresh != NULL &&
		    control_names(&cs[i], &which)) {
			w->pending++;
			cs[i].ops->refresh(&cs[i], control_refreshed, w);
		}
	control_refreshed(w, NULL);
	return 0;
}

static void
control_closed(struct imsgev *iev)
{
	struct ctl_wait	*w;

	/* Refreshes still running answer nobody. */
	TAILQ_FOREACH(w, &ctl_waits, entry)
		if (w->wc == iev->arg)
			w->wc = NULL;
	authd_channel_free(iev->arg);
}

static void
control_accept(evutil_socket_t lfd, short ev, void *arg)
{
	struct worker_channel	*wc;
	uid_t			 uid;
	gid_t			 gid;
	int			 fd;

	(void)ev; (void)arg;
	if ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) ==
	    -1) {
		if (errno != EAGAIN && errno != EINTR)
			log_warn("control: accept");
		return;
	}
	if (getpeereid(fd, &uid, &gid) == -1 ||
	    (uid != 0 && uid != getuid())) {
		log_warnx("control: refused a caller with uid %d", (int)uid);
		close(fd);
		return;
	}
	if ((wc = calloc(1, sizeof(*wc))) == NULL) {
		close(fd);
		return;
	}
	wc->control = 1;
	strlcpy(wc->name, "control", sizeof(wc->name));
	TAILQ_INIT(&wc->pending);
	if (imsgev_init(&wc->iev, authd->base, fd, 0, wc->name, NULL,
	    control_closed, wc) == -1) {
		close(fd);
		free(wc);
		return;
	}
	imsgev_set_table(&wc->iev, from_client_hello);
}

void
control_init(int fd)
{
	if (control_ev != NULL) {
		/* A reload: the socket stays the one master made first. */
		close(fd);
		return;
	}
	control_ev = event_new(authd->base, fd, EV_READ | EV_PERSIST,
	    control_accept, NULL);
	if (control_ev == NULL || event_add(control_ev, NULL) == -1)
		fatalx("control socket");
}
