/*
 * pgarray.h -- reading a PostgreSQL text[] value as libpq gives it.
 */
#ifndef PORTCULLIS_PGARRAY_H
#define PORTCULLIS_PGARRAY_H

#include <stddef.h>

/*
 * Call each(element, arg) for every non-null element of the array s
 * ("{a,b,\"c d\"}"), each copied into buf (len octets, NUL-ended).
 * 0 when s was read whole; -1 when it is malformed, nested, an
 * element does not fit buf, or each() said -1.  Elements before the
 * problem may have been given to each() already.
 */
int	pgarray_each(const char *s, char *buf, size_t len,
	    int (*each)(const char *, void *), void *arg);

#endif /* PORTCULLIS_PGARRAY_H */
