/*
 * keys.c -- portcullis-keys: the one process that holds the TLS
 * private keys.
 *
 * Workers parse bytes from the Internet; a memory disclosure or a
 * code execution there must not hand out the server's identity.  So
 * the workers get certificates only, and their OpenSSL objects send
 * each private-key operation here (worker/keyproxy.c).  This process
 * has no network and no files: master sends it KEYS_START (who to
 * become), then each pki's certificate and key as PEM (KEYS_PEM) and
 * KEYS_COMMIT; it parses them, checks that each key matches its
 * certificate, wipes the PEM, and only then chroots, drops to
 * auth-user and enters its sandbox (no socket(), no open()).  A
 * reload sends the next generation the same way; the previous one is
 * kept for the workers that drain, anything older is freed.
 *
 * Each worker gets a channel of its own (KEYS_CHANNEL from master).
 * What may come on it is one message: KEYS_SIGN, checked whole by
 * keys_request_check() (request.c) against the key it names.  A
 * request that is not well formed is refused, logged and answered
 * KEYS_REFUSED; the channel and the process stay.  A frame the
 * dispatch table refuses closes that worker's channel only.
 */

#include <sys/types.h>
#include <sys/queue.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "imsgev.h"
#include "log.h"
#include "privsep.h"
#include "proto.h"
#include "request.h"
#include "sign.h"
#include "sandbox.h"
#include "util.h"

#define KEYS_PKI_MAX		64	/* pkis in one configuration */
#define KEYS_PEM_MAX		PKI_PEM_MAX

struct keyslot {
	EVP_PKEY		*pkey;		/* NULL: unusable, logged */
	struct keys_key_shape	 shape;
	char			*pem[2];	/* KEYS_PEM_CERT, _KEY */
	size_t			 pem_len[2];
};

struct keyset {
	int			 used;
	uint32_t		 generation;
	uint32_t		 npki;
	struct keyslot		 slot[KEYS_PKI_MAX];
};

struct kchan {
	TAILQ_ENTRY(kchan)	 entry;
	struct imsgev		 iev;
	uint32_t		 worker_id;
	uint32_t		 generation;
	char			 name[32];
};

static struct event_base	*base;
static struct imsgev		 master_iev;
static struct keys_start	 start;
static int			 started;	/* sandboxed, ready */
/* [0] the current generation, [1] the previous; pending: arriving */
static struct keyset		 sets[2], pending;
static TAILQ_HEAD(, kchan)	 channels = TAILQ_HEAD_INITIALIZER(channels);
static uint64_t			 signed_count, refused_count;

static int	master_start(struct imsgev *, struct imsg *);
static int	master_pem(struct imsgev *, struct imsg *);
static int	master_commit(struct imsgev *, struct imsg *);
static int	master_channel(struct imsgev *, struct imsg *);
static int	master_shutdown(struct imsgev *, struct imsg *);
static void	master_closed(struct imsgev *);
static int	worker_sign(struct imsgev *, struct imsg *);
static void	worker_closed(struct imsgev *);

/* Before the first set: who to become, then the keys. */
static const struct imsg_dispatch from_master_conf[] = {
	{ IMSG_KEYS_START, sizeof(struct keys_start), IMSGEV_ONCE,
	    master_start },
	{ IMSG_KEYS_PEM, sizeof(struct keys_pem), IMSGEV_MIN, master_pem },
	{ IMSG_KEYS_COMMIT, sizeof(struct keys_commit), 0, master_commit },
	{ IMSG_CTL_SHUTDOWN, 0, 0, master_shutdown },
	{ IMSG_CTL_VERBOSE, sizeof(int), 0, privsep_verbose },
	{ 0, 0, 0, NULL }
};

/* Running: a reload's keys, a worker's channel. */
static const struct imsg_dispatch from_master_running[] = {
	{ IMSG_KEYS_PEM, sizeof(struct keys_pem), IMSGEV_MIN, master_pem },
	{ IMSG_KEYS_COMMIT, sizeof(struct keys_commit), 0, master_commit },
	{ IMSG_KEYS_CHANNEL, sizeof(struct keys_channel), IMSGEV_FD,
	    master_channel },
	{ IMSG_CTL_SHUTDOWN, 0, 0, master_shutdown },
	{ IMSG_CTL_VERBOSE, sizeof(int), 0, privsep_verbose },
	{ 0, 0, 0, NULL }
};

/* A worker may ask for a signature, and for nothing else. */
static const struct imsg_dispatch from_worker[] = {
	{ IMSG_KEYS_SIGN, sizeof(struct keys_sign), IMSGEV_MIN, worker_sign },
	{ 0, 0, 0, NULL }
};

static void
slot_wipe_pem(struct keyslot *s)
{
	for (int k = 0; k < 2; k++) {
		if (s->pem[k] != NULL)
			freezero(s->pem[k], s->pem_len[k] + 1);
		s->pem[k] = NULL;
		s->pem_len[k] = 0;
	}
}

/* EVP_PKEY_free() wipes the key's numbers (BN_clear_free). */
static void
set_free(struct keyset *set)
{
	for (size_t i = 0; i < KEYS_PKI_MAX; i++) {
		slot_wipe_pem(&set->slot[i]);
		EVP_PKEY_free(set->slot[i].pkey);
	}
	explicit_bzero(set, sizeof(*set));
}

static int
no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf; (void)size; (void)rwflag; (void)arg;
	return 0;
}

static void *
pem_parse(const struct keyslot *s, int kind)
{
	BIO	*bio;
	void	*obj;

	if (s->pem[kind] == NULL ||
	    (bio = BIO_new_mem_buf(s->pem[kind], (int)s->pem_len[kind])) ==
	    NULL)
		return NULL;
	obj = kind == KEYS_PEM_KEY ?
	    (void *)PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) :
	    (void *)PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
	BIO_free(bio);
	return obj;
}

/*
 * The key, checked against the leaf certificate the workers present
 * (master read both from the disk, perhaps again after a restart).
 */
static int
slot_load(struct keyslot *s, uint32_t gen, uint32_t pki)
{
	X509		*x;
	EVP_PKEY	*k;

	k = pem_parse(s, KEYS_PEM_KEY);
	x = pem_parse(s, KEYS_PEM_CERT);
	slot_wipe_pem(s);
	if (k == NULL || x == NULL || X509_check_private_key(x, k) != 1) {
		log_warnx("generation %u, pki %u: %s", gen, pki, k == NULL ?
		    "no usable private key" : x == NULL ? "no certificate" :
		    "the key does not match the certificate");
		EVP_PKEY_free(k);
		X509_free(x);
		ERR_clear_error();
		return -1;
	}
	X509_free(x);
	if (keys_key_shape_of(k, &s->shape) == -1) {
		log_warnx("generation %u, pki %u: neither an RSA nor an EC "
		    "key", gen, pki);
		EVP_PKEY_free(k);
		return -1;
	}
	s->pkey = k;
	return 0;
}

static int
master_start(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev;
	imsgev_data(imsg, &start, sizeof(start));
	start.user[sizeof(start.user) - 1] = '\0';
	start.chroot[sizeof(start.chroot) - 1] = '\0';
	return 0;
}

/* Append a chunk to the pending set's slot. */
static int
master_pem(struct imsgev *iev, struct imsg *imsg)
{
	struct keys_pem	 hdr;
	struct ibuf	 ibuf;
	struct keyslot	*s;
	size_t		 add;
	char		*n;

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &hdr, sizeof(hdr)) == -1)
		return imsgev_reject(iev, "short");
	if (hdr.pki >= KEYS_PKI_MAX || hdr.kind > KEYS_PEM_KEY)
		return imsgev_reject(iev, "pki %u, kind %u", hdr.pki,
		    hdr.kind);
	if (!pending.used || pending.generation != hdr.generation) {
		set_free(&pending);
		pending.used = 1;
		pending.generation = hdr.generation;
	}
	s = &pending.slot[hdr.pki];
	add = ibuf_size(&ibuf);
	if (add == 0 || s->pem_len[hdr.kind] + add > KEYS_PEM_MAX)
		return imsgev_reject(iev, "PEM too long");
	/* No realloc: the old block holds key material to wipe. */
	if ((n = malloc(s->pem_len[hdr.kind] + add + 1)) == NULL)
		fatal("malloc");
	if (s->pem[hdr.kind] != NULL) {
		memcpy(n, s->pem[hdr.kind], s->pem_len[hdr.kind]);
		freezero(s->pem[hdr.kind], s->pem_len[hdr.kind] + 1);
	}
	memcpy(n + s->pem_len[hdr.kind], ibuf_data(&ibuf), add);
	s->pem_len[hdr.kind] += add;
	n[s->pem_len[hdr.kind]] = '\0';
	s->pem[hdr.kind] = n;
	return 0;
}

/* Parsed and checked before the chroot the first time. */
static void
keys_sandbox(void)
{
	struct hello	 hello;

	if (privsep_drop(start.user, start.chroot))
		log_debug("running as %s in %s", start.user, start.chroot);
	sandbox_enter(SANDBOX_KEYS, 0);
	started = 1;
	imsgev_set_table(&master_iev, from_master_running);
	memset(&hello, 0, sizeof(hello));
	hello.version = PROTO_VERSION;
	imsgev_compose(&master_iev, IMSG_CHILD_READY, 0, -1, &hello,
	    sizeof(hello));
}

static int
master_commit(struct imsgev *iev, struct imsg *imsg)
{
	struct keys_commit	 c;
	unsigned int		 loaded = 0;

	imsgev_data(imsg, &c, sizeof(c));
	if (c.npki > KEYS_PKI_MAX)
		return imsgev_reject(iev, "%u pkis", c.npki);
	if (!pending.used || pending.generation != c.generation) {
		set_free(&pending);
		pending.generation = c.generation;
	}
	pending.used = 1;
	pending.npki = c.npki;
	for (uint32_t i = 0; i < c.npki; i++)
		if (slot_load(&pending.slot[i], c.generation, i) == 0)
			loaded++;
	/* Slots beyond npki were never announced: gone. */
	for (uint32_t i = c.npki; i < KEYS_PKI_MAX; i++)
		slot_wipe_pem(&pending.slot[i]);
	if (sets[0].used && sets[0].generation != c.generation) {
		set_free(&sets[1]);
		sets[1] = sets[0];
	} else
		set_free(&sets[0]);
	sets[0] = pending;
	explicit_bzero(&pending, sizeof(pending));
	log_info("generation %u: %u of %u keys loaded", c.generation, loaded,
	    c.npki);
	if (!started)
		keys_sandbox();
	return 0;
}

static int
master_channel(struct imsgev *iev, struct imsg *imsg)
{
	struct keys_channel	 kc;
	struct kchan		*ch;
	int			 fd = imsg_get_fd(imsg);

	(void)iev;
	imsgev_data(imsg, &kc, sizeof(kc));
	/* A worker's new channel replaces its old one. */
	TAILQ_FOREACH(ch, &channels, entry)
		if (ch->worker_id == kc.worker_id &&
		    ch->generation == kc.generation) {
			ch->iev.closed = NULL;
			imsgev_close(&ch->iev);
			TAILQ_REMOVE(&channels, ch, entry);
			free(ch);
			break;
		}
	if ((ch = calloc(1, sizeof(*ch))) == NULL)
		fatal("calloc");
	ch->worker_id = kc.worker_id;
	ch->generation = kc.generation;
	snprintf(ch->name, sizeof(ch->name), "worker %u", kc.worker_id);
	if (imsgev_init(&ch->iev, base, fd, 0, ch->name, NULL, worker_closed,
	    ch) == -1) {
		log_warn("%s: channel", ch->name);
		close(fd);
		free(ch);
		return 0;
	}
	imsgev_set_table(&ch->iev, from_worker);
	TAILQ_INSERT_TAIL(&channels, ch, entry);
	return 0;
}

static struct keyslot *
key_find(uint32_t generation, uint32_t pki)
{
	for (int i = 0; i < 2; i++)
		if (sets[i].used && sets[i].generation == generation &&
		    pki < sets[i].npki && sets[i].slot[pki].pkey != NULL)
			return &sets[i].slot[pki];
	return NULL;
}

static void
reply(struct kchan *ch, uint64_t req_id, uint32_t status, const uint8_t *sig,
    size_t len)
{
	struct keys_signed	 r;
	struct iovec		 iov[2];

	memset(&r, 0, sizeof(r));
	r.req_id = req_id;
	r.status = status;
	r.len = (uint32_t)len;
	iov[0].iov_base = &r;
	iov[0].iov_len = sizeof(r);
	iov[1].iov_base = (void *)(uintptr_t)sig;
	iov[1].iov_len = len;
	if (imsgev_composev(&ch->iev, IMSG_KEYS_SIGNED, 0, iov,
	    len > 0 ? 2 : 1) == -1)
		return;
	/*
	 * Out now, not once the whole batch this read brought is signed:
	 * at c=256 a worker's requests come in bursts, and the first
	 * handshake would wait for every signature of its burst.  What
	 * the socket does not take now, the loop writes later.
	 */
	(void)imsgbuf_write(&ch->iev.ibuf);
}

static int
worker_sign(struct imsgev *iev, struct imsg *imsg)
{
	struct kchan		*ch = iev->arg;
	struct keys_sign	 req;
	struct keyslot		*s;
	struct ibuf		 ibuf;
	uint8_t			 out[KEYS_OUTPUT_MAX];
	size_t			 outlen = sizeof(out);
	char			 err[160];

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &req, sizeof(req)) == -1)
		return imsgev_reject(iev, "short");
	if ((s = key_find(req.generation, req.pki)) == NULL) {
		log_warnx("%s: no key %u of generation %u", ch->name,
		    req.pki, req.generation);
		reply(ch, req.req_id, KEYS_NOKEY, NULL, 0);
		return 0;
	}
	if (keys_request_check(&req, ibuf_data(&ibuf), ibuf_size(&ibuf),
	    &s->shape, err, sizeof(err)) == -1) {
		refused_count++;
		log_warnx("%s: refused KEYS_SIGN: %s", ch->name, err);
		reply(ch, req.req_id, KEYS_REFUSED, NULL, 0);
		return 0;
	}
	if (keys_sign_op(s->pkey, &req, ibuf_data(&ibuf), out, &outlen) ==
	    -1) {
		log_warnx("%s: key %u of generation %u: the signature "
		    "failed", ch->name, req.pki, req.generation);
		reply(ch, req.req_id, KEYS_FAILED, NULL, 0);
		return 0;
	}
	signed_count++;
	reply(ch, req.req_id, KEYS_OK, out, outlen);
	return 0;
}

static void
worker_closed(struct imsgev *iev)
{
	struct kchan	*ch = iev->arg;

	log_debug("%s: channel closed", ch->name);
	TAILQ_REMOVE(&channels, ch, entry);
	free(ch);
}

static int
master_shutdown(struct imsgev *iev, struct imsg *imsg)
{
	(void)iev; (void)imsg;
	log_info("shutting down: %llu signatures, %llu refused",
	    (unsigned long long)signed_count,
	    (unsigned long long)refused_count);
	set_free(&sets[0]);
	set_free(&sets[1]);
	set_free(&pending);
	exit(0);
}

static void
master_closed(struct imsgev *iev)
{
	(void)iev;
	log_info("master went away, exiting");
	exit(0);
}

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: portcullis-keys [-dv]\n");
	exit(1);
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
	privsep_child_init("keys", debug, verbose);
	/* OpenSSL's configuration and providers, while files are there. */
	if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		fatalx("OPENSSL_init_crypto");
	base = privsep_child_loop(&master_iev, from_master_conf,
	    master_closed);
	event_base_dispatch(base);
	log_info("exiting");
	return 0;
}
