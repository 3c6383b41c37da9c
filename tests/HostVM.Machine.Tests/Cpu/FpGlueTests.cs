using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// How the hart wraps its soft-float library (which has its own tests): NaN-boxing of single
/// values in 64-bit registers (unprivileged spec, D chapter, "NaN Boxing of Narrower Values"),
/// rounding-mode selection from rm and frm, the fflags/frm/fcsr views, integer results of
/// conversions and moves, and fclass.
/// </summary>
public class FpGlueTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Data = TestHart.Data;
    private const ulong Box = 0xFFFF_FFFF_0000_0000;
    private const ulong One = Box | 0x3F80_0000;          // 1.0f, boxed
    private const ulong MinusOne = Box | 0xBF80_0000;
    private const ulong CanonicalNaN = Box | 0x7FC0_0000;

    private static TestHart RunFp(Action<TestHart> setup, params uint[] program)
    {
        var h = new TestHart();
        h.EnableFp();
        h.Write(Base, [.. program, Asm.Halt]);
        h.SetX(10, Data);
        setup(h);
        h.Run(50);
        h.AssertHaltedAt(Base + (ulong)(4 * program.Length));
        return h;
    }

    [Fact]
    public void Flw_nan_boxes_and_fsw_stores_the_low_32_bits_raw()
    {
        using var h = RunFp(
            h =>
            {
                h.Poke64(Data, 0xAAAA_AAAA_3F80_0000);
                h.Poke64(Data + 8, 0xAAAA_AAAA_AAAA_AAAA);
                h.SetF(2, 0x1234_5678_4000_0000); // not boxed: a transfer still moves the low bits
            },
            Asm.Flw(1, 10, 0),
            Asm.Fsw(2, 10, 8));

        Assert.Equal(One, h.F(1));
        Assert.Equal(0xAAAA_AAAA_4000_0000UL, h.Peek64(Data + 8));
    }

    [Fact]
    public void Fld_and_fsd_move_64_bits()
    {
        using var h = RunFp(
            h => h.Poke64(Data, 0x4009_21FB_5444_2D18),
            Asm.Fld(1, 10, 0),
            Asm.Fsd(1, 10, 16));

        Assert.Equal(0x4009_21FB_5444_2D18UL, h.F(1));
        Assert.Equal(0x4009_21FB_5444_2D18UL, h.Peek64(Data + 16));
    }

    public static TheoryData<string, uint, ulong, ulong> UnboxedOperandCases => new()
    {
        // f1 holds 1.0f without its box; f2 is a proper boxed value.
        { "fadd.s", Asm.FaddS(3, 1, 2, 0), One, CanonicalNaN },
        { "fsgnj.s +", Asm.FsgnjS(3, 1, 2), One, CanonicalNaN },
        { "fsgnj.s -", Asm.FsgnjS(3, 1, 2), MinusOne, Box | 0xFFC0_0000 },
        { "fmin.s", Asm.FminS(3, 1, 2), One, One },             // a NaN operand: the other one
        { "fcvt.d.s", Asm.FcvtDS(3, 1, 0), One, 0x7FF8_0000_0000_0000 },
    };

    [Theory]
    [MemberData(nameof(UnboxedOperandCases))]
    public void An_unboxed_single_operand_reads_as_the_canonical_nan(string name, uint instruction, ulong f2, ulong expected)
    {
        using var h = RunFp(
            h =>
            {
                h.SetF(1, 0x0000_0000_3F80_0000);
                h.SetF(2, f2);
            },
            instruction);

        Assert.True(expected == h.F(3), $"{name}: 0x{h.F(3):x}");
    }

    [Fact]
    public void Boxed_operands_compute_normally()
    {
        using var h = RunFp(
            h =>
            {
                h.SetF(1, One);
                h.SetF(2, One);
            },
            Asm.FaddS(3, 1, 2, 0));

        Assert.Equal(Box | 0x4000_0000, h.F(3)); // 2.0f, boxed
    }

    [Fact]
    public void Fclass_and_feq_see_an_unboxed_value_as_a_quiet_nan()
    {
        using var h = RunFp(
            h => h.SetF(1, 0x0000_0000_3F80_0000),
            Asm.FclassS(3, 1),
            Asm.FeqS(4, 1, 1));

        Assert.Equal(1UL << 9, h.X(3));
        Assert.Equal(0UL, h.X(4));
        Assert.Equal(0UL, h.ReadCsr(Csr.Fflags)); // feq of a quiet NaN does not signal
    }

    [Theory]
    [InlineData(0xFFFF_FFFF_BF80_0000UL, 0xFFFF_FFFF_BF80_0000UL)]
    [InlineData(0xFFFF_FFFF_3F80_0000UL, 0x3F80_0000UL)]
    [InlineData(0x1234_5678_8000_0001UL, 0xFFFF_FFFF_8000_0001UL)] // unboxed: the low bits, moved raw
    public void Fmv_x_w_sign_extends_the_low_32_bits(ulong f, ulong expected)
    {
        using var h = RunFp(h => h.SetF(1, f), Asm.FmvXW(3, 1));
        Assert.Equal(expected, h.X(3));
    }

    [Fact]
    public void Fmv_w_x_boxes_the_low_32_bits_and_fmv_d_x_moves_64()
    {
        using var h = RunFp(
            h => h.SetX(5, 0x1234_5678_3F80_0000),
            Asm.FmvWX(1, 5),
            Asm.FmvDX(2, 5));

        Assert.Equal(One, h.F(1));
        Assert.Equal(0x1234_5678_3F80_0000UL, h.F(2));
    }

    public static TheoryData<int, ulong, ulong> RoundingCases => new()
    {
        // frm, fcvt.w.s(2.5), fcvt.w.s(-2.5)
        { 0, 2, unchecked((ulong)-2L) },   // RNE: ties to even
        { 1, 2, unchecked((ulong)-2L) },   // RTZ
        { 2, 2, unchecked((ulong)-3L) },   // RDN
        { 3, 3, unchecked((ulong)-2L) },   // RUP
        { 4, 3, unchecked((ulong)-3L) },   // RMM: ties away from zero
    };

    [Theory]
    [MemberData(nameof(RoundingCases))]
    public void Dynamic_rounding_mode_comes_from_frm(int frm, ulong positive, ulong negative)
    {
        using var h = RunFp(
            h =>
            {
                h.WriteCsr(Csr.Frm, (ulong)frm);
                h.SetF(1, Box | 0x4020_0000);   // 2.5f
                h.SetF(2, Box | 0xC020_0000);   // -2.5f
            },
            Asm.FcvtWS(3, 1),
            Asm.FcvtWS(4, 2));

        Assert.Equal(positive, h.X(3));
        Assert.Equal(negative, h.X(4));
    }

    [Theory]
    [InlineData(0, 0x3FD5_5555_5555_5555UL, 0xBFD5_5555_5555_5555UL)]
    [InlineData(1, 0x3FD5_5555_5555_5555UL, 0xBFD5_5555_5555_5555UL)]
    [InlineData(2, 0x3FD5_5555_5555_5555UL, 0xBFD5_5555_5555_5556UL)]
    [InlineData(3, 0x3FD5_5555_5555_5556UL, 0xBFD5_5555_5555_5555UL)]
    public void Dynamic_rounding_mode_applies_to_arithmetic(int frm, ulong third, ulong minusThird)
    {
        using var h = RunFp(
            h =>
            {
                h.WriteCsr(Csr.Frm, (ulong)frm);
                h.SetF(1, BitConverter.DoubleToUInt64Bits(1.0));
                h.SetF(2, BitConverter.DoubleToUInt64Bits(-1.0));
                h.SetF(3, BitConverter.DoubleToUInt64Bits(3.0));
            },
            Asm.FdivD(4, 1, 3),
            Asm.FdivD(5, 2, 3));

        Assert.Equal(third, h.F(4));
        Assert.Equal(minusThird, h.F(5));
    }

    [Fact]
    public void Static_rounding_mode_overrides_frm()
    {
        using var h = RunFp(
            h =>
            {
                h.WriteCsr(Csr.Frm, 3);             // RUP
                h.SetF(1, Box | 0x4020_0000);      // 2.5f
            },
            Asm.FcvtWS(3, 1, 1),                   // RTZ
            Asm.FcvtWS(4, 1, 0));                  // RNE

        Assert.Equal(2UL, h.X(3));
        Assert.Equal(2UL, h.X(4));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(6)]
    [InlineData(7)]
    public void Dynamic_rounding_with_an_invalid_frm_is_illegal(int frm)
    {
        using var h = new TestHart();
        h.EnableFp();
        uint instruction = Asm.FaddS(3, 1, 2);
        h.Write(Base, Asm.FaddS(4, 1, 2, 0), Asm.FsgnjS(5, 1, 2), instruction, Asm.Halt);
        h.WriteCsr(Csr.Frm, (ulong)frm);
        h.SetF(1, One);
        h.SetF(2, One);
        h.SetF(3, 0x1234);
        h.Run(20);

        Assert.Equal(TestHart.MTrapHalt, h.Pc);
        Assert.Equal((ulong)TrapCause.IllegalInstruction, h.Mcause);
        Assert.Equal(Base + 8, h.Mepc);          // the explicit-rm add and the sign injection ran
        Assert.Equal(Box | 0x4000_0000, h.F(4));
        Assert.Equal(0x1234UL, h.F(3));
    }

    [Fact]
    public void Fflags_accumulate_and_the_three_csr_views_agree()
    {
        using var h = RunFp(
            h =>
            {
                h.WriteCsr(Csr.Frm, 2);
                h.SetF(1, One);
                h.SetF(2, Box);                      // +0.0f
                h.SetF(3, Box | 0x4040_0000);        // 3.0f
                h.SetX(9, 0xFF);
            },
            Asm.FdivS(4, 1, 2, 0),                   // 1/0: DZ
            Asm.FdivS(5, 1, 3, 0),                   // 1/3: NX
            Asm.Csrr(11, Csr.Fcsr),
            Asm.Csrrw(12, Csr.Fflags, 0),            // read and clear
            Asm.Csrr(13, Csr.Fcsr),
            Asm.Csrrw(14, Csr.Fcsr, 9),              // fcsr = 0xff
            Asm.Csrr(15, Csr.Fflags),
            Asm.Csrr(16, Csr.Frm),
            Asm.Csrrwi(0, Csr.Frm, 1),
            Asm.Csrr(17, Csr.Fcsr));

        Assert.Equal(0x7F80_0000UL, h.F(4) & 0xFFFF_FFFF);  // +inf
        Assert.Equal((2UL << 5) | 0x08 | 0x01, h.X(11));
        Assert.Equal(0x09UL, h.X(12));
        Assert.Equal(2UL << 5, h.X(13));
        Assert.Equal(2UL << 5, h.X(14));
        Assert.Equal(0x1FUL, h.X(15));
        Assert.Equal(7UL, h.X(16));
        Assert.Equal((1UL << 5) | 0x1F, h.X(17));
    }

    [Fact]
    public void Fp_csrs_keep_only_their_own_bits()
    {
        using var h = RunFp(
            h => h.SetX(5, ulong.MaxValue),
            Asm.Csrw(Csr.Fcsr, 5),
            Asm.Csrr(11, Csr.Fcsr),
            Asm.Csrw(Csr.Fflags, 0),
            Asm.Csrw(Csr.Fflags, 5),
            Asm.Csrr(12, Csr.Fcsr),
            Asm.Csrw(Csr.Frm, 5),
            Asm.Csrr(13, Csr.Frm));

        Assert.Equal(0xFFUL, h.X(11));
        Assert.Equal(0xFFUL, h.X(12));
        Assert.Equal(7UL, h.X(13));
    }

    public static TheoryData<string, uint, ulong, ulong, ulong> ConversionCases => new()
    {
        // name, instruction (x3 <- f1), f1, x3, fflags
        { "fcvt.w.s -1.0", Asm.FcvtWS(3, 1, 1), MinusOne, 0xFFFF_FFFF_FFFF_FFFF, 0 },
        { "fcvt.w.s -3e9 saturates", Asm.FcvtWS(3, 1, 1), Box | 0xCF32_D05E, 0xFFFF_FFFF_8000_0000, 0x10 },
        { "fcvt.w.s NaN", Asm.FcvtWS(3, 1, 1), CanonicalNaN, 0x7FFF_FFFF, 0x10 },
        { "fcvt.wu.s 3e9 is sign-extended", Asm.FcvtWuS(3, 1, 1), Box | 0x4F32_D05E, 0xFFFF_FFFF_B2D0_5E00, 0 },
        { "fcvt.wu.s -1.0", Asm.FcvtWuS(3, 1, 1), MinusOne, 0, 0x10 },
        { "fcvt.wu.s NaN", Asm.FcvtWuS(3, 1, 1), CanonicalNaN, 0xFFFF_FFFF_FFFF_FFFF, 0x10 },
        { "fcvt.l.s -1.5 RUP", Asm.FcvtLS(3, 1, 3), Box | 0xBFC0_0000, 0xFFFF_FFFF_FFFF_FFFF, 0x01 },
        { "fcvt.w.d 2^31", Asm.FcvtWD(3, 1, 1), 0x41E0_0000_0000_0000, 0x7FFF_FFFF, 0x10 },
    };

    [Theory]
    [MemberData(nameof(ConversionCases))]
    public void Conversion_to_integer_sign_extends_and_saturates(string name, uint instruction, ulong f1, ulong x3, ulong fflags)
    {
        using var h = RunFp(h => h.SetF(1, f1), instruction);

        Assert.True(x3 == h.X(3), $"{name}: 0x{h.X(3):x}");
        Assert.True(fflags == h.ReadCsr(Csr.Fflags), $"{name}: fflags 0x{h.ReadCsr(Csr.Fflags):x}");
    }

    [Fact]
    public void Fcvt_to_x0_writes_nothing_but_still_sets_flags()
    {
        using var h = RunFp(h => h.SetF(1, CanonicalNaN), Asm.FcvtWS(0, 1, 1), Asm.Add(3, 0, 0));
        Assert.Equal(0UL, h.X(3));
        Assert.Equal(0x10UL, h.ReadCsr(Csr.Fflags));
    }

    public static TheoryData<uint, int> SingleClasses => new()
    {
        { 0xFF80_0000, 0 },     // -inf
        { 0xBF80_0000, 1 },     // negative normal
        { 0x8000_0001, 2 },     // negative subnormal
        { 0x8000_0000, 3 },     // -0
        { 0x0000_0000, 4 },     // +0
        { 0x0000_0001, 5 },     // positive subnormal
        { 0x3F80_0000, 6 },     // positive normal
        { 0x7F80_0000, 7 },     // +inf
        { 0x7F80_0001, 8 },     // signaling NaN
        { 0x7FC0_0000, 9 },     // quiet NaN
    };

    [Theory]
    [MemberData(nameof(SingleClasses))]
    public void Fclass_s_sets_exactly_one_bit(uint single, int bit)
    {
        using var h = RunFp(h => h.SetF(1, Box | single), Asm.FclassS(3, 1));
        Assert.Equal(1UL << bit, h.X(3));
    }

    public static TheoryData<ulong, int> DoubleClasses => new()
    {
        { 0xFFF0_0000_0000_0000, 0 },
        { 0xBFF0_0000_0000_0000, 1 },
        { 0x800F_FFFF_FFFF_FFFF, 2 },
        { 0x8000_0000_0000_0000, 3 },
        { 0x0000_0000_0000_0000, 4 },
        { 0x0000_0000_0000_0001, 5 },
        { 0x3FF0_0000_0000_0000, 6 },
        { 0x7FF0_0000_0000_0000, 7 },
        { 0x7FF0_0000_0000_0001, 8 },
        { 0x7FF8_0000_0000_0000, 9 },
    };

    [Theory]
    [MemberData(nameof(DoubleClasses))]
    public void Fclass_d_sets_exactly_one_bit(ulong value, int bit)
    {
        using var h = RunFp(h => h.SetF(1, value), Asm.FclassD(3, 1));
        Assert.Equal(1UL << bit, h.X(3));
    }

    [Fact]
    public void Fmadd_uses_all_three_sources_and_boxes_the_result()
    {
        using var h = RunFp(
            h =>
            {
                h.SetF(1, Box | 0x4000_0000);   // 2
                h.SetF(2, Box | 0x4040_0000);   // 3
                h.SetF(3, One);                 // 1
            },
            Asm.FmaddS(4, 1, 2, 3, 0));

        Assert.Equal(Box | 0x40E0_0000, h.F(4)); // 7
    }

    [Fact]
    public void Int_to_single_conversion_rounds_with_frm_and_boxes()
    {
        using var h = RunFp(
            h =>
            {
                h.WriteCsr(Csr.Frm, 3);         // RUP
                h.SetX(5, 0x0100_0001);         // 2^24 + 1: not representable
            },
            Asm.FcvtSW(1, 5));

        Assert.Equal(Box | 0x4B80_0001, h.F(1)); // 2^24 + 2
        Assert.Equal(0x01UL, h.ReadCsr(Csr.Fflags));
    }
}
