/*
 * config.c -- the configuration's defaults and small accessors.
 *
 * config_new_empty() returns a configuration with every default of
 * portcullis.conf(5) filled in and empty lists; parse.y starts from it.
 * config_free() releases one, whoever built it (the parser or
 * config_imsg.c), and wipes the PEM a worker may still hold and the
 * passwords of static checkers; it closes no descriptor, see
 * config_close_fds().
 * listener_address() and listener_port() give a listener's numeric
 * address and port for logs and messages.
 */

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>	/* TLS1_2_VERSION */

#include "bounds.h"
#include "config.h"

struct portcullis_conf *
config_new_empty(void)
{
	struct portcullis_conf	*conf;

	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		return NULL;

	/* gethostname(2) need not terminate a truncated name. */
	if (gethostname(conf->hostname, sizeof(conf->hostname) - 1) == -1 ||
	    conf->hostname[0] == '\0')
		(void)strlcpy(conf->hostname, "localhost",
		    sizeof(conf->hostname));
	conf->hostname[sizeof(conf->hostname) - 1] = '\0';

	(void)strlcpy(conf->user, PORTCULLIS_USER, sizeof(conf->user));
	(void)strlcpy(conf->auth_user, PORTCULLIS_AUTH_USER,
	    sizeof(conf->auth_user));
	(void)strlcpy(conf->keys_user, PORTCULLIS_KEYS_USER,
	    sizeof(conf->keys_user));
	(void)strlcpy(conf->chroot, PORTCULLIS_CHROOT, sizeof(conf->chroot));
	(void)strlcpy(conf->spool, PORTCULLIS_SPOOL, sizeof(conf->spool));
	strlcpy(conf->control_socket, PORTCULLIS_CONTROL,
	    sizeof(conf->control_socket));
	conf->workers = 0;
	conf->key_processes = 0;
	conf->grace_period = DEFAULT_GRACE_PERIOD;
	conf->max_message_size = DEFAULT_MAX_MSG_SIZE;
	conf->deliver = DELIVER_SPOOL;
	conf->relay_url[0] = '\0';
	conf->relay_tls = 0;
	conf->failure_delay = DEFAULT_FAILURE_DELAY;
	conf->failure_delay_max = DEFAULT_FAILURE_DELAY_MAX;
	conf->max_auth_failures = DEFAULT_MAX_AUTH_FAILURES;
	conf->penalty_prefix6 = DEFAULT_PENALTY_PREFIX6;
	conf->penalty.forget = DEFAULT_PENALTY_FORGET;
	conf->penalty.account_max = DEFAULT_PENALTY_ACCOUNT_MAX;
	conf->penalty.account_window = DEFAULT_PENALTY_ACCOUNT_WINDOW;
	conf->penalty.known_for = DEFAULT_PENALTY_KNOWN_FOR;
	conf->penalty.repeats = DEFAULT_PENALTY_REPEATS;
	conf->state.timeout = DEFAULT_STATE_TIMEOUT;
	conf->scram_iterations = SCRAM_ITER_DEFAULT;

	conf->timeout_command = DEFAULT_TIMEOUT_COMMAND;
	conf->timeout_data = DEFAULT_TIMEOUT_DATA;
	conf->timeout_session = DEFAULT_TIMEOUT_SESSION;
	conf->timeout_proxy = DEFAULT_TIMEOUT_PROXY;
	conf->max_recipients = DEFAULT_MAX_RECIPIENTS;
	conf->max_sessions = DEFAULT_MAX_SESSIONS;
	conf->max_sessions_per_addr = DEFAULT_MAX_SESSIONS_PER_ADDR;
	conf->max_errors = DEFAULT_MAX_ERRORS;
	conf->bare_newlines = BARE_NEWLINES_REJECT;
	conf->sender_check = SENDER_CHECK_EXACT;
	conf->tls_min_version = TLS1_2_VERSION;
	conf->tls_ciphers[0] = '\0';		/* OpenSSL's default */
	conf->tls_tickets = 1;
	conf->tls_ticket_lifetime = DEFAULT_TLS_TICKET_LIFETIME;
	conf->metrics.enabled = 0;		/* no endpoint */
	conf->metrics.listener.fd = -1;

	TAILQ_INIT(&conf->listeners);
	TAILQ_INIT(&conf->pkis);
	TAILQ_INIT(&conf->checkers);
	TAILQ_INIT(&conf->local_domains);	/* the hostname only */
	TAILQ_INIT(&conf->static_users);
	TAILQ_INIT(&conf->trusted_networks);	/* none */
	return conf;
}

/*
 * The PEM a pki carries: the key, and the certificate file, which may
 * hold the key beside the certificate.  Each buffer is len + 1 bytes,
 * NUL included.
 */
void
pki_pem_wipe(struct pki *p)
{
	if (p->cert_pem != NULL)
		freezero(p->cert_pem, p->cert_len + 1);
	p->cert_pem = NULL;
	p->cert_len = 0;
	if (p->key_pem != NULL)
		freezero(p->key_pem, p->key_len + 1);
	p->key_pem = NULL;
	p->key_len = 0;
}

void
config_free(struct portcullis_conf *conf)
{
	struct listener		*l;
	struct pki		*p;
	struct checker_conf	*c;
	struct local_domain	*d;
	struct static_user	*u;
	struct netaddr		*n;

	if (conf == NULL)
		return;
	while ((l = TAILQ_FIRST(&conf->listeners)) != NULL) {
		TAILQ_REMOVE(&conf->listeners, l, entry);
		free(l);
	}
	while ((p = TAILQ_FIRST(&conf->pkis)) != NULL) {
		TAILQ_REMOVE(&conf->pkis, p, entry);
		pki_pem_wipe(p);
		free(p);
	}
	while ((c = TAILQ_FIRST(&conf->checkers)) != NULL) {
		TAILQ_REMOVE(&conf->checkers, c, entry);
		if (c->sql != NULL)	/* a database password */
			freezero(c->sql, sizeof(*c->sql));
		freezero(c, sizeof(*c));	/* an oauth client secret */
	}
	while ((d = TAILQ_FIRST(&conf->local_domains)) != NULL) {
		TAILQ_REMOVE(&conf->local_domains, d, entry);
		free(d);
	}
	while ((u = TAILQ_FIRST(&conf->static_users)) != NULL) {
		TAILQ_REMOVE(&conf->static_users, u, entry);
		/* A hash, or for tests and demos a plain text password. */
		explicit_bzero(u->password, sizeof(u->password));
		free(u);
	}
	while ((n = TAILQ_FIRST(&conf->trusted_networks)) != NULL) {
		TAILQ_REMOVE(&conf->trusted_networks, n, entry);
		free(n);
	}
	freezero(conf, sizeof(*conf));	/* Redis's password */
}

/* A static buffer: good until the next call, as inet_ntoa(3). */
const char *
listener_address(const struct listener *l)
{
	static char	 host[NI_MAXHOST];

	if (getnameinfo((const struct sockaddr *)&l->ss, l->sslen, host,
	    sizeof(host), NULL, 0, NI_NUMERICHOST) != 0)
		(void)strlcpy(host, "?", sizeof(host));
	return host;
}

int
listener_port(const struct listener *l)
{
	switch (l->ss.ss_family) {
	case AF_INET:
		return ntohs(((const struct sockaddr_in *)&l->ss)->sin_port);
	case AF_INET6:
		return ntohs(((const struct sockaddr_in6 *)&l->ss)->sin6_port);
	}
	return -1;
}
