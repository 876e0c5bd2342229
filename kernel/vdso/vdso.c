/*
 * AdrOS's vDSO: the Linux x86_64 virtual shared object every process gets (auxv
 * AT_SYSINFO_EHDR), so that glibc and musl read the clocks without entering the kernel.
 * Exports, as Linux does, under version LINUX_2.6: __vdso_clock_gettime, __vdso_gettimeofday,
 * __vdso_time, __vdso_getcpu (and the same names without the prefix).
 *
 * The kernel maps one read-only data page (`adros_vvar`, the page just below this object)
 * that it keeps current: the TSC clocksource's base and multiplier (ns = (tsc - base) * mult
 * >> 32, exactly the kernel's `time::now_ns`), and the wall clock's base. A sequence count
 * (odd while the kernel writes) makes a read consistent. Clocks the page does not describe
 * (CPU-time clocks, bad ids) go to the real system call, so errors are the kernel's.
 *
 * Built by kernel/build.rs with the host's gcc (-shared -nostdlib, linked at 0 by
 * vdso.lds); the kernel embeds the result. Never linked against anything.
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

/* Must match kernel/src/proc/vdso.rs `Vvar`. */
struct vvar {
    uint32_t seq;
    uint32_t flags;
    uint64_t tsc_base;
    uint64_t mult;
    uint64_t wall_base_ns;
    uint64_t wall_at_ns;
};
#define VVAR_RDTSCP 1u /* TSC_AUX holds the CPU number: getcpu may use rdtscp */

/* Defined by vdso.lds as the page below the object; reached PC-relative. */
extern const volatile struct vvar adros_vvar __attribute__((visibility("hidden")));

#define barrier() __asm__ volatile("" ::: "memory")

static inline uint64_t rdtsc_ordered(void) {
    uint32_t lo, hi;
    __asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi)::"memory");
    return ((uint64_t)hi << 32) | lo;
}

static inline long sys2(long nr, long a, long b) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b) : "rcx", "r11", "memory");
    return r;
}

static inline long sys3(long nr, long a, long b, long c) {
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c) : "rcx", "r11", "memory");
    return r;
}

/* Monotonic and wall-clock ns, read consistently; 0 if the clocksource is not set up. */
static int read_clocks(uint64_t *mono, uint64_t *wall) {
    uint32_t s;
    uint64_t base, mult, wb, wa, t;
    do {
        s = adros_vvar.seq;
        barrier();
        base = adros_vvar.tsc_base;
        mult = adros_vvar.mult;
        wb = adros_vvar.wall_base_ns;
        wa = adros_vvar.wall_at_ns;
        t = rdtsc_ordered();
        barrier();
    } while ((s & 1) || s != adros_vvar.seq);
    if (mult == 0) return 0;
    uint64_t d = t > base ? t - base : 0;
    uint64_t m = (uint64_t)(((unsigned __int128)d * mult) >> 32);
    *mono = m;
    *wall = wb + (m > wa ? m - wa : 0);
    return 1;
}

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_getcpu 309

int __vdso_clock_gettime(int clk, struct kernel_timespec *ts) {
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

int __vdso_gettimeofday(struct kernel_timeval *tv, struct kernel_timezone *tz) {
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

long __vdso_time(long *t) {
    uint64_t mono, wall;
    if (!read_clocks(&mono, &wall)) return sys2(NR_time, (long)t, 0);
    long s = (long)(wall / 1000000000u);
    if (t) *t = s;
    return s;
}

int __vdso_getcpu(unsigned *cpu, unsigned *node, void *unused) {
    if (!(adros_vvar.flags & VVAR_RDTSCP)) return (int)sys3(NR_getcpu, (long)cpu, (long)node, (long)unused);
    uint32_t lo, hi, aux;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
    if (cpu) *cpu = aux & 0xfff;
    if (node) *node = 0;
    return 0;
}

int clock_gettime(int, struct kernel_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct kernel_timeval *, struct kernel_timezone *) __attribute__((weak, alias("__vdso_gettimeofday")));
long time(long *) __attribute__((weak, alias("__vdso_time")));
int getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
