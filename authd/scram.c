/*
 * scram.c -- SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677,
 * RFC 9266, RFC 5929) on authd's side: the keys stay here, the worker
 * only frames the exchange.
 *
 *   worker                       authd
 *   SCRAM_START (client-first,   parse, check the GS2 flags against
 *     its TLS binding data)  ->  what the worker offered; look the
 *                                user's salt and keys up on the pool
 *                            <-  SCRAM_CHALLENGE (server-first)
 *   SCRAM_FINAL (client-final) -> check nonce, c= and the proof
 *                            <-  SCRAM_OK (server-final) or a fail
 *                                AUTH_VERDICT
 *
 * One checker answers a SCRAM attempt: the first of the chain that
 * verifies it (lmdb).  Unlike PLAIN, the exchange cannot be offered to
 * a second checker once the salt is out.  An unknown user, or one
 * without SCRAM keys, gets a salt derived from the store's secret and
 * the name (stable, so that asking twice tells nothing), the
 * configured iteration count (scram-iterations, what authctl gives new
 * keys), and random keys no proof matches.
 *
 * Channel binding (RFC 5802 6): with -PLUS the client must say 'p'
 * and name a type this session has; with plain SCRAM, 'p' is refused,
 * and 'y' ("I could bind, you cannot") is refused when the worker
 * offered -PLUS, which is a downgrade.  c= must be the GS2 header the
 * client sent first, and for 'p' the worker's binding data after it,
 * octet for octet.
 *
 * Secrets: the keys and the AuthMessage are wiped with the job.
 */

#include <sys/types.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include "authd.h"
#include "base64.h"
#include "hashpool.h"
#include "log.h"
#include "scram.h"
#include "store.h"

#define SNONCE_RAW	18	/* 24 characters of base64, no padding */
#define SERVER_FIRST_MAX 512

struct scram_job {
	int			 waiting;	/* for the client-final */
	uint32_t		 fake_iter;	/* scram-iterations */
	char			 checker[CONF_NAME_MAX];
	struct store		*store;
	char			 cbflag;
	uint8_t			 gs2[SCRAM_MSG_MAX + SCRAM_CBDATA_MAX];
						/* header, then binding data */
	size_t			 gs2_len;	/* header + data */
	char			 bare[SCRAM_MSG_MAX];
	size_t			 bare_len;
	char			 cnonce[SCRAM_NONCE_MAX + 1];
	char			 first[SERVER_FIRST_MAX];
	size_t			 first_len;
	size_t			 nonce_len;	/* of r= in first */
	struct store_scram	 keys;
	int			 known;
	int			 locked;
	char			 canonical[CONF_AUTH_NAME_MAX];
};

static uint8_t		 proc_secret[STORE_SECRET_LEN];
static pthread_once_t	 proc_secret_once = PTHREAD_ONCE_INIT;

static void
proc_secret_make(void)
{
	if (getentropy(proc_secret, sizeof(proc_secret)) == -1)
		fatal("getentropy");
}

static void
job_free(void *arg)
{
	freezero(arg, sizeof(struct scram_job));
}

/*
 * The salt of a user without keys: HMAC(secret, "scram-salt" NUL
 * user), stable for the store (its secret), so that an unknown user
 * looks the same at every attempt.  A layout 1 store has no secret: a
 * per-process one then (stable until authd restarts).
 */
static void
fake_keys(struct scram_job *j, const char *user)
{
	uint8_t		 secret[STORE_SECRET_LEN], mac[32];
	unsigned char	 msg[sizeof("scram-salt") + CONF_AUTH_NAME_MAX];
	unsigned int	 n = sizeof(mac);
	char		 err[256];
	size_t		 ulen = strlen(user);

	if (j->store == NULL ||
	    store_secret(j->store, secret, err, sizeof(err)) == -1) {
		(void)pthread_once(&proc_secret_once, proc_secret_make);
		memcpy(secret, proc_secret, sizeof(secret));
	}
	memcpy(msg, "scram-salt", sizeof("scram-salt"));
	memcpy(msg + sizeof("scram-salt"), user, ulen);
	(void)HMAC(EVP_sha256(), secret, sizeof(secret), msg,
	    sizeof("scram-salt") + ulen, mac, &n);
	memset(&j->keys, 0, sizeof(j->keys));
	j->keys.saltlen = STORE_SCRAM_SALT_MIN;
	memcpy(j->keys.salt, mac, STORE_SCRAM_SALT_MIN);
	j->keys.iter = j->fake_iter;
	/* Keys nobody has: no proof can match them. */
	if (getentropy(j->keys.stored_key, sizeof(j->keys.stored_key)) == -1 ||
	    getentropy(j->keys.server_key, sizeof(j->keys.server_key)) == -1)
		fatal("getentropy");
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(mac, sizeof(mac));
}

/* On a pool thread: the user's keys, or fake ones. */
static void
lookup_work(void *arg)
{
	struct auth_ctx		*ctx = arg;
	struct scram_job	*j = ctx->job;
	struct store_user	 u;
	char			 err[256];
	size_t			 i;
	int			 rc = -1;

	if (j->store != NULL)
		rc = store_user_get(j->store, ctx->user, &u, err, sizeof(err));
	if (rc == 1 && u.scram.saltlen > 0) {
		j->keys = u.scram;
		j->known = 1;
		j->locked = u.locked;
		strlcpy(j->canonical, u.name, sizeof(j->canonical));
		for (i = 0; i < u.naddrs; i++)
			(void)auth_found_addr(&ctx->found, u.addrs[i]);
	} else {
		fake_keys(j, ctx->user);
		ctx->why = j->store == NULL ? "store not open" :
		    rc == 1 ? "no SCRAM keys" : rc == 0 ? "unknown user" :
		    "store error";
	}
	explicit_bzero(&u, sizeof(u));
}

/* Back on the loop: send server-first, wait for the client-final. */
static void
lookup_done(void *arg)
{
	struct auth_ctx		*ctx = arg;
	struct scram_job	*j = ctx->job;
	struct scram_step	 st;
	struct iovec		 iov[2];
	uint8_t			 raw[SNONCE_RAW];
	char			 snonce[32], salt[64];
	int			 n;

	if (ctx->wc == NULL) {
		chain_ctx_free(ctx);
		return;
	}
	if (getentropy(raw, sizeof(raw)) == -1)
		fatal("getentropy");
	(void)base64_encode(raw, sizeof(raw), snonce, sizeof(snonce));
	(void)base64_encode(j->keys.salt, j->keys.saltlen, salt, sizeof(salt));
	/* RFC 5802 7: r=c-nonce s-nonce, s=salt, i=iteration-count */
	n = snprintf(j->first, sizeof(j->first), "r=%s%s,s=%s,i=%u",
	    j->cnonce, snonce, salt, j->keys.iter);
	if (n < 0 || (size_t)n >= sizeof(j->first))
		fatalx("%s: server-first does not fit", __func__);
	j->first_len = (size_t)n;
	j->nonce_len = strlen(j->cnonce) + strlen(snonce);
	j->waiting = 1;
	memset(&st, 0, sizeof(st));
	st.req_id = ctx->req_id;
	st.msg_len = (uint32_t)j->first_len;
	iov[0].iov_base = &st;
	iov[0].iov_len = sizeof(st);
	iov[1].iov_base = j->first;
	iov[1].iov_len = j->first_len;
	if (imsgev_composev(&ctx->wc->iev, IMSG_SCRAM_CHALLENGE, 0, iov,
	    2) == -1)
		chain_decided(ctx, AUTH_TEMPFAIL, j->checker);
}

/*
 * RFC 5802 6: the GS2 flag against the mechanism and what was
 * offered; and the binding data this session has for the type named.
 * NULL if acceptable (j->gs2 then holds header and data), else why.
 */
static const char *
binding_check(struct auth_ctx *ctx, const struct scram_start *ss,
    const uint8_t *msg, const struct scram_client_first *f)
{
	struct scram_job	*j = ctx->job;
	const uint8_t		*data = NULL;
	size_t			 len = 0;

	memcpy(j->gs2, msg, f->gs2_len);
	j->gs2_len = f->gs2_len;
	j->cbflag = f->cbflag;
	if (ctx->mechanism == SASL_SCRAM_SHA256) {
		if (f->cbflag == SCRAM_CB_USED)
			return "channel binding without -PLUS";
		if (f->cbflag == SCRAM_CB_SERVER_NO &&
		    (ss->flags & SCRAM_START_TLS))
			return "downgrade: flag y though -PLUS was offered";
		return NULL;
	}
	if (f->cbflag != SCRAM_CB_USED)
		return "-PLUS without channel binding";
	if (strcmp(f->cbname, "tls-exporter") == 0 && ss->exporter_len > 0) {
		data = ss->exporter;
		len = ss->exporter_len;
	} else if (strcmp(f->cbname, "tls-server-end-point") == 0 &&
	    ss->endpoint_len > 0) {
		data = ss->endpoint;
		len = ss->endpoint_len;
	} else if (strcmp(f->cbname, "tls-unique") == 0 &&
	    ss->unique_len > 0) {
		data = ss->unique;
		len = ss->unique_len;
	} else
		return "unsupported channel binding type";
	memcpy(j->gs2 + j->gs2_len, data, len);
	j->gs2_len += len;
	return NULL;
}

/*
 * The penalties have spoken (penalty.c): a locked account is refused
 * before its salt goes out, as a PLAIN login is before its password is
 * checked; else the user's keys are looked up.
 */
static void
scram_go(struct auth_ctx *ctx, const char *refused)
{
	if (chain_penalty_ended(ctx, refused))
		return;
	hashpool_submit(lookup_work, lookup_done, ctx);
}

/* The first checker of the chain that verifies this mechanism. */
static const struct checker *
scram_checker(uint32_t mech)
{
	const struct checker	*c;
	int			 i, n;

	c = chain_checkers(&n);
	for (i = 0; i < n; i++)
		if (c[i].mechanisms & mech)
			return &c[i];
	return NULL;
}

static int
start_decode(struct imsg *imsg, struct scram_start *ss, const uint8_t **msg)
{
	struct ibuf	 ibuf;

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, ss, sizeof(*ss)) == -1 ||
	    ss->msg_len != ibuf_size(&ibuf) || ss->msg_len > SCRAM_MSG_MAX ||
	    (ss->mechanism != SASL_SCRAM_SHA256 &&
	    ss->mechanism != SASL_SCRAM_SHA256_PLUS) ||
	    (ss->exporter_len != 0 && ss->exporter_len != 32) ||
	    ss->endpoint_len > sizeof(ss->endpoint) ||
	    ss->unique_len > sizeof(ss->unique) ||
	    (ss->flags & ~SCRAM_START_TLS) != 0)
		return -1;
	*msg = ibuf_data(&ibuf);
	ss->client[sizeof(ss->client) - 1] = '\0';
	ss->listener[sizeof(ss->listener) - 1] = '\0';
	return 0;
}

/*
 * IMSG_SCRAM_START.  -1 (the channel is closed) for a frame no honest
 * worker sends; a client's mistake is a fail verdict.
 */
int
scram_start(struct worker_channel *wc, struct imsg *imsg)
{
	struct scram_start		 ss;
	struct scram_client_first	 f;
	struct auth_ctx			*ctx;
	struct scram_job		*j;
	const struct checker		*c;
	const uint8_t			*msg;
	const char			*why;

	if (start_decode(imsg, &ss, &msg) == -1 ||
	    scram_client_first_parse(msg, ss.msg_len, &f) == -1)
		return -1;
	if ((ctx = calloc(1, sizeof(*ctx))) == NULL ||
	    (j = calloc(1, sizeof(*j))) == NULL)
		fatal("calloc");
	ctx->wc = wc;
	ctx->req_id = ss.req_id;
	ctx->session_id = ss.session_id;
	ctx->mechanism = ss.mechanism;
	ctx->job = j;
	ctx->job_free = job_free;
	strlcpy(ctx->client, ss.client, sizeof(ctx->client));
	strlcpy(ctx->listener, ss.listener, sizeof(ctx->listener));
	clock_gettime(CLOCK_MONOTONIC, &ctx->started);
	TAILQ_INSERT_TAIL(&wc->pending, ctx, entry);
	strlcpy(ctx->user, f.user, sizeof(ctx->user));
	memcpy(j->bare, f.bare, f.bare_len);
	j->bare_len = f.bare_len;
	memcpy(j->cnonce, f.nonce, f.nonce_len);

	if (store_name_normalize(ctx->user, ctx->user, sizeof(ctx->user)) ==
	    -1)
		why = "bad user name";
	else if (f.authzid[0] != '\0' && strcmp(f.authzid, f.user) != 0)
		why = "authzid differs";
	else
		why = binding_check(ctx, &ss, msg, &f);
	if (why != NULL) {
		ctx->why = why;
		chain_decided(ctx, AUTH_FAIL, NULL);
		return 0;
	}
	if ((c = scram_checker(ctx->mechanism)) == NULL) {
		ctx->why = "no checker verifies SCRAM";
		chain_decided(ctx, AUTH_FAIL, NULL);
		return 0;
	}
	strlcpy(j->checker, c->conf->name, sizeof(j->checker));
	j->store = c->store;
	j->fake_iter = (uint32_t)c->pconf->scram_iterations;
	penalty_before(ctx, scram_go);
	return 0;
}

/*
 * RFC 5802 3: ClientSignature = HMAC(StoredKey, AuthMessage), ClientKey
 * = ClientProof XOR ClientSignature, and H(ClientKey) must be
 * StoredKey.  ServerSignature = HMAC(ServerKey, AuthMessage) into sig.
 * 1 the proof is good, 0 not.
 */
int
scram_proof_check(const struct store_scram *k, const uint8_t *authmsg,
    size_t len, const uint8_t *proof, uint8_t *sig)
{
	uint8_t		 csig[32], ckey[32], h[32];
	unsigned int	 n = 32;
	int		 i, ok;

	if (HMAC(EVP_sha256(), k->stored_key, sizeof(k->stored_key),
	    authmsg, len, csig, &n) == NULL ||
	    HMAC(EVP_sha256(), k->server_key, sizeof(k->server_key),
	    authmsg, len, sig, &n) == NULL)
		return 0;
	for (i = 0; i < 32; i++)
		ckey[i] = proof[i] ^ csig[i];
	(void)SHA256(ckey, sizeof(ckey), h);
	ok = CRYPTO_memcmp(h, k->stored_key, sizeof(h)) == 0;
	explicit_bzero(csig, sizeof(csig));
	explicit_bzero(ckey, sizeof(ckey));
	explicit_bzero(h, sizeof(h));
	return ok;
}

/* c= decodes to the GS2 header and, for 'p', the binding data. */
static int
cbind_ok(const struct scram_job *j, const struct scram_client_final *f)
{
	uint8_t		 buf[SCRAM_MSG_MAX + SCRAM_CBDATA_MAX];
	size_t		 n;

	if (base64_decode(f->cbind, f->cbind_len, 0, buf, sizeof(buf),
	    &n) == -1)
		return 0;
	return n == j->gs2_len && CRYPTO_memcmp(buf, j->gs2, n) == 0;
}

static void
send_ok(struct auth_ctx *ctx, const uint8_t *sig)
{
	/* chain_verdict() sends it with the ok, as IMSG_SCRAM_OK. */
	memcpy(ctx->server_final, "v=", 2);
	(void)base64_encode(sig, 32, ctx->server_final + 2,
	    sizeof(ctx->server_final) - 2);
	chain_decided(ctx, AUTH_OK, ((struct scram_job *)ctx->job)->checker);
}

static const char *
final_check(struct auth_ctx *ctx, const uint8_t *msg, size_t len,
    uint8_t *sig)
{
	struct scram_job		*j = ctx->job;
	struct scram_client_final	 f;
	uint8_t				 am[3 * SCRAM_MSG_MAX];
	size_t				 n;
	int				 ok;

	if (scram_client_final_parse(msg, len, &f) == -1)
		return "malformed client-final";
	/* r= must be exactly what server-first said: no replays. */
	if (f.nonce_len != j->nonce_len ||
	    memcmp(f.nonce, j->first + 2, j->nonce_len) != 0)
		return "nonce mismatch";
	if (!cbind_ok(j, &f))
		return "channel binding mismatch";
	/* AuthMessage = client-first-bare "," server-first ","
	   client-final-without-proof */
	n = 0;
	memcpy(am, j->bare, j->bare_len);
	n += j->bare_len;
	am[n++] = ',';
	memcpy(am + n, j->first, j->first_len);
	n += j->first_len;
	am[n++] = ',';
	memcpy(am + n, msg, f.without_proof_len);
	n += f.without_proof_len;
	ok = scram_proof_check(&j->keys, am, n, f.proof, sig);
	explicit_bzero(am, n);
	explicit_bzero(&f, sizeof(f));
	if (!ok)
		return ctx->why != NULL ? ctx->why : "wrong password";
	if (!j->known)
		return ctx->why;
	if (j->locked)
		return "locked";
	return NULL;
}

/* IMSG_SCRAM_FINAL: -1 for a step no honest worker sends. */
int
scram_final(struct worker_channel *wc, struct imsg *imsg)
{
	struct scram_step	 st;
	struct auth_ctx		*ctx;
	struct scram_job	*j;
	struct ibuf		 ibuf;
	uint8_t			 sig[32];
	const char		*why;

	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &st, sizeof(st)) == -1 ||
	    st.msg_len != ibuf_size(&ibuf) || st.msg_len > SCRAM_MSG_MAX)
		return -1;
	TAILQ_FOREACH(ctx, &wc->pending, entry)
		if (ctx->req_id == st.req_id && ctx->job_free == job_free)
			break;
	if (ctx == NULL || !((struct scram_job *)ctx->job)->waiting)
		return -1;
	j = ctx->job;
	j->waiting = 0;
	why = final_check(ctx, ibuf_data(&ibuf), st.msg_len, sig);
	if (why != NULL) {
		ctx->why = why;
		explicit_bzero(sig, sizeof(sig));
		chain_decided(ctx, AUTH_FAIL, j->checker);
		return 0;
	}
	ctx->why = NULL;
	strlcpy(ctx->canonical, j->canonical, sizeof(ctx->canonical));
	send_ok(ctx, sig);
	explicit_bzero(sig, sizeof(sig));
	return 0;
}

/*
 * The session left (AUTH_CANCEL) or its channel closed: an exchange
 * that waits for the client is freed now; one on the pool when it
 * comes back (lookup_done), or from the penalties (scram_go).  1 if
 * ctx was a SCRAM exchange.
 */
int
scram_abandon(struct auth_ctx *ctx)
{
	if (ctx->job_free != job_free)
		return 0;
	if (((struct scram_job *)ctx->job)->waiting)
		chain_ctx_free(ctx);
	return 1;
}
