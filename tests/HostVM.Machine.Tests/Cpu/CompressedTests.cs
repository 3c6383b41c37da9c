using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// The C extension: each compressed instruction must behave exactly as the 32-bit instruction the
/// spec's "RVC Instruction Set Listings" expand it to. The encodings below are written by hand
/// (fields in the comments, high bit first) and were checked against LLVM's assembler.
/// </summary>
public class CompressedTests
{
    private const ulong Base = TestHart.ProgramBase;
    private const ulong Sp = TestHart.Data + 0x400;
    private const ulong Min = 0x8000_0000_0000_0000;

    public static TheoryData<string, ushort, uint, ulong, ulong, int> RegisterResultCases => new()
    {
        // c.addi4spn: 000 | nzuimm[5:4|9:6|2|3]=00010000 | rd'=000 | 00 -> addi x8, x2, 16
        { "c.addi4spn x8, sp, 16", 0x0800, Asm.Addi(8, 2, 16), 0, 0, 8 },
        // 000 | 11111111 (nzuimm = 1020) | rd'=111 | 00 -> addi x15, x2, 1020
        { "c.addi4spn x15, sp, 1020", 0x1FFC, Asm.Addi(15, 2, 1020), 0, 0, 15 },
        // c.lw: 010 | uimm[5:3]=000 | rs1'=000 | uimm[2|6]=10 | rd'=001 | 00
        { "c.lw x9, 4(x8)", 0x4044, Asm.Lw(9, 8, 4), TestHart.Data + 0x100, 0, 9 },
        // 010 | 111 | 000 | 11 | 001 | 00 -> offset 124
        { "c.lw x9, 124(x8)", 0x5C64, Asm.Lw(9, 8, 124), TestHart.Data + 0x100, 0, 9 },
        // c.ld: 011 | uimm[5:3]=001 | rs1'=000 | uimm[7:6]=00 | rd'=001 | 00
        { "c.ld x9, 8(x8)", 0x6404, Asm.Ld(9, 8, 8), TestHart.Data + 0x100, 0, 9 },
        // 011 | 111 | 000 | 11 | 001 | 00 -> offset 248
        { "c.ld x9, 248(x8)", 0x7C64, Asm.Ld(9, 8, 248), TestHart.Data + 0x100, 0, 9 },
        // c.addi16sp: 011 | nzimm[9]=1 | 00010 | nzimm[4|6|8:7|5]=01110 | 01 -> -64
        { "c.addi16sp sp, -64", 0x7139, Asm.Addi(2, 2, -64), 0, 0, 2 },
        // 011 | 0 | 00010 | 11111 | 01 -> 496
        { "c.addi16sp sp, 496", 0x617D, Asm.Addi(2, 2, 496), 0, 0, 2 },
        // c.lui: 011 | nzimm[17]=0 | rd=00101 | nzimm[16:12]=11111 | 01
        { "c.lui x5, 0x1f", 0x62FD, Asm.Lui(5, 0x1F), 0, 0, 5 },
        // 011 | 1 | 00101 | 00000 | 01 -> nzimm = -32 (sign-extended from bit 17)
        { "c.lui x5, 0xfffe0", 0x7281, Asm.Lui(5, 0xFFFE0), 0, 0, 5 },
        // c.srli: 100 | shamt[5]=1 | 00 | rs1'=000 | shamt[4:0]=11111 | 01
        { "c.srli x8, 63", 0x907D, Asm.Srli(8, 8, 63), Min | 1, 0, 8 },
        // c.srai: 100 | 0 | 01 | 001 | 00001 | 01
        { "c.srai x9, 1", 0x8485, Asm.Srai(9, 9, 1), 0, Min, 9 },
        // c.andi: 100 | imm[5]=1 | 10 | 010 | imm[4:0]=10000 | 01 -> -16
        { "c.andi x10, -16", 0x9941, Asm.Andi(10, 10, -16), 0, 0, 10 },
        // c.sub/xor/or/and: 100 | 0 | 11 | rd'=000 | funct2 | rs2'=001 | 01
        { "c.sub x8, x9", 0x8C05, Asm.Sub(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        { "c.xor x8, x9", 0x8C25, Asm.Xor(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        { "c.or x8, x9", 0x8C45, Asm.Or(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        { "c.and x8, x9", 0x8C65, Asm.And(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        // c.subw/addw: 100 | 1 | 11 | rd'=000 | funct2 (00 subw, 01 addw) | rs2'=001 | 01
        { "c.subw x8, x9", 0x9C05, Asm.Subw(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        { "c.addw x8, x9", 0x9C25, Asm.Addw(8, 8, 9), 0xFFFF_FFFF_8000_0001, 0x7FFF_FFFF, 8 },
        { "c.addw x8, x9 (overflow)", 0x9C25, Asm.Addw(8, 8, 9), 0x7FFF_FFFF, 1, 8 },
        // c.mv: 100 | 0 | rd=00110 | rs2=00111 | 10 -> add x6, x0, x7
        { "c.mv x6, x7", 0x831E, Asm.Add(6, 0, 7), 0, 0, 6 },
        // c.add: 100 | 1 | 00110 | 00111 | 10
        { "c.add x6, x7", 0x931E, Asm.Add(6, 6, 7), 0, 0, 6 },
        // c.lwsp: 010 | uimm[5]=0 | rd=00110 | uimm[4:2|7:6]=01100 | 10
        { "c.lwsp x6, 12(sp)", 0x4332, Asm.Lw(6, 2, 12), 0, 0, 6 },
        // c.ldsp: 011 | uimm[5]=1 | 00110 | uimm[4:3|8:6]=11111 | 10 -> 504
        { "c.ldsp x6, 504(sp)", 0x737E, Asm.Ld(6, 2, 504), 0, 0, 6 },
        // c.li: 010 | imm[5]=1 | rd=00111 | imm[4:0]=00000 | 01 -> -32
        { "c.li x7, -32", 0x5381, Asm.Addi(7, 0, -32), 0, 0, 7 },
        // c.addi: 000 | 0 | 00111 | 11111 | 01
        { "c.addi x7, 31", 0x03FD, Asm.Addi(7, 7, 31), 0, 0, 7 },
        // c.addiw: 001 | 1 | 00111 | 11111 | 01 -> -1
        { "c.addiw x7, -1", 0x33FD, Asm.Addiw(7, 7, -1), 0, 0, 7 },
        // c.slli: 000 | shamt[5]=1 | 00111 | 11111 | 10
        { "c.slli x7, 63", 0x13FE, Asm.Slli(7, 7, 63), 0, 0, 7 },
        // c.nop: 000 | 0 | 00000 | 00000 | 01
        { "c.nop", 0x0001, Asm.Nop, 0, 0, 0 },
    };

    [Theory]
    [MemberData(nameof(RegisterResultCases))]
    public void Compressed_instruction_equals_its_expansion(string name, ushort compressed, uint expansion, ulong x8, ulong x9, int rd)
    {
        using var c = Prepare(x8, x9);
        using var e = Prepare(x8, x9);
        RunCompressed(c, compressed);
        RunExpanded(e, expansion);

        AssertSameState(name, c, e);
        Assert.Equal(ExpectedResult(name, Prepare(x8, x9)), c.X(rd));
    }

    /// <summary>The value the spec gives for rd, worked out independently of the hart.</summary>
    private static ulong ExpectedResult(string name, TestHart initial)
    {
        using var h = initial;
        ulong Sext32(uint v) => (ulong)(long)(int)v;
        return name switch
        {
            "c.addi4spn x8, sp, 16" => Sp + 16,
            "c.addi4spn x15, sp, 1020" => Sp + 1020,
            "c.lw x9, 4(x8)" => Sext32(h.Peek32(TestHart.Data + 0x104)),
            "c.lw x9, 124(x8)" => Sext32(h.Peek32(TestHart.Data + 0x17C)),
            "c.ld x9, 8(x8)" => h.Peek64(TestHart.Data + 0x108),
            "c.ld x9, 248(x8)" => h.Peek64(TestHart.Data + 0x1F8),
            "c.addi16sp sp, -64" => Sp - 64,
            "c.addi16sp sp, 496" => Sp + 496,
            "c.lui x5, 0x1f" => 0x1F000,
            "c.lui x5, 0xfffe0" => 0xFFFF_FFFF_FFFE_0000,
            "c.srli x8, 63" => 1,
            "c.srai x9, 1" => 0xC000_0000_0000_0000,
            "c.andi x10, -16" => 0xFFFF_FFFF_FFFF_FFF0,
            "c.sub x8, x9" => 0xFFFF_FFFF_0000_0002,
            "c.xor x8, x9" => 0xFFFF_FFFF_FFFF_FFFE,
            "c.or x8, x9" => 0xFFFF_FFFF_FFFF_FFFF,
            "c.and x8, x9" => 1,
            "c.subw x8, x9" => 2,
            "c.addw x8, x9" => 0,
            "c.addw x8, x9 (overflow)" => 0xFFFF_FFFF_8000_0000,
            "c.mv x6, x7" => 0x8000_0000_0000_0007,
            "c.add x6, x7" => 0x6666_6666_6666_6666 + 0x8000_0000_0000_0007,
            "c.lwsp x6, 12(sp)" => Sext32(h.Peek32(Sp + 12)),
            "c.ldsp x6, 504(sp)" => h.Peek64(Sp + 504),
            "c.li x7, -32" => 0xFFFF_FFFF_FFFF_FFE0,
            "c.addi x7, 31" => 0x8000_0000_0000_0007 + 31,
            "c.addiw x7, -1" => 6,
            "c.slli x7, 63" => Min,
            "c.nop" => 0,
            _ => throw new ArgumentException(name),
        };
    }

    public static TheoryData<string, ushort, uint, ulong, int> StoreCases => new()
    {
        // c.sd: 111 | uimm[5:3]=010 | rs1'=000 | uimm[7:6]=00 | rs2'=001 | 00
        { "c.sd x9, 16(x8)", 0xE804, Asm.Sd(9, 8, 16), TestHart.Data + 0x110, 8 },
        // c.sw: 110 | uimm[5:3]=000 | rs1'=000 | uimm[2|6]=01 | rs2'=001 | 00
        { "c.sw x9, 64(x8)", 0xC024, Asm.Sw(9, 8, 64), TestHart.Data + 0x140, 4 },
        // c.sdsp: 111 | uimm[5:3|8:6]=001000 | rs2=00110 | 10
        { "c.sdsp x6, 8(sp)", 0xE41A, Asm.Sd(6, 2, 8), Sp + 8, 8 },
        // c.swsp: 110 | uimm[5:2|7:6]=000100 | rs2=00110 | 10
        { "c.swsp x6, 4(sp)", 0xC21A, Asm.Sw(6, 2, 4), Sp + 4, 4 },
    };

    [Theory]
    [MemberData(nameof(StoreCases))]
    public void Compressed_store_equals_its_expansion(string name, ushort compressed, uint expansion, ulong address, int size)
    {
        using var c = Prepare(TestHart.Data + 0x100, 0x0123_4567_89AB_CDEF);
        using var e = Prepare(TestHart.Data + 0x100, 0x0123_4567_89AB_CDEF);
        RunCompressed(c, compressed);
        RunExpanded(e, expansion);

        AssertSameState(name, c, e);
        ulong stored = name.Contains("x9", StringComparison.Ordinal) ? 0x0123_4567_89AB_CDEFUL : 0x6666_6666_6666_6666UL;
        if (size == 8)
        {
            Assert.Equal(stored, c.Peek64(address));
        }
        else
        {
            Assert.Equal((uint)stored, c.Peek32(address));
            Assert.NotEqual((uint)stored, c.Peek32(address + 4)); // only 4 bytes written
        }
    }

    public static TheoryData<string, ushort, uint> FpMemoryCases => new()
    {
        // c.fld: 001 | uimm[5:3]=010 | rs1'=001 | uimm[7:6]=00 | rd'=000 | 00
        { "c.fld f8, 16(x9)", 0x2880, Asm.Fld(8, 9, 16) },
        // c.fsd: 101 | uimm[5:3]=011 | rs1'=001 | 00 | rs2'=000 | 00
        { "c.fsd f8, 24(x9)", 0xAC80, Asm.Fsd(8, 9, 24) },
        // c.fldsp: 001 | uimm[5]=0 | rd=00110 | uimm[4:3|8:6]=01000 | 10
        { "c.fldsp f6, 8(sp)", 0x2322, Asm.Fld(6, 2, 8) },
        // c.fsdsp: 101 | uimm[5:3|8:6]=010000 | rs2=00110 | 10
        { "c.fsdsp f6, 16(sp)", 0xA81A, Asm.Fsd(6, 2, 16) },
    };

    [Theory]
    [MemberData(nameof(FpMemoryCases))]
    public void Compressed_fp_load_store_equals_its_expansion(string name, ushort compressed, uint expansion)
    {
        using var c = Prepare(0, TestHart.Data + 0x200);
        using var e = Prepare(0, TestHart.Data + 0x200);
        RunCompressed(c, compressed);
        RunExpanded(e, expansion);

        AssertSameState(name, c, e);
        switch (name)
        {
            case "c.fld f8, 16(x9)": Assert.Equal(c.Peek64(TestHart.Data + 0x210), c.F(8)); break;
            case "c.fsd f8, 24(x9)": Assert.Equal(0x4008_0000_0000_0008UL, c.Peek64(TestHart.Data + 0x218)); break;
            case "c.fldsp f6, 8(sp)": Assert.Equal(c.Peek64(Sp + 8), c.F(6)); break;
            default: Assert.Equal(0x4006_0000_0000_0006UL, c.Peek64(Sp + 16)); break;
        }
    }

    [Fact]
    public void C_j_jumps_forward_and_backward_without_linking()
    {
        using var h = new TestHart();
        ushort[] halt = Asm.Halves(Asm.Halt);
        h.WriteHalves(Base,
            0xA029,                 // +0: c.j +10: 101 | imm[11|4|9:8|10|6|7|3:1|5]=00000000101 | 01
            0x0001,                 // +2
            halt[0], halt[1],       // +4: where c.j -6 lands
            0x0001,                 // +8
            0xBFED);                // +10: c.j -6: 101 | 11111111011 | 01
        h.Run(20);

        h.AssertHaltedAt(Base + 4);
        Assert.Equal(0UL, h.X(1));
    }

    [Theory]
    [InlineData(0UL, true)]
    [InlineData(5UL, false)]
    public void C_beqz_branches_when_zero(ulong x8, bool taken)
    {
        using var h = new TestHart();
        ushort[] halt = Asm.Halves(Asm.Halt);
        h.WriteHalves(Base,
            0xC019,                 // c.beqz x8, +6: 110 | imm[8|4:3]=000 | rs1'=000 | imm[7:6|2:1|5]=00110 | 01
            halt[0], halt[1],       // +2: not taken
            halt[0], halt[1]);      // +6: taken
        h.SetX(8, x8);
        h.Run(20);

        h.AssertHaltedAt(taken ? Base + 6 : Base + 2);
    }

    [Theory]
    [InlineData(0UL, false)]
    [InlineData(5UL, true)]
    [InlineData(0x8000_0000_0000_0000UL, true)]
    public void C_bnez_branches_backward_when_not_zero(ulong x8, bool taken)
    {
        using var h = new TestHart();
        ushort[] halt = Asm.Halves(Asm.Halt);
        h.WriteHalves(Base,
            halt[0], halt[1],       // +0: taken
            0xFC75,                 // +4: c.bnez x8, -4: 111 | imm[8|4:3]=111 | rs1'=000 | imm[7:6|2:1|5]=11101 | 01
            halt[0], halt[1]);      // +6: not taken
        h.SetX(8, x8);
        h.Hart.Pc = Base + 4;
        h.Run(20);

        h.AssertHaltedAt(taken ? Base : Base + 6);
    }

    [Fact]
    public void C_jr_jumps_to_rs1_without_linking()
    {
        using var h = new TestHart();
        h.WriteHalves(Base, 0x8282); // c.jr x5: 100 | 0 | rs1=00101 | 00000 | 10 -> jalr x0, 0(x5)
        h.Write(Base + 0x40, Asm.Halt);
        h.SetX(1, 0x1111);
        h.SetX(5, Base + 0x40);
        h.Run(10);

        h.AssertHaltedAt(Base + 0x40);
        Assert.Equal(0x1111UL, h.X(1));
    }

    [Fact]
    public void C_jalr_jumps_to_rs1_and_links_ra()
    {
        using var h = new TestHart();
        h.WriteHalves(Base, 0x0001, 0x9302); // c.nop; c.jalr x6: 100 | 1 | rs1=00110 | 00000 | 10 -> jalr x1, 0(x6)
        h.Write(Base + 0x40, Asm.Halt);
        h.SetX(6, Base + 0x40);
        h.Run(10);

        h.AssertHaltedAt(Base + 0x40);
        Assert.Equal(Base + 4, h.X(1));
    }

    [Fact]
    public void C_jalr_ra_jumps_to_the_old_ra()
    {
        using var h = new TestHart();
        h.WriteHalves(Base,
            0x9082);                // c.jalr x1: 100 | 1 | 00001 | 00000 | 10 -> jalr x1, 0(x1)
        h.Write(Base + 0x100, Asm.Halt);
        h.SetX(1, Base + 0x100);
        h.Run(10);

        h.AssertHaltedAt(Base + 0x100);
        Assert.Equal(Base + 2, h.X(1));
    }

    [Fact]
    public void C_ebreak_traps_with_the_pc_in_mtval()
    {
        using var h = new TestHart();
        h.WriteHalves(Base, 0x0001, 0x9002); // c.nop; c.ebreak: 100 | 1 | 00000 | 00000 | 10
        h.Run(10);

        h.AssertTrappedToM(TrapCause.Breakpoint, Base + 2, Base + 2);
    }

    [Fact]
    public void All_zero_halfword_is_illegal()
    {
        using var h = new TestHart();
        h.WriteHalves(Base, 0x0001, 0x0000, 0x0001);
        h.Run(10);

        h.AssertTrappedToM(TrapCause.IllegalInstruction, 0, Base + 2);
    }

    [Fact]
    public void Thirty_two_bit_instructions_run_at_halfword_addresses_and_across_a_page_end()
    {
        using var h = new TestHart();
        ushort[] add5 = Asm.Halves(Asm.Addi(5, 5, 1)), add6 = Asm.Halves(Asm.Addi(6, 6, 7)), halt = Asm.Halves(Asm.Halt);
        const ulong start = Base + 0xFF8;
        h.WriteHalves(start,
            0x0001,                 // ...ff8: c.nop
            add5[0], add5[1],       // ...ffa: a 32-bit instruction at a halfword address
            add6[0], add6[1],       // ...ffe: straddles the page boundary
            halt[0], halt[1]);      // next page +2
        h.Hart.Pc = start;
        h.Run(20);

        h.AssertHaltedAt(Base + 0x1002);
        Assert.Equal(1UL, h.X(5));
        Assert.Equal(7UL, h.X(6));
    }

    private static TestHart Prepare(ulong x8, ulong x9)
    {
        var h = new TestHart();
        h.EnableFp();
        for (int i = 0; i < 0x1000; i += 8)
        {
            // Distinct bytes with the top bit set in some of them, to expose sign extension.
            ulong v = 0;
            for (int b = 0; b < 8; b++)
            {
                v |= (ulong)(byte)(0x80 + (((i + b) * 13) & 0xFF)) << (8 * b);
            }

            h.Poke64(TestHart.Data + (ulong)i, v);
        }

        h.SetX(1, 0x1111);
        h.SetX(2, Sp);
        h.SetX(5, 0x5555_5555_5555_5555);
        h.SetX(6, 0x6666_6666_6666_6666);
        h.SetX(7, 0x8000_0000_0000_0007);
        h.SetX(8, x8);
        h.SetX(9, x9);
        h.SetX(10, 0xFFFF_FFFF_FFFF_FFF7);
        h.SetF(6, 0x4006_0000_0000_0006);
        h.SetF(8, 0x4008_0000_0000_0008);
        return h;
    }

    private static void RunCompressed(TestHart h, ushort compressed)
    {
        h.WriteHalves(Base, [compressed, .. Asm.Halves(Asm.Halt)]);
        h.Run(10);
        h.AssertHaltedAt(Base + 2);
    }

    private static void RunExpanded(TestHart h, uint expansion)
    {
        h.Write(Base, expansion, Asm.Halt);
        h.Run(10);
        h.AssertHaltedAt(Base + 4);
    }

    private static void AssertSameState(string name, TestHart c, TestHart e)
    {
        for (int r = 1; r < 32; r++)
        {
            Assert.True(c.X(r) == e.X(r), $"{name}: x{r} = 0x{c.X(r):x}, expansion gives 0x{e.X(r):x}");
            Assert.True(c.F(r) == e.F(r), $"{name}: f{r} differs");
        }

        Assert.True(c.Ram.GetSpan(TestHart.Data, 0x1000).SequenceEqual(e.Ram.GetSpan(TestHart.Data, 0x1000)), $"{name}: memory differs");
    }
}
