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
#define PROTO_VERSION		5

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
	IMSG_CONF_METRICS = 21,	/* metrics only: struct metrics_config +
				   the listening socket, once; its whole
				   configuration */
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

	/*
	 * A SCRAM exchange, worker <-> authd: the worker frames it (RFC
	 * 4954), authd holds the keys and computes the proofs.  A fail
	 * or tempfail at any step is an IMSG_AUTH_VERDICT; AUTH_CANCEL
	 * ends an exchange the session left.
	 */
	IMSG_SCRAM_START = 53,	/* worker -> authd: struct scram_start +
				   msg_len octets of client-first-message */
	IMSG_SCRAM_CHALLENGE = 54, /* authd -> worker: struct scram_step +
				   server-first-message */
	IMSG_SCRAM_FINAL = 55,	/* worker -> authd: struct scram_step +
				   client-final-message */
	IMSG_SCRAM_OK = 56,	/* authd -> worker: struct auth_verdict
				   + the addresses (addrs_len octets)
				   (ok) + server-final-message */

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

	/* penalties and counters, authctl <-> authd */
	IMSG_CTL_PENALTY_LIST = 70, /* authctl -> authd: struct ctl_penalty
				   (what: "" for all) */
	IMSG_CTL_PENALTY = 71,	/* authd -> authctl: struct ctl_penalty,
				   one per entry, then IMSG_CTL_END */
	IMSG_CTL_PENALTY_CLEAR = 72, /* authctl -> authd: struct ctl_penalty
				   (what: an address or a user; "" for
				   all); answered with an
				   IMSG_CTL_PENALTY per place (count:
				   how many entries went; where), then
				   IMSG_CTL_END */
	IMSG_CTL_COUNTER = 73,	/* authd -> authctl: struct ctl_counter,
				   after the checkers' CTL_STATS_REPLY */

	/* sending limits, worker <-> authd */
	IMSG_LIMIT_REQUEST = 80, /* worker -> authd: struct limit_request */
	IMSG_LIMIT_VERDICT = 81, /* authd -> worker: struct limit_verdict */

	/* metrics: the Prometheus endpoint's process asks, each answers */
	IMSG_METRICS_CHANNEL = 90, /* master -> worker, authd: empty + fd
				   to metrics; master -> metrics: struct
				   metrics_peer + fd, the other end */
	IMSG_METRICS_ASK = 91,	/* metrics -> master, worker, authd:
				   struct metrics_ask */
	IMSG_METRICS_SAMPLE = 92, /* answer: struct metrics_sample, one per
				   series the process counts */
	IMSG_METRICS_END = 93,	/* answer: struct metrics_ask, echoed;
				   every sample of that seq was sent */

	/* TLS keys: master -> worker */
	IMSG_TLS_TICKET_KEYS = 100, /* struct tls_ticket_keys; at start
				   and at each rotation */

	/* the ldap checker's additions (130-139) */
	IMSG_CTL_STATS_LINE = 130, /* authd -> authctl: struct
				   ctl_stats_line, one per checker with a
				   stats op, after the IMSG_CTL_STATS_REPLY
				   rows, before IMSG_CTL_END */

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

/* IMSG_CTL_STATS_LINE: a checker's own state (ops->stats), one line. */
struct ctl_stats_line {
	char		checker[64];
	char		line[1024];	/* NUL-terminated */
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
	uint32_t	delay_ms;	/* fail, tempfail: answer after this
					   (authd's penalties) */
	uint32_t	pad;
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

/* IMSG_CTL_PENALTY_LIST, _CLEAR, IMSG_CTL_PENALTY */
enum ctl_penalty_kind {
	PENALTY_KIND_ADDRESS = 1,	/* failures of a client address */
	PENALTY_KIND_ACCOUNT,		/* failures of an account */
	PENALTY_KIND_KNOWN,		/* an address that logged in as it */
	PENALTY_KIND_REPEATS,		/* wrong passwords remembered */
	PENALTY_KIND_SENDING,		/* locked for going on over its
					   sending limit (limit lock-after) */
};
/*
 * Whose count a row is: this node's, or the shared state's (Redis); a
 * row PENALTY_WHERE_DOWN says only that the shared state was
 * configured and did not answer.  CLEAR's answer is one row for this
 * node and, with a shared state, one for it (count: keys deleted).
 */
enum ctl_penalty_where {
	PENALTY_WHERE_NODE = 0,
	PENALTY_WHERE_SHARED,
	PENALTY_WHERE_DOWN,
};
struct ctl_penalty {
	char		what[320];	/* address, user, "user address" */
	uint32_t	kind;		/* enum ctl_penalty_kind */
	uint32_t	count;		/* failures; CLEAR's answer: removed */
	int64_t		expires;	/* epoch */
	uint32_t	delay_ms;	/* an address's next delay */
	uint32_t	locked;		/* an account refused now */
	uint32_t	where;		/* enum ctl_penalty_where */
};

/* IMSG_CTL_COUNTER: one of authd's counters (authd/fleet.h). */
struct ctl_counter {
	char		name[48];
	uint64_t	value;
};

/*
 * IMSG_LIMIT_REQUEST: may this session's account and address send
 * count more of kind?  Asked before the reply that accepts them
 * (RCPT's 250, the 250 after the final dot); yes counts them.
 */
enum limit_kind {
	LIMIT_RECIPIENTS = 1,
	LIMIT_MESSAGES,
};
struct limit_request {
	uint64_t	req_id;
	uint64_t	session_id;
	uint32_t	kind;		/* enum limit_kind */
	uint32_t	count;
	char		user[256];	/* authenticated; "" refused */
	char		client[64];
};
struct limit_verdict {
	uint64_t	req_id;
	uint32_t	ok;		/* 0: over the limit, or unknown */
	uint32_t	tempfail;	/* the counters could not be asked */
	char		which[16];	/* "account" or "address" */
};

/*
 * IMSG_SCRAM_START.  The worker says what it offered (flags) and the
 * channel binding data of its own TLS session (RFC 9266 tls-exporter,
 * RFC 5929 tls-server-end-point and tls-unique), so that authd checks
 * the client's c= against the worker's view of the channel.  A length
 * of 0: that type is not available on this session.
 */
#define SCRAM_START_TLS		0x01	/* TLS session: -PLUS was offered */
struct scram_start {
	uint64_t	req_id;
	uint64_t	session_id;
	uint32_t	mechanism;	/* SASL_SCRAM_SHA256 or _PLUS */
	uint32_t	msg_len;
	uint32_t	flags;		/* SCRAM_START_* */
	uint32_t	exporter_len;	/* 0 or 32 */
	uint32_t	endpoint_len;	/* 0, 32, 48 or 64 */
	uint32_t	unique_len;	/* 0 or 12 (TLS 1.2 Finished) */
	uint8_t		exporter[32];
	uint8_t		endpoint[64];
	uint8_t		unique[16];
	char		client[64];
	char		listener[64];
};

/* IMSG_SCRAM_CHALLENGE, IMSG_SCRAM_FINAL: the message follows. */
struct scram_step {
	uint64_t	req_id;
	uint32_t	msg_len;
	uint32_t	pad;
};

/* IMSG_CONF_PKI_PEM: which half of the last pki this chunk extends. */
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
	char		user[33];	/* keys-user: CONF_USER_MAX */
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

/*
 * IMSG_CONF_METRICS: all the metrics process needs.  The bearer token
 * goes to it alone.
 */
#define METRICS_TOKEN_MAX	256	/* with the NUL */
struct metrics_config {
	char		user[33];	/* the workers' */
	char		chroot[1024];
	uint32_t	has_token;	/* bearer-token-file given */
	char		token[METRICS_TOKEN_MAX];
};

/* IMSG_METRICS_CHANNEL to metrics: who is on the other end. */
#define METRICS_PEER_MASTER	0
#define METRICS_PEER_AUTHD	1
#define METRICS_PEER_WORKER	2
struct metrics_peer {
	uint32_t	role;		/* METRICS_PEER_* */
	uint32_t	id;		/* the worker's slot */
	uint32_t	generation;
	uint32_t	pad;
};

/* IMSG_METRICS_ASK, IMSG_METRICS_END */
struct metrics_ask {
	uint64_t	seq;
};

/*
 * IMSG_METRICS_SAMPLE: one series of common/metrics.c's table.  The
 * label values are in the order of the definition's labels; values:
 * v[0] for a counter or gauge; for a histogram v[0..METRIC_BUCKETS]
 * the (not cumulative) count of each bucket, +Inf last, then the sum
 * in microseconds.  The receiver checks each field against the table.
 */
#define METRIC_LABELS_MAX	3
#define METRIC_LABEL_MAX	48	/* a value, with the NUL */
#define METRIC_BUCKETS		12	/* finite buckets of a histogram */
#define METRIC_VALUES		(METRIC_BUCKETS + 2)
struct metrics_sample {
	uint64_t	seq;
	uint32_t	metric;		/* enum metric_id */
	uint32_t	pad;
	char		label[METRIC_LABELS_MAX][METRIC_LABEL_MAX];
	uint64_t	v[METRIC_VALUES];
};

const char	*imsg_type_name(uint32_t);

#endif /* PORTCULLIS_PROTO_H */
