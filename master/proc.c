/*
 * proc.c -- master's children: start, watch, restart.
 *
 * Every child is fork+exec'd from the libexec directory, so each one
 * gets a fresh address-space layout, with its channel to master on
 * PROC_PARENT_FD.  A child that dies after it was ready (it had set
 * itself up and was serving) is started again at once: if a crash is
 * reachable from the network, a back-off there would hand an attacker
 * the whole service for one packet now and then, and most of the time
 * every worker would be dead at once.  Only a child that dies before
 * it is ready (a start-up crash loop: a bad binary, a missing library,
 * an unusable key, which no restart mends) waits, for a back-off that
 * doubles with each such death and starts over once a child has been
 * ready for RESPAWN_STABLE_SEC; so there is never a live worker
 * missing for longer than one restart unless starting one fails.  One
 * that speaks another protocol version (binaries replaced under a
 * running master) is killed and tried again only at the longest
 * back-off, since only a restart of master can mend that.  Every
 * restart is logged with its cause and counted.
 * A worker and authd are introduced to each other, through
 * a socketpair master creates, as soon as both are ready; when authd
 * is restarted every worker gets a new channel.  portcullis-metrics,
 * when configured, is met the same way: each ready worker and authd
 * get a channel to it (IMSG_METRICS_CHANNEL), and master answers its
 * asks on master's own channel to it.
 * The same for a worker and its key process (keyproc.c).
 */

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_imsg.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "proto.h"
#include "sandbox.h"
#include "util.h"

#define RESPAWN_BASE_MS		100	/* first wait after a start-up death */
#define RESPAWN_MAX_MS		30000
#define RESPAWN_STABLE_SEC	10	/* ready this long: not a crash loop */
/*
 * A child that was ready is restarted at once, but never sooner than
 * this after its previous start: a child that dies as soon as it is
 * ready costs at most ten fork+exec a second, not a spinning master.
 */
#define RESPAWN_READY_MIN_MS	100

static int	child_ready(struct imsgev *, struct imsg *);
static int	child_ping_result(struct imsgev *, struct imsg *);
static int	child_reload(struct imsgev *, struct imsg *);
static void	child_refused(struct imsgev *);
static void	child_closed(struct imsgev *);
static void	child_respawn(evutil_socket_t, short, void *);
static void	child_respawn_later(struct child *, const char *);

/*
 * What each child may send master.  Children run with less privilege
 * than master: anything else is a sign of compromise, and the child
 * is killed (and later replaced) by child_refused().
 */
static const struct imsg_dispatch from_worker[] = {
	{ IMSG_CHILD_READY, sizeof(struct hello), IMSGEV_ONCE, child_ready },
	{ IMSG_PING_RESULT, sizeof(struct ping), 0, child_ping_result },
	{ 0, 0, 0, NULL }
};

static const struct imsg_dispatch from_authd[] = {
	{ IMSG_CHILD_READY, sizeof(struct hello), IMSGEV_ONCE, child_ready },
	{ IMSG_CTL_RELOAD, 0, 0, child_reload },
	{ 0, 0, 0, NULL }
};

/* metrics asks master for its counters like anyone else's. */
static const struct imsg_dispatch from_metrics[] = {
	{ IMSG_CHILD_READY, sizeof(struct hello), IMSGEV_ONCE, child_ready },
	{ IMSG_METRICS_ASK, sizeof(struct metrics_ask), 0, metrics_answer },
	{ 0, 0, 0, NULL }
};

/* The key process may only say it is ready: it serves the workers. */
static const struct imsg_dispatch from_keys[] = {
	{ IMSG_CHILD_READY, sizeof(struct hello), IMSGEV_ONCE, child_ready },
	{ 0, 0, 0, NULL }
};

const char *
child_role_name(enum proc_role role)
{
	switch (role) {
	case ROLE_AUTHD:
		return "authd";
	case ROLE_METRICS:
		return "metrics";
	case ROLE_KEYS:
		return "keys";
	default:
		return "worker";
	}
}

static const struct imsg_dispatch *
role_table(enum proc_role role)
{
	switch (role) {
	case ROLE_AUTHD:
		return from_authd;
	case ROLE_METRICS:
		return from_metrics;
	case ROLE_KEYS:
		return from_keys;
	default:
		return from_worker;
	}
}

struct child *
child_new(enum proc_role role, uint32_t id)
{
	struct child	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	c->role = role;
	c->id = id;
	c->pid = -1;
	c->generation = master->generation;
	if (role == ROLE_WORKER || role == ROLE_KEYS)
		snprintf(c->name, sizeof(c->name), "%s %u",
		    child_role_name(role), id);
	else
		strlcpy(c->name, child_role_name(role), sizeof(c->name));
	c->respawn_ev = evtimer_new(master->base, child_respawn, c);
	if (c->respawn_ev == NULL)
		fatalx("evtimer_new");
	return c;
}

void
child_free(struct child *c)
{
	if (c->iev.open) {
		c->iev.closed = NULL;
		imsgev_close(&c->iev);
	}
	evtimer_del(c->respawn_ev);
	event_free(c->respawn_ev);
	free(c);
}

int
child_running(const struct child *c)
{
	return c->pid != -1;
}

static __attribute__((__noreturn__)) void
child_exec(struct child *c, int fd)
{
	char		 path[PATH_MAX], id[16];
	char		*argv[8];
	int		 argc = 0;

	if (fd == PROC_PARENT_FD) {
		if (fcntl(fd, F_SETFD, 0) == -1)
			_exit(127);
	} else if (dup2(fd, PROC_PARENT_FD) == -1)
		_exit(127);
	if ((size_t)snprintf(path, sizeof(path), "%s/portcullis-%s",
	    master->libexec, child_role_name(c->role)) >= sizeof(path))
		_exit(127);
	/* Only root can raise the hard limit: do it while we are. */
	if (c->role == ROLE_WORKER)
		(void)sandbox_nofile_raise(
		    sandbox_nofile_need(master->conf->max_sessions));
	/* argv[0] "portcullis" makes ps(1) show "portcullis: ROLE". */
	argv[argc++] = "portcullis";
	if (master->debug)
		argv[argc++] = "-d";
	if (master->verbose > 0)
		argv[argc++] = master->verbose > 1 ? "-vv" : "-v";
	if (c->role == ROLE_WORKER) {
		snprintf(id, sizeof(id), "%u", c->id);
		argv[argc++] = "-i";
		argv[argc++] = id;
	}
	argv[argc] = NULL;
	execv(path, argv);
	fprintf(stderr, "portcullisd: exec %s: %s\n", path, strerror(errno));
	_exit(127);
}

/* The configuration, and a worker's own listening sockets with it. */
static int
child_configure(struct child *c, const int *lfds)
{
	int	 fd;

	if (c->role == ROLE_METRICS) {
		if ((fd = fcntl(master->metrics_fd, F_DUPFD_CLOEXEC, 0)) == -1)
			return -1;
		return imsgev_compose(&c->iev, IMSG_CONF_METRICS, 0, fd,
		    master->metrics_conf, sizeof(*master->metrics_conf));
	}
	if (c->role == ROLE_WORKER)
		return config_send_worker(&c->iev, master->conf, lfds,
		    master->spool_fd);
	if (c->role == ROLE_KEYS)
		return keyproc_configure(c);
	return config_send(&c->iev, master->conf, 0, -1, master->control_fd);
}

void
child_start(struct child *c)
{
	int	 sp[2], lfds[CONF_LISTENERS_MAX];
	pid_t	 pid;

	/* Bound first: a worker without its sockets would serve nobody. */
	if (c->role == ROLE_WORKER && listeners_worker(master->conf, lfds,
	    CONF_LISTENERS_MAX) == -1) {
		child_respawn_later(c, "its listening sockets could not be "
		    "opened");
		return;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1)
		fatal("socketpair");
	switch ((pid = fork())) {
	case -1:
		fatal("fork");
	case 0:
		close(sp[0]);
		child_exec(c, sp[1]);
	}
	close(sp[1]);
	c->pid = pid;
	c->ready = 0;
	c->mismatch = 0;
	c->generation = c->retiring ? c->generation : master->generation;
	clock_gettime(CLOCK_MONOTONIC, &c->started);
	/* imsg(3): a channel sends descriptors only where fdpass is on. */
	if (imsgev_init(&c->iev, master->base, sp[0], 1, c->name, NULL,
	    child_closed, c) == -1)
		fatal("%s: channel", c->name);
	imsgev_set_table(&c->iev, role_table(c->role));
	c->iev.refused = child_refused;
	if (child_configure(c, lfds) == -1)
		fatal("%s: sending configuration", c->name);
	tickets_send(c);
	/* The worker's copies are queued; ours would keep them alive. */
	if (c->role == ROLE_WORKER)
		listeners_close(lfds, CONF_LISTENERS_MAX);
	log_debug("%s started, pid %d", c->name, (int)pid);
}

/* Introduce a worker and authd to each other. */
static void
channel_create(struct child *w)
{
	struct authd_channel	 ac;
	int			 sp[2];

	if (master->authd == NULL || !master->authd->ready || !w->ready)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: authd channel", w->name);
		return;
	}
	memset(&ac, 0, sizeof(ac));
	ac.worker_id = w->id;
	ac.generation = w->generation;
	imsgev_compose(&master->authd->iev, IMSG_AUTHD_CHANNEL, w->id, sp[1],
	    &ac, sizeof(ac));
	imsgev_compose(&w->iev, IMSG_AUTHD_CHANNEL, w->id, sp[0], NULL, 0);
}

/* Introduce a ready worker or authd to a ready metrics process. */
static void
metrics_channel_create(struct child *c)
{
	struct metrics_peer	 mp;
	struct child		*m = master->metrics;
	int			 sp[2];

	/* The key process counts nothing and takes no channel but its
	   workers'. */
	if (m == NULL || !m->ready || !c->ready ||
	    (c->role != ROLE_WORKER && c->role != ROLE_AUTHD))
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: metrics channel", c->name);
		return;
	}
	memset(&mp, 0, sizeof(mp));
	mp.role = c->role == ROLE_AUTHD ? METRICS_PEER_AUTHD :
	    METRICS_PEER_WORKER;
	mp.id = c->id;
	mp.generation = c->generation;
	imsgev_compose(&m->iev, IMSG_METRICS_CHANNEL, c->id, sp[1], &mp,
	    sizeof(mp));
	imsgev_compose(&c->iev, IMSG_METRICS_CHANNEL, c->id, sp[0], NULL, 0);
}

/* metrics is ready: every process that is gets a channel to it. */
static void
metrics_channels_all(void)
{
	struct child	*w;

	if (master->authd != NULL && child_running(master->authd))
		metrics_channel_create(master->authd);
	TAILQ_FOREACH(w, &master->workers, entry)
		if (child_running(w))
			metrics_channel_create(w);
}

/* The child dropped its privileges; it must speak our protocol. */
static int
child_ready(struct imsgev *iev, struct imsg *imsg)
{
	struct child	*c = iev->arg;
	struct child	*w;
	struct hello	 hello;

	imsgev_data(imsg, &hello, sizeof(hello));
	if (hello.version != PROTO_VERSION) {
		c->mismatch = 1;
		return imsgev_reject(iev, "protocol version %u, master speaks "
		    "%u: binaries upgraded under a running master? restart "
		    "portcullisd", hello.version, PROTO_VERSION);
	}
	if (c->role == ROLE_WORKER && hello.id != c->id)
		return imsgev_reject(iev, "claims to be worker %u", hello.id);
	c->ready = 1;
	clock_gettime(CLOCK_MONOTONIC, &c->ready_at);
	log_info("%s ready, pid %d, generation %u", c->name, (int)c->pid,
	    c->generation);
	if (c->role == ROLE_METRICS) {
		if (master->shutting_down)
			imsgev_compose(&c->iev, IMSG_CTL_SHUTDOWN, 0, -1,
			    NULL, 0);
		metrics_channels_all();
		return 0;
	}
	metrics_channel_create(c);
	if (c->role == ROLE_WORKER) {
		if (master->shutting_down || c->retiring)
			imsgev_compose(&c->iev, IMSG_CTL_SHUTDOWN, 0, -1,
			    NULL, 0);
		channel_create(c);
		keyproc_channel_create(c);
		return 0;
	}
	if (c->role == ROLE_KEYS) {
		keyproc_ready(c);
		return 0;
	}
	TAILQ_FOREACH(w, &master->workers, entry)
		if (child_running(w))
			channel_create(w);
	return 0;
}

static int
child_ping_result(struct imsgev *iev, struct imsg *imsg)
{
	struct child	*c = iev->arg;
	struct ping	 ping;

	imsgev_data(imsg, &ping, sizeof(ping));
	log_info("%s: authd ping ok, %u us", c->name, ping.rtt_usec);
	return 0;
}

/* authd passes on authctl's reload. */
static int
child_reload(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
	master_reload();
	return 0;
}

/* imsgev.c logged the refusal and closes the channel; the child dies. */
static void
child_refused(struct imsgev *iev)
{
	struct child	*c = iev->arg;

	if (c->pid != -1)
		kill(c->pid, SIGKILL);
}

static void
child_closed(struct imsgev *iev)
{
	struct child	*c = iev->arg;

	log_debug("%s: channel closed", c->name);
}

/*
 * How long a dead child waits.  was_ready: it had been ready when it
 * died.  See the top of this file for the rule.
 */
static long
respawn_delay_ms(struct child *c, int was_ready)
{
	long	 ms, lived;

	/* Another version comes back as long as master runs: no spin. */
	if (c->mismatch)
		return RESPAWN_MAX_MS;
	if (was_ready) {
		if (elapsed_ms(&c->ready_at) >= RESPAWN_STABLE_SEC * 1000)
			c->failures = 0;
		lived = elapsed_ms(&c->started);
		return lived >= RESPAWN_READY_MIN_MS ? 0 :
		    RESPAWN_READY_MIN_MS - lived;
	}
	ms = RESPAWN_BASE_MS;
	for (unsigned int i = 0; i < c->failures && ms < RESPAWN_MAX_MS; i++)
		ms *= 2;
	if (ms > RESPAWN_MAX_MS)
		ms = RESPAWN_MAX_MS;
	c->failures++;
	return ms;
}

static void
child_respawn(evutil_socket_t fd, short ev, void *arg)
{
	struct child	*c = arg;

	(void)fd; (void)ev;
	if (master->shutting_down)
		return;
	child_start(c);
}

static void
respawn_schedule(struct child *c, long ms, const char *why)
{
	struct timeval	 tv;
	char		 slot[16];

	c->restarts++;
	master->restarts++;
	(void)snprintf(slot, sizeof(slot), "%u", c->id);
	metrics_add(M_PROCESS_RESTARTS, 1, child_role_name(c->role), slot);
	log_info("restarting %s in %ld ms (%s; restart %u of %s, %u in all)",
	    c->name, ms, why, c->restarts, c->name, master->restarts);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(c->respawn_ev, &tv);
}

/* Starting failed before a process existed: a start-up failure. */
static void
child_respawn_later(struct child *c, const char *why)
{
	log_warnx("%s: cannot start: %s", c->name, why);
	respawn_schedule(c, respawn_delay_ms(c, 0), "it could not start");
}

/* "killed by signal 9" or "exited with status 1", for the log. */
static void
death_cause(int status, char *buf, size_t len)
{
	if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(buf, len, "killed by the sandbox (SIGSYS): it made "
		    "a system call its role does not allow");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)",
		    WTERMSIG(status), strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "exited with status %d",
		    WEXITSTATUS(status));
}

static void
child_died(struct child *c, int status)
{
	char	 cause[160];
	int	 was_ready = c->ready;
	long	 up = elapsed_ms(&c->started);

	death_cause(status, cause, sizeof(cause));
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
	    (master->shutting_down || c->retiring))
		log_info("%s (pid %d) exited", c->name, (int)c->pid);
	else
		log_warnx("%s (pid %d) %s, %s ready, up %ld ms", c->name,
		    (int)c->pid, cause, was_ready ? "after it was" :
		    "before it was", up);
	if (c->role == ROLE_WORKER)
		spool_sweep_owner(c->pid);

	c->pid = -1;
	c->ready = 0;
	if (c->iev.open) {
		c->iev.closed = NULL;
		imsgev_close(&c->iev);
	}
	if (master->shutting_down)
		return;
	if (c->retiring) {
		TAILQ_REMOVE(&master->workers, c, entry);
		child_free(c);
		return;
	}
	respawn_schedule(c, respawn_delay_ms(c, was_ready), c->mismatch ?
	    "it speaks another protocol version" : was_ready ?
	    "it died after it was ready" : "it died before it was ready");
}

static struct child *
child_by_pid(pid_t pid)
{
	struct child	*c;

	if (master->authd != NULL && master->authd->pid == pid)
		return master->authd;
	if (master->metrics != NULL && master->metrics->pid == pid)
		return master->metrics;
	if ((c = keyproc_by_pid(pid)) != NULL)
		return c;
	TAILQ_FOREACH(c, &master->workers, entry)
		if (c->pid == pid)
			return c;
	return NULL;
}

void
child_reap(void)
{
	struct child	*c;
	pid_t		 pid;
	int		 status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		if ((c = child_by_pid(pid)) == NULL) {
			log_debug("reaped unknown pid %d", (int)pid);
			continue;
		}
		child_died(c, status);
	}
	if (master->shutting_down)
		master_maybe_exit();
}

/* Ask every running worker to drain; the dead ones stay dead. */
void
children_stop_workers(void)
{
	struct child	*c;

	TAILQ_FOREACH(c, &master->workers, entry) {
		evtimer_del(c->respawn_ev);
		if (child_running(c))
			imsgev_compose(&c->iev, IMSG_CTL_SHUTDOWN, 0, -1,
			    NULL, 0);
	}
}
