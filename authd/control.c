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

static int	control_hello(struct imsgev *, struct imsg *);
static int	control_test(struct imsgev *, struct imsg *);
static int	control_stats(struct imsgev *, struct imsg *);
static int	control_reload(struct imsgev *, struct imsg *);

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

static int
control_reload(struct imsgev *iev, struct imsg *imsg)
{
	(void)imsg;
	log_info("control: reload requested");
	imsgev_compose(&authd->master, IMSG_CTL_RELOAD, 0, -1, NULL, 0);
	imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
	return 0;
}

static void
control_closed(struct imsgev *iev)
{
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
