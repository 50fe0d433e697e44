/*
 * opensmtpd_tls_shim.c -- LD_PRELOAD library that lets Debian 12's
 * OpenSMTPD 6.8 complete TLS handshakes under OpenSSL 3, for the
 * benchmark's peer (opensmtpd.sh).  Not part of portcullis.
 *
 * OpenSMTPD's network process never holds the private key.  It loads the
 * certificate's public key, marks the legacy RSA or EC_KEY inside it
 * (ex_data index 0) and installs RSA/ECDSA methods that send marked keys'
 * signatures to its "ca" process.  Under OpenSSL 3 EVP_PKEY_get1_RSA()
 * and EVP_PKEY_get1_EC_KEY() return a cached legacy copy: the mark lands
 * on that copy, while SSL_CTX_use_PrivateKey() takes the provider key,
 * which has no private half, and every handshake fails ("missing private
 * key").  Handing libssl a new legacy EVP_PKEY around the marked key
 * routes the signatures through OpenSMTPD's methods, as it intends.
 * Keys without the mark (any other caller) pass through untouched.
 */

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stddef.h>

#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/ssl.h>

int	SSL_CTX_use_PrivateKey(SSL_CTX *, EVP_PKEY *);

typedef int (*use_pkey_fn)(SSL_CTX *, EVP_PKEY *);

/* A legacy EVP_PKEY around pkey's marked key, or NULL if not marked. */
static EVP_PKEY *
marked_legacy(EVP_PKEY *pkey)
{
	EVP_PKEY	*fresh = NULL;
	RSA		*rsa;
	EC_KEY		*ec;
	int		 ok = 0;

	switch (EVP_PKEY_get_base_id(pkey)) {
	case EVP_PKEY_RSA:
		rsa = (RSA *)EVP_PKEY_get0_RSA(pkey);
		if (rsa == NULL || RSA_get_ex_data(rsa, 0) == NULL)
			return NULL;
		if ((fresh = EVP_PKEY_new()) != NULL)
			ok = EVP_PKEY_set1_RSA(fresh, rsa);
		break;
	case EVP_PKEY_EC:
		ec = (EC_KEY *)EVP_PKEY_get0_EC_KEY(pkey);
		if (ec == NULL || EC_KEY_get_ex_data(ec, 0) == NULL)
			return NULL;
		if ((fresh = EVP_PKEY_new()) != NULL)
			ok = EVP_PKEY_set1_EC_KEY(fresh, ec);
		break;
	default:
		return NULL;
	}
	if (!ok) {
		EVP_PKEY_free(fresh);
		return NULL;
	}
	return fresh;
}

int
SSL_CTX_use_PrivateKey(SSL_CTX *ctx, EVP_PKEY *pkey)
{
	static use_pkey_fn	 real;
	EVP_PKEY		*fresh;
	int			 r;

	if (real == NULL &&
	    (real = (use_pkey_fn)dlsym(RTLD_NEXT,
	    "SSL_CTX_use_PrivateKey")) == NULL)
		return 0;
	if (pkey == NULL || (fresh = marked_legacy(pkey)) == NULL)
		return real(ctx, pkey);
	/* The context takes its own reference. */
	r = real(ctx, fresh);
	EVP_PKEY_free(fresh);
	return r;
}
