/*
 * authd.c -- portcullis-authd: the process that holds the credentials.
 *
 * Started by master with its channel on PROC_PARENT_FD.  It takes its
 * configuration from master, drops to the auth user, and then serves
 * one channel per worker, handed over by master.  Everything a worker
 * sends is checked for length and type; a worker that sends anything
 * malformed loses its channel, and nobody else notices.  A new
 * configuration (reload) replaces the old one in place.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "authd.h"
#include "config_imsg.h"
#include "log.h"
#include "privsep.h"
#include "proto.h"

struct authd		*authd;
static struct config_recv conf_recv = { NULL, -1 };

static void	master_dispatch(struct imsgev *, struct imsg *);
static void	master_closed(struct imsgev *);
static void	worker_dispatch(struct imsgev *, struct imsg *);
static void	worker_closed(struct imsgev *);

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullis-authd [-dv]\n"
	    "(started by portcullisd, not by hand)\n");
	exit(1);
}

static void
authd_configure(struct portcullis_conf *conf)
{
	int	 first = authd->conf == NULL;

	if (authd->conf != NULL)
		config_free(authd->conf);
	authd->conf = conf;
	if (first) {
		/* authd keeps its root: the credential store lives there. */
		if (privsep_drop(conf->auth_user, NULL))
			log_debug("running as %s", conf->auth_user);
		imsgev_compose(&authd->master, IMSG_CHILD_READY, 0, -1,
		    NULL, 0);
	} else
		log_info("configuration reloaded");
}

static void
channel_free(struct worker_channel *wc)
{
	TAILQ_REMOVE(&authd->channels, wc, entry);
	free(wc);
}

static void
channel_new(struct imsg *imsg)
{
	struct authd_channel	 ac;
	struct worker_channel	*wc;
	int			 fd;

	fd = imsg_get_fd(imsg);
	if (imsg_get_data(imsg, &ac, sizeof(ac)) == -1 || fd == -1) {
		log_warnx("malformed %s from master",
		    imsg_type_name(imsg_get_type(imsg)));
		if (fd != -1)
			close(fd);
		return;
	}
	if ((wc = calloc(1, sizeof(*wc))) == NULL)
		fatal("calloc");
	wc->worker_id = ac.worker_id;
	wc->generation = ac.generation;
	snprintf(wc->name, sizeof(wc->name), "worker %u", ac.worker_id);
	/* No descriptor is ever accepted from a worker. */
	if (imsgev_init(&wc->iev, authd->base, fd, 0, wc->name,
	    worker_dispatch, worker_closed, wc) == -1) {
		log_warn("%s: channel", wc->name);
		close(fd);
		free(wc);
		return;
	}
	TAILQ_INSERT_TAIL(&authd->channels, wc, entry);
	log_debug("%s: channel open", wc->name);
}

static void
master_dispatch(struct imsgev *iev, struct imsg *imsg)
{
	int	 verbose;

	switch (imsg_get_type(imsg)) {
	case IMSG_CONF_START:
	case IMSG_CONF_LISTENER:
	case IMSG_CONF_PKI:
	case IMSG_CONF_PKI_PEM:
	case IMSG_CONF_DOMAIN:
	case IMSG_CONF_CHECKER:
	case IMSG_CONF_SPOOL:
	case IMSG_CONF_END:
		switch (config_recv(&conf_recv, imsg)) {
		case -1:
			fatalx("malformed configuration message");
		case 1:
			authd_configure(conf_recv.conf);
			conf_recv.conf = NULL;
		}
		break;
	case IMSG_AUTHD_CHANNEL:
		channel_new(imsg);
		break;
	case IMSG_CTL_SHUTDOWN:
		log_info("shutting down");
		event_base_loopexit(authd->base, NULL);
		break;
	case IMSG_CTL_VERBOSE:
		if (imsg_get_data(imsg, &verbose, sizeof(verbose)) == 0)
			log_setverbose(verbose);
		break;
	default:
		log_warnx("unexpected %s from %s",
		    imsg_type_name(imsg_get_type(imsg)), iev->name);
	}
}

static void
master_closed(struct imsgev *iev)
{
	(void)iev;
	log_info("master went away, exiting");
	exit(0);
}

static void
worker_ping(struct worker_channel *wc, struct imsg *imsg)
{
	struct ping	 ping;

	if (imsg_get_data(imsg, &ping, sizeof(ping)) == -1) {
		log_warnx("%s: malformed PING, closing channel", wc->name);
		imsgev_close(&wc->iev);
		return;
	}
	ping.worker_id = wc->worker_id;
	imsgev_compose(&wc->iev, IMSG_PONG, wc->worker_id, -1, &ping,
	    sizeof(ping));
}

static void
worker_dispatch(struct imsgev *iev, struct imsg *imsg)
{
	struct worker_channel	*wc = iev->arg;

	switch (imsg_get_type(imsg)) {
	case IMSG_PING:
		worker_ping(wc, imsg);
		break;
	default:
		log_warnx("%s: unexpected %s, closing channel", wc->name,
		    imsg_type_name(imsg_get_type(imsg)));
		imsgev_close(iev);
	}
}

static void
worker_closed(struct imsgev *iev)
{
	struct worker_channel	*wc = iev->arg;

	log_debug("%s: channel closed", wc->name);
	channel_free(wc);
}

int
main(int argc, char *argv[])
{
	int	 ch, debug = 0, verbose = 0;

	privsep_title_init(argc, argv);

	while ((ch = getopt(argc, argv, "dv")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	privsep_child_init("authd", debug, verbose);

	if ((authd = calloc(1, sizeof(*authd))) == NULL)
		fatal("calloc");
	TAILQ_INIT(&authd->channels);
	if ((authd->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (imsgev_init(&authd->master, authd->base, PROC_PARENT_FD, 1,
	    "master", master_dispatch, master_closed, NULL) == -1)
		fatal("master channel");

	event_base_dispatch(authd->base);
	log_info("exiting");
	return 0;
}
