/*
 * ldap_filter.h -- a login put into an LDAP search filter, escaped so
 * that it can only ever be one assertion value (RFC 4515 3).
 */
#ifndef PORTCULLIS_LDAP_FILTER_H
#define PORTCULLIS_LDAP_FILTER_H

#include <stddef.h>

/*
 * in (len octets, NULs allowed) escaped into out (outlen octets, NUL
 * ended): '*', '(', ')', '\' and NUL as \2a \28 \29 \5c \00, every
 * other octet as it is.  The length written, or -1 when out is too
 * short (out is then "").
 */
int	ldap_filter_escape(const char *in, size_t len, char *out,
	    size_t outlen);

/*
 * The template tmpl with each "%u" replaced by the escaped login and
 * "%%" by "%": into out (outlen octets).  0, or -1 with err (a
 * template with another '%' sequence, or a result too long).
 */
int	ldap_filter_build(const char *tmpl, const char *login, size_t len,
	    char *out, size_t outlen, char *err, size_t errlen);

#endif /* PORTCULLIS_LDAP_FILTER_H */
