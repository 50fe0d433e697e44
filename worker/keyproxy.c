/*
 * keyproxy.c -- the worker's private keys are somewhere else.
 *
 * A worker holds certificates only.  For each one, keyproxy_key()
 * makes a key object with the certificate's public half and methods
 * whose private operations ask the key process (keys/keys.c) over the
 * channel master handed us (KEYS_CHANNEL), and wait for the answer.
 *
 * The route is RSA_METHOD and EC_KEY_METHOD, on OpenSSL 3 as on
 * LibreSSL: OpenSSL 3 deprecated them in favour of providers, but it
 * still runs a key whose method is not its own through the legacy
 * code (a "foreign" key), and LibreSSL has nothing else.  One route,
 * one file: the deprecation is silenced here and nowhere else.
 *
 * What OpenSSL hands the methods, and so what we send:
 * - RSA PKCS #1 v1.5 (TLS 1.2 signatures): RSA_sign() builds the
 *   DigestInfo and calls priv_enc with RSA_PKCS1_PADDING;
 * - RSA-PSS (TLS 1.3, and TLS 1.2's rsa_pss_rsae): the EMSA-PSS
 *   encoding is made here, and priv_enc gets a modulus-sized block
 *   with RSA_NO_PADDING;
 * - ECDSA: the digest.
 * priv_dec (RSA key exchange) always fails: tls.c offers no kRSA
 * cipher, and the key process would refuse it anyway.
 *
 * OpenSSL's async jobs, not a blocking round trip: measured
 * (tests/bench/keys_bench.py), a worker that waited for each
 * signature served every other session late, since the answer needs
 * the key process and then the worker to be scheduled again; on a
 * loaded machine that halved the handshake rate and doubled the median
 * handshake.  So a handshake runs as an async job (tls.c,
 * tls_accept_start()): the request goes out, the job pauses with an
 * eventfd of its own as its wait descriptor, the loop goes on, and
 * keyproxy_read() wakes the job when its answer comes.  Outside a job
 * (the unit tests) the round trip blocks, with the same deadline.
 * Each wait has a deadline (KEYPROXY_TIMEOUT_MS) and is tried once
 * more after a timeout; a channel that fails is closed, the handshake
 * fails (logged), and STARTTLS answers 454 until master hands over a
 * new channel.
 */

/* RSA_METHOD, EC_KEY_METHOD: deprecated in OpenSSL 3, see above. */
#define OPENSSL_SUPPRESS_DEPRECATED	1
#define OPENSSL_API_COMPAT		0x10100000L

#include <sys/types.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif
#include <sys/queue.h>

#include <fcntl.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#if !defined(LIBRESSL_VERSION_NUMBER)
#include <openssl/async.h>
#define KEYPROXY_ASYNC	1	/* LibreSSL has no async jobs: it blocks */
#endif
#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "imsg.h"
#include "log.h"
#include "proto.h"
#include "tls.h"
#include "util.h"

#define KEYPROXY_TIMEOUT_MS	1000	/* one try; a second after it */

/* A request of a paused job, until its answer or its deadline. */
struct pending {
	TAILQ_ENTRY(pending)	 entry;
	uint64_t		 req_id;
	int			 efd;		/* the job's wait descriptor */
	int			 wfd;		/* written to wake it */
	int			 state;		/* PENDING_* */
	struct event		*timer;
	uint8_t			*out;
	size_t			 outmax;
	size_t			 outlen;
};
#define PENDING_WAIT	0
#define PENDING_OK	1
#define PENDING_FAILED	2
#define PENDING_TIMEOUT	3

static struct {
	struct imsgbuf	 ibuf;
	struct event_base *base;
	struct event	*read_ev;	/* answers, and EOF */
	int		 fd;		/* -1: no channel */
	int		 async;		/* pause jobs rather than block */
	uint32_t	 generation;
	uint64_t	 next_id;
	TAILQ_HEAD(, pending) pending;
} kp = { .fd = -1, .pending = TAILQ_HEAD_INITIALIZER(kp.pending) };

static RSA_METHOD	*rsa_method;
static EC_KEY_METHOD	*ec_method;
static int		 rsa_idx = -1, ec_idx = -1;

int
keyproxy_available(void)
{
	return kp.fd != -1;
}

/* The worker runs handshakes as async jobs (tls_accept_start()). */
void
keyproxy_async(int on)
{
	kp.async = on;
}

/* Wake a paused job: its answer, or its end. */
static void
pending_wake(struct pending *p, int state)
{
	uint64_t	 one = 1;

	if (p->state != PENDING_WAIT)
		return;
	p->state = state;
	TAILQ_REMOVE(&kp.pending, p, entry);
	if (p->timer != NULL)
		evtimer_del(p->timer);
	/* An eventfd's counter cannot overflow from one write. */
	if (write(p->wfd, &one, sizeof(one)) != sizeof(one))
		log_warn("key process: eventfd");
}

static void
pending_fail_all(void)
{
	struct pending	*p;

	while ((p = TAILQ_FIRST(&kp.pending)) != NULL)
		pending_wake(p, PENDING_FAILED);
}

static void
keyproxy_drop(const char *why)
{
	if (kp.fd == -1)
		return;
	log_warnx("key process channel closed: %s; TLS handshakes fail "
	    "until master hands over a new one", why);
	if (kp.read_ev != NULL)
		event_free(kp.read_ev);
	kp.read_ev = NULL;
	imsgbuf_clear(&kp.ibuf);
	close(kp.fd);
	kp.fd = -1;
	pending_fail_all();
}

/* An answer for a paused job: hand it over and wake the job. */
static int
answer(struct imsg *imsg)
{
	struct ibuf		 ibuf;
	struct keys_signed	 r;
	struct pending		*p;

	if (imsg_get_type(imsg) != IMSG_KEYS_SIGNED ||
	    imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &r, sizeof(r)) == -1 || r.len != ibuf_size(&ibuf))
		return -1;
	TAILQ_FOREACH(p, &kp.pending, entry)
		if (p->req_id == r.req_id)
			break;
	if (p == NULL)		/* late: a request that timed out */
		return 0;
	if (r.status != KEYS_OK || r.len > p->outmax) {
		log_warnx("key process: no signature (%s)",
		    r.status == KEYS_REFUSED ? "refused" :
		    r.status == KEYS_NOKEY ? "no such key" : "failed");
		pending_wake(p, PENDING_FAILED);
		return 0;
	}
	memcpy(p->out, ibuf_data(&ibuf), r.len);
	p->outlen = r.len;
	pending_wake(p, PENDING_OK);
	return 0;
}

/*
 * The channel is readable: answers for paused jobs (a late one for a
 * request that timed out is dropped), or end of file when the key
 * process died, after which STARTTLS says 454 at once.
 */
static void
keyproxy_read(evutil_socket_t fd, short ev, void *arg)
{
	struct imsg	 imsg;
	ssize_t		 n;
	int		 rv;

	(void)fd; (void)ev; (void)arg;
	if ((rv = imsgbuf_read(&kp.ibuf)) == 0 || (rv == -1 &&
	    errno != EAGAIN)) {
		keyproxy_drop(rv == 0 ? "the key process went away" :
		    strerror(errno));
		return;
	}
	while ((n = imsg_get(&kp.ibuf, &imsg)) > 0) {
		rv = answer(&imsg);
		imsg_free(&imsg);
		if (rv == -1) {
			keyproxy_drop("a message that is not KEYS_SIGNED");
			return;
		}
	}
	if (n == -1)
		keyproxy_drop("malformed message");
}

/* A new channel from master (the key process started or restarted). */
void
keyproxy_channel(struct event_base *base, int fd, uint32_t generation)
{
	if (kp.fd != -1) {
		if (kp.read_ev != NULL)
			event_free(kp.read_ev);
		kp.read_ev = NULL;
		imsgbuf_clear(&kp.ibuf);
		close(kp.fd);
	}
	kp.fd = -1;
	if (imsgbuf_init(&kp.ibuf, fd) == -1 || (kp.read_ev = event_new(base,
	    fd, EV_READ | EV_PERSIST, keyproxy_read, NULL)) == NULL ||
	    event_priority_set(kp.read_ev, TLS_PRIORITY_KEYS) == -1 ||
	    event_add(kp.read_ev, NULL) == -1) {
		log_warn("key process channel");
		if (kp.read_ev != NULL)
			event_free(kp.read_ev);
		kp.read_ev = NULL;
		close(fd);
		return;
	}
	kp.fd = fd;
	kp.base = base;
	kp.generation = generation;
}

static int
wait_fd(short events, const struct timespec *deadline)
{
	struct pollfd	 pfd = { .fd = kp.fd, .events = events };
	struct timespec	 now;
	long		 ms;
	int		 n;

	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		ms = (deadline->tv_sec - now.tv_sec) * 1000 +
		    (deadline->tv_nsec - now.tv_nsec) / 1000000;
		if (ms <= 0)
			return 0;
		if ((n = poll(&pfd, 1, (int)ms)) == -1 && errno == EINTR)
			continue;
		return n;
	}
}

/*
 * The answer to req_id: 1 with the signature in out, 0 on a timeout,
 * -1 when the channel broke or the key process said no.
 */
static int
await_reply(uint64_t req_id, uint8_t *out, size_t outmax, size_t *outlen,
    const struct timespec *deadline)
{
	struct imsg		 imsg;
	struct ibuf		 ibuf;
	struct keys_signed	 r;
	ssize_t			 n;
	int			 rv;

	for (;;) {
		if ((n = imsg_get(&kp.ibuf, &imsg)) == -1) {
			keyproxy_drop("malformed message");
			return -1;
		}
		if (n == 0) {
			if ((rv = wait_fd(POLLIN, deadline)) <= 0)
				return rv;
			if ((rv = imsgbuf_read(&kp.ibuf)) == 0 || (rv == -1 &&
			    errno != EAGAIN)) {
				keyproxy_drop(rv == 0 ? "end of file" :
				    strerror(errno));
				return -1;
			}
			continue;
		}
		if (imsg_get_type(&imsg) != IMSG_KEYS_SIGNED ||
		    imsg_get_ibuf(&imsg, &ibuf) == -1 ||
		    ibuf_get(&ibuf, &r, sizeof(r)) == -1 ||
		    r.len != ibuf_size(&ibuf) || r.len > outmax) {
			imsg_free(&imsg);
			keyproxy_drop("a message that is not KEYS_SIGNED");
			return -1;
		}
		if (r.req_id != req_id) {	/* late: a timed-out try */
			imsg_free(&imsg);
			continue;
		}
		if (r.status != KEYS_OK) {
			log_warnx("key process: no signature (%s)",
			    r.status == KEYS_REFUSED ? "refused" :
			    r.status == KEYS_NOKEY ? "no such key" :
			    "failed");
			imsg_free(&imsg);
			return -1;
		}
		memcpy(out, ibuf_data(&ibuf), r.len);
		*outlen = r.len;
		imsg_free(&imsg);
		return 1;
	}
}

static int
send_request(const struct keys_sign *req, const uint8_t *in)
{
	struct timespec	 deadline;
	struct iovec	 iov[2];

	iov[0].iov_base = (void *)(uintptr_t)req;
	iov[0].iov_len = sizeof(*req);
	iov[1].iov_base = (void *)(uintptr_t)in;
	iov[1].iov_len = req->len;
	if (imsg_composev(&kp.ibuf, IMSG_KEYS_SIGN, 0, 0, -1, iov, 2) == -1)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += 1;
	while (imsgbuf_queuelen(&kp.ibuf) > 0) {
		if (imsgbuf_write(&kp.ibuf) == -1 && errno != EAGAIN) {
			keyproxy_drop(strerror(errno));
			return -1;
		}
		if (imsgbuf_queuelen(&kp.ibuf) > 0 &&
		    wait_fd(POLLOUT, &deadline) <= 0) {
			keyproxy_drop("the key process does not read");
			return -1;
		}
	}
	return 0;
}

#ifdef KEYPROXY_ASYNC
/* An eventfd on Linux, a pipe elsewhere: what wakes a paused job. */
static int
wake_open(struct pending *p)
{
#ifdef __linux__
	if ((p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) == -1)
		return -1;
	p->wfd = p->efd;
#else
	int	 fds[2];

	if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) == -1)
		return -1;
	p->efd = fds[0];
	p->wfd = fds[1];
#endif
	return 0;
}

static void
wake_close(struct pending *p)
{
	if (p->wfd != p->efd)
		close(p->wfd);
	close(p->efd);
}

static void
pending_timeout(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd; (void)ev;
	pending_wake(arg, PENDING_TIMEOUT);
}

/*
 * Inside an async job: send, pause until keyproxy_read() or the
 * deadline wakes us.  1 with the signature, 0 on a timeout, -1 else.
 */
static int
call_async(ASYNC_JOB *job, const struct keys_sign *req, const uint8_t *in,
    uint8_t *out, size_t outmax, size_t *outlen)
{
	ASYNC_WAIT_CTX	*wctx = ASYNC_get_wait_ctx(job);
	struct pending	 p;
	struct timeval	 tv = { KEYPROXY_TIMEOUT_MS / 1000,
			    (KEYPROXY_TIMEOUT_MS % 1000) * 1000 };
	uint64_t	 n;
	int		 rv = -1;

	memset(&p, 0, sizeof(p));
	p.req_id = req->req_id;
	p.out = out;
	p.outmax = outmax;
	if (wake_open(&p) == -1) {
		log_warn("key process: wake-up descriptor");
		return -1;
	}
	if ((p.timer = evtimer_new(kp.base, pending_timeout, &p)) == NULL ||
	    ASYNC_WAIT_CTX_set_wait_fd(wctx, &p, p.efd, NULL, NULL) != 1) {
		if (p.timer != NULL)
			event_free(p.timer);
		wake_close(&p);
		return -1;
	}
	TAILQ_INSERT_TAIL(&kp.pending, &p, entry);
	evtimer_add(p.timer, &tv);
	if (send_request(req, in) == -1)
		pending_wake(&p, PENDING_FAILED);
	while (p.state == PENDING_WAIT)
		if (ASYNC_pause_job() != 1) {
			pending_wake(&p, PENDING_FAILED);
			break;
		}
	if (read(p.efd, &n, sizeof(n)) == -1 && errno != EAGAIN)
		log_warn("key process: eventfd");
	ASYNC_WAIT_CTX_clear_fd(wctx, &p);
	event_free(p.timer);
	wake_close(&p);
	if (p.state == PENDING_OK) {
		*outlen = p.outlen;
		rv = 1;
	} else if (p.state == PENDING_TIMEOUT)
		rv = 0;
	return rv;
}

#endif

/* One private operation, on the key process; -1 on any failure. */
static int
keyproxy_call(uint32_t pki, uint32_t op, uint32_t padding, const uint8_t *in,
    size_t inlen, uint8_t *out, size_t outmax, size_t *outlen)
{
	struct keys_sign	 req;
	struct timespec		 deadline;
#ifdef KEYPROXY_ASYNC
	ASYNC_JOB		*job;
#endif
	int			 rv;

	if (inlen == 0 || inlen > KEYS_INPUT_MAX)
		return -1;
#ifdef KEYPROXY_ASYNC
	job = kp.async ? ASYNC_get_current_job() : NULL;
#endif
	for (int attempt = 0; attempt < 2; attempt++) {
		if (kp.fd == -1) {
			log_warnx("no channel to the key process: TLS "
			    "handshake fails");
			return -1;
		}
		memset(&req, 0, sizeof(req));
		req.req_id = ++kp.next_id;
		req.generation = kp.generation;
		req.pki = pki;
		req.op = op;
		req.padding = padding;
		req.len = (uint32_t)inlen;
#ifdef KEYPROXY_ASYNC
		if (job != NULL) {
			if ((rv = call_async(job, &req, in, out, outmax,
			    outlen)) != 0)
				return rv == 1 ? 0 : -1;
			log_warnx("key process: no answer in %d ms%s",
			    KEYPROXY_TIMEOUT_MS, attempt == 0 ?
			    ", trying again" : ", TLS handshake fails");
			continue;
		}
#endif
		if (send_request(&req, in) == -1)
			return -1;
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += KEYPROXY_TIMEOUT_MS / 1000;
		deadline.tv_nsec += (KEYPROXY_TIMEOUT_MS % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
		if ((rv = await_reply(req.req_id, out, outmax, outlen,
		    &deadline)) != 0)
			return rv == 1 ? 0 : -1;
		log_warnx("key process: no answer in %d ms%s",
		    KEYPROXY_TIMEOUT_MS, attempt == 0 ? ", trying again" :
		    ", TLS handshake fails");
	}
	return -1;
}

static uint32_t
key_pki(void *exdata)
{
	return (uint32_t)((uintptr_t)exdata - 1);
}

static int
rsa_priv_enc(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	size_t		 outlen;
	uint32_t	 pad;

	if (padding == RSA_PKCS1_PADDING)
		pad = KEYS_PAD_PKCS1;
	else if (padding == RSA_NO_PADDING)
		pad = KEYS_PAD_RAW;
	else
		return -1;
	if (flen <= 0 || keyproxy_call(key_pki(RSA_get_ex_data(rsa,
	    rsa_idx)), KEYS_OP_RSA_SIGN, pad, from, (size_t)flen, to,
	    (size_t)RSA_size(rsa), &outlen) == -1)
		return -1;
	return (int)outlen;
}

static int
rsa_priv_dec(int flen, const unsigned char *from, unsigned char *to,
    RSA *rsa, int padding)
{
	(void)flen; (void)from; (void)to; (void)rsa; (void)padding;
	log_warnx("tls: RSA key exchange asked for: not offered");
	return -1;
}

static int
ec_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
    unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *ec)
{
	size_t	 outlen;

	(void)type; (void)kinv; (void)r;
	if (dlen <= 0 || keyproxy_call(key_pki(EC_KEY_get_ex_data(ec,
	    ec_idx)), KEYS_OP_ECDSA_SIGN, KEYS_PAD_NONE, dgst, (size_t)dlen,
	    sig, (size_t)ECDSA_size(ec), &outlen) == -1) {
		*siglen = 0;
		return 0;
	}
	*siglen = (unsigned int)outlen;
	return 1;
}

static ECDSA_SIG *
ec_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
    const BIGNUM *r, EC_KEY *ec)
{
	unsigned char		 der[256];
	const unsigned char	*p = der;
	unsigned int		 len;

	if (ECDSA_size(ec) > (int)sizeof(der) ||
	    ec_sign(0, dgst, dlen, der, &len, kinv, r, ec) != 1)
		return NULL;
	return d2i_ECDSA_SIG(NULL, &p, (long)len);
}

static int
methods_init(void)
{
	if (rsa_method != NULL)
		return 0;
	if ((rsa_method = RSA_meth_dup(RSA_get_default_method())) == NULL ||
	    RSA_meth_set1_name(rsa_method, "portcullis keys") != 1 ||
	    RSA_meth_set_priv_enc(rsa_method, rsa_priv_enc) != 1 ||
	    RSA_meth_set_priv_dec(rsa_method, rsa_priv_dec) != 1)
		return -1;
	if ((ec_method = EC_KEY_METHOD_new(EC_KEY_get_default_method())) ==
	    NULL)
		return -1;
	EC_KEY_METHOD_set_sign(ec_method, ec_sign, NULL, ec_sign_sig);
	rsa_idx = RSA_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	ec_idx = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	return rsa_idx == -1 || ec_idx == -1 ? -1 : 0;
}

static EVP_PKEY *
key_rsa(EVP_PKEY *pub, uint32_t pki)
{
	const RSA	*src;
	RSA		*rsa;
	BIGNUM		*n, *e;
	EVP_PKEY	*k;

	if ((src = EVP_PKEY_get0_RSA(pub)) == NULL || (rsa = RSA_new()) ==
	    NULL)
		return NULL;
	n = BN_dup(RSA_get0_n(src));
	e = BN_dup(RSA_get0_e(src));
	if (n == NULL || e == NULL || RSA_set0_key(rsa, n, e, NULL) != 1) {
		BN_free(n);
		BN_free(e);
		RSA_free(rsa);
		return NULL;
	}
	if (RSA_set_method(rsa, rsa_method) != 1 ||
	    RSA_set_ex_data(rsa, rsa_idx, (void *)(uintptr_t)(pki + 1)) !=
	    1 || (k = EVP_PKEY_new()) == NULL) {
		RSA_free(rsa);
		return NULL;
	}
	if (EVP_PKEY_assign_RSA(k, rsa) != 1) {
		RSA_free(rsa);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

static EVP_PKEY *
key_ec(EVP_PKEY *pub, uint32_t pki)
{
	const EC_KEY	*src;
	EC_KEY		*ec;
	EVP_PKEY	*k;

	if ((src = EVP_PKEY_get0_EC_KEY(pub)) == NULL ||
	    (ec = EC_KEY_new()) == NULL)
		return NULL;
	if (EC_KEY_set_method(ec, ec_method) != 1 ||
	    EC_KEY_set_group(ec, EC_KEY_get0_group(src)) != 1 ||
	    EC_KEY_set_public_key(ec, EC_KEY_get0_public_key(src)) != 1 ||
	    EC_KEY_set_ex_data(ec, ec_idx, (void *)(uintptr_t)(pki + 1)) !=
	    1 || (k = EVP_PKEY_new()) == NULL) {
		EC_KEY_free(ec);
		return NULL;
	}
	if (EVP_PKEY_assign_EC_KEY(k, ec) != 1) {
		EC_KEY_free(ec);
		EVP_PKEY_free(k);
		return NULL;
	}
	return k;
}

/*
 * A key object for the certificate x, the pki'th of the configuration,
 * whose private operations go to the key process.  NULL on failure
 * (OpenSSL's error queue says why) or for a key type we cannot proxy.
 */
EVP_PKEY *
keyproxy_key(X509 *x, uint32_t pki)
{
	EVP_PKEY	*pub, *k = NULL;

	if (methods_init() == -1 || (pub = X509_get0_pubkey(x)) == NULL)
		return NULL;
	switch (EVP_PKEY_base_id(pub)) {
	case EVP_PKEY_RSA:
		k = key_rsa(pub, pki);
		break;
	case EVP_PKEY_EC:
		k = key_ec(pub, pki);
		break;
	default:
		log_warnx("tls: pki %u: only RSA and ECDSA certificates are "
		    "supported", pki);
	}
	return k;
}
