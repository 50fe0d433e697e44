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
	const uint8_t	*p, *nul1, *nul2;
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

	if ((nul1 = memchr(p, '\0', len)) == NULL ||
	    (nul2 = memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - p))) ==
	    NULL)
		return -1;
	cred->authzid = p;
	cred->authzid_len = (size_t)(nul1 - p);
	cred->user = nul1 + 1;
	cred->user_len = (size_t)(nul2 - nul1 - 1);
	cred->secret = nul2 + 1;
	cred->secret_len = len - (size_t)(nul2 + 1 - p);
	if (cred->user_len == 0 || cred->user_len >= CONF_AUTH_NAME_MAX ||
	    cred->secret_len == 0 ||
	    memchr(cred->secret, '\0', cred->secret_len) != NULL)
		return -1;
	return 0;
}
