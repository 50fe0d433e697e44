/*
 * mech.h -- the SASL mechanisms and the kind of credential each one
 * carries: the one table that parse.y, the worker and authd read.
 *
 * A checker says which kinds of credential it verifies (Twisted's
 * credentialInterfaces); the mechanisms follow from the kinds through
 * this table and nowhere else.
 */
#ifndef PORTCULLIS_MECH_H
#define PORTCULLIS_MECH_H

#include <stdint.h>

/* SASL mechanisms, as a bit set */
#define SASL_PLAIN		0x0001	/* RFC 4616 */
#define SASL_LOGIN		0x0002	/* draft-murchison-sasl-login */
#define SASL_XOAUTH2		0x0004	/* Google's and Microsoft's */
#define SASL_OAUTHBEARER	0x0008	/* RFC 7628 */
#define SASL_SCRAM_SHA256	0x0010	/* RFC 5802, RFC 7677 */
#define SASL_SCRAM_SHA256_PLUS	0x0020	/* the same, channel-bound */

/* Kinds of credential, as a bit set */
#define CRED_PASSWORD		0x0001	/* a user name and a password */
#define CRED_TOKEN		0x0002	/* an OAuth 2.0 bearer token */
#define CRED_SCRAM		0x0004	/* a SCRAM exchange: the checker
					   holds StoredKey and ServerKey */

struct sasl_mech {
	const char	*name;		/* as on the wire and in EHLO */
	uint32_t	 bit;		/* SASL_*; 0: known, not supported */
	uint32_t	 kind;		/* CRED_* it carries */
};

/* In the order EHLO lists them; ends with a NULL name. */
extern const struct sasl_mech sasl_mechs[];

const struct sasl_mech *mech_by_name(const char *);	/* any case */
const char	*mech_name(uint32_t bit);	/* first of bit; "?" */
uint32_t	 mech_of_kinds(uint32_t kinds);	/* SASL_* carrying them */
uint32_t	 mech_kind(uint32_t bits);	/* CRED_* they carry */

#define SASL_PASSWORD_MECHS	mech_of_kinds(CRED_PASSWORD)
#define SASL_TOKEN_MECHS	mech_of_kinds(CRED_TOKEN)
#define SASL_SCRAM_MECHS	mech_of_kinds(CRED_SCRAM)

#endif /* PORTCULLIS_MECH_H */
