/*
 * checkers.c -- the types of checker authd knows, in one table.
 *
 * A new type is a checker_TYPE.c with its struct checker_ops, one line
 * here, and its CHECKER_* in config.h and parse.y; chain.c does not
 * change.  Twisted's checkers registered themselves by the interfaces
 * they verify; ours say so in ops->kinds.
 */

#include <stddef.h>

#include "chain.h"
#include "hashpool.h"
#include "mech.h"

#define CHECKER_TYPES_MAX	16

static struct {
	enum checker_type		 type;
	const struct checker_ops	*ops;
} types[CHECKER_TYPES_MAX] = {
	{ CHECKER_LMDB,		&checker_lmdb_ops },
	{ CHECKER_STATIC,	&checker_static_ops },
	{ CHECKER_OAUTH,	&checker_oauth_ops },
	{ CHECKER_CACHE,	&checker_cache_ops },
	{ CHECKER_LDAP,		&checker_ldap_ops },
	{ CHECKER_SQL,		&checker_sql_ops },
};

const struct checker_ops *
checker_ops_of(enum checker_type type)
{
	for (size_t i = 0; i < CHECKER_TYPES_MAX && types[i].ops != NULL; i++)
		if (types[i].type == type)
			return types[i].ops;
	return NULL;
}

/* What a configured checker verifies: as configured, or all it can. */
uint32_t
checker_conf_mechanisms(const struct checker_conf *cc)
{
	const struct checker_ops	*ops;

	if (cc->mechanisms != 0)
		return cc->mechanisms;
	if ((ops = checker_ops_of(cc->type)) == NULL)
		return 0;
	return mech_of_kinds(ops->kinds);
}

/*
 * A type added at run time (the tests' dummy checkers); a type
 * registered twice takes the last ops.  0, or -1 when the table is full.
 */
int
checker_register(enum checker_type type, const struct checker_ops *ops)
{
	size_t	 i;

	for (i = 0; i < CHECKER_TYPES_MAX && types[i].ops != NULL; i++)
		if (types[i].type == type)
			break;
	if (i == CHECKER_TYPES_MAX)
		return -1;
	types[i].type = type;
	types[i].ops = ops;
	return 0;
}

/* ---- the hash pool, for the checkers that verify locally ---- */

static void
pool_work(void *arg)
{
	struct auth_ctx	*ctx = arg;

	ctx->current->ops->verify(ctx->current, ctx);
}

static void
pool_done(void *arg)
{
	chain_checker_done(arg);
}

/* A local check may take a hash's time: never on the loop. */
void
checker_pool_start(struct checker *c, struct auth_ctx *ctx)
{
	(void)c;
	hashpool_submit(pool_work, pool_done, ctx);
}
