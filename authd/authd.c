/*
 * authd.c -- portcullis-authd: the process that holds the credentials.
 *
 * Started by master with its channel on PROC_PARENT_FD.  It takes its
 * configuration from master, drops to the auth user, opens its stores,
 * enters its sandbox (sandbox.c), and then serves
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
#include "sandbox.h"
#include "hashpool.h"
#include "http.h"
#include "passwd.h"
#include "store.h"

/*
 * Answers queued for a worker that does not read them, beyond which
 * authd stops reading that worker: its requests then wait in its own
 * socket buffer instead of growing authd's memory.
 */
#define AUTHD_CHANNEL_WQ_MAX	1024

struct authd		*authd;
static struct config_recv conf_recv = { NULL, -1, -1 };

static int	hash_threads(void);
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
	}
	sandbox_unveil("/etc/ssl/cert.pem", "r");
	sandbox_unveil("/etc/resolv.conf", "r");
	sandbox_unveil("/etc/hosts", "r");
}

static void
authd_configure(struct portcullis_conf *conf)
{
	int	 first = authd->conf == NULL;

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
	if (first) {
		authd_unveil(conf);
		sandbox_enter(SANDBOX_AUTHD, 0);
		imsgev_compose(&authd->master, IMSG_CHILD_READY, 0, -1,
		    NULL, 0);
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
 * (request.c), and anything wrong closes that worker's channel.
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

static void
auth_cancel(struct worker_channel *wc, struct imsg *imsg)
{
	struct auth_cancel	 c;
	struct auth_ctx		*ctx;

	if (imsg_get_data(imsg, &c, sizeof(c)) == -1) {
		log_warnx("%s: malformed AUTH_CANCEL, closing channel",
		    wc->name);
		imsgev_close(&wc->iev);
		return;
	}
	TAILQ_FOREACH(ctx, &wc->pending, entry)
		if (ctx->req_id == c.req_id)
			break;
	if (ctx == NULL)
		return;
	TAILQ_REMOVE(&wc->pending, ctx, entry);
	ctx->wc = NULL;
	ctx->cancelled = 1;
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
	TAILQ_INIT(&wc->pending);
	/* No descriptor is ever accepted from a worker. */
	if (imsgev_init(&wc->iev, authd->base, fd, 0, wc->name,
	    worker_dispatch, worker_closed, wc) == -1) {
		log_warn("%s: channel", wc->name);
		close(fd);
		free(wc);
		return;
	}
	/* A worker that never reads its answers stops being read. */
	wc->iev.wq_max = AUTHD_CHANNEL_WQ_MAX;
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
	case IMSG_CONF_STATIC_USER:
	case IMSG_CONF_NETWORK:
	case IMSG_CONF_CONTROL:
	case IMSG_CONF_CHECKER:
	case IMSG_CONF_SPOOL:
	case IMSG_CONF_END:
		switch (config_recv(&conf_recv, imsg)) {
		case -1:
			fatalx("malformed configuration message");
		case 1:
			authd_configure(conf_recv.conf);
			conf_recv.conf = NULL;
			if (conf_recv.control_fd != -1)
				control_init(conf_recv.control_fd);
			conf_recv.control_fd = -1;
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
	case IMSG_AUTH_REQUEST:
		if (authd_auth_request(wc, imsg) == -1) {
			log_warnx("%s: malformed AUTH_REQUEST, closing channel",
			    wc->name);
			imsgev_close(iev);
		}
		break;
	case IMSG_AUTH_CANCEL:
		auth_cancel(wc, imsg);
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
	if ((authd->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (imsgev_init(&authd->master, authd->base, PROC_PARENT_FD, 1,
	    "master", master_dispatch, master_closed, NULL) == -1)
		fatal("master channel");

	event_base_dispatch(authd->base);
	log_info("exiting");
	return 0;
}
