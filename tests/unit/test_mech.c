/*
 * test_mech.c -- the SASL mechanism table and the kinds of credential.
 */

#include <criterion/criterion.h>

#include "mech.h"

Test(mech, by_name_any_case)
{
	cr_assert_eq(mech_by_name("plain")->bit, SASL_PLAIN);
	cr_assert_eq(mech_by_name("XOAuth2")->bit, SASL_XOAUTH2);
	cr_assert_eq(mech_by_name("SCRAM-SHA-256")->bit, SASL_SCRAM_SHA256);
	cr_assert_eq(mech_by_name("scram-sha-256-plus")->bit,
	    SASL_SCRAM_SHA256_PLUS);
	cr_assert_eq(SASL_SCRAM_MECHS,
	    SASL_SCRAM_SHA256 | SASL_SCRAM_SHA256_PLUS);
	cr_assert_null(mech_by_name("CRAM-MD5"));
	cr_assert_null(mech_by_name(""));
}

Test(mech, kinds)
{
	cr_assert_eq(SASL_PASSWORD_MECHS, SASL_PLAIN | SASL_LOGIN);
	cr_assert_eq(SASL_TOKEN_MECHS, SASL_XOAUTH2 | SASL_OAUTHBEARER);
	cr_assert_eq(mech_kind(SASL_LOGIN), CRED_PASSWORD);
	cr_assert_eq(mech_kind(SASL_PLAIN | SASL_OAUTHBEARER),
	    CRED_PASSWORD | CRED_TOKEN);
	cr_assert_eq(mech_of_kinds(0), 0);
}

Test(mech, names)
{
	cr_assert_str_eq(mech_name(SASL_OAUTHBEARER), "OAUTHBEARER");
	cr_assert_str_eq(mech_name(SASL_LOGIN | SASL_XOAUTH2), "LOGIN");
	cr_assert_str_eq(mech_name(0), "?");
}
