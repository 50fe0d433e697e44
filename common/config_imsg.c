/*
 * config_imsg.c -- carry the configuration from master to a child.
 *
 * Children never read the configuration file: master parsed it, and
 * sends the result as CONF_START, one message per listener, pki and
 * checker, then CONF_END.  Each piece is a fixed-size struct; the
 * receiver checks its exact length, ignores the list pointers that
 * came along, and terminates every string, so a bad message cannot
 * make a child read out of bounds.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_imsg.h"
#include "log.h"
#include "proto.h"

#define TERMINATE(s)	((s)[sizeof(s) - 1] = '\0')

/* A checker travels in one message. */
_Static_assert(sizeof(struct checker_conf) <= MAX_IMSGSIZE - IMSG_HEADER_SIZE,
    "struct checker_conf does not fit in one imsg");

static void	 ldap_conf_terminate(struct ldap_conf *);
static void	 oauth_conf_terminate(struct oauth_conf *);

/*
 * A copy waits in the write queue until the child has read it; if
 * master forks another child meanwhile, a plain dup() would leak the
 * socket into that child across exec.
 */
static int
dup_cloexec(int fd)
{
	return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

/* A PEM file can exceed one imsg: it travels in chunks. */
static int
send_pem(struct imsgev *iev, uint32_t kind, const char *pem, size_t len)
{
	struct pki_pem	 hdr;
	struct iovec	 iov[2];
	size_t		 chunk, max;

	max = MAX_IMSGSIZE - IMSG_HEADER_SIZE - sizeof(hdr);
	memset(&hdr, 0, sizeof(hdr));
	hdr.kind = kind;
	while (len > 0) {
		chunk = len < max ? len : max;
		iov[0].iov_base = &hdr;
		iov[0].iov_len = sizeof(hdr);
		iov[1].iov_base = (void *)(uintptr_t)pem;
		iov[1].iov_len = chunk;
		if (imsgev_composev(iev, IMSG_CONF_PKI_PEM, 0, iov, 2) == -1)
			return -1;
		pem += chunk;
		len -= chunk;
	}
	return 0;
}

_Static_assert(sizeof(struct portcullis_conf) <=
    MAX_IMSGSIZE - IMSG_HEADER_SIZE, "the configuration fits one imsg");

/* The settings, without the lists: those follow one item a message. */
static int
send_start(struct imsgev *iev, const struct portcullis_conf *conf,
    int to_worker)
{
	struct portcullis_conf	 head;
	int			 rv;

	head = *conf;
	if (to_worker)
		explicit_bzero(head.state.password,
		    sizeof(head.state.password));
	TAILQ_INIT(&head.listeners);
	TAILQ_INIT(&head.pkis);
	TAILQ_INIT(&head.checkers);
	TAILQ_INIT(&head.local_domains);
	TAILQ_INIT(&head.static_users);
	TAILQ_INIT(&head.trusted_networks);
	rv = imsgev_compose(iev, IMSG_CONF_START, 0, -1, &head,
	    sizeof(head));
	explicit_bzero(head.state.password, sizeof(head.state.password));
	return rv;
}

/*
 * Workers get a bound socket with each listener: its own from own[]
 * where master opened one per worker (own[i] for the i-th listener,
 * -1 for none), else master's shared one.  authd gets none.
 */
static int
send_listeners(struct imsgev *iev, const struct portcullis_conf *conf,
    int to_worker, const int *own)
{
	struct listener	*l;
	size_t		 i = 0;
	int		 fd, src;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		fd = -1;
		src = own != NULL && own[i] != -1 ? own[i] : l->fd;
		i++;
		if (to_worker && src != -1 && (fd = dup_cloexec(src)) == -1)
			return -1;
		if (imsgev_compose(iev, IMSG_CONF_LISTENER, 0, fd, l,
		    sizeof(*l)) == -1)
			return -1;
	}
	return 0;
}

/*
 * Only workers terminate TLS; they get the certificates.  The private
 * keys go to the key process only (master/keyproc.c), never here.
 */
static int
send_pkis(struct imsgev *iev, const struct portcullis_conf *conf,
    int to_worker)
{
	struct pki	*p;

	TAILQ_FOREACH(p, &conf->pkis, entry) {
		if (imsgev_compose(iev, IMSG_CONF_PKI, 0, -1, p,
		    sizeof(*p)) == -1)
			return -1;
		if (!to_worker)
			continue;
		if (send_pem(iev, PKI_PEM_CERT, p->cert_pem,
		    p->cert_len) == -1)
			return -1;
	}
	return 0;
}

static int
send_domains_networks(struct imsgev *iev, const struct portcullis_conf *conf)
{
	struct local_domain	*d;
	struct netaddr		*n;

	TAILQ_FOREACH(d, &conf->local_domains, entry)
		if (imsgev_compose(iev, IMSG_CONF_DOMAIN, 0, -1, d,
		    sizeof(*d)) == -1)
			return -1;
	TAILQ_FOREACH(n, &conf->trusted_networks, entry)
		if (imsgev_compose(iev, IMSG_CONF_NETWORK, 0, -1, n,
		    sizeof(*n)) == -1)
			return -1;
	return 0;
}

/* Passwords go to authd only, never to a worker. */
static int
send_static_users(struct imsgev *iev, const struct portcullis_conf *conf)
{
	struct static_user	*u;

	TAILQ_FOREACH(u, &conf->static_users, entry)
		if (imsgev_compose(iev, IMSG_CONF_STATIC_USER, 0, -1, u,
		    sizeof(*u)) == -1)
			return -1;
	return 0;
}

/* A worker learns what a checker verifies, not its secret. */
static int
send_checkers(struct imsgev *iev, const struct portcullis_conf *conf,
    int to_worker)
{
	struct checker_conf	*c, copy;
	int			 rv;

	TAILQ_FOREACH(c, &conf->checkers, entry) {
		memcpy(&copy, c, sizeof(copy));
		if (to_worker && c->type == CHECKER_OAUTH)
			explicit_bzero(copy.oauth.client_secret,
			    sizeof(copy.oauth.client_secret));
		if (to_worker && c->type == CHECKER_LDAP)
			explicit_bzero(copy.ldap.bind_password,
			    sizeof(copy.ldap.bind_password));
		copy.sql = NULL;
		rv = imsgev_compose(iev, IMSG_CONF_CHECKER, 0, -1, &copy,
		    sizeof(copy));
		explicit_bzero(&copy, sizeof(copy));
		if (rv == -1)
			return -1;
		/* The database and its password are authd's business. */
		if (c->sql != NULL && !to_worker &&
		    imsgev_compose(iev, IMSG_CONF_CHECKER_SQL, 0, -1, c->sql,
		    sizeof(*c->sql)) == -1)
			return -1;
	}
	return 0;
}

/* An empty message carrying a copy of fd; nothing when fd is -1. */
static int
send_fd(struct imsgev *iev, uint32_t type, int fd)
{
	int	 copy;

	if (fd == -1)
		return 0;
	if ((copy = dup_cloexec(fd)) == -1)
		return -1;
	return imsgev_compose(iev, type, 0, copy, NULL, 0);
}

static int
config_send_all(struct imsgev *iev, const struct portcullis_conf *conf,
    int listener_fds, const int *own, int spool_fd, int control_fd)
{
	if (send_start(iev, conf, listener_fds) == -1 ||
	    send_listeners(iev, conf, listener_fds, own) == -1 ||
	    send_pkis(iev, conf, listener_fds) == -1 ||
	    send_domains_networks(iev, conf) == -1 ||
	    (!listener_fds && send_static_users(iev, conf) == -1) ||
	    send_checkers(iev, conf, listener_fds) == -1 ||
	    send_fd(iev, IMSG_CONF_SPOOL, spool_fd) == -1 ||
	    send_fd(iev, IMSG_CONF_CONTROL, control_fd) == -1)
		return -1;
	return imsgev_compose(iev, IMSG_CONF_END, 0, -1, NULL, 0);
}

/*
 * listener_fds says the child is a worker: it gets the bound sockets
 * and the certificates, never a private key, the passwords or the
 * client secrets.
 */
int
config_send(struct imsgev *iev, const struct portcullis_conf *conf,
    int listener_fds, int spool_fd, int control_fd)
{
	return config_send_all(iev, conf, listener_fds, NULL, spool_fd,
	    control_fd);
}

/* A worker with listening sockets of its own (see send_listeners). */
int
config_send_worker(struct imsgev *iev, const struct portcullis_conf *conf,
    const int *own, int spool_fd)
{
	return config_send_all(iev, conf, 1, own, spool_fd, -1);
}

void
config_close_fds(struct portcullis_conf *conf)
{
	struct listener	*l;

	TAILQ_FOREACH(l, &conf->listeners, entry) {
		if (l->fd != -1)
			close(l->fd);
		l->fd = -1;
	}
}

void
config_recv_reset(struct config_recv *cr)
{
	if (cr->conf != NULL) {
		config_close_fds(cr->conf);
		config_free(cr->conf);
	}
	cr->conf = NULL;
	if (cr->spool_fd >= 0)
		close(cr->spool_fd);
	cr->spool_fd = -1;
	if (cr->control_fd >= 0)
		close(cr->control_fd);
	cr->control_fd = -1;
}

static int
recv_start(struct config_recv *cr, struct imsg *imsg)
{
	struct portcullis_conf	*conf;

	config_recv_reset(cr);
	if ((conf = calloc(1, sizeof(*conf))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, conf, sizeof(*conf)) == -1) {
		free(conf);
		return -1;
	}
	TAILQ_INIT(&conf->listeners);
	TAILQ_INIT(&conf->pkis);
	TAILQ_INIT(&conf->checkers);
	TAILQ_INIT(&conf->local_domains);
	TAILQ_INIT(&conf->static_users);
	TAILQ_INIT(&conf->trusted_networks);
	TERMINATE(conf->hostname);
	TERMINATE(conf->user);
	TERMINATE(conf->auth_user);
	TERMINATE(conf->keys_user);
	TERMINATE(conf->chroot);
	TERMINATE(conf->spool);
	TERMINATE(conf->relay_url);
	cr->conf = conf;
	return 0;
}

static int
recv_listener(struct config_recv *cr, struct imsg *imsg)
{
	struct listener	*l;

	if ((l = calloc(1, sizeof(*l))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, l, sizeof(*l)) == -1 ||
	    l->sslen > sizeof(l->ss)) {
		free(l);
		return -1;
	}
	TERMINATE(l->name);
	TERMINATE(l->pki);
	l->fd = imsg_get_fd(imsg);
	TAILQ_INSERT_TAIL(&cr->conf->listeners, l, entry);
	return 0;
}

static int
recv_pki(struct config_recv *cr, struct imsg *imsg)
{
	struct pki	*p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, p, sizeof(*p)) == -1) {
		free(p);
		return -1;
	}
	TERMINATE(p->name);
	TERMINATE(p->cert_file);
	TERMINATE(p->key_file);
	p->cert_pem = p->key_pem = NULL;
	p->cert_len = p->key_len = 0;
	TAILQ_INSERT_TAIL(&cr->conf->pkis, p, entry);
	return 0;
}

/* Append a chunk of PEM to the pki received last. */
static int
recv_pki_pem(struct config_recv *cr, struct imsg *imsg)
{
	struct pki	*p = TAILQ_LAST(&cr->conf->pkis, pkilist);
	struct pki_pem	 hdr;
	struct ibuf	 ibuf;
	char		**pem, *n;
	size_t		*len, add;

	if (p == NULL || imsg_get_ibuf(imsg, &ibuf) == -1 ||
	    ibuf_get(&ibuf, &hdr, sizeof(hdr)) == -1)
		return -1;
	/* A certificate only: no process that gets this holds a key. */
	if (hdr.kind != PKI_PEM_CERT)
		return -1;
	pem = &p->cert_pem;
	len = &p->cert_len;
	add = ibuf_size(&ibuf);
	if (add == 0 || *len + add > PKI_PEM_MAX)
		return -1;
	/* No realloc: the old block may hold key material to wipe. */
	if ((n = malloc(*len + add + 1)) == NULL)
		fatal("malloc");
	if (*pem != NULL) {
		memcpy(n, *pem, *len);
		freezero(*pem, *len + 1);
	}
	memcpy(n + *len, ibuf_data(&ibuf), add);
	*len += add;
	n[*len] = '\0';
	*pem = n;
	return 0;
}

static int
recv_static_user(struct config_recv *cr, struct imsg *imsg)
{
	struct static_user	*u;

	if ((u = calloc(1, sizeof(*u))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, u, sizeof(*u)) == -1) {
		free(u);
		return -1;
	}
	TERMINATE(u->checker);
	TERMINATE(u->name);
	TERMINATE(u->password);
	TAILQ_INSERT_TAIL(&cr->conf->static_users, u, entry);
	return 0;
}

static int
recv_network(struct config_recv *cr, struct imsg *imsg)
{
	struct netaddr	*n;

	if ((n = calloc(1, sizeof(*n))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, n, sizeof(*n)) == -1 || n->prefixlen < 0 ||
	    n->prefixlen > 128) {
		free(n);
		return -1;
	}
	TAILQ_INSERT_TAIL(&cr->conf->trusted_networks, n, entry);
	return 0;
}

static int
recv_domain(struct config_recv *cr, struct imsg *imsg)
{
	struct local_domain	*d;

	if ((d = calloc(1, sizeof(*d))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, d, sizeof(*d)) == -1) {
		free(d);
		return -1;
	}
	TERMINATE(d->name);
	TAILQ_INSERT_TAIL(&cr->conf->local_domains, d, entry);
	return 0;
}

static int
recv_checker(struct config_recv *cr, struct imsg *imsg)
{
	struct checker_conf	*c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, c, sizeof(*c)) == -1) {
		free(c);
		return -1;
	}
	TERMINATE(c->name);
	TERMINATE(c->path);
	TERMINATE(c->cache.key_file);
	if (c->type == CHECKER_LDAP)
		ldap_conf_terminate(&c->ldap);
	else
		oauth_conf_terminate(&c->oauth);
	c->sql = NULL;		/* a pointer of master's; its own message */
	TAILQ_INSERT_TAIL(&cr->conf->checkers, c, entry);
	return 0;
}

/* The union's other member would read as garbage: by type. */
static void
ldap_conf_terminate(struct ldap_conf *l)
{
	int	 i;

	for (i = 0; i < CONF_LDAP_URLS_MAX; i++)
		TERMINATE(l->urls[i]);
	if (l->nurls < 0 || l->nurls > CONF_LDAP_URLS_MAX)
		l->nurls = 0;
	TERMINATE(l->ca_file);
	TERMINATE(l->bind_dn);
	TERMINATE(l->bind_password_file);
	TERMINATE(l->bind_password);
	TERMINATE(l->base);
	TERMINATE(l->filter);
	TERMINATE(l->password_attr);
	TERMINATE(l->user_attr);
	for (i = 0; i < CONF_LDAP_MAIL_ATTRS_MAX; i++)
		TERMINATE(l->mail_attrs[i]);
	if (l->nmail_attrs < 0 || l->nmail_attrs > CONF_LDAP_MAIL_ATTRS_MAX)
		l->nmail_attrs = 0;
	TERMINATE(l->disabled_filter);
	TERMINATE(l->disabled_attr);
}

static void
oauth_conf_terminate(struct oauth_conf *o)
{
	TERMINATE(o->introspection_url);
	TERMINATE(o->token_url);
	TERMINATE(o->jwks_url);
	TERMINATE(o->issuer);
	TERMINATE(o->audience);
	TERMINATE(o->scope);
	TERMINATE(o->client_id);
	TERMINATE(o->secret_file);
	TERMINATE(o->client_secret);
	TERMINATE(o->ca_file);
	TERMINATE(o->user_claim);
	TERMINATE(o->domain);
}

/* The settings of the sql checker that came last, once. */
static int
recv_checker_sql(struct config_recv *cr, struct imsg *imsg)
{
	struct checker_conf	*c;
	struct sql_conf		*s;

	c = TAILQ_LAST(&cr->conf->checkers, checkerlist);
	if (c == NULL || c->type != CHECKER_SQL || c->sql != NULL) {
		errno = EBADMSG;
		return -1;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL)
		fatal("calloc");
	if (imsg_get_data(imsg, s, sizeof(*s)) == -1) {
		free(s);
		return -1;
	}
	TERMINATE(s->conninfo);
	TERMINATE(s->password_file);
	TERMINATE(s->password);
	TERMINATE(s->query);
	TERMINATE(s->address_query);
	TERMINATE(s->password_column);
	TERMINATE(s->user_column);
	TERMINATE(s->addresses_column);
	TERMINATE(s->enabled_column);
	c->sql = s;
	return 0;
}

/*
 * Feed one CONF_* message.  Returns 1 when CONF_END completed a
 * configuration (cr->conf is then the caller's), 0 when more is to
 * come, -1 on a malformed or out-of-order message.  The receiver's
 * dispatch table has checked each message's length and descriptor.
 */
int
config_recv(struct config_recv *cr, struct imsg *imsg)
{
	uint32_t	 type = imsg_get_type(imsg);

	if (type == IMSG_CONF_START)
		return recv_start(cr, imsg);
	if (cr->conf == NULL) {
		errno = EBADMSG;
		return -1;
	}
	switch (type) {
	case IMSG_CONF_LISTENER:
		return recv_listener(cr, imsg);
	case IMSG_CONF_PKI:
		return recv_pki(cr, imsg);
	case IMSG_CONF_CHECKER:
		return recv_checker(cr, imsg);
	case IMSG_CONF_CHECKER_SQL:
		return recv_checker_sql(cr, imsg);
	case IMSG_CONF_PKI_PEM:
		return recv_pki_pem(cr, imsg);
	case IMSG_CONF_DOMAIN:
		return recv_domain(cr, imsg);
	case IMSG_CONF_STATIC_USER:
		return recv_static_user(cr, imsg);
	case IMSG_CONF_NETWORK:
		return recv_network(cr, imsg);
	case IMSG_CONF_SPOOL:
		if (cr->spool_fd != -1)
			close(cr->spool_fd);
		cr->spool_fd = imsg_get_fd(imsg);
		return 0;
	case IMSG_CONF_CONTROL:
		if (cr->control_fd != -1)
			close(cr->control_fd);
		cr->control_fd = imsg_get_fd(imsg);
		return 0;
	case IMSG_CONF_END:
		return 1;
	}
	errno = EBADMSG;
	return -1;
}
