using HostVM.Machine.Cpu;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// Reserved and unimplemented encodings decode to <see cref="Op.Illegal"/> (keeping the raw bits
/// for mtval); valid neighbours of each do not. Sources: the unprivileged spec's opcode map and
/// instruction listings, the RVC listings ("reserved", "RES", "HINT" entries), and the privileged
/// spec's SYSTEM encodings.
/// </summary>
public class DecoderTests
{
    public static TheoryData<string, uint> IllegalEncodings => new()
    {
        // Compressed
        { "all-zero halfword", 0x0000 },
        { "c.addi4spn with nzuimm = 0", 0x0004 },
        { "c.addi16sp with nzimm = 0", 0x6101 },
        { "c.lui with nzimm = 0", 0x6281 },
        { "c.addiw with rd = 0", 0x2005 },
        { "c.lwsp with rd = 0", 0x4002 },
        { "c.ldsp with rd = 0", 0x6002 },
        { "c.jr with rs1 = 0", 0x8002 },
        { "quadrant 0, funct3 100", 0x8000 },
        { "quadrant 1 arithmetic 1-11-10 (reserved)", 0x9C45 },
        { "quadrant 1 arithmetic 1-11-11 (reserved)", 0x9C65 },
        // Integer
        { "OP with funct7 0x02", Asm.R(Asm.OpReg, 3, 0, 1, 2, 0x02) },
        { "OP or with funct7 0x20", Asm.R(Asm.OpReg, 3, 6, 1, 2, 0x20) },
        { "OP add with funct7 0x40", Asm.R(Asm.OpReg, 3, 0, 1, 2, 0x40) },
        { "OP-32 funct7 1, funct3 1", Asm.R(Asm.OpReg32, 3, 1, 1, 2, 1) },
        { "OP-32 funct7 1, funct3 2", Asm.R(Asm.OpReg32, 3, 2, 1, 2, 1) },
        { "OP-32 funct7 0x20, funct3 1", Asm.R(Asm.OpReg32, 3, 1, 1, 2, 0x20) },
        { "slli with funct6 1", Asm.I(Asm.OpImm, 3, 1, 1, 0x040 | 3) },
        { "srai with funct6 0x11", Asm.I(Asm.OpImm, 3, 5, 1, 0x440 | 3) },
        { "slliw with imm[5] set", Asm.I(Asm.OpImm32, 3, 1, 1, 0x20 | 1) },
        { "srliw with imm[5] set", Asm.I(Asm.OpImm32, 3, 5, 1, 0x20 | 1) },
        { "sraiw with funct7 0x21", Asm.I(Asm.OpImm32, 3, 5, 1, 0x420 | 1) },
        { "OP-IMM-32 funct3 2", Asm.I(Asm.OpImm32, 3, 2, 1, 0) },
        { "jalr funct3 1", Asm.I(Asm.OpJalr, 1, 1, 2, 0) },
        { "branch funct3 2", Asm.B(2, 1, 2, 8) },
        { "branch funct3 3", Asm.B(3, 1, 2, 8) },
        { "load funct3 7", Asm.I(Asm.OpLoad, 3, 7, 1, 0) },
        { "store funct3 4", Asm.S(Asm.OpStore, 4, 1, 2, 0) },
        { "MISC-MEM funct3 2", Asm.I(Asm.OpMiscMem, 0, 2, 1, 0) },
        // A
        { "AMO funct3 0", Asm.R(Asm.OpAmo, 3, 0, 1, 2, 0) },
        { "AMO funct3 4", Asm.R(Asm.OpAmo, 3, 4, 1, 2, 0) },
        { "lr.w with rs2 != 0", Asm.Amo(Asm.AmoLr, false, 3, 1, 2) },
        { "AMO funct5 0x05", Asm.Amo(0x05, false, 3, 1, 2) },
        { "AMO funct5 0x1F", Asm.Amo(0x1F, true, 3, 1, 2) },
        // F / D
        { "fadd.s rm 5", Asm.FaddS(3, 1, 2, 5) },
        { "fadd.s rm 6", Asm.FaddS(3, 1, 2, 6) },
        { "fdiv.d rm 5", Asm.FdivD(3, 1, 2, 5) },
        { "fcvt.w.s rm 6", Asm.FcvtWS(3, 1, 6) },
        { "fmadd.s rm 5", Asm.FmaddS(4, 1, 2, 3, 5) },
        { "fmadd fmt 2 (half)", Asm.R4(Asm.OpMadd, 4, 0, 1, 2, 2, 3) },
        { "fmadd fmt 3 (quad)", Asm.R4(Asm.OpMadd, 4, 0, 1, 2, 3, 3) },
        { "fadd.h (fmt 2)", Asm.FpOp(0x02, 3, 1, 2, 0) },
        { "fsqrt.s with rs2 != 0", Asm.FpOp(0x2C, 3, 1, 1, 0) },
        { "fsgnj.s funct3 3", Asm.FpOp(0x10, 3, 1, 2, 3) },
        { "fmin.s funct3 2", Asm.FpOp(0x14, 3, 1, 2, 2) },
        { "feq.s funct3 3", Asm.FpOp(0x50, 3, 1, 2, 3) },
        { "fcvt.w.s rs2 4", Asm.FpOp(0x60, 3, 1, 4, 0) },
        { "fcvt.s.s (0x20, rs2 0)", Asm.FpOp(0x20, 3, 1, 0, 0) },
        { "fmv.x.w funct3 2", Asm.FpOp(0x70, 3, 1, 0, 2) },
        { "fmv.x.w rs2 != 0", Asm.FpOp(0x70, 3, 1, 1, 0) },
        { "fmv.w.x funct3 1", Asm.FpOp(0x78, 3, 1, 0, 1) },
        { "flh (funct3 1)", Asm.I(Asm.OpLoadFp, 3, 1, 1, 0) },
        { "flq (funct3 4)", Asm.I(Asm.OpLoadFp, 3, 4, 1, 0) },
        { "fsq (funct3 4)", Asm.S(Asm.OpStoreFp, 4, 1, 2, 0) },
        // SYSTEM
        { "uret (removed)", 0x0020_0073 },
        { "dret outside debug mode", 0x7B20_0073 },
        { "ecall with rd != 0", 0x0000_00F3 },
        { "ebreak with rs1 != 0", 0x0010_8073 },
        { "SYSTEM funct3 4 (hypervisor loads)", Asm.R(Asm.OpSystem, 3, 4, 1, 0, 0x30) },
        { "sfence.vma with rd != 0", Asm.R(Asm.OpSystem, 1, 0, 1, 2, 0x09) },
        { "hfence.vvma (no H)", Asm.R(Asm.OpSystem, 0, 0, 1, 2, 0x11) },
        // Opcodes with nothing implemented
        { "custom-0", 0x0000_000B },
        { "OP-V (no V)", 0x0000_0057 },
        { "48-bit prefix", 0x0000_003F },
        { "all ones", 0xFFFF_FFFF },
    };

    [Theory]
    [MemberData(nameof(IllegalEncodings))]
    public void Reserved_encoding_decodes_to_illegal_with_its_bits(string name, uint bits)
    {
        var d = Decoder.Decode(bits);

        Assert.True(d.Op == Op.Illegal, $"{name} (0x{bits:x8}) decoded as {d.Op}");
        int length = (bits & 3) == 3 ? 4 : 2;
        Assert.Equal(length, d.Length);
        Assert.Equal(length == 4 ? bits : bits & 0xFFFF, (ulong)d.Imm);
    }

    public static TheoryData<string, uint, Op> ValidNeighbours => new()
    {
        { "c.addi4spn x9, sp, 4", 0x0044, Op.Addi },
        { "c.addi16sp sp, 16", 0x6141, Op.Addi },
        { "c.lui x5, 1", 0x6285, Op.Lui },
        { "c.addiw x1, 1", 0x2085, Op.Addiw },
        { "c.lwsp x1, 0(sp)", 0x4082, Op.Lw },
        { "c.jr x1", 0x8082, Op.Jalr },
        { "c.ebreak", 0x9002, Op.Ebreak },
        { "c.subw", 0x9C05, Op.Subw },
        { "c.addw", 0x9C25, Op.Addw },
        { "c.nop", 0x0001, Op.Addi },
        { "c.li x0, 1 (hint)", 0x4005, Op.Addi },
        { "mulw", Asm.Mulw(3, 1, 2), Op.Mulw },
        { "srai 63", Asm.Srai(3, 1, 63), Op.Srai },
        { "sraiw 31", Asm.Sraiw(3, 1, 31), Op.Sraiw },
        { "lr.w", Asm.LrW(3, 1), Op.LrW },
        { "amomaxu.d", Asm.Amo(Asm.AmoMaxu, true, 3, 1, 2), Op.AmomaxuD },
        { "fadd.s rm 4", Asm.FaddS(3, 1, 2, 4), Op.FaddS },
        { "fadd.s rm 7 (dyn)", Asm.FaddS(3, 1, 2, 7), Op.FaddS },
        { "fmadd.d", Asm.R4(Asm.OpMadd, 4, 7, 1, 2, 1, 3), Op.FmaddD },
        { "fnmadd.s", Asm.R4(Asm.OpNmadd, 4, 0, 1, 2, 0, 3), Op.FnmaddS },
        { "fmsub.s", Asm.R4(Asm.OpMsub, 4, 0, 1, 2, 0, 3), Op.FmsubS },
        { "fnmsub.d", Asm.R4(Asm.OpNmsub, 4, 0, 1, 2, 1, 3), Op.FnmsubD },
        { "fcvt.s.d", Asm.FpOp(0x20, 3, 1, 1, 7), Op.FcvtSD },
        { "fcvt.lu.d", Asm.FpOp(0x61, 3, 1, 3, 1), Op.FcvtLuD },
        { "fcvt.d.lu", Asm.FpOp(0x69, 3, 1, 3, 1), Op.FcvtDLu },
        { "flt.d", Asm.FpOp(0x51, 3, 1, 2, 1), Op.FltD },
        { "fle.s", Asm.FpOp(0x50, 3, 1, 2, 0), Op.FleS },
        { "fsgnjx.d", Asm.FpOp(0x11, 3, 1, 2, 2), Op.FsgnjxD },
        { "fmax.s", Asm.FpOp(0x14, 3, 1, 2, 1), Op.FmaxS },
        { "sfence.vma x1, x2", Asm.SfenceVma(1, 2), Op.SfenceVma },
        { "wfi", Asm.Wfi(), Op.Wfi },
        { "fence.i", Asm.FenceI(), Op.FenceI },
        { "fence rw, rw", 0x0330_000F, Op.Fence },
        { "csrrci", Asm.Csrrci(3, Csr.Sstatus, 2), Op.Csrrci },
    };

    [Theory]
    [MemberData(nameof(ValidNeighbours))]
    public void Valid_encoding_decodes_to_its_operation(string name, uint bits, Op op)
    {
        var d = Decoder.Decode(bits);
        Assert.True(d.Op == op, $"{name} (0x{bits:x8}) decoded as {d.Op}");
        Assert.Equal((bits & 3) == 3 ? 4 : 2, d.Length);
    }

    [Fact]
    public void Fields_of_a_compressed_instruction_are_expanded()
    {
        var d = Decoder.Decode(0x0800); // c.addi4spn x8, sp, 16
        Assert.Equal(Op.Addi, d.Op);
        Assert.Equal(8, d.Rd);
        Assert.Equal(2, d.Rs1);
        Assert.Equal(16, d.Imm);

        d = Decoder.Decode(0xBFED);     // c.j -6
        Assert.Equal(Op.Jal, d.Op);
        Assert.Equal(-6, d.Imm);

        d = Decoder.Decode(0xFC75);     // c.bnez x8, -4
        Assert.Equal(Op.Bne, d.Op);
        Assert.Equal(8, d.Rs1);
        Assert.Equal(0, d.Rs2);
        Assert.Equal(-4, d.Imm);
    }

    [Fact]
    public void Fields_of_32_bit_formats_are_sign_extended()
    {
        Assert.Equal(-2048, Decoder.Decode(Asm.Addi(3, 1, -2048)).Imm);
        Assert.Equal(-2048, Decoder.Decode(Asm.Sw(2, 1, -2048)).Imm);
        Assert.Equal(-4096, Decoder.Decode(Asm.Beq(1, 2, -4096)).Imm);
        Assert.Equal(-(1 << 20), Decoder.Decode(Asm.Jal(1, -(1 << 20))).Imm);
        Assert.Equal(unchecked((int)0x8000_0000), Decoder.Decode(Asm.Lui(3, 0x80000)).Imm);
        Assert.Equal(4094, Decoder.Decode(Asm.Bne(1, 0, 4094)).Imm);
    }

    public static TheoryData<string, uint> IllegalToExecute => new()
    {
        { "c.lui x5, 0", 0x6281 },
        { "c.addiw x0", 0x2005 },
        { "OP funct7 0x02", Asm.R(Asm.OpReg, 3, 0, 1, 2, 0x02) },
        { "slliw imm[5]", Asm.I(Asm.OpImm32, 3, 1, 1, 0x21) },
        { "fadd.s rm 5", Asm.FaddS(3, 1, 2, 5) },
        { "custom-0", 0x0000_000B },
    };

    [Theory]
    [MemberData(nameof(IllegalToExecute))]
    public void Executing_a_reserved_encoding_traps_with_its_bits_in_mtval(string name, uint bits)
    {
        using var h = new TestHart();
        h.EnableFp();
        h.Write(TestHart.ProgramBase, Asm.Nop, bits, Asm.Halt);
        h.Run(10);

        bool compressed = (bits & 3) != 3;
        Assert.True(h.Pc == TestHart.MTrapHalt, $"{name} did not trap");
        h.AssertTrappedToM(TrapCause.IllegalInstruction, compressed ? bits & 0xFFFF : bits, TestHart.ProgramBase + 4);
    }
}
