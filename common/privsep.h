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
/* IMSG_CTL_VERBOSE from master, the same in every child. */
int	privsep_verbose(struct imsgev *, struct imsg *);

#endif /* PORTCULLIS_PRIVSEP_H */
