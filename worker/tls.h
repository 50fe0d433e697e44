/*
 * tls.h -- the worker's TLS contexts: one SSL_CTX per pki, built once
 * from the PEM master sent, before the worker drops its privileges.
 *
 * This file knows nothing of the worker's globals, so the unit tests
 * can link it on its own.
 */
#ifndef PORTCULLIS_TLS_H
#define PORTCULLIS_TLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "config.h"

struct tls_ticket_keys;

struct bufferevent;

int	 tls_init(struct portcullis_conf *);
void	 tls_cleanup(void);
int	 tls_available(const struct listener *);
SSL	*tls_session_new(const struct listener *);
void	 tls_describe(SSL *, char *, size_t);
void	 tls_ticket_keys_set(const struct tls_ticket_keys *);
size_t	 tls_cb_exporter(SSL *, uint8_t *, size_t);
size_t	 tls_cb_endpoint(SSL *, uint8_t *, size_t);
size_t	 tls_cb_unique(SSL *, uint8_t *, size_t);
void	 tls_log_error(uint64_t, const char *);
void	 tls_log_bufferevent_error(uint64_t, const char *,
	    struct bufferevent *);

/* a server handshake that may pause for the key process */
/*
 * libevent priorities of a worker's loop: the key process's answers
 * and the handshakes they resume go before the other sessions' work,
 * so that a handshake that waited for a signature does not wait again
 * behind a whole round of events (keys_bench's p99 at c=256).
 */
#define TLS_PRIORITIES		2
#define TLS_PRIORITY_KEYS	0	/* the others get libevent's default, 1 */

struct tls_accept;
struct event_base;
typedef void	(*tls_accept_cb)(void *arg, SSL *ssl);
struct tls_accept *tls_accept_start(struct event_base *, SSL *, int fd,
	    tls_accept_cb, void *arg);
int	 tls_accept_free(struct tls_accept *);

/* keyproxy.c: private-key operations on the key process */
EVP_PKEY *keyproxy_key(X509 *, uint32_t pki);
void	 keyproxy_channel(struct event_base *, int fd, uint32_t generation);
int	 keyproxy_available(void);
void	 keyproxy_async(int);

#endif /* PORTCULLIS_TLS_H */
