/* Forks 200 children that exec `busybox true`, reaps them, and checks that free memory
 * (MemFree in /proc/meminfo) came back to within 1% of where it started. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long memfree(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[128];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "MemFree:", 8)) v = atol(line + 8);
    if (f) fclose(f);
    return v;
}

static void round_of(int n) {
    for (int i = 0; i < n; i++) {
        pid_t p = fork();
        if (p == 0) {
            execl("/bin/busybox", "true", (char *)0);
            _exit(127);
        }
        int st;
        waitpid(p, &st, 0);
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            printf("FAIL forkleak: child %d failed\n", i);
            exit(1);
        }
    }
}

int main(void) {
    setvbuf(stdout, 0, _IONBF, 0);
    round_of(10); /* warm caches (kernel stacks, heap) before measuring */
    long before = memfree();
    round_of(200);
    long after = memfree();
    double loss = (double)(before - after) / (double)before * 100.0;
    if (before <= 0 || after <= 0) { printf("FAIL forkleak: no MemFree\n"); return 1; }
    if (loss > 1.0) { printf("FAIL forkleak: %ld kB before, %ld kB after (%.2f%% lost)\n", before, after, loss); return 1; }
    printf("PASS forkleak 200 fork+exec+wait: %ld kB free before, %ld kB after (%.3f%%)\n", before, after, loss);
    return 0;
}
