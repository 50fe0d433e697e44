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

#endif /* PORTCULLIS_TLS_H */
