/*
 * privsep.c -- the privilege drop every child performs before it
 * touches the network, in the order OpenBSD daemons use: look up the
 * user while /etc is still visible, chroot, chdir("/"), then groups,
 * gid and uid, and finally verify that none of the old ids can be
 * regained.  A drop that did not take is fatal: a child that believes
 * it is unprivileged but is not is worse than no child.
 *
 * Core dumps are off in every child from its first instruction on
 * (sandbox_nocore()), and again after the change of uid, which would
 * otherwise make the process dumpable as fs.suid_dumpable says.  The
 * system-call filter comes last, from the child itself, once it holds
 * everything it needs (sandbox_enter()).
 */

#include <sys/types.h>

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "imsgev.h"
#include "log.h"
#include "privsep.h"
#include "proto.h"
#include "sandbox.h"

extern char	**environ;

/*
 * Returns 1 when privileges were dropped, 0 when the process was not
 * root to begin with (a developer's run: nothing to drop).
 */
int
privsep_drop(const char *user, const char *chroot_dir)
{
	struct passwd	*pw;
	uid_t		 ruid, euid, suid;
	gid_t		 rgid, egid, sgid;

	if (geteuid() != 0)
		return 0;
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user \"%s\"", user);
	if (pw->pw_uid == 0)
		fatalx("user \"%s\" is root: refusing to run privileged",
		    user);
	if (chroot_dir != NULL) {
		if (chroot(chroot_dir) == -1)
			fatal("chroot %s", chroot_dir);
		if (chdir("/") == -1)
			fatal("chdir /");
	}
	if (setgroups(1, &pw->pw_gid) == -1 ||
	    setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);

	if (getresuid(&ruid, &euid, &suid) == -1 ||
	    getresgid(&rgid, &egid, &sgid) == -1)
		fatal("getresuid");
	if (ruid != pw->pw_uid || euid != pw->pw_uid || suid != pw->pw_uid ||
	    rgid != pw->pw_gid || egid != pw->pw_gid || sgid != pw->pw_gid)
		fatalx("privilege drop to %s did not take", user);
	if (setuid(0) != -1 || seteuid(0) != -1)
		fatalx("privilege drop to %s is reversible", user);
	sandbox_nocore();
	return 1;
}

/*
 * ps(1) shows "portcullis: ROLE".  Children are executed with argv[0]
 * "portcullis", which both libbsd and OpenBSD use as the prefix.
 * libbsd moves argv and the environment out of the way on the first
 * call, so this runs first thing in main().
 */
void
privsep_title_init(int argc, char *argv[])
{
#ifndef __OpenBSD__
	setproctitle_init(argc, argv, environ);
#else
	(void)argc;
	(void)argv;
#endif
}

/*
 * What every child does before it reads its first message: turn core
 * dumps off, name its role in the log and in ps(1), and leave the
 * decision to stop to master (a Ctrl-C in the terminal reaches the
 * whole process group).
 */
void
privsep_child_init(const char *role, int debug, int verbose)
{
	sandbox_nocore();
	log_init(debug, LOG_MAIL);
	log_setverbose(verbose);
	log_procinit(role);
	setproctitle("%s", role);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
}

int
privsep_verbose(struct imsgev *iev, struct imsg *imsg)
{
	int	 verbose;

	(void)iev;
	imsgev_data(imsg, &verbose, sizeof(verbose));
	log_setverbose(verbose);
	return 0;
}

struct event_base *
privsep_child_loop(struct imsgev *master, const struct imsg_dispatch *table,
    void (*closed)(struct imsgev *))
{
	struct event_base	*base;

	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	if (imsgev_init(master, base, PROC_PARENT_FD, 1, "master", NULL,
	    closed, NULL) == -1)
		fatal("master channel");
	imsgev_set_table(master, table);
	return base;
}
