/*
 * sandbox.c -- what each process may still do once it is set up.
 *
 * A process calls sandbox_enter() when it holds every descriptor, key
 * and context it will ever need; from then on the kernel refuses what
 * its role does not do.
 *
 * Linux: seccomp-bpf through libseccomp, after PR_SET_NO_NEW_PRIVS.
 * The workers and authd get an allow-list each (the tables below, one
 * per role, a comment per group saying who needs it); anything else
 * kills the whole process (SCMP_ACT_KILL_PROCESS), master logs the
 * SIGSYS, and its respawn starts a fresh one.  The kernel logs the
 * number of the system call that was refused (audit type 1326).
 *
 * master gets a deny-list instead, and that is a deliberate choice: a
 * filter is inherited across fork and execve, and master respawns its
 * children for as long as it runs, so its filter must allow everything
 * authd and the workers do before they lock themselves down (exec,
 * chroot, setresuid, LMDB, TLS setup), plus what supervision and
 * reload need as root (fork, wait, kill, bind, mkdir, chown, reading
 * keys).  An allow-list that is the union of all that would be a list
 * of nearly everything and promise more than it keeps.  The deny-list
 * takes away, from master and every child, the interfaces by which a
 * hijacked root process reaches into the kernel or into other
 * processes: modules, kexec, ptrace, mount, bpf, keyrings, namespaces,
 * raw I/O ports, the clock.  It does not stop root from writing files;
 * nothing in-process can.
 *
 * OpenBSD: pledge(2), and unveil(2) for authd, the one process that
 * opens files by name after setup.
 *
 * Everywhere: no core dumps (they would hold TLS keys, OAuth client
 * secrets, passwords in flight), and a descriptor limit sized for the
 * workers' max-sessions.
 */

#include <sys/types.h>
#include <sys/resource.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <seccomp.h>
#endif

#include "log.h"
#include "sandbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define PORTCULLIS_SANITIZER	1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PORTCULLIS_SANITIZER	1
#endif
#endif
#if defined(PORTCULLIS_SANITIZER) && defined(__linux__)
#include <sanitizer/common_interface_defs.h>
#endif

/*
 * No core dumps: a hard limit of 0 cannot be raised again, and on
 * Linux a process that is not dumpable cannot be ptrace'd by its own
 * user either, and its /proc files belong to root.  execve() and a
 * change of uid make a process dumpable again, hence this runs first
 * thing in every program and again after the privilege drop.
 */
void
sandbox_nocore(void)
{
	struct rlimit	 rl = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &rl) == -1)
		fatal("setrlimit RLIMIT_CORE");
#ifdef __linux__
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == -1)
		fatal("prctl PR_SET_DUMPABLE");
#endif
}

/*
 * Each session holds its client's socket and, while it delivers, a
 * relay connection or a spool file; the rest is the channels to master
 * and authd, syslog, libevent's own descriptors and some slack.
 */
rlim_t
sandbox_nofile_need(int max_sessions)
{
	return (rlim_t)(max_sessions > 0 ? max_sessions : 0) * 2 + 64;
}

/* The most descriptors the kernel lets any process have. */
static rlim_t
nofile_ceiling(rlim_t want)
{
#ifdef __linux__
	char		 buf[32];
	ssize_t		 n;
	long long	 v;
	int		 fd;

	if ((fd = open("/proc/sys/fs/nr_open", O_RDONLY | O_CLOEXEC)) == -1)
		return want;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return want;
	buf[n] = '\0';
	if ((v = strtoll(buf, NULL, 10)) <= 0)
		return want;
	return (rlim_t)v < want ? (rlim_t)v : want;
#else
	return want;
#endif
}

/*
 * Raise RLIMIT_NOFILE: the hard limit up to need (capped by the
 * kernel's ceiling) when the process may, that is as root, and the
 * soft limit up to the hard one.  Returns the soft limit in force.
 * master calls it in a worker's child before execve (it is still
 * root there); the worker calls it again before it drops root.
 */
rlim_t
sandbox_nofile_raise(rlim_t need)
{
	struct rlimit	 rl, want;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need &&
	    geteuid() == 0) {
		want.rlim_max = nofile_ceiling(need);
		want.rlim_cur = want.rlim_max;
		if (want.rlim_max > rl.rlim_max &&
		    setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	if (rl.rlim_cur < rl.rlim_max) {
		want = rl;
		want.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl = want;
	}
	return rl.rlim_cur;
}

#if defined(__linux__)

/*
 * The tables.  SCMP_SYS() of a call this architecture lacks (open on
 * arm64, say) is negative and skipped.  The calls that are allowed only
 * with some arguments are in the *_rules() functions below them.
 */

/* Every process that runs an event loop and some OpenSSL. */
static const int base_syscalls[] = {
	/* libevent on epoll; its timers and OpenSSL read the clock
	   (the vDSO does it without a system call where it can) */
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(epoll_ctl), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* I/O on the descriptors it holds: sockets, channels, stderr */
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(recvfrom), SCMP_SYS(sendto), SCMP_SYS(recvmsg),
	SCMP_SYS(sendmsg), SCMP_SYS(close), SCMP_SYS(shutdown),
	SCMP_SYS(fcntl), SCMP_SYS(fstat), SCMP_SYS(lseek),
	/* sockets handed over by master: accept, options, addresses */
	SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(getsockname),
	SCMP_SYS(getpeername), SCMP_SYS(getsockopt), SCMP_SYS(setsockopt),
	/* malloc, OpenSSL's buffers */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	/* glibc's locks, OpenSSL's and libbsd's fork checks, randomness
	   for TLS, spool names and session ids */
	SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getrandom),
	/* signal delivery and return, abort() blocking signals */
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall),
	/* the end */
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* A worker that delivers to the spool: only below its descriptors. */
static const int worker_spool_syscalls[] = {
	/* tmp/<id> created, fsync'd, renamed into new/, new/ fsync'd;
	   a failed delivery unlinks tmp/<id> */
	SCMP_SYS(openat), SCMP_SYS(newfstatat), SCMP_SYS(renameat),
	SCMP_SYS(renameat2), SCMP_SYS(unlinkat), SCMP_SYS(fsync),
	SCMP_SYS(fdatasync),
	/* fstatvfs(3) on tmp/ at each MAIL, for spool-min-free: it
	   reads a file system's counters through a descriptor the
	   worker holds, and names no path */
	SCMP_SYS(fstatfs),
};

/* A worker that relays: a TCP connection to a numeric next hop. */
static const int worker_relay_syscalls[] = {
	/* socket() itself is in worker_rules(): AF_INET, AF_INET6 only */
	SCMP_SYS(connect),
};

/* authd: the checker chain, LMDB, libcurl, the hash pool. */
static const int authd_syscalls[] = {
	/* LMDB environments: their directories made if need be, opened
	   (also on reload), mapped, locked with fcntl(2), written with
	   pwrite and synced; the cache's key file, made on first use and
	   removed if it could not be written whole; OpenSSL's
	   configuration and libcurl's CA file per request; jansson's seed
	   from /dev/urandom */
	SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(stat), SCMP_SYS(lstat),
	SCMP_SYS(newfstatat), SCMP_SYS(statx), SCMP_SYS(access),
	SCMP_SYS(faccessat), SCMP_SYS(faccessat2), SCMP_SYS(fstatfs),
	SCMP_SYS(pread64), SCMP_SYS(pwrite64), SCMP_SYS(pwritev),
	SCMP_SYS(ftruncate), SCMP_SYS(fsync), SCMP_SYS(fdatasync),
	SCMP_SYS(mmap), SCMP_SYS(mprotect), SCMP_SYS(msync),
	SCMP_SYS(readlink), SCMP_SYS(mkdir), SCMP_SYS(mkdirat),
	SCMP_SYS(unlink), SCMP_SYS(unlinkat),
	/* the hash pool and libcurl's resolver threads: clone() is in
	   authd_rules(), for threads only */
	SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
	SCMP_SYS(sched_getaffinity), SCMP_SYS(nanosleep),
	SCMP_SYS(clock_nanosleep), SCMP_SYS(rt_sigaction), SCMP_SYS(sysinfo),
	/* libcurl and getaddrinfo(3): connections to the providers, DNS
	   over UDP, wakeups between threads; socket() is in authd_rules() */
	SCMP_SYS(connect), SCMP_SYS(socketpair),
	SCMP_SYS(pipe2), SCMP_SYS(eventfd2), SCMP_SYS(poll), SCMP_SYS(ppoll),
	SCMP_SYS(select), SCMP_SYS(pselect6), SCMP_SYS(sendmmsg),
	SCMP_SYS(recvmmsg), SCMP_SYS(uname),
	/* the ids, for logs and getpeereid(3) on the control socket */
	SCMP_SYS(getuid), SCMP_SYS(geteuid), SCMP_SYS(getgid),
	SCMP_SYS(getegid),
	/* the ldap checker: libldap's GnuTLS reads the system's trust
	   store, a directory (/etc/ssl/certs), for ldaps:// and StartTLS
	   without ca-file */
	SCMP_SYS(getdents64),
};

/*
 * The key process (keys/keys.c): an event loop over the channels it
 * was handed, and OpenSSL's arithmetic.  No accept, no socket (see
 * keys_rules()), no open: nothing but its descriptors and its memory.
 */
static const int keys_syscalls[] = {
	SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_pwait2),
	SCMP_SYS(epoll_ctl), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres),
	SCMP_SYS(gettimeofday), SCMP_SYS(time),
	/* the channels to master and the workers, stderr in -d */
	SCMP_SYS(read), SCMP_SYS(readv), SCMP_SYS(write), SCMP_SYS(writev),
	SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(close),
	SCMP_SYS(fcntl), SCMP_SYS(fstat),
	/* malloc, OpenSSL's big numbers */
	SCMP_SYS(brk), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise),
	/* OpenSSL's locks and blinding randomness */
	SCMP_SYS(futex), SCMP_SYS(getpid), SCMP_SYS(gettid),
	SCMP_SYS(getrandom),
	SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask),
	SCMP_SYS(restart_syscall),
	SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/*
 * master, and through inheritance everyone: what no process of an SMTP
 * server ever does, and what a hijacked root process would want.
 */
static const int master_denied_syscalls[] = {
	/* other processes' memory */
	SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv),
	SCMP_SYS(process_vm_writev), SCMP_SYS(kcmp),
	SCMP_SYS(perf_event_open),
	/* the kernel itself: modules, kexec, BPF, keyrings, raw ports */
	SCMP_SYS(init_module), SCMP_SYS(finit_module),
	SCMP_SYS(delete_module), SCMP_SYS(kexec_load),
	SCMP_SYS(kexec_file_load), SCMP_SYS(bpf), SCMP_SYS(add_key),
	SCMP_SYS(request_key), SCMP_SYS(keyctl), SCMP_SYS(iopl),
	SCMP_SYS(ioperm), SCMP_SYS(syslog), SCMP_SYS(userfaultfd),
	SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter),
	SCMP_SYS(io_uring_register),
	/* file systems and namespaces: mounts, handles, device nodes */
	SCMP_SYS(mount), SCMP_SYS(umount2), SCMP_SYS(pivot_root),
	SCMP_SYS(move_mount), SCMP_SYS(open_tree), SCMP_SYS(fsopen),
	SCMP_SYS(fsconfig), SCMP_SYS(fsmount), SCMP_SYS(fspick),
	SCMP_SYS(mount_setattr), SCMP_SYS(open_by_handle_at),
	SCMP_SYS(name_to_handle_at), SCMP_SYS(mknod), SCMP_SYS(mknodat),
	SCMP_SYS(unshare), SCMP_SYS(setns), SCMP_SYS(quotactl),
	SCMP_SYS(quotactl_fd), SCMP_SYS(fanotify_init),
	SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(acct),
	/* the machine: reboot, clocks, names */
	SCMP_SYS(reboot), SCMP_SYS(settimeofday), SCMP_SYS(clock_settime),
	SCMP_SYS(clock_adjtime), SCMP_SYS(adjtimex), SCMP_SYS(sethostname),
	SCMP_SYS(setdomainname), SCMP_SYS(vhangup), SCMP_SYS(uselib),
};

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

static void
rule_add(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int argc,
    const struct scmp_arg_cmp *argv)
{
	int	 rc;

	if (nr < 0)
		return;		/* not a system call of this architecture */
	if ((rc = seccomp_rule_add_array(ctx, action, nr, argc, argv)) != 0)
		fatalx("seccomp: rule for system call %d: %s", nr,
		    strerror(-rc));
}

static void
rules_add(scmp_filter_ctx ctx, uint32_t action, const int *nrs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_add(ctx, action, nrs[i], 0, NULL);
}

/*
 * A rule on one argument: arg op a, or for SCMP_CMP_MASKED_EQ
 * (arg & a) == b.  Spelt out, because libseccomp's SCMP_A0() leaves a
 * field to the compiler and clang's -Wextra says so.
 */
static void
rule_add1(scmp_filter_ctx ctx, uint32_t action, int nr, unsigned int arg,
    enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	struct scmp_arg_cmp	 cmp;

	memset(&cmp, 0, sizeof(cmp));
	cmp.arg = arg;
	cmp.op = op;
	cmp.datum_a = a;
	cmp.datum_b = b;
	rule_add(ctx, action, nr, 1, &cmp);
}

/* What the workers and authd both allow only with some arguments. */
static void
base_rules(scmp_filter_ctx ctx)
{
	/* abort(3) signals itself; no other process */
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill),
	    0, SCMP_CMP_EQ, (scmp_datum_t)getpid(), 0);
	/* libevent asks how much a socket has to read */
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl),
	    1, SCMP_CMP_EQ, FIONREAD, 0);
}

static void
worker_rules(scmp_filter_ctx ctx, unsigned int flags)
{
	/* Memory, but never new executable memory: no code is loaded
	   after setup, so injected code cannot be made runnable. */
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap),
	    2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect),
	    2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	/* syslog(3) reconnects after syslogd restarts: in the chroot
	   there is no /dev/log, so let it fail as it would, not kill */
	rule_add1(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket),
	    0, SCMP_CMP_EQ, AF_UNIX, 0);
	/* worker/keyproxy.c: an eventfd wakes each handshake paused for
	   the key process; poll(2) where it waits for it outright */
	rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(eventfd2), 0, NULL);
	rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(poll), 0, NULL);
	rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ppoll), 0, NULL);
	if (flags & SANDBOX_RELAY) {
		rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
		    0, SCMP_CMP_EQ, AF_INET, 0);
		rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
		    0, SCMP_CMP_EQ, AF_INET6, 0);
	}
}

/*
 * portcullis-metrics: base_syscalls are all it calls (an event loop,
 * accept on its one socket, imsg channels, malloc and
 * open_memstream's mremap), and here memory without PROT_EXEC and
 * syslog's failing reconnect, as a worker that neither spools nor
 * relays.  No file, no socket of its own, no connect, and no kill(2)
 * beyond abort's own tgkill: it runs as the workers' user, and must
 * not be able to signal them.  A call it alone needs goes here.
 */
static void
metrics_rules(scmp_filter_ctx ctx)
{
	worker_rules(ctx, 0);
	/*
	 * glibc's qsort(3) asks sysconf(_SC_PHYS_PAGES), that is
	 * sysinfo(2), before it sorts an array of over 1 KiB in a
	 * buffer of its own: the samples of a scrape are that large
	 * once authd counts penalties.  It reads, it changes nothing.
	 */
	rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sysinfo), 0, NULL);
}

static void
keys_rules(scmp_filter_ctx ctx)
{
	/* Memory, never executable: as the worker's. */
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap),
	    2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect),
	    2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0);
	/* syslog(3) tries to reach /dev/log, absent in the chroot: it
	   fails, as it would there, and no socket is ever made */
	rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 0, NULL);
}

static void
authd_rules(scmp_filter_ctx ctx)
{
	/* providers over IPv4 or IPv6, DNS, nscd or systemd-resolved
	   over a local socket, glibc's address sorting over netlink */
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
	    0, SCMP_CMP_EQ, AF_INET, 0);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
	    0, SCMP_CMP_EQ, AF_INET6, 0);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
	    0, SCMP_CMP_EQ, AF_UNIX, 0);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket),
	    0, SCMP_CMP_EQ, AF_NETLINK, 0);
	/*
	 * Threads, never processes.  clone3() passes its flags in memory,
	 * where a filter cannot look: it fails with ENOSYS, and glibc
	 * falls back to clone(), whose flags must say CLONE_THREAD.
	 */
	rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
	rule_add1(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone),
	    0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
}

static scmp_filter_ctx
filter_new(uint32_t default_action)
{
	scmp_filter_ctx	 ctx;
	int		 rc;

	if ((ctx = seccomp_init(default_action)) == NULL)
		fatalx("seccomp_init failed");
	/* A 32-bit or x32 system call is never ours: kill. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH,
	    SCMP_ACT_KILL_PROCESS)) != 0)
		fatalx("seccomp: bad-architecture action: %s", strerror(-rc));
	/* authd has its hash pool running already. */
	if ((rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0)
		fatalx("seccomp: thread synchronisation: %s", strerror(-rc));
	return ctx;
}

/*
 * A sanitizer build makes calls of its own, allowed only there: its
 * threads' signal stacks, its spin locks, and its reports (isatty(3)
 * for colours, the binary and /proc/self/maps to symbolise).  Without
 * them a report would be cut short by SIGSYS and the bug it describes
 * would pass for a sandbox violation.
 */
static void
sanitizer_rules(scmp_filter_ctx ctx)
{
#ifdef PORTCULLIS_SANITIZER
	static const int sanitizer_syscalls[] = {
		SCMP_SYS(sigaltstack), SCMP_SYS(sched_yield), SCMP_SYS(ioctl),
		SCMP_SYS(open), SCMP_SYS(openat), SCMP_SYS(readlink),
		SCMP_SYS(stat), SCMP_SYS(newfstatat),
	};
	char		 frame[256];

	/*
	 * Symbolise once while fork and exec are still allowed: clang's
	 * runtime starts llvm-symbolizer then, and talks to it over pipes
	 * later.  Let the runtime cache what it will not be able to read.
	 */
	__sanitizer_symbolize_pc(__builtin_return_address(0), "%p %F %L",
	    frame, sizeof(frame));
	__sanitizer_sandbox_on_notify(NULL);
	rules_add(ctx, SCMP_ACT_ALLOW, sanitizer_syscalls,
	    NELEM(sanitizer_syscalls));
#else
	(void)ctx;
#endif
}

void
sandbox_enter(enum sandbox_role role, unsigned int flags)
{
	scmp_filter_ctx	 ctx;
	int		 rc;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1)
		fatal("prctl PR_SET_NO_NEW_PRIVS");
	switch (role) {
	case SANDBOX_MASTER:
		ctx = filter_new(SCMP_ACT_ALLOW);
		rules_add(ctx, SCMP_ACT_KILL_PROCESS, master_denied_syscalls,
		    NELEM(master_denied_syscalls));
		break;
	case SANDBOX_AUTHD:
		ctx = filter_new(SCMP_ACT_KILL_PROCESS);
		rules_add(ctx, SCMP_ACT_ALLOW, base_syscalls,
		    NELEM(base_syscalls));
		rules_add(ctx, SCMP_ACT_ALLOW, authd_syscalls,
		    NELEM(authd_syscalls));
		base_rules(ctx);
		authd_rules(ctx);
		sanitizer_rules(ctx);
		break;
	case SANDBOX_WORKER:
		ctx = filter_new(SCMP_ACT_KILL_PROCESS);
		rules_add(ctx, SCMP_ACT_ALLOW, base_syscalls,
		    NELEM(base_syscalls));
		if (flags & SANDBOX_SPOOL)
			rules_add(ctx, SCMP_ACT_ALLOW, worker_spool_syscalls,
			    NELEM(worker_spool_syscalls));
		if (flags & SANDBOX_RELAY)
			rules_add(ctx, SCMP_ACT_ALLOW, worker_relay_syscalls,
			    NELEM(worker_relay_syscalls));
		base_rules(ctx);
		worker_rules(ctx, flags);
		sanitizer_rules(ctx);
		break;
	case SANDBOX_METRICS:
		ctx = filter_new(SCMP_ACT_KILL_PROCESS);
		rules_add(ctx, SCMP_ACT_ALLOW, base_syscalls,
		    NELEM(base_syscalls));
		base_rules(ctx);
		metrics_rules(ctx);
		sanitizer_rules(ctx);
		break;
	case SANDBOX_KEYS:
		ctx = filter_new(SCMP_ACT_KILL_PROCESS);
		rules_add(ctx, SCMP_ACT_ALLOW, keys_syscalls,
		    NELEM(keys_syscalls));
		base_rules(ctx);
		keys_rules(ctx);
		sanitizer_rules(ctx);
		break;
	default:
		fatalx("sandbox: unknown role %d", (int)role);
	}
	if ((rc = seccomp_load(ctx)) != 0)
		fatalx("seccomp: cannot load the filter: %s", strerror(-rc));
	seccomp_release(ctx);
	log_debug("sandbox: seccomp filter loaded");
}

void
sandbox_unveil(const char *path, const char *permissions)
{
	(void)path;
	(void)permissions;
}

#elif defined(__OpenBSD__)

/*
 * authd opens files by name after setup: its LMDB directories, the
 * cache key, the CA file.  They are unveiled one by one before
 * sandbox_enter() locks the list.  A path that does not exist yet may
 * still be unveiled (it is created later); a missing directory above
 * it is only a warning, since the open will fail and say so.
 */
void
sandbox_unveil(const char *path, const char *permissions)
{
	if (unveil(path, permissions) == -1) {
		if (errno != ENOENT)
			fatal("unveil %s", path);
		log_warn("unveil %s", path);
	}
}

void
sandbox_enter(enum sandbox_role role, unsigned int flags)
{
	const char	*promises;

	switch (role) {
	case SANDBOX_MASTER:
		/*
		 * Reload needs what start-up needed: the configuration,
		 * keys and secrets (rpath, getpw, dns), the spool and
		 * store directories (cpath, chown), listeners and the
		 * control socket (inet, unix), and children (proc, exec,
		 * sendfd).  The children are not pledged by this one:
		 * each pledges itself after its setup.
		 */
		promises = "stdio rpath cpath chown inet unix dns getpw "
		    "sendfd proc exec";
		break;
	case SANDBOX_AUTHD:
		if (unveil(NULL, NULL) == -1)
			fatal("unveil");
		/* LMDB (rpath wpath cpath flock), providers (inet dns),
		   authctl (unix), channels from master (recvfd) */
		promises = "stdio rpath wpath cpath flock inet unix dns "
		    "recvfd";
		break;
	case SANDBOX_WORKER:
		/* The chroot is the file system; the spool is reached
		   through descriptors opened before it. */
		if (flags & SANDBOX_SPOOL)
			promises = "stdio rpath wpath cpath inet recvfd";
		else
			promises = "stdio inet recvfd";
		break;
	case SANDBOX_METRICS:
		/* accept on its socket (inet), channels (recvfd); the
		   chroot is empty and nothing is opened by name */
		if (unveil(NULL, NULL) == -1)
			fatal("unveil");
		promises = "stdio inet recvfd";
		break;
	case SANDBOX_KEYS:
		/* No file at all; its workers' channels come as
		   descriptors from master. */
		if (unveil("/", "") == -1 || unveil(NULL, NULL) == -1)
			fatal("unveil");
		promises = "stdio recvfd";
		break;
	default:
		fatalx("sandbox: unknown role %d", (int)role);
	}
	if (pledge(promises, NULL) == -1)
		fatal("pledge");
}

#else

void
sandbox_unveil(const char *path, const char *permissions)
{
	(void)path;
	(void)permissions;
}

void
sandbox_enter(enum sandbox_role role, unsigned int flags)
{
	(void)role;
	(void)flags;
	log_debug("sandbox: none on this system");
}

#endif
