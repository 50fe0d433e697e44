/*
 * request.c -- the checks authd makes on an IMSG_AUTH_REQUEST before
 * anything else reads it.
 *
 * A worker may be compromised: the payload's length, the mechanism
 * and the shape of the credential are checked here, and a request
 * that fails any check is refused as a whole (authd then closes that
 * worker's channel).  What passes points into the imsg, with every
 * length known, so that nothing after this reads past the frame.
 * Pure: no state, no I/O, no logging, so that the fuzzers reach it
 * with the frame as it came off the channel.
 */

#include <string.h>

#include "authd.h"
#include "config.h"
#include "proto.h"
#include "sasl_plain.h"

/*
 * authd's bounds for PLAIN (and LOGIN, which the worker sends in the
 * same form): the worker's are stricter, but a worker is not trusted.
 * The frame bounds the whole (AUTH_CRED_MAX); the user must fit a
 * user name.
 */
static const struct sasl_plain_bounds plain_bounds = {
	.authzid_max = AUTH_CRED_MAX,
	.authcid_max = CONF_AUTH_NAME_MAX - 1,
	.passwd_max = AUTH_CRED_MAX,
};

/*
 * Password mechanisms: "authzid NUL authcid NUL password" (RFC 4616
 * 2), the authcid and the password not empty, no NUL in the password.
 * Token mechanisms: "user NUL token", the user possibly empty (the
 * client named none), the token RFC 6750 2.1 b64token octets, which
 * the worker checked already.
 */
int
auth_request_decode(struct imsg *imsg, struct auth_request *req,
    struct auth_cred *cred)
{
	struct ibuf	 ibuf;
	struct sasl_plain plain;
	const uint8_t	*p, *nul1;
	size_t		 len;

	memset(cred, 0, sizeof(*cred));
	if (imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, req, sizeof(*req)) == -1)
		return -1;
	len = ibuf_size(&ibuf);
	p = ibuf_data(&ibuf);
	if (req->cred_len != len || len > AUTH_CRED_MAX ||
	    (req->mechanism != SASL_PLAIN && req->mechanism != SASL_LOGIN &&
	    req->mechanism != SASL_XOAUTH2 &&
	    req->mechanism != SASL_OAUTHBEARER))
		return -1;
	req->client[sizeof(req->client) - 1] = '\0';
	req->listener[sizeof(req->listener) - 1] = '\0';

	if (req->mechanism & SASL_TOKEN_MECHS) {
		if ((nul1 = memchr(p, '\0', len)) == NULL)
			return -1;
		cred->user = p;
		cred->user_len = (size_t)(nul1 - p);
		cred->secret = nul1 + 1;
		cred->secret_len = len - cred->user_len - 1;
		if (cred->user_len >= CONF_AUTH_NAME_MAX ||
		    cred->secret_len == 0)
			return -1;
		for (size_t i = 0; i < cred->secret_len; i++)
			if (cred->secret[i] <= ' ' || cred->secret[i] >= 0x7f)
				return -1;
		return 0;
	}

	if (sasl_plain_split(p, len, &plain_bounds, &plain) == -1)
		return -1;
	cred->authzid = plain.authzid;
	cred->authzid_len = plain.authzid_len;
	cred->user = plain.authcid;
	cred->user_len = plain.authcid_len;
	cred->secret = plain.passwd;
	cred->secret_len = plain.passwd_len;
	return 0;
}
