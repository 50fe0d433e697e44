/*
 * config.h -- the parsed configuration of portcullis.
 *
 * parse.y turns portcullis.conf(5) into one struct portcullis_conf.
 * master parses the file; children never open it: master sends them
 * the struct piece by piece over imsg (config_imsg.c), so every member
 * here is a fixed-size value that can be copied as it is.
 */
#ifndef PORTCULLIS_CONFIG_H
#define PORTCULLIS_CONFIG_H

#include <sys/types.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>

#include "mech.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/etc"
#endif
#define PORTCULLIS_CONF_FILE	SYSCONFDIR "/portcullis.conf"
#define PORTCULLIS_USER		"_portcullis"
#define PORTCULLIS_AUTH_USER	"_portcullis_auth"
#define PORTCULLIS_KEYS_USER	"_portcullis_keys"
#define PORTCULLIS_CHROOT	"/var/empty"
#define PORTCULLIS_SPOOL	"/var/spool/portcullis"
#define PORTCULLIS_DB		"/var/db/portcullis"
/*
 * A directory of its own, so that a service manager can hand it over
 * writable (systemd's RuntimeDirectory=) while the rest of /run stays
 * read-only; master creates it when it is missing.
 */
#ifdef __linux__
#define PORTCULLIS_RUNDIR	"/run/portcullis"
#else
#define PORTCULLIS_RUNDIR	"/var/run/portcullis"
#endif
#define PORTCULLIS_CONTROL	PORTCULLIS_RUNDIR "/control.sock"

#define CONF_NAME_MAX		64	/* listener, pki and checker names */
#define CONF_HOST_MAX		256	/* host names, with the NUL */
#define CONF_USER_MAX		33	/* user names, with the NUL */
#define CONF_URL_MAX		1024	/* relay URLs */
#define CONF_LISTENERS_MAX	32
#define CONF_CHECKERS_MAX	16
/*
 * Signing processes: one per core is where RSA signatures stop
 * queueing; past 16 each further copy of the keys buys little.
 */
#define KEY_PROCESSES_MAX	16

#define DEFAULT_GRACE_PERIOD	30		/* seconds */
#define DEFAULT_MAX_MSG_SIZE	(35 * 1024 * 1024)
#define DEFAULT_FAILURE_DELAY	2000		/* milliseconds */
#define DEFAULT_TIMEOUT_COMMAND	300	/* RFC 5321 4.5.3.2.7: 5 minutes */
#define DEFAULT_TIMEOUT_DATA	180	/* RFC 5321 4.5.3.2.5-6: 3 minutes */
#define DEFAULT_TIMEOUT_SESSION	3600
#define DEFAULT_MAX_RECIPIENTS	100	/* RFC 5321 4.5.3.1.8 minimum */
#define DEFAULT_MAX_SESSIONS	4096	/* per worker */
#define DEFAULT_MAX_SESSIONS_PER_ADDR 32	/* per worker */
#define DEFAULT_MAX_ERRORS	10
#define DEFAULT_TLS_TICKET_LIFETIME (4 * 3600)	/* seconds */
#define TLS_TICKET_LIFETIME_MAX	(7 * 86400)	/* RFC 8446 4.6.1 */
#define CONF_CIPHERS_MAX	512

/* how DATA treats a CR or LF that is not part of CR LF */
enum bare_newlines {
	BARE_NEWLINES_REJECT = 0,	/* 550 5.5.2 for the whole message */
	BARE_NEWLINES_NORMALIZE,	/* rewritten to CR LF */
};

/* a client that sends before the greeting (RFC 5321 4.3.1) */
enum early_talkers {
	EARLY_TALKERS_REJECT = 0,	/* 554 and disconnect */
	EARLY_TALKERS_ALLOW,		/* greet it anyway */
};

/* what MAIL FROM may be once a client has authenticated */
enum sender_check {
	SENDER_CHECK_EXACT = 0,		/* the user's own address */
	SENDER_CHECK_DOMAIN,		/* any address in the user's domain */
	SENDER_CHECK_OFF,
};

/* listener flags */
#define LISTEN_STARTTLS		0x0001	/* offer STARTTLS */
#define LISTEN_TLS_REQUIRE	0x0002	/* no MAIL or AUTH before TLS */
#define LISTEN_SMTPS		0x0004	/* implicit TLS, RFC 8314 */
#define LISTEN_AUTH_REQUIRE	0x0008	/* no MAIL before AUTH */
#define LISTEN_AUTH_OPTIONAL	0x0010	/* AUTH offered, not needed */
#define LISTEN_PROXY		0x0020	/* a PROXY protocol header first */

#define CONF_PROXY_FROM_MAX	16	/* balancers' networks a listener */
#define DEFAULT_TIMEOUT_PROXY	5	/* seconds for the PROXY header */

/* A network by its prefix: where a PROXY protocol header may come from. */
struct netprefix {
	int			 family;	/* AF_INET, AF_INET6 */
	int			 prefixlen;
	uint8_t			 addr[16];	/* bits past the prefix 0 */
};

struct listener {
	TAILQ_ENTRY(listener)	 entry;
	char			 name[CONF_NAME_MAX];	/* for logs */
	struct sockaddr_storage	 ss;			/* address, port set */
	socklen_t		 sslen;
	char			 pki[CONF_HOST_MAX];	/* "" unless tls or smtps */
	uint32_t		 flags;
	int			 fd;	/* master: bound socket, else -1 */
	int			 proxy_nfrom;	/* LISTEN_PROXY: 1.. */
	struct netprefix	 proxy_from[CONF_PROXY_FROM_MAX];
};
TAILQ_HEAD(listenerlist, listener);

struct pki {
	TAILQ_ENTRY(pki)	 entry;
	char			 name[CONF_HOST_MAX];	/* also SNI name */
	char			 cert_file[PATH_MAX];
	char			 key_file[PATH_MAX];
	/* worker only: the PEM master read and sent; key wiped after use */
	char			*cert_pem;
	size_t			 cert_len;
	char			*key_pem;
	size_t			 key_len;
};
TAILQ_HEAD(pkilist, pki);

enum checker_type {
	CHECKER_LMDB = 1,
	CHECKER_STATIC,		/* users in this file: tests and demos */
	CHECKER_OAUTH,		/* a remote OAuth 2.0 provider */
	CHECKER_CACHE,		/* earlier oauth verdicts, in LMDB */
	CHECKER_LDAP,		/* a directory: OpenLDAP, Active Directory */
	CHECKER_SQL,		/* users in PostgreSQL */
};

#define CONF_FILE_MAX		1024	/* ca-file, key-file, secret files */
#define CONF_CLAIM_MAX		64
#define CONF_SECRET_MAX		512

/* JWT signature algorithms an oauth checker accepts (RFC 7518, 8037) */
#define JWT_ALG_RS256		0x01
#define JWT_ALG_ES256		0x02
#define JWT_ALG_EDDSA		0x04

/* how the client (portcullis) authenticates to the provider */
enum oauth_client_auth {
	OAUTH_CLIENT_BASIC = 0,		/* HTTP Basic, RFC 6749 2.3.1 */
	OAUTH_CLIENT_POST,		/* client_id, client_secret in body */
};

#define DEFAULT_OAUTH_TIMEOUT		5000	/* milliseconds, total */
#define DEFAULT_OAUTH_CONNECT_TIMEOUT	2000	/* milliseconds */
#define DEFAULT_OAUTH_MAX_REQUESTS	16	/* concurrent, per provider */
#define DEFAULT_OAUTH_BREAKER		5	/* tempfails in a row */
#define DEFAULT_OAUTH_BREAKER_TIME	30	/* seconds open */
#define DEFAULT_OAUTH_LEEWAY		30	/* seconds, exp and nbf */
#define DEFAULT_OAUTH_JWKS_REFRESH	60	/* seconds, the least between
						   two fetches of the keys */
#define DEFAULT_OAUTH_JWKS_INTERVAL	300	/* seconds, the most between
						   two fetches of the keys */
#define DEFAULT_OAUTH_JWKS_MAX_AGE	3600	/* seconds a key set is
						   trusted after its fetch */
#define DEFAULT_CACHE_TTL		3600	/* seconds */

/* checker NAME oauth { ... }: everything but the name and policies */
struct oauth_conf {
	char			 introspection_url[CONF_URL_MAX];
	char			 token_url[CONF_URL_MAX];
	char			 jwks_url[CONF_URL_MAX];
	char			 issuer[CONF_URL_MAX];
	char			 audience[CONF_HOST_MAX];
	char			 scope[CONF_HOST_MAX];	/* "": none needed */
	char			 client_id[CONF_HOST_MAX];
	char			 secret_file[CONF_FILE_MAX];
	/* authd only: read by master from secret_file; never to workers */
	char			 client_secret[CONF_SECRET_MAX];
	enum oauth_client_auth	 client_auth;
	char			 ca_file[CONF_FILE_MAX];	/* "": system */
	char			 user_claim[CONF_CLAIM_MAX];	/* "": username,
								   else sub */
	char			 domain[CONF_HOST_MAX];	/* "": as it is */
	uint32_t		 algorithms;		/* JWT_ALG_* */
	int			 leeway;		/* seconds */
	int			 timeout;		/* milliseconds */
	int			 connect_timeout;	/* milliseconds */
	int			 max_requests;
	int			 breaker;		/* tempfails; 0: off */
	int			 breaker_time;		/* seconds */
	int			 jwks_refresh;		/* seconds, least */
	int			 jwks_interval;		/* seconds, most */
	int			 jwks_max_age;		/* seconds */
	int			 jwt_typ_relaxed;	/* typ JWT or none ok */
	char			 client_claim[CONF_CLAIM_MAX];	/* "":
							   client_id, azp */
	char			 clients[CONF_URL_MAX];	/* allowed, space-
							   separated; "": any */
	int			 discovery;	/* set by parse.y: the URLs
						   come from the issuer's
						   metadata (RFC 8414) */
};

/* how an ldap checker checks the password it was given */
enum ldap_method {
	LDAP_METHOD_BIND = 0,		/* binds as the user's DN */
	LDAP_METHOD_ATTRIBUTE,		/* reads userPassword, verifies it */
};

enum ldap_scope_conf {
	LDAP_SCOPE_CONF_SUB = 0,
	LDAP_SCOPE_CONF_ONE,
	LDAP_SCOPE_CONF_BASE,
};

#define CONF_LDAP_URLS_MAX		8	/* tried in order */
#define CONF_LDAP_DN_MAX		512
#define CONF_LDAP_FILTER_MAX		512
#define CONF_LDAP_ATTR_MAX		64
#define CONF_LDAP_MAIL_ATTRS_MAX	4
#define DEFAULT_LDAP_TIMEOUT		5000	/* milliseconds, per login */
#define DEFAULT_LDAP_CONNECTIONS	4	/* per checker */
#define DEFAULT_LDAP_FILTER		"(uid=%u)"

/* checker NAME ldap { ... } */
struct ldap_conf {
	char			 urls[CONF_LDAP_URLS_MAX][CONF_HOST_MAX];
	int			 nurls;
	int			 starttls;
	char			 ca_file[CONF_FILE_MAX];	/* "": system */
	int			 timeout;		/* milliseconds */
	int			 connections;		/* the pool's bound */
	char			 bind_dn[CONF_LDAP_DN_MAX];	/* "": anonymous */
	char			 bind_password_file[CONF_FILE_MAX];
	/* authd only: read by master from the file; never to workers */
	char			 bind_password[CONF_SECRET_MAX];
	char			 base[CONF_LDAP_DN_MAX];
	enum ldap_scope_conf	 scope;
	char			 filter[CONF_LDAP_FILTER_MAX];	/* %u: login */
	enum ldap_method	 method;
	char			 password_attr[CONF_LDAP_ATTR_MAX];
	char			 user_attr[CONF_LDAP_ATTR_MAX];	/* "": login */
	char			 mail_attrs[CONF_LDAP_MAIL_ATTRS_MAX]
				    [CONF_LDAP_ATTR_MAX];
	int			 nmail_attrs;
	char			 disabled_filter[CONF_LDAP_FILTER_MAX];
	char			 disabled_attr[CONF_LDAP_ATTR_MAX]; /* set and
							   not FALSE: off */
};

/* checker NAME cache [PATH] { ... } */
struct cache_conf {
	char			 key_file[CONF_FILE_MAX];	/* "": PATH/cache.key */
	int			 ttl;			/* seconds */
	int			 negative_ttl;		/* seconds; 0: off */
	int			 stale_if_error;	/* seconds; 0: off */
};

/* checker NAME sql { ... }: users in PostgreSQL, through libpq */
#define CONF_SQL_MAX		2048	/* conninfo, queries */
#define CONF_COLUMN_MAX		64
#define DEFAULT_SQL_CONNECTIONS	4
#define DEFAULT_SQL_TIMEOUT	3000	/* milliseconds, client side */
#define DEFAULT_SQL_STATEMENT_TIMEOUT 2000 /* milliseconds, the server's */
#define DEFAULT_SQL_QUEUE	256	/* checks waiting for a connection */

struct sql_conf {
	char			 conninfo[CONF_SQL_MAX];	/* libpq's */
	char			 password_file[CONF_FILE_MAX];	/* "": none */
	/* authd only: read by master from password_file; never to
	   workers */
	char			 password[CONF_SECRET_MAX];
	char			 query[CONF_SQL_MAX];		/* $1: login */
	char			 address_query[CONF_SQL_MAX];	/* "": none */
	char			 password_column[CONF_COLUMN_MAX];
	char			 user_column[CONF_COLUMN_MAX];	/* "": login */
	char			 addresses_column[CONF_COLUMN_MAX]; /* text[] */
	char			 enabled_column[CONF_COLUMN_MAX]; /* "": all */
	int			 connections;
	int			 timeout;		/* milliseconds */
	int			 statement_timeout;	/* milliseconds */
	int			 queue;
};

/* what the chain does after a checker's fail or tempfail */
enum chain_policy {
	CHAIN_CONTINUE = 0,	/* offer the credential to the next checker */
	CHAIN_STOP,		/* the chain ends with this result */
};

struct checker_conf {
	TAILQ_ENTRY(checker_conf) entry;
	char			 name[CONF_NAME_MAX];
	enum checker_type	 type;
	char			 path[PATH_MAX];	/* lmdb, cache: environment */
	enum chain_policy	 on_fail;
	enum chain_policy	 on_tempfail;
	uint32_t		 mechanisms;	/* SASL_*; 0: all it can */
	union {			/* by type: one imsg must carry it */
		struct oauth_conf	 oauth;		/* CHECKER_OAUTH */
		struct ldap_conf	 ldap;		/* CHECKER_LDAP */
	};
	struct cache_conf	 cache;		/* CHECKER_CACHE */
	/* CHECKER_SQL: too big for one imsg with the rest, and authd's
	   alone: it travels in its own IMSG_CONF_CHECKER_SQL */
	struct sql_conf		*sql;
};
TAILQ_HEAD(checkerlist, checker_conf);

#define CONF_AUTH_NAME_MAX	256	/* user names, with the NUL */
#define CONF_HASH_MAX		256	/* crypt(3) or PHC strings */

/* a user of a static checker */
struct static_user {
	TAILQ_ENTRY(static_user) entry;
	char			 checker[CONF_NAME_MAX];
	char			 name[CONF_AUTH_NAME_MAX];
	char			 password[CONF_HASH_MAX];	/* a hash, or
							   plain text */
};
TAILQ_HEAD(staticuserlist, static_user);

/* a network: trusted (no failure delay), or the unit of penalties */
struct netaddr {
	TAILQ_ENTRY(netaddr)	 entry;
	struct sockaddr_storage	 ss;
	int			 prefixlen;
};
TAILQ_HEAD(netaddrlist, netaddr);

#define DEFAULT_FAILURE_DELAY_MAX	15000	/* milliseconds */
#define DEFAULT_MAX_AUTH_FAILURES	3	/* per session, then 421 */
#define DEFAULT_PENALTY_PREFIX6		64	/* IPv6 clients by /64 */

/*
 * Penalties (authd, auth { penalty ... }), sending limits (limit ...)
 * and where their counters live (state ...).  Durations in seconds.
 */
struct penalty_conf {
	int			 forget;	/* an address's failures, after
						   its last one */
	int			 account_max;	/* failures per account and
						   window, then 454; 0: off */
	int			 account_window;
	int			 known_for;	/* an address that logged in as
						   an account passes its lock */
	int			 repeats;	/* wrong passwords remembered
						   per account and address */
};
#define DEFAULT_PENALTY_FORGET		3600
#define DEFAULT_PENALTY_ACCOUNT_MAX	50
#define DEFAULT_PENALTY_ACCOUNT_WINDOW	900
#define DEFAULT_PENALTY_KNOWN_FOR	(30 * 86400)
#define DEFAULT_PENALTY_REPEATS		4
#define PENALTY_REPEATS_MAX		16

struct limit_conf {
	int			 on;		/* a limit statement: workers
						   ask, per-user values apply */
	int			 messages;	/* per window; 0: no limit */
	int			 messages_window;
	int			 recipients;
	int			 recipients_window;
	int			 lock_after;	/* refusals; 0: never lock */
	int			 lock_for;	/* seconds */
};

/* Both fit the one imsg that carries the configuration; a Unix
   socket's path is shorter anyway (sun_path). */
#define CONF_STATE_PATH_MAX		256

enum state_type {
	STATE_LOCAL = 0,	/* this node's own counters */
	STATE_REDIS,		/* shared; the node's own when it is down */
};

struct state_conf {
	enum state_type		 type;
	char			 redis[CONF_STATE_PATH_MAX];	/* "unix:/path",
							   or "address:port" */
	char			 password_file[CONF_STATE_PATH_MAX]; /* "": none */
	char			 password[CONF_SECRET_MAX];	/* its line, read
							   by master;
							   authd's only */
	int			 fail_closed;	/* Redis down: 454 and 451 */
	int			 timeout;	/* milliseconds per request */
};
#define DEFAULT_STATE_TIMEOUT		500

struct local_domain {
	TAILQ_ENTRY(local_domain) entry;
	char			 name[CONF_HOST_MAX];	/* lower case */
};
TAILQ_HEAD(domainlist, local_domain);

enum deliver_method {
	DELIVER_SPOOL = 1,
	DELIVER_RELAY,
	DELIVER_CONSOLE,
};

/*
 * metrics listen on ADDRESS port PORT [bearer-token-file FILE]: the
 * Prometheus endpoint, served by portcullis-metrics.  listener.fd is
 * master's socket; the token is read by master and sent to that
 * process alone (proto.h, struct metrics_config).
 */
#define DEFAULT_METRICS_PORT	9425
struct metrics_listen {
	int			 enabled;
	struct listener		 listener;
	char			 token_file[CONF_FILE_MAX];	/* "": none */
};

struct portcullis_conf {
	char			 hostname[CONF_HOST_MAX];
	char			 user[CONF_USER_MAX];	/* workers */
	char			 auth_user[CONF_USER_MAX];	/* authd */
	char			 keys_user[CONF_USER_MAX];	/* key processes */
	char			 chroot[CONF_FILE_MAX];	/* workers' root */
	char			 spool[CONF_FILE_MAX];
	uint64_t		 spool_min_free;	/* octets; 0: no floor */
	char			 control_socket[CONF_FILE_MAX];	/* authctl */
	int			 workers;		/* 0: one per core */
	int			 key_processes;		/* 0: one per core */
	int			 grace_period;		/* seconds */
	uint64_t		 max_message_size;	/* octets */
	enum deliver_method	 deliver;
	char			 relay_url[CONF_URL_MAX];
	int			 relay_tls;		/* STARTTLS to next hop */
	int			 failure_delay;		/* milliseconds */
	int			 failure_delay_max;	/* milliseconds */
	int			 max_auth_failures;	/* per session */
	int			 penalty_prefix6;	/* 48..128 */
	struct penalty_conf	 penalty;
	struct limit_conf	 limit;
	struct state_conf	 state;
	int			 scram_iterations;	/* new SCRAM keys, and
							   unknown users' */
	int			 passwordless_app_only;	/* a user without a
							   password: app
							   passwords only */

	/* ESMTP: timeouts in seconds, limits, policy */
	int			 timeout_command;
	int			 timeout_data;
	int			 timeout_session;
	int			 timeout_proxy;		/* the PROXY header */
	int			 max_recipients;
	int			 max_sessions;		/* per worker */
	int			 max_sessions_per_addr;	/* per worker */
	int			 max_errors;
	enum bare_newlines	 bare_newlines;
	enum early_talkers	 early_talkers;
	enum sender_check	 sender_check;
	int			 tls_min_version;	/* TLS1_2_VERSION... */
	char			 tls_ciphers[CONF_CIPHERS_MAX]; /* "" = default */
	int			 tls_tickets;		/* resumption on */
	int			 tls_ticket_lifetime;	/* seconds */

	struct metrics_listen	 metrics;

	struct listenerlist	 listeners;
	struct pkilist		 pkis;
	struct checkerlist	 checkers;
	struct domainlist	 local_domains;		/* empty: hostname */
	struct staticuserlist	 static_users;
	struct netaddrlist	 trusted_networks;
};

/* parse.y */
struct portcullis_conf	*parse_config(const char *file);
uint32_t		 conf_checker_mechanisms(const struct checker_conf *);
const char		*config_errmsg(void);	/* first error of the last parse */
const char		*config_where(const void *);	/* "file:line" */
struct portcullis_conf	*config_new_empty(void);
void			 config_free(struct portcullis_conf *);
void			 pki_pem_wipe(struct pki *);
const char		*listener_address(const struct listener *);
int			 listener_port(const struct listener *);

#endif /* PORTCULLIS_CONFIG_H */
