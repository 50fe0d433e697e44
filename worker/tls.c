/*
 * tls.c -- the worker's TLS server side.
 *
 * tls_init() turns the certificates that master read for each pki
 * into one SSL_CTX, once, before the worker chroots and drops its
 * privileges.  A worker never holds a private key: each context's key
 * object does its private operations on the key process
 * (keyproxy.c, keys/keys.c).  Sessions get an SSL
 * from tls_session_new(); the session engine wraps it in a libevent
 * OpenSSL bufferevent, on the socket for implicit TLS (RFC 8314) or as
 * a filter over the plaintext one after STARTTLS (RFC 3207).
 *
 * Every context is configured alike, so switching a session from one
 * to another on SNI (RFC 6066 section 3) changes only the certificate
 * and key it presents: the options, protocol floor and ciphers of an
 * SSL are those of the context it was created from.
 *
 * Choices, and why:
 * - Resumption by session tickets only (RFC 5077, RFC 8446 4.6.1),
 *   sealed with the keys master hands every worker and rotates
 *   (master/tickets.c), so that a ticket one worker issued resumes on
 *   any other; one ticket per handshake, for clients reconnect one
 *   after the other.  No server-side session cache: it would live in
 *   one worker and cost memory per session.  tls-tickets off turns
 *   resumption off altogether.
 * - TLS 1.2 at least (or 1.3, by configuration); the TLS 1.2 cipher
 *   list from the configuration, OpenSSL's default otherwise; TLS 1.3
 *   suites are OpenSSL's default (all of them are sound).  The
 *   server's order wins.  No renegotiation (a client-driven CPU cost
 *   and the source of old attacks).
 * - SSL_MODE_RELEASE_BUFFERS: an idle session (a client thinking
 *   between commands) holds no 34 KiB record buffers.
 * - A peer that closes the connection without close_notify is an end
 *   of stream, not an error (SSL_OP_IGNORE_UNEXPECTED_EOF): SMTP
 *   frames its own data (the final dot and the 250 that answers it),
 *   so a truncated stream cannot pass for a complete message, and
 *   most clients close that way after QUIT.  Without it, libevent
 *   reports every such close as BEV_EVENT_ERROR.
 * - No RSA key exchange (kRSA is removed from any cipher list): it
 *   has no forward secrecy, and it would make the key process an RSA
 *   decryption oracle for whoever takes a worker over.  Every suite
 *   left signs with the key (ECDHE, TLS 1.3).
 */

#include <ctype.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L && !defined(LIBRESSL_VERSION_NUMBER)
#include <openssl/async.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

#include "log.h"
#include "proto.h"
#include "tls.h"

#define TLS_ERRBUF	1024

static struct tls_ticket_keys	 ticket_keys;
static int			 tls_async_pool;	/* made, bounded */
#define TLS_ASYNC_JOBS		128	/* see struct tls_accept */
static int	tls_ticket_cb_set(SSL_CTX *);

struct tls_context {
	char	 name[CONF_HOST_MAX];	/* the pki's name, also its SNI name */
	SSL_CTX	*ctx;
};

static struct tls_context	*tls_contexts;
static size_t			 tls_ncontexts;

/* A passphrase callback that never asks: encrypted keys fail. */
static int
tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
	(void)buf; (void)size; (void)rwflag; (void)arg;
	return 0;
}

static void
tls_errbuf_cat(char *buf, size_t len, const char *s)
{
	if (buf[0] != '\0')
		(void)strlcat(buf, "; ", len);
	(void)strlcat(buf, s, len);
}

/* Append one OpenSSL error to a "; "-separated line. */
static void
tls_errbuf_add(char *buf, size_t len, unsigned long e, const char *data,
    int flags)
{
	char		 code[128];
	const char	*reason;

	if ((reason = ERR_reason_error_string(e)) == NULL) {
		ERR_error_string_n(e, code, sizeof(code));
		reason = code;
	}
	tls_errbuf_cat(buf, len, reason);
	if ((flags & ERR_TXT_STRING) && data != NULL && *data != '\0') {
		(void)strlcat(buf, " (", len);
		(void)strlcat(buf, data, len);
		(void)strlcat(buf, ")", len);
	}
}

/* Drain OpenSSL's error queue of this thread into buf. */
static void
tls_errbuf_drain(char *buf, size_t len)
{
	const char	*data;
	unsigned long	 e;
	int		 flags;

	for (;;) {
		data = NULL;
		flags = 0;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
		e = ERR_get_error_all(NULL, NULL, NULL, &data, &flags);
#else
		e = ERR_get_error_line_data(NULL, NULL, &data, &flags);
#endif
		if (e == 0)
			break;
		tls_errbuf_add(buf, len, e, data, flags);
	}
}

/* What reaches the log is printable, whatever a string held. */
static const char *
tls_errbuf_finish(char *buf)
{
	char	*s;

	if (buf[0] == '\0')
		return "no error reported by OpenSSL";
	for (s = buf; *s != '\0'; s++)
		if (!isprint((unsigned char)*s))
			*s = '?';
	return buf;
}

void
tls_log_error(uint64_t session_id, const char *what)
{
	char	 buf[TLS_ERRBUF] = "";

	tls_errbuf_drain(buf, sizeof(buf));
	log_warnx("session %016llx: %s: %s", (unsigned long long)session_id,
	    what, tls_errbuf_finish(buf));
}

/*
 * libevent takes OpenSSL's error queue for itself when a TLS
 * bufferevent fails, and hands the codes out one by one: a handshake
 * that failed inside a bufferevent is explained here, not by
 * tls_log_error().
 */
void
tls_log_bufferevent_error(uint64_t session_id, const char *what,
    struct bufferevent *bev)
{
	char		 buf[TLS_ERRBUF] = "";
	unsigned long	 e;

	if (bev != NULL)
		while ((e = bufferevent_get_openssl_error(bev)) != 0) {
			/*
			 * Beside the error codes, libevent 2.1 files the
			 * SSL_get_error() value itself (no library part):
			 * only an I/O error says something more.
			 */
			if (ERR_GET_LIB(e) == 0 && ERR_GET_REASON(e) < 16) {
				if (e == SSL_ERROR_SYSCALL)
					tls_errbuf_cat(buf, sizeof(buf),
					    "I/O error");
				continue;
			}
			tls_errbuf_add(buf, sizeof(buf), e, NULL, 0);
		}
	tls_errbuf_drain(buf, sizeof(buf));
	log_warnx("session %016llx: %s: %s", (unsigned long long)session_id,
	    what, tls_errbuf_finish(buf));
}

static void
tls_log_init_error(const char *name, const char *what)
{
	char	 buf[TLS_ERRBUF] = "";

	tls_errbuf_drain(buf, sizeof(buf));
	log_warnx("tls: pki \"%s\": %s: %s", name, what,
	    tls_errbuf_finish(buf));
}

static SSL_CTX *
tls_context_find(const char *name)
{
	for (size_t i = 0; i < tls_ncontexts; i++)
		if (strcasecmp(tls_contexts[i].name, name) == 0)
			return tls_contexts[i].ctx;
	return NULL;
}

/*
 * RFC 6066 section 3: present the certificate of the pki named by the
 * client.  An unknown name keeps the listener's pki and is not
 * acknowledged; the client's own verification decides what follows.
 */
static int
tls_servername(SSL *ssl, int *alert, void *arg)
{
	const char	*name;
	SSL_CTX		*ctx;

	(void)arg;
	if ((name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) ==
	    NULL)
		return SSL_TLSEXT_ERR_OK;
	if ((ctx = tls_context_find(name)) == NULL)
		return SSL_TLSEXT_ERR_NOACK;
	if (ctx != SSL_get_SSL_CTX(ssl) && SSL_set_SSL_CTX(ssl, ctx) == NULL) {
		*alert = SSL_AD_INTERNAL_ERROR;
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
	return SSL_TLSEXT_ERR_OK;
}

/* The leaf, then the chain behind it, in the order of the file. */
static int
tls_context_certificates(SSL_CTX *ctx, const struct pki *p)
{
	BIO		*bio;
	X509		*x;
	unsigned long	 e;
	int		 ret = -1;

	if ((bio = BIO_new_mem_buf(p->cert_pem, (int)p->cert_len)) == NULL)
		return -1;
	if ((x = PEM_read_bio_X509_AUX(bio, NULL, tls_no_passphrase,
	    NULL)) == NULL)
		goto done;
	if (SSL_CTX_use_certificate(ctx, x) != 1) {
		X509_free(x);
		goto done;
	}
	X509_free(x);
	while ((x = PEM_read_bio_X509(bio, NULL, tls_no_passphrase,
	    NULL)) != NULL) {
		if (SSL_CTX_add1_chain_cert(ctx, x) != 1) {
			X509_free(x);
			goto done;
		}
		X509_free(x);
	}
	/* The loop ends on "no start line" at the end of the file. */
	e = ERR_peek_last_error();
	if (ERR_GET_LIB(e) != ERR_LIB_PEM ||
	    ERR_GET_REASON(e) != PEM_R_NO_START_LINE)
		goto done;
	ERR_clear_error();
	ret = 0;
 done:
	BIO_free(bio);
	return ret;
}

/* The key object whose private half lives in the key process. */
static int
tls_context_key(SSL_CTX *ctx, uint32_t pki)
{
	EVP_PKEY	*key;
	X509		*x;
	int		 ret;

	if ((x = SSL_CTX_get0_certificate(ctx)) == NULL ||
	    (key = keyproxy_key(x, pki)) == NULL)
		return -1;
	ret = SSL_CTX_use_PrivateKey(ctx, key) == 1 ? 0 : -1;
	EVP_PKEY_free(key);
	return ret;
}

/* conf's ciphers (OpenSSL's default if none), never RSA key exchange. */
static int
tls_context_ciphers(SSL_CTX *ctx, const struct portcullis_conf *conf)
{
	char	 list[CONF_CIPHERS_MAX + 16];

	if ((size_t)snprintf(list, sizeof(list), "%s:!kRSA",
	    conf->tls_ciphers[0] != '\0' ? conf->tls_ciphers : "DEFAULT") >=
	    sizeof(list))
		return -1;
	return SSL_CTX_set_cipher_list(ctx, list) == 1 ? 0 : -1;
}

static SSL_CTX *
tls_context_new(const struct portcullis_conf *conf, const struct pki *p,
    uint32_t pki)
{
	SSL_CTX		*ctx;
	int		 min;
	uint64_t	 options;

	if (p->cert_pem == NULL || p->cert_len == 0) {
		log_warnx("tls: pki \"%s\": no certificate received",
		    p->name);
		return NULL;
	}
	min = conf->tls_min_version == 0 ? TLS1_2_VERSION :
	    conf->tls_min_version;
	if (min != TLS1_2_VERSION && min != TLS1_3_VERSION) {
		log_warnx("tls: unsupported minimum protocol version 0x%04x",
		    (unsigned int)min);
		return NULL;
	}
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
		tls_log_init_error(p->name, "SSL_CTX_new");
		return NULL;
	}
	if (SSL_CTX_set_min_proto_version(ctx, min) != 1) {
		tls_log_init_error(p->name, "minimum protocol version");
		goto fail;
	}
	options = SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION;
	if (!conf->tls_tickets)
		options |= SSL_OP_NO_TICKET;
#ifdef SSL_OP_NO_RENEGOTIATION
	options |= SSL_OP_NO_RENEGOTIATION;
#endif
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	options |= SSL_OP_IGNORE_UNEXPECTED_EOF;
#endif
	SSL_CTX_set_options(ctx, options);
#if OPENSSL_VERSION_NUMBER >= 0x10101000L && !defined(LIBRESSL_VERSION_NUMBER)
	/* Off: TLS 1.3 would otherwise send stateful tickets instead. */
	if (SSL_CTX_set_num_tickets(ctx, conf->tls_tickets ? 1 : 0) != 1) {
		tls_log_init_error(p->name, "session tickets");
		goto fail;
	}
#endif
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (conf->tls_tickets) {
		/* The lifetime hint: no ticket outlives its key. */
		SSL_CTX_set_timeout(ctx, conf->tls_ticket_lifetime);
		if (tls_ticket_cb_set(ctx) != 1) {
			tls_log_init_error(p->name, "session ticket keys");
			goto fail;
		}
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
#ifdef SSL_MODE_ASYNC
	/* tls_accept_start() below, keyproxy.c; LibreSSL has none. */
	SSL_CTX_set_mode(ctx, SSL_MODE_ASYNC);
#endif
	if (tls_context_ciphers(ctx, conf) == -1) {
		tls_log_init_error(p->name, "tls ciphers");
		goto fail;
	}
	if (tls_context_certificates(ctx, p) == -1) {
		tls_log_init_error(p->name, "certificate");
		goto fail;
	}
	if (tls_context_key(ctx, pki) == -1) {
		tls_log_init_error(p->name, "private key");
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, tls_servername);
	return ctx;
 fail:
	SSL_CTX_free(ctx);
	return NULL;
}

/*
 * The ticket keys master sent, replacing the last ones: key[0] seals
 * and opens, key[1] only opens.
 */
void
tls_ticket_keys_set(const struct tls_ticket_keys *k)
{
	explicit_bzero(&ticket_keys, sizeof(ticket_keys));
	ticket_keys = *k;
}

/* The key that sealed a ticket, by the name it carries; its index. */
static const struct tls_ticket_key *
ticket_key_find(const unsigned char name[16], int *which)
{
	uint32_t	 i;

	for (i = 0; i < ticket_keys.count && i < TLS_TICKET_KEYS; i++)
		if (memcmp(name, ticket_keys.key[i].name, 16) == 0) {
			*which = (int)i;
			return &ticket_keys.key[i];
		}
	return NULL;
}

/*
 * OpenSSL's ticket callback (SSL_CTX_set_tlsext_ticket_key_evp_cb(3)):
 * seal (enc 1) with the current key, or open (enc 0) with the key the
 * ticket names.  0 when there is no such key: no ticket is issued, or
 * the client gets a full handshake.  2 for a ticket the previous key
 * sealed: it is accepted and replaced by one the current key seals.
 * A ticket of the current key is not renewed: the extra ticket after
 * each resumption made testssl.sh's check of resumption (bytes read
 * against bytes written) fail 5 times in 6; clients keep the ticket
 * they resumed with (Python, openssl s_client, smtpload --resume).
 */
static int
tls_ticket_keys_pick(unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, const struct tls_ticket_key **kp, int enc)
{
	const struct tls_ticket_key	*k;
	int				 which = 0;

	if (enc) {
		if (ticket_keys.count == 0)
			return 0;
		k = &ticket_keys.key[0];
		if (RAND_bytes(iv, EVP_CIPHER_iv_length(EVP_aes_256_cbc())) !=
		    1)
			return -1;
		memcpy(name, k->name, 16);
		if (EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1)
			return -1;
	} else {
		if ((k = ticket_key_find(name, &which)) == NULL)
			return 0;
		if (EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes,
		    iv) != 1)
			return -1;
	}
	*kp = k;
	return which == 0 ? 1 : 2;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L && !defined(LIBRESSL_VERSION_NUMBER)
static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc)
{
	const struct tls_ticket_key	*k = NULL;
	OSSL_PARAM			 params[3];
	int				 rv;

	(void)ssl;
	if ((rv = tls_ticket_keys_pick(name, iv, cctx, &k, enc)) <= 0)
		return rv;
	params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY,
	    (void *)(uintptr_t)k->hmac, sizeof(k->hmac));
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)(uintptr_t)"SHA256", 0);
	params[2] = OSSL_PARAM_construct_end();
	if (EVP_MAC_CTX_set_params(hctx, params) != 1)
		return -1;
	return rv;
}

static int
tls_ticket_cb_set(SSL_CTX *ctx)
{
	return SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tls_ticket_cb);
}
#else
/* LibreSSL (OpenBSD) has the HMAC_CTX form only. */
static int
tls_ticket_cb(SSL *ssl, unsigned char name[16], unsigned char *iv,
    EVP_CIPHER_CTX *cctx, HMAC_CTX *hctx, int enc)
{
	const struct tls_ticket_key	*k = NULL;
	int				 rv;

	(void)ssl;
	if ((rv = tls_ticket_keys_pick(name, iv, cctx, &k, enc)) <= 0)
		return rv;
	if (HMAC_Init_ex(hctx, k->hmac, sizeof(k->hmac), EVP_sha256(),
	    NULL) != 1)
		return -1;
	return rv;
}

static int
tls_ticket_cb_set(SSL_CTX *ctx)
{
	return SSL_CTX_set_tlsext_ticket_key_cb(ctx, tls_ticket_cb) == 1 ?
	    1 : 0;
}
#endif

/* The private keys leave the configuration, whatever happened. */
static void
tls_conf_forget_keys(struct portcullis_conf *conf)
{
	struct pki	*p;

	TAILQ_FOREACH(p, &conf->pkis, entry)
		pki_pem_wipe(p);
}

/* Every listener that speaks TLS must find its context. */
static int
tls_check_listeners(const struct portcullis_conf *conf)
{
	const struct listener	*l;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (!(l->flags & (LISTEN_STARTTLS | LISTEN_SMTPS)))
			continue;
		if (!tls_available(l)) {
			log_warnx("tls: listener %s: no pki \"%s\"", l->name,
			    l->pki);
			return -1;
		}
	}
	return 0;
}

/*
 * Call once the configuration has arrived and before chroot and the
 * privilege drop: OpenSSL reads its configuration file and seeds its
 * random generator here, while it still can.
 */
int
tls_init(struct portcullis_conf *conf)
{
	struct pki	*p;
	size_t		 n = 0;
	unsigned char	 seed;
	int		 ret = -1;

	tls_cleanup();
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1) {
		tls_log_init_error("-", "OPENSSL_init_ssl");
		goto done;
	}
	ERR_clear_error();
	if (RAND_bytes(&seed, 1) != 1) {
		tls_log_init_error("-", "random generator");
		goto done;
	}
#if OPENSSL_VERSION_NUMBER >= 0x30000000L && !defined(LIBRESSL_VERSION_NUMBER)
	/* The worker's one thread: its pool of async jobs, bounded. */
	if (!tls_async_pool && ASYNC_init_thread(TLS_ASYNC_JOBS, 0) != 1) {
		tls_log_init_error("-", "ASYNC_init_thread");
		goto done;
	}
	tls_async_pool = 1;
#endif
	TAILQ_FOREACH(p, &conf->pkis, entry)
		n++;
	if (n > 0 && (tls_contexts = calloc(n, sizeof(*tls_contexts))) ==
	    NULL) {
		log_warn("tls: calloc");
		goto done;
	}
	TAILQ_FOREACH(p, &conf->pkis, entry) {
		if ((tls_contexts[tls_ncontexts].ctx = tls_context_new(conf,
		    p, (uint32_t)tls_ncontexts)) == NULL)
			goto done;
		(void)strlcpy(tls_contexts[tls_ncontexts].name, p->name,
		    sizeof(tls_contexts[tls_ncontexts].name));
		tls_ncontexts++;
	}
	if (tls_check_listeners(conf) == -1)
		goto done;
	ret = 0;
 done:
	tls_conf_forget_keys(conf);
	if (ret == -1)
		tls_cleanup();
	return ret;
}

void
tls_cleanup(void)
{
	for (size_t i = 0; i < tls_ncontexts; i++)
		SSL_CTX_free(tls_contexts[i].ctx);
	free(tls_contexts);
	tls_contexts = NULL;
	tls_ncontexts = 0;
}

int
tls_available(const struct listener *l)
{
	return l->pki[0] != '\0' && tls_context_find(l->pki) != NULL;
}

/*
 * A server-side SSL on the listener's pki, for a libevent OpenSSL
 * bufferevent (which then owns it with BEV_OPT_CLOSE_ON_FREE).  NULL
 * on failure; the caller logs with tls_log_error().
 */
SSL *
tls_session_new(const struct listener *l)
{
	SSL_CTX	*ctx;
	SSL	*ssl;

	if (l->pki[0] == '\0' || (ctx = tls_context_find(l->pki)) == NULL)
		return NULL;
	if ((ssl = SSL_new(ctx)) == NULL)
		return NULL;
	SSL_set_accept_state(ssl);
	return ssl;
}

/* "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs and the Received header. */
void
tls_describe(SSL *ssl, char *buf, size_t len)
{
	const SSL_CIPHER	*cipher;

	if (len == 0)
		return;
	if (ssl == NULL || (cipher = SSL_get_current_cipher(ssl)) == NULL) {
		(void)strlcpy(buf, "none", len);
		return;
	}
	(void)snprintf(buf, len, "%s %s", SSL_get_version(ssl),
	    SSL_CIPHER_get_name(cipher));
}

/*
 * RFC 9266: tls-exporter, 32 octets of the exporter with the label
 * "EXPORTER-Channel-Binding" and an empty context; TLS 1.3 only (RFC
 * 9266 3: under TLS 1.2 it is safe only with extended master secret,
 * which we do not check), so 0 for another version.  Its length, 0 if
 * none.
 */
size_t
tls_cb_exporter(SSL *ssl, uint8_t *out, size_t outlen)
{
	static const char	 label[] = "EXPORTER-Channel-Binding";

	if (ssl == NULL || outlen < 32 || SSL_version(ssl) != TLS1_3_VERSION ||
	    SSL_export_keying_material(ssl, out, 32, label,
	    sizeof(label) - 1, NULL, 0, 0) != 1)
		return 0;
	return 32;
}

/*
 * RFC 5929 4.1: tls-server-end-point, the hash of our certificate
 * with the hash function of its signature, SHA-256 where that is MD5
 * or SHA-1.  Its length, 0 if none.
 */
size_t
tls_cb_endpoint(SSL *ssl, uint8_t *out, size_t outlen)
{
	X509		*cert;
	const EVP_MD	*md;
	unsigned int	 n;
	int		 mdnid;

	if (ssl == NULL || (cert = SSL_get_certificate(ssl)) == NULL ||
	    X509_get_signature_info(cert, &mdnid, NULL, NULL, NULL) != 1)
		return 0;
	if (mdnid == NID_md5 || mdnid == NID_sha1 || mdnid == NID_undef)
		mdnid = NID_sha256;
	if ((md = EVP_get_digestbynid(mdnid)) == NULL ||
	    (size_t)EVP_MD_get_size(md) > outlen ||
	    X509_digest(cert, md, out, &n) != 1)
		return 0;
	return n;
}

/*
 * RFC 5929 3: tls-unique, the first Finished message of the handshake
 * (the client's in a full handshake, ours in a resumed one).  TLS 1.2
 * only (RFC 8446 C.5: not defined for 1.3), and only with extended
 * master secret (RFC 7627), without which the triple handshake attack
 * lets one connection's value be replayed on another.  gsasl binds
 * with it under TLS 1.2.  Its length, 0 if none.
 */
size_t
tls_cb_unique(SSL *ssl, uint8_t *out, size_t outlen)
{
	size_t	 n;

	if (ssl == NULL || SSL_version(ssl) != TLS1_2_VERSION ||
	    SSL_get_extms_support(ssl) != 1)
		return 0;
	if (SSL_session_reused(ssl))
		n = SSL_get_finished(ssl, out, outlen);
	else
		n = SSL_get_peer_finished(ssl, out, outlen);
	return n > outlen ? 0 : n;
}

/*
 * A server handshake driven here rather than by libevent, so that it
 * can run as an OpenSSL async job (SSL_MODE_ASYNC): when the key
 * process is asked for a signature (keyproxy.c), the job pauses, the
 * worker's loop serves every other session, and the handshake goes on
 * when the answer's descriptor is readable.  libevent 2.1's OpenSSL
 * bufferevent knows nothing of SSL_ERROR_WANT_ASYNC, so it gets the
 * SSL only once the handshake is over (BUFFEREVENT_SSL_OPEN).
 *
 * A session that goes away while its job waits leaves the handshake
 * to finish here (within the key process's deadline), with the socket,
 * so that neither the job nor the descriptor is lost or reused.
 *
 * Each paused job holds a stack (32 KiB in OpenSSL 3.0), and OpenSSL's
 * pool keeps every job it ever made: unbounded, a burst of handshakes
 * waiting for their signatures left its peak in the worker for good
 * (node_bench: 31 KiB per idle TLS session instead of 19).  The pool
 * is bounded (TLS_ASYNC_JOBS); a handshake that finds no free job
 * waits in line for the next one to end.
 */
struct tls_accept {
	struct event_base	*base;
	struct event		*ev;
	SSL			*ssl;
	int			 fd;
	int			 abandoned;	/* owns fd; frees itself */
	int			 queued;	/* in tls_job_line */
	TAILQ_ENTRY(tls_accept)	 line;
	tls_accept_cb		 done;
	void			*arg;
};

/* Handshakes waiting for a free async job, first come first served. */
static TAILQ_HEAD(, tls_accept) tls_job_line =
    TAILQ_HEAD_INITIALIZER(tls_job_line);

static void	tls_accept_step(evutil_socket_t, short, void *);

static void
tls_accept_release(struct tls_accept *a)
{
	if (a->queued)
		TAILQ_REMOVE(&tls_job_line, a, line);
	if (a->ev != NULL)
		event_free(a->ev);
	SSL_free(a->ssl);
	if (a->abandoned)
		close(a->fd);
	free(a);
}

static int
tls_accept_wait(struct tls_accept *a, int fd, short what, int urgent)
{
	if (a->ev != NULL)
		event_free(a->ev);
	if ((a->ev = event_new(a->base, fd, what, tls_accept_step, a)) ==
	    NULL || (urgent && event_priority_set(a->ev, TLS_PRIORITY_KEYS) ==
	    -1) || event_add(a->ev, NULL) == -1)
		return -1;
	return 0;
}

#ifdef SSL_MODE_ASYNC
static int
tls_accept_wait_async(struct tls_accept *a)
{
	OSSL_ASYNC_FD	 fds[4];
	size_t		 n = 0;

	if (SSL_get_all_async_fds(a->ssl, NULL, &n) != 1 || n == 0 ||
	    n > 4 || SSL_get_all_async_fds(a->ssl, fds, &n) != 1)
		return -1;
	return tls_accept_wait(a, fds[0], EV_READ, 1);
}
#endif

/* The handshake is over, one way or the other: a is gone, cb runs. */
static void
tls_accept_finish(struct tls_accept *a, int ok)
{
	tls_accept_cb	 cb = a->done;
	void		*arg = a->arg;
	SSL		*ssl = NULL;

	if (a->abandoned) {
		ERR_clear_error();
		tls_accept_release(a);
		return;
	}
	if (ok) {
		ssl = a->ssl;
		a->ssl = NULL;
#ifdef SSL_MODE_ASYNC
		SSL_clear_mode(ssl, SSL_MODE_ASYNC);
#endif
	}
	tls_accept_release(a);
	cb(arg, ssl);
}

/*
 * A job ended: the first handshake in line tries again, on the next
 * turn of the loop (its socket is writable at once).
 */
static void
tls_job_line_next(void)
{
	struct tls_accept	*w;

	if ((w = TAILQ_FIRST(&tls_job_line)) == NULL)
		return;
	TAILQ_REMOVE(&tls_job_line, w, line);
	w->queued = 0;
	if (tls_accept_wait(w, w->fd, EV_WRITE, 0) == -1)
		tls_accept_finish(w, 0);
}

static void
tls_accept_step(evutil_socket_t fd, short ev, void *arg)
{
	struct tls_accept	*a = arg;
	int			 r, rv = -1, err;

	(void)fd; (void)ev;
	ERR_clear_error();
	r = SSL_do_handshake(a->ssl);
	err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(a->ssl, r);
#ifdef SSL_MODE_ASYNC
	/*
	 * This call's job ended (it neither paused nor found none): a job
	 * is free, and the next handshake in line may have it.
	 */
	if (err != SSL_ERROR_WANT_ASYNC && err != SSL_ERROR_WANT_ASYNC_JOB)
		tls_job_line_next();
#endif
	if (r == 1) {
		tls_accept_finish(a, 1);
		return;
	}
	switch (err) {
	case SSL_ERROR_WANT_READ:
		rv = tls_accept_wait(a, a->fd, EV_READ, 0);
		break;
	case SSL_ERROR_WANT_WRITE:
		rv = tls_accept_wait(a, a->fd, EV_WRITE, 0);
		break;
#ifdef SSL_MODE_ASYNC
	case SSL_ERROR_WANT_ASYNC:
		rv = tls_accept_wait_async(a);
		break;
	case SSL_ERROR_WANT_ASYNC_JOB:
		/* Every job of the pool waits for the key process. */
		if (a->ev != NULL)
			event_del(a->ev);
		TAILQ_INSERT_TAIL(&tls_job_line, a, line);
		a->queued = 1;
		rv = 0;
		break;
#endif
	}
	if (rv == -1)
		tls_accept_finish(a, 0);
}

/*
 * Accept a TLS session on fd (non-blocking, the caller's) with ssl,
 * which is ours from now on.  cb gets the SSL, ready for a libevent
 * bufferevent in BUFFEREVENT_SSL_OPEN state, or NULL if the handshake
 * failed (OpenSSL's error queue says why).  NULL if it cannot start.
 */
struct tls_accept *
tls_accept_start(struct event_base *base, SSL *ssl, int fd, tls_accept_cb cb,
    void *arg)
{
	struct tls_accept	*a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->base = base;
	a->ssl = ssl;
	a->fd = fd;
	a->done = cb;
	a->arg = arg;
	if (SSL_set_fd(ssl, fd) != 1 || tls_accept_wait(a, fd, EV_READ, 0) ==
	    -1) {
		a->ssl = NULL;
		tls_accept_release(a);
		return NULL;
	}
	return a;
}

/*
 * The session is going away.  Returns 1 if the handshake waits for the
 * key process: it then keeps fd and finishes on its own (the caller
 * must not close fd), 0 if everything is freed and fd is the caller's.
 */
int
tls_accept_free(struct tls_accept *a)
{
#ifdef SSL_MODE_ASYNC
	if (a->ssl != NULL && SSL_waiting_for_async(a->ssl)) {
		a->abandoned = 1;
		return 1;
	}
#endif
	tls_accept_release(a);
	return 0;
}
