/*
 * keyproc.c -- master's side of the key process (keys/keys.c).
 *
 * master reads the private keys (pki.c), checks them, hands them to
 * the key process and wipes its own copy at once: after start-up and
 * after each reload no private key is left in master's memory.  When
 * the key process is restarted, master reads the key files again (as
 * root: the files are master's to read) and sends them without parsing
 * them; the key process checks each against the certificate the
 * workers present, and a key that changed on disk without a reload is
 * refused and logged there (handshakes on that pki then fail until a
 * reload), never a mismatch served.
 *
 * Each worker gets a channel of its own to the key process, through a
 * socketpair master makes once both are ready, and again whenever the
 * key process is restarted, as for authd.
 */

#include <sys/types.h>
#include <sys/socket.h>

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

/*
 * The current configuration's keys to the key process, then wiped
 * here.  imsg's buffers that carry them are wiped when freed
 * (common/compat/imsg_buffer.c).
 */
void
keyproc_send_keys(struct portcullis_conf *conf)
{
	struct child		*c = master->keys;
	struct keys_commit	 commit;
	struct pki		*p;
	uint32_t		 i = 0;

	if (c == NULL || !child_running(c) || !c->iev.open) {
		pki_keys_wipe(conf);	/* read again when it starts */
		return;
	}
	pki_keys_reread(conf);
	TAILQ_FOREACH(p, &conf->pkis, entry) {
		if ((p->cert_pem != NULL && send_pem(&c->iev,
		    master->generation, i, KEYS_PEM_CERT, p->cert_pem,
		    p->cert_len) == -1) || (p->key_pem != NULL &&
		    send_pem(&c->iev, master->generation, i, KEYS_PEM_KEY,
		    p->key_pem, p->key_len) == -1))
			log_warnx("keys: pki \"%s\" not sent", p->name);
		i++;
	}
	pki_keys_wipe(conf);
	memset(&commit, 0, sizeof(commit));
	commit.generation = master->generation;
	commit.npki = i;
	imsgev_compose(&c->iev, IMSG_KEYS_COMMIT, 0, -1, &commit,
	    sizeof(commit));
}

/* A new key process: who to become, then the keys. */
int
keyproc_configure(struct child *c)
{
	struct keys_start	 ks;

	memset(&ks, 0, sizeof(ks));
	if (strlcpy(ks.user, master->conf->auth_user, sizeof(ks.user)) >=
	    sizeof(ks.user) || strlcpy(ks.chroot, master->conf->chroot,
	    sizeof(ks.chroot)) >= sizeof(ks.chroot))
		return -1;
	if (imsgev_compose(&c->iev, IMSG_KEYS_START, 0, -1, &ks,
	    sizeof(ks)) == -1)
		return -1;
	keyproc_send_keys(master->conf);
	return 0;
}

/* Introduce a worker and the key process to each other. */
void
keyproc_channel_create(struct child *w)
{
	struct keys_channel	 kc;
	int			 sp[2];

	if (master->keys == NULL || !master->keys->ready || !w->ready)
		return;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == -1) {
		log_warn("%s: key process channel", w->name);
		return;
	}
	memset(&kc, 0, sizeof(kc));
	kc.worker_id = w->id;
	kc.generation = w->generation;
	imsgev_compose(&master->keys->iev, IMSG_KEYS_CHANNEL, w->id, sp[1],
	    &kc, sizeof(kc));
	imsgev_compose(&w->iev, IMSG_KEYS_CHANNEL, w->id, sp[0], &kc,
	    sizeof(kc));
}
