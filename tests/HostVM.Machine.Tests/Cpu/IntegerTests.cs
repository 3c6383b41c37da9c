namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// RV64I and M: every operation class, with the edge cases the unprivileged spec calls out
/// (W variants sign-extend their 32-bit result, shifts use only the low 6/5 bits of rs2, the
/// division table for zero divisors and overflow). Expected values are worked out from the spec.
/// </summary>
public class IntegerTests
{
    private const ulong Min = 0x8000_0000_0000_0000;
    private const ulong Max = 0x7FFF_FFFF_FFFF_FFFF;
    private const ulong All = 0xFFFF_FFFF_FFFF_FFFF;

    // rd = x3, rs1 = x1, rs2 = x2.
    private static readonly Dictionary<string, uint> RegisterOps = new()
    {
        ["add"] = Asm.Add(3, 1, 2), ["sub"] = Asm.Sub(3, 1, 2), ["sll"] = Asm.Sll(3, 1, 2), ["slt"] = Asm.Slt(3, 1, 2),
        ["sltu"] = Asm.Sltu(3, 1, 2), ["xor"] = Asm.Xor(3, 1, 2), ["srl"] = Asm.Srl(3, 1, 2), ["sra"] = Asm.Sra(3, 1, 2),
        ["or"] = Asm.Or(3, 1, 2), ["and"] = Asm.And(3, 1, 2),
        ["addw"] = Asm.Addw(3, 1, 2), ["subw"] = Asm.Subw(3, 1, 2), ["sllw"] = Asm.Sllw(3, 1, 2), ["srlw"] = Asm.Srlw(3, 1, 2),
        ["sraw"] = Asm.Sraw(3, 1, 2),
        ["mul"] = Asm.Mul(3, 1, 2), ["mulh"] = Asm.Mulh(3, 1, 2), ["mulhsu"] = Asm.Mulhsu(3, 1, 2), ["mulhu"] = Asm.Mulhu(3, 1, 2),
        ["div"] = Asm.Div(3, 1, 2), ["divu"] = Asm.Divu(3, 1, 2), ["rem"] = Asm.Rem(3, 1, 2), ["remu"] = Asm.Remu(3, 1, 2),
        ["mulw"] = Asm.Mulw(3, 1, 2), ["divw"] = Asm.Divw(3, 1, 2), ["divuw"] = Asm.Divuw(3, 1, 2), ["remw"] = Asm.Remw(3, 1, 2),
        ["remuw"] = Asm.Remuw(3, 1, 2),
    };

    public static TheoryData<string, ulong, ulong, ulong> RegisterCases => new()
    {
        { "add", Max, 1, Min },
        { "add", All, 1, 0 },
        { "sub", 0, 1, All },
        { "sub", Min, 1, Max },
        { "sll", 1, 63, Min },
        { "sll", 1, 64 + 4, 16 },                       // only rs2[5:0] counts
        { "sll", 1, 0xFFFF_FFFF_FFFF_FFC1, 2 },
        { "srl", Min, 63, 1 },
        { "srl", Min, 127, 1 },
        { "srl", All, 4, 0x0FFF_FFFF_FFFF_FFFF },
        { "sra", Min, 63, All },
        { "sra", Min, 1, 0xC000_0000_0000_0000 },
        { "sra", Max, 62, 1 },
        { "slt", All, 1, 1 },                            // -1 < 1
        { "slt", 1, All, 0 },
        { "slt", 5, 5, 0 },
        { "slt", Min, Max, 1 },
        { "sltu", All, 1, 0 },                           // 2^64-1 < 1 is false unsigned
        { "sltu", 1, All, 1 },
        { "sltu", 5, 5, 0 },
        { "xor", 0xFF00_FF00_FF00_FF00, 0x0FF0_0FF0_0FF0_0FF0, 0xF0F0_F0F0_F0F0_F0F0 },
        { "or", 0xFF00_0000_0000_0001, 0x00FF_0000_0000_0002, 0xFFFF_0000_0000_0003 },
        { "and", 0xFF00_FF00_0000_0003, 0x0FF0_FFFF_0000_0006, 0x0F00_FF00_0000_0002 },
        { "addw", 0x7FFF_FFFF, 1, 0xFFFF_FFFF_8000_0000 },
        { "addw", 0xFFFF_FFFF_0000_0001, 0x0000_0001_0000_0001, 2 },  // upper halves ignored
        { "subw", 0, 1, All },
        { "subw", 0x8000_0000, 1, 0x7FFF_FFFF },
        { "sllw", 1, 31, 0xFFFF_FFFF_8000_0000 },
        { "sllw", 1, 32 + 3, 8 },                        // only rs2[4:0] counts
        { "sllw", 0xFFFF_FFFF_0000_0001, 1, 2 },
        { "srlw", 0xFFFF_FFFF_8000_0000, 31, 1 },
        { "srlw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000 },  // the 32-bit result is sign-extended
        { "srlw", 0xFFFF_FFFF_FFFF_FFFF, 36, 0x0FFF_FFFF },  // shift by 4, zeros come in at bit 31
        { "sraw", 0x8000_0000, 31, All },
        { "sraw", 0x1234_5678_7FFF_FFFF, 16, 0x7FFF },
        { "mul", All, All, 1 },
        { "mul", 0x1_0000_0001, 0x1_0000_0001, 0x2_0000_0001 },
        { "mulh", All, All, 0 },                         // (-1)(-1) = 1
        { "mulh", All, 1, All },                         // -1: high half all ones
        { "mulh", Min, All, 0 },                         // 2^63: high half 0
        { "mulh", Min, Min, 0x4000_0000_0000_0000 },     // 2^126
        { "mulh", 1, All, All },
        { "mulhsu", 1, All, 0 },                         // 1 * (2^64-1): rs2 unsigned
        { "mulhsu", All, All, All },                     // -1 * (2^64-1) = -2^64 + 1
        { "mulhsu", 2, All, 1 },                         // 2^65 - 2
        { "mulhsu", Min, All, Min },                     // -2^127 + 2^63
        { "mulhu", All, All, 0xFFFF_FFFF_FFFF_FFFE },    // 2^128 - 2^65 + 1
        { "mulhu", All, 1, 0 },
        { "mulhu", Min, 4, 2 },
        { "div", 7, unchecked((ulong)-2L), unchecked((ulong)-3L) },  // truncates toward zero
        { "div", unchecked((ulong)-7L), 2, unchecked((ulong)-3L) },
        { "div", 5, 0, All },                            // x / 0 = -1
        { "div", Min, All, Min },                        // overflow: MIN / -1 = MIN
        { "divu", 7, 2, 3 },
        { "divu", 5, 0, All },                           // 2^64 - 1
        { "divu", 0xFFFF_FFFF_FFFF_FFFE, All, 0 },
        { "divu", All, 2, Max },
        { "rem", 7, unchecked((ulong)-2L), 1 },          // sign of the dividend
        { "rem", unchecked((ulong)-7L), 2, All },
        { "rem", 5, 0, 5 },                              // x % 0 = x
        { "rem", Min, All, 0 },                          // overflow: 0
        { "remu", 7, 0, 7 },
        { "remu", All, 10, 5 },
        { "mulw", 0x7FFF_FFFF, 2, 0xFFFF_FFFF_FFFF_FFFE },
        { "mulw", 0x1_0000_0003, 0x1_0000_0005, 15 },
        { "divw", 0x8000_0000, All, 0xFFFF_FFFF_8000_0000 },  // INT32_MIN / -1
        { "divw", 5, 0, All },
        { "divw", unchecked((ulong)-7L), 2, unchecked((ulong)-3L) },
        { "divw", 0xFFFF_FFFF_0000_0007, 2, 3 },         // upper half of rs1 ignored
        { "divuw", 0xFFFF_FFFF, 1, All },                // 32-bit result 0xFFFFFFFF sign-extended
        { "divuw", 5, 0, All },
        { "divuw", 0x8000_0000, 2, 0x4000_0000 },
        { "divuw", 0x1_0000_0008, 0x1_0000_0002, 4 },
        { "remw", 0x8000_0000, All, 0 },
        { "remw", 0x8000_0000, 0, 0xFFFF_FFFF_8000_0000 },  // dividend, sign-extended from 32 bits
        { "remw", unchecked((ulong)-7L), 2, All },
        { "remuw", 0x8000_0005, 0, 0xFFFF_FFFF_8000_0005 },
        { "remuw", 7, 4, 3 },
        { "remuw", 0xFFFF_FFFF, 0x1_0000_0010, 15 },
    };

    [Theory]
    [MemberData(nameof(RegisterCases))]
    public void Register_register_operation(string op, ulong rs1, ulong rs2, ulong expected)
    {
        Assert.Equal(expected, Exec(RegisterOps[op], rs1, rs2));
    }

    public static TheoryData<string, ulong, ulong> ImmediateCases => new()
    {
        { "addi x3, x1, -1 (x1 = 0)", 0, All },
        { "addi x3, x1, 2047 (x1 = Max)", Max, unchecked(Max + 2047) },
        { "slti x3, x1, -1 (x1 = -2)", unchecked((ulong)-2L), 1 },
        { "slti x3, x1, -1 (x1 = 0)", 0, 0 },
        { "sltiu x3, x1, -1 (x1 = 5)", 5, 1 },            // the immediate sign-extends, then compares unsigned
        { "sltiu x3, x1, -1 (x1 = All)", All, 0 },
        { "xori x3, x1, -1", 0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210 },
        { "ori x3, x1, -2048", 0x1, 0xFFFF_FFFF_FFFF_F801 },
        { "andi x3, x1, -2048", All, 0xFFFF_FFFF_FFFF_F800 },
        { "andi x3, x1, 2047", All, 0x7FF },
        { "slli x3, x1, 63", 3, Min },
        { "srli x3, x1, 63", Min, 1 },
        { "srai x3, x1, 63", Min, All },
        { "srai x3, x1, 0", Min, Min },
        { "addiw x3, x1, 1", 0x7FFF_FFFF, 0xFFFF_FFFF_8000_0000 },
        { "addiw x3, x1, 0", 0x1234_5678_8765_4321, 0xFFFF_FFFF_8765_4321 },
        { "slliw x3, x1, 31", 1, 0xFFFF_FFFF_8000_0000 },
        { "slliw x3, x1, 4", 0xFFFF_FFFF_0FFF_FFFF, 0xFFFF_FFFF_FFFF_FFF0 },
        { "srliw x3, x1, 31", 0xFFFF_FFFF_8000_0000, 1 },
        { "srliw x3, x1, 0", 0x8000_0000, 0xFFFF_FFFF_8000_0000 },
        { "sraiw x3, x1, 31", 0x8000_0000, All },
        { "sraiw x3, x1, 4", 0x1234_5678_7FFF_FFF0, 0x07FF_FFFF },
    };

    private static readonly Dictionary<string, uint> ImmediateOps = new()
    {
        ["addi x3, x1, -1 (x1 = 0)"] = Asm.Addi(3, 1, -1),
        ["addi x3, x1, 2047 (x1 = Max)"] = Asm.Addi(3, 1, 2047),
        ["slti x3, x1, -1 (x1 = -2)"] = Asm.Slti(3, 1, -1),
        ["slti x3, x1, -1 (x1 = 0)"] = Asm.Slti(3, 1, -1),
        ["sltiu x3, x1, -1 (x1 = 5)"] = Asm.Sltiu(3, 1, -1),
        ["sltiu x3, x1, -1 (x1 = All)"] = Asm.Sltiu(3, 1, -1),
        ["xori x3, x1, -1"] = Asm.Xori(3, 1, -1),
        ["ori x3, x1, -2048"] = Asm.Ori(3, 1, -2048),
        ["andi x3, x1, -2048"] = Asm.Andi(3, 1, -2048),
        ["andi x3, x1, 2047"] = Asm.Andi(3, 1, 2047),
        ["slli x3, x1, 63"] = Asm.Slli(3, 1, 63),
        ["srli x3, x1, 63"] = Asm.Srli(3, 1, 63),
        ["srai x3, x1, 63"] = Asm.Srai(3, 1, 63),
        ["srai x3, x1, 0"] = Asm.Srai(3, 1, 0),
        ["addiw x3, x1, 1"] = Asm.Addiw(3, 1, 1),
        ["addiw x3, x1, 0"] = Asm.Addiw(3, 1, 0),
        ["slliw x3, x1, 31"] = Asm.Slliw(3, 1, 31),
        ["slliw x3, x1, 4"] = Asm.Slliw(3, 1, 4),
        ["srliw x3, x1, 31"] = Asm.Srliw(3, 1, 31),
        ["srliw x3, x1, 0"] = Asm.Srliw(3, 1, 0),
        ["sraiw x3, x1, 31"] = Asm.Sraiw(3, 1, 31),
        ["sraiw x3, x1, 4"] = Asm.Sraiw(3, 1, 4),
    };

    [Theory]
    [MemberData(nameof(ImmediateCases))]
    public void Register_immediate_operation(string op, ulong rs1, ulong expected)
    {
        Assert.Equal(expected, Exec(ImmediateOps[op], rs1, 0));
    }

    [Fact]
    public void Lui_sign_extends_its_32_bit_result_and_auipc_adds_the_pc()
    {
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Write(pc,
            Asm.Lui(3, 0x80000),        // 0x8000_0000 sign-extended
            Asm.Lui(4, 0x7FFFF),
            Asm.Auipc(5, 0xFFFFF),      // pc+8 - 0x1000
            Asm.Auipc(6, 1),            // pc+12 + 0x1000
            Asm.Halt);
        h.Run(20);

        h.AssertHaltedAt(pc + 16);
        Assert.Equal(0xFFFF_FFFF_8000_0000, h.X(3));
        Assert.Equal(0x7FFF_F000UL, h.X(4));
        Assert.Equal(pc + 8 - 0x1000, h.X(5));
        Assert.Equal(pc + 12 + 0x1000, h.X(6));
    }

    [Fact]
    public void Jal_links_the_next_pc_and_jumps_relative()
    {
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Write(pc,
            Asm.Jal(1, 12),             // -> pc+12
            Asm.Addi(5, 0, 1),          // skipped
            Asm.Halt,
            Asm.Jal(2, -4),             // pc+12 -> pc+8, x2 = pc+16
            Asm.Halt);
        h.Run(20);

        h.AssertHaltedAt(pc + 8);
        Assert.Equal(pc + 4, h.X(1));
        Assert.Equal(pc + 16, h.X(2));
        Assert.Equal(0UL, h.X(5));
    }

    [Fact]
    public void Jalr_with_rd_equal_rs1_jumps_to_the_old_value_and_clears_bit_0()
    {
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Write(pc,
            Asm.Jalr(1, 1, 0),          // x1 = target1: jump there, then x1 = pc+4
            Asm.Halt,
            Asm.Halt,
            Asm.Jalr(3, 2, -3),         // pc+12: x2 - 3 = pc+21 -> bit 0 cleared -> pc+20
            Asm.Halt,
            Asm.Halt);                  // pc+20
        h.SetX(1, pc + 12);
        h.SetX(2, pc + 24);
        h.Run(20);

        h.AssertHaltedAt(pc + 20);
        Assert.Equal(pc + 4, h.X(1));
        Assert.Equal(pc + 16, h.X(3));
    }

    public static TheoryData<string, ulong, ulong, bool> BranchCases => new()
    {
        { "beq", 5, 5, true }, { "beq", 5, 6, false },
        { "bne", 5, 6, true }, { "bne", 5, 5, false },
        { "blt", All, 1, true }, { "blt", 1, All, false }, { "blt", 1, 1, false }, { "blt", Min, Max, true },
        { "bge", 1, All, true }, { "bge", 1, 1, true }, { "bge", All, 1, false },
        { "bltu", 1, All, true }, { "bltu", All, 1, false }, { "bltu", 1, 1, false },
        { "bgeu", All, 1, true }, { "bgeu", 1, 1, true }, { "bgeu", 1, All, false },
    };

    [Theory]
    [MemberData(nameof(BranchCases))]
    public void Branch_taken_or_not(string op, ulong rs1, ulong rs2, bool taken)
    {
        uint branch = op switch
        {
            "beq" => Asm.Beq(1, 2, 12),
            "bne" => Asm.Bne(1, 2, 12),
            "blt" => Asm.Blt(1, 2, 12),
            "bge" => Asm.Bge(1, 2, 12),
            "bltu" => Asm.Bltu(1, 2, 12),
            _ => Asm.Bgeu(1, 2, 12),
        };
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Write(pc, branch, Asm.Addi(5, 0, 1), Asm.Halt, Asm.Addi(5, 0, 2), Asm.Halt);
        h.SetX(1, rs1);
        h.SetX(2, rs2);
        h.Run(20);

        h.AssertHaltedAt(taken ? pc + 16 : pc + 8);
        Assert.Equal(taken ? 2UL : 1UL, h.X(5));
    }

    [Fact]
    public void Backward_branch_loops()
    {
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Write(pc,
            Asm.Addi(5, 5, 3),
            Asm.Addi(6, 6, -1),
            Asm.Bne(6, 0, -8),
            Asm.Halt);
        h.SetX(6, 10);
        h.Run(100);

        h.AssertHaltedAt(pc + 12);
        Assert.Equal(30UL, h.X(5));
    }

    [Fact]
    public void X0_reads_zero_whatever_is_written_to_it()
    {
        using var h = new TestHart();
        const ulong pc = TestHart.ProgramBase;
        h.Poke64(TestHart.Data, 0x1122_3344_5566_7788);
        h.Write(pc,
            Asm.Lui(0, 0x12345),
            Asm.Addi(0, 0, 7),
            Asm.Ld(0, 10, 0),
            Asm.Auipc(0, 1),
            Asm.Csrrs(0, HostVM.Machine.Cpu.Csr.Mstatus, 0),
            Asm.Amo(Asm.AmoSwap, true, 0, 10, 10),
            Asm.Jal(0, 4),
            Asm.Add(3, 0, 0),
            Asm.Sd(0, 10, 8),
            Asm.Addi(4, 0, 0),
            Asm.Halt);
        h.SetX(10, TestHart.Data);
        h.Poke64(TestHart.Data + 8, All);
        h.Run(40);

        h.AssertHaltedAt(pc + 40);
        Assert.Equal(0UL, h.X(3));
        Assert.Equal(0UL, h.X(4));
        Assert.Equal(0UL, h.Peek64(TestHart.Data + 8));
        Assert.Equal(TestHart.Data, h.Peek64(TestHart.Data)); // the amoswap did store x10
    }

    /// <summary>Runs one instruction with x1, x2 set; returns x3.</summary>
    private static ulong Exec(uint instruction, ulong rs1, ulong rs2)
    {
        using var h = new TestHart();
        h.Write(TestHart.ProgramBase, instruction, Asm.Halt);
        h.SetX(1, rs1);
        h.SetX(2, rs2);
        h.SetX(3, 0xBAD0_BAD0_BAD0_BAD0);
        h.Run(10);
        h.AssertHaltedAt(TestHart.ProgramBase + 4);
        Assert.Equal(rs1, h.X(1));
        Assert.Equal(rs2, h.X(2));
        return h.X(3);
    }
}
