/*
 * test_scheme.c -- unit tests of store/scheme.c: hashes as a directory
 * or a database stores them ("{SCHEME}hash"), made by real tools,
 * verify with the right password only, and the schemes we refuse are
 * refused, never matched.
 *
 * The fixed hashes are of "correct horse", made on Debian 12 with
 * OpenLDAP 2.5's slappasswd(8) (pw-sha2 and argon2 modules loaded for
 * the SHA-2 and ARGON2 schemes).
 */

#include <string.h>

#include <criterion/criterion.h>

#include "config.h"
#include "passwd.h"

#define PW	"correct horse"

static const char *const known[] = {
	"{SSHA}7OAL8konziL+If6qE2rvuES0H7YEAZqT",
	"{SHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
	"{SHA256}QQTTb42iwlQ0n4WDZ5Pr4CngyVcGOjTJHC6SAxh7VjE=",
	"{SSHA256}fwK58ecdW4CFhdGqFoR/UpHZwTAv2amAF/N0FP/JzAng0B0ajJMMag==",
	"{SHA512}VraY3v7bWkNbY0r+MyC7rz/c2SC2xQOkRvx7endrKY1HnRumqLYXgI6wv1ec6"
	    "aldZoNHvKtxSQhayTyyeZUZew==",
	"{SSHA512}N0Q6YfgUkLkLeCsdtQ+0+POAmokEk1puVV4xh20QuxpW56Ssmrz56wf6sTfZ"
	    "GGSCx7j1fjo93hFdD1BqIv2ppwzDf4gm8OLE",
	"{CRYPT}$6$9KQuepv/1QHFmBsc$HFdjErQ1B.1NWuW6KpYpI/k23j2.m62t7QYSo1E8IW"
	    "ASRsdkhjKCYO82spJLiiz1On.O7wH1lABQG3887TEra0",
	"{sha512-crypt}$6$9KQuepv/1QHFmBsc$HFdjErQ1B.1NWuW6KpYpI/k23j2.m62t7QY"
	    "So1E8IWASRsdkhjKCYO82spJLiiz1On.O7wH1lABQG3887TEra0",
	"{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$k4GPlisMgM32zx71sLvl+Q$5z6XB2JjO"
	    "bt9ML9i6WUfuNSwmZX/3s1wKgLFK2wNsa8",
	/* bare, as a database column may hold it */
	"$6$9KQuepv/1QHFmBsc$HFdjErQ1B.1NWuW6KpYpI/k23j2.m62t7QYSo1E8IWASRsdk"
	    "hjKCYO82spJLiiz1On.O7wH1lABQG3887TEra0",
};
#define NKNOWN	(sizeof(known) / sizeof(known[0]))

static int
verify(const char *hash, const char *pw)
{
	return passwd_verify_scheme(hash, pw, strlen(pw));
}

Test(scheme, known_hashes_match_the_right_password_only)
{
	static const char *const wrong[] = {
		"correct horsE", "correct hors", "correct horse ", "x",
	};
	size_t	 i, j;

	for (i = 0; i < NKNOWN; i++) {
		cr_expect_eq(verify(known[i], PW), 1, "%s", known[i]);
		for (j = 0; j < sizeof(wrong) / sizeof(wrong[0]); j++)
			cr_expect_eq(verify(known[i], wrong[j]), 0, "%s / %s",
			    known[i], wrong[j]);
	}
}

/* pwlen counts: a password with a NUL inside never matches. */
Test(scheme, nul_and_empty_never_match)
{
	cr_expect_eq(passwd_verify_scheme(known[0], PW "\0x",
	    sizeof(PW) + 1), 0);
	cr_expect_eq(passwd_verify_scheme(known[0], PW, sizeof(PW) - 2), 0);
	cr_expect_eq(passwd_verify_scheme(known[1], "", 0), 0);
}

#define BLF_NAMING_SHA512						\
	"{BLF-CRYPT}$6$9KQuepv/1QHFmBsc$HFdjErQ1B.1NWuW6KpYpI/k23j2.m"	\
	"62t7QYSo1E8IWASRsdkhjKCYO82spJLiiz1On.O7wH1lABQG3887TEra0"

Test(scheme, refused_schemes_and_malformed_hashes_are_minus_one)
{
	static const char *const bad[] = {
		"", "{PLAIN}correct horse", "{CLEARTEXT}correct horse",
		"{MD5}pW5TBpy4bQJhyGPs5hqrAg==", "{SSHA", "{}abc",
		"{NOSUCHSCHEME}abc",
		"{ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGH}x",
		/* a crypt scheme that names another crypt */
		BLF_NAMING_SHA512,
		"{ARGON2}$6$9KQuepv/1QHFmBsc$x",
		/* not base64, or too short for the digest */
		"{SSHA}!!!!", "{SHA}AAAA", "{SSHA}L55TUjtiq8FBorTWAZ0jy6g129A=",
		/* unsalted with a salt */
		"{SHA}7OAL8konziL+If6qE2rvuES0H7YEAZqT",
	};
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(bad[i], PW), -1, "%s", bad[i]);
	cr_expect_eq(passwd_verify_scheme(NULL, PW, strlen(PW)), -1);
}
