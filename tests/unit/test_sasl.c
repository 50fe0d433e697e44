/*
 * test_sasl.c -- strict base64 (RFC 4648) and the PLAIN message
 * (RFC 4616), as the worker decodes them before anything reaches
 * authd.
 */

#include <string.h>

#include <criterion/criterion.h>

#include "sasl.h"

static int
decode(const char *in, char *out, size_t outsz, size_t *len)
{
	return sasl_b64_decode(in, strlen(in), (uint8_t *)out, outsz, len);
}

Test(sasl, base64_round_values)
{
	char	 out[64];
	size_t	 len;

	cr_assert_eq(decode("", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 0);
	cr_assert_eq(decode("Zg==", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 1);
	cr_assert_eq(memcmp(out, "f", 1), 0);
	cr_assert_eq(decode("Zm8=", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 2);
	cr_assert_eq(decode("Zm9v", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 3);
	cr_assert_eq(memcmp(out, "foo", 3), 0);
	cr_assert_eq(decode("AGFsaWNlAHNlY3JldA==", out, sizeof(out), &len), 0);
	cr_assert_eq(len, 13);
	cr_assert_eq(memcmp(out, "\0alice\0secret", 13), 0);
}

Test(sasl, base64_strictness)
{
	char	 out[64];
	size_t	 len;
	const char *bad[] = {
		"Zg",		/* no padding */
		"Zg=",		/* short padding */
		"Z===",		/* too much padding */
		"Zm9v\r\n",	/* white space */
		"Zm 9v",
		"Zm9v====",
		"Zh==",		/* bits under the padding */
		"Zm9=Zm9v",	/* padding inside */
		"Zm9*",		/* outside the alphabet */
		"Zm9-",		/* base64url is not base64 */
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(decode(bad[i], out, sizeof(out), &len), -1,
		    "accepted \"%s\"", bad[i]);
}

Test(sasl, base64_output_bound)
{
	char	 out[2];
	size_t	 len;

	cr_assert_eq(decode("Zm9v", out, sizeof(out), &len), -1);
}

Test(sasl, plain_message)
{
	struct sasl_plain	 p;

	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice\0secret", 13,
	    &p), 0);
	cr_assert_eq(p.authzid_len, 0);
	cr_assert_eq(p.authcid_len, 5);
	cr_assert_eq(memcmp(p.authcid, "alice", 5), 0);
	cr_assert_eq(p.passwd_len, 6);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"alice\0alice\0pw", 14,
	    &p), 0);
	cr_assert_eq(p.authzid_len, 5);
}

Test(sasl, plain_refuses_malformed)
{
	struct sasl_plain	 p;
	uint8_t			 longname[300 + 4];

	/* no NUL, one NUL, three NULs, empty user, empty password */
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"alice", 5, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice", 6, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0a\0b\0c", 7, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0\0pw", 4, &p), -1);
	cr_assert_eq(sasl_plain_parse((const uint8_t *)"\0alice\0", 7, &p), -1);
	memset(longname, 'a', sizeof(longname));
	longname[0] = '\0';
	longname[301] = '\0';
	cr_assert_eq(sasl_plain_parse(longname, sizeof(longname), &p), -1);
}
