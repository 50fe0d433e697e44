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
	IMSG_CONF_PKI_PEM = 13,	/* worker: struct pki_pem + PEM bytes, in
				   chunks, for the pki sent last */
	IMSG_CONF_DOMAIN = 14,	/* struct local_domain */
	IMSG_CONF_STATIC_USER = 15, /* authd only: struct static_user */
	IMSG_CONF_NETWORK = 16,	/* struct netaddr: a trusted network */
	IMSG_CONF_CONTROL = 17,	/* authd: empty + the control socket,
				   listening */
	IMSG_CONF_CHECKER = 18,	/* struct checker_conf */
	IMSG_CONF_SPOOL = 19,	/* worker: empty + spool directory fd */
	IMSG_CONF_END = 20,	/* empty; the child applies what it got */
	IMSG_CONF_CHECKER_SQL = 140, /* authd only: struct sql_conf, of
				   the sql checker sent last */

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
	IMSG_CTL_STATE = 141,	/* authctl -> authd: empty */
	IMSG_CTL_STATE_REPLY = 142, /* authd -> authctl: struct ctl_state,
				   one per checker that keeps a state (its
				   ops->stats), then IMSG_CTL_END */
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

/* IMSG_CTL_STATE_REPLY: one line of a checker's own state. */
struct ctl_state {
	char		checker[64];
	char		state[960];
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

/* IMSG_CONF_PKI_PEM: which half of the last pki this chunk extends. */
#define PKI_PEM_CERT		0
#define PKI_PEM_KEY		1
struct pki_pem {
	uint32_t	kind;		/* PKI_PEM_CERT or PKI_PEM_KEY */
	uint32_t	pad;
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
