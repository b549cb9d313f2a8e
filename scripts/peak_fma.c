/* Peak FP32 FMA and INT8 VNNI throughput of one core (docs/BENCHMARKS.md, "floors").
 * Build: gcc -O3 -funroll-loops -mavx512f -mavx512vnni scripts/peak_fma.c -o /tmp/peak_fma && taskset -c 0 /tmp/peak_fma
 * 12 independent accumulators hide the FMA latency; the result is MACs per second of this thread's own CPU time (best of 7 runs), so
 * time the scheduler gives to other processes on a shared machine is not counted. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

#define N 12
int main(void) {
    const long iters = 20000000;
    double best_f = 0, best_i = 0;
    for (int rep = 0; rep < 7; rep++) {
        __m512 a[N], b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
        for (int j = 0; j < N; j++) a[j] = _mm512_set1_ps((float)j);
        double t = now();
        for (long i = 0; i < iters; i++)
            for (int j = 0; j < N; j++) a[j] = _mm512_fmadd_ps(a[j], b, c);
        t = now() - t;
        float s = 0; for (int j = 0; j < N; j++) s += _mm512_reduce_add_ps(a[j]);
        double macs = (double)iters * N * 16 / t;
        if (macs > best_f) best_f = macs;
        if (s == 42.0f) printf(" ");
        __m512i x[N], u = _mm512_set1_epi8(3), v = _mm512_set1_epi8(5);
        for (int j = 0; j < N; j++) x[j] = _mm512_set1_epi32(j);
        t = now();
        for (long i = 0; i < iters; i++)
            for (int j = 0; j < N; j++) x[j] = _mm512_dpbusd_epi32(x[j], u, v);
        t = now() - t;
        int r = 0; for (int j = 0; j < N; j++) r += _mm512_reduce_add_epi32(x[j]);
        macs = (double)iters * N * 64 / t;
        if (macs > best_i) best_i = macs;
        if (r == 42) printf(" ");
    }
    printf("fp32 FMA: %.1f GMAC/s per core\nint8 VNNI (vpdpbusd): %.1f GMAC/s per core\n", best_f / 1e9, best_i / 1e9);
    return 0;
}
