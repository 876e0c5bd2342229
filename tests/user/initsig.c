/* initsig: signals without a handler sent to process 1 are ignored, as Linux ignores them
 * for init (SIGNAL_UNKILLABLE). Run it AS pid 1 (`--exec 'exec initsig [COMMAND]'`):
 *
 * - a child sends pid 1 SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT, SIGALRM, SIGKILL, SIGSTOP
 *   and a real-time signal through kill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo
 *   (each call must return 0), while pid 1, with no handlers, waits for it; pid 1 must
 *   still be running afterwards and see the child exit 0;
 * - pid 1 raises SIGINT and SIGTERM at itself and survives;
 * - a signal pid 1 blocks is queued (sigpending shows it) and ignored when unblocked;
 * - a signal pid 1 has a handler for is still delivered to the handler.
 *
 * One PASS/FAIL line per check (check.h), then, with COMMAND, pid 1 becomes
 * `/bin/sh -c COMMAND` (so one boot can go on testing); without, it exits with the
 * summary's status. Run as any other pid it only sends (the child half). Linux 6.1 gives
 * the same results (checked on the bench's Linux peer with rdinit=). */
#include "check.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGQUIT, SIGALRM, SIGKILL, SIGSTOP, 0};

static void queue_info(siginfo_t *si, int sig) {
    memset(si, 0, sizeof *si);
    si->si_signo = sig;
    si->si_code = SI_QUEUE;
    si->si_pid = getpid();
    si->si_uid = getuid();
}

/* Sends every signal of `sigs` (and a real-time one) to pid 1 four ways. */
static void send_all(void) {
    char name[64];
    for (int i = 0; sigs[i]; i++) {
        int s = sigs[i];
        siginfo_t si;
        snprintf(name, sizeof name, "kill_%d", s);
        CHECK(name, kill(1, s) == 0);
        snprintf(name, sizeof name, "tgkill_%d", s);
        CHECK(name, syscall(SYS_tgkill, 1, 1, s) == 0);
        queue_info(&si, s);
        snprintf(name, sizeof name, "rt_sigqueueinfo_%d", s);
        CHECK(name, syscall(SYS_rt_sigqueueinfo, 1, s, &si) == 0);
        queue_info(&si, s);
        snprintf(name, sizeof name, "rt_tgsigqueueinfo_%d", s);
        CHECK(name, syscall(SYS_rt_tgsigqueueinfo, 1, 1, s, &si) == 0);
    }
    siginfo_t si;
    queue_info(&si, SIGRTMIN + 3);
    CHECK("rt_sigqueueinfo_rt", syscall(SYS_rt_sigqueueinfo, 1, SIGRTMIN + 3, &si) == 0);
    CHECK("init_alive", kill(1, 0) == 0);
}

static volatile sig_atomic_t got_usr2;
static void on_usr2(int s) {
    (void)s;
    got_usr2++;
}

int main(int argc, char **argv) {
    check_init("initsig");
    if (getpid() != 1) {
        send_all();
        return check_done();
    }
    pid_t c = fork();
    if (c == 0) {
        send_all();
        _exit(check_passed && !check_failed ? 0 : 1);
    }
    int st = 0;
    pid_t w;
    while ((w = waitpid(c, &st, 0)) < 0 && errno == EINTR)
        ;
    CHECK("child_sent_all", w == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK("survived_children_signals", 1);

    CHECK("raise_int", raise(SIGINT) == 0);
    CHECK("raise_term", raise(SIGTERM) == 0);
    CHECK("kill_self_kill", kill(1, SIGKILL) == 0);
    CHECK("survived_own_signals", 1);

    sigset_t set, pend;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, 0);
    c = fork();
    if (c == 0) {
        kill(1, SIGTERM);
        _exit(0);
    }
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    sigpending(&pend);
    CHECK("blocked_term_is_queued", sigismember(&pend, SIGTERM));
    sigprocmask(SIG_UNBLOCK, &set, 0);
    sigpending(&pend);
    CHECK("unblocked_term_is_ignored", !sigismember(&pend, SIGTERM));

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigaction(SIGUSR2, &sa, 0);
    c = fork();
    if (c == 0) {
        kill(1, SIGUSR2);
        _exit(0);
    }
    while (waitpid(c, &st, 0) < 0 && errno == EINTR)
        ;
    CHECK("handled_usr2_is_delivered", got_usr2 == 1);
    int status = check_done();
    if (argc > 1) {
        execl("/bin/sh", "sh", "-c", argv[1], (char *)0);
        printf("FAIL: initsig.exec_sh: %s\n", strerror(errno));
        return 1;
    }
    return status;
}
