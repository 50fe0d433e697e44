/*
 * bounds.h -- every limit on what a peer can make portcullis hold or
 * wait for, named once, with the RFC section or the reason for its
 * value.
 *
 * A client, a next hop, an identity provider or a worker is bounded
 * by these; the configuration's own bounds (how many workers, how long
 * a timeout may be) stand beside its grammar in parse.y, and the sizes
 * of configuration fields (CONF_*_MAX) in config.h.  A limit an
 * administrator may need to change is a configuration option instead.
 */
#ifndef PORTCULLIS_BOUNDS_H
#define PORTCULLIS_BOUNDS_H

/* SMTP from a client (worker) */
#define SMTP_LINE_MAX		512	/* RFC 5321 4.5.3.1.4, with CR LF */
#define SMTP_AUTH_LINE_MAX	12288	/* RFC 4954 4, with CR LF */
#define SMTP_PATH_MAX		256	/* RFC 5321 4.5.3.1.3, with NUL */
#define SMTP_TEXT_LINE_MAX	1000	/* RFC 5321 4.5.3.1.6, with CR LF */
/* Buffered per session: past these a session stops reading until the
   other side has caught up, so memory does not grow. */
#define SESSION_INPUT_MAX	(64 * 1024)
#define SESSION_OUTPUT_MAX	(64 * 1024)
#define PENALTY_MAX		65536	/* entries of authd's penalty and
					   limit tables (authd/fleet.c);
					   the least recently used go */

/* SASL (worker, and authd again) */
#define SASL_NAME_MAX		255	/* RFC 4616 2: authcid, authzid,
					   passwd */
/* The credential of an AUTH_REQUEST: JWTs from real providers are
   1-4 KB. */
#define AUTH_CRED_MAX		8192
/* A token that fits "user NUL token" in AUTH_CRED_MAX, with a spare. */
#define SASL_TOKEN_MAX		(AUTH_CRED_MAX - SASL_NAME_MAX - 2)
#define PASSWD_MAX		511	/* octets of a password: sha512-crypt
					   costs time in proportion */

/* The next hop's replies (worker, relay delivery) */
#define SMTP_REPLY_LINE_MAX	4096	/* longest reply line we wait for;
					   RFC 5321 4.5.3.1.5 says 512 */
#define SMTP_REPLY_LINES_MAX	128	/* lines in one reply (RFC 5321
					   4.2.1 sets none) */
#define SMTP_REPLY_TEXT_MAX	512	/* reply text kept */
#define RELAY_SHOW_MAX		200	/* of it, passed on to the client */

/* Identity providers (authd) */
#define HTTP_BODY_MAX		(1024 * 1024)	/* a response */
#define JWKS_MAX_LEN		(256 * 1024)	/* octets of JWKS JSON */
#define JWKS_MAX_KEYS		64	/* entries of its "keys" array */
#define JWKS_PARAM_MAX		2048	/* characters of n, x, ... */
#define JWT_KID_MAX		128	/* with the NUL */

/* Between the processes */
#define PKI_PEM_MAX		(1024 * 1024)	/* a certificate or key file */
#define AUTHD_CHANNEL_WQ_MAX	1024	/* verdicts queued for a worker
					   that does not read: then authd
					   stops reading it */

/* The store's user records */
#define SCRAM_ITER_DEFAULT	4096	/* RFC 7677 4: at least 4096 */
#define SCRAM_ITER_MIN		4096
#define SCRAM_ITER_MAX		100000000	/* minutes of PBKDF2 */
#define STORE_ADDRS_MAX		16	/* sending addresses of a user */
#define STORE_ADDR_MAX		254	/* octets, RFC 5321 4.5.3.1.3 */

/*
 * The addresses a verdict says the user may send as, each with its NUL,
 * after struct auth_verdict: as many as a store record holds, whichever
 * checker found them (lmdb, a directory, a database).
 */
#define AUTH_ADDRS_MAX		STORE_ADDRS_MAX
#define AUTH_ADDRS_BYTES	(AUTH_ADDRS_MAX * (STORE_ADDR_MAX + 1))

/* authctl penalty list: the most rows the shared state (Redis) gives */
#define CTL_PENALTY_ROWS_MAX	1000

/* The log */
#define CONSOLE_LOG_MAX		(64 * 1024)	/* octets of a message
						   logged by console
						   delivery */
#define CONSOLE_RCPTS_MAX	1024	/* characters of its recipients */

#endif /* PORTCULLIS_BOUNDS_H */
