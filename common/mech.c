/*
 * mech.c -- the SASL mechanism table.
 *
 * Adding a mechanism means a line here, its framing in the worker
 * (worker/sasl.c) and a checker that verifies its kind.
 */

#include <stddef.h>
#include <strings.h>

#include "mech.h"

const struct sasl_mech sasl_mechs[] = {
	{ "PLAIN",		SASL_PLAIN,		CRED_PASSWORD },
	{ "LOGIN",		SASL_LOGIN,		CRED_PASSWORD },
	{ "SCRAM-SHA-256-PLUS",	SASL_SCRAM_SHA256_PLUS,	CRED_SCRAM },
	{ "SCRAM-SHA-256",	SASL_SCRAM_SHA256,	CRED_SCRAM },
	{ "XOAUTH2",		SASL_XOAUTH2,		CRED_TOKEN },
	{ "OAUTHBEARER",	SASL_OAUTHBEARER,	CRED_TOKEN },
	{ NULL,			0,			0 },
};

const struct sasl_mech *
mech_by_name(const char *name)
{
	const struct sasl_mech	*m;

	for (m = sasl_mechs; m->name != NULL; m++)
		if (strcasecmp(m->name, name) == 0)
			return m;
	return NULL;
}

const char *
mech_name(uint32_t bit)
{
	const struct sasl_mech	*m;

	for (m = sasl_mechs; m->name != NULL; m++)
		if (m->bit != 0 && (m->bit & bit) != 0)
			return m->name;
	return "?";
}

uint32_t
mech_of_kinds(uint32_t kinds)
{
	const struct sasl_mech	*m;
	uint32_t		 bits = 0;

	for (m = sasl_mechs; m->name != NULL; m++)
		if (m->kind & kinds)
			bits |= m->bit;
	return bits;
}

uint32_t
mech_kind(uint32_t bits)
{
	const struct sasl_mech	*m;
	uint32_t		 kinds = 0;

	for (m = sasl_mechs; m->name != NULL; m++)
		if (m->bit & bits)
			kinds |= m->kind;
	return kinds;
}
