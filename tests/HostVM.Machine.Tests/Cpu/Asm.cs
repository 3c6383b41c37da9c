namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// An RV64GC encoder for the instructions the CPU tests need, written from the encoding tables of
/// the unprivileged specification ("RV32/64G Instruction Set Listings") and the privileged one
/// (trap-return and fence instructions). Registers are plain numbers (x0..x31, f0..f31).
/// Compressed instructions are written out by hand in the tests, with their fields in a comment.
/// </summary>
internal static class Asm
{
    // Major opcodes (inst[6:0]).
    public const uint OpLoad = 0x03, OpLoadFp = 0x07, OpMiscMem = 0x0F, OpImm = 0x13, OpAuipc = 0x17, OpImm32 = 0x1B;
    public const uint OpStore = 0x23, OpStoreFp = 0x27, OpAmo = 0x2F, OpReg = 0x33, OpLui = 0x37, OpReg32 = 0x3B;
    public const uint OpMadd = 0x43, OpMsub = 0x47, OpNmsub = 0x4B, OpNmadd = 0x4F, OpFp = 0x53;
    public const uint OpBranch = 0x63, OpJalr = 0x67, OpJal = 0x6F, OpSystem = 0x73;

    /// <summary>Rounding-mode field value meaning "use frm".</summary>
    public const int Dyn = 7;

    /// <summary>jal x0, 0: the loop every test program ends in.</summary>
    public const uint Halt = 0x0000_006F;

    public const uint Nop = 0x0000_0013;

    // ---- formats ----

    public static uint R(uint opcode, int rd, uint funct3, int rs1, int rs2, uint funct7) =>
        opcode | (Reg(rd) << 7) | (funct3 << 12) | (Reg(rs1) << 15) | (Reg(rs2) << 20) | (funct7 << 25);

    public static uint R4(uint opcode, int rd, uint funct3, int rs1, int rs2, uint fmt, int rs3) =>
        opcode | (Reg(rd) << 7) | (funct3 << 12) | (Reg(rs1) << 15) | (Reg(rs2) << 20) | (fmt << 25) | (Reg(rs3) << 27);

    public static uint I(uint opcode, int rd, uint funct3, int rs1, long imm)
    {
        CheckSigned(imm, 12);
        return opcode | (Reg(rd) << 7) | (funct3 << 12) | (Reg(rs1) << 15) | (((uint)imm & 0xFFF) << 20);
    }

    public static uint S(uint opcode, uint funct3, int rs1, int rs2, long imm)
    {
        CheckSigned(imm, 12);
        uint u = (uint)imm;
        return opcode | ((u & 0x1F) << 7) | (funct3 << 12) | (Reg(rs1) << 15) | (Reg(rs2) << 20) | (((u >> 5) & 0x7F) << 25);
    }

    /// <summary>B-type: imm[12|10:5] rs2 rs1 funct3 imm[4:1|11] opcode.</summary>
    public static uint B(uint funct3, int rs1, int rs2, long offset)
    {
        CheckSigned(offset, 13);
        CheckEven(offset);
        uint u = (uint)offset;
        return OpBranch | (((u >> 11) & 1) << 7) | (((u >> 1) & 0xF) << 8) | (funct3 << 12) | (Reg(rs1) << 15)
            | (Reg(rs2) << 20) | (((u >> 5) & 0x3F) << 25) | (((u >> 12) & 1) << 31);
    }

    /// <summary>U-type: <paramref name="upper20"/> goes to inst[31:12].</summary>
    public static uint U(uint opcode, int rd, uint upper20)
    {
        if (upper20 > 0xFFFFF)
        {
            throw new ArgumentOutOfRangeException(nameof(upper20));
        }

        return opcode | (Reg(rd) << 7) | (upper20 << 12);
    }

    /// <summary>J-type: imm[20|10:1|11|19:12] rd opcode.</summary>
    public static uint J(int rd, long offset)
    {
        CheckSigned(offset, 21);
        CheckEven(offset);
        uint u = (uint)offset;
        return OpJal | (Reg(rd) << 7) | (((u >> 12) & 0xFF) << 12) | (((u >> 11) & 1) << 20) | (((u >> 1) & 0x3FF) << 21)
            | (((u >> 20) & 1) << 31);
    }

    // ---- RV64I ----

    public static uint Lui(int rd, uint upper20) => U(OpLui, rd, upper20);

    public static uint Auipc(int rd, uint upper20) => U(OpAuipc, rd, upper20);

    public static uint Jal(int rd, long offset) => J(rd, offset);

    public static uint Jalr(int rd, int rs1, long imm) => I(OpJalr, rd, 0, rs1, imm);

    public static uint Beq(int rs1, int rs2, long offset) => B(0, rs1, rs2, offset);

    public static uint Bne(int rs1, int rs2, long offset) => B(1, rs1, rs2, offset);

    public static uint Blt(int rs1, int rs2, long offset) => B(4, rs1, rs2, offset);

    public static uint Bge(int rs1, int rs2, long offset) => B(5, rs1, rs2, offset);

    public static uint Bltu(int rs1, int rs2, long offset) => B(6, rs1, rs2, offset);

    public static uint Bgeu(int rs1, int rs2, long offset) => B(7, rs1, rs2, offset);

    public static uint Lb(int rd, int rs1, long imm) => I(OpLoad, rd, 0, rs1, imm);

    public static uint Lh(int rd, int rs1, long imm) => I(OpLoad, rd, 1, rs1, imm);

    public static uint Lw(int rd, int rs1, long imm) => I(OpLoad, rd, 2, rs1, imm);

    public static uint Ld(int rd, int rs1, long imm) => I(OpLoad, rd, 3, rs1, imm);

    public static uint Lbu(int rd, int rs1, long imm) => I(OpLoad, rd, 4, rs1, imm);

    public static uint Lhu(int rd, int rs1, long imm) => I(OpLoad, rd, 5, rs1, imm);

    public static uint Lwu(int rd, int rs1, long imm) => I(OpLoad, rd, 6, rs1, imm);

    public static uint Sb(int rs2, int rs1, long imm) => S(OpStore, 0, rs1, rs2, imm);

    public static uint Sh(int rs2, int rs1, long imm) => S(OpStore, 1, rs1, rs2, imm);

    public static uint Sw(int rs2, int rs1, long imm) => S(OpStore, 2, rs1, rs2, imm);

    public static uint Sd(int rs2, int rs1, long imm) => S(OpStore, 3, rs1, rs2, imm);

    public static uint Addi(int rd, int rs1, long imm) => I(OpImm, rd, 0, rs1, imm);

    public static uint Slti(int rd, int rs1, long imm) => I(OpImm, rd, 2, rs1, imm);

    public static uint Sltiu(int rd, int rs1, long imm) => I(OpImm, rd, 3, rs1, imm);

    public static uint Xori(int rd, int rs1, long imm) => I(OpImm, rd, 4, rs1, imm);

    public static uint Ori(int rd, int rs1, long imm) => I(OpImm, rd, 6, rs1, imm);

    public static uint Andi(int rd, int rs1, long imm) => I(OpImm, rd, 7, rs1, imm);

    /// <summary>RV64 shifts by immediate: imm[11:6] is funct6, imm[5:0] the shift amount.</summary>
    public static uint Slli(int rd, int rs1, int shamt) => I(OpImm, rd, 1, rs1, Shamt(shamt, 63));

    public static uint Srli(int rd, int rs1, int shamt) => I(OpImm, rd, 5, rs1, Shamt(shamt, 63));

    public static uint Srai(int rd, int rs1, int shamt) => I(OpImm, rd, 5, rs1, 0x400 | Shamt(shamt, 63));

    public static uint Add(int rd, int rs1, int rs2) => R(OpReg, rd, 0, rs1, rs2, 0);

    public static uint Sub(int rd, int rs1, int rs2) => R(OpReg, rd, 0, rs1, rs2, 0x20);

    public static uint Sll(int rd, int rs1, int rs2) => R(OpReg, rd, 1, rs1, rs2, 0);

    public static uint Slt(int rd, int rs1, int rs2) => R(OpReg, rd, 2, rs1, rs2, 0);

    public static uint Sltu(int rd, int rs1, int rs2) => R(OpReg, rd, 3, rs1, rs2, 0);

    public static uint Xor(int rd, int rs1, int rs2) => R(OpReg, rd, 4, rs1, rs2, 0);

    public static uint Srl(int rd, int rs1, int rs2) => R(OpReg, rd, 5, rs1, rs2, 0);

    public static uint Sra(int rd, int rs1, int rs2) => R(OpReg, rd, 5, rs1, rs2, 0x20);

    public static uint Or(int rd, int rs1, int rs2) => R(OpReg, rd, 6, rs1, rs2, 0);

    public static uint And(int rd, int rs1, int rs2) => R(OpReg, rd, 7, rs1, rs2, 0);

    public static uint Addiw(int rd, int rs1, long imm) => I(OpImm32, rd, 0, rs1, imm);

    public static uint Slliw(int rd, int rs1, int shamt) => I(OpImm32, rd, 1, rs1, Shamt(shamt, 31));

    public static uint Srliw(int rd, int rs1, int shamt) => I(OpImm32, rd, 5, rs1, Shamt(shamt, 31));

    public static uint Sraiw(int rd, int rs1, int shamt) => I(OpImm32, rd, 5, rs1, 0x400 | Shamt(shamt, 31));

    public static uint Addw(int rd, int rs1, int rs2) => R(OpReg32, rd, 0, rs1, rs2, 0);

    public static uint Subw(int rd, int rs1, int rs2) => R(OpReg32, rd, 0, rs1, rs2, 0x20);

    public static uint Sllw(int rd, int rs1, int rs2) => R(OpReg32, rd, 1, rs1, rs2, 0);

    public static uint Srlw(int rd, int rs1, int rs2) => R(OpReg32, rd, 5, rs1, rs2, 0);

    public static uint Sraw(int rd, int rs1, int rs2) => R(OpReg32, rd, 5, rs1, rs2, 0x20);

    public static uint Fence() => 0x0FF0_000F; // fence iorw, iorw

    public static uint FenceI() => 0x0000_100F;

    // ---- M ----

    public static uint Mul(int rd, int rs1, int rs2) => R(OpReg, rd, 0, rs1, rs2, 1);

    public static uint Mulh(int rd, int rs1, int rs2) => R(OpReg, rd, 1, rs1, rs2, 1);

    public static uint Mulhsu(int rd, int rs1, int rs2) => R(OpReg, rd, 2, rs1, rs2, 1);

    public static uint Mulhu(int rd, int rs1, int rs2) => R(OpReg, rd, 3, rs1, rs2, 1);

    public static uint Div(int rd, int rs1, int rs2) => R(OpReg, rd, 4, rs1, rs2, 1);

    public static uint Divu(int rd, int rs1, int rs2) => R(OpReg, rd, 5, rs1, rs2, 1);

    public static uint Rem(int rd, int rs1, int rs2) => R(OpReg, rd, 6, rs1, rs2, 1);

    public static uint Remu(int rd, int rs1, int rs2) => R(OpReg, rd, 7, rs1, rs2, 1);

    public static uint Mulw(int rd, int rs1, int rs2) => R(OpReg32, rd, 0, rs1, rs2, 1);

    public static uint Divw(int rd, int rs1, int rs2) => R(OpReg32, rd, 4, rs1, rs2, 1);

    public static uint Divuw(int rd, int rs1, int rs2) => R(OpReg32, rd, 5, rs1, rs2, 1);

    public static uint Remw(int rd, int rs1, int rs2) => R(OpReg32, rd, 6, rs1, rs2, 1);

    public static uint Remuw(int rd, int rs1, int rs2) => R(OpReg32, rd, 7, rs1, rs2, 1);

    // ---- system (privileged spec) ----

    public static uint Ecall() => 0x0000_0073;

    public static uint Ebreak() => 0x0010_0073;

    public static uint Sret() => 0x1020_0073;

    public static uint Mret() => 0x3020_0073;

    public static uint Wfi() => 0x1050_0073;

    public static uint SfenceVma(int rs1 = 0, int rs2 = 0) => R(OpSystem, 0, 0, rs1, rs2, 0x09);

    public static uint Csrrw(int rd, int csr, int rs1) => Csr(1, rd, csr, rs1);

    public static uint Csrrs(int rd, int csr, int rs1) => Csr(2, rd, csr, rs1);

    public static uint Csrrc(int rd, int csr, int rs1) => Csr(3, rd, csr, rs1);

    public static uint Csrrwi(int rd, int csr, int uimm) => Csr(5, rd, csr, Uimm5(uimm));

    public static uint Csrrsi(int rd, int csr, int uimm) => Csr(6, rd, csr, Uimm5(uimm));

    public static uint Csrrci(int rd, int csr, int uimm) => Csr(7, rd, csr, Uimm5(uimm));

    /// <summary>csrr rd, csr = csrrs rd, csr, x0.</summary>
    public static uint Csrr(int rd, int csr) => Csrrs(rd, csr, 0);

    /// <summary>csrw csr, rs1 = csrrw x0, csr, rs1.</summary>
    public static uint Csrw(int csr, int rs1) => Csrrw(0, csr, rs1);

    // ---- A: funct5 | aq | rl | rs2 | rs1 | funct3 (2 = .w, 3 = .d) | rd | 0101111 ----

    public const uint AmoAdd = 0x00, AmoSwap = 0x01, AmoLr = 0x02, AmoSc = 0x03, AmoXor = 0x04, AmoOr = 0x08, AmoAnd = 0x0C;
    public const uint AmoMin = 0x10, AmoMax = 0x14, AmoMinu = 0x18, AmoMaxu = 0x1C;

    public static uint Amo(uint funct5, bool doubleword, int rd, int rs1, int rs2, bool aq = false, bool rl = false) =>
        R(OpAmo, rd, doubleword ? 3u : 2u, rs1, rs2, (funct5 << 2) | (aq ? 2u : 0) | (rl ? 1u : 0));

    public static uint LrW(int rd, int rs1) => Amo(AmoLr, false, rd, rs1, 0);

    public static uint LrD(int rd, int rs1) => Amo(AmoLr, true, rd, rs1, 0);

    public static uint ScW(int rd, int rs1, int rs2) => Amo(AmoSc, false, rd, rs1, rs2);

    public static uint ScD(int rd, int rs1, int rs2) => Amo(AmoSc, true, rd, rs1, rs2);

    public static uint AmoaddW(int rd, int rs1, int rs2) => Amo(AmoAdd, false, rd, rs1, rs2);

    public static uint AmoaddD(int rd, int rs1, int rs2) => Amo(AmoAdd, true, rd, rs1, rs2);

    // ---- F / D ----

    public static uint Flw(int rd, int rs1, long imm) => I(OpLoadFp, rd, 2, rs1, imm);

    public static uint Fld(int rd, int rs1, long imm) => I(OpLoadFp, rd, 3, rs1, imm);

    public static uint Fsw(int rs2, int rs1, long imm) => S(OpStoreFp, 2, rs1, rs2, imm);

    public static uint Fsd(int rs2, int rs1, long imm) => S(OpStoreFp, 3, rs1, rs2, imm);

    /// <summary>An OP-FP instruction: funct7 | rs2 | rs1 | rm (funct3) | rd | 1010011.</summary>
    public static uint FpOp(uint funct7, int rd, int rs1, int rs2, int rm) => R(OpFp, rd, (uint)rm, rs1, rs2, funct7);

    public static uint FaddS(int rd, int rs1, int rs2, int rm = Dyn) => FpOp(0x00, rd, rs1, rs2, rm);

    public static uint FaddD(int rd, int rs1, int rs2, int rm = Dyn) => FpOp(0x01, rd, rs1, rs2, rm);

    public static uint FdivS(int rd, int rs1, int rs2, int rm = Dyn) => FpOp(0x0C, rd, rs1, rs2, rm);

    public static uint FdivD(int rd, int rs1, int rs2, int rm = Dyn) => FpOp(0x0D, rd, rs1, rs2, rm);

    public static uint FsgnjS(int rd, int rs1, int rs2) => FpOp(0x10, rd, rs1, rs2, 0);

    public static uint FsgnjD(int rd, int rs1, int rs2) => FpOp(0x11, rd, rs1, rs2, 0);

    public static uint FminS(int rd, int rs1, int rs2) => FpOp(0x14, rd, rs1, rs2, 0);

    public static uint FcvtDS(int rd, int rs1, int rm = Dyn) => FpOp(0x21, rd, rs1, 0, rm);

    public static uint FcvtWS(int rd, int rs1, int rm = Dyn) => FpOp(0x60, rd, rs1, 0, rm);

    public static uint FcvtWuS(int rd, int rs1, int rm = Dyn) => FpOp(0x60, rd, rs1, 1, rm);

    public static uint FcvtLS(int rd, int rs1, int rm = Dyn) => FpOp(0x60, rd, rs1, 2, rm);

    public static uint FcvtWD(int rd, int rs1, int rm = Dyn) => FpOp(0x61, rd, rs1, 0, rm);

    public static uint FcvtSW(int rd, int rs1, int rm = Dyn) => FpOp(0x68, rd, rs1, 0, rm);

    public static uint FmvXW(int rd, int rs1) => FpOp(0x70, rd, rs1, 0, 0);

    public static uint FclassS(int rd, int rs1) => FpOp(0x70, rd, rs1, 0, 1);

    public static uint FclassD(int rd, int rs1) => FpOp(0x71, rd, rs1, 0, 1);

    public static uint FmvWX(int rd, int rs1) => FpOp(0x78, rd, rs1, 0, 0);

    public static uint FmvDX(int rd, int rs1) => FpOp(0x79, rd, rs1, 0, 0);

    public static uint FeqS(int rd, int rs1, int rs2) => FpOp(0x50, rd, rs1, rs2, 2);

    /// <summary>fmadd.s/d: rs3 | fmt (0 = S, 1 = D) | rs2 | rs1 | rm | rd | 1000011.</summary>
    public static uint FmaddS(int rd, int rs1, int rs2, int rs3, int rm = Dyn) => R4(OpMadd, rd, (uint)rm, rs1, rs2, 0, rs3);

    // ---- helpers ----

    /// <summary>The two halfwords of a 32-bit instruction, low first (for mixing with compressed code).</summary>
    public static ushort[] Halves(uint instruction) => [(ushort)instruction, (ushort)(instruction >> 16)];

    private static uint Reg(int r) => r is >= 0 and < 32 ? (uint)r : throw new ArgumentOutOfRangeException(nameof(r), r, "register 0..31");

    private static uint Csr(uint funct3, int rd, int csr, int rs1)
    {
        if (csr is < 0 or > 0xFFF)
        {
            throw new ArgumentOutOfRangeException(nameof(csr));
        }

        return OpSystem | (Reg(rd) << 7) | (funct3 << 12) | (Reg(rs1) << 15) | ((uint)csr << 20);
    }

    private static int Uimm5(int uimm) => uimm is >= 0 and < 32 ? uimm : throw new ArgumentOutOfRangeException(nameof(uimm));

    private static long Shamt(int shamt, int max) => shamt >= 0 && shamt <= max ? shamt : throw new ArgumentOutOfRangeException(nameof(shamt));

    private static void CheckSigned(long value, int bits)
    {
        long limit = 1L << (bits - 1);
        if (value < -limit || value >= limit)
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, $"does not fit in {bits} signed bits");
        }
    }

    private static void CheckEven(long offset)
    {
        if ((offset & 1) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "branch offsets are multiples of 2");
        }
    }
}
