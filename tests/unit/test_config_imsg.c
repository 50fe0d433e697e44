/*
 * test_config_imsg.c -- a configuration survives the trip from master
 * to a child, and a child refuses pieces that are malformed or out of
 * order.
 */

#include <sys/socket.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "config.h"
#include "config_imsg.h"
#include "imsgev.h"
#include "proto.h"

static struct portcullis_conf *
sample_conf(void)
{
	struct portcullis_conf	*conf = config_new_empty();
	struct listener		*l;
	struct pki		*p;
	struct checker_conf	*c;
	struct sockaddr_in	*sin;

	cr_assert_not_null(conf);
	strlcpy(conf->hostname, "mx.example.org", sizeof(conf->hostname));
	conf->workers = 3;
	conf->grace_period = 7;
	conf->deliver = DELIVER_RELAY;
	strlcpy(conf->relay_url, "lmtp://127.0.0.1:24",
	    sizeof(conf->relay_url));

	l = calloc(1, sizeof(*l));
	strlcpy(l->name, "sub", sizeof(l->name));
	sin = (struct sockaddr_in *)&l->ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(587);
	inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
	l->sslen = sizeof(*sin);
	l->flags = LISTEN_STARTTLS | LISTEN_TLS_REQUIRE | LISTEN_AUTH_REQUIRE;
	l->fd = -1;
	TAILQ_INSERT_TAIL(&conf->listeners, l, entry);

	p = calloc(1, sizeof(*p));
	strlcpy(p->name, "mx.example.org", sizeof(p->name));
	strlcpy(p->cert_file, "/etc/ssl/mx.crt", sizeof(p->cert_file));
	strlcpy(p->key_file, "/etc/ssl/private/mx.key", sizeof(p->key_file));
	TAILQ_INSERT_TAIL(&conf->pkis, p, entry);

	c = calloc(1, sizeof(*c));
	strlcpy(c->name, "local", sizeof(c->name));
	c->type = CHECKER_LMDB;
	strlcpy(c->path, "/var/db/portcullis", sizeof(c->path));
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);
	return conf;
}

/* Pump messages from the write end into a config_recv until done. */
static int
receive_all(int fd, struct config_recv *cr)
{
	struct imsgbuf	 ibuf;
	struct imsg	 imsg;
	ssize_t		 n;
	int		 rv = 0;

	cr_assert_eq(imsgbuf_init(&ibuf, fd), 0);
	imsgbuf_allow_fdpass(&ibuf);
	while (rv == 0) {
		if ((n = imsg_get(&ibuf, &imsg)) == -1)
			return -1;
		if (n == 0) {
			cr_assert_eq(imsgbuf_read(&ibuf), 1);
			continue;
		}
		rv = config_recv(cr, &imsg);
		imsg_free(&imsg);
	}
	imsgbuf_clear(&ibuf);
	return rv;
}

Test(config_imsg, round_trip)
{
	struct portcullis_conf	*conf = sample_conf(), *got;
	struct config_recv	 cr = { NULL, -1, -1 };
	struct event_base	*base = event_base_new();
	struct imsgev		 iev;
	struct listener		*l;
	struct pki		*p;
	struct checker_conf	*c;
	int			 sp[2], spool;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	spool = open("/", O_RDONLY | O_DIRECTORY);
	cr_assert_eq(imsgev_init(&iev, base, sp[0], 1, "test", NULL, NULL,
	    NULL), 0);
	cr_assert_eq(config_send(&iev, conf, 1, spool, -1), 0);
	cr_assert_eq(imsgev_flush(&iev), 0);

	cr_assert_eq(receive_all(sp[1], &cr), 1);
	got = cr.conf;
	cr_assert_str_eq(got->hostname, "mx.example.org");
	cr_assert_eq(got->workers, 3);
	cr_assert_eq(got->grace_period, 7);
	cr_assert_eq(got->deliver, DELIVER_RELAY);
	cr_assert_str_eq(got->relay_url, "lmtp://127.0.0.1:24");
	cr_assert_geq(cr.spool_fd, 0, "the spool descriptor arrives");

	l = TAILQ_FIRST(&got->listeners);
	cr_assert_not_null(l);
	cr_assert_str_eq(l->name, "sub");
	cr_assert_eq(listener_port(l), 587);
	cr_assert_eq(l->flags, LISTEN_STARTTLS | LISTEN_TLS_REQUIRE |
	    LISTEN_AUTH_REQUIRE);
	cr_assert_eq(l->fd, -1, "no socket was attached");
	cr_assert_null(TAILQ_NEXT(l, entry));

	p = TAILQ_FIRST(&got->pkis);
	cr_assert_str_eq(p->key_file, "/etc/ssl/private/mx.key");
	c = TAILQ_FIRST(&got->checkers);
	cr_assert_str_eq(c->name, "local");
	cr_assert_eq(c->type, CHECKER_LMDB);

	config_recv_reset(&cr);
	config_free(conf);
	imsgev_close(&iev);
	close(sp[1]);
	close(spool);
	event_base_free(base);
}

/*
 * An sql checker's settings go to authd in their own message, password
 * and all; a worker learns the checker, not its database.
 */
Test(config_imsg, sql_settings_to_authd_only)
{
	struct portcullis_conf	*conf = sample_conf(), *got;
	struct event_base	*base = event_base_new();
	struct checker_conf	*c;
	struct imsgev		 iev;
	int			 sp[2], worker;

	c = calloc(1, sizeof(*c));
	strlcpy(c->name, "pfa", sizeof(c->name));
	c->type = CHECKER_SQL;
	c->sql = calloc(1, sizeof(*c->sql));
	strlcpy(c->sql->conninfo, "host=db1,db2 dbname=postfix",
	    sizeof(c->sql->conninfo));
	strlcpy(c->sql->query, "SELECT password FROM mailbox WHERE "
	    "username = $1", sizeof(c->sql->query));
	strlcpy(c->sql->password, "db-secret", sizeof(c->sql->password));
	c->sql->connections = 3;
	TAILQ_INSERT_TAIL(&conf->checkers, c, entry);

	for (worker = 0; worker <= 1; worker++) {
		struct config_recv	 cr = { NULL, -1, -1 };

		cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
		cr_assert_eq(imsgev_init(&iev, base, sp[0], 1, "test", NULL,
		    NULL, NULL), 0);
		cr_assert_eq(config_send(&iev, conf, worker, -1, -1), 0);
		cr_assert_eq(imsgev_flush(&iev), 0);
		cr_assert_eq(receive_all(sp[1], &cr), 1);
		got = cr.conf;
		c = TAILQ_LAST(&got->checkers, checkerlist);
		cr_assert_str_eq(c->name, "pfa");
		cr_assert_eq(c->type, CHECKER_SQL);
		if (worker)
			cr_assert_null(c->sql);
		else {
			cr_assert_not_null(c->sql);
			cr_assert_str_eq(c->sql->conninfo,
			    "host=db1,db2 dbname=postfix");
			cr_assert_str_eq(c->sql->password, "db-secret");
			cr_assert_eq(c->sql->connections, 3);
		}
		config_recv_reset(&cr);
		imsgev_close(&iev);
		close(sp[1]);
	}
	config_free(conf);
	event_base_free(base);
}

Test(config_imsg, piece_before_start_is_refused)
{
	struct config_recv	 cr = { NULL, -1, -1 };
	struct imsgbuf		 w;
	struct pki		 p;
	int			 sp[2];

	memset(&p, 0, sizeof(p));
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(imsgbuf_init(&w, sp[0]), 0);
	cr_assert_eq(imsg_compose(&w, IMSG_CONF_PKI, 0, 0, -1, &p,
	    sizeof(p)), 1);
	cr_assert_eq(imsgbuf_flush(&w), 0);
	cr_assert_eq(receive_all(sp[1], &cr), -1);
	cr_assert_null(cr.conf);
	imsgbuf_clear(&w);
	close(sp[0]);
	close(sp[1]);
}

Test(config_imsg, short_piece_is_refused)
{
	struct config_recv	 cr = { NULL, -1, -1 };
	struct portcullis_conf	*conf = config_new_empty();
	struct imsgbuf		 w;
	char			 shortl[8] = { 0 };
	int			 sp[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sp), 0);
	cr_assert_eq(imsgbuf_init(&w, sp[0]), 0);
	cr_assert_eq(imsg_compose(&w, IMSG_CONF_START, 0, 0, -1, conf,
	    sizeof(*conf)), 1);
	cr_assert_eq(imsg_compose(&w, IMSG_CONF_LISTENER, 0, 0, -1, shortl,
	    sizeof(shortl)), 1);
	cr_assert_eq(imsgbuf_flush(&w), 0);
	cr_assert_eq(receive_all(sp[1], &cr), -1);
	config_recv_reset(&cr);
	config_free(conf);
	imsgbuf_clear(&w);
	close(sp[0]);
	close(sp[1]);
}
