/*
 * sasl_plain.h -- the PLAIN message (RFC 4616 2), for both sides: the
 * worker checks it before anything goes to authd, and authd again,
 * since it must not trust a worker.  Each states its own bounds.
 */
#ifndef PORTCULLIS_SASL_PLAIN_H
#define PORTCULLIS_SASL_PLAIN_H

#include <stddef.h>
#include <stdint.h>

struct sasl_plain {
	const uint8_t	*authzid;	/* may be empty */
	size_t		 authzid_len;
	const uint8_t	*authcid;
	size_t		 authcid_len;
	const uint8_t	*passwd;
	size_t		 passwd_len;
};

/* The longest each part may be, in octets. */
struct sasl_plain_bounds {
	size_t		 authzid_max;
	size_t		 authcid_max;
	size_t		 passwd_max;
};

/*
 * message = [authzid] NUL authcid NUL passwd: 0 with p pointing into
 * msg, or -1 when it is not one (a third NUL, an empty authcid or
 * passwd) or a part is longer than its bound.
 */
int	sasl_plain_split(const uint8_t *msg, size_t len,
	    const struct sasl_plain_bounds *, struct sasl_plain *p);

#endif /* PORTCULLIS_SASL_PLAIN_H */
