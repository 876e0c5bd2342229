/* sysfuzz: a bounded random-syscall fuzzer. `sysfuzz [PROCS [CALLS [SEED]]]` (default 100
 * processes x 2,000 calls, seed 0xAD05F022) forks PROCS children, at most 4 at a time; child
 * i seeds its generator with SEED + i and makes CALLS system calls with a random number
 * (0..334, 424..450) and six random arguments each: small and huge integers, -1, negative
 * and unopened descriptors, AT_FDCWD, bad flags, valid pointers into a scratch buffer (near
 * its end too), NULL and other wild pointers (unmapped, non-canonical, kernel-half),
 * huge lengths, and a few paths under /tmp/fz. The same seed makes the same calls.
 *
 * What a child must not do is end the test for a reason other than a kernel bug, so a few
 * calls are never made or have an argument pinned (see `sanitize`): exit and exit_group,
 * fork/vfork/clone/execve (no process explosion, the program stays itself), reboot, kexec,
 * iopl/ioperm (port 0xf4 would end QEMU), ptrace, process_vm_writev, mount and friends,
 * swapon, setuid games, clock and time setting, vhangup, signals and scheduling/rlimit
 * changes to any process but itself (kill(-1), kill(1), prlimit of the parent...), and
 * changes to SIGALRM, which interrupts a call that blocks (a 20 ms one-shot ITIMER_REAL is
 * armed around every call), and no stop signal to itself (nothing would continue it). Each
 * child starts a session of its own, in /tmp/fz, with its stdin/stdout/stderr on /dev/null,
 * no other descriptor open and a do-nothing handler for every signal it can catch.
 *
 * The parent reaps every child; a child that makes no progress for 10 s is SIGKILLed and
 * counted as stuck (a kill that does not end it hangs the run: the harness's timeout
 * catches that). A child killed by a signal (it unmapped its own stack, say) is counted,
 * not a failure: the kernel survived it. The parent prints
 * "sysfuzz: P processes, N calls (E errors), K killed by signals, S stuck" and
 * "PASS sysfuzz" — that it gets to print it, and that pid 1 goes on after it, is the test. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PARALLEL 4
#define SCRATCH (64 * 1024)

static uint64_t rng;
static uint64_t next(void) {
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 0x2545F4914F6CDD1DULL;
}
static uint64_t below(uint64_t n) { return n ? next() % n : 0; }

static unsigned char *scratch;
static const char *paths[] = {"/tmp/fz/a", "/tmp/fz/b", "/tmp/fz/d", "/tmp/fz/d/e",
                              "/tmp/fz", "a", "b", "d", "", "/tmp/fz/nonexistent/x",
                              "/proc/self/status", "/proc/self/maps"};

static uint64_t arg(void) {
    switch (below(20)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return (uint64_t)-1;
    case 3: return below(64);
    case 4: return (uint32_t)next();
    case 5: return next();
    case 6: return (uint64_t)(int64_t)-(int64_t)below(200); /* negative fds, AT_FDCWD */
    case 7: return (uint64_t)(scratch + below(SCRATCH));
    case 8: return (uint64_t)(scratch + SCRATCH - below(16));
    case 9: return (uint64_t)scratch;
    case 10: return below(4096); /* NULL page */
    case 11: return 0xffff800000000000ULL + below(1ULL << 40); /* kernel half */
    case 12: return 0xffffffff80000000ULL + below(1ULL << 30); /* kernel image */
    case 13: return 0x0000800000000000ULL + below(1ULL << 20); /* non-canonical */
    case 14: return 0x00007ffffffff000ULL + below(8192); /* top of user space */
    case 15: return 1ULL << below(64); /* huge lengths, single flag bits */
    case 16: return (uint64_t)paths[below(sizeof paths / sizeof *paths)];
    case 17: return 3 + below(20); /* descriptors the child may have opened */
    case 18: return (uint64_t)0x7fffffff;
    default: return (uint64_t)0xdead0000 + below(65536); /* unmapped */
    }
}

/* The syscalls never made (see the header comment). */
static int denied(long nr) {
    switch (nr) {
    case SYS_exit: case SYS_exit_group: case SYS_fork: case SYS_vfork: case SYS_clone:
#ifdef SYS_clone3
    case SYS_clone3:
#endif
    case SYS_execve: case SYS_execveat: case SYS_reboot: case SYS_kexec_load:
#ifdef SYS_kexec_file_load
    case SYS_kexec_file_load:
#endif
    case SYS_iopl: case SYS_ioperm: case SYS_ptrace: case SYS_process_vm_writev:
    case SYS_process_vm_readv: case SYS_mount: case SYS_umount2: case SYS_pivot_root:
    case SYS_chroot: case SYS_swapon: case SYS_swapoff: case SYS_setuid: case SYS_setgid:
    case SYS_setreuid: case SYS_setregid: case SYS_setresuid: case SYS_setresgid:
    case SYS_setfsuid: case SYS_setfsgid: case SYS_setgroups: case SYS_capset:
    case SYS_settimeofday: case SYS_clock_settime: case SYS_adjtimex: case SYS_clock_adjtime:
    case SYS_vhangup: case SYS_setitimer: case SYS_alarm: case SYS_rt_sigreturn:
    case SYS_pidfd_open: case SYS_pidfd_getfd: case SYS_pidfd_send_signal:
    case SYS_init_module: case SYS_finit_module: case SYS_delete_module:
    case SYS_acct: case SYS_sethostname: case SYS_setdomainname: case SYS_syslog:
    case SYS_unshare: case SYS_setns: case SYS_userfaultfd:
#ifdef SYS_fsopen
    case SYS_fsopen: case SYS_fsmount: case SYS_move_mount: case SYS_open_tree:
    case SYS_fsconfig: case SYS_fspick:
#endif
    case SYS_seccomp: case SYS_bpf: case SYS_perf_event_open: case SYS_open_by_handle_at:
    case SYS_quotactl:
        return 1;
    }
    return 0;
}

/* A signal a child may send itself: not SIGALRM (the call timer's), not a stop signal (no
 * one would continue it: the parent would wait 10 s and count it stuck). */
static uint64_t own_signal(uint64_t s) {
    switch (s) {
    case SIGALRM: case SIGSTOP: case SIGTSTP: case SIGTTIN: case SIGTTOU:
        return SIGUSR1;
    }
    return s;
}

/* Pins the arguments that could reach another process or SIGALRM. */
static void sanitize(long nr, uint64_t *a) {
    pid_t me = getpid();
    switch (nr) {
    case SYS_kill:
    case SYS_rt_sigqueueinfo:
        a[0] = below(2) ? (uint64_t)me : 0x7ffff000 + below(100); /* self or no such pid */
        a[1] = own_signal(a[1]);
        break;
    case SYS_tkill:
        a[0] = me;
        a[1] = own_signal(a[1]);
        break;
    case SYS_tgkill:
    case SYS_rt_tgsigqueueinfo:
        a[0] = me;
        a[1] = me;
        a[2] = own_signal(a[2]);
        break;
    case SYS_rt_sigaction:
        if ((int)a[0] == SIGALRM)
            a[0] = SIGUSR2;
        break;
    case SYS_rt_sigprocmask:
    case SYS_rt_sigsuspend:
        /* A set that is not ours could block SIGALRM: use a scratch copy without it. */
        if (nr == SYS_rt_sigprocmask && a[1] != 0) {
            uint64_t set = next() & ~(1ULL << (SIGALRM - 1));
            memcpy(scratch, &set, 8);
            a[1] = (uint64_t)scratch;
        }
        if (nr == SYS_rt_sigsuspend) {
            uint64_t set = next() & ~(1ULL << (SIGALRM - 1));
            memcpy(scratch, &set, 8);
            a[0] = (uint64_t)scratch;
            a[1] = 8;
        }
        break;
    case SYS_prlimit64:
    case SYS_setpriority:
    case SYS_getpriority:
        if (nr == SYS_prlimit64)
            a[0] = 0;
        else
            a[1] = 0; /* which=any, who=self */
        break;
    case SYS_sched_setscheduler:
    case SYS_sched_setparam:
    case SYS_sched_setaffinity:
    case SYS_sched_setattr:
    case SYS_ioprio_set:
    case SYS_migrate_pages:
    case SYS_move_pages:
    case SYS_process_madvise:
    case SYS_setpgid:
        if (nr == SYS_ioprio_set)
            a[1] = 0;
        else if (nr == SYS_process_madvise)
            a[0] = (uint64_t)-1;
        else
            a[0] = 0;
        break;
    case SYS_timer_create:
    case SYS_timer_settime:
        /* A POSIX timer could deliver SIGALRM at will, or a signal every microsecond. */
        if (nr == SYS_timer_create)
            a[1] = 0; /* NULL sigevent: SIGALRM to us, harmless with the handler */
        break;
    case SYS_prctl:
        if (a[0] == 22 /* PR_SET_SECCOMP */)
            a[0] = 0;
        break;
    }
}

static void on_alarm(int s) { (void)s; }
static void on_other(int s) { (void)s; }

static volatile uint64_t *progress; /* shared with the parent, per child: calls made, errors,
                                     * the syscall in progress and its first argument */

static void child(int idx, uint64_t seed, long calls, int devnull) {
    rng = seed * 0x9E3779B97F4A7C15ULL + 1;
    setsid();
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    for (int fd = 3; fd < 256; fd++)
        close(fd);
    if (chdir("/tmp/fz") != 0)
        _exit(2);
    scratch = mmap(0, SCRATCH, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (scratch == MAP_FAILED)
        _exit(3);
    for (int i = 0; i < SCRATCH; i++)
        scratch[i] = (unsigned char)next();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    /* Signals it sends itself should not end it at once: a handler for every one it can
     * catch (random rt_sigaction calls may still set them back to SIG_DFL) — except the
     * faults, whose do-nothing handler would return to the faulting instruction for ever. */
    sa.sa_handler = on_other;
    for (int s = 1; s < 65; s++)
        if (s != SIGKILL && s != SIGSTOP && s != SIGALRM && s != SIGSEGV && s != SIGBUS &&
            s != SIGILL && s != SIGFPE && s != SIGTRAP)
            sigaction(s, &sa, 0);
    sa.sa_handler = on_alarm; /* no SA_RESTART: a blocked call returns EINTR */
    sigaction(SIGALRM, &sa, 0);
    struct itimerval arm = {{0, 0}, {0, 20000}}, off = {{0, 0}, {0, 0}};
    for (long n = 0; n < calls; n++) {
        long nr;
        do {
            nr = below(2) ? (long)below(335) : 424 + (long)below(27);
        } while (denied(nr));
        uint64_t a[6];
        for (int i = 0; i < 6; i++)
            a[i] = arg();
        sanitize(nr, a);
        progress[idx * 4 + 2] = (uint64_t)nr; /* what a stuck child is in */
        progress[idx * 4 + 3] = a[0];
        syscall(SYS_setitimer, ITIMER_REAL, &arm, 0);
        long r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
        syscall(SYS_setitimer, ITIMER_REAL, &off, 0);
        (void)r;
        progress[idx * 4] = n + 1;
        if (r < 0)
            progress[idx * 4 + 1]++;
    }
    _exit(0);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int procs = argc > 1 ? atoi(argv[1]) : 100;
    long calls = argc > 2 ? atol(argv[2]) : 2000;
    uint64_t seed = argc > 3 ? strtoull(argv[3], 0, 0) : 0xAD05F022ULL;
    setvbuf(stdout, 0, _IONBF, 0);
    if (procs < 1 || calls < 1) {
        printf("usage: sysfuzz [PROCS [CALLS [SEED]]]\n");
        return 2;
    }
    mkdir("/tmp/fz", 0777);
    mkdir("/tmp/fz/d", 0777);
    int devnull = open("/dev/null", O_RDWR);
    if (devnull < 0) {
        perror("sysfuzz: /dev/null");
        return 1;
    }
    progress = mmap(0, (size_t)procs * 32, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                    -1, 0);
    if (progress == MAP_FAILED) {
        perror("sysfuzz: mmap");
        return 1;
    }
    printf("sysfuzz: %d processes x %ld calls, seed %#llx\n", procs, calls,
           (unsigned long long)seed);
    pid_t pids[PARALLEL] = {0};
    int slot_idx[PARALLEL];
    uint64_t last[PARALLEL];
    double since[PARALLEL];
    int started = 0, done = 0, killed = 0, stuck = 0;
    double t0 = now();
    while (done < procs) {
        for (int s = 0; s < PARALLEL && started < procs; s++) {
            if (pids[s])
                continue;
            pid_t p = fork();
            if (p < 0) {
                perror("sysfuzz: fork");
                return 1;
            }
            if (p == 0)
                child(started, seed + (uint64_t)started, calls, devnull);
            pids[s] = p;
            slot_idx[s] = started;
            last[s] = 0;
            since[s] = now();
            started++;
        }
        int st;
        pid_t w = waitpid(-1, &st, WNOHANG);
        if (w > 0) {
            for (int s = 0; s < PARALLEL; s++) {
                if (pids[s] != w)
                    continue;
                pids[s] = 0;
                done++;
                if (WIFSIGNALED(st)) {
                    killed++;
                    printf("sysfuzz: child %d (seed %#llx) killed by signal %d\n", slot_idx[s],
                           (unsigned long long)(seed + slot_idx[s]), WTERMSIG(st));
                } else if (WEXITSTATUS(st) != 0) {
                    printf("sysfuzz: child %d exited %d before fuzzing\n", slot_idx[s],
                           WEXITSTATUS(st));
                }
            }
            continue;
        }
        if (w < 0 && errno != EINTR) {
            perror("sysfuzz: waitpid");
            return 1;
        }
        usleep(10000);
        for (int s = 0; s < PARALLEL; s++) {
            if (!pids[s])
                continue;
            uint64_t p = progress[slot_idx[s] * 4];
            if (p != last[s]) {
                last[s] = p;
                since[s] = now();
            } else if (now() - since[s] > 10) {
                printf("sysfuzz: child %d (seed %#llx) made no progress for 10 s (in syscall %llu, "
                       "first argument %#llx): SIGKILL\n",
                       slot_idx[s], (unsigned long long)(seed + slot_idx[s]),
                       (unsigned long long)progress[slot_idx[s] * 4 + 2],
                       (unsigned long long)progress[slot_idx[s] * 4 + 3]);
                kill(pids[s], SIGKILL);
                stuck++;
                since[s] = now() + 1e9; /* once */
            }
        }
    }
    unsigned long long total = 0, errs = 0;
    /* A child whose random sigaction pointed a handler into its scratch bytes may have
     * run them and scribbled over its counters: clamp what it reported. */
    for (int i = 0; i < procs; i++) {
        uint64_t made = progress[i * 4] > (uint64_t)calls ? (uint64_t)calls : progress[i * 4];
        total += made;
        errs += progress[i * 4 + 1] > made ? made : progress[i * 4 + 1];
    }
    printf("sysfuzz: %d processes, %llu calls (%llu errors), %d killed by signals, %d stuck, "
           "%.1f s\n",
           procs, total, errs, killed - stuck, stuck, now() - t0);
    printf("PASS sysfuzz\n");
    return 0;
}
