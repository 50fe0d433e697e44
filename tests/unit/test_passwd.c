/*
 * test_passwd.c -- unit tests of store/passwd.c: hashes made by other
 * tools verify, hashes made here verify, nothing else does, and an
 * unknown user costs what a known one does.
 *
 * The fixed hashes are of "correct horse", made on Debian 12 with
 * mkpasswd(1) (package whois: yescrypt, bcrypt, sha512crypt), with
 * Python 3.11's crypt module (bcrypt cost 6, sha512, md5crypt) and
 * with the argon2(1) command line tool (package argon2).
 */

#include <sys/types.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "config.h"
#include "passwd.h"

#define PW	"correct horse"

static const char *const known[] = {
	/* mkpasswd -m yescrypt */
	"$y$j9T$v.nwUzwmunVQ3queMYDrU/$"
	    "i1r3D9OZEYBaVFyq8T2XnITUlMWQbsDFQqoZnB1b9u0",
	/* mkpasswd -m bcrypt (cost 5) */
	"$2b$05$CNpkzuv0F8GSMEE56047we6B2WzKA5RkJr65gAAdyav4yGb18B2EW",
	/* Python crypt, METHOD_BLOWFISH, rounds 64 */
	"$2b$06$9FHTCDqzBxUxEOd.Br/5T.LATDwVhTkWqVSkekpPUjsVb6SznyP4e",
	/* mkpasswd -m sha512crypt */
	"$6$Wn0JmoiIE3kyZCqD$pxnLcoMgt4QkdEkHWBEAsRX5eFpqW1QRGNbLLlchzgl."
	    "0AKWfM5NenxOBgTYq.w.xkCviwR1izYdeaqO5CbeZ1",
	/* mkpasswd -m sha512crypt -R 1000 */
	"$6$rounds=1000$wyQ8HE5n/DHkrczE$UWuyuKUDMNcRLRwToeu8K7Hh/wGZVPyA9"
	    "CGHC6roHsbThXvNTpupzFeCIN6LJ5bzzwf.o9vRNasOf6a23aEer.",
	/* Python crypt, METHOD_SHA512 */
	"$6$WW/7UYvAdm6c/Urg$eS2yMgMJ.XZkdRALvZOCPyaE3u4X.tum4RL539KuUW/"
	    "eOaCi02kN7xxLN1gONw1320LpeSheFzpHbsMOpReCl1",
	/* Python crypt, md5crypt: "whatever else libcrypt verifies" */
	"$1$abcdefgh$y6iHhJNbuC0xpbk0w9pm80",
	/* argon2 saltysaltysalt16 -id -k 19456 -t 2 -p 1 -e */
	"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
	    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
	/* argon2 somesaltsomesalt -id -m 14 -t 2 -p 1 -e */
	"$argon2id$v=19$m=16384,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$"
	    "35mprqYvNcyCctp8/a+IOdumBgR2FyrE67ux6FZbd64",
	/* argon2 saltysaltysalt16 -id -m 12 -t 1 -p 4 -e */
	"$argon2id$v=19$m=4096,t=1,p=4$c2FsdHlzYWx0eXNhbHQxNg$"
	    "rwIC7EHkEWmxHAEzbGuXUhQtW4ZEIYa7Oid/494ns5M",
	/* argon2 saltysaltysalt16 -i -m 12 -t 3 -p 1 -e */
	"$argon2i$v=19$m=4096,t=3,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
	    "cq4TZKkpg4hq048/c7kAR4eFPbQhwmR2/Y5c+onTGi8",
};
#define NKNOWN	(sizeof(known) / sizeof(known[0]))

/* mkpasswd -m yescrypt of "pässwörd" in UTF-8 */
static const char utf8_hash[] =
    "$y$j9T$.Xxdf2OiApCC1QysmWvGF/$"
    "JpNQuUXlfnGHOTliJcRw4UVdpb9a.9.6x16qyf9GhvB";

static int
verify(const char *hash, const char *pw)
{
	return passwd_verify(hash, pw, strlen(pw));
}

Test(passwd, known_hashes_match_the_right_password)
{
	size_t	 i;

	for (i = 0; i < NKNOWN; i++)
		cr_expect_eq(verify(known[i], PW), 1, "%s", known[i]);
	cr_expect_eq(verify(utf8_hash, "p\xc3\xa4ssw\xc3\xb6rd"), 1);
	cr_expect_eq(verify(utf8_hash, "passw\xc3\xb6rd"), 0);
}

Test(passwd, known_hashes_refuse_wrong_passwords)
{
	static const char *const wrong[] = {
		"correct horsE", "correct hors", "correct horse ",
		"Correct horse", "x", "correct horsecorrect horse",
	};
	size_t	 i, j;

	for (i = 0; i < NKNOWN; i++)
		for (j = 0; j < sizeof(wrong) / sizeof(wrong[0]); j++)
			cr_expect_eq(verify(known[i], wrong[j]), 0, "%s / %s",
			    known[i], wrong[j]);
}

/* pwlen counts, not a NUL: the password need not be terminated. */
Test(passwd, password_length_is_honoured)
{
	const char	*buf = PW "XYZ";
	size_t		 i;

	for (i = 0; i < NKNOWN; i++) {
		cr_expect_eq(passwd_verify(known[i], buf, strlen(PW)), 1,
		    "%s", known[i]);
		cr_expect_eq(passwd_verify(known[i], buf, strlen(PW) - 1), 0,
		    "%s", known[i]);
	}
}

Test(passwd, empty_password_never_matches)
{
	char	 err[256];
	char	*h;
	size_t	 i;

	for (i = 0; i < NKNOWN; i++) {
		cr_expect_eq(passwd_verify(known[i], "", 0), 0);
		cr_expect_eq(passwd_verify(known[i], PW, 0), 0);
		cr_expect_eq(passwd_verify(known[i], NULL, 0), 0);
	}
	/* Not even against a hash of the empty string made elsewhere. */
	cr_expect_eq(verify("$6$saltsalt$qkTgsCrWMTAS9gBGcf9W60sFfH.hU0o"
	    "TCAOJjhbz5tSp/sU3/xXZK4OFwCtq8lIIdpJ6CatVdOTSHKp97TPkt/", ""),
	    0);
	h = passwd_hash(NULL, "", 0, err, sizeof(err));
	cr_expect_null(h);
	cr_expect_str_eq(err, "empty password");
}

Test(passwd, nul_inside_never_matches)
{
	char	 pw[sizeof(PW) + 2];
	char	 err[256];
	size_t	 i;

	/* "correct horse\0x" and "correct horse\0" */
	memcpy(pw, PW, sizeof(PW));
	pw[sizeof(PW)] = 'x';
	for (i = 0; i < NKNOWN; i++) {
		cr_expect_eq(passwd_verify(known[i], pw, sizeof(PW) + 1), 0,
		    "%s", known[i]);
		cr_expect_eq(passwd_verify(known[i], pw, sizeof(PW)), 0,
		    "%s", known[i]);
	}
	cr_expect_null(passwd_hash("sha512", pw, sizeof(PW) + 1, err,
	    sizeof(err)));
	cr_expect_str_eq(err, "password contains a NUL octet");
	cr_expect_null(passwd_hash("argon2id", pw, sizeof(PW) + 1, err,
	    sizeof(err)));
}

Test(passwd, overlong_password)
{
	char	 pw[PASSWD_MAX + 1];
	char	 err[256];
	char	*h;

	memset(pw, 'a', sizeof(pw));
	h = passwd_hash("sha512", pw, PASSWD_MAX, err, sizeof(err));
	cr_assert_not_null(h, "%s", err);
	cr_expect_eq(passwd_verify(h, pw, PASSWD_MAX), 1);
	/* One more octet never matches, even with a matching prefix. */
	cr_expect_eq(passwd_verify(h, pw, PASSWD_MAX + 1), 0);
	free(h);
	cr_expect_null(passwd_hash("sha512", pw, PASSWD_MAX + 1, err,
	    sizeof(err)));
	cr_expect_str_eq(err, "password longer than 511 octets");
}

Test(passwd, malformed_hashes_are_minus_one)
{
	static const char *const bad[] = {
		"", "x", "garbage", "*", "!", "*0", "$", "$6$", "$y$",
		"$y$j9T$", "$2b$", "$2b$99$CNpkzuv0F8GSMEE56047we",
		"$7$", "$zz$abc$def",
		/* a locked shadow(5) entry */
		"!$6$Wn0JmoiIE3kyZCqD$pxnLcoMgt4QkdEkHWBEAsRX5eFpqW1QRGNbLL"
		    "lchzgl.0AKWfM5NenxOBgTYq.w.xkCviwR1izYdeaqO5CbeZ1",
		/* trailing garbage after a good hash */
		"$6$Wn0JmoiIE3kyZCqD$pxnLcoMgt4QkdEkHWBEAsRX5eFpqW1QRGNbLL"
		    "lchzgl.0AKWfM5NenxOBgTYq.w.xkCviwR1izYdeaqO5CbeZ1x",
		"$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$",
		"$argon2id$v=19$m=19456,t=2,p=1$!!!$!!!",
		"$argon2id$v=20$m=19456,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=19456,t=2$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		/* argon2d is not for passwords */
		"$argon2d$v=19$m=4096,t=3,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "cq4TZKkpg4hq048/c7kAR4eFPbQhwmR2/Y5c+onTGi8",
		/* dearer than PASSWD_ARGON2_*_MAX: refused, not run */
		"$argon2id$v=19$m=4294967295,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=1048577,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=19456,t=100000,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=19456,t=2,p=255$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
		"$argon2id$v=19$m=99999999999,t=2,p=1$c2FsdHlzYWx0eXNhbHQxNg$"
		    "WGJKctcZwEbkGSw4AcwRugZ+tnIcq9/cItVV2B8Az5Y",
	};
	char	 longhash[CONF_HASH_MAX + 10];
	size_t	 i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(verify(bad[i], PW), -1, "\"%s\"", bad[i]);
	cr_expect_eq(passwd_verify(NULL, PW, strlen(PW)), -1);

	/* Longer than any stored hash can be. */
	memset(longhash, 'a', sizeof(longhash) - 1);
	memcpy(longhash, "$6$", 3);
	longhash[sizeof(longhash) - 1] = '\0';
	cr_expect_eq(verify(longhash, PW), -1);
}

/* A truncated or altered good hash never matches. */
Test(passwd, damaged_hashes_never_match)
{
	char	 h[CONF_HASH_MAX];
	size_t	 i, len;

	for (i = 0; i < NKNOWN; i++) {
		len = strlcpy(h, known[i], sizeof(h));
		h[len - 1] = '\0';
		cr_expect_neq(verify(h, PW), 1, "%s", h);
		(void)strlcpy(h, known[i], sizeof(h));
		h[len - 2] = h[len - 2] == 'A' ? 'B' : 'A';
		cr_expect_neq(verify(h, PW), 1, "%s", h);
	}
}

static void
roundtrip(const char *scheme, const char *prefix)
{
	char	 err[256];
	char	*h1, *h2;

	h1 = passwd_hash(scheme, PW, strlen(PW), err, sizeof(err));
	cr_assert_not_null(h1, "%s: %s", scheme, err);
	h2 = passwd_hash(scheme, PW, strlen(PW), err, sizeof(err));
	cr_assert_not_null(h2, "%s: %s", scheme, err);
	cr_expect_eq(strncmp(h1, prefix, strlen(prefix)), 0, "%s", h1);
	cr_expect_lt(strlen(h1), CONF_HASH_MAX);
	cr_expect_str_neq(h1, h2, "the same salt twice");
	cr_expect_eq(verify(h1, PW), 1, "%s", h1);
	cr_expect_eq(verify(h2, PW), 1, "%s", h2);
	cr_expect_eq(verify(h1, "correct horsE"), 0);
	cr_expect_eq(verify(h1, "correct hors"), 0);
	cr_expect_eq(verify(h1, "p\xc3\xa4ssw\xc3\xb6rd"), 0);
	free(h1);
	free(h2);

	h1 = passwd_hash(scheme, "p\xc3\xa4ssw\xc3\xb6rd", 10, err,
	    sizeof(err));
	cr_assert_not_null(h1, "%s: %s", scheme, err);
	cr_expect_eq(verify(h1, "p\xc3\xa4ssw\xc3\xb6rd"), 1);
	cr_expect_eq(verify(h1, "passw\xc3\xb6rd"), 0);
	free(h1);
}

Test(passwd, roundtrip_yescrypt)
{
	roundtrip("yescrypt", "$y$j9T$");
}

Test(passwd, roundtrip_default_is_yescrypt)
{
	cr_expect_str_eq(passwd_default_scheme(), "yescrypt");
	roundtrip(NULL, "$y$");
}

Test(passwd, roundtrip_bcrypt)
{
	roundtrip("bcrypt", "$2b$10$");
}

Test(passwd, roundtrip_sha512)
{
	roundtrip("sha512", "$6$");
}

Test(passwd, roundtrip_argon2id)
{
	roundtrip("argon2id", "$argon2id$v=19$m=19456,t=2,p=1$");
}

Test(passwd, schemes)
{
	char	 err[256];

	cr_expect_eq(passwd_scheme_known("yescrypt"), 1);
	cr_expect_eq(passwd_scheme_known("bcrypt"), 1);
	cr_expect_eq(passwd_scheme_known("sha512"), 1);
	cr_expect_eq(passwd_scheme_known("argon2id"), 1);
	cr_expect_eq(passwd_scheme_known("md5"), 0);
	cr_expect_eq(passwd_scheme_known("YESCRYPT"), 0);
	cr_expect_eq(passwd_scheme_known(""), 0);
	cr_expect_eq(passwd_scheme_known(NULL), 0);
	cr_expect_null(passwd_hash("md5", PW, strlen(PW), err, sizeof(err)));
	cr_expect_str_eq(err, "unknown password scheme \"md5\" "
	    "(yescrypt, bcrypt, sha512, argon2id)");
	/* err may be NULL or tiny. */
	cr_expect_null(passwd_hash("md5", PW, strlen(PW), NULL, 0));
	cr_expect_null(passwd_hash("md5", PW, strlen(PW), err, 4));
	cr_expect_str_eq(err, "unk");
}

Test(passwd, dummy_hash_matches_nothing_and_is_stable)
{
	const char	*d1, *d2;
	char		 copy[CONF_HASH_MAX];

	d1 = passwd_dummy_hash();
	cr_assert_not_null(d1);
	cr_expect_eq(strncmp(d1, "$y$j9T$", 7), 0, "%s", d1);
	(void)strlcpy(copy, d1, sizeof(copy));
	cr_expect_eq(verify(d1, PW), 0);
	cr_expect_eq(verify(d1, "x"), 0);
	cr_expect_eq(verify(d1, "password"), 0);
	d2 = passwd_dummy_hash();
	cr_expect_eq(d1, d2);
	cr_expect_str_eq(d2, copy);
}

static double
seconds_of_verify(const char *hash)
{
	struct timespec	 t0, t1;
	double		 best = 1e9, s;
	int		 i;

	for (i = 0; i < 3; i++) {
		cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &t0), 0);
		cr_assert_eq(verify(hash, "not the password"), 0);
		cr_assert_eq(clock_gettime(CLOCK_MONOTONIC, &t1), 0);
		s = (double)(t1.tv_sec - t0.tv_sec) +
		    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
		if (s < best)
			best = s;
	}
	return best;
}

/*
 * An unknown user (the dummy) costs the same order of time as a known
 * one with a default yescrypt hash: within 3x either way, on the best
 * of three runs each, so that a busy machine does not make it flaky.
 */
Test(passwd, dummy_costs_what_a_real_hash_costs)
{
	char		 err[256];
	char		*real;
	double		 td, tr;

	real = passwd_hash("yescrypt", PW, strlen(PW), err, sizeof(err));
	cr_assert_not_null(real, "%s", err);
	(void)passwd_dummy_hash();	/* made once, not timed */
	td = seconds_of_verify(passwd_dummy_hash());
	tr = seconds_of_verify(real);
	cr_expect(td < 3 * tr && tr < 3 * td,
	    "dummy %.1f ms, real %.1f ms", td * 1e3, tr * 1e3);
	/* The mkpasswd hash, made elsewhere, costs the same too. */
	tr = seconds_of_verify(known[0]);
	cr_expect(td < 3 * tr && tr < 3 * td,
	    "dummy %.1f ms, mkpasswd %.1f ms", td * 1e3, tr * 1e3);
	free(real);
}

#define NTHREADS	4

struct job {
	const char	*hash;
	const char	*dummy;
	int		 right, wrong;
};

static void *
worker(void *arg)
{
	struct job	*j = arg;

	j->dummy = passwd_dummy_hash();
	j->right = verify(j->hash, PW);
	j->wrong = verify(j->hash, "wrong");
	return NULL;
}

/* The first call of passwd_dummy_hash() races in four threads. */
Test(passwd, thread_safe)
{
	const char	*hashes[NTHREADS] = {
		known[0], known[1], known[3], known[7],
	};
	pthread_t	 t[NTHREADS];
	struct job	 j[NTHREADS];
	int		 i;

	for (i = 0; i < NTHREADS; i++) {
		memset(&j[i], 0, sizeof(j[i]));
		j[i].hash = hashes[i];
		cr_assert_eq(pthread_create(&t[i], NULL, worker, &j[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_join(t[i], NULL), 0);
	for (i = 0; i < NTHREADS; i++) {
		cr_expect_eq(j[i].right, 1, "%s", j[i].hash);
		cr_expect_eq(j[i].wrong, 0, "%s", j[i].hash);
		cr_expect_eq(j[i].dummy, j[0].dummy);
	}
	cr_expect_eq(strncmp(j[0].dummy, "$y$", 3), 0);
}
