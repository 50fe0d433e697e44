/*
 * test_scram.c -- SCRAM-SHA-256: RFC 7677 3's exchange through our
 * key derivation (store/passwd.c), our parsers (common/scram.c) and
 * authd's proof check (authd/scram.c); and what the parsers refuse.
 */

#include <string.h>

#include <criterion/criterion.h>

#include "authd.h"
#include "base64.h"
#include "passwd.h"
#include "scram.h"
#include "store.h"

struct authd	*authd;		/* the authd files expect it (penalty.c) */

/* RFC 7677 3, user "user", password "pencil" */
#define C_FIRST	"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define S_FIRST	"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
		"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define C_FINAL	"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
		"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define S_FINAL	"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

static size_t
authmsg(const struct scram_client_first *f,
    const struct scram_client_final *fin, char *buf, size_t len)
{
	int	 n;

	n = snprintf(buf, len, "%.*s,%s,%.*s", (int)f->bare_len, f->bare,
	    S_FIRST, (int)fin->without_proof_len, C_FINAL);
	cr_assert(n > 0 && (size_t)n < len);
	return (size_t)n;
}

Test(scram, rfc7677_test_vector)
{
	struct scram_client_first	 f;
	struct scram_client_final	 fin;
	struct store_scram		 k;
	uint8_t				 salt[16], sig[32];
	char				 err[128], am[512], v[64];
	size_t				 n, amlen;

	cr_assert_eq(base64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, 0, salt,
	    sizeof(salt), &n), 0);
	cr_assert_eq(n, 16);
	cr_assert_eq(passwd_scram_keys_salt("pencil", 6, salt, n, 4096, &k,
	    err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(scram_client_first_parse((const uint8_t *)C_FIRST,
	    strlen(C_FIRST), &f), 0);
	cr_expect_eq(f.cbflag, 'n');
	cr_expect_str_eq(f.user, "user");
	cr_expect_eq(f.gs2_len, 3);
	cr_expect_eq(f.nonce_len, 20);
	cr_assert_eq(scram_client_final_parse((const uint8_t *)C_FINAL,
	    strlen(C_FINAL), &fin), 0);
	cr_expect_eq(fin.cbind_len, 4);
	cr_expect_eq(strncmp(fin.cbind, "biws", 4), 0);	/* "n,," */
	amlen = authmsg(&f, &fin, am, sizeof(am));
	cr_assert_eq(scram_proof_check(&k, (uint8_t *)am, amlen, fin.proof,
	    sig), 1);
	memcpy(v, "v=", 2);
	cr_assert_eq(base64_encode(sig, 32, v + 2, sizeof(v) - 2), 0);
	cr_expect_str_eq(v, S_FINAL);

	/* One bit of the proof, or of the AuthMessage, and it fails. */
	fin.proof[5] ^= 0x01;
	cr_expect_eq(scram_proof_check(&k, (uint8_t *)am, amlen, fin.proof,
	    sig), 0);
	fin.proof[5] ^= 0x01;
	am[3] ^= 0x20;
	cr_expect_eq(scram_proof_check(&k, (uint8_t *)am, amlen, fin.proof,
	    sig), 0);
	/* Another password, other keys. */
	cr_assert_eq(passwd_scram_keys_salt("pencil2", 7, salt, n, 4096, &k,
	    err, sizeof(err)), 0);
	am[3] ^= 0x20;
	cr_expect_eq(scram_proof_check(&k, (uint8_t *)am, amlen, fin.proof,
	    sig), 0);
}

static int
first(const char *m, struct scram_client_first *f)
{
	return scram_client_first_parse((const uint8_t *)m, strlen(m), f);
}

static int
final(const char *m, struct scram_client_final *f)
{
	return scram_client_final_parse((const uint8_t *)m, strlen(m), f);
}

Test(scram, client_first_shapes)
{
	struct scram_client_first	 f;

	cr_expect_eq(first("p=tls-exporter,,n=a,r=x", &f), 0);
	cr_expect_eq(f.cbflag, 'p');
	cr_expect_str_eq(f.cbname, "tls-exporter");
	cr_expect_eq(f.gs2_len, strlen("p=tls-exporter,,"));
	cr_expect_eq(first("y,a=bob,n=bob,r=abc,ext=1", &f), 0);
	cr_expect_str_eq(f.authzid, "bob");
	cr_expect_eq(first("n,,n=a=2Cb=3Dc,r=x", &f), 0);
	cr_expect_str_eq(f.user, "a,b=c");
	cr_expect_eq(f.bare_len, strlen("n=a=2Cb=3Dc,r=x"));

	cr_expect_eq(first("", &f), -1);
	cr_expect_eq(first("n,,", &f), -1);
	cr_expect_eq(first("x,,n=a,r=x", &f), -1);	/* flag */
	cr_expect_eq(first("p=,,n=a,r=x", &f), -1);	/* no cb-name */
	cr_expect_eq(first("p=tls_x,,n=a,r=x", &f), -1);
	cr_expect_eq(first("n,,m=ext,n=a,r=x", &f), -1);	/* m= */
	cr_expect_eq(first("n,,n=,r=x", &f), -1);	/* empty user */
	cr_expect_eq(first("n,,n=a=2x,r=x", &f), -1);	/* bad escape */
	cr_expect_eq(first("n,,n=a=", &f), -1);
	cr_expect_eq(first("n,,n=a,r=", &f), -1);	/* empty nonce */
	cr_expect_eq(first("n,,n=a,r=x y", &f), -1);	/* space */
	cr_expect_eq(first("n,,n=a,x=1", &f), -1);	/* no nonce */
	cr_expect_eq(first("n,,n=a,r=xz", &f), 0);
	cr_expect_eq(scram_client_first_parse((const uint8_t *)"n,,n=a\0,r=x",
	    11, &f), -1);
	cr_expect_eq(f.bare, NULL);
}

Test(scram, client_final_shapes)
{
	struct scram_client_final	 f;
	const char *p = "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
	char	 m[256];

	(void)snprintf(m, sizeof(m), "c=biws,r=abc,%s", p);
	cr_expect_eq(final(m, &f), 0);
	cr_expect_eq(f.without_proof_len, strlen("c=biws,r=abc"));
	(void)snprintf(m, sizeof(m), "c=biws,r=abc,x=1,%s", p);
	cr_expect_eq(final(m, &f), 0);
	cr_expect_eq(f.without_proof_len, strlen("c=biws,r=abc,x=1"));

	(void)snprintf(m, sizeof(m), "c=biws,r=abc");
	cr_expect_eq(final(m, &f), -1);			/* no proof */
	(void)snprintf(m, sizeof(m), "c=bi!s,r=abc,%s", p);
	cr_expect_eq(final(m, &f), -1);			/* bad base64 */
	(void)snprintf(m, sizeof(m), "r=abc,c=biws,%s", p);
	cr_expect_eq(final(m, &f), -1);			/* order */
	(void)snprintf(m, sizeof(m), "c=biws,r=abc,p=AAAA");
	cr_expect_eq(final(m, &f), -1);			/* short proof */
	(void)snprintf(m, sizeof(m), "c=biws,r=abc,%s,x=1", p);
	cr_expect_eq(final(m, &f), -1);			/* after the proof */
	(void)snprintf(m, sizeof(m), "c=biws,%s", p);
	cr_expect_eq(final(m, &f), -1);			/* no nonce */
}
