/*
 * smtp_cmd.h -- the table of SMTP commands (RFC 5321 4.1) that
 * smtp_command() dispatches through, exported for the unit tests.
 *
 * A command line is judged in this order, and the first check that
 * fails gives the reply (an error, counted against max-errors):
 *
 *	line longer than SMTP_LINE_MAX, unless CMD_LONG_LINE	500
 *	verb not in the table					500
 *	CMD_NOT_IMPLEMENTED					502
 *	gate(), if any						its reply
 *	the argument, if CMD_SYNTAX_FIRST			bad_arg
 *	the session state not in states				refuse[state]
 *	policy(), if any					its reply
 *	the argument						bad_arg
 *
 * and only then the handler runs.  The order differs between verbs
 * only through these fields, so that reading an entry tells what a
 * client gets for that verb in every state.
 */
#ifndef PORTCULLIS_SMTP_CMD_H
#define PORTCULLIS_SMTP_CMD_H

#include <stddef.h>

#include "worker.h"

enum smtp_arg {
	ARG_NONE,	/* nothing may follow the verb */
	ARG_OPTIONAL,	/* anything or nothing, and ignored if not used */
	ARG_REQUIRED,	/* something */
	ARG_WORD,	/* exactly one word: EHLO and HELO */
};

#define CMD_GROUP_END		0x01	/* RFC 2920 3.1: last in a group */
#define CMD_LONG_LINE		0x02	/* RFC 4954 4: up to SMTP_AUTH_LINE_MAX */
#define CMD_SYNTAX_FIRST	0x04	/* argument judged before the state */
#define CMD_NOT_IMPLEMENTED	0x08	/* 502, whatever the state */

#define CMD_STATE(st)		(1u << (st))
#define CMD_STATES		(STATE_QUIT + 1)

struct smtp_cmd {
	const char	*verb;
	unsigned int	 states;		/* CMD_STATE() bits: allowed */
	const char	*refuse[CMD_STATES];	/* the reply in the others */
	enum smtp_arg	 arg;
	const char	*bad_arg;		/* reply to a wrong argument */
	unsigned int	 flags;			/* CMD_* */
	const char	*(*gate)(struct session *);	/* before the state */
	const char	*(*policy)(struct session *);	/* after the state */
	void		(*handler)(struct session *, char *arg);
};

extern const struct smtp_cmd	 smtp_cmds[];
extern const size_t		 smtp_ncmds;

const struct smtp_cmd	*smtp_cmd_lookup(const char *verb);
const char		*smtp_cmd_refusal(struct session *,
			    const struct smtp_cmd *, const char *arg);

#endif /* PORTCULLIS_SMTP_CMD_H */
