/*
 * checker_static.c -- users listed in the configuration file.
 *
 * For tests and demos only, as portcullis.conf(5) says: the
 * counterpart of Twisted's in-memory checker.  A password may be a
 * crypt(3) or argon2id hash, or plain text compared in constant time.
 * An unknown user costs a verification of the dummy hash, like a
 * known one.
 */

#include <string.h>

#include <openssl/crypto.h>

#include "chain.h"
#include "passwd.h"

static int
plain_equal(const char *stored, const char *given, size_t len)
{
	size_t	 slen = strlen(stored);

	/* Compare over the stored length whatever was given. */
	return slen == len && CRYPTO_memcmp(stored, given, len) == 0;
}

static void
static_verify(struct checker *c, struct auth_ctx *ctx)
{
	struct static_user	*u;
	int			 hashed = 0;

	TAILQ_FOREACH(u, &c->pconf->static_users, entry) {
		if (strcmp(u->checker, c->conf->name) != 0)
			continue;
		hashed |= u->password[0] == '$';
		if (strcmp(u->name, ctx->user) != 0)
			continue;
		if (u->password[0] == '$') {
			switch (passwd_verify(u->password, ctx->password,
			    ctx->pwlen)) {
			case 1:
				ctx->result = AUTH_OK;
				break;
			case 0:
				ctx->result = AUTH_FAIL;
				break;
			default:
				ctx->result = AUTH_TEMPFAIL;
				ctx->why = "unusable hash";
			}
		} else
			ctx->result = plain_equal(u->password, ctx->password,
			    ctx->pwlen) ? AUTH_OK : AUTH_FAIL;
		if (ctx->result == AUTH_OK)
			strlcpy(ctx->canonical, u->name,
			    sizeof(ctx->canonical));
		return;
	}
	/* Cost what a known user of this checker would have cost. */
	if (hashed)
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
	else
		(void)plain_equal("portcullis-dummy", ctx->password,
		    ctx->pwlen);
	ctx->result = AUTH_FAIL;
	ctx->why = "unknown user";
}

static int
static_init(struct checker *c, struct portcullis_conf *conf)
{
	c->pconf = conf;
	return 0;
}

const struct checker_ops checker_static_ops = {
	.name = "static",
	.kinds = CRED_PASSWORD,
	.cacheable = 0,
	.init = static_init,
	.start = checker_pool_start,
	.verify = static_verify,
};
