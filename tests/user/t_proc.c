/* Processes: fork/vfork/threads, execve, wait4/waitid, zombies and orphans, credentials,
 * rlimits, sessions and process groups, prctl, priorities. */
#include "check.h"
#include <fcntl.h>
#include <spawn.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <grp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

static int wait_code(pid_t p) {
    int st;
    if (waitpid(p, &st, 0) != p) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 100 + WTERMSIG(st);
}

static volatile int shared_counter;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static long tid_seen;
static void *thr_tid(void *a) {
    (void)a;
    tid_seen = syscall(SYS_gettid);
    return (void *)(long)getpid();
}
static void *thr_count(void *a) {
    (void)a;
    for (int i = 0; i < 10000; i++) {
        pthread_mutex_lock(&mu);
        shared_counter++;
        pthread_mutex_unlock(&mu);
    }
    return 0;
}
static void *thr_exit_group(void *a) {
    (void)a;
    exit(42);
}
/* A clone(CLONE_VM) child process: writes the word its parent reads. */
static volatile int shared_word;
static int clone_vm_child(void *arg) {
    (void)arg;
    shared_word = 1;
    return 0;
}

/* A raw clone()d thread: it checks that the kernel stored its id at both addresses
 * (CLONE_PARENT_SETTID, CLONE_CHILD_SETTID) before it ran. musl's pthread_join relies on
 * the parent's copy: a thread that runs before it is written takes musl's thread-list
 * lock as "tid 0", and the joiner frees its stack while it still runs. */
static volatile pid_t clone_ptid, clone_ctid;
static volatile int clone_seen;
static int clone_child(void *a) {
    (void)a;
    pid_t p = clone_ptid, c = clone_ctid;
    long me = syscall(SYS_gettid);
    clone_seen = p == me && c == me ? 1 : 2;
    return 0;
}
static void *thr_sleep(void *a) {
    (void)a;
    for (;;) pause();
    return 0;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--args") == 0) {
        /* exec'd: check argv and the environment */
        const char *v = getenv("T_PROC_VAR");
        return argc == 4 && strcmp(argv[2], "one") == 0 && strcmp(argv[3], "two words") == 0 && v && strcmp(v, "val") == 0 ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "--pid") == 0) return atoi(argv[2]) == getpid() ? 0 : 1;
    check_init("proc");
    pid_t me = getpid();
    int st;

    /* fork and wait */
    pid_t c = fork();
    if (c == 0) _exit(getppid() == me ? 0 : 1);
    CHECK("fork_child_ppid", c > 0 && wait_code(c) == 0);
    c = fork();
    if (c == 0) _exit(37);
    CHECK("wait4_exit_code", wait4(c, &st, 0, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 37);
    c = fork();
    if (c == 0) _exit(256 + 3);
    CHECK("exit_code_truncated", wait_code(c) == 3);
    CHECK_ERR("wait_echild", wait(&st), ECHILD);
    CHECK_ERR("waitpid_not_child", waitpid(1, &st, 0), ECHILD);
    int p[2];
    pipe(p);
    c = fork();
    if (c == 0) {
        char b;
        read(p[0], &b, 1);
        _exit(5);
    }
    CHECK("waitpid_wnohang_running", waitpid(c, &st, WNOHANG) == 0);
    write(p[1], "x", 1);
    CHECK("waitpid_after_release", wait_code(c) == 5);
    close(p[0]);
    close(p[1]);
    pid_t a = fork();
    if (a == 0) { usleep(200000); _exit(1); }
    pid_t b = fork();
    if (b == 0) _exit(2);
    CHECK("waitpid_specific_pid", waitpid(a, &st, 0) == a && WEXITSTATUS(st) == 1 && waitpid(b, &st, 0) == b && WEXITSTATUS(st) == 2);
    a = fork();
    if (a == 0) _exit(9);
    b = fork();
    if (b == 0) _exit(9);
    pid_t w1 = wait(&st), w2 = wait(&st);
    CHECK("wait_any_reaps_all", ((w1 == a && w2 == b) || (w1 == b && w2 == a)));
    int rusage_ok;
    struct rusage ru;
    c = fork();
    if (c == 0) _exit(0);
    rusage_ok = wait4(c, &st, 0, &ru) == c;
    CHECK("wait4_rusage", rusage_ok);

    /* waitid */
    siginfo_t si;
    c = fork();
    if (c == 0) _exit(11);
    memset(&si, 0, sizeof si);
    CHECK("waitid_exited", waitid(P_PID, c, &si, WEXITED) == 0 && si.si_pid == c && si.si_code == CLD_EXITED && si.si_status == 11 && si.si_signo == SIGCHLD);
    c = fork();
    if (c == 0) { pause(); _exit(0); }
    kill(c, SIGKILL);
    memset(&si, 0, sizeof si);
    CHECK("waitid_killed", waitid(P_PID, c, &si, WEXITED) == 0 && si.si_code == CLD_KILLED && si.si_status == SIGKILL);
    c = fork();
    if (c == 0) _exit(12);
    usleep(100000);
    memset(&si, 0, sizeof si);
    CHECK("waitid_wnowait_keeps_zombie", waitid(P_PID, c, &si, WEXITED | WNOWAIT) == 0 && si.si_pid == c && waitpid(c, &st, 0) == c && WEXITSTATUS(st) == 12);
    c = fork();
    if (c == 0) { usleep(300000); _exit(0); }
    memset(&si, 0, sizeof si);
    CHECK("waitid_wnohang_none", waitid(P_ALL, 0, &si, WEXITED | WNOHANG) == 0 && si.si_pid == 0);
    wait_code(c);
    CHECK_ERR("waitid_bad_options", waitid(P_ALL, 0, &si, 0), EINVAL);

    /* zombies and orphans */
    c = fork();
    if (c == 0) _exit(0);
    usleep(200000);
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", c);
    long n = read_file(path, buf, sizeof buf);
    char *rp = n > 0 ? strrchr(buf, ')') : 0;
    CHECKF("zombie_state_z", rp && rp[2] == 'Z', "stat: %.60s", n > 0 ? buf : "(unreadable)");
    CHECK("kill_zombie_succeeds", kill(c, 0) == 0);
    wait_code(c);
    CHECK_ERR("reaped_gone", kill(c, 0), ESRCH);
    pipe(p);
    c = fork();
    if (c == 0) {
        pid_t mid = getpid();
        if (fork() == 0) {
            while (getppid() == mid) usleep(10000);
            pid_t np = getppid();
            write(p[1], &np, sizeof np);
            _exit(0);
        }
        _exit(0);
    }
    wait_code(c);
    pid_t newparent = 0;
    close(p[1]);
    CHECKF("orphan_reparented", read(p[0], &newparent, sizeof newparent) == sizeof newparent && newparent != c && newparent > 0, "new parent %d", newparent);
    close(p[0]);

    /* vfork: the child runs in the parent's memory until it execs or exits */
    volatile int vf = 0;
    c = vfork();
    if (c == 0) {
        vf = 1;
        _exit(0);
    }
    CHECK("vfork_shares_memory", c > 0 && vf == 1 && wait_code(c) == 0);
    {
        /* clone(CLONE_VM) without CLONE_THREAD: a new process in the same memory (the parent
           does not wait); CLONE_VM|CLONE_VFORK: the parent waits until it exits. */
        enum { STK = 65536 };
        char *stk = malloc(STK);
        shared_word = 0;
        c = stk ? clone(clone_vm_child, stk + STK, CLONE_VM | SIGCHLD, 0) : -1;
        int st = -1;
        CHECKF("clone_vm_shares_memory", c > 0 && waitpid(c, &st, 0) == c && WIFEXITED(st) && shared_word == 1, "c=%d st=%#x word=%d", c, st, shared_word);
        shared_word = 0;
        c = stk ? clone(clone_vm_child, stk + STK, CLONE_VM | CLONE_VFORK | SIGCHLD, 0) : -1;
        int seen = shared_word; /* the child has exited before clone returns here */
        CHECKF("clone_vfork_waits_and_shares", c > 0 && seen == 1 && waitpid(c, &st, 0) == c, "c=%d seen=%d", c, seen);
        free(stk);
    }
    {
        /* posix_spawn reports a failed exec through memory shared with the child (glibc) or a
           pipe (musl): either way the caller gets the errno. */
        pid_t sp;
        char *const av[] = {"nonexistent", 0};
        int r = posix_spawn(&sp, "/nonexistent/program", 0, 0, av, 0);
        int st = 0;
        if (r == 0) waitpid(sp, &st, 0);
        CHECKF("posix_spawn_reports_enoent", r == ENOENT || (r == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 127), "r=%d st=%#x", r, st);
        char *const tv[] = {"true", 0};
        r = posix_spawn(&sp, "/bin/busybox", 0, 0, tv, 0);
        CHECK("posix_spawn_runs", r == 0 && waitpid(sp, &st, 0) == sp && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    c = vfork();
    if (c == 0) {
        execl("/bin/busybox", "true", (char *)0);
        _exit(127);
    }
    CHECK("vfork_exec", wait_code(c) == 0);

    /* threads */
    pthread_t th;
    void *ret = 0;
    CHECK("pthread_create_join", pthread_create(&th, 0, thr_tid, 0) == 0 && pthread_join(th, &ret) == 0 && (long)ret == getpid());
    CHECK("thread_own_tid", tid_seen > 0 && tid_seen != syscall(SYS_gettid));
    CHECK("main_tid_is_pid", syscall(SYS_gettid) == getpid());
    {
        enum { STK = 65536, N = 300 };
        char *stk = malloc(STK);
        int bad = stk ? -1 : 0, t = 0;
        for (int i = 0; i < N && bad < 0; i++) {
            clone_ptid = clone_ctid = 0;
            clone_seen = 0;
            t = clone(clone_child, stk + STK,
                      CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                          CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID,
                      0, &clone_ptid, 0, &clone_ctid);
            if (t <= 0 || clone_ptid != t) {
                bad = i;
                break;
            }
            /* Done when it has looked (seen) and exited (the kernel cleared ctid). A kernel
             * that stores ctid after the thread ran may store it after the exit too: give
             * up after 2 s rather than hang. */
            struct timespec t0, now;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            while (!clone_seen || clone_ctid != 0) {
                clock_gettime(CLOCK_MONOTONIC, &now);
                if (now.tv_sec - t0.tv_sec > 2) break;
                sched_yield();
            }
            if (clone_seen != 1 || clone_ctid != 0) {
                bad = i;
                /* The thread may still be using the stack: leak it rather than free it. */
                stk = 0;
            }
        }
        CHECKF("clone_settid_before_thread_runs", bad < 0, "iteration %d of %d: clone %d, ptid %d, ctid %d, child saw %d (1: both ids set)", bad, N, t, clone_ptid, clone_ctid, clone_seen);
        free(stk);
    }
    pthread_t ts[4];
    for (int i = 0; i < 4; i++) pthread_create(&ts[i], 0, thr_count, 0);
    for (int i = 0; i < 4; i++) pthread_join(ts[i], 0);
    CHECKF("threads_mutex_counter", shared_counter == 40000, "counter %d", shared_counter);
    c = fork();
    if (c == 0) {
        pthread_t t1, t2;
        pthread_create(&t1, 0, thr_sleep, 0);
        pthread_create(&t2, 0, thr_exit_group, 0);
        for (;;) pause();
    }
    CHECK("exit_group_from_thread", wait_code(c) == 42);
    c = fork();
    if (c == 0) {
        pthread_t t1;
        pthread_create(&t1, 0, thr_sleep, 0);
        usleep(50000);
        char tpath[64], tbuf[2048];
        snprintf(tpath, sizeof tpath, "/proc/%d/status", getpid());
        if (read_file(tpath, tbuf, sizeof tbuf) < 0) _exit(3);
        char *th_line = strstr(tbuf, "Threads:");
        _exit(th_line && atoi(th_line + 8) == 2 ? 0 : 4);
    }
    CHECK("proc_status_threads", wait_code(c) == 0);
    c = fork();
    if (c == 0) {
        pthread_t t1;
        pthread_create(&t1, 0, thr_sleep, 0);
        usleep(20000);
        pthread_exit(0); /* the main thread leaves; the process lives on */
    }
    usleep(200000);
    CHECK("main_thread_exit_process_lives", waitpid(c, &st, WNOHANG) == 0);
    kill(c, SIGKILL);
    CHECK("killed_multithreaded", wait_code(c) == 100 + SIGKILL);

    /* execve */
    c = fork();
    if (c == 0) {
        char *av[] = {argv[0], "--args", "one", "two words", 0};
        char *ev[] = {"T_PROC_VAR=val", 0};
        execve(argv[0], av, ev);
        _exit(99);
    }
    CHECK("execve_argv_envp", wait_code(c) == 0);
    c = fork();
    if (c == 0) {
        char pidbuf[16];
        snprintf(pidbuf, sizeof pidbuf, "%d", getpid());
        execl(argv[0], argv[0], "--pid", pidbuf, (char *)0);
        _exit(99);
    }
    CHECK("execve_keeps_pid", wait_code(c) == 0);
    CHECK_ERR("execve_enoent", execl("/nonexistent/prog", "x", (char *)0), ENOENT);
    mkdir("/tmp/t_proc.d", 0755);
    int fd = open("/tmp/t_proc.d/notexec", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    write(fd, "#!/bin/sh\nexit 3\n", 17);
    close(fd);
    CHECK_ERR("execve_eacces_no_x", execl("/tmp/t_proc.d/notexec", "x", (char *)0), EACCES);
    CHECK_ERR("execve_directory", execl("/tmp/t_proc.d", "x", (char *)0), EACCES);
    fd = open("/tmp/t_proc.d/garbage", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    write(fd, "\x01\x02\x03garbage-not-elf\n", 19);
    close(fd);
    CHECK_ERR("execve_enoexec", execl("/tmp/t_proc.d/garbage", "x", (char *)0), ENOEXEC);
    chmod("/tmp/t_proc.d/notexec", 0755);
    c = fork();
    if (c == 0) {
        execl("/tmp/t_proc.d/notexec", "notexec", (char *)0);
        _exit(99);
    }
    CHECK("execve_shebang", wait_code(c) == 3);
    fd = open("/tmp/t_proc.d/args.sh", O_WRONLY | O_CREAT | O_TRUNC, 0755);
    const char *script = "#!/bin/sh -e\n[ \"$1\" = a1 ] && [ \"$#\" = 1 ] && exit 4\nexit 5\n";
    write(fd, script, strlen(script));
    close(fd);
    c = fork();
    if (c == 0) {
        execl("/tmp/t_proc.d/args.sh", "args.sh", "a1", (char *)0);
        _exit(99);
    }
    CHECK("execve_shebang_args", wait_code(c) == 4);
    c = fork();
    if (c == 0) {
        char *av[] = {"busybox", "true", 0};
        int dfd = open("/bin", O_RDONLY | O_DIRECTORY);
        syscall(SYS_execveat, dfd, "busybox", av, environ, 0);
        _exit(100 + errno); /* 100 + why it failed */
    }
    CHECKF("execveat", (st = wait_code(c)) == 0, "child status %d", st);
    system("rm -rf /tmp/t_proc.d");

    /* credentials */
    CHECK("root_ids", getuid() == 0 && geteuid() == 0 && getgid() == 0 && getegid() == 0);
    c = fork();
    if (c == 0) {
        if (setgid(100) != 0 || getgid() != 100 || getegid() != 100) _exit(1);
        if (setuid(1000) != 0 || getuid() != 1000 || geteuid() != 1000) _exit(2);
        if (setuid(0) == 0 || errno != EPERM) _exit(3);
        if (setgid(0) == 0 || errno != EPERM) _exit(4);
        _exit(0);
    }
    CHECKF("setuid_setgid_drop", (st = wait_code(c)) == 0, "child step %d", st);
    c = fork();
    if (c == 0) {
        uid_t r, e, s;
        if (setresuid(1000, 2000, 0) != 0) _exit(1);
        if (getresuid(&r, &e, &s) != 0 || r != 1000 || e != 2000 || s != 0) _exit(2);
        if (seteuid(0) != 0 || geteuid() != 0) _exit(3); /* the saved uid 0 allows it */
        _exit(0);
    }
    CHECKF("setresuid_saved_uid", (st = wait_code(c)) == 0, "child step %d", st);
    c = fork();
    if (c == 0) {
        uid_t r, e, s;
        if (setreuid(1000, 2000) != 0) _exit(1); /* the saved uid follows the new effective uid */
        if (getresuid(&r, &e, &s) != 0 || r != 1000 || e != 2000 || s != 2000) _exit(2);
        if (seteuid(0) == 0 || errno != EPERM) _exit(3);
        if (setuid(1000) != 0 || geteuid() != 1000 || getresuid(&r, &e, &s) != 0 || s != 2000) _exit(4);
        if (setuid(2000) != 0 || geteuid() != 2000) _exit(5); /* back to the saved uid */
        if (setresuid(-1, -1, 3000) == 0 || errno != EPERM) _exit(6);
        _exit(0);
    }
    CHECKF("setreuid_saved_uid_rules", (st = wait_code(c)) == 0, "child step %d", st);
    c = fork();
    if (c == 0) {
        /* group permission through a supplementary group */
        int fd = open("/tmp/t_proc.grp", O_WRONLY | O_CREAT | O_TRUNC, 0640);
        if (fd < 0) _exit(1);
        close(fd);
        if (chown("/tmp/t_proc.grp", 0, 4242) != 0) _exit(2);
        gid_t g = 4242;
        if (setgroups(1, &g) != 0) _exit(3);
        if (setgid(1000) != 0 || setuid(1000) != 0) _exit(4);
        fd = open("/tmp/t_proc.grp", O_RDONLY);
        if (fd < 0) _exit(5);
        close(fd);
        if (open("/tmp/t_proc.grp", O_WRONLY) != -1 || errno != EACCES) _exit(6);
        _exit(0);
    }
    CHECKF("supplementary_group_permission", (st = wait_code(c)) == 0, "child step %d", st);
    unlink("/tmp/t_proc.grp");
    c = fork();
    if (c == 0) {
        gid_t r, e, s;
        if (setresgid(10, 20, 30) != 0) _exit(1);
        if (getresgid(&r, &e, &s) != 0 || r != 10 || e != 20 || s != 30) _exit(2);
        _exit(0);
    }
    CHECK("setresgid_getresgid", wait_code(c) == 0);
    c = fork();
    if (c == 0) {
        if (setreuid(1000, 1000) != 0 || getuid() != 1000 || geteuid() != 1000) _exit(1);
        if (setreuid(0, 0) == 0) _exit(2);
        _exit(0);
    }
    CHECK("setreuid", wait_code(c) == 0);
    c = fork();
    if (c == 0) {
        gid_t gs[3] = {5, 6, 7}, out[8];
        if (setgroups(3, gs) != 0) _exit(1);
        int k = getgroups(8, out);
        if (k != 3 || out[0] != 5 || out[2] != 7) _exit(2);
        if (getgroups(0, 0) != 3) _exit(3);
        if (getgroups(1, out) != -1 || errno != EINVAL) _exit(4);
        setuid(1000);
        if (setgroups(1, gs) == 0 || errno != EPERM) _exit(5);
        _exit(0);
    }
    CHECKF("setgroups_getgroups", (st = wait_code(c)) == 0, "child step %d", st);
    c = fork();
    if (c == 0) {
        if (setgid(1000) || setuid(1000)) _exit(1);
        int f = open("/tmp/t_proc.owned", O_WRONLY | O_CREAT | O_TRUNC, 0644);
        struct stat sb;
        _exit(f >= 0 && fstat(f, &sb) == 0 && sb.st_uid == 1000 && sb.st_gid == 1000 ? 0 : 2);
    }
    CHECK("new_file_owned_by_euid", wait_code(c) == 0);
    unlink("/tmp/t_proc.owned");

    /* rlimits */
    struct rlimit rl, orl;
    CHECK("getrlimit_nofile", getrlimit(RLIMIT_NOFILE, &orl) == 0 && orl.rlim_cur > 0 && orl.rlim_cur <= orl.rlim_max);
    c = fork();
    if (c == 0) {
        struct rlimit l = {10, 10};
        if (setrlimit(RLIMIT_NOFILE, &l) != 0) _exit(1);
        int last = -1;
        for (int i = 0; i < 20; i++) {
            int f = open("/dev/null", O_RDONLY);
            if (f < 0) break;
            last = f;
        }
        if (last != 9) _exit(2);
        if (open("/dev/null", O_RDONLY) != -1 || errno != EMFILE) _exit(3);
        if (dup2(0, 50) != -1 || errno != EBADF) _exit(4);
        _exit(0);
    }
    CHECKF("rlimit_nofile_emfile", (st = wait_code(c)) == 0, "child step %d", st);
    c = fork();
    if (c == 0) {
        struct rlimit l = {100, 200};
        if (setrlimit(RLIMIT_NOFILE, &l) != 0) _exit(1);
        setuid(1000);
        l.rlim_max = 300;
        if (setrlimit(RLIMIT_NOFILE, &l) == 0 || errno != EPERM) _exit(2);
        l.rlim_cur = 150;
        l.rlim_max = 150;
        if (setrlimit(RLIMIT_NOFILE, &l) != 0) _exit(3); /* lowering is allowed */
        _exit(0);
    }
    CHECKF("rlimit_raise_hard_eperm", (st = wait_code(c)) == 0, "child step %d", st);
    rl.rlim_cur = 20;
    rl.rlim_max = 10;
    CHECK_ERR("setrlimit_cur_above_max", setrlimit(RLIMIT_NOFILE, &rl), EINVAL);
    struct rlimit pl;
    CHECK("prlimit64_get", syscall(SYS_prlimit64, 0, RLIMIT_STACK, 0, &pl) == 0 && pl.rlim_cur > 0);
    CHECK("getrlimit_stack", getrlimit(RLIMIT_STACK, &rl) == 0 && rl.rlim_cur == pl.rlim_cur);

    /* sessions and process groups */
    CHECK("getpgid_self", getpgid(0) == getpgrp() && getpgid(getpid()) == getpgrp());
    CHECK("getsid_self", getsid(0) > 0);
    c = fork();
    if (c == 0) {
        if (setsid() != getpid()) _exit(1);
        if (getsid(0) != getpid() || getpgrp() != getpid()) _exit(2);
        if (setsid() != -1 || errno != EPERM) _exit(3);
        _exit(0);
    }
    CHECKF("setsid", (st = wait_code(c)) == 0, "child step %d", st);
    pipe(p);
    c = fork();
    if (c == 0) {
        char b;
        read(p[0], &b, 1);
        _exit(getpgrp() == getpid() ? 0 : 1);
    }
    CHECK("setpgid_child", setpgid(c, c) == 0 && getpgid(c) == c);
    write(p[1], "x", 1);
    CHECK("setpgid_seen_by_child", wait_code(c) == 0);
    close(p[0]);
    close(p[1]);
    CHECK_ERR("setpgid_esrch", setpgid(999999, 0), ESRCH);
    CHECK_ERR("setpgid_negative", setpgid(0, -1), EINVAL);
    CHECK_ERR("getpgid_esrch", getpgid(999999), ESRCH);
    CHECK_ERR("getsid_esrch", getsid(999999), ESRCH);

    /* prctl, priorities, scheduling */
    char name[32] = {0};
    CHECK("prctl_set_get_name", prctl(PR_SET_NAME, "t_proc_named") == 0 && prctl(PR_GET_NAME, name) == 0 && strcmp(name, "t_proc_named") == 0);
    snprintf(path, sizeof path, "/proc/%d/comm", getpid());
    CHECK("proc_comm_follows_prctl", read_file(path, buf, sizeof buf) > 0 && strcmp(buf, "t_proc_named\n") == 0);
    CHECK("prctl_name_truncated", prctl(PR_SET_NAME, "a-very-long-process-name-indeed") == 0 && prctl(PR_GET_NAME, name) == 0 && strlen(name) == 15);
    errno = 0;
    int pr = getpriority(PRIO_PROCESS, 0);
    CHECK("getpriority", pr == 0 && errno == 0);
    c = fork();
    if (c == 0) {
        if (setpriority(PRIO_PROCESS, 0, 5) != 0) _exit(1);
        errno = 0;
        if (getpriority(PRIO_PROCESS, 0) != 5) _exit(2);
        if (nice(2) != 7) _exit(3);
        setuid(1000);
        if (setpriority(PRIO_PROCESS, 0, 0) == 0 || (errno != EACCES && errno != EPERM)) _exit(4);
        _exit(0);
    }
    CHECKF("setpriority_nice", (st = wait_code(c)) == 0, "child step %d", st);
    cpu_set_t cs;
    CPU_ZERO(&cs);
    CHECK("sched_getaffinity", sched_getaffinity(0, sizeof cs, &cs) == 0 && CPU_COUNT(&cs) >= 1);
    CHECK("sched_yield", sched_yield() == 0);
    unsigned cpu = 999;
    CHECK("getcpu", syscall(SYS_getcpu, &cpu, 0, 0) == 0 && cpu < 64);
    CHECK("sched_getscheduler", syscall(SYS_sched_getscheduler, 0) == SCHED_OTHER);

    /* fork details */
    int fd2 = open("/tmp/t_proc.shared", O_RDWR | O_CREAT | O_TRUNC, 0644);
    c = fork();
    if (c == 0) {
        write(fd2, "child", 5);
        _exit(0);
    }
    wait_code(c);
    CHECK("fork_shares_file_offset", lseek(fd2, 0, SEEK_CUR) == 5);
    close(fd2);
    unlink("/tmp/t_proc.shared");
    setenv("T_PROC_FORKENV", "inherited", 1);
    c = fork();
    if (c == 0) {
        const char *v = getenv("T_PROC_FORKENV");
        _exit(v && strcmp(v, "inherited") == 0 ? 0 : 1);
    }
    CHECK("fork_copies_environment", wait_code(c) == 0);
    int many = 0;
    for (int i = 0; i < 50; i++) {
        c = fork();
        if (c == 0) _exit(i & 0x7f);
        if (c > 0 && wait_code(c) == (i & 0x7f)) many++;
    }
    CHECK("fork_50_sequential", many == 50);
    pid_t kids[20];
    for (int i = 0; i < 20; i++) {
        kids[i] = fork();
        if (kids[i] == 0) { usleep(10000 * (i % 5)); _exit(i); }
    }
    int good = 0;
    for (int i = 0; i < 20; i++) good += wait_code(kids[i]) == i;
    CHECK("fork_20_concurrent", good == 20);
    return check_done();
}
