/*
 * scope.h -- OAuth 2.0 scopes (RFC 6749 3.3): what one is, and whether
 * a granted scope holds the ones required.
 */
#ifndef PORTCULLIS_SCOPE_H
#define PORTCULLIS_SCOPE_H

#include <stddef.h>

/*
 * scope = scope-token *( SP scope-token ), scope-token = 1*NQCHAR
 * without blanks: 1*( %x21 / %x23-5B / %x5D-7E ).  1 if s is one.
 */
int	scope_valid(const char *s);

/* 1 if s is one scope-token (no space at all). */
int	scope_token_valid(const char *s);

/*
 * The next space-separated word of *p (its length in *len), *p moved
 * past it; NULL when none is left.  Runs of spaces are skipped, as a
 * provider's scope may have them.
 */
const char *scope_next(const char **p, size_t *len);

/* 1 if tok (len octets) is one of the words of granted, whole. */
int	scope_has_token(const char *granted, const char *tok, size_t len);

/*
 * 1 if granted holds every word of required as a whole word ("smtpx"
 * is no "smtp"); an empty required is always held.
 */
int	scope_contains(const char *granted, const char *required);

#endif /* PORTCULLIS_SCOPE_H */
