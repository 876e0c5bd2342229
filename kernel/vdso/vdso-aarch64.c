/*
 * AdrOS's arm64 vDSO: what Linux's arm64 vDSO gives (auxv AT_SYSINFO_EHDR), under version
 * LINUX_2.6.39: __kernel_clock_gettime, __kernel_gettimeofday, __kernel_clock_getres, and
 * __kernel_rt_sigreturn, where signal handlers return when no sa_restorer is given (glibc
 * never gives one on arm64; vdso-aarch64.lds puts it at offset 0x1000, the kernel's
 * `vdso::SIGRETURN_AT`).
 *
 * The clock page is x86_64's (`struct vvar`, kernel/src/proc/vdso.rs and the core's
 * time::user_clock): `tsc_base` and `mult` describe the generic timer's virtual counter
 * (CNTVCT_EL0, readable at EL0: CNTKCTL_EL1.EL0VCTEN), ns = (cnt - base) * mult >> 32,
 * exactly the kernel's `time::now_ns`. Clocks the page does not describe go to the system
 * call, so errors are the kernel's.
 *
 * Built by kernel/build.rs with aarch64-linux-gnu-gcc (-shared -nostdlib, linked at 0);
 * the kernel embeds the result. Never linked against anything.
 */
#include <stdint.h>

struct kernel_timespec {
    long tv_sec;
    long tv_nsec;
};
struct kernel_timeval {
    long tv_sec;
    long tv_usec;
};
struct kernel_timezone {
    int tz_minuteswest;
    int tz_dsttime;
};

/* Must match kernel/src/proc/vdso.rs's page (core time::user_clock `UserClock`). */
struct vvar {
    uint32_t seq;
    uint32_t flags;
    uint64_t tsc_base;
    uint64_t mult;
    uint64_t wall_base_ns;
    uint64_t wall_at_ns;
};

extern const volatile struct vvar adros_vvar __attribute__((visibility("hidden")));

#define barrier() __asm__ volatile("" ::: "memory")

static inline uint64_t counter(void) {
    uint64_t v;
    __asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
}

static inline long sys2(long nr, long a, long b) {
    register long x8 __asm__("x8") = nr;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    __asm__ volatile("svc #0" : "+r"(x0) : "r"(x8), "r"(x1) : "memory");
    return x0;
}

/* Monotonic and wall-clock ns, read consistently; 0 if the clocksource is not set up. */
static int read_clocks(uint64_t *mono, uint64_t *wall) {
    uint32_t s;
    uint64_t base, mult, wb, wa, t;
    do {
        s = adros_vvar.seq;
        __asm__ volatile("dmb ishld" ::: "memory");
        base = adros_vvar.tsc_base;
        mult = adros_vvar.mult;
        wb = adros_vvar.wall_base_ns;
        wa = adros_vvar.wall_at_ns;
        t = counter();
        __asm__ volatile("dmb ishld" ::: "memory");
    } while ((s & 1) || s != adros_vvar.seq);
    if (mult == 0) return 0;
    uint64_t d = t > base ? t - base : 0;
    uint64_t m = (uint64_t)(((unsigned __int128)d * mult) >> 32);
    *mono = m;
    *wall = wb + (m > wa ? m - wa : 0);
    return 1;
}

/* asm-generic numbers */
#define NR_clock_gettime 113
#define NR_clock_getres 114
#define NR_gettimeofday 169

int __kernel_clock_gettime(int clk, struct kernel_timespec *ts) {
    uint64_t mono, wall, ns;
    int realtime;
    switch (clk) {
    case 0: case 5: case 8: case 11: /* REALTIME, REALTIME_COARSE, REALTIME_ALARM, TAI */
        realtime = 1;
        break;
    case 1: case 4: case 6: case 7: case 9: /* MONOTONIC(_RAW/_COARSE), BOOTTIME(_ALARM) */
        realtime = 0;
        break;
    default:
        return (int)sys2(NR_clock_gettime, clk, (long)ts);
    }
    if (!read_clocks(&mono, &wall)) return (int)sys2(NR_clock_gettime, clk, (long)ts);
    ns = realtime ? wall : mono;
    ts->tv_sec = (long)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
    return 0;
}

int __kernel_gettimeofday(struct kernel_timeval *tv, struct kernel_timezone *tz) {
    uint64_t mono, wall;
    if (!read_clocks(&mono, &wall)) return (int)sys2(NR_gettimeofday, (long)tv, (long)tz);
    if (tv) {
        tv->tv_sec = (long)(wall / 1000000000u);
        tv->tv_usec = (long)(wall % 1000000000u / 1000u);
    }
    if (tz) {
        tz->tz_minuteswest = 0;
        tz->tz_dsttime = 0;
    }
    return 0;
}

int __kernel_clock_getres(int clk, struct kernel_timespec *res) {
    return (int)sys2(NR_clock_getres, clk, (long)res);
}

/* mov x8, #139 (rt_sigreturn); svc #0 — Linux's arm64 trampoline, at offset 0x1000. */
__asm__(".pushsection .text.sigreturn, \"ax\"\n"
        ".global __kernel_rt_sigreturn\n"
        ".type __kernel_rt_sigreturn, %function\n"
        "__kernel_rt_sigreturn:\n"
        "    mov x8, #139\n"
        "    svc #0\n"
        ".size __kernel_rt_sigreturn, . - __kernel_rt_sigreturn\n"
        ".popsection\n");
