/*
 * fuzz_authd_imsg.c -- what authd reads from a worker's channel: the
 * imsg framing (common/compat/imsg.c, common/imsgev.c) and the checks
 * of an IMSG_AUTH_REQUEST (authd/request.c), then the user name's
 * normalisation (store/name.c), where authd hands over to the
 * checker chain.  The chain itself is not run.
 *
 * Input: the octets a hostile worker writes on its channel.  They go
 * into one end of a socketpair; the other end is an imsgev channel
 * on a libevent loop, as authd has for each worker, with a dispatch
 * table like authd.c's from_worker[], whose handlers do what authd's
 * do up to the chain.  Properties: a handler sees only a payload of
 * the length its table entry says; a request that passes has its
 * parts inside the frame, within their limits; a channel that refuses
 * something is closed once, and then reads nothing more.
 */

#include <sys/socket.h>

#include <fcntl.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "authd.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"
#include "store.h"

struct channel {
	struct imsgev	 iev;
	int		 closed;	/* times the closed callback ran */
	int		 after_close;	/* messages handled after a close */
};

static struct event_base	*base;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc; (void)argv;
	log_init(0, LOG_MAIL);
	openlog("fuzz_authd_imsg", LOG_PERROR, LOG_MAIL);
	setlogmask(LOG_UPTO(LOG_CRIT));
	if ((base = event_base_new()) == NULL)
		abort();
	return 0;
}

/* No handler runs on a channel that has refused something. */
static void
after_close(struct imsgev *iev)
{
	struct channel	*ch = iev->arg;

	if (ch->closed || !iev->open)
		ch->after_close++;
}

static int
auth_request(struct imsgev *iev, struct imsg *imsg)
{
	struct auth_request	 req;
	struct auth_cred	 cred;
	const uint8_t		*frame = imsg->data;
	size_t			 framelen = imsg_get_len(imsg);
	char			 user[CONF_AUTH_NAME_MAX];

	after_close(iev);
	FUZZ_ASSERT(framelen >= sizeof(req));
	if (auth_request_decode(imsg, &req, &cred) == -1)
		return -1;
	FUZZ_ASSERT(frame != NULL);
	FUZZ_ASSERT(framelen == sizeof(req) + req.cred_len);
	FUZZ_ASSERT(req.cred_len <= AUTH_CRED_MAX);
	FUZZ_ASSERT(memchr(req.client, '\0', sizeof(req.client)) != NULL);
	FUZZ_ASSERT(memchr(req.listener, '\0', sizeof(req.listener)) != NULL);
	FUZZ_ASSERT(cred.user >= frame + sizeof(req) &&
	    cred.user + cred.user_len <= frame + framelen);
	FUZZ_ASSERT(cred.secret > cred.user &&
	    cred.secret + cred.secret_len == frame + framelen);
	FUZZ_ASSERT(cred.user_len < CONF_AUTH_NAME_MAX);
	FUZZ_ASSERT(cred.secret_len > 0);
	FUZZ_ASSERT(memchr(cred.secret, '\0', cred.secret_len) == NULL);
	if (req.mechanism & SASL_TOKEN_MECHS) {
		FUZZ_ASSERT(cred.authzid_len == 0);
		for (size_t i = 0; i < cred.secret_len; i++)
			FUZZ_ASSERT(cred.secret[i] > ' ' &&
			    cred.secret[i] < 0x7f);
	} else {
		FUZZ_ASSERT(cred.user_len > 0);
		FUZZ_ASSERT(cred.authzid == frame + sizeof(req));
		FUZZ_ASSERT(cred.authzid + cred.authzid_len + 1 == cred.user);
	}
	/* What authd.c does next, short of starting the chain. */
	memcpy(user, cred.user, cred.user_len);
	user[cred.user_len] = '\0';
	if (cred.user_len > 0 && store_name_normalize(user, user,
	    sizeof(user)) == 0) {
		FUZZ_ASSERT(strlen(user) == cred.user_len);
		for (size_t i = 0; user[i] != '\0'; i++)
			FUZZ_ASSERT((uint8_t)user[i] > ' ' &&
			    user[i] != 0x7f);
	}
	return 0;
}

static int
ping(struct imsgev *iev, struct imsg *imsg)
{
	struct ping	 ping;

	after_close(iev);
	imsgev_data(imsg, &ping, sizeof(ping));
	imsgev_compose(iev, IMSG_PONG, 0, -1, &ping, sizeof(ping));
	return 0;
}

static int
auth_cancel(struct imsgev *iev, struct imsg *imsg)
{
	struct auth_cancel	 c;

	after_close(iev);
	imsgev_data(imsg, &c, sizeof(c));
	return 0;
}

/* authd.c's from_worker[], the chain left out. */
static const struct imsg_dispatch from_worker[] = {
	{ IMSG_PING, sizeof(struct ping), 0, ping },
	{ IMSG_AUTH_REQUEST, sizeof(struct auth_request), IMSGEV_MIN,
	    auth_request },
	{ IMSG_AUTH_CANCEL, sizeof(struct auth_cancel), 0, auth_cancel },
	{ 0, 0, 0, NULL }
};

static void
closed(struct imsgev *iev)
{
	struct channel	*ch = iev->arg;

	ch->closed++;
	event_base_loopbreak(base);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct channel	 ch;
	size_t		 off = 0;
	ssize_t		 n;
	int		 sp[2];

	/* Within what the socket holds without a reader. */
	if (size > 65536)
		return 0;
	memset(&ch, 0, sizeof(ch));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == -1)
		abort();
	if (imsgev_init(&ch.iev, base, sp[0], 0, "worker 1", NULL, closed,
	    &ch) == -1)
		abort();
	imsgev_set_table(&ch.iev, from_worker);
	/* All of it, then EOF: the channel must end either way. */
	while (off < size) {
		if ((n = write(sp[1], data + off, size - off)) <= 0)
			abort();
		off += (size_t)n;
	}
	close(sp[1]);
	while (ch.iev.open)
		FUZZ_ASSERT(event_base_loop(base, EVLOOP_ONCE) == 0);
	FUZZ_ASSERT(ch.closed == 1);
	FUZZ_ASSERT(ch.after_close == 0);
	/* Whatever is left in the loop is the closed channel's: nothing. */
	FUZZ_ASSERT(event_base_loop(base, EVLOOP_NONBLOCK) == 1);
	return 0;
}
