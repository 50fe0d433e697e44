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
#include "log.h"
#include "proto.h"

static struct event	*control_ev;

/* A CTL_REFRESH whose checkers have not all answered yet. */
struct ctl_wait {
	TAILQ_ENTRY(ctl_wait)	 entry;
	struct worker_channel	*wc;		/* NULL once it closed */
	int			 pending;
};
static TAILQ_HEAD(, ctl_wait) ctl_waits = TAILQ_HEAD_INITIALIZER(ctl_waits);

static int	control_hello(struct imsgev *, struct imsg *);
static int	control_test(struct imsgev *, struct imsg *);
static int	control_stats(struct imsgev *, struct imsg *);
static int	control_state(struct imsgev *, struct imsg *);
static int	control_reload(struct imsgev *, struct imsg *);
static int	control_keys(struct imsgev *, struct imsg *);
static int	control_refresh(struct imsgev *, struct imsg *);

/* Until the versions are known to agree, nothing but the hello. */
static const struct imsg_dispatch from_client_hello[] = {
	{ IMSG_CTL_HELLO, sizeof(struct hello), 0, control_hello },
	{ 0, 0, 0, NULL }
};

static const struct imsg_dispatch from_client[] = {
	{ IMSG_CTL_TEST, sizeof(struct auth_request), IMSGEV_MIN,
	    control_test },
	{ IMSG_CTL_STATS, 0, 0, control_stats },
	{ IMSG_CTL_STATE, 0, 0, control_state },
	{ IMSG_CTL_RELOAD, 0, 0, control_reload },
	{ IMSG_CTL_KEYS, sizeof(struct ctl_checker), 0, control_keys },
	{ IMSG_CTL_REFRESH, sizeof(struct ctl_checker), 0, control_refresh },
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
	(void)imsg;
	chain_stats_foreach(control_stats_one, iev->arg);
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
	return 0;
}

/* Each checker's own line (an sql checker's connections and hosts). */
static int
control_state(struct imsgev *iev, struct imsg *imsg)
{
	struct worker_channel	*wc = iev->arg;
	const struct checker	*c;
	struct ctl_state	 st;
	int			 i, n;

	(void)imsg;
	c = chain_checkers(&n);
	for (i = 0; i < n; i++) {
		memset(&st, 0, sizeof(st));
		if (chain_checker_stats(i, st.state, sizeof(st.state)) == -1)
			continue;
		strlcpy(st.checker, c[i].conf->name, sizeof(st.checker));
		imsgev_compose(&wc->iev, IMSG_CTL_STATE_REPLY, 0, -1, &st,
		    sizeof(st));
	}
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
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
