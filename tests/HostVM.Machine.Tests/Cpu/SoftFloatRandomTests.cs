using System.Numerics;
using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Randomized differential tests: <see cref="SoftFloat"/> (its public fast-path API and its exact
/// layer separately) against <see cref="ReferenceFloat"/>, in every rounding mode, comparing
/// result bits and all five flags; and binary64/binary32 round-to-nearest against the host's
/// own IEEE arithmetic.
/// </summary>
public sealed class SoftFloatRandomTests
{
    private const int F32 = 32, F64 = 64;
    private const int Cases = 6000;

    private static readonly RoundingMode[] AllModes =
    [
        RoundingMode.NearestEven, RoundingMode.TowardZero, RoundingMode.Down, RoundingMode.Up, RoundingMode.NearestMaxMagnitude,
    ];

    public static TheoryData<string, int> Operations()
    {
        var data = new TheoryData<string, int>();
        foreach (string op in new[] { "add", "sub", "mul", "div", "sqrt", "fma" })
        {
            data.Add(op, F32);
            data.Add(op, F64);
        }

        return data;
    }

    /// <summary>A seed stable across runs (string hash codes are randomized per process).</summary>
    private static int Seed(string op) => op.Aggregate(17, (h, ch) => (h * 31) + ch);

    private static (int Frac, int Exp) Format(int width) => width == F32 ? (23, 8) : (52, 11);

    private static (ulong, uint) Public(string op, int width, ulong a, ulong b, ulong c, RoundingMode rm)
    {
        uint flags = 0;
        ulong r;
        if (width == F32)
        {
            uint x = (uint)a, y = (uint)b, z = (uint)c;
            r = op switch
            {
                "add" => SoftFloat.F32Add(x, y, rm, ref flags),
                "sub" => SoftFloat.F32Sub(x, y, rm, ref flags),
                "mul" => SoftFloat.F32Mul(x, y, rm, ref flags),
                "div" => SoftFloat.F32Div(x, y, rm, ref flags),
                "sqrt" => SoftFloat.F32Sqrt(x, rm, ref flags),
                _ => SoftFloat.F32MulAdd(x, y, z, rm, ref flags),
            };
        }
        else
        {
            r = op switch
            {
                "add" => SoftFloat.F64Add(a, b, rm, ref flags),
                "sub" => SoftFloat.F64Sub(a, b, rm, ref flags),
                "mul" => SoftFloat.F64Mul(a, b, rm, ref flags),
                "div" => SoftFloat.F64Div(a, b, rm, ref flags),
                "sqrt" => SoftFloat.F64Sqrt(a, rm, ref flags),
                _ => SoftFloat.F64MulAdd(a, b, c, rm, ref flags),
            };
        }

        return (r, flags);
    }

    private static (ulong, uint) ExactLayer(string op, int width, ulong a, ulong b, ulong c, RoundingMode rm)
    {
        var (fb, eb) = Format(width);
        uint flags = 0;
        ulong signBit = 1UL << (width - 1);
        ulong r = op switch
        {
            "add" => SoftFloat.ExactAdd(a, b, fb, eb, rm, ref flags),
            "sub" => SoftFloat.ExactAdd(a, b ^ signBit, fb, eb, rm, ref flags),
            "mul" => SoftFloat.ExactMul(a, b, fb, eb, rm, ref flags),
            "div" => SoftFloat.ExactDiv(a, b, fb, eb, rm, ref flags),
            "sqrt" => SoftFloat.ExactSqrt(a, fb, eb, rm, ref flags),
            _ => SoftFloat.ExactMulAdd(a, b, c, fb, eb, rm, ref flags),
        };
        return (r, flags);
    }

    private static (ulong, uint) Reference(string op, int width, ulong a, ulong b, ulong c, RoundingMode rm)
    {
        var (fb, eb) = Format(width);
        ulong signBit = 1UL << (width - 1);
        return op switch
        {
            "add" => ReferenceFloat.Add(a, b, fb, eb, rm),
            "sub" => ReferenceFloat.Add(a, b ^ signBit, fb, eb, rm),
            "mul" => ReferenceFloat.Mul(a, b, fb, eb, rm),
            "div" => ReferenceFloat.Div(a, b, fb, eb, rm),
            "sqrt" => ReferenceFloat.Sqrt(a, fb, eb, rm),
            _ => ReferenceFloat.MulAdd(a, b, c, fb, eb, rm),
        };
    }

    private static (ulong A, ulong B, ulong C) Operands(RandomFloats gen, string op)
    {
        ulong a = gen.Any();
        ulong b = gen.Partner(op, a);
        ulong c = op == "fma" ? gen.Addend(a, b) : 0;
        return (a, b, c);
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public void PublicApiMatchesReferenceInEveryMode(string op, int width)
    {
        var (fb, eb) = Format(width);
        var gen = new RandomFloats(Seed(op) ^ (width * 7919) ^ 12345, fb, eb);
        for (int i = 0; i < Cases; i++)
        {
            var (a, b, c) = Operands(gen, op);
            foreach (RoundingMode rm in AllModes)
            {
                var expected = Reference(op, width, a, b, c, rm);
                var actual = Public(op, width, a, b, c, rm);
                Assert.True(expected == actual,
                    $"{op}{width} {rm} a={a:x} b={b:x} c={c:x}: expected {expected.Item1:x} flags {expected.Item2:x}, got {actual.Item1:x} flags {actual.Item2:x}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public void ExactLayerMatchesReferenceInEveryMode(string op, int width)
    {
        var (fb, eb) = Format(width);
        var gen = new RandomFloats(Seed(op) ^ (width * 104729) ^ 777, fb, eb);
        for (int i = 0; i < Cases / 2; i++)
        {
            var (a, b, c) = Operands(gen, op);
            foreach (RoundingMode rm in AllModes)
            {
                var expected = Reference(op, width, a, b, c, rm);
                var actual = ExactLayer(op, width, a, b, c, rm);
                Assert.True(expected == actual,
                    $"exact {op}{width} {rm} a={a:x} b={b:x} c={c:x}: expected {expected.Item1:x} flags {expected.Item2:x}, got {actual.Item1:x} flags {actual.Item2:x}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Operations))]
    public void NearestEvenMatchesHostArithmetic(string op, int width)
    {
        var (fb, eb) = Format(width);
        var gen = new RandomFloats(Seed(op) ^ (width * 31) ^ 4242, fb, eb);
        for (int i = 0; i < Cases; i++)
        {
            var (a, b, c) = Operands(gen, op);
            var (actual, flags) = Public(op, width, a, b, c, RoundingMode.NearestEven);
            ulong host;
            if (width == F64)
            {
                double x = BitConverter.UInt64BitsToDouble(a), y = BitConverter.UInt64BitsToDouble(b), z = BitConverter.UInt64BitsToDouble(c);
                double r = op switch
                {
                    "add" => x + y,
                    "sub" => x - y,
                    "mul" => x * y,
                    "div" => x / y,
                    "sqrt" => Math.Sqrt(x),
                    _ => Math.FusedMultiplyAdd(x, y, z),
                };
                host = double.IsNaN(r) ? SoftFloat.F64CanonicalNaN : BitConverter.DoubleToUInt64Bits(r);
            }
            else
            {
                float x = BitConverter.UInt32BitsToSingle((uint)a), y = BitConverter.UInt32BitsToSingle((uint)b), z = BitConverter.UInt32BitsToSingle((uint)c);
                float r = op switch
                {
                    "add" => x + y,
                    "sub" => x - y,
                    "mul" => x * y,
                    "div" => x / y,
                    "sqrt" => MathF.Sqrt(x),
                    _ => MathF.FusedMultiplyAdd(x, y, z),
                };
                host = float.IsNaN(r) ? SoftFloat.F32CanonicalNaN : BitConverter.SingleToUInt32Bits(r);
            }

            Assert.True(host == actual, $"{op}{width} a={a:x} b={b:x} c={c:x}: host {host:x}, SoftFloat {actual:x}");

            // Inexact exactly when the exact (BigInteger) value differs from the result.
            uint referenceInexact = Reference(op, width, a, b, c, RoundingMode.NearestEven).Item2 & ReferenceFloat.NX;
            Assert.True(referenceInexact == (flags & ReferenceFloat.NX), $"NX of {op}{width} a={a:x} b={b:x} c={c:x}");
        }
    }

    [Theory]
    [InlineData(F32, F64)]
    [InlineData(F64, F32)]
    public void FloatConversionsMatchReference(int from, int to)
    {
        var (ff, fe) = Format(from);
        var (tf, te) = Format(to);
        var gen = new RandomFloats(from * 1000 + to, ff, fe);
        var wide = new RandomFloats(99, 52, 11);
        for (int i = 0; i < Cases; i++)
        {
            ulong a = gen.Any();
            if (from == F64 && i % 3 == 0)
            {
                a = wide.Near(1023 - 126 - 26 + (i % 40)); // the binary32 subnormal range
            }
            else if (from == F64 && i % 3 == 1)
            {
                a = wide.Near(1023 + 125 + (i % 5)); // the binary32 overflow edge
            }

            foreach (RoundingMode rm in AllModes)
            {
                var expected = ReferenceFloat.Convert(a, ff, fe, tf, te, rm);
                uint flags = 0;
                ulong actual = from == F32 ? SoftFloat.F32ToF64((uint)a, ref flags) : SoftFloat.F64ToF32(a, rm, ref flags);
                Assert.True(expected == (actual, flags), $"{from}->{to} {rm} a={a:x}: expected {expected.Item1:x}/{expected.Item2:x}, got {actual:x}/{flags:x}");
            }
        }
    }

    [Fact]
    public void IntegerToFloatMatchesReference()
    {
        var gen = new RandomFloats(5, 52, 11);
        for (int i = 0; i < Cases; i++)
        {
            long v = gen.Integer();
            ulong u = (ulong)v;
            int w = (int)v;
            uint uw = (uint)v;
            foreach (RoundingMode rm in AllModes)
            {
                Check(ReferenceFloat.FromInteger(w, 23, 8, rm), (f, m) => (SoftFloat.I32ToF32(w, m, ref f), f), rm, $"i32 {w}");
                Check(ReferenceFloat.FromInteger(uw, 23, 8, rm), (f, m) => (SoftFloat.U32ToF32(uw, m, ref f), f), rm, $"u32 {uw}");
                Check(ReferenceFloat.FromInteger(v, 23, 8, rm), (f, m) => (SoftFloat.I64ToF32(v, m, ref f), f), rm, $"i64 {v}");
                Check(ReferenceFloat.FromInteger(u, 23, 8, rm), (f, m) => (SoftFloat.U64ToF32(u, m, ref f), f), rm, $"u64 {u}");
                Check(ReferenceFloat.FromInteger(w, 52, 11, rm), (f, m) => (SoftFloat.I32ToF64(w, m, ref f), f), rm, $"i32 {w}");
                Check(ReferenceFloat.FromInteger(uw, 52, 11, rm), (f, m) => (SoftFloat.U32ToF64(uw, m, ref f), f), rm, $"u32 {uw}");
                Check(ReferenceFloat.FromInteger(v, 52, 11, rm), (f, m) => (SoftFloat.I64ToF64(v, m, ref f), f), rm, $"i64 {v}");
                Check(ReferenceFloat.FromInteger(u, 52, 11, rm), (f, m) => (SoftFloat.U64ToF64(u, m, ref f), f), rm, $"u64 {u}");
            }
        }

        static void Check((ulong, uint) expected, Func<uint, RoundingMode, (ulong, uint)> run, RoundingMode rm, string what)
        {
            var actual = run(0, rm);
            Assert.True(expected == actual, $"{what} {rm}: expected {expected.Item1:x}/{expected.Item2:x}, got {actual.Item1:x}/{actual.Item2:x}");
        }
    }

    [Theory]
    [InlineData(F32)]
    [InlineData(F64)]
    public void FloatToIntegerMatchesReference(int width)
    {
        var (fb, eb) = Format(width);
        var gen = new RandomFloats(width + 17, fb, eb);
        int bias = (1 << (eb - 1)) - 1;
        for (int i = 0; i < Cases; i++)
        {
            // Mostly magnitudes from 1/4 to 2^66, so that every range edge is crossed.
            ulong a = i % 4 == 0 ? gen.Any() : gen.Near(bias - 2 + (i % 69));
            foreach (RoundingMode rm in AllModes)
            {
                var i32 = ReferenceFloat.ToInteger(a, fb, eb, rm, int.MinValue, int.MaxValue);
                var u32 = ReferenceFloat.ToInteger(a, fb, eb, rm, 0, uint.MaxValue);
                var i64 = ReferenceFloat.ToInteger(a, fb, eb, rm, long.MinValue, long.MaxValue);
                var u64 = ReferenceFloat.ToInteger(a, fb, eb, rm, 0, ulong.MaxValue);
                uint f1 = 0, f2 = 0, f3 = 0, f4 = 0;
                BigInteger r1, r2, r3, r4;
                if (width == F32)
                {
                    r1 = SoftFloat.F32ToI32((uint)a, rm, ref f1);
                    r2 = SoftFloat.F32ToU32((uint)a, rm, ref f2);
                    r3 = SoftFloat.F32ToI64((uint)a, rm, ref f3);
                    r4 = SoftFloat.F32ToU64((uint)a, rm, ref f4);
                }
                else
                {
                    r1 = SoftFloat.F64ToI32(a, rm, ref f1);
                    r2 = SoftFloat.F64ToU32(a, rm, ref f2);
                    r3 = SoftFloat.F64ToI64(a, rm, ref f3);
                    r4 = SoftFloat.F64ToU64(a, rm, ref f4);
                }

                string what = $"{width} {rm} a={a:x}";
                Assert.True(i32 == (r1, f1), $"to i32 {what}: expected {i32}, got {r1}/{f1}");
                Assert.True(u32 == (r2, f2), $"to u32 {what}: expected {u32}, got {r2}/{f2}");
                Assert.True(i64 == (r3, f3), $"to i64 {what}: expected {i64}, got {r3}/{f3}");
                Assert.True(u64 == (r4, f4), $"to u64 {what}: expected {u64}, got {r4}/{f4}");
            }
        }
    }

    [Theory]
    [InlineData(F32)]
    [InlineData(F64)]
    public void MinMaxAndComparisonsMatchHostOrdering(int width)
    {
        var (fb, eb) = Format(width);
        var gen = new RandomFloats(width * 3 + 1, fb, eb);
        for (int i = 0; i < Cases; i++)
        {
            ulong a = gen.Any(), b = i % 3 == 0 ? a ^ (1UL << (width - 1)) : i % 3 == 1 ? gen.Partner("add", a) : gen.Any();
            double x = width == F64 ? BitConverter.UInt64BitsToDouble(a) : BitConverter.UInt32BitsToSingle((uint)a);
            double y = width == F64 ? BitConverter.UInt64BitsToDouble(b) : BitConverter.UInt32BitsToSingle((uint)b);
            bool anyNaN = double.IsNaN(x) || double.IsNaN(y);
            bool anySignaling = ReferenceFloat.IsSignaling(a, fb, eb) || ReferenceFloat.IsSignaling(b, fb, eb);
            ulong nan = ReferenceFloat.Nan(fb, eb);

            // minimumNumber / maximumNumber with -0 < +0.
            ulong expectedMin, expectedMax;
            if (double.IsNaN(x) && double.IsNaN(y))
            {
                expectedMin = expectedMax = nan;
            }
            else if (anyNaN)
            {
                expectedMin = expectedMax = double.IsNaN(x) ? b : a;
            }
            else if (x != y)
            {
                (expectedMin, expectedMax) = x < y ? (a, b) : (b, a);
            }
            else
            {
                bool aNegative = ReferenceFloat.IsNegative(a, fb, eb);
                (expectedMin, expectedMax) = aNegative ? (a, b) : (b, a); // equal, or +0 and -0
            }

            uint minFlags = 0, maxFlags = 0, eqFlags = 0, ltFlags = 0, leFlags = 0;
            ulong min, max;
            bool eq, lt, le;
            if (width == F64)
            {
                min = SoftFloat.F64Min(a, b, ref minFlags);
                max = SoftFloat.F64Max(a, b, ref maxFlags);
                eq = SoftFloat.F64Eq(a, b, ref eqFlags);
                lt = SoftFloat.F64Lt(a, b, ref ltFlags);
                le = SoftFloat.F64Le(a, b, ref leFlags);
            }
            else
            {
                min = SoftFloat.F32Min((uint)a, (uint)b, ref minFlags);
                max = SoftFloat.F32Max((uint)a, (uint)b, ref maxFlags);
                eq = SoftFloat.F32Eq((uint)a, (uint)b, ref eqFlags);
                lt = SoftFloat.F32Lt((uint)a, (uint)b, ref ltFlags);
                le = SoftFloat.F32Le((uint)a, (uint)b, ref leFlags);
            }

            string what = $"{width} a={a:x} b={b:x}";
            uint signalingNV = anySignaling ? ReferenceFloat.NV : 0;
            uint anyNaNNV = anyNaN ? ReferenceFloat.NV : 0;
            Assert.True(min == expectedMin && minFlags == signalingNV, $"min {what}: {min:x}/{minFlags}");
            Assert.True(max == expectedMax && maxFlags == signalingNV, $"max {what}: {max:x}/{maxFlags}");
            Assert.True(eq == (x == y) && eqFlags == signalingNV, $"eq {what}");
            Assert.True(lt == (x < y) && ltFlags == anyNaNNV, $"lt {what}");
            Assert.True(le == (x <= y) && leFlags == anyNaNNV, $"le {what}");
        }
    }
}
