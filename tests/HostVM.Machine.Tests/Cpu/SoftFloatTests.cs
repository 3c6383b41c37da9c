using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Hand-picked cases for <see cref="SoftFloat"/>, each worked out from the IEEE 754 and RISC-V
/// rules: ties, directed rounding, overflow and underflow per mode, NaNs, zero signs, min/max,
/// comparisons, fclass and every conversion's saturation.
/// </summary>
public sealed class SoftFloatTests
{
    private const RoundingMode RNE = RoundingMode.NearestEven;
    private const RoundingMode RTZ = RoundingMode.TowardZero;
    private const RoundingMode RDN = RoundingMode.Down;
    private const RoundingMode RUP = RoundingMode.Up;
    private const RoundingMode RMM = RoundingMode.NearestMaxMagnitude;

    private const FloatFlags None = FloatFlags.None;
    private const FloatFlags NX = FloatFlags.Inexact;
    private const FloatFlags UF = FloatFlags.Underflow;
    private const FloatFlags OF = FloatFlags.Overflow;
    private const FloatFlags DZ = FloatFlags.DivideByZero;
    private const FloatFlags NV = FloatFlags.Invalid;

    // binary64
    private const ulong One = 0x3ff0000000000000, NegOne = 0xbff0000000000000, Two = 0x4000000000000000;
    private const ulong Half = 0x3fe0000000000000, Zero = 0, NegZero = 0x8000000000000000;
    private const ulong Inf = 0x7ff0000000000000, NegInf = 0xfff0000000000000;
    private const ulong Max = 0x7fefffffffffffff, NegMax = 0xffefffffffffffff;
    private const ulong MinNormal = 0x0010000000000000, MinSub = 1, NegMinSub = 0x8000000000000001;
    private const ulong QNaN = 0x7ff8000000000000, SNaN = 0x7ff4000000000000, NaNPayload = 0xfff8000000000123;

    // binary32
    private const uint FOne = 0x3f800000, FNegOne = 0xbf800000, FTwo = 0x40000000, FHalf = 0x3f000000;
    private const uint FZero = 0, FNegZero = 0x80000000, FInf = 0x7f800000, FNegInf = 0xff800000;
    private const uint FMax = 0x7f7fffff, FNegMax = 0xff7fffff, FMinNormal = 0x00800000, FMinSub = 1;
    private const uint FQNaN = 0x7fc00000, FSNaN = 0x7fa00000, FNaNPayload = 0xffc00123;

    private static ulong D(double d) => BitConverter.DoubleToUInt64Bits(d);

    private static uint F(float f) => BitConverter.SingleToUInt32Bits(f);

    private static void Expect(ulong expected, FloatFlags expectedFlags, ulong actual, uint flags)
    {
        Assert.True(expected == actual && (uint)expectedFlags == flags,
            $"expected {expected:x} [{expectedFlags}], got {actual:x} [{(FloatFlags)flags}]");
    }

    private static void Expect(bool expected, FloatFlags expectedFlags, bool actual, uint flags)
    {
        Assert.True(expected == actual && (uint)expectedFlags == flags,
            $"expected {expected} [{expectedFlags}], got {actual} [{(FloatFlags)flags}]");
    }

    // ------------------------------------------------------------------ rounding of sums

    [Theory]
    // 1 + 2^-53: exactly halfway between 1 and 1 + ulp; ties-to-even stays at 1 (even).
    [InlineData(One, 0x3ca0000000000000, RNE, One)]
    [InlineData(One, 0x3ca0000000000000, RTZ, One)]
    [InlineData(One, 0x3ca0000000000000, RDN, One)]
    [InlineData(One, 0x3ca0000000000000, RUP, 0x3ff0000000000001)]
    [InlineData(One, 0x3ca0000000000000, RMM, 0x3ff0000000000001)]
    // -1 - 2^-53: the mirror image; directed modes swap.
    [InlineData(NegOne, 0xbca0000000000000, RNE, NegOne)]
    [InlineData(NegOne, 0xbca0000000000000, RTZ, NegOne)]
    [InlineData(NegOne, 0xbca0000000000000, RDN, 0xbff0000000000001)]
    [InlineData(NegOne, 0xbca0000000000000, RUP, NegOne)]
    [InlineData(NegOne, 0xbca0000000000000, RMM, 0xbff0000000000001)]
    // (1 + ulp) + half ulp: the tie now goes up to the even neighbour.
    [InlineData(0x3ff0000000000001, 0x3ca0000000000000, RNE, 0x3ff0000000000002)]
    [InlineData(0x3ff0000000000001, 0x3ca0000000000000, RTZ, 0x3ff0000000000001)]
    [InlineData(0x3ff0000000000001, 0x3ca0000000000000, RMM, 0x3ff0000000000002)]
    // 1 + quarter ulp (below half) and 1 + just over half an ulp.
    [InlineData(One, 0x3c90000000000000, RNE, One)]
    [InlineData(One, 0x3c90000000000000, RMM, One)]
    [InlineData(One, 0x3c90000000000000, RUP, 0x3ff0000000000001)]
    [InlineData(One, 0x3ca0000000000001, RNE, 0x3ff0000000000001)]
    [InlineData(One, 0x3ca0000000000001, RTZ, One)]
    [InlineData(One, 0x3ca0000000000001, RDN, One)]
    // 1 - quarter ulp of 1 (the ulp below 1 is half as big): rounding toward zero steps down.
    [InlineData(One, 0xbc90000000000000, RTZ, 0x3fefffffffffffff)]
    [InlineData(One, 0xbc90000000000000, RDN, 0x3fefffffffffffff)]
    [InlineData(One, 0xbc90000000000000, RUP, One)]
    [InlineData(One, 0xbc90000000000000, RNE, One)] // a tie between 1 - 2^-53 (odd) and 1 (even)
    [InlineData(One, 0xbc90000000000000, RMM, One)]
    public void F64AddRoundsEveryMode(ulong a, ulong b, RoundingMode rm, ulong expected)
    {
        uint flags = 0;
        ulong r = SoftFloat.F64Add(a, b, rm, ref flags);
        Expect(expected, NX, r, flags);
    }

    [Theory]
    [InlineData(FOne, 0x33800000, RNE, FOne)]
    [InlineData(FOne, 0x33800000, RTZ, FOne)]
    [InlineData(FOne, 0x33800000, RDN, FOne)]
    [InlineData(FOne, 0x33800000, RUP, 0x3f800001)]
    [InlineData(FOne, 0x33800000, RMM, 0x3f800001)]
    [InlineData(FNegOne, 0xb3800000, RNE, FNegOne)]
    [InlineData(FNegOne, 0xb3800000, RDN, 0xbf800001)]
    [InlineData(FNegOne, 0xb3800000, RUP, FNegOne)]
    [InlineData(FNegOne, 0xb3800000, RTZ, FNegOne)]
    [InlineData(FNegOne, 0xb3800000, RMM, 0xbf800001)]
    [InlineData(0x3f800001, 0x33800000, RNE, 0x3f800002)]
    [InlineData(0x3f800001, 0x33800000, RTZ, 0x3f800001)]
    [InlineData(FOne, 0x33000000, RNE, FOne)]
    [InlineData(FOne, 0x33000000, RUP, 0x3f800001)]
    [InlineData(FOne, 0x33800001, RNE, 0x3f800001)]
    public void F32AddRoundsEveryMode(uint a, uint b, RoundingMode rm, uint expected)
    {
        uint flags = 0;
        uint r = SoftFloat.F32Add(a, b, rm, ref flags);
        Expect(expected, NX, r, flags);
    }

    // ------------------------------------------------------------------ rounding of products

    [Theory]
    // (1 + 3*2^-52) * 1.5 = 1.5 + 4.5 ulp: a tie with an even lower neighbour.
    [InlineData(RNE, 0x3ff8000000000004)]
    [InlineData(RTZ, 0x3ff8000000000004)]
    [InlineData(RDN, 0x3ff8000000000004)]
    [InlineData(RUP, 0x3ff8000000000005)]
    [InlineData(RMM, 0x3ff8000000000005)]
    public void F64MulTies(RoundingMode rm, ulong expected)
    {
        uint flags = 0;
        Expect(expected, NX, SoftFloat.F64Mul(0x3ff0000000000003, 0x3ff8000000000000, rm, ref flags), flags);
        flags = 0;
        ulong negated = SoftFloat.F64Mul(0xbff0000000000003, 0x3ff8000000000000, rm switch { RDN => RUP, RUP => RDN, _ => rm }, ref flags);
        Expect(expected | 0x8000000000000000, NX, negated, flags);
    }

    [Theory]
    // (1 + 2^-12)^2 = 1 + 2^-11 + 2^-24: a tie in binary32.
    [InlineData(RNE, 0x3f801000)]
    [InlineData(RTZ, 0x3f801000)]
    [InlineData(RDN, 0x3f801000)]
    [InlineData(RUP, 0x3f801001)]
    [InlineData(RMM, 0x3f801001)]
    public void F32MulTies(RoundingMode rm, uint expected)
    {
        uint flags = 0;
        Expect(expected, NX, SoftFloat.F32Mul(0x3f800800, 0x3f800800, rm, ref flags), flags);
    }

    // ------------------------------------------------------------------ overflow per mode

    [Theory]
    [InlineData(RNE, Inf, NegInf)]
    [InlineData(RTZ, Max, NegMax)]
    [InlineData(RDN, Max, NegInf)]
    [InlineData(RUP, Inf, NegMax)]
    [InlineData(RMM, Inf, NegInf)]
    public void F64OverflowPerMode(RoundingMode rm, ulong positive, ulong negative)
    {
        uint flags = 0;
        Expect(positive, OF | NX, SoftFloat.F64Mul(Max, Two, rm, ref flags), flags);
        flags = 0;
        Expect(negative, OF | NX, SoftFloat.F64Mul(NegMax, Two, rm, ref flags), flags);
        flags = 0;
        Expect(positive, OF | NX, SoftFloat.F64Add(Max, Max, rm, ref flags), flags);
        flags = 0;
        Expect(negative, OF | NX, SoftFloat.F64Div(NegMax, Half, rm, ref flags), flags);
        flags = 0;
        Expect(positive, OF | NX, SoftFloat.F64MulAdd(Max, Two, NegOne, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(RNE, FInf, FNegInf)]
    [InlineData(RTZ, FMax, FNegMax)]
    [InlineData(RDN, FMax, FNegInf)]
    [InlineData(RUP, FInf, FNegMax)]
    [InlineData(RMM, FInf, FNegInf)]
    public void F32OverflowPerMode(RoundingMode rm, uint positive, uint negative)
    {
        uint flags = 0;
        Expect(positive, OF | NX, SoftFloat.F32Mul(FMax, FTwo, rm, ref flags), flags);
        flags = 0;
        Expect(negative, OF | NX, SoftFloat.F32Mul(FNegMax, FTwo, rm, ref flags), flags);
        flags = 0;
        Expect(positive, OF | NX, SoftFloat.F32Add(FMax, FMax, rm, ref flags), flags);
        flags = 0;
        Expect(negative, OF | NX, SoftFloat.F32Div(FNegMax, FHalf, rm, ref flags), flags);
        flags = 0;
        Expect(positive, OF | NX, SoftFloat.F32MulAdd(FMax, FTwo, FNegOne, rm, ref flags), flags);
        flags = 0;
        Expect(positive, OF | NX, SoftFloat.F64ToF32(D(1e300), rm, ref flags), flags);
    }

    [Theory]
    // max + half an ulp of max (2^970): a tie whose even neighbour is 2^1024, i.e. overflow.
    [InlineData(0x7c90000000000000, RNE, Inf, OF | NX)]
    [InlineData(0x7c90000000000000, RMM, Inf, OF | NX)]
    [InlineData(0x7c90000000000000, RUP, Inf, OF | NX)]
    [InlineData(0x7c90000000000000, RTZ, Max, NX)]
    [InlineData(0x7c90000000000000, RDN, Max, NX)]
    // max + a quarter ulp: rounds back to max in the nearest modes, no overflow.
    [InlineData(0x7c80000000000000, RNE, Max, NX)]
    [InlineData(0x7c80000000000000, RMM, Max, NX)]
    [InlineData(0x7c80000000000000, RUP, Inf, OF | NX)]
    public void F64OverflowThreshold(ulong addend, RoundingMode rm, ulong expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Expect(expected, expectedFlags, SoftFloat.F64Add(Max, addend, rm, ref flags), flags);
    }

    // ------------------------------------------------------------------ subnormals and underflow

    [Theory]
    [InlineData(RNE)]
    [InlineData(RTZ)]
    [InlineData(RDN)]
    [InlineData(RUP)]
    [InlineData(RMM)]
    public void ExactSubnormalResultsRaiseNoUnderflow(RoundingMode rm)
    {
        uint flags = 0;
        Expect(0x0008000000000000, None, SoftFloat.F64Mul(MinNormal, Half, rm, ref flags), flags);
        Expect(0x0008000000000000, None, SoftFloat.F64Div(MinNormal, Two, rm, ref flags), flags);
        Expect(2, None, SoftFloat.F64Add(MinSub, MinSub, rm, ref flags), flags);
        Expect(0x000fffffffffffff, None, SoftFloat.F64Sub(MinNormal, MinSub, rm, ref flags), flags);
        Expect(0x00400000, None, SoftFloat.F32Mul(FMinNormal, FHalf, rm, ref flags), flags);
        Expect(2, None, SoftFloat.F32Add(FMinSub, FMinSub, rm, ref flags), flags);
        Expect(1, None, SoftFloat.F64ToF32(0x36a0000000000000, rm, ref flags), flags); // 2^-149
        Expect(0x36a0000000000000, None, SoftFloat.F32ToF64(FMinSub, ref flags), flags);
    }

    [Theory]
    // min subnormal / 2: a tie between 0 and the min subnormal; ties-to-even gives 0.
    [InlineData(RNE, Zero, NegZero)]
    [InlineData(RTZ, Zero, NegZero)]
    [InlineData(RDN, Zero, NegMinSub)]
    [InlineData(RUP, MinSub, NegZero)]
    [InlineData(RMM, MinSub, NegMinSub)]
    public void F64UnderflowToZeroOrMinSubnormal(RoundingMode rm, ulong positive, ulong negative)
    {
        uint flags = 0;
        Expect(positive, UF | NX, SoftFloat.F64Mul(MinSub, Half, rm, ref flags), flags);
        flags = 0;
        Expect(negative, UF | NX, SoftFloat.F64Mul(NegMinSub, Half, rm, ref flags), flags);
        flags = 0;
        Expect(positive, UF | NX, SoftFloat.F64Div(MinSub, Two, rm, ref flags), flags);
        flags = 0;
        Expect(positive, UF | NX, SoftFloat.F64MulAdd(MinSub, Half, Zero, rm, ref flags), flags);
    }

    [Theory]
    // 1.5 * min subnormal: a tie between 1 and 2 units; even is 2.
    [InlineData(RNE, 2u)]
    [InlineData(RTZ, 1u)]
    [InlineData(RDN, 1u)]
    [InlineData(RUP, 2u)]
    [InlineData(RMM, 2u)]
    public void F32SubnormalTies(RoundingMode rm, uint expected)
    {
        uint flags = 0;
        Expect(expected, UF | NX, SoftFloat.F32Mul(3, FHalf, rm, ref flags), flags);
        flags = 0;
        Expect(expected, UF | NX, SoftFloat.F64ToF32(0x36a8000000000000, rm, ref flags), flags); // 1.5 * 2^-149
    }

    [Theory]
    // (1 - 2^-52) * (1 + 2^-52) * 2^-1022 = (1 - 2^-104) * 2^-1022: below the smallest normal,
    // but it rounds to it when the exponent is unbounded, so it is not tiny after rounding.
    [InlineData(RNE, MinNormal, NX)]
    [InlineData(RMM, MinNormal, NX)]
    [InlineData(RUP, MinNormal, NX)]
    [InlineData(RTZ, 0x000fffffffffffff, UF | NX)]
    [InlineData(RDN, 0x000fffffffffffff, UF | NX)]
    public void F64TininessIsDetectedAfterRounding(RoundingMode rm, ulong expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Expect(expected, expectedFlags, SoftFloat.F64Mul(0x3feffffffffffffe, 0x0010000000000001, rm, ref flags), flags);
    }

    [Theory]
    [InlineData(RNE, FMinNormal, NX)]
    [InlineData(RMM, FMinNormal, NX)]
    [InlineData(RUP, FMinNormal, NX)]
    [InlineData(RTZ, 0x007fffffu, UF | NX)]
    [InlineData(RDN, 0x007fffffu, UF | NX)]
    public void F32TininessIsDetectedAfterRounding(RoundingMode rm, uint expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Expect(expected, expectedFlags, SoftFloat.F32Mul(0x3f7ffffe, 0x00800001, rm, ref flags), flags);

        // The same value reached by narrowing: (1 - 2^-25) * 2^-126 is a binary32 tie at 24 bits.
        flags = 0;
        Expect(expected, expectedFlags, SoftFloat.F64ToF32(0x380ffffff0000000, rm, ref flags), flags);
    }

    // ------------------------------------------------------------------ exact results

    [Theory]
    [InlineData(RNE)]
    [InlineData(RTZ)]
    [InlineData(RDN)]
    [InlineData(RUP)]
    [InlineData(RMM)]
    public void ExactResultsSetNoFlags(RoundingMode rm)
    {
        uint flags = 0;
        Expect(D(2), None, SoftFloat.F64Add(One, One, rm, ref flags), flags);
        Expect(D(-1.5), None, SoftFloat.F64Sub(D(1.5), D(3), rm, ref flags), flags);
        Expect(D(15), None, SoftFloat.F64Mul(D(3), D(5), rm, ref flags), flags);
        Expect(D(0.25), None, SoftFloat.F64Div(One, D(4), rm, ref flags), flags);
        Expect(D(4), None, SoftFloat.F64Sqrt(D(16), rm, ref flags), flags);
        Expect(D(10), None, SoftFloat.F64MulAdd(D(2), D(3), D(4), rm, ref flags), flags);
        Expect(F(2), None, SoftFloat.F32Add(FOne, FOne, rm, ref flags), flags);
        Expect(F(15), None, SoftFloat.F32Mul(F(3), F(5), rm, ref flags), flags);
        Expect(F(0.25f), None, SoftFloat.F32Div(FOne, F(4), rm, ref flags), flags);
        Expect(F(4), None, SoftFloat.F32Sqrt(F(16), rm, ref flags), flags);
        Expect(F(10), None, SoftFloat.F32MulAdd(F(2), F(3), F(4), rm, ref flags), flags);
        Expect(F(1.5f), None, SoftFloat.F64ToF32(D(1.5), rm, ref flags), flags);
        Expect(3u, None, (uint)SoftFloat.F64ToI32(D(3), rm, ref flags), flags);
        Expect(F(7), None, SoftFloat.I32ToF32(7, rm, ref flags), flags);
        Expect(D(-7), None, SoftFloat.I64ToF64(-7, rm, ref flags), flags);
    }

    [Fact]
    public void FusedMultiplyAddRoundsOnce()
    {
        // (1 + 2^-52)(1 - 2^-52) - 1 = -2^-104 exactly; a separate multiply would round to 1 and give 0.
        uint flags = 0;
        Expect(0xb970000000000000, None, SoftFloat.F64MulAdd(0x3ff0000000000001, 0x3feffffffffffffe, NegOne, RNE, ref flags), flags);
        Expect(0xa8800000u, None, SoftFloat.F32MulAdd(0x3f800001, 0x3f7ffffe, FNegOne, RNE, ref flags), flags);
    }

    // ------------------------------------------------------------------ NaNs and invalid operations

    [Fact]
    public void NaNResultsAreCanonicalAndOnlySignalingNaNsRaiseInvalid()
    {
        uint flags = 0;
        Expect(QNaN, None, SoftFloat.F64Add(NaNPayload, One, RNE, ref flags), flags);
        Expect(QNaN, None, SoftFloat.F64Mul(One, 0x7ff8000000000001, RNE, ref flags), flags);
        Expect(QNaN, None, SoftFloat.F64Sqrt(NaNPayload, RNE, ref flags), flags);
        Expect(QNaN, None, SoftFloat.F64Div(QNaN, Zero, RNE, ref flags), flags); // no DZ for NaN / 0
        Expect(FQNaN, None, SoftFloat.F32Add(FNaNPayload, FOne, RNE, ref flags), flags);
        Expect(FQNaN, None, SoftFloat.F32Div(FOne, 0x7fc00001, RNE, ref flags), flags);

        Expect(QNaN, NV, SoftFloat.F64Add(SNaN, One, RNE, ref flags), flags);
        flags = 0;
        Expect(QNaN, NV, SoftFloat.F64Sub(QNaN, 0xfff0000000000001, RNE, ref flags), flags);
        flags = 0;
        Expect(QNaN, NV, SoftFloat.F64Sqrt(SNaN, RNE, ref flags), flags);
        flags = 0;
        Expect(FQNaN, NV, SoftFloat.F32Mul(FSNaN, FOne, RNE, ref flags), flags);
        flags = 0;
        Expect(FQNaN, NV, SoftFloat.F32Sqrt(FSNaN, RNE, ref flags), flags);
    }

    [Fact]
    public void InvalidOperationsReturnTheCanonicalNaN()
    {
        var cases64 = new (Func<uint, (ulong, uint)> Op, string Name)[]
        {
            (f => (SoftFloat.F64Add(Inf, NegInf, RNE, ref f), f), "inf + -inf"),
            (f => (SoftFloat.F64Sub(Inf, Inf, RNE, ref f), f), "inf - inf"),
            (f => (SoftFloat.F64Mul(Zero, Inf, RNE, ref f), f), "0 * inf"),
            (f => (SoftFloat.F64Mul(NegInf, NegZero, RNE, ref f), f), "-inf * -0"),
            (f => (SoftFloat.F64Div(Zero, NegZero, RNE, ref f), f), "0 / 0"),
            (f => (SoftFloat.F64Div(Inf, NegInf, RNE, ref f), f), "inf / inf"),
            (f => (SoftFloat.F64Sqrt(NegOne, RNE, ref f), f), "sqrt(-1)"),
            (f => (SoftFloat.F64Sqrt(NegInf, RNE, ref f), f), "sqrt(-inf)"),
            (f => (SoftFloat.F64Sqrt(NegMinSub, RNE, ref f), f), "sqrt(-min subnormal)"),
            (f => (SoftFloat.F64MulAdd(Zero, Inf, QNaN, RNE, ref f), f), "0 * inf + qNaN"),
            (f => (SoftFloat.F64MulAdd(Inf, Zero, One, RNE, ref f), f), "inf * 0 + 1"),
            (f => (SoftFloat.F64MulAdd(Inf, One, NegInf, RNE, ref f), f), "inf * 1 - inf"),
            (f => (SoftFloat.F64MulAdd(One, One, SNaN, RNE, ref f), f), "1 * 1 + sNaN"),
        };
        foreach (var (op, name) in cases64)
        {
            var (r, flags) = op(0);
            Assert.True(r == QNaN && flags == (uint)NV, $"{name}: got {r:x} [{(FloatFlags)flags}]");
        }

        var cases32 = new (Func<uint, (uint, uint)> Op, string Name)[]
        {
            (f => (SoftFloat.F32Add(FInf, FNegInf, RNE, ref f), f), "inf + -inf"),
            (f => (SoftFloat.F32Mul(FZero, FInf, RNE, ref f), f), "0 * inf"),
            (f => (SoftFloat.F32Div(FZero, FZero, RNE, ref f), f), "0 / 0"),
            (f => (SoftFloat.F32Div(FInf, FInf, RNE, ref f), f), "inf / inf"),
            (f => (SoftFloat.F32Sqrt(FNegOne, RNE, ref f), f), "sqrt(-1)"),
            (f => (SoftFloat.F32MulAdd(FInf, FZero, FQNaN, RNE, ref f), f), "inf * 0 + qNaN"),
            (f => (SoftFloat.F32MulAdd(FNegInf, FOne, FInf, RNE, ref f), f), "-inf * 1 + inf"),
        };
        foreach (var (op, name) in cases32)
        {
            var (r, flags) = op(0);
            Assert.True(r == FQNaN && flags == (uint)NV, $"{name}: got {r:x} [{(FloatFlags)flags}]");
        }
    }

    [Fact]
    public void InfinityArithmeticIsExact()
    {
        uint flags = 0;
        Expect(Inf, None, SoftFloat.F64Add(Inf, Inf, RNE, ref flags), flags);
        Expect(NegInf, None, SoftFloat.F64Sub(Max, Inf, RNE, ref flags), flags);
        Expect(NegInf, None, SoftFloat.F64Mul(Inf, NegMinSub, RNE, ref flags), flags);
        Expect(NegZero, None, SoftFloat.F64Div(One, NegInf, RNE, ref flags), flags);
        Expect(Inf, None, SoftFloat.F64Sqrt(Inf, RNE, ref flags), flags);
        Expect(NegInf, None, SoftFloat.F64MulAdd(NegOne, Inf, One, RNE, ref flags), flags);
        Expect(Inf, None, SoftFloat.F64MulAdd(Max, Max, Inf, RNE, ref flags), flags); // no overflow: exact inf
        Expect(FInf, None, SoftFloat.F32MulAdd(FOne, FTwo, FInf, RNE, ref flags), flags);
        Expect(FNegInf, None, SoftFloat.F32Div(FNegInf, FTwo, RNE, ref flags), flags);
    }

    [Fact]
    public void DivisionByZero()
    {
        uint flags = 0;
        Expect(Inf, DZ, SoftFloat.F64Div(One, Zero, RNE, ref flags), flags);
        flags = 0;
        Expect(NegInf, DZ, SoftFloat.F64Div(One, NegZero, RTZ, ref flags), flags);
        flags = 0;
        Expect(NegInf, DZ, SoftFloat.F64Div(NegMinSub, Zero, RNE, ref flags), flags);
        flags = 0;
        Expect(Inf, None, SoftFloat.F64Div(Inf, Zero, RNE, ref flags), flags);
        Expect(FInf, DZ, SoftFloat.F32Div(FTwo, FZero, RDN, ref flags), flags);
        flags = 0;
        Expect(FNegInf, DZ, SoftFloat.F32Div(FTwo, FNegZero, RUP, ref flags), flags);
        flags = 0;
        Expect(FQNaN, NV, SoftFloat.F32Div(FNegZero, FZero, RNE, ref flags), flags); // 0/0 is NV, not DZ
    }

    // ------------------------------------------------------------------ signs of zero

    [Theory]
    [InlineData(RNE, false)]
    [InlineData(RTZ, false)]
    [InlineData(RDN, true)]
    [InlineData(RUP, false)]
    [InlineData(RMM, false)]
    public void ExactZeroSums(RoundingMode rm, bool negative)
    {
        ulong z64 = negative ? NegZero : Zero;
        uint z32 = negative ? FNegZero : FZero;
        uint flags = 0;
        Expect(z64, None, SoftFloat.F64Add(D(1.25), D(-1.25), rm, ref flags), flags);
        Expect(z64, None, SoftFloat.F64Sub(D(3), D(3), rm, ref flags), flags);
        Expect(z64, None, SoftFloat.F64Add(Zero, NegZero, rm, ref flags), flags);
        Expect(z64, None, SoftFloat.F64Add(Max, NegMax, rm, ref flags), flags);
        Expect(z64, None, SoftFloat.F64MulAdd(D(2), D(3), D(-6), rm, ref flags), flags);
        Expect(z64, None, SoftFloat.F64MulAdd(Zero, D(5), NegZero, rm, ref flags), flags);
        Expect(z32, None, SoftFloat.F32Add(F(1.25f), F(-1.25f), rm, ref flags), flags);
        Expect(z32, None, SoftFloat.F32Sub(FNegZero, FNegZero, rm, ref flags), flags);
        Expect(z32, None, SoftFloat.F32MulAdd(F(2), F(-3), F(6), rm, ref flags), flags);
        Expect(z32, None, SoftFloat.F32MulAdd(FNegZero, F(5), FZero, rm, ref flags), flags);

        // Same-signed zeros keep their sign in every mode.
        Expect(Zero, None, SoftFloat.F64Add(Zero, Zero, rm, ref flags), flags);
        Expect(NegZero, None, SoftFloat.F64Add(NegZero, NegZero, rm, ref flags), flags);
        Expect(NegZero, None, SoftFloat.F64MulAdd(NegZero, D(5), NegZero, rm, ref flags), flags);
        Expect(FNegZero, None, SoftFloat.F32Sub(FNegZero, FZero, rm, ref flags), flags);

        // Products and quotients of zeros take the xor of the signs.
        Expect(NegZero, None, SoftFloat.F64Mul(NegZero, D(5), rm, ref flags), flags);
        Expect(Zero, None, SoftFloat.F64Div(NegZero, D(-5), rm, ref flags), flags);
        Expect(FNegZero, None, SoftFloat.F32Mul(FZero, F(-5), rm, ref flags), flags);
        Expect(NegZero, None, SoftFloat.F64Sqrt(NegZero, rm, ref flags), flags);
        Expect(FNegZero, None, SoftFloat.F32Sqrt(FNegZero, rm, ref flags), flags);
    }

    // ------------------------------------------------------------------ min / max

    [Fact]
    public void MinMaxOrderZerosAndPreferNumbers()
    {
        uint flags = 0;
        Assert.Equal(NegZero, SoftFloat.F64Min(Zero, NegZero, ref flags));
        Assert.Equal(NegZero, SoftFloat.F64Min(NegZero, Zero, ref flags));
        Assert.Equal(Zero, SoftFloat.F64Max(Zero, NegZero, ref flags));
        Assert.Equal(Zero, SoftFloat.F64Max(NegZero, Zero, ref flags));
        Assert.Equal(FNegZero, SoftFloat.F32Min(FZero, FNegZero, ref flags));
        Assert.Equal(FZero, SoftFloat.F32Max(FNegZero, FZero, ref flags));
        Assert.Equal(D(-2), SoftFloat.F64Min(D(-1), D(-2), ref flags));
        Assert.Equal(D(-1), SoftFloat.F64Max(D(-1), D(-2), ref flags));
        Assert.Equal(D(1), SoftFloat.F64Min(D(1), D(2), ref flags));
        Assert.Equal(NegInf, SoftFloat.F64Min(D(5), NegInf, ref flags));
        Assert.Equal(Inf, SoftFloat.F64Max(Inf, D(5), ref flags));
        Assert.Equal(F(-3), SoftFloat.F32Min(F(2), F(-3), ref flags));
        Assert.Equal(F(2), SoftFloat.F32Max(F(2), F(-3), ref flags));
        Assert.Equal(One, SoftFloat.F64Min(QNaN, One, ref flags));
        Assert.Equal(One, SoftFloat.F64Max(One, NaNPayload, ref flags));
        Assert.Equal(FOne, SoftFloat.F32Min(FOne, FNaNPayload, ref flags));
        Assert.Equal(QNaN, SoftFloat.F64Min(NaNPayload, 0x7ff8000000000001, ref flags)); // both NaN: canonical
        Assert.Equal(FQNaN, SoftFloat.F32Max(FNaNPayload, FNaNPayload, ref flags));
        Assert.Equal(0u, flags);

        Assert.Equal(One, SoftFloat.F64Min(SNaN, One, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(FOne, SoftFloat.F32Max(FOne, FSNaN, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(QNaN, SoftFloat.F64Max(SNaN, QNaN, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(FQNaN, SoftFloat.F32Min(FQNaN, FSNaN, ref flags));
        Assert.Equal((uint)NV, flags);
    }

    // ------------------------------------------------------------------ comparisons

    [Fact]
    public void ComparisonsOnNumbers()
    {
        uint flags = 0;
        Expect(true, None, SoftFloat.F64Eq(Zero, NegZero, ref flags), flags);
        Expect(false, None, SoftFloat.F64Lt(NegZero, Zero, ref flags), flags);
        Expect(true, None, SoftFloat.F64Le(NegZero, Zero, ref flags), flags);
        Expect(true, None, SoftFloat.F64Lt(D(-1), One, ref flags), flags);
        Expect(true, None, SoftFloat.F64Lt(D(-2), D(-1), ref flags), flags);
        Expect(false, None, SoftFloat.F64Lt(D(-1), D(-2), ref flags), flags);
        Expect(false, None, SoftFloat.F64Lt(One, One, ref flags), flags);
        Expect(true, None, SoftFloat.F64Le(One, One, ref flags), flags);
        Expect(false, None, SoftFloat.F64Le(Two, One, ref flags), flags);
        Expect(false, None, SoftFloat.F64Lt(Inf, Inf, ref flags), flags);
        Expect(true, None, SoftFloat.F64Le(NegInf, NegMax, ref flags), flags);
        Expect(true, None, SoftFloat.F64Lt(NegMinSub, Zero, ref flags), flags);
        Expect(false, None, SoftFloat.F64Eq(MinSub, NegMinSub, ref flags), flags);
        Expect(true, None, SoftFloat.F32Eq(FNegZero, FZero, ref flags), flags);
        Expect(true, None, SoftFloat.F32Lt(F(-3), F(-2.5f), ref flags), flags);
        Expect(false, None, SoftFloat.F32Lt(FNegZero, FZero, ref flags), flags);
        Expect(true, None, SoftFloat.F32Le(FZero, FNegZero, ref flags), flags);
        Expect(true, None, SoftFloat.F32Le(FMax, FInf, ref flags), flags);
    }

    [Fact]
    public void EqualityIsQuietAndOrderingSignals()
    {
        uint flags = 0;
        Expect(false, None, SoftFloat.F64Eq(QNaN, One, ref flags), flags);
        Expect(false, None, SoftFloat.F64Eq(QNaN, QNaN, ref flags), flags);
        Expect(false, None, SoftFloat.F32Eq(FOne, FNaNPayload, ref flags), flags);
        Expect(false, NV, SoftFloat.F64Eq(SNaN, SNaN, ref flags), flags);
        flags = 0;
        Expect(false, NV, SoftFloat.F32Eq(FOne, FSNaN, ref flags), flags);
        flags = 0;
        Expect(false, NV, SoftFloat.F64Lt(QNaN, One, ref flags), flags);
        flags = 0;
        Expect(false, NV, SoftFloat.F64Le(One, QNaN, ref flags), flags);
        flags = 0;
        Expect(false, NV, SoftFloat.F32Lt(FOne, FQNaN, ref flags), flags);
        flags = 0;
        Expect(false, NV, SoftFloat.F32Le(FSNaN, FOne, ref flags), flags);
    }

    // ------------------------------------------------------------------ fclass

    [Theory]
    [InlineData(NegInf, 0)]
    [InlineData(NegOne, 1)]
    [InlineData(NegMax, 1)]
    [InlineData(NegMinSub, 2)]
    [InlineData(0x800fffffffffffff, 2)]
    [InlineData(NegZero, 3)]
    [InlineData(Zero, 4)]
    [InlineData(MinSub, 5)]
    [InlineData(0x000fffffffffffff, 5)]
    [InlineData(MinNormal, 6)]
    [InlineData(Max, 6)]
    [InlineData(Inf, 7)]
    [InlineData(SNaN, 8)]
    [InlineData(0x7ff0000000000001, 8)]
    [InlineData(0xfff4000000000000, 8)]
    [InlineData(QNaN, 9)]
    [InlineData(NaNPayload, 9)]
    public void F64Classify(ulong value, int bit)
    {
        Assert.Equal(1UL << bit, SoftFloat.F64Classify(value));
    }

    [Theory]
    [InlineData(FNegInf, 0)]
    [InlineData(FNegOne, 1)]
    [InlineData(0x80000001u, 2)]
    [InlineData(FNegZero, 3)]
    [InlineData(FZero, 4)]
    [InlineData(0x007fffffu, 5)]
    [InlineData(FMinNormal, 6)]
    [InlineData(FInf, 7)]
    [InlineData(FSNaN, 8)]
    [InlineData(0xff800001u, 8)]
    [InlineData(FQNaN, 9)]
    [InlineData(FNaNPayload, 9)]
    public void F32Classify(uint value, int bit)
    {
        Assert.Equal(1u << bit, SoftFloat.F32Classify(value));
    }

    // ------------------------------------------------------------------ float -> integer

    [Theory]
    //          value     RNE  RTZ  RDN  RUP  RMM
    [InlineData(2.5, 2, 2, 2, 3, 3)]
    [InlineData(-2.5, -2, -2, -3, -2, -3)]
    [InlineData(3.5, 4, 3, 3, 4, 4)]
    [InlineData(0.5, 0, 0, 0, 1, 1)]
    [InlineData(-0.5, 0, 0, -1, 0, -1)]
    [InlineData(-0.3, 0, 0, -1, 0, 0)]
    [InlineData(1.7, 2, 1, 1, 2, 2)]
    [InlineData(-1.7, -2, -1, -2, -1, -2)]
    public void ToIntegerRoundsEveryMode(double value, int rne, int rtz, int rdn, int rup, int rmm)
    {
        int[] expected = [rne, rtz, rdn, rup, rmm];
        for (int m = 0; m < 5; m++)
        {
            var rm = (RoundingMode)m;
            uint f1 = 0, f2 = 0, f3 = 0, f4 = 0;
            Assert.Equal(expected[m], SoftFloat.F64ToI32(D(value), rm, ref f1));
            Assert.Equal(expected[m], SoftFloat.F64ToI64(D(value), rm, ref f2));
            Assert.Equal(expected[m], SoftFloat.F32ToI32(F((float)value), rm, ref f3));
            Assert.Equal(expected[m], SoftFloat.F32ToI64(F((float)value), rm, ref f4));
            Assert.True(f1 == (uint)NX && f2 == (uint)NX && f3 == (uint)NX && f4 == (uint)NX, $"{value} {rm}");
        }
    }

    [Theory]
    [InlineData(2147483647.0, RNE, int.MaxValue, None)]
    [InlineData(2147483647.4, RNE, int.MaxValue, NX)]
    [InlineData(2147483647.5, RNE, int.MaxValue, NV)] // rounds to 2^31: out of range
    [InlineData(2147483647.5, RTZ, int.MaxValue, NX)]
    [InlineData(2147483648.0, RTZ, int.MaxValue, NV)]
    [InlineData(-2147483648.0, RNE, int.MinValue, None)]
    [InlineData(-2147483648.5, RNE, int.MinValue, NX)] // tie to even: -2^31
    [InlineData(-2147483648.5, RTZ, int.MinValue, NX)]
    [InlineData(-2147483648.5, RDN, int.MinValue, NV)]
    [InlineData(-2147483649.0, RUP, int.MinValue, NV)]
    [InlineData(1e300, RNE, int.MaxValue, NV)]
    [InlineData(double.PositiveInfinity, RNE, int.MaxValue, NV)]
    [InlineData(double.NegativeInfinity, RNE, int.MinValue, NV)]
    [InlineData(double.NaN, RNE, int.MaxValue, NV)]
    [InlineData(-0.0, RNE, 0, None)]
    public void F64ToI32Saturates(double value, RoundingMode rm, int expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SoftFloat.F64ToI32(D(value), rm, ref flags));
        Assert.Equal((uint)expectedFlags, flags);
    }

    [Theory]
    [InlineData(-0.0, RNE, 0u, None)]
    [InlineData(-0.5, RTZ, 0u, NX)]
    [InlineData(-0.5, RNE, 0u, NX)] // rounds to -0: in range
    [InlineData(-0.5, RUP, 0u, NX)]
    [InlineData(-0.5, RMM, 0u, NV)] // rounds to -1
    [InlineData(-0.5, RDN, 0u, NV)]
    [InlineData(-1.0, RTZ, 0u, NV)]
    [InlineData(4294967295.0, RNE, uint.MaxValue, None)]
    [InlineData(4294967295.5, RTZ, uint.MaxValue, NX)]
    [InlineData(4294967295.5, RNE, uint.MaxValue, NV)]
    [InlineData(4294967296.0, RDN, uint.MaxValue, NV)]
    [InlineData(double.PositiveInfinity, RNE, uint.MaxValue, NV)]
    [InlineData(double.NegativeInfinity, RNE, 0u, NV)]
    [InlineData(double.NaN, RNE, uint.MaxValue, NV)]
    public void F64ToU32Saturates(double value, RoundingMode rm, uint expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SoftFloat.F64ToU32(D(value), rm, ref flags));
        Assert.Equal((uint)expectedFlags, flags);
    }

    [Theory]
    [InlineData(0x43e0000000000000, long.MaxValue, NV)]          // 2^63
    [InlineData(0x43dfffffffffffff, 9223372036854774784, None)]  // largest double below 2^63
    [InlineData(0xc3e0000000000000, long.MinValue, None)]        // -2^63
    [InlineData(0xc3e0000000000001, long.MinValue, NV)]
    [InlineData(Inf, long.MaxValue, NV)]
    [InlineData(NegInf, long.MinValue, NV)]
    [InlineData(QNaN, long.MaxValue, NV)]
    [InlineData(NaNPayload, long.MaxValue, NV)]                  // negative NaN: still the maximum
    [InlineData(MinSub, 0, NX)]
    public void F64ToI64Saturates(ulong value, long expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SoftFloat.F64ToI64(value, RNE, ref flags));
        Assert.Equal((uint)expectedFlags, flags);
    }

    [Theory]
    [InlineData(0x43f0000000000000, ulong.MaxValue, NV)]          // 2^64
    [InlineData(0x43efffffffffffff, 18446744073709549568, None)]  // largest double below 2^64
    [InlineData(0xbff0000000000000, 0ul, NV)]                     // -1
    [InlineData(0xbfe0000000000000, 0ul, NX)]                     // -0.5 -> -0
    [InlineData(NegInf, 0ul, NV)]
    [InlineData(Inf, ulong.MaxValue, NV)]
    [InlineData(QNaN, ulong.MaxValue, NV)]
    public void F64ToU64Saturates(ulong value, ulong expected, FloatFlags expectedFlags)
    {
        uint flags = 0;
        Assert.Equal(expected, SoftFloat.F64ToU64(value, RNE, ref flags));
        Assert.Equal((uint)expectedFlags, flags);
    }

    [Fact]
    public void F32ToIntegerSaturates()
    {
        uint flags = 0;
        Assert.Equal(int.MinValue, SoftFloat.F32ToI32(0xcf000000, RNE, ref flags)); // -2^31 exact
        Assert.Equal(0u, flags);
        Assert.Equal(int.MaxValue, SoftFloat.F32ToI32(0x4f000000, RNE, ref flags)); // 2^31
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(2147483520, SoftFloat.F32ToI32(0x4effffff, RNE, ref flags));
        Assert.Equal(0u, flags);
        Assert.Equal(int.MaxValue, SoftFloat.F32ToI32(FQNaN, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(int.MinValue, SoftFloat.F32ToI32(FNegInf, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(uint.MaxValue, SoftFloat.F32ToU32(FSNaN, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(0u, SoftFloat.F32ToU32(FNegOne, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(4294967040u, SoftFloat.F32ToU32(0x4f7fffff, RNE, ref flags));
        Assert.Equal(0u, flags);
        Assert.Equal(uint.MaxValue, SoftFloat.F32ToU32(0x4f800000, RNE, ref flags)); // 2^32
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(long.MaxValue, SoftFloat.F32ToI64(0x5f000000, RNE, ref flags)); // 2^63
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(long.MinValue, SoftFloat.F32ToI64(0xdf000000, RNE, ref flags)); // -2^63 exact
        Assert.Equal(0u, flags);
        Assert.Equal(long.MaxValue, SoftFloat.F32ToI64(FNaNPayload, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(ulong.MaxValue, SoftFloat.F32ToU64(0x5f800000, RNE, ref flags)); // 2^64
        Assert.Equal((uint)NV, flags);
        flags = 0;
        Assert.Equal(18446742974197923840ul, SoftFloat.F32ToU64(0x5f7fffff, RNE, ref flags));
        Assert.Equal(0u, flags);
        Assert.Equal(0ul, SoftFloat.F32ToU64(0xbf000000, RUP, ref flags)); // -0.5 rounds up to -0
        Assert.Equal((uint)NX, flags);
        flags = 0;
        Assert.Equal(0ul, SoftFloat.F32ToU64(FNegInf, RNE, ref flags));
        Assert.Equal((uint)NV, flags);
    }

    // ------------------------------------------------------------------ integer -> float

    [Theory]
    //          RNE         RTZ         RDN         RUP         RMM
    [InlineData(0x4b800000u, 0x4b800000u, 0x4b800000u, 0x4b800001u, 0x4b800001u)] // 2^24 + 1: a tie
    public void I32ToF32RoundsTies(uint rne, uint rtz, uint rdn, uint rup, uint rmm)
    {
        uint[] expected = [rne, rtz, rdn, rup, rmm];
        uint[] negated = [rne | FNegZero, rtz | FNegZero, rup | FNegZero, rdn | FNegZero, rmm | FNegZero];
        for (int m = 0; m < 5; m++)
        {
            uint flags = 0;
            Expect(expected[m], NX, SoftFloat.I32ToF32(16777217, (RoundingMode)m, ref flags), flags);
            flags = 0;
            Expect(negated[m], NX, SoftFloat.I32ToF32(-16777217, (RoundingMode)m, ref flags), flags);
            flags = 0;
            Expect(expected[m], NX, SoftFloat.I64ToF32(16777217, (RoundingMode)m, ref flags), flags);
            flags = 0;
            Expect(expected[m], NX, SoftFloat.U32ToF32(16777217, (RoundingMode)m, ref flags), flags);
            flags = 0;
            Expect(expected[m], NX, SoftFloat.U64ToF32(16777217, (RoundingMode)m, ref flags), flags);
        }
    }

    [Fact]
    public void IntegerToFloatExtremes()
    {
        uint flags = 0;
        Expect(0xcf000000u, None, SoftFloat.I32ToF32(int.MinValue, RNE, ref flags), flags);
        Expect(0xc1e0000000000000, None, SoftFloat.I32ToF64(int.MinValue, RNE, ref flags), flags);
        Expect(0x41efffffffe00000, None, SoftFloat.U32ToF64(uint.MaxValue, RTZ, ref flags), flags);
        Expect(0xdf000000u, None, SoftFloat.I64ToF32(long.MinValue, RNE, ref flags), flags);
        Expect(0xc3e0000000000000, None, SoftFloat.I64ToF64(long.MinValue, RNE, ref flags), flags);
        Expect(Zero, None, SoftFloat.I64ToF64(0, RDN, ref flags), flags); // +0, not -0
        Expect(FZero, None, SoftFloat.U32ToF32(0, RDN, ref flags), flags);

        Expect(0x4f000000u, NX, SoftFloat.I32ToF32(int.MaxValue, RNE, ref flags), flags);
        flags = 0;
        Expect(0x4effffffu, NX, SoftFloat.I32ToF32(int.MaxValue, RTZ, ref flags), flags);
        flags = 0;
        Expect(0x4f800000u, NX, SoftFloat.U32ToF32(uint.MaxValue, RNE, ref flags), flags);
        flags = 0;
        Expect(0x4f7fffffu, NX, SoftFloat.U32ToF32(uint.MaxValue, RDN, ref flags), flags);
        flags = 0;
        Expect(0x43e0000000000000, NX, SoftFloat.I64ToF64(long.MaxValue, RNE, ref flags), flags);
        flags = 0;
        Expect(0x43dfffffffffffff, NX, SoftFloat.I64ToF64(long.MaxValue, RTZ, ref flags), flags);
        flags = 0;
        Expect(0x43f0000000000000, NX, SoftFloat.U64ToF64(ulong.MaxValue, RMM, ref flags), flags);
        flags = 0;
        Expect(0x43efffffffffffff, NX, SoftFloat.U64ToF64(ulong.MaxValue, RTZ, ref flags), flags);
        flags = 0;
        Expect(0x5f800000u, NX, SoftFloat.U64ToF32(ulong.MaxValue, RUP, ref flags), flags);
        flags = 0;
        Expect(0x5f7fffffu, NX, SoftFloat.U64ToF32(ulong.MaxValue, RTZ, ref flags), flags);
        flags = 0;
        Expect(0x4340000000000000, NX, SoftFloat.I64ToF64((1L << 53) + 1, RNE, ref flags), flags);
        flags = 0;
        Expect(0x4340000000000001, NX, SoftFloat.I64ToF64((1L << 53) + 1, RUP, ref flags), flags);
        flags = 0;
        Expect(0xc340000000000001, NX, SoftFloat.I64ToF64(-(1L << 53) - 1, RDN, ref flags), flags);
    }

    // ------------------------------------------------------------------ float <-> float

    [Fact]
    public void FloatConversions()
    {
        uint flags = 0;
        Expect(D(1.5), None, SoftFloat.F32ToF64(F(1.5f), ref flags), flags);
        Expect(NegInf, None, SoftFloat.F32ToF64(FNegInf, ref flags), flags);
        Expect(NegZero, None, SoftFloat.F32ToF64(FNegZero, ref flags), flags);
        Expect(QNaN, None, SoftFloat.F32ToF64(FNaNPayload, ref flags), flags);
        Expect(FNegInf, None, SoftFloat.F64ToF32(NegInf, RNE, ref flags), flags);
        Expect(FNegZero, None, SoftFloat.F64ToF32(NegZero, RNE, ref flags), flags);
        Expect(FQNaN, None, SoftFloat.F64ToF32(NaNPayload, RNE, ref flags), flags);
        Expect(FQNaN, NV, SoftFloat.F64ToF32(SNaN, RNE, ref flags), flags);
        flags = 0;
        Expect(QNaN, NV, SoftFloat.F32ToF64(FSNaN, ref flags), flags);
        flags = 0;

        // 1 + 2^-24 (a binary32 tie) and 1 + 2^-24 + 2^-52 (just above it).
        Expect(FOne, NX, SoftFloat.F64ToF32(0x3ff0000010000000, RNE, ref flags), flags);
        flags = 0;
        Expect(0x3f800001u, NX, SoftFloat.F64ToF32(0x3ff0000010000000, RMM, ref flags), flags);
        flags = 0;
        Expect(0x3f800001u, NX, SoftFloat.F64ToF32(0x3ff0000010000001, RNE, ref flags), flags);
        flags = 0;
        Expect(0xbf800001u, NX, SoftFloat.F64ToF32(0xbff0000000000001, RDN, ref flags), flags);
        flags = 0;
        Expect(FNegOne, NX, SoftFloat.F64ToF32(0xbff0000000000001, RUP, ref flags), flags);
        flags = 0;

        // Far below the binary32 range.
        Expect(FZero, UF | NX, SoftFloat.F64ToF32(MinSub, RNE, ref flags), flags);
        flags = 0;
        Expect(FMinSub, UF | NX, SoftFloat.F64ToF32(MinSub, RUP, ref flags), flags);
        flags = 0;
        Expect(0x80000001u, UF | NX, SoftFloat.F64ToF32(NegMinSub, RDN, ref flags), flags);
        flags = 0;
        Expect(FNegMax, OF | NX, SoftFloat.F64ToF32(NegMax, RTZ, ref flags), flags);
    }

    // ------------------------------------------------------------------ flag accumulation, odd modes

    [Fact]
    public void FlagsAccumulateAndAreNeverCleared()
    {
        uint flags = (uint)NV;
        Expect(Two, NV, SoftFloat.F64Add(One, One, RNE, ref flags), flags);
        Expect(One, NV | NX, SoftFloat.F64Add(One, 0x3c90000000000000, RNE, ref flags), flags);
        Expect(Inf, NV | NX | DZ, SoftFloat.F64Div(One, Zero, RNE, ref flags), flags);
        Expect(FTwo, NV | NX | DZ, SoftFloat.F32Mul(FOne, FTwo, RNE, ref flags), flags);
        Assert.Equal(1, SoftFloat.F64ToI32(One, RNE, ref flags));
        Assert.Equal((uint)(NV | NX | DZ), flags);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    [InlineData(255)]
    public void ReservedRoundingModesDoNotThrow(int mode)
    {
        var rm = (RoundingMode)mode;
        uint flags = 0;
        SoftFloat.F64Add(One, 0x3ca0000000000000, rm, ref flags);
        SoftFloat.F64Mul(Max, Two, rm, ref flags);
        SoftFloat.F64MulAdd(Max, Two, One, rm, ref flags);
        SoftFloat.F32Div(FOne, F(3), rm, ref flags);
        SoftFloat.F64ToF32(MinSub, rm, ref flags);
        SoftFloat.F64ToI64(D(2.5), rm, ref flags);
        SoftFloat.U64ToF32(ulong.MaxValue, rm, ref flags);
        Assert.NotEqual(0u, flags);
    }
}
