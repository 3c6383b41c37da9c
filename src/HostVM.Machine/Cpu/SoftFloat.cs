using System.Numerics;
using System.Runtime.CompilerServices;

namespace HostVM.Machine.Cpu;

/// <summary>
/// IEEE 754-2008 binary32/binary64 arithmetic exactly as the RISC-V F and D extensions specify it:
/// five rounding modes, the five <c>fflags</c> exceptions, canonical NaN results, tininess
/// detected after rounding.
/// </summary>
/// <remarks>
/// <para>
/// Values are raw bit patterns (binary32 in a <see cref="uint"/>, binary64 in a <see cref="ulong"/>);
/// <c>flags</c> accumulates <see cref="FloatFlags"/> bits and is never cleared here. NaN boxing
/// belongs to the CPU. No input allocates or throws.
/// </para>
/// <para>
/// Two layers. The exact layer (<c>Exact*</c>, <see cref="RoundPack"/>) works on integer
/// significands and is the definition of every result. The fast layer uses the host's
/// round-to-nearest-even double arithmetic, which is what IEEE hardware gives .NET, together with
/// error-free transformations that recover the sign of the rounding error exactly (TwoSum for
/// sums, an FMA residual for products, quotients and square roots). From a correctly rounded
/// nearest value and the exact sign of its error, every other rounding mode and the inexact flag
/// follow; the fast layer is only taken where those residuals are provably exact and neither
/// overflow nor underflow can occur, and everything else drops to the exact layer.
/// binary32 operations run in double: products of two binary32 values are exact there, and the
/// error sign of the double result tells the final rounding to binary32 which way the true
/// value lies, so no double rounding error is possible.
/// </para>
/// <para>
/// The fast layer assumes what .NET guarantees on x64 and Arm64: IEEE double arithmetic in
/// round-to-nearest-even with subnormals (no flush-to-zero), correctly rounded
/// <see cref="Math.Sqrt"/> and <see cref="Math.FusedMultiplyAdd"/>, and no contraction of
/// <c>a * b + c</c> into an FMA by the JIT (TwoSum depends on that).
/// </para>
/// </remarks>
public static class SoftFloat
{
    public const uint F32CanonicalNaN = 0x7fc00000;
    public const ulong F64CanonicalNaN = 0x7ff8000000000000;

    internal const int F32FracBits = 23;
    internal const int F32ExpBits = 8;
    internal const int F64FracBits = 52;
    internal const int F64ExpBits = 11;

    private const uint NX = (uint)FloatFlags.Inexact;
    private const uint UF = (uint)FloatFlags.Underflow;
    private const uint OF = (uint)FloatFlags.Overflow;
    private const uint DZ = (uint)FloatFlags.DivideByZero;
    private const uint NV = (uint)FloatFlags.Invalid;

    private const uint F32Sign = 0x8000_0000;
    private const uint F32ExpMask = 0x7f80_0000;
    private const uint F32QuietBit = 0x0040_0000;
    private const ulong F64Sign = 0x8000_0000_0000_0000;
    private const ulong F64QuietBit = 0x0008_0000_0000_0000;

    // Operand classes returned by Unpack.
    private const int ClassZero = 0;
    private const int ClassFinite = 1;
    private const int ClassInf = 2;
    private const int ClassQuietNaN = 3;
    private const int ClassSignalingNaN = 4;

    // ---------------------------------------------------------------- binary32 arithmetic

    public static uint F32Add(uint a, uint b, RoundingMode rm, ref uint flags)
    {
        if (IsF32InfOrNaN(a) || IsF32InfOrNaN(b))
        {
            return (uint)ExactAdd(a, b, F32FracBits, F32ExpBits, rm, ref flags);
        }

        // Both operands are exact in double and so is the TwoSum error; the sum cannot overflow double.
        double x = F32AsDouble(a), y = F32AsDouble(b);
        double s = x + y;
        if (s == 0)
        {
            return ZeroSumIsNegative((a & F32Sign) != 0, (b & F32Sign) != 0, rm) ? F32Sign : 0;
        }

        return RoundToF32(s, TwoSumError(x, y, s), rm, ref flags);
    }

    public static uint F32Sub(uint a, uint b, RoundingMode rm, ref uint flags) => F32Add(a, b ^ F32Sign, rm, ref flags);

    public static uint F32Mul(uint a, uint b, RoundingMode rm, ref uint flags)
    {
        if (IsF32InfOrNaN(a) || IsF32InfOrNaN(b))
        {
            return (uint)ExactMul(a, b, F32FracBits, F32ExpBits, rm, ref flags);
        }

        // 24 x 24 bits fit in 53: the double product is exact (including its zero sign).
        return RoundToF32(F32AsDouble(a) * F32AsDouble(b), 0, rm, ref flags);
    }

    public static uint F32Div(uint a, uint b, RoundingMode rm, ref uint flags)
    {
        if (IsF32InfOrNaN(a) || IsF32InfOrNaN(b) || (b & ~F32Sign) == 0)
        {
            return (uint)ExactDiv(a, b, F32FracBits, F32ExpBits, rm, ref flags);
        }

        double x = F32AsDouble(a), y = F32AsDouble(b);
        double q = x / y;

        // x - q*y is exact in double at binary32 magnitudes; its sign, times y's, is the sign of x/y - q.
        double r = Math.FusedMultiplyAdd(-q, y, x);
        return RoundToF32(q, y > 0 ? r : -r, rm, ref flags);
    }

    public static uint F32Sqrt(uint a, RoundingMode rm, ref uint flags)
    {
        if ((a & ~F32Sign) == 0)
        {
            return a; // sqrt(+-0) = +-0
        }

        if ((a & F32Sign) != 0 || IsF32InfOrNaN(a))
        {
            return (uint)ExactSqrt(a, F32FracBits, F32ExpBits, rm, ref flags);
        }

        double x = F32AsDouble(a);
        double s = Math.Sqrt(x);
        return RoundToF32(s, Math.FusedMultiplyAdd(-s, s, x), rm, ref flags);
    }

    public static uint F32MulAdd(uint a, uint b, uint c, RoundingMode rm, ref uint flags)
    {
        if (IsF32InfOrNaN(a) || IsF32InfOrNaN(b) || IsF32InfOrNaN(c))
        {
            return (uint)ExactMulAdd(a, b, c, F32FracBits, F32ExpBits, rm, ref flags);
        }

        double p = F32AsDouble(a) * F32AsDouble(b); // exact
        double z = F32AsDouble(c);
        double s = p + z;
        if (s == 0)
        {
            // p + z == 0 in double means the exact sum is zero (both are multiples of 2^-298).
            return ZeroSumIsNegative(double.IsNegative(p), (c & F32Sign) != 0, rm) ? F32Sign : 0;
        }

        return RoundToF32(s, TwoSumError(p, z, s), rm, ref flags);
    }

    // ---------------------------------------------------------------- binary64 arithmetic

    public static ulong F64Add(ulong a, ulong b, RoundingMode rm, ref uint flags)
    {
        // Below 2^1023 the sum cannot overflow and TwoSum has no intermediate overflow. Sums of
        // doubles that land in the subnormal range are always exact, so underflow cannot occur.
        if (F64Field(a) < 0x7fe && F64Field(b) < 0x7fe)
        {
            double x = BitConverter.UInt64BitsToDouble(a), y = BitConverter.UInt64BitsToDouble(b);
            double s = x + y;
            if (s == 0)
            {
                return ZeroSumIsNegative((long)a < 0, (long)b < 0, rm) ? F64Sign : 0;
            }

            double e = TwoSumError(x, y, s);
            ulong bits = BitConverter.DoubleToUInt64Bits(s);
            if (e == 0)
            {
                return bits;
            }

            flags |= NX;
            return rm == RoundingMode.NearestEven ? bits : FromNearest(bits, (long)bits < 0, e, Math.Abs(e) == F64HalfUlp(bits), rm);
        }

        return ExactAdd(a, b, F64FracBits, F64ExpBits, rm, ref flags);
    }

    public static ulong F64Sub(ulong a, ulong b, RoundingMode rm, ref uint flags) => F64Add(a, b ^ F64Sign, rm, ref flags);

    public static ulong F64Mul(ulong a, ulong b, RoundingMode rm, ref uint flags)
    {
        double x = BitConverter.UInt64BitsToDouble(a), y = BitConverter.UInt64BitsToDouble(b);
        double p = x * y;
        ulong bits = BitConverter.DoubleToUInt64Bits(p);

        // |p| in [2^-969, 2^1023): no overflow, the product is not tiny, and the residual
        // a*b - p is exactly representable.
        if (F64Field(bits) - 54 <= 0x7fd - 54)
        {
            double e = Math.FusedMultiplyAdd(x, y, -p);
            if (e == 0)
            {
                return bits;
            }

            flags |= NX;
            return rm == RoundingMode.NearestEven ? bits : FromNearest(bits, (long)bits < 0, e, Math.Abs(e) == F64HalfUlp(bits), rm);
        }

        if (p == 0 && ((a << 1) == 0 || (b << 1) == 0))
        {
            return bits; // a zero times a finite number: exact, sign already right
        }

        return ExactMul(a, b, F64FracBits, F64ExpBits, rm, ref flags);
    }

    public static ulong F64Div(ulong a, ulong b, RoundingMode rm, ref uint flags)
    {
        double x = BitConverter.UInt64BitsToDouble(a), y = BitConverter.UInt64BitsToDouble(b);
        double q = x / y;
        ulong bits = BitConverter.DoubleToUInt64Bits(q);

        // q in [2^-969, 2^1023) and |a| >= 2^-959: no overflow or underflow and a - q*b is exact.
        // A quotient is never exactly halfway between two doubles, so RMM behaves like RNE here.
        if (F64Field(bits) - 54 <= 0x7fd - 54 && F64Field(a) - 64 <= 0x7fe - 64)
        {
            double r = Math.FusedMultiplyAdd(-q, y, x);
            if (r == 0)
            {
                return bits;
            }

            flags |= NX;
            return rm is RoundingMode.NearestEven or RoundingMode.NearestMaxMagnitude
                ? bits
                : FromNearest(bits, (long)bits < 0, y > 0 ? r : -r, false, rm);
        }

        return ExactDiv(a, b, F64FracBits, F64ExpBits, rm, ref flags);
    }

    public static ulong F64Sqrt(ulong a, RoundingMode rm, ref uint flags)
    {
        if ((long)a <= 0 || F64Field(a) == 0x7ff)
        {
            // +-0 returns itself; negative, infinite and NaN operands take the exact path.
            return (a << 1) == 0 ? a : ExactSqrt(a, F64FracBits, F64ExpBits, rm, ref flags);
        }

        // Square roots of positive doubles are always normal and never halfway cases. Tiny
        // operands are scaled by an even power of two so that the residual s*s - x is exact.
        double x = BitConverter.UInt64BitsToDouble(a);
        bool scaled = F64Field(a) < 0x80;
        if (scaled)
        {
            x *= BitConverter.UInt64BitsToDouble((1023UL + 600) << 52); // 2^600
        }

        double s = Math.Sqrt(x);
        double r = Math.FusedMultiplyAdd(-s, s, x);
        if (r != 0)
        {
            flags |= NX;
            if (rm is not (RoundingMode.NearestEven or RoundingMode.NearestMaxMagnitude))
            {
                s = BitConverter.UInt64BitsToDouble(FromNearest(BitConverter.DoubleToUInt64Bits(s), false, r, false, rm));
            }
        }

        if (scaled)
        {
            s *= BitConverter.UInt64BitsToDouble((1023UL - 300) << 52); // 2^-300
        }

        return BitConverter.DoubleToUInt64Bits(s);
    }

    public static ulong F64MulAdd(ulong a, ulong b, ulong c, RoundingMode rm, ref uint flags)
    {
        double x = BitConverter.UInt64BitsToDouble(a), y = BitConverter.UInt64BitsToDouble(b), z = BitConverter.UInt64BitsToDouble(c);
        double p = x * y;

        // |p| in [2^-969, 2^1022) so that x*y = p + e exactly (e from an FMA); |z| < 2^1022 and a
        // result in [2^-1021, 2^1023) so that no sum below overflows, nothing underflows and the
        // result's neighbours are normal. The sign of the rounding error then comes from exact sums.
        if (F64Field(BitConverter.DoubleToUInt64Bits(p)) - 54 <= 0x7fc - 54 && F64Field(c) <= 0x7fc)
        {
            double d = Math.FusedMultiplyAdd(x, y, z);
            ulong bits = BitConverter.DoubleToUInt64Bits(d);
            if (F64Field(bits) - 2 <= 0x7fd - 2)
            {
                double error = MulAddErrorSign(p, Math.FusedMultiplyAdd(x, y, -p), z, d);
                if (error == 0)
                {
                    return bits;
                }

                // RMM needs to know whether the exact value is a tie; that is left to the exact path.
                if (rm != RoundingMode.NearestMaxMagnitude)
                {
                    flags |= NX;
                    return rm == RoundingMode.NearestEven ? bits : FromNearest(bits, (long)bits < 0, error, false, rm);
                }
            }
        }

        return ExactMulAdd(a, b, c, F64FracBits, F64ExpBits, rm, ref flags);
    }

    // ---------------------------------------------------------------- min, max, compare, classify

    public static uint F32Min(uint a, uint b, ref uint flags) => (uint)MinMax(a, b, F32FracBits, F32ExpBits, false, ref flags);

    public static uint F32Max(uint a, uint b, ref uint flags) => (uint)MinMax(a, b, F32FracBits, F32ExpBits, true, ref flags);

    public static ulong F64Min(ulong a, ulong b, ref uint flags) => MinMax(a, b, F64FracBits, F64ExpBits, false, ref flags);

    public static ulong F64Max(ulong a, ulong b, ref uint flags) => MinMax(a, b, F64FracBits, F64ExpBits, true, ref flags);

    public static bool F32Eq(uint a, uint b, ref uint flags) => Equal(a, b, F32FracBits, F32ExpBits, ref flags);

    public static bool F32Lt(uint a, uint b, ref uint flags) => Less(a, b, F32FracBits, F32ExpBits, false, ref flags);

    public static bool F32Le(uint a, uint b, ref uint flags) => Less(a, b, F32FracBits, F32ExpBits, true, ref flags);

    public static bool F64Eq(ulong a, ulong b, ref uint flags) => Equal(a, b, F64FracBits, F64ExpBits, ref flags);

    public static bool F64Lt(ulong a, ulong b, ref uint flags) => Less(a, b, F64FracBits, F64ExpBits, false, ref flags);

    public static bool F64Le(ulong a, ulong b, ref uint flags) => Less(a, b, F64FracBits, F64ExpBits, true, ref flags);

    /// <summary>fclass.s: bit 0 -inf, 1 negative normal, 2 negative subnormal, 3 -0, 4 +0,
    /// 5 positive subnormal, 6 positive normal, 7 +inf, 8 signaling NaN, 9 quiet NaN.</summary>
    public static uint F32Classify(uint a) => Classify(a, F32FracBits, F32ExpBits);

    /// <summary>fclass.d, same bit layout as <see cref="F32Classify"/>.</summary>
    public static ulong F64Classify(ulong a) => Classify(a, F64FracBits, F64ExpBits);

    // ---------------------------------------------------------------- float -> integer

    public static int F32ToI32(uint a, RoundingMode rm, ref uint flags) => DoubleToI32(F32AsDouble(a), rm, ref flags);

    public static uint F32ToU32(uint a, RoundingMode rm, ref uint flags) => DoubleToU32(F32AsDouble(a), rm, ref flags);

    public static long F32ToI64(uint a, RoundingMode rm, ref uint flags) => DoubleToI64(F32AsDouble(a), rm, ref flags);

    public static ulong F32ToU64(uint a, RoundingMode rm, ref uint flags) => DoubleToU64(F32AsDouble(a), rm, ref flags);

    public static int F64ToI32(ulong a, RoundingMode rm, ref uint flags) => DoubleToI32(BitConverter.UInt64BitsToDouble(a), rm, ref flags);

    public static uint F64ToU32(ulong a, RoundingMode rm, ref uint flags) => DoubleToU32(BitConverter.UInt64BitsToDouble(a), rm, ref flags);

    public static long F64ToI64(ulong a, RoundingMode rm, ref uint flags) => DoubleToI64(BitConverter.UInt64BitsToDouble(a), rm, ref flags);

    public static ulong F64ToU64(ulong a, RoundingMode rm, ref uint flags) => DoubleToU64(BitConverter.UInt64BitsToDouble(a), rm, ref flags);

    // ---------------------------------------------------------------- integer -> float

    public static uint I32ToF32(int v, RoundingMode rm, ref uint flags)
    {
        if ((uint)(v + (1 << 24)) <= 2u << 24)
        {
            return BitConverter.SingleToUInt32Bits(v); // |v| <= 2^24: exact
        }

        return (uint)FromInteger(v < 0, v < 0 ? (ulong)-(long)v : (ulong)v, F32FracBits, F32ExpBits, rm, ref flags);
    }

    public static uint U32ToF32(uint v, RoundingMode rm, ref uint flags)
    {
        return v <= 1u << 24
            ? BitConverter.SingleToUInt32Bits(v)
            : (uint)FromInteger(false, v, F32FracBits, F32ExpBits, rm, ref flags);
    }

    public static uint I64ToF32(long v, RoundingMode rm, ref uint flags)
    {
        if ((ulong)(v + (1L << 24)) <= 2UL << 24)
        {
            return BitConverter.SingleToUInt32Bits(v);
        }

        return (uint)FromInteger(v < 0, v < 0 ? 0 - (ulong)v : (ulong)v, F32FracBits, F32ExpBits, rm, ref flags);
    }

    public static uint U64ToF32(ulong v, RoundingMode rm, ref uint flags)
    {
        return v <= 1UL << 24
            ? BitConverter.SingleToUInt32Bits(v)
            : (uint)FromInteger(false, v, F32FracBits, F32ExpBits, rm, ref flags);
    }

    public static ulong I32ToF64(int v, RoundingMode rm, ref uint flags) => BitConverter.DoubleToUInt64Bits(v); // always exact

    public static ulong U32ToF64(uint v, RoundingMode rm, ref uint flags) => BitConverter.DoubleToUInt64Bits(v); // always exact

    public static ulong I64ToF64(long v, RoundingMode rm, ref uint flags)
    {
        if ((ulong)(v + (1L << 53)) <= 2UL << 53)
        {
            return BitConverter.DoubleToUInt64Bits(v);
        }

        return FromInteger(v < 0, v < 0 ? 0 - (ulong)v : (ulong)v, F64FracBits, F64ExpBits, rm, ref flags);
    }

    public static ulong U64ToF64(ulong v, RoundingMode rm, ref uint flags)
    {
        return v <= 1UL << 53
            ? BitConverter.DoubleToUInt64Bits(v)
            : FromInteger(false, v, F64FracBits, F64ExpBits, rm, ref flags);
    }

    // ---------------------------------------------------------------- float <-> float

    public static ulong F32ToF64(uint a, ref uint flags)
    {
        if ((a & ~F32Sign) > F32ExpMask)
        {
            if ((a & F32QuietBit) == 0)
            {
                flags |= NV;
            }

            return F64CanonicalNaN;
        }

        return BitConverter.DoubleToUInt64Bits(F32AsDouble(a)); // widening is exact
    }

    public static uint F64ToF32(ulong a, RoundingMode rm, ref uint flags)
    {
        if ((a & ~F64Sign) > 0x7ff0_0000_0000_0000)
        {
            if ((a & F64QuietBit) == 0)
            {
                flags |= NV;
            }

            return F32CanonicalNaN;
        }

        return RoundToF32(BitConverter.UInt64BitsToDouble(a), 0, rm, ref flags);
    }

    // ================================================================ fast-layer helpers

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsF32InfOrNaN(uint a) => (a & F32ExpMask) == F32ExpMask;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double F32AsDouble(uint a) => BitConverter.UInt32BitsToSingle(a);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong F64Field(ulong bits) => (bits >> 52) & 0x7ff;

    /// <summary>Knuth's TwoSum: the exact error (x + y) - s of s = RN(x + y), barring overflow.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double TwoSumError(double x, double y, double s)
    {
        double yPart = s - x;
        double xPart = s - yPart;
        return (x - xPart) + (y - yPart);
    }

    /// <summary>
    /// The sign (as -1, 0 or 1) of p + e + z - d, computed exactly: Shewchuk's Grow-Expansion
    /// turns the nonoverlapping pair (e, p) plus z, then minus d, into a nonoverlapping expansion
    /// of four doubles, whose sign is that of its largest nonzero component. Needs every partial
    /// sum to stay below 2^1023 in magnitude.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double MulAddErrorSign(double p, double e, double z, double d)
    {
        double q1 = z + e;
        double h1 = TwoSumError(z, e, q1);
        double h3 = q1 + p;
        double h2 = TwoSumError(q1, p, h3);

        double r1 = h1 - d;
        double g1 = TwoSumError(-d, h1, r1);
        double r2 = r1 + h2;
        double g2 = TwoSumError(r1, h2, r2);
        double g4 = r2 + h3;
        double g3 = TwoSumError(r2, h3, g4);

        double top = g4 != 0 ? g4 : g3 != 0 ? g3 : g2 != 0 ? g2 : g1;
        return top > 0 ? 1 : top < 0 ? -1 : 0;
    }

    /// <summary>
    /// The sign of an exact zero sum (IEEE 754 6.3): same-signed zeros keep their sign; anything
    /// else (opposite zeros, exact cancellation) is +0, or -0 when rounding down.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool ZeroSumIsNegative(bool xNegative, bool yNegative, RoundingMode rm) =>
        xNegative == yNegative ? xNegative : rm == RoundingMode.Down;

    /// <summary>Half an ulp of the double <paramref name="bits"/> (exponent field >= 2), as a double.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double F64HalfUlp(ulong bits)
    {
        ulong field = F64Field(bits);
        return BitConverter.UInt64BitsToDouble(field > 53 ? (field - 53) << 52 : 1UL << (int)(field - 2));
    }

    /// <summary>
    /// Turns r = RN(y), a normal number (either format) whose neighbours are normal and finite,
    /// into y rounded by <paramref name="rm"/>, given the sign of the error y - r
    /// (<paramref name="error"/> nonzero) and whether y lies exactly halfway between r and its
    /// neighbour away from zero. Adjacent encodings of one sign are adjacent numbers, so the
    /// neighbours are bits +- 1.
    /// </summary>
    private static ulong FromNearest(ulong bits, bool negative, double error, bool halfway, RoundingMode rm)
    {
        bool beyond = (error > 0) != negative; // |y| > |r|: the other candidate is one ulp away from zero
        bool awayFromZero;
        switch (rm)
        {
            case RoundingMode.TowardZero:
                awayFromZero = false;
                break;
            case RoundingMode.Down:
                awayFromZero = negative;
                break;
            case RoundingMode.Up:
                awayFromZero = !negative;
                break;
            case RoundingMode.NearestMaxMagnitude:
                return beyond && halfway ? bits + 1 : bits;
            default:
                return bits;
        }

        if (awayFromZero)
        {
            return beyond ? bits + 1 : bits;
        }

        return beyond ? bits : bits - 1;
    }

    /// <summary>
    /// Rounds y to binary32 by <paramref name="rm"/>, where <paramref name="d"/> = RN(y) in double
    /// and <paramref name="error"/> has the sign of y - d (zero when d is exact).
    /// </summary>
    private static uint RoundToF32(double d, double error, RoundingMode rm, ref uint flags)
    {
        ulong bits = BitConverter.DoubleToUInt64Bits(d);
        ulong magnitude = bits & ~F64Sign;

        // Hardware narrowing for results in [2^-125, 2^127), where the result and its neighbours
        // are normal and finite, unless d is a binary32 midpoint (a tie to break by the mode, or a
        // stand-in for a value just off the tie). Otherwise no binary32 midpoint or number lies
        // strictly between y and d (they are doubles and d is the double nearest y), so
        // f = RN(d) = RN(y), and y lies on the same side of f as d does (or as the error says
        // when d == f).
        if (magnitude - (898UL << 52) < (1150UL - 898) << 52 && (bits & 0x1fff_ffff) != 0x1000_0000)
        {
            float f = (float)d;
            uint fb = BitConverter.SingleToUInt32Bits(f);
            double back = f;
            if (back == d && error == 0)
            {
                return fb;
            }

            flags |= NX;
            if (rm is RoundingMode.NearestEven or RoundingMode.NearestMaxMagnitude)
            {
                return fb;
            }

            return (uint)FromNearest(fb, (fb & F32Sign) != 0, back != d ? d - back : error, false, rm);
        }

        int magnitudeError = error == 0 ? 0 : (error > 0) != ((long)bits < 0) ? 1 : -1;
        return (uint)Narrow(bits, magnitudeError, F32FracBits, F32ExpBits, rm, ref flags);
    }

    // ---------------------------------------------------------------- conversions to integer

    /// <summary>d rounded to an integral value by <paramref name="rm"/> (IEEE roundToIntegral:
    /// exact, and a single instruction on current hardware); NaN and infinities pass through.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double RoundToIntegral(double d, RoundingMode rm)
    {
        switch (rm)
        {
            case RoundingMode.TowardZero:
                return Math.Truncate(d);
            case RoundingMode.Down:
                return Math.Floor(d);
            case RoundingMode.Up:
                return Math.Ceiling(d);
            case RoundingMode.NearestMaxMagnitude:
                // d - t is exact; when it is nonzero |d| < 2^52, so t +- 1 is exact too.
                double t = Math.Truncate(d);
                return Math.Abs(d - t) >= 0.5 ? t + Math.CopySign(1.0, d) : t;
            default:
                return Math.Round(d); // ties to even
        }
    }

    // NaN fails every range test and compares false with 0, so it saturates to the maximum.
    private static int DoubleToI32(double d, RoundingMode rm, ref uint flags)
    {
        double r = RoundToIntegral(d, rm);
        if (r >= -2147483648.0 && r <= 2147483647.0)
        {
            flags |= r != d ? NX : 0;
            return (int)r;
        }

        flags |= NV;
        return r < 0 ? int.MinValue : int.MaxValue;
    }

    private static uint DoubleToU32(double d, RoundingMode rm, ref uint flags)
    {
        double r = RoundToIntegral(d, rm);
        if (r >= 0 && r <= 4294967295.0)
        {
            flags |= r != d ? NX : 0;
            return (uint)r;
        }

        flags |= NV;
        return r < 0 ? 0 : uint.MaxValue;
    }

    private static long DoubleToI64(double d, RoundingMode rm, ref uint flags)
    {
        double r = RoundToIntegral(d, rm);
        if (r >= -9223372036854775808.0 && r < 9223372036854775808.0)
        {
            flags |= r != d ? NX : 0;
            return (long)r;
        }

        flags |= NV;
        return r < 0 ? long.MinValue : long.MaxValue;
    }

    private static ulong DoubleToU64(double d, RoundingMode rm, ref uint flags)
    {
        double r = RoundToIntegral(d, rm);
        if (r >= 0 && r < 18446744073709551616.0)
        {
            flags |= r != d ? NX : 0;
            return (ulong)r;
        }

        flags |= NV;
        return r < 0 ? 0 : ulong.MaxValue;
    }

    // ---------------------------------------------------------------- bit-level operations

    // Helpers for both formats; fracBits and expBits are constants at every call site, so after
    // inlining these reduce to a few integer operations.

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong MinMax(ulong a, ulong b, int fracBits, int expBits, bool max, ref uint flags)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            return MinMaxNaN(a, b, fracBits, expBits, ref flags);
        }

        return OrderKey(a, fracBits + expBits) < OrderKey(b, fracBits + expBits) != max ? a : b;
    }

    /// <summary>minimumNumber/maximumNumber with a NaN operand: the other operand, or the
    /// canonical NaN if both are NaN; NV for any signaling NaN.</summary>
    private static ulong MinMaxNaN(ulong a, ulong b, int fracBits, int expBits, ref uint flags)
    {
        if (IsSignalingNaN(a, fracBits, expBits) || IsSignalingNaN(b, fracBits, expBits))
        {
            flags |= NV;
        }

        bool aNaN = IsNaN(a, fracBits, expBits), bNaN = IsNaN(b, fracBits, expBits);
        return aNaN && bNaN ? CanonicalNaN(fracBits, expBits) : aNaN ? b : a;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Equal(ulong a, ulong b, int fracBits, int expBits, ref uint flags)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            if (IsSignalingNaN(a, fracBits, expBits) || IsSignalingNaN(b, fracBits, expBits))
            {
                flags |= NV;
            }

            return false;
        }

        return a == b || ((a | b) << (64 - fracBits - expBits)) == 0; // or both are zeros
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Less(ulong a, ulong b, int fracBits, int expBits, bool orEqual, ref uint flags)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            flags |= NV;
            return false;
        }

        if (((a | b) << (64 - fracBits - expBits)) == 0)
        {
            return orEqual; // +-0 vs +-0
        }

        ulong ka = OrderKey(a, fracBits + expBits), kb = OrderKey(b, fracBits + expBits);
        return orEqual ? ka <= kb : ka < kb;
    }

    /// <summary>
    /// Maps a non-NaN encoding to an unsigned key with the numeric order (and -0 below +0):
    /// negative values are complemented, positive ones get the sign bit set.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong OrderKey(ulong x, int signPosition)
    {
        ulong signBit = 1UL << signPosition;
        ulong width = signBit | (signBit - 1);
        return x ^ (((0UL - (x >> signPosition)) & width) | signBit);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsNaN(ulong x, int fracBits, int expBits) =>
        (x & ((1UL << (fracBits + expBits)) - 1)) > ((1UL << expBits) - 1) << fracBits;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool IsSignalingNaN(ulong x, int fracBits, int expBits) =>
        IsNaN(x, fracBits, expBits) && ((x >> (fracBits - 1)) & 1) == 0;

    private static uint Classify(ulong a, int fracBits, int expBits)
    {
        int c = Classify(a, fracBits, expBits, out bool subnormal);
        bool negative = ((a >> (fracBits + expBits)) & 1) != 0;
        int bit = c switch
        {
            ClassSignalingNaN => 8,
            ClassQuietNaN => 9,
            ClassInf => negative ? 0 : 7,
            ClassZero => negative ? 3 : 4,
            _ when subnormal => negative ? 2 : 5,
            _ => negative ? 1 : 6,
        };
        return 1u << bit;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int Classify(ulong a, int fracBits, int expBits, out bool subnormal)
    {
        ulong maxField = (1UL << expBits) - 1;
        ulong field = (a >> fracBits) & maxField;
        ulong fraction = a & ((1UL << fracBits) - 1);
        subnormal = field == 0 && fraction != 0;
        if (field == maxField)
        {
            return fraction == 0 ? ClassInf : ((fraction >> (fracBits - 1)) & 1) != 0 ? ClassQuietNaN : ClassSignalingNaN;
        }

        return field == 0 && fraction == 0 ? ClassZero : ClassFinite;
    }

    // ================================================================ exact layer
    //
    // A finite nonzero operand is unpacked to (negative, exp, sig) with value sig * 2^exp and
    // sig's leading one at bit 52, whatever the format. Results are built exactly (or with the
    // bits below some position OR-ed into a sticky bit 0) and rounded once by RoundPack.

    internal static ulong ExactAdd(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(a, fracBits, expBits, out bool sa, out int ea, out ulong ma);
        int cb = Unpack(b, fracBits, expBits, out bool sb, out int eb, out ulong mb);
        if (ca >= ClassQuietNaN || cb >= ClassQuietNaN)
        {
            return NaNResult(ca, cb, ClassZero, fracBits, expBits, ref flags);
        }

        if (ca == ClassInf)
        {
            return cb == ClassInf && sa != sb ? InvalidResult(fracBits, expBits, ref flags) : a;
        }

        if (cb == ClassInf)
        {
            return b;
        }

        if (ca == ClassZero)
        {
            return cb == ClassZero ? SignBitIf(ZeroSumIsNegative(sa, sb, rm), fracBits, expBits) : b;
        }

        if (cb == ClassZero)
        {
            return a;
        }

        // Leading ones to bit 61 leaves room for the carry. Once the smaller operand loses bits
        // to the sticky bit (shift > 9), the result keeps its leading one at bit 60 or above, so
        // the sticky bit stays far below the rounding position.
        ma <<= 9;
        mb <<= 9;
        if (ea < eb || (ea == eb && ma < mb))
        {
            (sa, ea, ma, sb, eb, mb) = (sb, eb, mb, sa, ea, ma);
        }

        mb = ShiftRightJam(mb, ea - eb);
        ulong sum = sa == sb ? ma + mb : ma - mb;
        if (sum == 0)
        {
            return SignBitIf(rm == RoundingMode.Down, fracBits, expBits);
        }

        return RoundPack(sa, ea - 9, sum, fracBits, expBits, rm, ref flags);
    }

    internal static ulong ExactMul(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(a, fracBits, expBits, out bool sa, out int ea, out ulong ma);
        int cb = Unpack(b, fracBits, expBits, out bool sb, out int eb, out ulong mb);
        if (ca >= ClassQuietNaN || cb >= ClassQuietNaN)
        {
            return NaNResult(ca, cb, ClassZero, fracBits, expBits, ref flags);
        }

        bool negative = sa != sb;
        if (ca == ClassInf || cb == ClassInf)
        {
            return ca == ClassZero || cb == ClassZero
                ? InvalidResult(fracBits, expBits, ref flags)
                : InfinityBits(negative, fracBits, expBits);
        }

        if (ca == ClassZero || cb == ClassZero)
        {
            return SignBitIf(negative, fracBits, expBits);
        }

        return MulFinite(negative, ea + eb, ma, mb, fracBits, expBits, rm, ref flags);
    }

    internal static ulong ExactDiv(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(a, fracBits, expBits, out bool sa, out int ea, out ulong ma);
        int cb = Unpack(b, fracBits, expBits, out bool sb, out int eb, out ulong mb);
        if (ca >= ClassQuietNaN || cb >= ClassQuietNaN)
        {
            return NaNResult(ca, cb, ClassZero, fracBits, expBits, ref flags);
        }

        bool negative = sa != sb;
        if (ca == ClassInf)
        {
            return cb == ClassInf ? InvalidResult(fracBits, expBits, ref flags) : InfinityBits(negative, fracBits, expBits);
        }

        if (cb == ClassInf)
        {
            return SignBitIf(negative, fracBits, expBits);
        }

        if (cb == ClassZero)
        {
            if (ca == ClassZero)
            {
                return InvalidResult(fracBits, expBits, ref flags);
            }

            flags |= DZ;
            return InfinityBits(negative, fracBits, expBits);
        }

        if (ca == ClassZero)
        {
            return SignBitIf(negative, fracBits, expBits);
        }

        // ma / mb is in (1/2, 2), so the 62-bit-shifted quotient has 62 or 63 bits.
        UInt128 numerator = (UInt128)ma << 62;
        ulong q = (ulong)(numerator / mb);
        if (numerator != (UInt128)q * mb)
        {
            q |= 1;
        }

        return RoundPack(negative, ea - eb - 62, q, fracBits, expBits, rm, ref flags);
    }

    internal static ulong ExactSqrt(ulong a, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(a, fracBits, expBits, out bool negative, out int ea, out ulong ma);
        if (ca >= ClassQuietNaN)
        {
            return NaNResult(ca, ClassZero, ClassZero, fracBits, expBits, ref flags);
        }

        if (ca == ClassZero)
        {
            return a;
        }

        if (negative)
        {
            return InvalidResult(fracBits, expBits, ref flags);
        }

        if (ca == ClassInf)
        {
            return a;
        }

        // Make the exponent even, then take the integer root of sig * 2^64: 58 or 59 bits.
        if ((ea & 1) != 0)
        {
            ma <<= 1;
            ea--;
        }

        UInt128 radicand = (UInt128)ma << 64;
        ulong root = IntegerSqrt(radicand);
        if ((UInt128)root * root != radicand)
        {
            root |= 1;
        }

        return RoundPack(false, (ea - 64) / 2, root, fracBits, expBits, rm, ref flags);
    }

    internal static ulong ExactMulAdd(ulong a, ulong b, ulong c, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(a, fracBits, expBits, out bool sa, out int ea, out ulong ma);
        int cb = Unpack(b, fracBits, expBits, out bool sb, out int eb, out ulong mb);
        int cc = Unpack(c, fracBits, expBits, out bool sc, out int ec, out ulong mc);

        // RISC-V: 0 * inf is invalid even when the addend is a quiet NaN.
        if ((ca == ClassInf && cb == ClassZero) || (ca == ClassZero && cb == ClassInf))
        {
            return InvalidResult(fracBits, expBits, ref flags);
        }

        if (ca >= ClassQuietNaN || cb >= ClassQuietNaN || cc >= ClassQuietNaN)
        {
            return NaNResult(ca, cb, cc, fracBits, expBits, ref flags);
        }

        bool sp = sa != sb;
        if (ca == ClassInf || cb == ClassInf)
        {
            return cc == ClassInf && sc != sp ? InvalidResult(fracBits, expBits, ref flags) : InfinityBits(sp, fracBits, expBits);
        }

        if (cc == ClassInf)
        {
            return c;
        }

        if (ca == ClassZero || cb == ClassZero)
        {
            return cc == ClassZero ? SignBitIf(ZeroSumIsNegative(sp, sc, rm), fracBits, expBits) : c;
        }

        if (cc == ClassZero)
        {
            return MulFinite(sp, ea + eb, ma, mb, fracBits, expBits, rm, ref flags);
        }

        // Exact product (leading one at bit 104 or 105) and addend, both moved to leading one at
        // bit 125. The product has at least 19 zero bits below it, the addend 73, so whenever the
        // alignment shift pushes nonzero bits into the sticky bit the sum keeps its leading one
        // at bit 124 or above.
        ulong hi = Math.BigMul(ma, mb, out ulong lo);
        UInt128 p = new(hi, lo);
        int lzp = (int)UInt128.LeadingZeroCount(p);
        p <<= lzp - 2;
        int ep = ea + eb - (lzp - 2);
        UInt128 q = (UInt128)mc << 73;
        int eq = ec - 73;

        if (ep < eq || (ep == eq && p < q))
        {
            (sp, ep, p, sc, eq, q) = (sc, eq, q, sp, ep, p);
        }

        q = ShiftRightJam(q, ep - eq);
        UInt128 sum = sp == sc ? p + q : p - q;
        if (sum == 0)
        {
            return SignBitIf(rm == RoundingMode.Down, fracBits, expBits);
        }

        // Down to 64 bits, leading one at bit 62 at most.
        int lz = (int)UInt128.LeadingZeroCount(sum);
        ulong sig;
        if (lz < 65)
        {
            int shift = 65 - lz;
            sig = (ulong)(sum >> shift) | ((sum << (128 - shift)) != 0 ? 1UL : 0);
            ep += shift;
        }
        else
        {
            sig = (ulong)sum;
        }

        return RoundPack(sp, ep, sig, fracBits, expBits, rm, ref flags);
    }

    /// <summary>Rounds a binary64 value (given by its bits) to the format, with an optional
    /// one-sided magnitude error: the true value lies just above (+1) or below (-1) it.</summary>
    internal static ulong Narrow(ulong bits, int magnitudeError, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        int ca = Unpack(bits, F64FracBits, F64ExpBits, out bool negative, out int exp, out ulong sig);
        switch (ca)
        {
            case ClassZero:
                return SignBitIf(negative, fracBits, expBits);
            case ClassInf:
                return InfinityBits(negative, fracBits, expBits);
            case ClassQuietNaN:
            case ClassSignalingNaN:
                return NaNResult(ca, ClassZero, ClassZero, fracBits, expBits, ref flags);
        }

        // Every rounding boundary of the narrower format is a multiple of 4 in (sig << 2), so
        // sig*4 +- 1 lies strictly between the same two boundaries as the true value.
        return RoundPack(negative, exp - 2, (ulong)((long)(sig << 2) + magnitudeError), fracBits, expBits, rm, ref flags);
    }

    private static ulong FromInteger(bool negative, ulong magnitude, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        return magnitude == 0 ? 0 : RoundPack(negative, 0, magnitude, fracBits, expBits, rm, ref flags);
    }

    private static ulong MulFinite(bool negative, int exp, ulong ma, ulong mb, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        // 106-bit product, leading one at bit 104 or 105: keep its top bits, the rest is sticky.
        ulong hi = Math.BigMul(ma, mb, out ulong lo);
        ulong sig = (hi << 21) | (lo >> 43) | ((lo & ((1UL << 43) - 1)) != 0 ? 1UL : 0);
        return RoundPack(negative, exp + 43, sig, fracBits, expBits, rm, ref flags);
    }

    /// <summary>
    /// Rounds sig * 2^exp (sig nonzero; bit 0 may be a sticky bit, in which case sig's leading
    /// one must be at bit 55 or higher) to the format and packs it, raising NX/UF/OF.
    /// </summary>
    private static ulong RoundPack(bool negative, int exp, ulong sig, int fracBits, int expBits, RoundingMode rm, ref uint flags)
    {
        // Leading one to bit 62: value = 1.f * 2^(exp + 62).
        int lz = BitOperations.LeadingZeroCount(sig);
        if (lz == 0)
        {
            sig = (sig >> 1) | (sig & 1);
            exp++;
        }
        else
        {
            sig <<= lz - 1;
            exp -= lz - 1;
        }

        int maxField = (1 << expBits) - 1;
        int field = exp + 62 + (maxField >> 1);
        int shift = 62 - fracBits;
        ulong roundMask = (1UL << shift) - 1;
        ulong half = 1UL << (shift - 1);
        ulong signBit = negative ? 1UL << (fracBits + expBits) : 0;

        if (field >= 1)
        {
            ulong q = sig >> shift;
            ulong rest = sig & roundMask;
            if (rest != 0 && RoundsAway(rm, negative, q, rest, half))
            {
                q++;
                if ((q >> (fracBits + 1)) != 0)
                {
                    q >>= 1;
                    field++;
                }
            }

            if (field >= maxField)
            {
                flags |= OF | NX;
                bool toInfinity = rm switch
                {
                    RoundingMode.TowardZero => false,
                    RoundingMode.Down => negative,
                    RoundingMode.Up => !negative,
                    _ => true,
                };
                ulong infinity = (ulong)maxField << fracBits;
                return signBit | (toInfinity ? infinity : infinity - 1);
            }

            if (rest != 0)
            {
                flags |= NX;
            }

            return signBit | ((ulong)field << fracBits) | (q & ((1UL << fracBits) - 1));
        }

        // Below the normal range before rounding. Tininess is judged after rounding (as if the
        // exponent were unbounded): only a value just under the smallest normal can escape it.
        bool tiny = true;
        if (field == 0)
        {
            ulong q = sig >> shift;
            ulong rest = sig & roundMask;
            if (rest != 0 && RoundsAway(rm, negative, q, rest, half) && q + 1 == 1UL << (fracBits + 1))
            {
                tiny = false;
            }
        }

        sig = ShiftRightJam(sig, 1 - field);
        ulong qs = sig >> shift;
        ulong rs = sig & roundMask;
        if (rs != 0)
        {
            if (RoundsAway(rm, negative, qs, rs, half))
            {
                qs++; // may carry into the exponent field: the smallest normal, correctly encoded
            }

            flags |= tiny ? NX | UF : NX;
        }

        return signBit | qs;
    }

    /// <summary>Whether a magnitude q + rest/2^k (rest nonzero, half = 2^(k-1)) rounds up to q + 1.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool RoundsAway(RoundingMode rm, bool negative, ulong q, ulong rest, ulong half)
    {
        return rm switch
        {
            RoundingMode.TowardZero => false,
            RoundingMode.Down => negative,
            RoundingMode.Up => !negative,
            RoundingMode.NearestMaxMagnitude => rest >= half,
            _ => rest > half || (rest == half && (q & 1) != 0),
        };
    }

    private static int Unpack(ulong bits, int fracBits, int expBits, out bool negative, out int exp, out ulong sig)
    {
        int maxField = (1 << expBits) - 1;
        negative = ((bits >> (fracBits + expBits)) & 1) != 0;
        int field = (int)(bits >> fracBits) & maxField;
        ulong fraction = bits & ((1UL << fracBits) - 1);
        exp = 0;
        sig = 0;
        if (field == maxField)
        {
            return fraction == 0 ? ClassInf : ((fraction >> (fracBits - 1)) & 1) != 0 ? ClassQuietNaN : ClassSignalingNaN;
        }

        if (field == 0)
        {
            if (fraction == 0)
            {
                return ClassZero;
            }

            field = 1;
        }
        else
        {
            fraction |= 1UL << fracBits;
        }

        int normalize = BitOperations.LeadingZeroCount(fraction) - 11;
        sig = fraction << normalize;
        exp = field - (maxField >> 1) - fracBits - normalize;
        return ClassFinite;
    }

    private static ulong NaNResult(int ca, int cb, int cc, int fracBits, int expBits, ref uint flags)
    {
        if (ca == ClassSignalingNaN || cb == ClassSignalingNaN || cc == ClassSignalingNaN)
        {
            flags |= NV;
        }

        return CanonicalNaN(fracBits, expBits);
    }

    private static ulong InvalidResult(int fracBits, int expBits, ref uint flags)
    {
        flags |= NV;
        return CanonicalNaN(fracBits, expBits);
    }

    private static ulong CanonicalNaN(int fracBits, int expBits) =>
        (((1UL << expBits) - 1) << fracBits) | (1UL << (fracBits - 1));

    private static ulong InfinityBits(bool negative, int fracBits, int expBits) =>
        SignBitIf(negative, fracBits, expBits) | (((1UL << expBits) - 1) << fracBits);

    private static ulong SignBitIf(bool negative, int fracBits, int expBits) =>
        negative ? 1UL << (fracBits + expBits) : 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ulong ShiftRightJam(ulong x, int n)
    {
        if (n <= 0)
        {
            return x;
        }

        return n >= 64 ? (x != 0 ? 1UL : 0) : (x >> n) | ((x << (64 - n)) != 0 ? 1UL : 0);
    }

    private static UInt128 ShiftRightJam(UInt128 x, int n)
    {
        if (n <= 0)
        {
            return x;
        }

        return n >= 128 ? (x != 0 ? UInt128.One : UInt128.Zero) : (x >> n) | ((x << (128 - n)) != 0 ? UInt128.One : UInt128.Zero);
    }

    /// <summary>floor(sqrt(x)), digit by digit: slow and obviously right (only rare paths use it).</summary>
    private static ulong IntegerSqrt(UInt128 x)
    {
        UInt128 root = 0;
        UInt128 bit = UInt128.One << 126;
        while (bit > x)
        {
            bit >>= 2;
        }

        while (bit != 0)
        {
            if (x >= root + bit)
            {
                x -= root + bit;
                root = (root >> 1) + bit;
            }
            else
            {
                root >>= 1;
            }

            bit >>= 2;
        }

        return (ulong)root;
    }
}
