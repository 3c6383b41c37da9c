using System.Numerics;
using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// A slow, independent model of RISC-V floating point used as the oracle in the randomized tests:
/// every result is derived from the exact value as a BigInteger rational (or, for square root,
/// by comparing squares) and rounded by the textbook definition. It shares no code with
/// <see cref="SoftFloat"/>. Formats are given as (fracBits, expBits): (23, 8) or (52, 11).
/// </summary>
internal static class ReferenceFloat
{
    public const uint NX = 1, UF = 2, OF = 4, DZ = 8, NV = 16;

    /// <summary>floor, comparison of the fractional part with 1/2 (-1, 0, 1) and exactness of
    /// |value| / 2^q.</summary>
    private delegate (BigInteger Floor, int Half, bool Exact) Scale(int q);

    // ------------------------------------------------------------ decoding

    private static int Bias(int expBits) => (1 << (expBits - 1)) - 1;

    private static ulong MaxField(int expBits) => (1UL << expBits) - 1;

    private static ulong SignBit(int fracBits, int expBits) => 1UL << (fracBits + expBits);

    public static ulong Nan(int fracBits, int expBits) => (MaxField(expBits) << fracBits) | (1UL << (fracBits - 1));

    public static bool IsNaN(ulong v, int fracBits, int expBits) =>
        ((v >> fracBits) & MaxField(expBits)) == MaxField(expBits) && (v & ((1UL << fracBits) - 1)) != 0;

    public static bool IsSignaling(ulong v, int fracBits, int expBits) =>
        IsNaN(v, fracBits, expBits) && ((v >> (fracBits - 1)) & 1) == 0;

    public static bool IsInf(ulong v, int fracBits, int expBits) =>
        (v & ~SignBit(fracBits, expBits)) == MaxField(expBits) << fracBits;

    public static bool IsZero(ulong v, int fracBits, int expBits) => (v & ~SignBit(fracBits, expBits)) == 0;

    public static bool IsNegative(ulong v, int fracBits, int expBits) => (v & SignBit(fracBits, expBits)) != 0;

    /// <summary>A finite value as a signed integer times a power of two.</summary>
    private static (BigInteger M, int E) Decode(ulong v, int fracBits, int expBits)
    {
        ulong field = (v >> fracBits) & MaxField(expBits);
        BigInteger m = v & ((1UL << fracBits) - 1);
        int e;
        if (field == 0)
        {
            e = 1 - Bias(expBits) - fracBits;
        }
        else
        {
            m += BigInteger.One << fracBits;
            e = (int)field - Bias(expBits) - fracBits;
        }

        return (IsNegative(v, fracBits, expBits) ? -m : m, e);
    }

    private static ulong Inf(bool negative, int fracBits, int expBits) =>
        (negative ? SignBit(fracBits, expBits) : 0) | (MaxField(expBits) << fracBits);

    private static ulong Zero(bool negative, int fracBits, int expBits) => negative ? SignBit(fracBits, expBits) : 0;

    // ------------------------------------------------------------ rounding by definition

    private static bool Increment(RoundingMode rm, bool negative, BigInteger floor, int half, bool exact)
    {
        if (exact)
        {
            return false;
        }

        return rm switch
        {
            RoundingMode.NearestEven => half > 0 || (half == 0 && !floor.IsEven),
            RoundingMode.NearestMaxMagnitude => half >= 0,
            RoundingMode.TowardZero => false,
            RoundingMode.Down => negative,
            RoundingMode.Up => !negative,
            _ => throw new ArgumentOutOfRangeException(nameof(rm)),
        };
    }

    /// <summary>Rounds a nonzero value with 2^e &lt;= |value| &lt; 2^(e+1), described by <paramref name="scale"/>.</summary>
    private static (ulong, uint) Round(bool negative, int e, Scale scale, int fracBits, int expBits, RoundingMode rm)
    {
        int emin = 1 - Bias(expBits), emax = Bias(expBits);
        BigInteger top = BigInteger.One << (fracBits + 1);

        // With an unbounded exponent: decides overflow and tininess.
        var (mu, hu, xu) = scale(e - fracBits);
        BigInteger ru = Increment(rm, negative, mu, hu, xu) ? mu + 1 : mu;
        if (e > emax || (e == emax && ru == top))
        {
            bool toInfinity = rm switch
            {
                RoundingMode.TowardZero => false,
                RoundingMode.Down => negative,
                RoundingMode.Up => !negative,
                _ => true,
            };
            ulong inf = Inf(negative, fracBits, expBits);
            return (toInfinity ? inf : inf - 1, OF | NX);
        }

        bool tiny = e < emin && !(e == emin - 1 && ru == top);

        int q = Math.Max(e, emin) - fracBits;
        var (m, h, x) = scale(q);
        BigInteger r = Increment(rm, negative, m, h, x) ? m + 1 : m;
        uint flags = x ? 0 : tiny ? NX | UF : NX;
        if (r == top)
        {
            r >>= 1;
            q++;
        }

        ulong sign = negative ? SignBit(fracBits, expBits) : 0;
        if (r < (BigInteger.One << fracBits))
        {
            return (sign | (ulong)r, flags); // subnormal, or zero after rounding
        }

        ulong field = (ulong)(q + fracBits + Bias(expBits));
        return (sign | (field << fracBits) | ((ulong)r & ((1UL << fracBits) - 1)), flags);
    }

    /// <summary>Rounds the nonzero rational ±num/den.</summary>
    private static (ulong, uint) RoundRational(bool negative, BigInteger num, BigInteger den, int fracBits, int expBits, RoundingMode rm)
    {
        int e = (int)(num.GetBitLength() - den.GetBitLength());
        if (CompareWithPowerOfTwo(num, den, e) < 0)
        {
            e--;
        }

        return Round(negative, e, q => ScaleRational(num, den, q), fracBits, expBits, rm);
    }

    /// <summary>Sign of num/den - 2^e.</summary>
    private static int CompareWithPowerOfTwo(BigInteger num, BigInteger den, int e) =>
        e >= 0 ? num.CompareTo(den << e) : (num << -e).CompareTo(den);

    private static (BigInteger, int, bool) ScaleRational(BigInteger num, BigInteger den, int q)
    {
        if (q >= 0)
        {
            den <<= q;
        }
        else
        {
            num <<= -q;
        }

        BigInteger floor = BigInteger.DivRem(num, den, out BigInteger rem);
        return (floor, (rem * 2).CompareTo(den), rem.IsZero);
    }

    // ------------------------------------------------------------ operations

    public static (ulong, uint) Add(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            return (Nan(fracBits, expBits), IsSignaling(a, fracBits, expBits) || IsSignaling(b, fracBits, expBits) ? NV : 0);
        }

        bool ai = IsInf(a, fracBits, expBits), bi = IsInf(b, fracBits, expBits);
        bool an = IsNegative(a, fracBits, expBits), bn = IsNegative(b, fracBits, expBits);
        if (ai && bi && an != bn)
        {
            return (Nan(fracBits, expBits), NV);
        }

        if (ai || bi)
        {
            return (ai ? a : b, 0);
        }

        var (ma, ea) = Decode(a, fracBits, expBits);
        var (mb, eb) = Decode(b, fracBits, expBits);
        int e = Math.Min(ea, eb);
        BigInteger sum = (ma << (ea - e)) + (mb << (eb - e));
        if (sum.IsZero)
        {
            bool bothZeroSameSign = IsZero(a, fracBits, expBits) && IsZero(b, fracBits, expBits) && an == bn;
            return (Zero(bothZeroSameSign ? an : rm == RoundingMode.Down, fracBits, expBits), 0);
        }

        return RoundScaled(sum, e, fracBits, expBits, rm);
    }

    /// <summary>Rounds the nonzero value m * 2^e.</summary>
    private static (ulong, uint) RoundScaled(BigInteger m, int e, int fracBits, int expBits, RoundingMode rm)
    {
        bool negative = m.Sign < 0;
        BigInteger mag = BigInteger.Abs(m);
        return e >= 0
            ? RoundRational(negative, mag << e, BigInteger.One, fracBits, expBits, rm)
            : RoundRational(negative, mag, BigInteger.One << -e, fracBits, expBits, rm);
    }

    public static (ulong, uint) Mul(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            return (Nan(fracBits, expBits), IsSignaling(a, fracBits, expBits) || IsSignaling(b, fracBits, expBits) ? NV : 0);
        }

        bool negative = IsNegative(a, fracBits, expBits) != IsNegative(b, fracBits, expBits);
        bool ai = IsInf(a, fracBits, expBits), bi = IsInf(b, fracBits, expBits);
        bool az = IsZero(a, fracBits, expBits), bz = IsZero(b, fracBits, expBits);
        if ((ai && bz) || (az && bi))
        {
            return (Nan(fracBits, expBits), NV);
        }

        if (ai || bi)
        {
            return (Inf(negative, fracBits, expBits), 0);
        }

        if (az || bz)
        {
            return (Zero(negative, fracBits, expBits), 0);
        }

        var (ma, ea) = Decode(a, fracBits, expBits);
        var (mb, eb) = Decode(b, fracBits, expBits);
        return RoundScaled(ma * mb, ea + eb, fracBits, expBits, rm);
    }

    public static (ulong, uint) Div(ulong a, ulong b, int fracBits, int expBits, RoundingMode rm)
    {
        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits))
        {
            return (Nan(fracBits, expBits), IsSignaling(a, fracBits, expBits) || IsSignaling(b, fracBits, expBits) ? NV : 0);
        }

        bool negative = IsNegative(a, fracBits, expBits) != IsNegative(b, fracBits, expBits);
        bool ai = IsInf(a, fracBits, expBits), bi = IsInf(b, fracBits, expBits);
        bool az = IsZero(a, fracBits, expBits), bz = IsZero(b, fracBits, expBits);
        if ((ai && bi) || (az && bz))
        {
            return (Nan(fracBits, expBits), NV);
        }

        if (ai)
        {
            return (Inf(negative, fracBits, expBits), 0);
        }

        if (bz)
        {
            return (Inf(negative, fracBits, expBits), DZ);
        }

        if (az || bi)
        {
            return (Zero(negative, fracBits, expBits), 0);
        }

        var (ma, ea) = Decode(a, fracBits, expBits);
        var (mb, eb) = Decode(b, fracBits, expBits);
        BigInteger num = BigInteger.Abs(ma), den = BigInteger.Abs(mb);
        if (ea >= eb)
        {
            num <<= ea - eb;
        }
        else
        {
            den <<= eb - ea;
        }

        return RoundRational(negative, num, den, fracBits, expBits, rm);
    }

    public static (ulong, uint) Sqrt(ulong a, int fracBits, int expBits, RoundingMode rm)
    {
        if (IsNaN(a, fracBits, expBits))
        {
            return (Nan(fracBits, expBits), IsSignaling(a, fracBits, expBits) ? NV : 0);
        }

        if (IsZero(a, fracBits, expBits))
        {
            return (a, 0);
        }

        if (IsNegative(a, fracBits, expBits))
        {
            return (Nan(fracBits, expBits), NV);
        }

        if (IsInf(a, fracBits, expBits))
        {
            return (a, 0);
        }

        var (m, ex) = Decode(a, fracBits, expBits);
        int log2 = (int)m.GetBitLength() - 1 + ex; // 2^log2 <= a < 2^(log2+1)
        int e = (int)Math.Floor(log2 / 2.0);
        return Round(false, e, q => ScaleSqrt(m, ex, q), fracBits, expBits, rm);
    }

    /// <summary>sqrt(m * 2^ex) / 2^q = sqrt(m * 2^(ex - 2q)) = sqrt(num / 4^j).</summary>
    private static (BigInteger, int, bool) ScaleSqrt(BigInteger m, int ex, int q)
    {
        int k = ex - (2 * q);
        BigInteger num, den;
        if (k >= 0)
        {
            num = m << k;
            den = BigInteger.One;
        }
        else if ((k & 1) == 0)
        {
            num = m;
            den = BigInteger.One << -k;
        }
        else
        {
            num = m << 1;
            den = BigInteger.One << (1 - k);
        }

        BigInteger floor = IntegerSqrt(num / den);
        BigInteger twice = (2 * floor) + 1;
        return (floor, (4 * num).CompareTo(twice * twice * den), num == floor * floor * den);
    }

    private static BigInteger IntegerSqrt(BigInteger n)
    {
        if (n < 2)
        {
            return n;
        }

        BigInteger x = BigInteger.One << (int)((n.GetBitLength() + 1) / 2);
        while (true)
        {
            BigInteger y = (x + (n / x)) / 2;
            if (y >= x)
            {
                return x;
            }

            x = y;
        }
    }

    public static (ulong, uint) MulAdd(ulong a, ulong b, ulong c, int fracBits, int expBits, RoundingMode rm)
    {
        bool ai = IsInf(a, fracBits, expBits), bi = IsInf(b, fracBits, expBits), ci = IsInf(c, fracBits, expBits);
        bool az = IsZero(a, fracBits, expBits), bz = IsZero(b, fracBits, expBits);
        if ((ai && bz) || (az && bi))
        {
            return (Nan(fracBits, expBits), NV);
        }

        if (IsNaN(a, fracBits, expBits) || IsNaN(b, fracBits, expBits) || IsNaN(c, fracBits, expBits))
        {
            bool snan = IsSignaling(a, fracBits, expBits) || IsSignaling(b, fracBits, expBits) || IsSignaling(c, fracBits, expBits);
            return (Nan(fracBits, expBits), snan ? NV : 0);
        }

        bool pn = IsNegative(a, fracBits, expBits) != IsNegative(b, fracBits, expBits);
        bool cn = IsNegative(c, fracBits, expBits);
        if (ai || bi)
        {
            return ci && cn != pn ? (Nan(fracBits, expBits), NV) : (Inf(pn, fracBits, expBits), 0);
        }

        if (ci)
        {
            return (c, 0);
        }

        var (ma, ea) = Decode(a, fracBits, expBits);
        var (mb, eb) = Decode(b, fracBits, expBits);
        var (mc, ec) = Decode(c, fracBits, expBits);
        BigInteger p = ma * mb;
        int ep = ea + eb;
        int e = Math.Min(ep, ec);
        BigInteger sum = (p << (ep - e)) + (mc << (ec - e));
        if (sum.IsZero)
        {
            bool productZero = az || bz, cZero = IsZero(c, fracBits, expBits);
            bool sameSignZeros = productZero && cZero && pn == cn;
            return (Zero(sameSignZeros ? pn : rm == RoundingMode.Down, fracBits, expBits), 0);
        }

        return RoundScaled(sum, e, fracBits, expBits, rm);
    }

    /// <summary>Conversion between the formats (either direction).</summary>
    public static (ulong, uint) Convert(ulong a, int fromFrac, int fromExp, int toFrac, int toExp, RoundingMode rm)
    {
        if (IsNaN(a, fromFrac, fromExp))
        {
            return (Nan(toFrac, toExp), IsSignaling(a, fromFrac, fromExp) ? NV : 0);
        }

        bool negative = IsNegative(a, fromFrac, fromExp);
        if (IsInf(a, fromFrac, fromExp))
        {
            return (Inf(negative, toFrac, toExp), 0);
        }

        if (IsZero(a, fromFrac, fromExp))
        {
            return (Zero(negative, toFrac, toExp), 0);
        }

        var (m, e) = Decode(a, fromFrac, fromExp);
        return RoundScaled(m, e, toFrac, toExp, rm);
    }

    /// <summary>Integer to float; the integer is given as a BigInteger.</summary>
    public static (ulong, uint) FromInteger(BigInteger v, int fracBits, int expBits, RoundingMode rm) =>
        v.IsZero ? (0, 0) : RoundScaled(v, 0, fracBits, expBits, rm);

    /// <summary>Float to integer in [min, max] with RISC-V saturation; the result as a BigInteger.</summary>
    public static (BigInteger, uint) ToInteger(ulong a, int fracBits, int expBits, RoundingMode rm, BigInteger min, BigInteger max)
    {
        if (IsNaN(a, fracBits, expBits))
        {
            return (max, NV);
        }

        bool negative = IsNegative(a, fracBits, expBits);
        if (IsInf(a, fracBits, expBits))
        {
            return (negative ? min : max, NV);
        }

        if (IsZero(a, fracBits, expBits))
        {
            return (0, 0);
        }

        var (m, e) = Decode(a, fracBits, expBits);
        BigInteger mag = BigInteger.Abs(m);
        var (floor, half, exact) = e >= 0 ? (mag << e, -1, true) : ScaleRational(mag, BigInteger.One << -e, 0);
        BigInteger r = Increment(rm, negative, floor, half, exact) ? floor + 1 : floor;
        if (negative)
        {
            r = -r;
        }

        if (r < min)
        {
            return (min, NV);
        }

        if (r > max)
        {
            return (max, NV);
        }

        return (r, exact ? 0 : NX);
    }
}
