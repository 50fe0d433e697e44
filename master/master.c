/*
 * master.c -- portcullisd: the root process.
 *
 * It reads the configuration, opens what needs root (the listening
 * sockets, the spool), starts authd and the workers, and then only
 * supervises: it restarts children that die, reloads on SIGHUP, and
 * stops on SIGTERM or SIGINT.  It never parses a byte from the
 * network.
 *
 * A reload that fails to parse, or whose sockets cannot be bound,
 * changes nothing.  A good one starts a new generation of workers on
 * the new configuration and lets the old generation drain; authd takes
 * the new configuration in place.
 */

#include <sys/types.h>
#include <sys/stat.h>

#include <err.h>
#include <errno.h>
#include <libgen.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "config_imsg.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "privsep.h"
#include "proto.h"
#include "sandbox.h"

#define SHUTDOWN_SLACK_SEC	5	/* past the grace period */
#define SPOOL_SWEEP_SEC		300	/* unfinished spool files: listen.c */

struct master	*master;

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullisd [-dnv] [-f file]\n");
	exit(1);
}

static void
libexec_init(void)
{
	const char	*dir, *roles[] = { "worker", "authd", "keys", "metrics" };
	char		 path[PATH_MAX];
	size_t		 nroles = master->conf->metrics.enabled ? 4 : 3;

	if ((dir = getenv("PORTCULLIS_LIBEXEC")) == NULL || *dir == '\0')
		dir = LIBEXECDIR;
	if (strlcpy(master->libexec, dir, sizeof(master->libexec)) >=
	    sizeof(master->libexec))
		fatalx("libexec directory name too long");
	for (size_t i = 0; i < nroles; i++) {
		if ((size_t)snprintf(path, sizeof(path), "%s/portcullis-%s",
		    dir, roles[i]) >= sizeof(path))
			fatalx("libexec directory name too long");
		if (access(path, X_OK) == -1)
			fatal("%s", path);
	}
}

static int
workers_count(const struct portcullis_conf *conf)
{
	long	 n;

	if (conf->workers > 0)
		return conf->workers;
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1 : (n > 256 ? 256 : (int)n);
}

static void
workers_start(void)
{
	struct child	*c;
	int		 n = workers_count(master->conf);

	for (int i = 0; i < n; i++) {
		c = child_new(ROLE_WORKER, (uint32_t)i);
		TAILQ_INSERT_TAIL(&master->workers, c, entry);
		child_start(c);
	}
}

/* Everything a configuration needs from root, checked before use. */
static int
conf_prepare(struct portcullis_conf *conf)
{
	if (master->privileged && (users_check(conf) == -1 ||
	    chroot_check(conf->chroot) == -1))
		return -1;
	return stores_prepare(conf);
}

/*
 * The endpoint is set at start: its socket, user and token stay as
 * they were, and a reload that changes them says so.
 */
static void
metrics_reload_note(const struct portcullis_conf *old,
    const struct portcullis_conf *conf)
{
	const struct metrics_listen	*a = &old->metrics;
	const struct metrics_listen	*b = &conf->metrics;

	if (a->enabled != b->enabled || (a->enabled &&
	    (a->listener.sslen != b->listener.sslen ||
	    memcmp(&a->listener.ss, &b->listener.ss, a->listener.sslen) != 0 ||
	    strcmp(a->token_file, b->token_file) != 0)))
		log_warnx("reload: metrics settings changed; they take effect "
		    "when portcullisd is restarted");
}

void
master_reload(void)
{
	struct portcullis_conf	*conf, *old = master->conf;
	struct child		*c, *next;
	int			 spool_fd;

	if (master->shutting_down)
		return;
	log_info("reloading %s", master->conffile);
	if ((conf = parse_config(master->conffile)) == NULL) {
		log_warnx("reload failed: %s; still running the previous "
		    "configuration", config_errmsg());
		metrics_add(M_CONFIG_RELOADS, 1, "failed");
		return;
	}
	if (conf_prepare(conf) == -1 || pki_load(conf) == -1 ||
	    secrets_load(conf) == -1 ||
	    (spool_fd = spool_open(conf)) == -1) {
		log_warnx("reload failed; still running the previous "
		    "configuration");
		metrics_add(M_CONFIG_RELOADS, 1, "failed");
		config_free(conf);
		return;
	}
	if (listeners_open(conf, old) == -1) {
		log_warnx("reload failed; still running the previous "
		    "configuration");
		metrics_add(M_CONFIG_RELOADS, 1, "failed");
		close(spool_fd);
		config_free(conf);
		return;
	}
	metrics_reload_note(old, conf);
	config_close_fds(old);
	config_free(old);
	close(master->spool_fd);
	master->conf = conf;
	master->spool_fd = spool_fd;
	master->generation++;
	/* Perhaps another spool: what nobody writes there any more goes. */
	spool_sweep(0);

	/* The old generation drains; the new one starts now. */
	TAILQ_FOREACH_SAFE(c, &master->workers, entry, next) {
		if (!child_running(c)) {
			TAILQ_REMOVE(&master->workers, c, entry);
			child_free(c);
			continue;
		}
		c->retiring = 1;
		imsgev_compose(&c->iev, IMSG_CTL_SHUTDOWN, 0, -1, NULL, 0);
	}
	tickets_configure(conf);
	/* The new keys reach the key processes before the new workers. */
	keyproc_reload_note(conf, workers_count(conf));
	keyproc_send_keys(conf);
	workers_start();
	if (master->authd != NULL && child_running(master->authd))
		config_send(&master->authd->iev, conf, 0, -1, -1);
	metrics_add(M_CONFIG_RELOADS, 1, "ok");
	metrics_set(M_CONFIG_GENERATION, master->generation);
	log_info("configuration reloaded, generation %u", master->generation);
}

void
master_maybe_exit(void)
{
	struct child	*c;

	TAILQ_FOREACH(c, &master->workers, entry)
		if (child_running(c))
			return;
	/* The workers are gone: nobody needs the keys any more. */
	if (keyproc_running()) {
		if (!master->keys_stopping) {
			master->keys_stopping = 1;
			keyproc_stop(0);
		}
		if (master->authd == NULL || !child_running(master->authd))
			return;
	}
	if (master->metrics != NULL && child_running(master->metrics))
		return;		/* told to stop with the workers */
	if (master->authd != NULL && child_running(master->authd)) {
		if (master->authd_stopping)
			return;
		master->authd_stopping = 1;
		if (master->authd->iev.open)
			imsgev_compose(&master->authd->iev, IMSG_CTL_SHUTDOWN,
			    0, -1, NULL, 0);
		else
			kill(master->authd->pid, SIGTERM);
		return;
	}
	log_info("all children gone, exiting");
	event_base_loopexit(master->base, NULL);
}

static void
shutdown_deadline(evutil_socket_t fd, short ev, void *arg)
{
	struct child	*c;

	(void)fd; (void)ev; (void)arg;
	log_warnx("children did not stop in time, killing them");
	TAILQ_FOREACH(c, &master->workers, entry)
		if (child_running(c))
			kill(c->pid, SIGKILL);
	if (master->authd != NULL && child_running(master->authd))
		kill(master->authd->pid, SIGKILL);
	keyproc_stop(SIGKILL);
	if (master->metrics != NULL && child_running(master->metrics))
		kill(master->metrics->pid, SIGKILL);
}

/* A scrape is not worth a grace period: metrics stops at once. */
static void
metrics_stop(void)
{
	struct child	*m = master->metrics;

	if (m == NULL)
		return;
	evtimer_del(m->respawn_ev);
	if (!child_running(m))
		return;
	if (m->iev.open)
		imsgev_compose(&m->iev, IMSG_CTL_SHUTDOWN, 0, -1, NULL, 0);
	else
		kill(m->pid, SIGTERM);
}

static void
master_shutdown(int sig)
{
	struct timeval	 tv;

	if (master->shutting_down) {
		log_info("%s: already shutting down", strsignal(sig));
		return;
	}
	master->shutting_down = 1;
	log_info("%s: shutting down, grace period %d s", strsignal(sig),
	    master->conf->grace_period);
	/* Our copies of the sockets go now; the workers close theirs. */
	config_close_fds(master->conf);
	children_stop_workers();
	tickets_shutdown();
	metrics_stop();
	if (master->authd != NULL)
		evtimer_del(master->authd->respawn_ev);
	for (unsigned int i = 0; i < master->nkeys; i++)
		evtimer_del(master->keys[i]->respawn_ev);
	tv.tv_sec = master->conf->grace_period + SHUTDOWN_SLACK_SEC;
	tv.tv_usec = 0;
	master->deadline_ev = evtimer_new(master->base, shutdown_deadline,
	    NULL);
	evtimer_add(master->deadline_ev, &tv);
	master_maybe_exit();
}

static void
master_signal(evutil_socket_t sig, short ev, void *arg)
{
	(void)ev; (void)arg;
	switch (sig) {
	case SIGCHLD:
		child_reap();
		break;
	case SIGHUP:
		if (!master->shutting_down)
			master_reload();
		break;
	case SIGTERM:
	case SIGINT:
		master_shutdown(sig);
		break;
	}
}

static void
spool_sweep_timer(evutil_socket_t fd, short ev, void *arg)
{
	struct timeval	 tv = { SPOOL_SWEEP_SEC, 0 };

	(void)fd; (void)ev; (void)arg;
	if (master->shutting_down)
		return;
	spool_sweep(0);
	evtimer_add(master->spool_sweep_ev, &tv);
}

static void
spool_sweep_init(void)
{
	struct timeval	 tv = { SPOOL_SWEEP_SEC, 0 };

	if ((master->spool_sweep_ev = evtimer_new(master->base,
	    spool_sweep_timer, NULL)) == NULL)
		fatalx("evtimer_new");
	evtimer_add(master->spool_sweep_ev, &tv);
}

static void
signals_init(void)
{
	const int	 sigs[] = { SIGCHLD, SIGHUP, SIGTERM, SIGINT };
	struct event	*ev;

	signal(SIGPIPE, SIG_IGN);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		ev = evsignal_new(master->base, sigs[i], master_signal, NULL);
		if (ev == NULL || evsignal_add(ev, NULL) == -1)
			fatalx("signal %d", sigs[i]);
	}
}

/* -n: a user named by the file must exist, and not be root. */
static int
check_user(const char *name)
{
	struct passwd	*pw;

	if ((pw = getpwnam(name)) == NULL) {
		log_warnx("%s: user \"%s\" does not exist", config_where(name),
		    name);
		return -1;
	}
	if (pw->pw_uid == 0) {
		log_warnx("%s: user \"%s\" is root: the children must run "
		    "unprivileged", config_where(name), name);
		return -1;
	}
	return 0;
}

/*
 * -n: the workers' root.  master creates it at start when it is
 * missing (so only its parent must exist); one that exists must be a
 * directory of root's that nobody else can write to.
 */
static int
check_chroot(const char *dir)
{
	struct stat	 st;
	char		 parent[PATH_MAX];

	if (stat(dir, &st) == -1) {
		if (errno != ENOENT) {
			log_warn("%s: chroot %s", config_where(dir), dir);
			return -1;
		}
		(void)strlcpy(parent, dir, sizeof(parent));
		if (stat(dirname(parent), &st) == -1) {
			log_warn("%s: chroot %s: %s", config_where(dir), dir,
			    parent);
			return -1;
		}
		log_info("%s: chroot %s does not exist yet; it will be "
		    "created", config_where(dir), dir);
		return 0;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != 0 ||
	    (st.st_mode & (S_IWGRP | S_IWOTH))) {
		log_warnx("%s: chroot %s: must be a directory owned by root "
		    "and writable by nobody else", config_where(dir), dir);
		return -1;
	}
	return 0;
}

/*
 * -n checks what the file names, without changing anything: as root,
 * the users and the chroot directory, as the start would; always each
 * certificate and key (read, parsed, and matched to each other).
 * Every error is reported, each with its file and line.
 */
static int
conf_check(struct portcullis_conf *conf)
{
	int	 ret = 0;

	if (geteuid() == 0) {
		if (check_user(conf->user) == -1)
			ret = -1;
		if (check_user(conf->auth_user) == -1)
			ret = -1;
		if (check_user(conf->keys_user) == -1)
			ret = -1;
		if (check_chroot(conf->chroot) == -1)
			ret = -1;
	}
	if (pki_load(conf) == -1)
		ret = -1;
	return ret;
}

static struct portcullis_conf *
conf_load(int checkonly)
{
	struct portcullis_conf	*conf;

	if ((conf = parse_config(master->conffile)) == NULL) {
		if (checkonly)
			fprintf(stderr, "%s: configuration has errors\n",
			    master->conffile);
		exit(1);
	}
	if (checkonly) {
		if (conf_check(conf) == -1) {
			fprintf(stderr, "%s: configuration has errors\n",
			    master->conffile);
			config_free(conf);
			exit(1);
		}
		fprintf(stderr, "%s: configuration OK\n", master->conffile);
		config_free(conf);
		exit(0);
	}
	return conf;
}

/*
 * The control socket's directory (the default is one of its own under
 * /run) is made when missing, as root's, searchable by all: the socket
 * in it is mode 0600.  A service manager may have made it already.
 */
static void
control_dir_prepare(const char *sock)
{
	char	 dir[PATH_MAX];

	(void)strlcpy(dir, sock, sizeof(dir));
	if (mkdir(dirname(dir), 0755) == -1 && errno != EEXIST)
		log_warn("control-socket %s: mkdir %s", sock, dir);
}

/*
 * What master counts itself, and the endpoint if there is one: its
 * socket and what its process is sent, kept for its restarts.
 */
static void
metrics_init(void)
{
	struct portcullis_conf	*conf = master->conf;
	struct metrics_config	*mc;
	char			 proto[16];

	(void)snprintf(proto, sizeof(proto), "%d", PROTO_VERSION);
	metrics_set(M_BUILD_INFO, 1, PORTCULLIS_VERSION, proto);
	metrics_set(M_CONFIG_GENERATION, 0);
	metrics_add(M_CONFIG_RELOADS, 0, "ok");
	metrics_add(M_CONFIG_RELOADS, 0, "failed");
	master->metrics_fd = -1;
	if (!conf->metrics.enabled)
		return;
	if ((mc = calloc(1, sizeof(*mc))) == NULL)
		fatal("calloc");
	if (strlcpy(mc->user, conf->user, sizeof(mc->user)) >=
	    sizeof(mc->user) || strlcpy(mc->chroot, conf->chroot,
	    sizeof(mc->chroot)) >= sizeof(mc->chroot))
		fatalx("metrics: user or chroot name too long");
	if (metrics_token_load(conf, mc) == -1)
		fatalx("cannot read the metrics bearer-token-file");
	if ((master->metrics_fd = metrics_open(conf)) == -1)
		fatalx("cannot open the metrics listener");
	master->metrics_conf = mc;
}

static void
master_init(void)
{
	if (master->privileged) {
		if (conf_prepare(master->conf) == -1)
			fatalx("cannot start");
	} else
		log_info("not started as root: no privilege drop and no "
		    "chroot; every process runs as uid %d", (int)getuid());
	if (pki_load(master->conf) == -1)
		fatalx("cannot load the certificates");
	if (secrets_load(master->conf) == -1)
		fatalx("cannot read a secret file (the line above names it)");
	libexec_init();
	if (listeners_open(master->conf, NULL) == -1)
		fatalx("cannot open the listeners");
	if ((master->spool_fd = spool_open(master->conf)) == -1)
		fatalx("cannot open the spool %s", master->conf->spool);
	control_dir_prepare(master->conf->control_socket);
	/* No worker lives yet: whatever is in tmp/ is unfinished. */
	spool_sweep(1);
	if ((master->control_fd = control_open(master->conf)) == -1)
		fatalx("cannot open the control socket %s",
		    master->conf->control_socket);
	metrics_init();
}

int
main(int argc, char *argv[])
{
	struct listener	*l;
	int		 ch, checkonly = 0;

	privsep_title_init(argc, argv);
	/* master reads keys and secrets: it never dumps core either. */
	sandbox_nocore();

	if ((master = calloc(1, sizeof(*master))) == NULL)
		err(1, "calloc");
	master->conffile = PORTCULLIS_CONF_FILE;
	TAILQ_INIT(&master->workers);
	while ((ch = getopt(argc, argv, "df:nv")) != -1) {
		switch (ch) {
		case 'd':
			master->debug = 1;
			break;
		case 'f':
			/* setproctitle() may reuse argv's memory. */
			if ((master->conffile = strdup(optarg)) == NULL)
				err(1, "strdup");
			break;
		case 'n':
			checkonly = 1;
			break;
		case 'v':
			master->verbose++;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();

	/* Configuration errors always reach the terminal. */
	log_init(1, LOG_MAIL);
	log_setverbose(master->verbose);
	master->conf = conf_load(checkonly);
	master->privileged = geteuid() == 0;

	log_init(master->debug, LOG_MAIL);
	log_procinit("master");
	/*
	 * Before the first key is read and the first child started, who
	 * inherits it: see sandbox.c for why master's is a deny-list.
	 */
	sandbox_enter(SANDBOX_MASTER, 0);
	master_init();
	if (!master->debug && daemon(0, 0) == -1)
		fatal("daemon");
	setproctitle("master");

	if ((master->base = event_base_new()) == NULL)
		fatalx("event_base_new");
	signals_init();
	spool_sweep_init();
	master->authd = child_new(ROLE_AUTHD, 0);
	child_start(master->authd);
	/* They take master's copy of the private keys, and wipe it. */
	keyproc_start(workers_count(master->conf));
	tickets_configure(master->conf);
	workers_start();
	TAILQ_FOREACH(l, &master->conf->listeners, entry)
		log_info("listening on %s port %d (%s)", listener_address(l),
		    listener_port(l), l->name);
	if (master->metrics_fd != -1) {
		master->metrics = child_new(ROLE_METRICS, 0);
		child_start(master->metrics);
		l = &master->conf->metrics.listener;
		log_info("metrics on %s port %d", listener_address(l),
		    listener_port(l));
	}

	event_base_dispatch(master->base);
	if (master->control_fd != -1)
		(void)unlink(master->conf->control_socket);
	log_info("exiting");
	return 0;
}
