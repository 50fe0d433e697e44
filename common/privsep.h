/*
 * privsep.h -- how a child gives up root.
 */
#ifndef PORTCULLIS_PRIVSEP_H
#define PORTCULLIS_PRIVSEP_H

int	privsep_drop(const char *user, const char *chroot_dir);
void	privsep_title_init(int argc, char *argv[]);
void	privsep_child_init(const char *role, int debug, int verbose);

struct imsgev;
struct imsg;
struct imsg_dispatch;
struct event_base;
/* A child's event loop and its channel to master (PROC_PARENT_FD). */
struct event_base *privsep_child_loop(struct imsgev *master,
	    const struct imsg_dispatch *table, void (*closed)(struct imsgev *));
/* IMSG_CTL_VERBOSE from master, the same in every child. */
int	privsep_verbose(struct imsgev *, struct imsg *);

#endif /* PORTCULLIS_PRIVSEP_H */
