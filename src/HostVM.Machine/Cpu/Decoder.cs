namespace HostVM.Machine.Cpu;

/// <summary>
/// Turns instruction bits into a <see cref="DecodedInsn"/>. Compressed instructions expand to their
/// base equivalents. Anything reserved or unimplemented decodes to <see cref="Op.Illegal"/> with the
/// raw bits in <see cref="DecodedInsn.Imm"/> (for mtval/stval).
/// </summary>
public static class Decoder
{
    /// <summary>The instruction's length in bytes from its first halfword.</summary>
    public static int LengthOf(ushort firstHalf) => (firstHalf & 3) == 3 ? 4 : 2;

    /// <summary>Decodes one instruction. For a compressed one only the low 16 bits of <paramref name="bits"/> are used.</summary>
    public static DecodedInsn Decode(uint bits) =>
        (bits & 3) == 3 ? Decode32(bits) : Decode16((ushort)bits);

    /// <summary>True when the block must end after this operation (control flow, privilege or CSR effects).</summary>
    public static bool EndsBlock(Op op) => op switch
    {
        Op.Jal or Op.Jalr or Op.Beq or Op.Bne or Op.Blt or Op.Bge or Op.Bltu or Op.Bgeu => true,
        Op.Ecall or Op.Ebreak or Op.Mret or Op.Sret or Op.Wfi or Op.SfenceVma or Op.FenceI => true,
        Op.Csrrw or Op.Csrrs or Op.Csrrc or Op.Csrrwi or Op.Csrrsi or Op.Csrrci => true,
        Op.Illegal => true,
        _ => false,
    };

    private static byte Xd(uint r) => r == 0 ? HartState.ZeroSink : (byte)r;

    private static DecodedInsn Make(Op op, uint rd, uint rs1, uint rs2, long imm, int length, uint rs3 = 0, uint rm = 0) => new()
    {
        Op = op,
        Rd = (byte)rd,
        Rs1 = (byte)rs1,
        Rs2 = (byte)rs2,
        Rs3 = (byte)rs3,
        Imm = imm,
        Length = (byte)length,
        Rm = (byte)rm,
    };

    private static DecodedInsn Illegal(uint bits, int length) => Make(Op.Illegal, 0, 0, 0, bits, length);

    // Integer-destination form: rd = 0 goes to the sink register.
    private static DecodedInsn X(Op op, uint rd, uint rs1, uint rs2, long imm, int length = 4) =>
        Make(op, Xd(rd), rs1, rs2, imm, length);

    private static DecodedInsn Decode32(uint insn)
    {
        uint opcode = insn & 0x7f;
        uint rd = (insn >> 7) & 31;
        uint funct3 = (insn >> 12) & 7;
        uint rs1 = (insn >> 15) & 31;
        uint rs2 = (insn >> 20) & 31;
        uint funct7 = insn >> 25;
        long immI = (int)insn >> 20;
        long immS = ((long)((int)insn >> 25) << 5) + ((insn >> 7) & 31);

        switch (opcode)
        {
            case 0x37: return X(Op.Lui, rd, 0, 0, (int)(insn & 0xfffff000));
            case 0x17: return X(Op.Auipc, rd, 0, 0, (int)(insn & 0xfffff000));
            case 0x6f:
            {
                long imm = ((long)((int)insn >> 31) << 20) + (((insn >> 21) & 0x3ff) << 1 | ((insn >> 20) & 1) << 11 | ((insn >> 12) & 0xff) << 12);
                return X(Op.Jal, rd, 0, 0, imm);
            }

            case 0x67: return funct3 == 0 ? X(Op.Jalr, rd, rs1, 0, immI) : Illegal(insn, 4);
            case 0x63:
            {
                long imm = ((long)((int)insn >> 31) << 12) + (((insn >> 25) & 0x3f) << 5 | ((insn >> 8) & 0xf) << 1 | ((insn >> 7) & 1) << 11);
                Op op = funct3 switch
                {
                    0 => Op.Beq, 1 => Op.Bne, 4 => Op.Blt, 5 => Op.Bge, 6 => Op.Bltu, 7 => Op.Bgeu, _ => Op.Illegal,
                };
                return op == Op.Illegal ? Illegal(insn, 4) : Make(op, 0, rs1, rs2, imm, 4);
            }

            case 0x03:
            {
                Op op = funct3 switch
                {
                    0 => Op.Lb, 1 => Op.Lh, 2 => Op.Lw, 3 => Op.Ld, 4 => Op.Lbu, 5 => Op.Lhu, 6 => Op.Lwu, _ => Op.Illegal,
                };
                return op == Op.Illegal ? Illegal(insn, 4) : X(op, rd, rs1, 0, immI);
            }

            case 0x23:
            {
                Op op = funct3 switch { 0 => Op.Sb, 1 => Op.Sh, 2 => Op.Sw, 3 => Op.Sd, _ => Op.Illegal };
                return op == Op.Illegal ? Illegal(insn, 4) : Make(op, 0, rs1, rs2, immS, 4);
            }

            case 0x13:
            {
                uint shamt = (insn >> 20) & 63;
                uint funct6 = insn >> 26;
                return funct3 switch
                {
                    0 => X(Op.Addi, rd, rs1, 0, immI),
                    2 => X(Op.Slti, rd, rs1, 0, immI),
                    3 => X(Op.Sltiu, rd, rs1, 0, immI),
                    4 => X(Op.Xori, rd, rs1, 0, immI),
                    6 => X(Op.Ori, rd, rs1, 0, immI),
                    7 => X(Op.Andi, rd, rs1, 0, immI),
                    1 when funct6 == 0 => X(Op.Slli, rd, rs1, 0, shamt),
                    5 when funct6 == 0 => X(Op.Srli, rd, rs1, 0, shamt),
                    5 when funct6 == 0x10 => X(Op.Srai, rd, rs1, 0, shamt),
                    _ => Illegal(insn, 4),
                };
            }

            case 0x1b:
            {
                uint shamt = (insn >> 20) & 31;
                return funct3 switch
                {
                    0 => X(Op.Addiw, rd, rs1, 0, immI),
                    1 when funct7 == 0 => X(Op.Slliw, rd, rs1, 0, shamt),
                    5 when funct7 == 0 => X(Op.Srliw, rd, rs1, 0, shamt),
                    5 when funct7 == 0x20 => X(Op.Sraiw, rd, rs1, 0, shamt),
                    _ => Illegal(insn, 4),
                };
            }

            case 0x33:
            {
                Op op = (funct7, funct3) switch
                {
                    (0, 0) => Op.Add, (0x20, 0) => Op.Sub, (0, 1) => Op.Sll, (0, 2) => Op.Slt, (0, 3) => Op.Sltu,
                    (0, 4) => Op.Xor, (0, 5) => Op.Srl, (0x20, 5) => Op.Sra, (0, 6) => Op.Or, (0, 7) => Op.And,
                    (1, 0) => Op.Mul, (1, 1) => Op.Mulh, (1, 2) => Op.Mulhsu, (1, 3) => Op.Mulhu,
                    (1, 4) => Op.Div, (1, 5) => Op.Divu, (1, 6) => Op.Rem, (1, 7) => Op.Remu,
                    _ => Op.Illegal,
                };
                return op == Op.Illegal ? Illegal(insn, 4) : X(op, rd, rs1, rs2, 0);
            }

            case 0x3b:
            {
                Op op = (funct7, funct3) switch
                {
                    (0, 0) => Op.Addw, (0x20, 0) => Op.Subw, (0, 1) => Op.Sllw, (0, 5) => Op.Srlw, (0x20, 5) => Op.Sraw,
                    (1, 0) => Op.Mulw, (1, 4) => Op.Divw, (1, 5) => Op.Divuw, (1, 6) => Op.Remw, (1, 7) => Op.Remuw,
                    _ => Op.Illegal,
                };
                return op == Op.Illegal ? Illegal(insn, 4) : X(op, rd, rs1, rs2, 0);
            }

            case 0x0f:
                return funct3 switch
                {
                    0 => Make(Op.Fence, 0, 0, 0, 0, 4),
                    1 => Make(Op.FenceI, 0, 0, 0, 0, 4),
                    _ => Illegal(insn, 4),
                };

            case 0x73: return DecodeSystem(insn, rd, funct3, rs1, rs2, funct7);
            case 0x2f: return DecodeAmo(insn, rd, funct3, rs1, rs2);
            case 0x07:
                return funct3 switch
                {
                    2 => Make(Op.Flw, rd, rs1, 0, immI, 4),
                    3 => Make(Op.Fld, rd, rs1, 0, immI, 4),
                    _ => Illegal(insn, 4),
                };
            case 0x27:
                return funct3 switch
                {
                    2 => Make(Op.Fsw, 0, rs1, rs2, immS, 4),
                    3 => Make(Op.Fsd, 0, rs1, rs2, immS, 4),
                    _ => Illegal(insn, 4),
                };
            case 0x43:
            case 0x47:
            case 0x4b:
            case 0x4f:
            {
                uint fmt = (insn >> 25) & 3;
                if (fmt > 1 || funct3 == 5 || funct3 == 6)
                {
                    return Illegal(insn, 4);
                }

                int which = (int)(opcode - 0x43) >> 2;
                Op op = (Op)((int)(fmt == 0 ? Op.FmaddS : Op.FmaddD) + which);
                return Make(op, rd, rs1, rs2, 0, 4, insn >> 27, funct3);
            }

            case 0x53: return DecodeOpFp(insn, rd, funct3, rs1, rs2, funct7);
            default: return Illegal(insn, 4);
        }
    }

    private static DecodedInsn DecodeSystem(uint insn, uint rd, uint funct3, uint rs1, uint rs2, uint funct7)
    {
        if (funct3 == 0)
        {
            if (funct7 == 0x09 && rd == 0)
            {
                return Make(Op.SfenceVma, 0, rs1, rs2, 0, 4);
            }

            return insn switch
            {
                0x00000073 => Make(Op.Ecall, 0, 0, 0, 0, 4),
                0x00100073 => Make(Op.Ebreak, 0, 0, 0, 0, 4),
                0x30200073 => Make(Op.Mret, 0, 0, 0, 0, 4),
                0x10200073 => Make(Op.Sret, 0, 0, 0, 0, 4),
                0x10500073 => Make(Op.Wfi, 0, 0, 0, 0, 4),
                _ => Illegal(insn, 4),
            };
        }

        Op op = funct3 switch
        {
            1 => Op.Csrrw, 2 => Op.Csrrs, 3 => Op.Csrrc, 5 => Op.Csrrwi, 6 => Op.Csrrsi, 7 => Op.Csrrci, _ => Op.Illegal,
        };
        if (op == Op.Illegal)
        {
            return Illegal(insn, 4);
        }

        // Rs2 keeps the architectural rd (0 or not) because csrrw with rd = x0 must not read the CSR.
        // Imm holds the CSR number in its low 12 bits and the raw instruction above bit 32 (for mtval).
        var d = X(op, rd, rs1, 0, (long)(insn >> 20) | ((long)insn << 32));
        d.Rs2 = (byte)rd;
        return d;
    }

    private static DecodedInsn DecodeAmo(uint insn, uint rd, uint funct3, uint rs1, uint rs2)
    {
        if (funct3 != 2 && funct3 != 3)
        {
            return Illegal(insn, 4);
        }

        uint funct5 = insn >> 27;
        Op w = funct5 switch
        {
            0x02 when rs2 == 0 => Op.LrW,
            0x03 => Op.ScW,
            0x01 => Op.AmoswapW,
            0x00 => Op.AmoaddW,
            0x04 => Op.AmoxorW,
            0x0c => Op.AmoandW,
            0x08 => Op.AmoorW,
            0x10 => Op.AmominW,
            0x14 => Op.AmomaxW,
            0x18 => Op.AmominuW,
            0x1c => Op.AmomaxuW,
            _ => Op.Illegal,
        };
        if (w == Op.Illegal)
        {
            return Illegal(insn, 4);
        }

        Op op = funct3 == 2 ? w : w + (Op.LrD - Op.LrW);
        return X(op, rd, rs1, rs2, 0);
    }

    private static DecodedInsn DecodeOpFp(uint insn, uint rd, uint rm, uint rs1, uint rs2, uint funct7)
    {
        bool validRm = rm is < 5 or 7;
        DecodedInsn Fp(Op op) => validRm ? Make(op, rd, rs1, rs2, 0, 4, 0, rm) : Illegal(insn, 4);
        DecodedInsn Fx(Op op) => validRm ? Make(op, Xd(rd), rs1, rs2, 0, 4, 0, rm) : Illegal(insn, 4);

        switch (funct7)
        {
            case 0x00: return Fp(Op.FaddS);
            case 0x01: return Fp(Op.FaddD);
            case 0x04: return Fp(Op.FsubS);
            case 0x05: return Fp(Op.FsubD);
            case 0x08: return Fp(Op.FmulS);
            case 0x09: return Fp(Op.FmulD);
            case 0x0c: return Fp(Op.FdivS);
            case 0x0d: return Fp(Op.FdivD);
            case 0x2c: return rs2 == 0 ? Fp(Op.FsqrtS) : Illegal(insn, 4);
            case 0x2d: return rs2 == 0 ? Fp(Op.FsqrtD) : Illegal(insn, 4);
            case 0x10 when rm < 3: return Make((Op)((int)Op.FsgnjS + (int)rm), rd, rs1, rs2, 0, 4);
            case 0x11 when rm < 3: return Make((Op)((int)Op.FsgnjD + (int)rm), rd, rs1, rs2, 0, 4);
            case 0x14 when rm < 2: return Make(rm == 0 ? Op.FminS : Op.FmaxS, rd, rs1, rs2, 0, 4);
            case 0x15 when rm < 2: return Make(rm == 0 ? Op.FminD : Op.FmaxD, rd, rs1, rs2, 0, 4);
            case 0x20 when rs2 == 1: return Fp(Op.FcvtSD);
            case 0x21 when rs2 == 0: return Fp(Op.FcvtDS);
            case 0x60 when rs2 < 4: return Fx((Op)((int)Op.FcvtWS + (int)rs2));
            case 0x61 when rs2 < 4: return Fx((Op)((int)Op.FcvtWD + (int)rs2));
            case 0x68 when rs2 < 4: return Fp((Op)((int)Op.FcvtSW + (int)rs2));
            case 0x69 when rs2 < 4: return Fp((Op)((int)Op.FcvtDW + (int)rs2));
            case 0x70 when rs2 == 0 && rm == 0: return Make(Op.FmvXW, Xd(rd), rs1, 0, 0, 4);
            case 0x70 when rs2 == 0 && rm == 1: return Make(Op.FclassS, Xd(rd), rs1, 0, 0, 4);
            case 0x71 when rs2 == 0 && rm == 0: return Make(Op.FmvXD, Xd(rd), rs1, 0, 0, 4);
            case 0x71 when rs2 == 0 && rm == 1: return Make(Op.FclassD, Xd(rd), rs1, 0, 0, 4);
            case 0x78 when rs2 == 0 && rm == 0: return Make(Op.FmvWX, rd, rs1, 0, 0, 4);
            case 0x79 when rs2 == 0 && rm == 0: return Make(Op.FmvDX, rd, rs1, 0, 0, 4);
            case 0x50 when rm < 3: return Make(rm switch { 2 => Op.FeqS, 1 => Op.FltS, _ => Op.FleS }, Xd(rd), rs1, rs2, 0, 4);
            case 0x51 when rm < 3: return Make(rm switch { 2 => Op.FeqD, 1 => Op.FltD, _ => Op.FleD }, Xd(rd), rs1, rs2, 0, 4);
            default: return Illegal(insn, 4);
        }
    }

    private static long SignExtend(uint value, int bits) => (long)((ulong)value << (64 - bits)) >> (64 - bits);

    private static DecodedInsn Decode16(ushort c)
    {
        uint i = c;
        uint quadrant = i & 3;
        uint funct3 = i >> 13;
        uint rdFull = (i >> 7) & 31;
        uint rs2Full = (i >> 2) & 31;
        uint rdP = 8 + ((i >> 2) & 7);   // rd' / rs2' in bits 4:2
        uint rs1P = 8 + ((i >> 7) & 7);  // rs1' / rd' in bits 9:7
        long imm6 = SignExtend(((i >> 7) & 0x20) | ((i >> 2) & 0x1f), 6);
        uint shamt = ((i >> 7) & 0x20) | ((i >> 2) & 0x1f);
        uint ldImm = ((i >> 7) & 0x38) | ((i << 1) & 0xc0);
        uint lwImm = ((i >> 7) & 0x38) | ((i >> 4) & 4) | ((i << 1) & 0x40);

        if (i == 0)
        {
            return Illegal(i, 2);
        }

        switch (quadrant)
        {
            case 0:
                switch (funct3)
                {
                    case 0:
                    {
                        uint imm = ((i >> 7) & 0x30) | ((i >> 1) & 0x3c0) | ((i >> 4) & 0x4) | ((i >> 2) & 0x8);
                        return imm == 0 ? Illegal(i, 2) : X(Op.Addi, rdP, 2, 0, imm, 2);
                    }

                    case 1: return Make(Op.Fld, rdP, rs1P, 0, ldImm, 2);
                    case 2: return X(Op.Lw, rdP, rs1P, 0, lwImm, 2);
                    case 3: return X(Op.Ld, rdP, rs1P, 0, ldImm, 2);
                    case 5: return Make(Op.Fsd, 0, rs1P, rdP, ldImm, 2);
                    case 6: return Make(Op.Sw, 0, rs1P, rdP, lwImm, 2);
                    case 7: return Make(Op.Sd, 0, rs1P, rdP, ldImm, 2);
                    default: return Illegal(i, 2);
                }

            case 1:
                switch (funct3)
                {
                    case 0: return X(Op.Addi, rdFull, rdFull, 0, imm6, 2);
                    case 1: return rdFull == 0 ? Illegal(i, 2) : X(Op.Addiw, rdFull, rdFull, 0, imm6, 2);
                    case 2: return X(Op.Addi, rdFull, 0, 0, imm6, 2);
                    case 3:
                        if (rdFull == 2)
                        {
                            long imm = SignExtend(((i >> 3) & 0x200) | ((i >> 2) & 0x10) | ((i << 1) & 0x40) | ((i << 4) & 0x180) | ((i << 3) & 0x20), 10);
                            return imm == 0 ? Illegal(i, 2) : X(Op.Addi, 2, 2, 0, imm, 2);
                        }
                        else
                        {
                            long imm = SignExtend(((i << 5) & 0x20000) | ((i << 10) & 0x1f000), 18);
                            return imm == 0 ? Illegal(i, 2) : X(Op.Lui, rdFull, 0, 0, imm, 2);
                        }

                    case 4:
                        switch ((i >> 10) & 3)
                        {
                            case 0: return X(Op.Srli, rs1P, rs1P, 0, shamt, 2);
                            case 1: return X(Op.Srai, rs1P, rs1P, 0, shamt, 2);
                            case 2: return X(Op.Andi, rs1P, rs1P, 0, imm6, 2);
                            default:
                            {
                                uint sub = (i >> 5) & 3;
                                if ((i & 0x1000) == 0)
                                {
                                    Op op = sub switch { 0 => Op.Sub, 1 => Op.Xor, 2 => Op.Or, _ => Op.And };
                                    return X(op, rs1P, rs1P, rdP, 0, 2);
                                }

                                return sub switch
                                {
                                    0 => X(Op.Subw, rs1P, rs1P, rdP, 0, 2),
                                    1 => X(Op.Addw, rs1P, rs1P, rdP, 0, 2),
                                    _ => Illegal(i, 2),
                                };
                            }
                        }

                    case 5:
                    {
                        long imm = SignExtend(((i >> 1) & 0x800) | ((i >> 7) & 0x10) | ((i >> 1) & 0x300) | ((i << 2) & 0x400)
                            | ((i >> 1) & 0x40) | ((i << 1) & 0x80) | ((i >> 2) & 0xe) | ((i << 3) & 0x20), 12);
                        return X(Op.Jal, 0, 0, 0, imm, 2);
                    }

                    default:
                    {
                        long imm = SignExtend(((i >> 4) & 0x100) | ((i >> 7) & 0x18) | ((i << 1) & 0xc0) | ((i >> 2) & 0x6) | ((i << 3) & 0x20), 9);
                        return Make(funct3 == 6 ? Op.Beq : Op.Bne, 0, rs1P, 0, imm, 2);
                    }
                }

            default:
                switch (funct3)
                {
                    case 0: return X(Op.Slli, rdFull, rdFull, 0, shamt, 2);
                    case 1: return Make(Op.Fld, rdFull, 2, 0, ((i >> 7) & 0x20) | ((i >> 2) & 0x18) | ((i << 4) & 0x1c0), 2);
                    case 2: return rdFull == 0 ? Illegal(i, 2) : X(Op.Lw, rdFull, 2, 0, ((i >> 7) & 0x20) | ((i >> 2) & 0x1c) | ((i << 4) & 0xc0), 2);
                    case 3: return rdFull == 0 ? Illegal(i, 2) : X(Op.Ld, rdFull, 2, 0, ((i >> 7) & 0x20) | ((i >> 2) & 0x18) | ((i << 4) & 0x1c0), 2);
                    case 4:
                        if ((i & 0x1000) == 0)
                        {
                            if (rs2Full == 0)
                            {
                                return rdFull == 0 ? Illegal(i, 2) : X(Op.Jalr, 0, rdFull, 0, 0, 2);
                            }

                            return X(Op.Add, rdFull, 0, rs2Full, 0, 2);
                        }

                        if (rs2Full == 0)
                        {
                            return rdFull == 0 ? Make(Op.Ebreak, 0, 0, 0, 0, 2) : X(Op.Jalr, 1, rdFull, 0, 0, 2);
                        }

                        return X(Op.Add, rdFull, rdFull, rs2Full, 0, 2);
                    case 5: return Make(Op.Fsd, 0, 2, rs2Full, ((i >> 7) & 0x38) | ((i >> 1) & 0x1c0), 2);
                    case 6: return Make(Op.Sw, 0, 2, rs2Full, ((i >> 7) & 0x3c) | ((i >> 1) & 0xc0), 2);
                    default: return Make(Op.Sd, 0, 2, rs2Full, ((i >> 7) & 0x38) | ((i >> 1) & 0x1c0), 2);
                }
        }
    }
}
