/*
 * authd.c -- portcullis-authd: the process that holds the credentials.
 *
 * Started by master with its channel on PROC_PARENT_FD.  It takes its
 * configuration from master, drops to the auth user, opens its stores,
 * enters its sandbox (sandbox.c), and then serves
 * one channel per worker, handed over by master.  Everything a worker
 * sends is checked against from_worker[] and then for content; a
 * worker that sends anything malformed loses its channel, and nobody
 * else notices.  A new
 * configuration (reload) replaces the old one in place.
 */

#include <sys/types.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "authd.h"
#include "config_imsg.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "privsep.h"
#include "proto.h"
#include "sandbox.h"
#include "hashpool.h"
#include "http.h"
#include "passwd.h"
#include "store.h"

struct authd		*authd;
static struct config_recv conf_recv = { NULL, -1, -1 };

static int	hash_threads(void);
static void	ldap_unveil(const struct ldap_conf *);
static int	master_conf(struct imsgev *, struct imsg *);
static int	master_channel(struct imsgev *, struct imsg *);
static int	master_shutdown(struct imsgev *, struct imsg *);
static void	master_closed(struct imsgev *);
static int	worker_ping(struct imsgev *, struct imsg *);
static int	worker_auth_request(struct imsgev *, struct imsg *);
static int	worker_auth_cancel(struct imsgev *, struct imsg *);
static int	worker_limit_request(struct imsgev *, struct imsg *);
static int	worker_scram_start(struct imsgev *, struct imsg *);
static int	worker_scram_final(struct imsgev *, struct imsg *);
static void	worker_closed(struct imsgev *);
static int	master_metrics_channel(struct imsgev *, struct imsg *);

static struct imsgev	 metrics_iev;	/* to portcullis-metrics, if any */

/*
 * What master may send: the configuration, in order (config.c refuses
 * a piece before CONF_START); CONF_END switches to from_master_running.
 * No PEM and no spool for authd.  A refusal closes the channel, and
 * authd exits.
 */
static const struct imsg_dispatch from_master_conf[] = {
	{ IMSG_CONF_START, sizeof(struct portcullis_conf), 0, master_conf },
	{ IMSG_CONF_LISTENER, sizeof(struct listener), 0, master_conf },
	{ IMSG_CONF_PKI, sizeof(struct pki), 0, master_conf },
	{ IMSG_CONF_DOMAIN, sizeof(struct local_domain), 0, master_conf },
	{ IMSG_CONF_STATIC_USER, sizeof(struct static_user), 0, master_conf },
	{ IMSG_CONF_NETWORK, sizeof(struct netaddr), 0, master_conf },
	{ IMSG_CONF_CONTROL, 0, IMSGEV_FD | IMSGEV_ONCE, master_conf },
	{ IMSG_CONF_CHECKER, sizeof(struct checker_conf), 0, master_conf },
	{ IMSG_CONF_CHECKER_SQL, sizeof(struct sql_conf), 0, master_conf },
	{ IMSG_CONF_END, 0, IMSGEV_ONCE, master_conf },
	/* a metrics process may start while a reload is under way */
	{ IMSG_METRICS_CHANNEL, 0, IMSGEV_FD, master_metrics_channel },
	{ 0, 0, 0, NULL }
};

/* A reload is a new CONF_START: back to from_master_conf. */
static const struct imsg_dispatch from_master_running[] = {
	{ IMSG_CONF_START, sizeof(struct portcullis_conf), 0, master_conf },
	{ IMSG_AUTHD_CHANNEL, sizeof(struct authd_channel), IMSGEV_FD,
	    master_channel },
	{ IMSG_METRICS_CHANNEL, 0, IMSGEV_FD, master_metrics_channel },
	{ IMSG_CTL_SHUTDOWN, 0, 0, master_shutdown },
	{ IMSG_CTL_VERBOSE, sizeof(int), 0, privsep_verbose },
	{ 0, 0, 0, NULL }
};

/*
 * What a worker may send.  A worker may be compromised: a refusal
 * closes that worker's channel, and nobody else notices.  The channel
 * takes no descriptors at all (imsgev_init without fdpass).
 */
static const struct imsg_dispatch from_worker[] = {
	{ IMSG_PING, sizeof(struct ping), 0, worker_ping },
	{ IMSG_AUTH_REQUEST, sizeof(struct auth_request), IMSGEV_MIN,
	    worker_auth_request },
	{ IMSG_AUTH_CANCEL, sizeof(struct auth_cancel), 0,
	    worker_auth_cancel },
	{ IMSG_LIMIT_REQUEST, sizeof(struct limit_request), 0,
	    worker_limit_request },
	{ IMSG_SCRAM_START, sizeof(struct scram_start), IMSGEV_MIN,
	    worker_scram_start },
	{ IMSG_SCRAM_FINAL, sizeof(struct scram_step), IMSGEV_MIN,
	    worker_scram_final },
	{ 0, 0, 0, NULL }
};

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullis-authd [-dv]\n"
	    "(started by portcullisd, not by hand)\n");
	exit(1);
}

/*
 * What authd opens by name once it is sandboxed, for unveil(2) where
 * there is one: the stores (a reload may reopen them), the cache key,
 * the CA files, and what libcurl's resolver reads.  On OpenBSD a
 * reload that names a new path needs a restart of the daemon.
 */
static void
authd_unveil(const struct portcullis_conf *conf)
{
	const struct checker_conf	*c;

	TAILQ_FOREACH(c, &conf->checkers, entry) {
		if (c->path[0] != '\0')
			sandbox_unveil(c->path, "rwc");
		if (c->type == CHECKER_CACHE && c->cache.key_file[0] != '\0')
			sandbox_unveil(c->cache.key_file, "rwc");
		if (c->type == CHECKER_OAUTH && c->oauth.ca_file[0] != '\0')
			sandbox_unveil(c->oauth.ca_file, "r");
		if (c->type == CHECKER_LDAP)
			ldap_unveil(&c->ldap);
	}
	sandbox_unveil("/etc/ssl/cert.pem", "r");
	sandbox_unveil("/etc/resolv.conf", "r");
	sandbox_unveil("/etc/hosts", "r");
}

/*
 * An ldap checker: its CA file, ldap.conf (libldap reads it), and the
 * socket of each ldapi:// URL, whose path is percent-encoded in it.
 */
static void
ldap_unveil(const struct ldap_conf *l)
{
	char		 path[CONF_HOST_MAX];
	const char	*p;
	size_t		 o;
	int		 i;
	unsigned int	 x;

	if (l->ca_file[0] != '\0')
		sandbox_unveil(l->ca_file, "r");
	sandbox_unveil("/etc/openldap/ldap.conf", "r");
	for (i = 0; i < l->nurls; i++) {
		if (strncasecmp(l->urls[i], "ldapi://", 8) != 0)
			continue;
		for (p = l->urls[i] + 8, o = 0; *p != '\0' && *p != '/' &&
		    o < sizeof(path) - 1; p++) {
			if (*p == '%' && sscanf(p + 1, "%2x", &x) == 1) {
				path[o++] = (char)x;
				p += 2;
			} else
				path[o++] = *p;
		}
		path[o] = '\0';
		if (o > 0)
			sandbox_unveil(path, "rw");
	}
}

static void
authd_configure(struct portcullis_conf *conf)
{
	struct hello	 hello;
	int		 first = authd->conf == NULL;

	if (authd->conf != NULL)
		chain_retire_conf(authd->conf);
	authd->conf = conf;
	if (first) {
		/* authd keeps its root: the credential store lives there. */
		if (privsep_drop(conf->auth_user, NULL))
			log_debug("running as %s", conf->auth_user);
		if (hashpool_init(authd->base, hash_threads()) == -1)
			fatal("hash pool");
		if (http_init(authd->base) == -1)
			fatalx("cannot start libcurl");
		/* Made now, so the first unknown user costs no more. */
		(void)passwd_dummy_hash();
	}
	if (chain_configure(conf) == -1)
		fatalx("cannot set up the checker chain");
	fleet_configure(conf);
	if (first) {
		authd_unveil(conf);
		sandbox_enter(SANDBOX_AUTHD, 0);
		memset(&hello, 0, sizeof(hello));
		hello.version = PROTO_VERSION;
		imsgev_compose(&authd->master, IMSG_CHILD_READY, 0, -1,
		    &hello, sizeof(hello));
	} else
		log_info("configuration reloaded");
}

/* One thread per core: hashing is all CPU. */
static int
hash_threads(void)
{
	long	 n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : (n > 64 ? 64 : (int)n);
}

void
authd_channel_free(struct worker_channel *wc)
{
	struct auth_ctx	*ctx;

	/* Checks in flight finish on the pool and are then dropped. */
	while ((ctx = TAILQ_FIRST(&wc->pending)) != NULL) {
		TAILQ_REMOVE(&wc->pending, ctx, entry);
		ctx->wc = NULL;
		ctx->cancelled = 1;
		(void)scram_abandon(ctx);
	}
	if (!wc->control)
		TAILQ_REMOVE(&authd->channels, wc, entry);
	free(wc);
}

static struct auth_ctx *
ctx_new(struct worker_channel *wc, const struct auth_request *req,
    const uint8_t *secret, size_t len)
{
	struct auth_ctx	*ctx;

	if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
		fatal("calloc");
	ctx->wc = wc;
	ctx->control = wc->control;
	ctx->req_id = req->req_id;
	ctx->session_id = req->session_id;
	ctx->mechanism = req->mechanism;
	strlcpy(ctx->client, req->client, sizeof(ctx->client));
	strlcpy(ctx->listener, req->listener, sizeof(ctx->listener));
	if ((ctx->password = malloc(len + 1)) == NULL)
		fatal("malloc");
	memcpy(ctx->password, secret, len);
	ctx->password[len] = '\0';
	ctx->pwlen = len;
	TAILQ_INSERT_TAIL(&wc->pending, ctx, entry);
	return ctx;
}

/*
 * "user NUL token": the user may be empty (OAUTHBEARER without a=);
 * the token is RFC 6750 2.1 b64token, as the worker checked already.
 */
static int
token_request(struct worker_channel *wc, const struct auth_request *req,
    const struct auth_cred *cred)
{
	struct auth_ctx	*ctx;

	ctx = ctx_new(wc, req, cred->secret, cred->secret_len);
	memcpy(ctx->user, cred->user, cred->user_len);
	ctx->user[cred->user_len] = '\0';
	if (cred->user_len > 0 && store_name_normalize(ctx->user, ctx->user,
	    sizeof(ctx->user)) == -1) {
		ctx->why = "bad user name";
		chain_reject(ctx);
		return 0;
	}
	chain_start(ctx);
	return 0;
}

/*
 * A worker may be compromised: everything in the request is checked
 * (request.c), and -1 (anything wrong) closes that worker's channel.
 * The credential stays in the imsg, which imsg_free() wipes, and in
 * the ctx, which chain.c frees with freezero().
 */
int
authd_auth_request(struct worker_channel *wc, struct imsg *imsg)
{
	struct auth_request	 req;
	struct auth_cred	 cred;
	struct auth_ctx		*ctx;

	if (auth_request_decode(imsg, &req, &cred) == -1)
		return -1;
	if (req.mechanism & SASL_TOKEN_MECHS)
		return token_request(wc, &req, &cred);

	ctx = ctx_new(wc, &req, cred.secret, cred.secret_len);
	memcpy(ctx->user, cred.user, cred.user_len);
	ctx->user[cred.user_len] = '\0';
	/* Acting for another user (RFC 4616 authzid) is not offered. */
	if (cred.authzid_len != 0 && (cred.authzid_len != cred.user_len ||
	    memcmp(cred.authzid, cred.user, cred.user_len) != 0)) {
		ctx->why = "authzid differs";
		ctx->result = AUTH_FAIL;
		chain_reject(ctx);
		return 0;
	}
	if (store_name_normalize(ctx->user, ctx->user, sizeof(ctx->user)) ==
	    -1) {
		ctx->why = "bad user name";
		chain_reject(ctx);
		return 0;
	}
	chain_start(ctx);
	return 0;
}

static int
worker_auth_request(struct imsgev *iev, struct imsg *imsg)
{
	return authd_auth_request(iev->arg, imsg);
}

static int
worker_limit_request(struct imsgev *iev, struct imsg *imsg)
{
	return limit_request(iev->arg, imsg);
}

static int
worker_auth_cancel(struct imsgev *iev, struct imsg *imsg)
{
	struct worker_channel	*wc = iev->arg;
	struct auth_cancel	 c;
	struct auth_ctx		*ctx;

	imsgev_data(imsg, &c, sizeof(c));
	TAILQ_FOREACH(ctx, &wc->pending, entry)
		if (ctx->req_id == c.req_id)
			break;
	if (ctx == NULL)
		return 0;
	TAILQ_REMOVE(&wc->pending, ctx, entry);
	ctx->wc = NULL;
	ctx->cancelled = 1;
	(void)scram_abandon(ctx);
	return 0;
}

static int
worker_scram_start(struct imsgev *iev, struct imsg *imsg)
{
	return scram_start(iev->arg, imsg);
}

static int
worker_scram_final(struct imsgev *iev, struct imsg *imsg)
{
	return scram_final(iev->arg, imsg);
}

/* The descriptor of a new worker's channel, from master. */
static int
master_channel(struct imsgev *iev, struct imsg *imsg)
{
	struct authd_channel	 ac;
	struct worker_channel	*wc;
	int			 fd;

	(void)iev;
	fd = imsg_get_fd(imsg);
	imsgev_data(imsg, &ac, sizeof(ac));
	if ((wc = calloc(1, sizeof(*wc))) == NULL)
		fatal("calloc");
	wc->worker_id = ac.worker_id;
	wc->generation = ac.generation;
	snprintf(wc->name, sizeof(wc->name), "worker %u", ac.worker_id);
	TAILQ_INIT(&wc->pending);
	/* No descriptor is ever accepted from a worker. */
	if (imsgev_init(&wc->iev, authd->base, fd, 0, wc->name, NULL,
	    worker_closed, wc) == -1) {
		log_warn("%s: channel", wc->name);
		close(fd);
		free(wc);
		return 0;
	}
	imsgev_set_table(&wc->iev, from_worker);
	/* A worker that never reads its answers stops being read. */
	wc->iev.wq_max = AUTHD_CHANNEL_WQ_MAX;
	TAILQ_INSERT_TAIL(&authd->channels, wc, entry);
	log_debug("%s: channel open", wc->name);
	return 0;
}

/* metrics asks for our counters on it (common/metrics.c answers). */
static int
master_metrics_channel(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	metrics_collector(chain_metrics_collect);
	metrics_channel_open(&metrics_iev, authd->base, imsg_get_fd(imsg),
	    "metrics");
	return 0;
}

static int
master_conf(struct imsgev *iev, struct imsg *imsg)
{
	if (imsg_get_type(imsg) == IMSG_CONF_START)
		imsgev_set_table(iev, from_master_conf);
	switch (config_recv(&conf_recv, imsg)) {
	case -1:
		return imsgev_reject(iev, "malformed or out of order");
	case 1:
		imsgev_set_table(iev, from_master_running);
		authd_configure(conf_recv.conf);
		conf_recv.conf = NULL;
		if (conf_recv.control_fd != -1)
			control_init(conf_recv.control_fd);
		conf_recv.control_fd = -1;
	}
	return 0;
}

static int
master_shutdown(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
	log_info("shutting down");
	event_base_loopexit(authd->base, NULL);
	return 0;
}

static void
master_closed(struct imsgev *iev)
{
	(void)iev;
	log_info("master went away, exiting");
	exit(0);
}

static int
worker_ping(struct imsgev *iev, struct imsg *imsg)
{
	struct worker_channel	*wc = iev->arg;
	struct ping		 ping;

	imsgev_data(imsg, &ping, sizeof(ping));
	ping.worker_id = wc->worker_id;
	imsgev_compose(&wc->iev, IMSG_PONG, wc->worker_id, -1, &ping,
	    sizeof(ping));
	return 0;
}

static void
worker_closed(struct imsgev *iev)
{
	struct worker_channel	*wc = iev->arg;

	log_debug("%s: channel closed", wc->name);
	authd_channel_free(wc);
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
	authd->base = privsep_child_loop(&authd->master, from_master_conf,
	    master_closed);

	event_base_dispatch(authd->base);
	log_info("exiting");
	return 0;
}
