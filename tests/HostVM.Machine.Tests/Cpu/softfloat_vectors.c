/*
 * Generates SoftFloatVectors.txt: reference results and exception flags from the host's x86-64
 * SSE/FMA unit under the four IEEE rounding modes it has (RNE, RTZ, RDN, RUP). x86 detects
 * tininess after rounding and, with underflow masked, raises UF only for tiny *inexact*
 * results, exactly as RISC-V does (tests/.../SoftFloatTests checks a case that tells the two
 * conventions apart). RMM has no x86 equivalent and is tested by hand.
 *
 *   gcc -O0 -frounding-math -ffp-contract=off -fno-builtin -mfma softfloat_vectors.c -lm -o gen
 *   ./gen > SoftFloatVectors.txt
 *
 * Line format (hex, '0' for unused operands):
 *   op rm a b c result flags
 * rm is the RISC-V encoding (0 RNE, 1 RTZ, 2 RDN, 3 RUP); flags use the fflags layout
 * (NX=1 UF=2 OF=4 DZ=8 NV=16). A NaN result is written as the RISC-V canonical NaN: x86 returns
 * its own default NaN or propagates a payload, RISC-V always canonicalizes.
 * NaN operands are left out of the fma cases (x86 and RISC-V disagree about 0*inf+qNaN).
 */
#include <fenv.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>


static uint64_t state = 0x2545F4914F6CDD1DULL;

static uint64_t next(void)
{ /* splitmix64 */
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double d_of(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint64_t u_of(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static float f_of(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t uf_of(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

static const uint64_t special64[] = {
    0x0000000000000000ULL, 0x8000000000000000ULL, 0x7ff0000000000000ULL, 0xfff0000000000000ULL,
    0x7ff8000000000000ULL, 0x7ff4000000000000ULL, 0x7fefffffffffffffULL, 0xffefffffffffffffULL,
    0x0010000000000000ULL, 0x8010000000000000ULL, 0x0000000000000001ULL, 0x800fffffffffffffULL,
    0x3ff0000000000000ULL, 0xbff0000000000000ULL, 0x4000000000000000ULL, 0x3fe0000000000000ULL,
};

static const uint32_t special32[] = {
    0x00000000, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7fa00000, 0x7f7fffff, 0xff7fffff,
    0x00800000, 0x80800000, 0x00000001, 0x807fffff, 0x3f800000, 0xbf800000, 0x40000000, 0x3f000000,
};

/* A binary64 whose exponent field is near 'field' (clamped to [0, 2046]) with a random
 * significand, sometimes one with few significant bits (exact results and ties). */
static uint64_t f64_near(int field)
{
    uint64_t r = next();
    if (field < 0) field = 0;
    if (field > 2046) field = 2046;
    uint64_t frac = next() & 0xfffffffffffffULL;
    if (r & 2) {
        int keep = 1 + (int)((r >> 8) % 30);
        frac &= ~((1ULL << (52 - keep)) - 1);
    }
    return ((r & 1) << 63) | ((uint64_t)field << 52) | frac;
}

static uint32_t f32_near(int field)
{
    uint64_t r = next();
    if (field < 0) field = 0;
    if (field > 254) field = 254;
    uint32_t frac = (uint32_t)next() & 0x7fffff;
    if (r & 2) {
        int keep = 1 + (int)((r >> 8) % 14);
        frac &= ~((1u << (23 - keep)) - 1);
    }
    return (uint32_t)((r & 1) << 31) | ((uint32_t)field << 23) | frac;
}

static uint64_t f64_any(void)
{
    uint64_t r = next() % 16;
    if (r == 0) return special64[next() % 16];
    if (r == 1) return next();
    if (r == 2) return f64_near(0);
    if (r == 3) return f64_near(2040 + (int)(next() % 7));
    if (r == 4) return f64_near(1 + (int)(next() % 60));
    return f64_near(1023 - 40 + (int)(next() % 80));
}

static uint32_t f32_any(void)
{
    uint64_t r = next() % 16;
    if (r == 0) return special32[next() % 16];
    if (r == 1) return (uint32_t)next();
    if (r == 2) return f32_near(0);
    if (r == 3) return f32_near(248 + (int)(next() % 7));
    if (r == 4) return f32_near(1 + (int)(next() % 30));
    return f32_near(127 - 20 + (int)(next() % 40));
}

static int field64(uint64_t u) { return (int)((u >> 52) & 0x7ff); }
static int field32(uint32_t u) { return (int)((u >> 23) & 0xff); }

/* An exponent field for a product or quotient at the edge of the range: around the smallest
 * normal (down into the subnormals and below) or around the largest finite. */
static int target_field(int max_field, int frac_bits)
{
    return (next() & 1) ? 2 - (int)(next() % (frac_bits + 4)) : max_field - 1 + (int)(next() % 3);
}

/* Second operand chosen to make the operation interesting relative to the first. */
static uint64_t f64_partner(const char *op, uint64_t a)
{
    int fa = field64(a);
    switch (next() % 4) {
    case 0: return f64_any();
    case 1: /* close exponents: cancellation, ties, carries */
        return f64_near(fa - 3 + (int)(next() % 60) - 27);
    default:
        if (!strcmp(op, "f64_mul")) /* products near the underflow/overflow thresholds */
            return f64_near(target_field(2046, 52) - fa + 1023);
        if (!strcmp(op, "f64_div"))
            return f64_near(fa - target_field(2046, 52) + 1023);
        return f64_near(fa + (int)(next() % 5) - 2);
    }
}

static uint32_t f32_partner(const char *op, uint32_t a)
{
    int fa = field32(a);
    switch (next() % 4) {
    case 0: return f32_any();
    case 1: return f32_near(fa - 3 + (int)(next() % 30) - 12);
    default:
        if (!strcmp(op, "f32_mul"))
            return f32_near(target_field(254, 23) - fa + 127);
        if (!strcmp(op, "f32_div"))
            return f32_near(fa - target_field(254, 23) + 127);
        return f32_near(fa + (int)(next() % 5) - 2);
    }
}

static const int modes[4] = { FE_TONEAREST, FE_TOWARDZERO, FE_DOWNWARD, FE_UPWARD };

static unsigned flags_now(void)
{
    unsigned f = 0;
    if (fetestexcept(FE_INEXACT)) f |= 1;
    if (fetestexcept(FE_UNDERFLOW)) f |= 2;
    if (fetestexcept(FE_OVERFLOW)) f |= 4;
    if (fetestexcept(FE_DIVBYZERO)) f |= 8;
    if (fetestexcept(FE_INVALID)) f |= 16;
    return f;
}

static uint64_t canon64(uint64_t u) { return isnan(d_of(u)) ? 0x7ff8000000000000ULL : u; }
static uint32_t canon32(uint32_t u) { return isnan(f_of(u)) ? 0x7fc00000u : u; }

static void gen_f64(const char *op, int count)
{
    for (int i = 0; i < count; i++) {
        uint64_t a = f64_any(), b = f64_partner(op, a), c = 0;
        int is_fma = !strcmp(op, "f64_fma"), sq = !strcmp(op, "f64_sqrt");
        if (is_fma) {
            /* addend near the product, so that it cancels or rounds against it */
            volatile double p = d_of(a) * d_of(b);
            c = (next() & 1) ? f64_any() : (f64_near(field64(u_of(p)) - 2 + (int)(next() % 60) - 28) ^ ((next() & 1) ? 0x8000000000000000ULL : 0));
            if (isnan(d_of(a)) || isnan(d_of(b)) || isnan(d_of(c))) { i--; continue; }
        }
        if (sq) { b = 0; if (next() & 1) a &= ~0x8000000000000000ULL; }
        for (int m = 0; m < 4; m++) {
            volatile double x = d_of(a), y = d_of(b), z = d_of(c), r;
            fesetround(modes[m]);
            feclearexcept(FE_ALL_EXCEPT);
            if (!strcmp(op, "f64_add")) r = x + y;
            else if (!strcmp(op, "f64_sub")) r = x - y;
            else if (!strcmp(op, "f64_mul")) r = x * y;
            else if (!strcmp(op, "f64_div")) r = x / y;
            else if (sq) r = sqrt(x);
            else r = fma(x, y, z);
            unsigned f = flags_now();
            fesetround(FE_TONEAREST);
            printf("%s %d %016llx %016llx %016llx %016llx %x\n", op, m, (unsigned long long)a, (unsigned long long)b,
                   (unsigned long long)c, (unsigned long long)canon64(u_of(r)), f);
        }
    }
}

static void gen_f32(const char *op, int count)
{
    for (int i = 0; i < count; i++) {
        uint32_t a = f32_any(), b = f32_partner(op, a), c = 0;
        int is_fma = !strcmp(op, "f32_fma"), sq = !strcmp(op, "f32_sqrt");
        if (is_fma) {
            volatile float p = f_of(a) * f_of(b);
            c = (next() & 1) ? f32_any() : (f32_near(field32(uf_of(p)) - 2 + (int)(next() % 30) - 13) ^ ((next() & 1) ? 0x80000000u : 0));
            if (isnan(f_of(a)) || isnan(f_of(b)) || isnan(f_of(c))) { i--; continue; }
        }
        if (sq) { b = 0; if (next() & 1) a &= ~0x80000000u; }
        for (int m = 0; m < 4; m++) {
            volatile float x = f_of(a), y = f_of(b), z = f_of(c), r;
            fesetround(modes[m]);
            feclearexcept(FE_ALL_EXCEPT);
            if (!strcmp(op, "f32_add")) r = x + y;
            else if (!strcmp(op, "f32_sub")) r = x - y;
            else if (!strcmp(op, "f32_mul")) r = x * y;
            else if (!strcmp(op, "f32_div")) r = x / y;
            else if (sq) r = sqrtf(x);
            else r = fmaf(x, y, z);
            unsigned f = flags_now();
            fesetround(FE_TONEAREST);
            printf("%s %d %08x %08x %08x %08x %x\n", op, m, a, b, c, canon32(uf_of(r)), f);
        }
    }
}

static void gen_conversions(int count)
{
    for (int i = 0; i < count; i++) {
        uint64_t d = f64_any();
        if (next() % 4 == 0) d = f64_near(1023 - 126 - 24 + (int)(next() % 30)); /* binary32 subnormal range */
        if (next() % 4 == 0) d = f64_near(1023 + 126 + (int)(next() % 4));        /* binary32 overflow edge */
        uint32_t s = f32_any();
        uint64_t i64 = next() >> (next() % 64);
        if (next() & 1) i64 = (uint64_t)-(int64_t)i64;
        double di = d_of(f64_near(1023 + (int)(next() % 70) - 4)); /* for float -> integer, mostly in range */
        if (next() % 4 == 0) di = d_of(f64_near(1023 - 2 + (int)(next() % 4)));     /* near +-0.5, +-1, +-2 */
        float fi = (float)di;
        for (int m = 0; m < 4; m++) {
            volatile double vd = d_of(d), vdi = di;
            volatile float vs = f_of(s), vfi = fi;
            volatile int64_t vi = (int64_t)i64;
            volatile uint64_t vu = i64;
            volatile float rf;
            volatile double rd;
            unsigned f;
            fesetround(modes[m]);

            feclearexcept(FE_ALL_EXCEPT); rf = (float)vd; f = flags_now();
            printf("f64_to_f32 %d %016llx 0 0 %08x %x\n", m, (unsigned long long)d, canon32(uf_of(rf)), f);
            feclearexcept(FE_ALL_EXCEPT); rd = (double)vs; f = flags_now();
            printf("f32_to_f64 %d %08x 0 0 %016llx %x\n", m, s, (unsigned long long)canon64(u_of(rd)), f);
            feclearexcept(FE_ALL_EXCEPT); rf = (float)vi; f = flags_now();
            printf("i64_to_f32 %d %016llx 0 0 %08x %x\n", m, (unsigned long long)i64, uf_of(rf), f);
            feclearexcept(FE_ALL_EXCEPT); rf = (float)vu; f = flags_now();
            printf("u64_to_f32 %d %016llx 0 0 %08x %x\n", m, (unsigned long long)i64, uf_of(rf), f);
            feclearexcept(FE_ALL_EXCEPT); rd = (double)vi; f = flags_now();
            printf("i64_to_f64 %d %016llx 0 0 %016llx %x\n", m, (unsigned long long)i64, (unsigned long long)u_of(rd), f);
            feclearexcept(FE_ALL_EXCEPT); rd = (double)vu; f = flags_now();
            printf("u64_to_f64 %d %016llx 0 0 %016llx %x\n", m, (unsigned long long)i64, (unsigned long long)u_of(rd), f);
            feclearexcept(FE_ALL_EXCEPT); rf = (float)(int32_t)vi; f = flags_now();
            printf("i32_to_f32 %d %08x 0 0 %08x %x\n", m, (uint32_t)i64, uf_of(rf), f);

            /* float -> signed integer (llrint uses the current mode); only in-range results */
            if (fabs(di) < 9.2e18) {
                feclearexcept(FE_ALL_EXCEPT); long long r = llrint(vdi); f = flags_now();
                printf("f64_to_i64 %d %016llx 0 0 %016llx %x\n", m, (unsigned long long)u_of(di), (unsigned long long)r, f);
                if (r >= INT32_MIN && r <= INT32_MAX)
                    printf("f64_to_i32 %d %016llx 0 0 %08x %x\n", m, (unsigned long long)u_of(di), (uint32_t)r, f);
            }
            if (fabsf(fi) < 9.2e18f) {
                feclearexcept(FE_ALL_EXCEPT); long long r = llrintf(vfi); f = flags_now();
                printf("f32_to_i64 %d %08x 0 0 %016llx %x\n", m, uf_of(fi), (unsigned long long)r, f);
                if (r >= INT32_MIN && r <= INT32_MAX)
                    printf("f32_to_i32 %d %08x 0 0 %08x %x\n", m, uf_of(fi), (uint32_t)r, f);
            }
            fesetround(FE_TONEAREST);
        }
    }
}

/* Products whose exact value lies just below the smallest normal but rounds up to it with an
 * unbounded exponent: tiny before rounding, not tiny after. x86 and RISC-V raise no UF here in
 * the modes that round up to the smallest normal. */
static void gen_tininess(void)
{
    for (int m = 0; m < 4; m++) {
        volatile double x = d_of(0x3feffffffffffffeULL), y = d_of(0x0010000000000001ULL), r;
        volatile float fx = f_of(0x3f7ffffe), fy = f_of(0x00800001), fr;
        unsigned f;
        fesetround(modes[m]);
        feclearexcept(FE_ALL_EXCEPT); r = x * y; f = flags_now();
        printf("f64_mul %d %016llx %016llx 0 %016llx %x\n", m, (unsigned long long)u_of(x), (unsigned long long)u_of(y),
               (unsigned long long)u_of(r), f);
        feclearexcept(FE_ALL_EXCEPT); r = -x * y; f = flags_now();
        printf("f64_mul %d %016llx %016llx 0 %016llx %x\n", m, (unsigned long long)u_of(-x), (unsigned long long)u_of(y),
               (unsigned long long)u_of(r), f);
        feclearexcept(FE_ALL_EXCEPT); fr = fx * fy; f = flags_now();
        printf("f32_mul %d %08x %08x 0 %08x %x\n", m, uf_of(fx), uf_of(fy), uf_of(fr), f);
        feclearexcept(FE_ALL_EXCEPT); fr = -fx * fy; f = flags_now();
        printf("f32_mul %d %08x %08x 0 %08x %x\n", m, uf_of(-fx), uf_of(fy), uf_of(fr), f);
        fesetround(FE_TONEAREST);
    }
}

int main(void)
{
    gen_tininess();
    static const char *ops64[] = { "f64_add", "f64_sub", "f64_mul", "f64_div", "f64_sqrt", "f64_fma" };
    static const char *ops32[] = { "f32_add", "f32_sub", "f32_mul", "f32_div", "f32_sqrt", "f32_fma" };
    for (int i = 0; i < 6; i++) gen_f64(ops64[i], 60);
    for (int i = 0; i < 6; i++) gen_f32(ops32[i], 60);
    gen_conversions(25);
    return 0;
}
