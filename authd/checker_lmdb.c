/*
 * checker_lmdb.c -- users in the local LMDB store.
 *
 * Runs on the hash pool: LMDB reads are safe from any thread with
 * MDB_NOTLS.  A locked user fails (and the log says locked); an unknown
 * user is verified against the dummy hash, so that the time to refuse
 * does not tell who exists.  A store that cannot be read is a
 * tempfail, not a wrong password.
 */

#include <string.h>

#include "chain.h"
#include "log.h"
#include "passwd.h"
#include "store.h"

static void
lmdb_verify(struct checker *c, struct auth_ctx *ctx)
{
	struct store_user	 u;
	char			 err[256];

	if (c->store == NULL) {
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "store not open";
		return;
	}
	switch (store_user_get(c->store, ctx->user, &u, err, sizeof(err))) {
	case 1:
		break;
	case 0:
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
		ctx->result = AUTH_FAIL;
		ctx->why = "unknown user";
		return;
	default:
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "store error";
		return;
	}
	if (u.hash[0] == '\0') {
		/* No password login for this user (e.g. OAuth only). */
		(void)passwd_verify(passwd_dummy_hash(), ctx->password,
		    ctx->pwlen);
		ctx->result = AUTH_FAIL;
		ctx->why = "no password set";
		explicit_bzero(&u, sizeof(u));
		return;
	}
	switch (passwd_verify(u.hash, ctx->password, ctx->pwlen)) {
	case 1:
		if (u.locked) {
			ctx->result = AUTH_FAIL;
			ctx->why = "locked";
			break;
		}
		ctx->result = AUTH_OK;
		strlcpy(ctx->canonical, u.name, sizeof(ctx->canonical));
		break;
	case 0:
		ctx->result = AUTH_FAIL;
		ctx->why = u.locked ? "locked" : "wrong password";
		break;
	default:
		ctx->result = AUTH_TEMPFAIL;
		ctx->why = "unusable hash";
	}
	explicit_bzero(&u, sizeof(u));
}

static int
lmdb_init(struct checker *c, struct portcullis_conf *conf)
{
	(void)conf;
	if ((c->store = chain_store(c->conf->path)) == NULL)
		log_warnx("checker %s: its logins fail temporarily",
		    c->conf->name);
	return 0;
}

const struct checker_ops checker_lmdb_ops = {
	.name = "lmdb",
	.kinds = CRED_PASSWORD | CRED_SCRAM,	/* SCRAM: authd/scram.c */
	.cacheable = 0,		/* a local store needs no cache */
	.init = lmdb_init,
	.start = checker_pool_start,
	.verify = lmdb_verify,
};
