/*
 * authctl.c -- the administrator's tool for portcullis.
 *
 * User management and the live commands (stats, cache, chain tests)
 * arrive with the credential store; until then authctl only checks
 * its command line and says so.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static __attribute__((__noreturn__)) void
usage(void)
{
	fprintf(stderr, "usage: authctl [-f file] command [argument ...]\n");
	exit(1);
}

int
main(int argc, char *argv[])
{
	int	 ch;

	while ((ch = getopt(argc, argv, "f:")) != -1) {
		switch (ch) {
		case 'f':
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		usage();
	fprintf(stderr, "authctl: unknown command \"%s\"\n", argv[0]);
	return 1;
}
