/* Time: clock_gettime for every clock, clock_getres, nanosleep and clock_nanosleep
 * (relative and absolute), alarm, setitimer/getitimer, times, getrusage, gettimeofday, and
 * the vDSO that answers the clocks and getcpu without a system call. */
#include "check.h"
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/auxv.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/times.h>
#include <sys/wait.h>
#include <time.h>

static long long ns(clockid_t c) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0) return -1;
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
static long long mono(void) { return ns(CLOCK_MONOTONIC); }
/* The time in seconds from a system call: time(2) where the architecture has it (x86_64);
 * asm-generic (arm64) has none, so clock_gettime(CLOCK_REALTIME) there. */
static long sys_time(void) {
#ifdef SYS_time
    return syscall(SYS_time, 0);
#else
    return (long)(ns(CLOCK_REALTIME) / 1000000000LL);
#endif
}
static volatile sig_atomic_t alarms;
static void on_alrm(int s) { (void)s; alarms++; }
static volatile unsigned long sink;
static void spin_ms(int ms) {
    long long end = ns(CLOCK_PROCESS_CPUTIME_ID) + ms * 1000000LL;
    while (ns(CLOCK_PROCESS_CPUTIME_ID) < end) sink++;
}

static long long sys_ns(clockid_t c) {
    struct timespec t;
    if (syscall(SYS_clock_gettime, c, &t) != 0) return -1;
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The vDSO (libc's clock_gettime, gettimeofday, time and sched_getcpu go through it when
   the kernel gives one): present, listed in /proc/self/maps, and agreeing with the system
   calls — each vDSO reading lies between two system-call readings taken around it. */
static void test_vdso(void) {
    unsigned long v = getauxval(AT_SYSINFO_EHDR);
    CHECKF("vdso.present", v != 0 && memcmp((void *)v, "\177ELF", 4) == 0, "AT_SYSINFO_EHDR=%#lx", v);
    char maps[8192];
    int fd = open("/proc/self/maps", O_RDONLY);
    int n = fd >= 0 ? read(fd, maps, sizeof maps - 1) : -1;
    if (fd >= 0) close(fd);
    maps[n > 0 ? n : 0] = 0;
    CHECK("vdso.in_maps", strstr(maps, "[vdso]") && strstr(maps, "[vvar]"));
    static const clockid_t ids[] = {CLOCK_MONOTONIC, CLOCK_REALTIME, CLOCK_BOOTTIME, CLOCK_MONOTONIC_COARSE};
    int ok = 1;
    for (int i = 0; i < 4 && ok; i++) {
        for (int k = 0; k < 1000 && ok; k++) {
            long long a = sys_ns(ids[i]), b = ns(ids[i]), c = sys_ns(ids[i]);
            if (!(a <= b && b <= c)) {
                printf("clock %d: syscall %lld, vdso %lld, syscall %lld\n", (int)ids[i], a, b, c);
                ok = 0;
            }
        }
    }
    CHECK("vdso.clocks_between_syscalls", ok);
    struct timeval tv;
    long long a = sys_ns(CLOCK_REALTIME) / 1000;
    gettimeofday(&tv, 0);
    long long c = sys_ns(CLOCK_REALTIME) / 1000, b = tv.tv_sec * 1000000LL + tv.tv_usec;
    CHECKF("vdso.gettimeofday_between_syscalls", a <= b && b <= c, "%lld %lld %lld", a, b, c);
    long t0 = sys_time(), t1 = time(0), t2 = sys_time();
    CHECK("vdso.time_between_syscalls", t0 <= t1 && t1 <= t2);
    struct timespec ts;
    CHECK_ERR("vdso.bad_clock_einval", clock_gettime(12345, &ts), EINVAL);
    CHECK("vdso.cputime_clock_works", clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0 && ts.tv_sec >= 0);
    int cpus = (int)sysconf(_SC_NPROCESSORS_ONLN), same = 1;
    for (int cpu = 0; cpu < cpus && cpu < 4; cpu++) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set) != 0) continue;
        unsigned sc = 99;
        syscall(SYS_getcpu, &sc, 0, 0);
        int vc = sched_getcpu();
        if (vc != cpu || (int)sc != cpu) {
            printf("pinned to %d: vdso getcpu %d, syscall %u\n", cpu, vc, sc);
            same = 0;
        }
    }
    cpu_set_t all;
    CPU_ZERO(&all);
    for (int cpu = 0; cpu < cpus; cpu++) CPU_SET(cpu, &all);
    sched_setaffinity(0, sizeof all, &all);
    CHECK("vdso.getcpu_matches_pinning", same);
}

int main(void) {
    check_init("time");
    struct timespec t, r;
    static const struct { clockid_t id; const char *name; } clocks[] = {
        {CLOCK_REALTIME, "clock_realtime"}, {CLOCK_MONOTONIC, "clock_monotonic"},
        {CLOCK_PROCESS_CPUTIME_ID, "clock_process_cputime"}, {CLOCK_THREAD_CPUTIME_ID, "clock_thread_cputime"},
        {CLOCK_MONOTONIC_RAW, "clock_monotonic_raw"}, {CLOCK_REALTIME_COARSE, "clock_realtime_coarse"},
        {CLOCK_MONOTONIC_COARSE, "clock_monotonic_coarse"}, {CLOCK_BOOTTIME, "clock_boottime"},
    };
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        int ok = syscall(SYS_clock_gettime, clocks[i].id, &t) == 0 && t.tv_nsec >= 0 && t.tv_nsec < 1000000000 && t.tv_sec >= 0;
        CHECK(clocks[i].name, ok);
    }
    int res_ok = 1;
    for (unsigned i = 0; i < sizeof clocks / sizeof clocks[0]; i++)
        res_ok &= syscall(SYS_clock_getres, clocks[i].id, &r) == 0 && r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= 10000000;
    CHECK("clock_getres_all", res_ok);
    CHECK("clock_getres_null", syscall(SYS_clock_getres, CLOCK_MONOTONIC, 0) == 0);
    CHECK_ERR("clock_gettime_invalid", syscall(SYS_clock_gettime, 12345, &t), EINVAL);
    CHECK_ERR("clock_getres_invalid", syscall(SYS_clock_getres, -1000, &r), EINVAL);
    CHECK("realtime_plausible", ns(CLOCK_REALTIME) > 1600000000LL * 1000000000LL);
    long long prev = mono();
    int mono_ok = 1;
    for (int i = 0; i < 2000; i++) {
        long long n = mono();
        mono_ok &= n >= prev;
        prev = n;
    }
    CHECK("monotonic_never_goes_back", mono_ok);
    CHECK("boottime_ge_monotonic", ns(CLOCK_BOOTTIME) >= ns(CLOCK_MONOTONIC) - 1000000);
    struct timeval tv;
    long long rt = ns(CLOCK_REALTIME);
    CHECK("gettimeofday_matches", gettimeofday(&tv, 0) == 0 && llabs(tv.tv_sec * 1000000000LL + tv.tv_usec * 1000LL - rt) < 2000000000LL && tv.tv_usec < 1000000);
#ifdef SYS_time /* time(2) itself: x86_64 only (asm-generic, e.g. arm64, has none) */
    time_t tt = 0;
    CHECK("time_matches", syscall(SYS_time, &tt) == tt && llabs((long long)tt - rt / 1000000000LL) <= 2);
#endif

    /* sleeping */
    long long t0 = mono();
    struct timespec d = {0, 50000000};
    CHECK("nanosleep_50ms", nanosleep(&d, 0) == 0 && mono() - t0 >= 50000000LL);
    CHECK("nanosleep_not_too_long", mono() - t0 < 2000000000LL);
    d.tv_nsec = 1000000000;
    CHECK_ERR("nanosleep_bad_nsec", nanosleep(&d, 0), EINVAL);
    d.tv_sec = -1;
    d.tv_nsec = 0;
    CHECK_ERR("nanosleep_negative", nanosleep(&d, 0), EINVAL);
    d.tv_sec = 0;
    d.tv_nsec = 0;
    CHECK("nanosleep_zero", nanosleep(&d, 0) == 0);
    t0 = mono();
    d.tv_nsec = 30000000;
    CHECK("clock_nanosleep_relative", clock_nanosleep(CLOCK_MONOTONIC, 0, &d, 0) == 0 && mono() - t0 >= 30000000LL);
    struct timespec abs;
    clock_gettime(CLOCK_MONOTONIC, &abs);
    abs.tv_nsec += 60000000;
    if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    long long target = abs.tv_sec * 1000000000LL + abs.tv_nsec;
    CHECK("clock_nanosleep_abstime", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, 0) == 0 && mono() >= target);
    t0 = mono();
    CHECK("clock_nanosleep_abstime_past", clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, 0) == 0 && mono() - t0 < 20000000LL);
    clock_gettime(CLOCK_REALTIME, &abs);
    abs.tv_sec += 0;
    abs.tv_nsec += 30000000;
    if (abs.tv_nsec >= 1000000000) { abs.tv_sec++; abs.tv_nsec -= 1000000000; }
    CHECK("clock_nanosleep_realtime_abs", clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &abs, 0) == 0);
    CHECK("clock_nanosleep_bad_clock", clock_nanosleep(12345, 0, &d, 0) == EINVAL);

    /* alarm */
    struct sigaction sa = {0};
    sa.sa_handler = on_alrm;
    sigaction(SIGALRM, &sa, 0);
    CHECK("alarm_none_pending", alarm(5) == 0);
    CHECK("alarm_returns_remaining", alarm(0) >= 4);
    CHECK("alarm_cancelled", alarm(0) == 0);
    alarms = 0;
    t0 = mono();
    alarm(1);
    while (!alarms && mono() - t0 < 3000000000LL) pause();
    CHECK("alarm_fires", alarms == 1 && mono() - t0 >= 900000000LL);

    /* interval timers */
    struct itimerval it = {{0, 0}, {0, 100000}}, cur;
    alarms = 0;
    CHECK("setitimer_real", setitimer(ITIMER_REAL, &it, 0) == 0);
    CHECK("getitimer_remaining", getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_usec > 0 && cur.it_value.tv_usec <= 100000 && cur.it_interval.tv_usec == 0);
    t0 = mono();
    while (!alarms && mono() - t0 < 2000000000LL) pause();
    CHECK("itimer_real_oneshot", alarms == 1 && mono() - t0 >= 80000000LL);
    CHECK("getitimer_expired_zero", getitimer(ITIMER_REAL, &cur) == 0 && cur.it_value.tv_sec == 0 && cur.it_value.tv_usec == 0);
    struct itimerval per = {{0, 20000}, {0, 20000}};
    alarms = 0;
    setitimer(ITIMER_REAL, &per, 0);
    t0 = mono();
    while (alarms < 5 && mono() - t0 < 3000000000LL) pause();
    struct itimerval off = {{0, 0}, {0, 0}}, old;
    setitimer(ITIMER_REAL, &off, &old);
    CHECK("itimer_real_periodic", alarms >= 5 && old.it_interval.tv_usec == 20000);
    int before = alarms;
    usleep(100000);
    CHECK("itimer_disarmed", alarms == before);
    struct itimerval bad = {{0, 0}, {0, 2000000}};
    CHECK_ERR("setitimer_bad_usec", setitimer(ITIMER_REAL, &bad, 0), EINVAL);
    CHECK_ERR("setitimer_bad_which", setitimer(77, &it, 0), EINVAL);
    pid_t c = fork();
    if (c == 0) {
        /* an armed timer is not inherited */
        struct itimerval ci;
        getitimer(ITIMER_REAL, &ci);
        _exit(ci.it_value.tv_sec == 0 && ci.it_value.tv_usec == 0 && alarm(0) == 0 ? 0 : 1);
    }
    int st;
    alarm(10);
    c = fork();
    if (c == 0) _exit(alarm(0) == 0 ? 0 : 1);
    CHECK("alarm_not_inherited_by_fork", waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    alarm(0);
    while (wait(0) > 0) {}

    /* CPU time accounting */
    long long cpu0 = ns(CLOCK_PROCESS_CPUTIME_ID), th0 = ns(CLOCK_THREAD_CPUTIME_ID);
    struct tms tm0, tm1;
    clock_t ticks0 = times(&tm0);
    spin_ms(300);
    clock_t ticks1 = times(&tm1);
    long long cpu1 = ns(CLOCK_PROCESS_CPUTIME_ID), th1 = ns(CLOCK_THREAD_CPUTIME_ID);
    CHECK("process_cputime_advances", cpu1 - cpu0 >= 300000000LL);
    CHECK("thread_cputime_advances", th1 - th0 >= 250000000LL);
    long hz = sysconf(_SC_CLK_TCK);
    CHECKF("times_utime", (tm1.tms_utime + tm1.tms_stime) - (tm0.tms_utime + tm0.tms_stime) >= hz / 5, "%ld ticks at %ld Hz", (long)((tm1.tms_utime + tm1.tms_stime) - (tm0.tms_utime + tm0.tms_stime)), hz);
    CHECK("times_elapsed", ticks1 - ticks0 >= hz / 5);
    struct rusage ru;
    CHECK("getrusage_self", getrusage(RUSAGE_SELF, &ru) == 0 && ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec >= 300000);
    c = fork();
    if (c == 0) {
        spin_ms(200);
        _exit(0);
    }
    waitpid(c, &st, 0);
    CHECK("getrusage_children", getrusage(RUSAGE_CHILDREN, &ru) == 0 && ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec + ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec >= 150000);
    CHECK("times_children", times(&tm1) != (clock_t)-1 && tm1.tms_cutime + tm1.tms_cstime >= hz / 10);
    CHECK_ERR("getrusage_bad_who", getrusage(42, &ru), EINVAL);
    struct timespec sl = {0, 100000000};
    long long cs0 = ns(CLOCK_PROCESS_CPUTIME_ID);
    nanosleep(&sl, 0);
    CHECK("sleep_uses_no_cpu", ns(CLOCK_PROCESS_CPUTIME_ID) - cs0 < 50000000LL);
    struct sysinfo si;
    CHECK("sysinfo_uptime", sysinfo(&si) == 0 && si.uptime >= 0 && llabs(si.uptime - ns(CLOCK_BOOTTIME) / 1000000000LL) <= 2);
    test_vdso();
    return check_done();
}
