/*
 * HostVM CPU benchmark: a deterministic, integer-only workload whose result
 * is a 64-bit checksum. The same source compiled for the host must print
 * the same checksum (guest/bench/expected-checksum.txt), so a wrong result
 * under an emulator points at a CPU bug, and the run time measures speed.
 *
 * Two parts:
 *  - a sieve of Eratosthenes, repeated over slightly different limits
 *    (byte loads and stores, tight loops, a data-dependent inner loop);
 *  - a mixing loop of xorshift64 and a 64-bit LCG with multiplies,
 *    divisions, remainders, rotates and unpredictable branches.
 *
 * Output:
 *   HOSTVM-BENCH-PART sieve=<hex> mix=<hex>
 *   HOSTVM-BENCH checksum=<hex>
 *   HOSTVM-BENCH-TIME ms=<total> sieve_ms=<part 1> mix_ms=<part 2>  (guest clock)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Sized so the whole run takes roughly 3 s under qemu-system-riscv64 (TCG). */
#define SIEVE_LIMIT 2000000u
#define SIEVE_ROUNDS 40u
#define MIX_ITERATIONS 120000000u

static uint64_t rotl64(uint64_t x, unsigned r)
{
    return (x << r) | (x >> (64u - r));
}

/* Folds a value into a running checksum (an FNV-1a style step on words). */
static uint64_t fold(uint64_t acc, uint64_t v)
{
    return (acc ^ v) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
}

static uint64_t sieve(uint32_t limit, uint8_t *composite)
{
    uint64_t count = 0, sum = 0, last = 0;

    memset(composite, 0, (size_t)limit + 1);
    for (uint32_t i = 2; (uint64_t)i * i <= limit; i++) {
        if (composite[i])
            continue;
        for (uint32_t j = i * i; j <= limit; j += i)
            composite[j] = 1;
    }
    for (uint32_t i = 2; i <= limit; i++) {
        if (!composite[i]) {
            count++;
            sum += i;
            last = i;
        }
    }
    return fold(fold(count, sum), last);
}

static uint64_t mix(uint32_t iterations)
{
    uint64_t x = 0x243f6a8885a308d3ull; /* xorshift64 state, never zero */
    uint64_t lcg = 1;
    uint64_t acc = 0;

    for (uint32_t i = 0; i < iterations; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t v = x ^ (lcg >> 11);
        switch (v & 3u) {
        case 0:
            acc += v / ((lcg >> 40) | 1u);
            break;
        case 1:
            acc ^= v * 0x2545f4914f6cdd1dull;
            break;
        case 2:
            acc -= (uint32_t)v % ((uint32_t)(lcg >> 33) | 1u);
            break;
        default:
            acc += (uint64_t)((int64_t)v >> 17);
            break;
        }
        acc = rotl64(acc, (unsigned)(i & 31u) + 1u);
    }
    return acc;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(void)
{
    uint8_t *composite = malloc((size_t)SIEVE_LIMIT + 1);
    if (composite == NULL) {
        fprintf(stderr, "cpubench: out of memory\n");
        return 1;
    }

    double start = now_ms();
    uint64_t sieve_sum = 0;
    for (uint32_t round = 0; round < SIEVE_ROUNDS; round++)
        sieve_sum = fold(sieve_sum, sieve(SIEVE_LIMIT - round * 7919u, composite));
    double sieve_done = now_ms();
    uint64_t mix_sum = mix(MIX_ITERATIONS);
    uint64_t checksum = fold(fold(0xcbf29ce484222325ull, sieve_sum), mix_sum);
    double end = now_ms();

    printf("HOSTVM-BENCH-PART sieve=%016" PRIx64 " mix=%016" PRIx64 "\n", sieve_sum, mix_sum);
    printf("HOSTVM-BENCH checksum=%016" PRIx64 "\n", checksum);
    printf("HOSTVM-BENCH-TIME ms=%.0f sieve_ms=%.0f mix_ms=%.0f\n",
           end - start, sieve_done - start, end - sieve_done);
    free(composite);
    return 0;
}
