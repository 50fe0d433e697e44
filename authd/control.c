/*
 * control.c -- authd's control socket, for authctl(8).
 *
 * master binds the socket (mode 0600, root's) and hands it over; authd
 * accepts, and checks each caller's uid again with getpeereid(): root,
 * or authd's own user when nothing runs as root.  A caller is served
 * like a worker channel, with the same length checks: a malformed
 * request closes that connection only.
 *
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

static void
control_dispatch(struct imsgev *iev, struct imsg *imsg)
{
	struct worker_channel	*wc = iev->arg;

	switch (imsg_get_type(imsg)) {
	case IMSG_CTL_TEST:
		if (authd_auth_request(wc, imsg) == 0)
			return;
		break;
	case IMSG_CTL_STATS:
		if (imsg_get_len(imsg) != 0)
			break;
		chain_stats_foreach(control_stats_one, wc);
		imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
		return;
	case IMSG_CTL_RELOAD:
		if (imsg_get_len(imsg) != 0)
			break;
		log_info("control: reload requested");
		imsgev_compose(&authd->master, IMSG_CTL_RELOAD, 0, -1, NULL,
		    0);
		imsgev_compose(iev, IMSG_CTL_END, 0, -1, NULL, 0);
		return;
	}
	log_warnx("control: bad %s request, closing the connection",
	    imsg_type_name(imsg_get_type(imsg)));
	imsgev_close(iev);
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
	if (imsgev_init(&wc->iev, authd->base, fd, 0, wc->name,
	    control_dispatch, control_closed, wc) == -1) {
		close(fd);
		free(wc);
	}
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
