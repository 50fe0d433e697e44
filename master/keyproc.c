/*
 * keyproc.c -- master's side of the key processes (keys/keys.c).
 *
 * master reads the private keys (pki.c), checks them, hands them to
 * the key processes and wipes its own copy at once: after start-up and
 * after each reload no private key is left in master's memory.  When
 * a key process is restarted, master reads the key files again (as
 * root: the files are master's to read) and sends them without parsing
 * them; the key process checks each against the certificate the
 * workers present, and a key that changed on disk without a reload is
 * refused and logged there (handshakes on that pki then fail until a
 * reload), never a mismatch served.
 *
 * There are several key processes, because one signs on one core: at
 * 256 sessions an RSA-2048 handshake waited behind every other
 * worker's signatures (keys_bench: p99 at 2.08x a worker that signs
 * itself).  Processes rather than signing threads in one: each stays
 * single-threaded under the same seccomp list, and a crash or a kill
 * costs only the handshakes of its own workers.  Worker i talks to key
 * process i mod N; the number is fixed at start (a reload restarts the
 * workers, not the key processes, which would lose the keys of the
 * generation still draining).
 *
 * Each worker gets a channel of its own to its key process, through a
 * socketpair master makes once both are ready, and again whenever
 * that key process is restarted, as for authd.
 */

#include <sys/types.h>
#include <sys/socket.h>

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "master.h"
#include "proto.h"

/* A PEM file can exceed one imsg: it travels in chunks. */
static int
send_pem(struct imsgev *iev, uint32_t generation, uint32_t pki,
    uint32_t kind, const char *pem, size_t len)
{
	struct keys_pem	 hdr;
	struct iovec	 iov[2];
	size_t		 chunk, max;

	max = MAX_IMSGSIZE - IMSG_HEADER_SIZE - sizeof(hdr);
	memset(&hdr, 0, sizeof(hdr));
	hdr.generation = generation;
	hdr.pki = pki;
	hdr.kind = kind;
	while (len > 0) {
		chunk = len < max ? len : max;
		iov[0].iov_base = &hdr;
		iov[0].iov_len = sizeof(hdr);
		iov[1].iov_base = (void *)(uintptr_t)pem;
		iov[1].iov_len = chunk;
		if (imsgev_composev(iev, IMSG_KEYS_PEM, 0, iov, 2) == -1)
			return -1;
		pem += chunk;
		len -= chunk;
	}
	return 0;
}

/* One key process gets every pki of conf; master still holds them. */
static void
keys_send(struct child *c, const struct portcullis_conf *conf)
{
	struct keys_commit	 commit;
	struct pki		*p;
	uint32_t		 i = 0;

	TAILQ_FOREACH(p, &conf->pkis, entry) {
		if ((p->cert_pem != NULL && send_pem(&c->iev,
		    master->generation, i, KEYS_PEM_CERT, p->cert_pem,
		    p->cert_len) == -1) || (p->key_pem != NULL &&
		    send_pem(&c->iev, master->generation, i, KEYS_PEM_KEY,
		    p->key_pem, p->key_len) == -1))
			log_warnx("%s: pki \"%s\" not sent", c->name, p->name);
		i++;
	}
	memset(&commit, 0, sizeof(commit));
	commit.generation = master->generation;
	commit.npki = i;
	imsgev_compose(&c->iev, IMSG_KEYS_COMMIT, 0, -1, &commit,
	    sizeof(commit));
}

static int
keys_reachable(const struct child *c)
{
	return c != NULL && child_running(c) && c->iev.open;
}

/*
 * The keys of conf to one key process (a new one) or, with c NULL, to
 * every one (a reload), then wiped here.  imsg's buffers that carry
 * them are wiped when freed (common/compat/imsg_buffer.c).
 */
static void
keys_send_to(struct child *c, struct portcullis_conf *conf)
{
	pki_keys_reread(conf);
	if (c != NULL)
		keys_send(c, conf);
	else
		for (unsigned int i = 0; i < master->nkeys; i++)
			if (keys_reachable(master->keys[i]))
				keys_send(master->keys[i], conf);
	pki_keys_wipe(conf);
}

/* A reload's keys, to every key process that runs. */
void
keyproc_send_keys(struct portcullis_conf *conf)
{
	keys_send_to(NULL, conf);
}

/* A new key process: who to become, then the keys. */
int
keyproc_configure(struct child *c)
{
	struct keys_start	 ks;

	memset(&ks, 0, sizeof(ks));
	if (strlcpy(ks.user, master->conf->keys_user, sizeof(ks.user)) >=
	    sizeof(ks.user) || strlcpy(ks.chroot, master->conf->chroot,
	    sizeof(ks.chroot)) >= sizeof(ks.chroot))
		return -1;
	if (imsgev_compose(&c->iev, IMSG_KEYS_START, 0, -1, &ks,
	    sizeof(ks)) == -1)
		return -1;
	keys_send_to(c, master->conf);
	return 0;
}

/*
 * One per online core, as the workers, but never more than there are
 * workers (worker i has one key process) nor KEY_PROCESSES_MAX.
 */
static unsigned int
keyproc_count(const struct portcullis_conf *conf, int workers)
{
	long	 n = conf->key_processes;

	if (n <= 0)
		n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n > workers)
		n = workers;
	if (n > KEY_PROCESSES_MAX)
		n = KEY_PROCESSES_MAX;
	return n < 1 ? 1 : (unsigned int)n;
}

/* At start, before the workers: they take master's copy of the keys. */
void
keyproc_start(int workers)
{
	master->nkeys = keyproc_count(master->conf, workers);
	for (unsigned int i = 0; i < master->nkeys; i++) {
		master->keys[i] = child_new(ROLE_KEYS, i);
		child_start(master->keys[i]);
	}
	log_info("%u key process%s", master->nkeys,
	    master->nkeys == 1 ? "" : "es");
}

/* A reload cannot change their number: see the top of this file. */
void
keyproc_reload_note(const struct portcullis_conf *conf, int workers)
{
	unsigned int	 n = keyproc_count(conf, workers);

	if (n != master->nkeys)
		log_warnx("key-processes: %u now, %u after a restart of "
		    "portcullisd; a reload keeps the running ones",
		    master->nkeys, n);
}

struct child *
keyproc_by_pid(pid_t pid)
{
	for (unsigned int i = 0; i < master->nkeys; i++)
		if (master->keys[i]->pid == pid)
			return master->keys[i];
	return NULL;
}

/* Is any key process still running? */
int
keyproc_running(void)
{
	for (unsigned int i = 0; i < master->nkeys; i++)
		if (child_running(master->keys[i]))
			return 1;
	return 0;
}

/* No more restarts; ask each to stop (sig 0) or send it sig. */
void
keyproc_stop(int sig)
{
	struct child	*c;

	for (unsigned int i = 0; i < master->nkeys; i++) {
		c = master->keys[i];
		evtimer_del(c->respawn_ev);
		if (!child_running(c))
			continue;
		if (sig == 0 && c->iev.open)
			imsgev_compose(&c->iev, IMSG_CTL_SHUTDOWN, 0, -1,
			    NULL, 0);
		else
			kill(c->pid, sig == 0 ? SIGTERM : sig);
	}
}

/* Introduce a worker and its key process to each other. */
void
keyproc_channel_create(struct child *w)
{
	struct keys_channel	 kc;
	struct child		*k;
	int			 sp[2];

	if (master->nkeys == 0)
		return;
	k = master->keys[w->id % master->nkeys];
	if (!k->ready || !w->ready)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: %s channel", w->name, k->name);
		return;
	}
	memset(&kc, 0, sizeof(kc));
	kc.worker_id = w->id;
	kc.generation = w->generation;
	imsgev_compose(&k->iev, IMSG_KEYS_CHANNEL, w->id, sp[1], &kc,
	    sizeof(kc));
	imsgev_compose(&w->iev, IMSG_KEYS_CHANNEL, w->id, sp[0], &kc,
	    sizeof(kc));
}

/* A key process is ready (again): only its own workers meet it. */
void
keyproc_ready(struct child *k)
{
	struct child	*w;

	TAILQ_FOREACH(w, &master->workers, entry)
		if (child_running(w) && w->id % master->nkeys == k->id)
			keyproc_channel_create(w);
}
