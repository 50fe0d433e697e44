/*
 * proto.h -- the imsg catalogue: every message the portcullis
 * processes exchange, and the payload each one carries.
 *
 * One line of documentation per message: who sends it, to whom, what
 * the payload is, whether a descriptor rides with it.  Each receiver
 * has a dispatch table per peer (struct imsg_dispatch, imsgev.h) that
 * holds these lengths; imsgev.c checks them before a handler reads a
 * single field.  A message from a worker is hostile until its length
 * and fields are checked.
 */
#ifndef PORTCULLIS_PROTO_H
#define PORTCULLIS_PROTO_H

#include <stdint.h>

#include "bounds.h"

/* Every child finds its channel to master on this descriptor. */
#define PROC_PARENT_FD		3

/*
 * The version of everything in this file.  Two binaries of different
 * builds must never misread each other: master checks it against each
 * child's CHILD_READY, authd against authctl's CTL_HELLO.  Bump it
 * whenever a payload changes shape or meaning or a type is added or
 * retired.
 */
#define PROTO_VERSION		4

/*
 * Every type has its number written out: numbers are never reused,
 * and a new type takes the next free number in its group.  Who may
 * send what to whom, with which length, is in the dispatch tables
 * (struct imsg_dispatch) of each receiver: master/proc.c,
 * worker/worker.c, authd/authd.c, authd/control.c.
 */
enum imsg_type {
	IMSG_NONE = 0,

	/* configuration, master -> child, in this order */
	IMSG_CONF_START = 10,	/* struct portcullis_conf, lists empty */
	IMSG_CONF_LISTENER = 11, /* struct listener; worker: + bound socket */
	IMSG_CONF_PKI = 12,	/* struct pki (file names only) */
	IMSG_CONF_PKI_PEM = 13,	/* worker: struct pki_pem + the
				   certificate's PEM, in chunks, for the
				   pki sent last (never a key: those go
				   to the key process, KEYS_PEM) */
	IMSG_CONF_DOMAIN = 14,	/* struct local_domain */
	IMSG_CONF_STATIC_USER = 15, /* authd only: struct static_user */
	IMSG_CONF_NETWORK = 16,	/* struct netaddr: a trusted network */
	IMSG_CONF_CONTROL = 17,	/* authd: empty + the control socket,
				   listening */
	IMSG_CONF_CHECKER = 18,	/* struct checker_conf */
	IMSG_CONF_SPOOL = 19,	/* worker: empty + spool directory fd */
	IMSG_CONF_END = 20,	/* empty; the child applies what it got */

	/* life cycle */
	IMSG_CHILD_READY = 30,	/* child -> master: struct hello;
				   privileges dropped */
	IMSG_CTL_SHUTDOWN = 31,	/* master -> child: empty; stop
				   accepting, close after the grace
				   period */
	IMSG_CTL_VERBOSE = 32,	/* master -> child: int, the new
				   verbosity */

	/* worker <-> authd channel set-up and liveness */
	IMSG_AUTHD_CHANNEL = 40, /* master -> worker: empty + fd to authd;
				   master -> authd: struct authd_channel + fd */
	IMSG_PING = 41,		/* worker -> authd: struct ping */
	IMSG_PONG = 42,		/* authd -> worker: struct ping,
				   echoed */
	IMSG_PING_RESULT = 43,	/* worker -> master: struct ping; authd
				   answered the first ping on a channel */

	/* authentication, worker <-> authd */
	IMSG_AUTH_REQUEST = 50,	/* worker -> authd: struct auth_request +
				   cred_len octets of credential */
	IMSG_AUTH_CANCEL = 51,	/* worker -> authd: struct auth_cancel */
	IMSG_AUTH_VERDICT = 52,	/* authd -> worker: struct
				   auth_verdict + the user's
				   addresses */

	/* authctl <-> authd over the control socket */
	IMSG_CTL_HELLO = 60,	/* authctl -> authd, first: struct hello;
				   authd answers with its own */
	IMSG_CTL_TEST = 61,	/* authctl -> authd: as IMSG_AUTH_REQUEST;
				   answered with IMSG_AUTH_VERDICT */
	IMSG_CTL_STATS = 62,	/* authctl -> authd: empty */
	IMSG_CTL_STATS_REPLY = 63, /* authd -> authctl: struct ctl_stats, one
				   per checker, then IMSG_CTL_END */
	IMSG_CTL_RELOAD = 64,	/* authctl -> authd -> master: empty */
	IMSG_CTL_END = 65,	/* authd -> authctl: empty; done */
	IMSG_CTL_KEYS = 66,	/* authctl -> authd: struct ctl_checker */
	IMSG_CTL_KEY = 67,	/* authd -> authctl: struct ctl_key, one
				   per key a checker trusts, then
				   IMSG_CTL_END */
	IMSG_CTL_REFRESH = 68,	/* authctl -> authd: struct ctl_checker;
				   its checkers fetch their keys now */
	IMSG_CTL_REFRESHED = 69, /* authd -> authctl: struct ctl_refreshed,
				   one per checker once its fetch ended,
				   then IMSG_CTL_END */

	/* TLS keys: master -> worker */
	IMSG_TLS_TICKET_KEYS = 100, /* struct tls_ticket_keys; at start
				   and at each rotation */

	/* the key process (keys/keys.c): private keys, signatures */
	IMSG_KEYS_START = 101,	/* master -> keys: struct keys_start,
				   first; who to become */
	IMSG_KEYS_PEM = 102,	/* master -> keys: struct keys_pem + PEM
				   bytes, in chunks: a pki's certificate
				   and key of one generation */
	IMSG_KEYS_COMMIT = 103,	/* master -> keys: struct keys_commit; the
				   generation's set is whole: load it */
	IMSG_KEYS_CHANNEL = 104, /* master -> worker and -> keys: struct
				   keys_channel + fd to the other */
	IMSG_KEYS_SIGN = 105,	/* worker -> keys: struct keys_sign + the
				   octets to sign (KEYS_INPUT_MAX) */
	IMSG_KEYS_SIGNED = 106,	/* keys -> worker: struct keys_signed + the
				   signature (KEYS_OUTPUT_MAX) */
};

/*
 * IMSG_CHILD_READY and IMSG_CTL_HELLO: who speaks which version.
 * Frozen, like the numbers of those two types: a binary of any version
 * must be able to read another's, to say which versions differ.
 */
struct hello {
	uint32_t	version;	/* PROTO_VERSION */
	uint32_t	id;		/* CHILD_READY: the worker's id */
};

/* IMSG_CTL_STATS_REPLY: attempts decided by one checker since start. */
struct ctl_stats {
	char		checker[64];	/* "none": nobody said ok */
	uint64_t	ok;
	uint64_t	fail;
	uint64_t	tempfail;
};

/* IMSG_CTL_KEYS, IMSG_CTL_REFRESH: which checker; "" for all. */
struct ctl_checker {
	char		checker[64];
};

/* IMSG_CTL_KEY: a key a checker trusts (the oauth checker's JWKS). */
struct ctl_key {
	char		checker[64];
	char		kid[JWT_KID_MAX];	/* "" if it has none */
	char		alg[16];
	int64_t		fetched;	/* the set's last good fetch, epoch */
	int64_t		refresh;	/* the next fetch due; 0: none */
	int64_t		expires;	/* trusted until then, unless a
					   fetch succeeds before */
};

/* IMSG_CTL_REFRESHED: how a checker's fetch went. */
struct ctl_refreshed {
	char		checker[64];
	char		error[192];	/* "" when it succeeded */
	uint32_t	keys;		/* trusted now */
	uint32_t	failures;	/* fetches failed since start */
};

/*
 * IMSG_AUTH_REQUEST.  For the password mechanisms the credential is
 * "authzid NUL authcid NUL password" (RFC 4616 2), whatever the
 * mechanism's own framing was; authd checks it again.  For the token
 * mechanisms (XOAUTH2, OAUTHBEARER) it is "user NUL token": the user
 * the client named (XOAUTH2 user=, OAUTHBEARER a=; may be empty) and
 * the bearer token without "Bearer ".
 */
struct auth_request {
	uint64_t	req_id;		/* the worker's; echoed */
	uint64_t	session_id;
	uint32_t	mechanism;	/* one SASL_* bit */
	uint32_t	cred_len;
	char		client[64];	/* numeric address */
	char		listener[64];
};

struct auth_cancel {
	uint64_t	req_id;
};

enum auth_result {
	AUTH_OK = 1,
	AUTH_FAIL,
	AUTH_TEMPFAIL,
};

struct auth_verdict {
	uint64_t	req_id;
	uint32_t	result;		/* enum auth_result */
	uint32_t	addrs_len;	/* octets of addresses that follow */
	char		user[256];	/* canonical name, when ok */
	char		checker[64];	/* who decided */
	/*
	 * When ok: followed by addrs_len octets (at most AUTH_ADDRS_BYTES),
	 * the addresses the user may send as besides its own name, each
	 * ending in NUL.
	 */
};

/*
 * IMSG_TLS_TICKET_KEYS: the keys every worker seals and opens session
 * tickets with (master/tickets.c).  key[0] seals and opens; key[1],
 * when count is 2, the one before it, only opens.
 */
#define TLS_TICKET_KEYS		2
struct tls_ticket_key {
	uint8_t		name[16];	/* RFC 5077 4: key_name */
	uint8_t		aes[32];	/* AES-256-CBC */
	uint8_t		hmac[32];	/* HMAC-SHA-256 */
};
struct tls_ticket_keys {
	uint32_t		count;		/* 1 or 2 */
	uint32_t		lifetime;	/* seconds: a ticket's */
	struct tls_ticket_key	key[TLS_TICKET_KEYS];
};

/* IMSG_CONF_PKI_PEM: the certificate of the last pki (1 is retired). */
#define PKI_PEM_CERT		0
struct pki_pem {
	uint32_t	kind;		/* PKI_PEM_CERT */
	uint32_t	pad;
};

/*
 * The key process.  A worker names a key by the generation of its
 * configuration and the pki's index in it; the key process holds the
 * current generation's keys and the previous one's (workers draining
 * after a reload), nothing older.
 */
#define KEYS_INPUT_MAX		1024	/* RSA-8192's modulus, with room */
#define KEYS_OUTPUT_MAX		1024	/* an RSA-8192 signature; ECDSA's
					   DER is far shorter */
struct keys_start {
	char		user[33];	/* auth-user: CONF_USER_MAX */
	char		chroot[4096];	/* PATH_MAX: the workers' empty root */
};

#define KEYS_PEM_CERT		0
#define KEYS_PEM_KEY		1
struct keys_pem {
	uint32_t	generation;
	uint32_t	pki;		/* index in the configuration */
	uint32_t	kind;		/* KEYS_PEM_CERT or KEYS_PEM_KEY */
	uint32_t	pad;
};

struct keys_commit {
	uint32_t	generation;
	uint32_t	npki;
};

struct keys_channel {
	uint32_t	worker_id;
	uint32_t	generation;	/* the worker's configuration */
};

/* What a worker may ask for: the private operations TLS needs. */
enum keys_op {
	KEYS_OP_RSA_SIGN = 1,	/* RSA private operation on a PKCS #1
				   v1.5 DigestInfo or a PSS encoding */
	KEYS_OP_ECDSA_SIGN = 2,	/* ECDSA over a digest; DER signature */
};

/* RSA padding, as the wire says it (not OpenSSL's numbers). */
#define KEYS_PAD_NONE		0	/* ECDSA */
#define KEYS_PAD_PKCS1		1	/* RFC 8017 9.2: EMSA-PKCS1-v1_5 */
#define KEYS_PAD_RAW		2	/* RFC 8017 9.1: EMSA-PSS, encoded by
					   the worker, modulus-sized */

struct keys_sign {
	uint64_t	req_id;		/* the worker's; echoed */
	uint32_t	generation;
	uint32_t	pki;
	uint32_t	op;		/* enum keys_op */
	uint32_t	padding;	/* KEYS_PAD_* */
	uint32_t	len;		/* octets that follow */
	uint32_t	pad;
};

#define KEYS_OK			0
#define KEYS_REFUSED		1	/* a malformed request: logged */
#define KEYS_NOKEY		2	/* no such key (a generation gone) */
#define KEYS_FAILED		3	/* OpenSSL failed */
struct keys_signed {
	uint64_t	req_id;
	uint32_t	status;		/* KEYS_OK... */
	uint32_t	len;		/* octets of signature that follow */
};

/* IMSG_AUTHD_CHANNEL to authd: which worker the descriptor serves. */
struct authd_channel {
	uint32_t	worker_id;
	uint32_t	generation;
};

/* IMSG_PING, IMSG_PONG, IMSG_PING_RESULT */
struct ping {
	uint64_t	seq;
	uint32_t	worker_id;
	uint32_t	rtt_usec;	/* PING_RESULT: round trip */
};

const char	*imsg_type_name(uint32_t);

#endif /* PORTCULLIS_PROTO_H */
