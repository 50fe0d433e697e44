/*
 * worker.c -- portcullis-worker: the unprivileged process that speaks
 * SMTP to the network.
 *
 * Started by master with its channel on PROC_PARENT_FD.  It waits for
 * its configuration, the listening sockets and the spool descriptor,
 * builds its TLS contexts, raises its descriptor limit, chroots, drops
 * to the workers' user and enters its sandbox (sandbox.c) before it
 * accepts a single connection.  Its channel to authd arrives from
 * master and is replaced whenever authd is restarted; a ping on each
 * new channel proves the path.  On CTL_SHUTDOWN it stops accepting at
 * once and gives open sessions the grace period before it closes them
 * with 421.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config_imsg.h"
#include "log.h"
#include "metrics.h"
#include "privsep.h"
#include "proto.h"
#include "sandbox.h"
#include "tls.h"
#include "worker.h"

/*
 * A new worker takes connections once authd has answered its first
 * ping: on a reload the old generation stops accepting at once, and a
 * session that reached the new one before its channel to authd would
 * get 454 for its AUTH.  If authd does not answer within this long the
 * worker listens anyway: mail without AUTH need not wait for authd.
 */
#define LISTEN_WAIT_SEC		2

struct worker		*worker;
static struct config_recv conf_recv = { NULL, -1, -1 };
static struct event	*listen_wait_ev;
static int		 listening;
static struct imsgev	 metrics_iev;	/* to portcullis-metrics, if any */

static int	master_conf(struct imsgev *, struct imsg *);
static int	master_authd_channel(struct imsgev *, struct imsg *);
static int	master_shutdown(struct imsgev *, struct imsg *);
static int	master_ticket_keys(struct imsgev *, struct imsg *);
static int	master_metrics_channel(struct imsgev *, struct imsg *);
static int	master_keys_channel(struct imsgev *, struct imsg *);
static void	master_closed(struct imsgev *);
static int	authd_pong(struct imsgev *, struct imsg *);
static int	authd_verdict(struct imsgev *, struct imsg *);
static int	authd_limit_verdict(struct imsgev *, struct imsg *);
static int	authd_scram_challenge(struct imsgev *, struct imsg *);
static int	authd_scram_ok(struct imsgev *, struct imsg *);
static void	authd_closed(struct imsgev *);

/*
 * What master may send: the configuration, once, in order (config.c
 * refuses a piece before CONF_START); CONF_END switches to
 * from_master_running.  No passwords and no control socket for a
 * worker.  A refusal closes the channel, and the worker exits.
 */
static const struct imsg_dispatch from_master_conf[] = {
	{ IMSG_CONF_START, sizeof(struct portcullis_conf), 0, master_conf },
	{ IMSG_CONF_LISTENER, sizeof(struct listener), IMSGEV_FD_MAYBE,
	    master_conf },
	{ IMSG_CONF_PKI, sizeof(struct pki), 0, master_conf },
	{ IMSG_CONF_PKI_PEM, sizeof(struct pki_pem), IMSGEV_MIN, master_conf },
	{ IMSG_CONF_DOMAIN, sizeof(struct local_domain), 0, master_conf },
	{ IMSG_CONF_NETWORK, sizeof(struct netaddr), 0, master_conf },
	{ IMSG_CONF_CHECKER, sizeof(struct checker_conf), 0, master_conf },
	{ IMSG_CONF_SPOOL, 0, IMSGEV_FD | IMSGEV_ONCE, master_conf },
	{ IMSG_CONF_END, 0, IMSGEV_ONCE, master_conf },
	{ 0, 0, 0, NULL }
};

/* A reload starts a new generation of workers: no CONF_START here. */
static const struct imsg_dispatch from_master_running[] = {
	{ IMSG_AUTHD_CHANNEL, 0, IMSGEV_FD, master_authd_channel },
	{ IMSG_METRICS_CHANNEL, 0, IMSGEV_FD, master_metrics_channel },
	{ IMSG_CTL_SHUTDOWN, 0, 0, master_shutdown },
	{ IMSG_CTL_VERBOSE, sizeof(int), 0, privsep_verbose },
	{ IMSG_TLS_TICKET_KEYS, sizeof(struct tls_ticket_keys), 0,
	    master_ticket_keys },
	{ IMSG_KEYS_CHANNEL, sizeof(struct keys_channel), IMSGEV_FD,
	    master_keys_channel },
	{ 0, 0, 0, NULL }
};

/* What authd may send on the channel master handed over. */
static const struct imsg_dispatch from_authd[] = {
	{ IMSG_PONG, sizeof(struct ping), 0, authd_pong },
	{ IMSG_AUTH_VERDICT, sizeof(struct auth_verdict), IMSGEV_MIN,
	    authd_verdict },
	{ IMSG_LIMIT_VERDICT, sizeof(struct limit_verdict), 0,
	    authd_limit_verdict },
	{ IMSG_SCRAM_CHALLENGE, sizeof(struct scram_step), IMSGEV_MIN,
	    authd_scram_challenge },
	{ IMSG_SCRAM_OK, sizeof(struct auth_verdict), IMSGEV_MIN,
	    authd_scram_ok },
	{ 0, 0, 0, NULL }
};

/* Start accepting, once: authd answered, or it took too long. */
static void
worker_listen(void)
{
	if (listening || worker->shutting_down || worker->conf == NULL)
		return;
	listening = 1;
	if (listen_wait_ev != NULL)
		evtimer_del(listen_wait_ev);
	smtp_listen_start();
}

static void
listen_wait_over(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev; (void)arg;
	if (!listening)
		log_warnx("worker %u: authd has not answered, accepting "
		    "connections without it", worker->id);
	worker_listen();
}

static void
listen_wait(void)
{
	struct timeval	 tv = { LISTEN_WAIT_SEC, 0 };

	if ((listen_wait_ev = evtimer_new(worker->base, listen_wait_over,
	    NULL)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(listen_wait_ev, &tv);
}

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullis-worker [-dv] -i id\n"
	    "(started by portcullisd, not by hand)\n");
	exit(1);
}

static void
worker_exit(void)
{
	event_base_loopexit(worker->base, NULL);
}

void
worker_session_gone(void)
{
	if (worker->shutting_down && worker->nsessions == 0 &&
	    proxy_waiting() == 0)
		worker_exit();
}

static void
grace_expired(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	 tv = { 1, 0 };

	(void)fd; (void)ev; (void)arg;
	log_info("worker %u: grace period over, closing %u session(s)",
	    worker->id, worker->nsessions);
	smtp_close_all("421 4.3.2 Service shutting down, closing "
	    "transmission channel");
	/* Let the 421 lines drain, but never wait on a stuck client. */
	event_base_loopexit(worker->base, &tv);
}

static void
worker_shutdown(void)
{
	struct timeval	 tv;

	if (worker->shutting_down)
		return;
	worker->shutting_down = 1;
	smtp_listen_close();
	log_info("worker %u: shutting down, %u session(s) open",
	    worker->id, worker->nsessions);
	if (worker->nsessions == 0 && proxy_waiting() == 0) {
		worker_exit();
		return;
	}
	tv.tv_sec = worker->conf->grace_period;
	tv.tv_usec = 0;
	worker->grace_ev = evtimer_new(worker->base, grace_expired, NULL);
	evtimer_add(worker->grace_ev, &tv);
}

/*
 * Every session needs a descriptor, and another while it delivers.
 * master raised the hard limit already where it could; a limit still
 * short of max-sessions means refused connections under load, which an
 * administrator should hear about before it happens.
 */
static void
worker_nofile(const struct portcullis_conf *conf)
{
	rlim_t	 need, have;

	need = sandbox_nofile_need(conf->max_sessions);
	if ((have = sandbox_nofile_raise(need)) < need)
		log_warnx("worker %u: only %llu descriptors allowed, "
		    "max-sessions %d needs %llu: connections beyond the "
		    "limit will be refused", worker->id,
		    (unsigned long long)have, conf->max_sessions,
		    (unsigned long long)need);
}

static void
worker_sandbox(const struct portcullis_conf *conf)
{
	unsigned int	 flags = 0;

	if (conf->deliver == DELIVER_SPOOL)
		flags |= SANDBOX_SPOOL;
	else if (conf->deliver == DELIVER_RELAY)
		flags |= SANDBOX_RELAY;
	sandbox_enter(SANDBOX_WORKER, flags);
}

static void
worker_configure(struct portcullis_conf *conf, int spool_fd)
{
	struct hello	 hello;

	worker->conf = conf;
	worker->spool_fd = spool_fd;
	/* Both need what the chroot hides: OpenSSL's files, the spool. */
	if (tls_init(conf) == -1)
		fatalx("worker %u: TLS setup failed", worker->id);
	/* Handshakes pause for the key process, the loop goes on. */
	keyproxy_async(1);
	if (deliver_init(worker->base, conf, spool_fd) == -1)
		fatalx("worker %u: delivery setup failed", worker->id);
	worker_nofile(conf);
	if (privsep_drop(conf->user, conf->chroot))
		log_debug("worker %u: running as %s in %s", worker->id,
		    conf->user, conf->chroot);
	worker_sandbox(conf);
	memset(&hello, 0, sizeof(hello));
	hello.version = PROTO_VERSION;
	hello.id = worker->id;
	imsgev_compose(&worker->master, IMSG_CHILD_READY, worker->id, -1,
	    &hello, sizeof(hello));
	/* The channel to authd comes once master has CHILD_READY. */
	listen_wait();
}

static void
authd_ping(void)
{
	struct ping	 ping;

	memset(&ping, 0, sizeof(ping));
	ping.seq = ++worker->ping_seq;
	ping.worker_id = worker->id;
	clock_gettime(CLOCK_MONOTONIC, &worker->ping_sent);
	imsgev_compose(&worker->authd, IMSG_PING, worker->id, -1, &ping,
	    sizeof(ping));
}

/* A new channel to authd: the old one, if any, is replaced. */
static int
master_authd_channel(struct imsgev *iev, struct imsg *imsg)
{
	int	 fd = imsg_get_fd(imsg);

	(void)iev;
	if (worker->authd.open) {
		worker->authd.closed = NULL;	/* replaced, not lost */
		imsgev_close(&worker->authd);
	}
	if (imsgev_init(&worker->authd, worker->base, fd, 0, "authd", NULL,
	    authd_closed, NULL) == -1) {
		log_warn("worker %u: authd channel", worker->id);
		close(fd);
		return 0;
	}
	imsgev_set_table(&worker->authd, from_authd);
	authd_ping();
	return 0;
}

/* metrics asks for our counters on it (common/metrics.c answers). */
static int
master_metrics_channel(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	metrics_channel_open(&metrics_iev, worker->base, imsg_get_fd(imsg),
	    "metrics");
	return 0;
}

static int
master_conf(struct imsgev *iev, struct imsg *imsg)
{
	switch (config_recv(&conf_recv, imsg)) {
	case -1:
		return imsgev_reject(iev, "malformed or out of order");
	case 1:
		imsgev_set_table(iev, from_master_running);
		worker_configure(conf_recv.conf, conf_recv.spool_fd);
		conf_recv.conf = NULL;
		conf_recv.spool_fd = -1;
	}
	return 0;
}

static int
master_ticket_keys(struct imsgev *iev, struct imsg *imsg)
{
	struct tls_ticket_keys	 k;

	imsgev_data(imsg, &k, sizeof(k));
	if (k.count < 1 || k.count > TLS_TICKET_KEYS) {
		explicit_bzero(&k, sizeof(k));
		return imsgev_reject(iev, "%u ticket keys", k.count);
	}
	tls_ticket_keys_set(&k);
	explicit_bzero(&k, sizeof(k));
	return 0;
}

/* The key process's channel: new, or after it was restarted. */
static int
master_keys_channel(struct imsgev *iev, struct imsg *imsg)
{
	struct keys_channel	 kc;

	(void)iev;
	imsgev_data(imsg, &kc, sizeof(kc));
	keyproxy_channel(worker->base, imsg_get_fd(imsg), kc.generation);
	return 0;
}

static int
master_shutdown(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
	worker_shutdown();
	return 0;
}

static void
master_closed(struct imsgev *iev)
{
	(void)iev;
	log_info("worker %u: master went away, exiting", worker->id);
	exit(0);
}

static int
authd_pong(struct imsgev *iev, struct imsg *imsg)
{
	struct ping	 ping;
	struct timespec	 now;
	int64_t		 usec;

	(void)iev;
	imsgev_data(imsg, &ping, sizeof(ping));
	if (ping.seq != worker->ping_seq) {
		log_warnx("worker %u: stray pong from authd", worker->id);
		return 0;
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	usec = (now.tv_sec - worker->ping_sent.tv_sec) * 1000000 +
	    (now.tv_nsec - worker->ping_sent.tv_nsec) / 1000;
	ping.rtt_usec = usec < 0 ? 0 : (uint32_t)usec;
	ping.worker_id = worker->id;
	worker_listen();
	log_info("worker %u: authd answered ping %llu in %u us", worker->id,
	    (unsigned long long)ping.seq, ping.rtt_usec);
	imsgev_compose(&worker->master, IMSG_PING_RESULT, worker->id, -1,
	    &ping, sizeof(ping));
	return 0;
}

static int
authd_verdict(struct imsgev *iev, struct imsg *imsg)
{
	return smtp_auth_verdict(iev, imsg);
}

static int
authd_limit_verdict(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	smtp_limit_verdict(imsg);
	return 0;
}

static int
authd_scram_challenge(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	smtp_auth_scram_challenge(imsg);
	return 0;
}

static int
authd_scram_ok(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	smtp_auth_scram_ok(imsg);
	return 0;
}

static void
authd_closed(struct imsgev *iev)
{
	(void)iev;
	log_warnx("worker %u: authd channel lost, waiting for a new one",
	    worker->id);
	smtp_auth_authd_lost();
	smtp_limit_authd_lost();
}

int
main(int argc, char *argv[])
{
	const char	*errstr;
	int		 ch, debug = 0, verbose = 0;
	long long	 id = -1;

	privsep_title_init(argc, argv);

	while ((ch = getopt(argc, argv, "di:v")) != -1) {
		switch (ch) {
		case 'd':
			debug = 1;
			break;
		case 'i':
			id = strtonum(optarg, 0, UINT32_MAX, &errstr);
			if (errstr != NULL)
				usage();
			break;
		case 'v':
			verbose++;
			break;
		default:
			usage();
		}
	}
	if (id == -1 || optind != argc)
		usage();

	privsep_child_init("worker", debug, verbose);

	if ((worker = calloc(1, sizeof(*worker))) == NULL)
		fatal("calloc");
	worker->id = (uint32_t)id;
	worker->spool_fd = -1;
	TAILQ_INIT(&worker->sessions);
	worker->base = privsep_child_loop(&worker->master, from_master_conf,
	    master_closed);
	if (event_base_priority_init(worker->base, TLS_PRIORITIES) == -1)
		fatalx("event_base_priority_init");

	event_base_dispatch(worker->base);
	log_info("worker %u: exiting", worker->id);
	return 0;
}
