/*
 * scram.h -- the SCRAM messages a client sends (RFC 5802 7): their
 * pure parsers, used by the worker (to refuse junk early) and by authd
 * (which trusts no worker and parses again).
 *
 * No I/O, no state, no logging, no crypto: fuzzed (tests/fuzz/
 * fuzz_scram.c).  What they return points into the message.
 */
#ifndef PORTCULLIS_SCRAM_H
#define PORTCULLIS_SCRAM_H

#include <stddef.h>
#include <stdint.h>

#include "bounds.h"

#define SCRAM_MSG_MAX		2048	/* octets of one client message */
#define SCRAM_NONCE_MAX		256	/* a client's nonce, printable */
#define SCRAM_CBNAME_MAX	32	/* "tls-server-end-point" is 20 */
#define SCRAM_CBDATA_MAX	64	/* SHA-512 of a certificate */
#define SCRAM_PROOF_LEN		32	/* SHA-256 */

/* gs2-cbind-flag (RFC 5802 7) */
#define SCRAM_CB_NONE		'n'	/* the client does not bind */
#define SCRAM_CB_SERVER_NO	'y'	/* it could, thinks we cannot */
#define SCRAM_CB_USED		'p'	/* it binds, with cbname */

struct scram_client_first {
	char		 cbflag;		/* SCRAM_CB_* */
	char		 cbname[SCRAM_CBNAME_MAX];	/* for 'p' */
	char		 authzid[SASL_NAME_MAX + 1];	/* decoded; "" none */
	char		 user[SASL_NAME_MAX + 1];	/* decoded saslname */
	const char	*nonce;			/* r=, printable, no ',' */
	size_t		 nonce_len;
	size_t		 gs2_len;		/* gs2-header, its ',' too */
	const char	*bare;			/* client-first-message-bare */
	size_t		 bare_len;
};

struct scram_client_final {
	const char	*cbind;			/* c=, base64 */
	size_t		 cbind_len;
	const char	*nonce;			/* r= */
	size_t		 nonce_len;
	uint8_t		 proof[SCRAM_PROOF_LEN];	/* p=, decoded */
	size_t		 without_proof_len;	/* client-final-message-
						   without-proof */
};

/* 0, or -1 for anything RFC 5802 7 does not allow (or "m="). */
int	scram_client_first_parse(const uint8_t *msg, size_t len,
	    struct scram_client_first *);
int	scram_client_final_parse(const uint8_t *msg, size_t len,
	    struct scram_client_final *);

#endif /* PORTCULLIS_SCRAM_H */
