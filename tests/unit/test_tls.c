/*
 * test_tls.c -- the worker's TLS contexts: built from in-memory PEM
 * certificates, SNI picks the right certificate, the protocol floor
 * holds, and the SSL objects work inside libevent's OpenSSL
 * bufferevents (implicit TLS and the STARTTLS filter).  The private
 * keys are not the worker's: each signature goes to a key server that
 * a thread of this test runs on a socketpair, with the key process's
 * own check and signing code (keys/request.c, keys/sign.c).
 *
 * Keys and certificates are made here, fresh for each run.
 */

#include <sys/socket.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "config.h"
#include "imsg.h"
#include "log.h"
#include "proto.h"
#include "sign.h"
#include "tls.h"

struct identity {
	EVP_PKEY	*key;
	X509		*cert;
};

static struct identity		 id_a, id_b, id_ca, id_rsa;
static struct portcullis_conf	*conf;
static struct listener		*listener;

/* The test's key process: the keys by pki index, a thread, a channel. */
#define KS_KEYS		8
static EVP_PKEY			*ks_keys[KS_KEYS];
static int			 ks_nkeys;
static int			 ks_fd[2] = { -1, -1 };
static pthread_t		 ks_thread;
static struct event_base	*ks_base;
static unsigned int		 ks_signed, ks_refused;	/* answers */

static void
ks_answer(struct imsgbuf *ib, struct imsg *imsg)
{
	struct keys_sign	 req;
	struct keys_signed	 r;
	struct keys_key_shape	 shape;
	struct ibuf		 in;
	struct iovec		 iov[2];
	uint8_t			 out[KEYS_OUTPUT_MAX];
	size_t			 outlen = sizeof(out);
	char			 err[160];

	memset(&r, 0, sizeof(r));
	r.status = KEYS_REFUSED;
	if (imsg_get_ibuf(imsg, &in) == 0 && ibuf_get(&in, &req,
	    sizeof(req)) == 0) {
		r.req_id = req.req_id;
		if (req.pki < (uint32_t)ks_nkeys &&
		    keys_key_shape_of(ks_keys[req.pki], &shape) == 0 &&
		    keys_request_check(&req, ibuf_data(&in), ibuf_size(&in),
		    &shape, err, sizeof(err)) == 0 &&
		    keys_sign_op(ks_keys[req.pki], &req, ibuf_data(&in), out,
		    &outlen) == 0) {
			r.status = KEYS_OK;
			r.len = (uint32_t)outlen;
		}
	}
	if (r.status == KEYS_OK)
		ks_signed++;
	else
		ks_refused++;
	iov[0].iov_base = &r;
	iov[0].iov_len = sizeof(r);
	iov[1].iov_base = out;
	iov[1].iov_len = r.len;
	imsg_composev(ib, IMSG_KEYS_SIGNED, 0, 0, -1, iov, r.len > 0 ? 2 : 1);
	(void)imsgbuf_flush(ib);
}

static void *
ks_main(void *arg)
{
	struct imsgbuf	 ib;
	struct imsg	 imsg;
	int		 fd = *(int *)arg;

	if (imsgbuf_init(&ib, fd) == -1)
		return NULL;
	while (imsgbuf_read(&ib) == 1)
		while (imsg_get(&ib, &imsg) > 0) {
			ks_answer(&ib, &imsg);
			imsg_free(&imsg);
		}
	imsgbuf_clear(&ib);
	return NULL;
}

static void
ks_start(void)
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, ks_fd), 0);
	if (ks_base == NULL)
		cr_assert_not_null(ks_base = event_base_new());
	keyproxy_channel(ks_base, ks_fd[0], 0);
	cr_assert_eq(pthread_create(&ks_thread, NULL, ks_main, &ks_fd[1]),
	    0);
}

static void
ks_stop(void)
{
	/* End of file for the thread; keyproxy keeps its closed end. */
	if (ks_fd[0] != -1)
		shutdown(ks_fd[0], SHUT_RDWR);
	pthread_join(ks_thread, NULL);
	close(ks_fd[1]);
	for (int i = 0; i < ks_nkeys; i++)
		EVP_PKEY_free(ks_keys[i]);
	ks_nkeys = 0;
}

static void
identity_make_type(struct identity *id, const char *cn, int rsa)
{
	static long	 serial = 1;
	X509_NAME	*name;

	id->key = rsa ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048) :
	    EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	cr_assert_not_null(id->key);
	cr_assert_not_null(id->cert = X509_new());
	X509_set_version(id->cert, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(id->cert), serial++);
	X509_gmtime_adj(X509_getm_notBefore(id->cert), -3600);
	X509_gmtime_adj(X509_getm_notAfter(id->cert), 86400);
	name = X509_get_subject_name(id->cert);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(id->cert, name);
	X509_set_pubkey(id->cert, id->key);
	cr_assert(X509_sign(id->cert, id->key, EVP_sha256()) > 0);
}

static void
identity_make(struct identity *id, const char *cn)
{
	identity_make_type(id, cn, 0);
}

static void
identity_free(struct identity *id)
{
	EVP_PKEY_free(id->key);
	X509_free(id->cert);
	id->key = NULL;
	id->cert = NULL;
}

/* As config_imsg.c delivers it: len + 1 bytes, NUL-terminated. */
static char *
bio_to_pem(BIO *bio, size_t *len)
{
	BUF_MEM	*mem;
	char	*s;

	BIO_get_mem_ptr(bio, &mem);
	cr_assert_not_null(s = malloc(mem->length + 1));
	memcpy(s, mem->data, mem->length);
	s[mem->length] = '\0';
	*len = mem->length;
	return s;
}

/* A pki whose cert file holds cert (and chain, if any) and key. */
static struct pki *
pki_add(const char *name, const struct identity *cert,
    const struct identity *chain, const struct identity *key)
{
	struct pki	*p;
	BIO		*bio;

	cr_assert_not_null(p = calloc(1, sizeof(*p)));
	strlcpy(p->name, name, sizeof(p->name));
	cr_assert_not_null(bio = BIO_new(BIO_s_mem()));
	cr_assert(PEM_write_bio_X509(bio, cert->cert));
	if (chain != NULL)
		cr_assert(PEM_write_bio_X509(bio, chain->cert));
	p->cert_pem = bio_to_pem(bio, &p->cert_len);
	BIO_free(bio);
	cr_assert_not_null(bio = BIO_new(BIO_s_mem()));
	cr_assert(PEM_write_bio_PrivateKey(bio, key->key, NULL, NULL, 0,
	    NULL, NULL));
	p->key_pem = bio_to_pem(bio, &p->key_len);
	BIO_free(bio);
	TAILQ_INSERT_TAIL(&conf->pkis, p, entry);
	/* The worker gets no key: the test's key server holds it. */
	cr_assert_lt(ks_nkeys, KS_KEYS);
	EVP_PKEY_up_ref(key->key);
	ks_keys[ks_nkeys++] = key->key;
	return p;
}

static void
setup(void)
{
	log_init(1, LOG_MAIL);
	/* As in the daemons: a write to a closed socket is EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	identity_make(&id_a, "a.example");
	identity_make(&id_b, "b.example");
	identity_make(&id_ca, "ca.example");
	cr_assert_not_null(conf = config_new_empty());
	cr_assert_not_null(listener = calloc(1, sizeof(*listener)));
	strlcpy(listener->name, "submission", sizeof(listener->name));
	strlcpy(listener->pki, "a.example", sizeof(listener->pki));
	listener->flags = LISTEN_STARTTLS;
	listener->fd = -1;
	TAILQ_INSERT_TAIL(&conf->listeners, listener, entry);
	ks_start();
}

/* A standard pair: a.example (with a chain certificate), b.example. */
static void
setup_two(void)
{
	setup();
	pki_add("a.example", &id_a, &id_ca, &id_a);
	pki_add("b.example", &id_b, NULL, &id_b);
}

static void
teardown(void)
{
	struct pki	*p;

	tls_cleanup();
	/* Whatever tls_init() left: nothing, if it did its job. */
	TAILQ_FOREACH(p, &conf->pkis, entry) {
		free(p->cert_pem);
		free(p->key_pem);
		p->cert_pem = p->key_pem = NULL;
	}
	config_free(conf);
	conf = NULL;
	ks_stop();
	identity_free(&id_rsa);
	identity_free(&id_a);
	identity_free(&id_b);
	identity_free(&id_ca);
}

/* A client context; version 0 leaves a bound at OpenSSL's default. */
static SSL *
client_new(const char *sni, int min, int max)
{
	SSL_CTX	*ctx;
	SSL	*ssl;

	cr_assert_not_null(ctx = SSL_CTX_new(TLS_client_method()));
	if (min != 0)
		cr_assert(SSL_CTX_set_min_proto_version(ctx, min));
	if (max != 0)
		cr_assert(SSL_CTX_set_max_proto_version(ctx, max));
	/* Let an old client really offer TLS 1.1, to be refused. */
	if (max != 0 && max < TLS1_2_VERSION)
		cr_assert(SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0"));
	cr_assert_not_null(ssl = SSL_new(ctx));
	SSL_CTX_free(ctx);
	if (sni != NULL)
		cr_assert(SSL_set_tlsext_host_name(ssl, sni));
	SSL_set_connect_state(ssl);
	return ssl;
}

struct pair {
	SSL	*client;
	SSL	*server;
	int	 client_reason;	/* OpenSSL reason of a failure, or 0 */
	int	 server_reason;
};

static int
step(SSL *ssl, int *done, int *failed, int *reason)
{
	int	 r, e;

	if (*done || *failed)
		return 0;
	if ((r = SSL_do_handshake(ssl)) == 1) {
		*done = 1;
		return 1;
	}
	e = SSL_get_error(ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	*failed = 1;
	*reason = ERR_GET_REASON(ERR_peek_error());
	ERR_clear_error();
	return 1;
}

/* Handshake a client and a server over a BIO pair; 0 if both finish. */
static int
handshake(struct pair *p, const char *sni, int min, int max)
{
	BIO	*bc, *bs;
	int	 cdone = 0, sdone = 0, cfail = 0, sfail = 0;

	memset(p, 0, sizeof(*p));
	p->client = client_new(sni, min, max);
	cr_assert_not_null(p->server = tls_session_new(listener));
	cr_assert(BIO_new_bio_pair(&bc, 0, &bs, 0));
	SSL_set_bio(p->client, bc, bc);
	SSL_set_bio(p->server, bs, bs);
	for (int i = 0; i < 64; i++) {
		step(p->client, &cdone, &cfail, &p->client_reason);
		step(p->server, &sdone, &sfail, &p->server_reason);
		if ((cdone && sdone) || (cfail && sfail))
			break;
	}
	return cdone && sdone ? 0 : -1;
}

static void
pair_free(struct pair *p)
{
	SSL_free(p->client);
	SSL_free(p->server);
}

static void
peer_cn(SSL *client, char *buf, size_t len)
{
	X509	*x;

	cr_assert_not_null(x = SSL_get1_peer_certificate(client));
	cr_assert(X509_NAME_get_text_by_NID(X509_get_subject_name(x),
	    NID_commonName, buf, (int)len) > 0);
	X509_free(x);
}

TestSuite(tls, .init = setup_two, .fini = teardown);

Test(tls, init_wipes_the_keys)
{
	struct pki	*p;

	cr_assert_eq(tls_init(conf), 0);
	TAILQ_FOREACH(p, &conf->pkis, entry) {
		cr_assert_null(p->key_pem);
		cr_assert_eq(p->key_len, 0);
		cr_assert_null(p->cert_pem);
	}
	cr_assert(tls_available(listener));
}

Test(tls, default_pki_without_sni)
{
	struct pair	 p;
	char		 cn[256];

	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, 0, 0), 0);
	peer_cn(p.client, cn, sizeof(cn));
	cr_assert_str_eq(cn, "a.example");
	/* The chain certificate travels behind the leaf. */
	cr_assert_eq(sk_X509_num(SSL_get_peer_cert_chain(p.client)), 2);
	pair_free(&p);
}

Test(tls, sni_selects_the_pki)
{
	struct pair	 p;
	char		 cn[256];

	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, "b.example", 0, 0), 0);
	peer_cn(p.client, cn, sizeof(cn));
	cr_assert_str_eq(cn, "b.example");
	pair_free(&p);

	/* Host names are case-insensitive (RFC 4343). */
	cr_assert_eq(handshake(&p, "B.Example", 0, 0), 0);
	peer_cn(p.client, cn, sizeof(cn));
	cr_assert_str_eq(cn, "b.example");
	pair_free(&p);
}

Test(tls, unknown_sni_keeps_the_default)
{
	struct pair	 p;
	char		 cn[256];

	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, "c.example", 0, 0), 0);
	peer_cn(p.client, cn, sizeof(cn));
	cr_assert_str_eq(cn, "a.example");
	pair_free(&p);
}

Test(tls, tls11_refused_by_default)
{
	struct pair	 p;

	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, TLS1_1_VERSION, TLS1_1_VERSION), -1);
	cr_assert_eq(p.server_reason, SSL_R_UNSUPPORTED_PROTOCOL,
	    "server reason %d", p.server_reason);
	pair_free(&p);
}

Test(tls, tls12_accepted_by_default)
{
	struct pair	 p;
	char		 desc[128];

	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, 0, TLS1_2_VERSION), 0);
	tls_describe(p.server, desc, sizeof(desc));
	cr_assert(strncmp(desc, "TLSv1.2 ECDHE-ECDSA-", 20) == 0, "%s", desc);
	pair_free(&p);
}

Test(tls, tls12_refused_when_min_is_13)
{
	struct pair	 p;
	char		 desc[128];

	conf->tls_min_version = TLS1_3_VERSION;
	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, 0, TLS1_2_VERSION), -1);
	cr_assert_eq(p.server_reason, SSL_R_UNSUPPORTED_PROTOCOL,
	    "server reason %d", p.server_reason);
	pair_free(&p);

	cr_assert_eq(handshake(&p, "b.example", 0, 0), 0);
	tls_describe(p.server, desc, sizeof(desc));
	cr_assert(strncmp(desc, "TLSv1.3 TLS_", 12) == 0, "%s", desc);
	pair_free(&p);
}

Test(tls, configured_ciphers)
{
	struct pair	 p;
	char		 desc[128];

	strlcpy(conf->tls_ciphers, "ECDHE-ECDSA-CHACHA20-POLY1305",
	    sizeof(conf->tls_ciphers));
	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, 0, TLS1_2_VERSION), 0);
	tls_describe(p.server, desc, sizeof(desc));
	cr_assert_str_eq(desc, "TLSv1.2 ECDHE-ECDSA-CHACHA20-POLY1305");
	pair_free(&p);
}

Test(tls, bad_cipher_list_fails)
{
	struct pki	*p;

	strlcpy(conf->tls_ciphers, "NO-SUCH-CIPHER", sizeof(conf->tls_ciphers));
	cr_assert_eq(tls_init(conf), -1);
	TAILQ_FOREACH(p, &conf->pkis, entry)
		cr_assert_null(p->key_pem);
	cr_assert_not(tls_available(listener));
}

Test(tls, no_resumption)
{
	struct pair	 p;
	char		 c;

	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		tls_cleanup();
		/* tls_init() took the keys: give them back for this round. */
		if (v != TLS1_2_VERSION) {
			teardown();
			setup_two();
		}
		cr_assert_eq(tls_init(conf), 0);
		cr_assert_eq(handshake(&p, NULL, v, v), 0);
		/* Let the client read whatever followed the handshake. */
		cr_assert_eq(SSL_write(p.server, "x", 1), 1);
		cr_assert_eq(SSL_read(p.client, &c, 1), 1);
		cr_assert_not(SSL_SESSION_is_resumable(
		    SSL_get_session(p.client)), "version %x", v);
		pair_free(&p);
	}
}

Test(tls, listener_without_tls)
{
	struct listener	 plain;

	memset(&plain, 0, sizeof(plain));
	cr_assert_eq(tls_init(conf), 0);
	cr_assert_not(tls_available(&plain));
	cr_assert_null(tls_session_new(&plain));
	strlcpy(plain.pki, "nowhere.example", sizeof(plain.pki));
	cr_assert_not(tls_available(&plain));
}

Test(tls, describe_without_handshake)
{
	char	 desc[16];

	tls_describe(NULL, desc, sizeof(desc));
	cr_assert_str_eq(desc, "none");
}

/* Separate suite: these build their own pkis. */
TestSuite(tls_bad, .init = setup, .fini = teardown);

/*
 * The worker cannot tell a key that does not match (master and the key
 * process check it); a signature by the wrong key fails the handshake
 * on the client's side.
 */
Test(tls_bad, mismatched_key_fails_the_handshake)
{
	struct pair	 p;

	pki_add("a.example", &id_a, NULL, &id_b);
	cr_assert_eq(tls_init(conf), 0);
	cr_assert_eq(handshake(&p, NULL, TLS1_3_VERSION, TLS1_3_VERSION), -1);
	pair_free(&p);
}

Test(tls_bad, garbage_certificate_fails)
{
	struct pki	*p;

	p = pki_add("a.example", &id_a, NULL, &id_a);
	free(p->cert_pem);
	cr_assert_not_null(p->cert_pem = strdup("-----BEGIN CERTIFICATE-----\n"
	    "bm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"));
	p->cert_len = strlen(p->cert_pem);
	cr_assert_eq(tls_init(conf), -1);
	cr_assert_null(p->key_pem);
}

Test(tls_bad, listener_pki_missing)
{
	pki_add("b.example", &id_b, NULL, &id_b);
	/* The listener wants a.example, which does not exist. */
	cr_assert_eq(tls_init(conf), -1);
}

/* The key process gone: the handshake fails, STARTTLS would say 454. */
Test(tls_bad, no_key_process_fails_the_handshake)
{
	struct pair	 p;
	int		 sp[2];

	pki_add("a.example", &id_a, NULL, &id_a);
	cr_assert_eq(tls_init(conf), 0);
	cr_assert(keyproxy_available());
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	close(sp[1]);
	keyproxy_channel(ks_base, sp[0], 0);	/* closes ks_fd[0] */
	ks_fd[0] = -1;
	cr_assert_eq(handshake(&p, NULL, 0, 0), -1);
	cr_assert_not(keyproxy_available());
	pair_free(&p);
}

/* RSA: PKCS #1 v1.5 under TLS 1.2, PSS under TLS 1.3. */
Test(tls_bad, rsa_signs_through_the_key_process)
{
	struct pair	 p;

	identity_make_type(&id_rsa, "rsa.example", 1);
	pki_add("a.example", &id_rsa, NULL, &id_rsa);
	cr_assert_eq(tls_init(conf), 0);
	for (int v = TLS1_2_VERSION; v <= TLS1_3_VERSION; v++) {
		ks_signed = 0;
		cr_assert_eq(handshake(&p, NULL, v, v), 0, "version %x", v);
		cr_assert_eq(ks_signed, 1);
		pair_free(&p);
	}
}

/*
 * With libevent: the session engine's two ways to use an SSL.  The
 * client speaks first (like EHLO), the server answers, then the client
 * drops the connection without close_notify.
 */
struct ev_side {
	struct bufferevent	*bev;
	int			 connected;
	int			 eof;
	int			 error;
	char			 line[64];
};

static struct ev_side	 ev_server, ev_client;
static struct event_base *ev_base;
static int		 ev_client_fd;

static void
server_read(struct bufferevent *bev, void *arg)
{
	char	*line;

	(void)arg;
	if ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	    EVBUFFER_EOL_CRLF_STRICT)) == NULL)
		return;
	strlcpy(ev_server.line, line, sizeof(ev_server.line));
	free(line);
	bufferevent_write(bev, "250 hello\r\n", 11);
}

static void
server_event(struct bufferevent *bev, short events, void *arg)
{
	(void)arg;
	if (events & BEV_EVENT_CONNECTED)
		ev_server.connected = 1;
	if (events & BEV_EVENT_EOF)
		ev_server.eof = 1;
	if (events & BEV_EVENT_ERROR) {
		ev_server.error = 1;
		tls_log_bufferevent_error(42, "TLS", bev);
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		event_base_loopbreak(ev_base);
}

static void
client_read(struct bufferevent *bev, void *arg)
{
	char	*line;

	(void)arg;
	if ((line = evbuffer_readln(bufferevent_get_input(bev), NULL,
	    EVBUFFER_EOL_CRLF_STRICT)) == NULL)
		return;
	strlcpy(ev_client.line, line, sizeof(ev_client.line));
	free(line);
	/* A rude client: gone without close_notify. */
	bufferevent_disable(bev, EV_READ | EV_WRITE);
	shutdown(ev_client_fd, SHUT_RDWR);
}

static void
client_event(struct bufferevent *bev, short events, void *arg)
{
	(void)arg;
	if (events & BEV_EVENT_CONNECTED) {
		ev_client.connected = 1;
		bufferevent_write(bev, "EHLO client\r\n", 13);
	}
	if (events & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
		ev_client.error = !!(events & BEV_EVENT_ERROR);
		bufferevent_disable(bev, EV_READ | EV_WRITE);
	}
}

static void
ev_run(int filter, const char *sni, int client_max)
{
	struct bufferevent	*plain;
	struct timeval		 tv = { 5, 0 };
	SSL			*ssl;
	int			 fds[2];

	memset(&ev_server, 0, sizeof(ev_server));
	memset(&ev_client, 0, sizeof(ev_client));
	cr_assert_not_null(ev_base = event_base_new());
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	evutil_make_socket_nonblocking(fds[0]);
	evutil_make_socket_nonblocking(fds[1]);
	ev_client_fd = fds[1];

	cr_assert_not_null(ssl = tls_session_new(listener));
	if (filter) {
		/* STARTTLS: TLS over the session's plaintext bufferevent. */
		cr_assert_not_null(plain = bufferevent_socket_new(ev_base,
		    fds[0], BEV_OPT_CLOSE_ON_FREE));
		ev_server.bev = bufferevent_openssl_filter_new(ev_base, plain,
		    ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
		/*
		 * Here libevent sees the end of the plaintext stream
		 * before OpenSSL does, and calls it an error unless told
		 * that a close without close_notify is an end of stream.
		 */
		cr_assert_not_null(ev_server.bev);
		bufferevent_openssl_set_allow_dirty_shutdown(ev_server.bev, 1);
	} else
		ev_server.bev = bufferevent_openssl_socket_new(ev_base, fds[0],
		    ssl, BUFFEREVENT_SSL_ACCEPTING, BEV_OPT_CLOSE_ON_FREE);
	cr_assert_not_null(ev_server.bev);
	bufferevent_setcb(ev_server.bev, server_read, NULL, server_event,
	    NULL);
	bufferevent_enable(ev_server.bev, EV_READ | EV_WRITE);

	ev_client.bev = bufferevent_openssl_socket_new(ev_base, fds[1],
	    client_new(sni, 0, client_max), BUFFEREVENT_SSL_CONNECTING,
	    BEV_OPT_CLOSE_ON_FREE);
	cr_assert_not_null(ev_client.bev);
	bufferevent_setcb(ev_client.bev, client_read, NULL, client_event,
	    NULL);
	bufferevent_enable(ev_client.bev, EV_READ | EV_WRITE);

	event_base_loopexit(ev_base, &tv);
	event_base_dispatch(ev_base);
}

static void
ev_done(void)
{
	bufferevent_free(ev_server.bev);
	bufferevent_free(ev_client.bev);
	event_base_free(ev_base);
	ev_base = NULL;
}

Test(tls, bufferevent_implicit_tls)
{
	char	 desc[128];

	cr_assert_eq(tls_init(conf), 0);
	ev_run(0, "b.example", 0);
	cr_assert(ev_server.connected);
	cr_assert_str_eq(ev_server.line, "EHLO client");
	cr_assert_str_eq(ev_client.line, "250 hello");
	tls_describe(bufferevent_openssl_get_ssl(ev_server.bev), desc,
	    sizeof(desc));
	cr_assert(strncmp(desc, "TLSv1.3 TLS_", 12) == 0, "%s", desc);
	/* No close_notify is an end of stream, not an error. */
	cr_assert(ev_server.eof);
	cr_assert_not(ev_server.error);
	ev_done();
}

Test(tls, bufferevent_starttls_filter)
{
	cr_assert_eq(tls_init(conf), 0);
	ev_run(1, NULL, 0);
	cr_assert(ev_server.connected);
	cr_assert_str_eq(ev_server.line, "EHLO client");
	cr_assert_str_eq(ev_client.line, "250 hello");
	cr_assert(ev_server.eof);
	cr_assert_not(ev_server.error);
	ev_done();
}

/* A refused handshake is logged with OpenSSL's reason, in one line. */
/*
 * Lines of our own in what stderr got: under ASan, a handshake run as
 * an OpenSSL async job (swapcontext) makes the sanitizer warn, in
 * three lines of its own, that it cannot follow the stack switch.
 */
static int
log_lines(const char *log)
{
	static const char *const asan[] = {
		"==", "False positive error reports may follow",
		"For details see https://github.com/google/sanitizers",
	};
	const char	*p, *nl;
	size_t		 i;
	int		 n = 0, theirs;

	for (p = log; *p != '\0'; p = nl + 1) {
		if ((nl = strchr(p, '\n')) == NULL)
			nl = p + strlen(p) - 1;
		theirs = 0;
		for (i = 0; i < sizeof(asan) / sizeof(asan[0]); i++)
			if (strncmp(p, asan[i], strlen(asan[i])) == 0)
				theirs = 1;
		n += !theirs;
	}
	return n;
}

Test(tls, bufferevent_refused_handshake_is_explained)
{
	char	 log[1024];
	FILE	*f;
	size_t	 n;
	int	 saved;

	conf->tls_min_version = TLS1_3_VERSION;
	cr_assert_eq(tls_init(conf), 0);
	cr_assert_not_null(f = tmpfile());
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(f), STDERR_FILENO);
	ev_run(0, NULL, TLS1_2_VERSION);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	fclose(f);
	cr_assert_not(ev_server.connected);
	cr_assert(ev_server.error);
	cr_assert_not_null(strstr(log, "session 000000000000002a: TLS: "
	    "unsupported protocol"), "log: %s", log);
	cr_assert_eq(log_lines(log), 1, "one line: %s", log);
	/* libevent's SSL_get_error() values are not OpenSSL errors. */
	cr_assert_null(strstr(log, "lib(0)"), "log: %s", log);
	ev_done();
}
