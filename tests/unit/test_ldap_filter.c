/*
 * test_ldap_filter.c -- the login in an LDAP filter (authd/ldap_filter.c):
 * RFC 4515 3's escapes, and no login that can widen the filter.
 */

#include <string.h>

#include <criterion/criterion.h>

#include "ldap_filter.h"

static void
expect_escape(const char *in, size_t len, const char *want)
{
	char	 out[256];

	cr_assert_eq(ldap_filter_escape(in, len, out, sizeof(out)),
	    (int)strlen(want));
	cr_assert_str_eq(out, want);
}

Test(ldap_filter, escapes_what_rfc4515_says)
{
	expect_escape("alice", 5, "alice");
	expect_escape("*", 1, "\\2a");
	expect_escape("a*)(uid=*", 9, "a\\2a\\29\\28uid=\\2a");
	expect_escape("back\\slash", 10, "back\\5cslash");
	expect_escape("nul\0after", 9, "nul\\00after");
	expect_escape("", 0, "");
	/* UTF-8 and the rest stay as they are (RFC 4515 3: UTF1SUBSET). */
	expect_escape("j\xc3\xb6rg@example.org", 17, "j\xc3\xb6rg@example.org");
}

Test(ldap_filter, too_long_is_refused_not_cut)
{
	char	 out[8];

	cr_assert_eq(ldap_filter_escape("abcdefg", 7, out, sizeof(out)), 7);
	cr_assert_eq(ldap_filter_escape("abcdefgh", 8, out, sizeof(out)), -1);
	cr_assert_str_eq(out, "");
	/* An escape is never cut in half. */
	cr_assert_eq(ldap_filter_escape("abcde*", 6, out, sizeof(out)), -1);
	cr_assert_eq(ldap_filter_escape("abcd*", 5, out, sizeof(out)), 7);
}

Test(ldap_filter, build)
{
	char	 out[128], err[128];

	cr_assert_eq(ldap_filter_build("(&(objectClass=person)(uid=%u))",
	    "a*)(uid=*", 9, out, sizeof(out), err, sizeof(err)), 0);
	cr_assert_str_eq(out,
	    "(&(objectClass=person)(uid=a\\2a\\29\\28uid=\\2a))");
	cr_assert_eq(ldap_filter_build("(sAMAccountName=%u)(x=100%%)", "bob",
	    3, out, sizeof(out), err, sizeof(err)), 0);
	cr_assert_str_eq(out, "(sAMAccountName=bob)(x=100%)");
	cr_assert_eq(ldap_filter_build("(uid=%s)", "bob", 3, out, sizeof(out),
	    err, sizeof(err)), -1);
	cr_assert_eq(ldap_filter_build("(uid=%u)", "0123456789", 10, out, 12,
	    err, sizeof(err)), -1);
	cr_assert_str_eq(out, "");
}

/* Whatever the login, the filter keeps the template's parentheses. */
Test(ldap_filter, no_login_adds_a_parenthesis_or_a_star)
{
	char		 login[64], out[512], err[128];
	unsigned int	 seed = 1;
	size_t		 len, i, special;

	for (int n = 0; n < 20000; n++) {
		seed = seed * 1103515245 + 12345;
		len = (size_t)((seed >> 16) % sizeof(login));
		special = 0;
		for (i = 0; i < len; i++) {
			seed = seed * 1103515245 + 12345;
			login[i] = "()*\\\0a="[(seed >> 16) % 7];
			special += strchr("()*\\", login[i]) != NULL ||
			    login[i] == '\0';
		}
		cr_assert_eq(ldap_filter_build("(uid=%u)", login, len, out,
		    sizeof(out), err, sizeof(err)), 0);
		/* "(uid=" value ")": no parenthesis nor star inside */
		cr_assert_eq(strcspn(out + 5, "()*"), strlen(out) - 6,
		    "%s", out);
		cr_assert_eq(strlen(out), 6 + len + 2 * special, "%s", out);
	}
}
