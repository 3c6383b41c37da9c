using static HostVM.Machine.Cpu.SoftFloat;

namespace HostVM.Machine.Cpu;

/// <summary>The F and D extensions: NaN-boxing, rounding-mode selection, fflags, mstatus.FS.</summary>
public sealed unsafe partial class Hart
{
    private const ulong BoxMask = 0xFFFF_FFFF_0000_0000;

    private uint ReadSingle(int r)
    {
        ulong v = _s->F[r];
        return (v & BoxMask) == BoxMask ? (uint)v : F32CanonicalNaN;
    }

    private void WriteSingle(int r, uint v)
    {
        _s->F[r] = BoxMask | v;
        MarkFpDirty();
    }

    private void WriteDouble(int r, ulong v)
    {
        _s->F[r] = v;
        MarkFpDirty();
    }

    private bool ExecuteFpMemory(ref DecodedInsn ins, ulong pc)
    {
        if (!FpEnabled)
        {
            IllegalAt(pc);
            return false;
        }

        ulong address = _s->X[ins.Rs1] + (ulong)ins.Imm;
        switch (ins.Op)
        {
            case Op.Flw:
                if (!Load(address, out uint w))
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                WriteSingle(ins.Rd, w);
                return true;
            case Op.Fld:
                if (!Load(address, out ulong d))
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                WriteDouble(ins.Rd, d);
                return true;
            case Op.Fsw:
                if (!Store(address, (uint)_s->F[ins.Rs2]))
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                return true;
            default:
                if (!Store(address, _s->F[ins.Rs2]))
                {
                    RaiseRecordedFault(pc);
                    return false;
                }

                return true;
        }
    }

    /// <summary>Runs an FP computation. False when it trapped (FS off, or a bad dynamic rounding mode).</summary>
    private bool ExecuteFp(ref DecodedInsn ins, ulong pc)
    {
        if (!FpEnabled)
        {
            IllegalAt(pc);
            return false;
        }

        int rmField = ins.Rm == 7 ? (int)((_s->Fcsr >> 5) & 7) : ins.Rm;
        if (rmField > 4 && UsesRoundingMode(ins.Op))
        {
            IllegalAt(pc);
            return false;
        }

        var rm = (RoundingMode)rmField;
        uint flags = 0;
        ulong* x = _s->X;
        ulong* f = _s->F;
        int rd = ins.Rd, rs1 = ins.Rs1, rs2 = ins.Rs2, rs3 = ins.Rs3;
        const uint Sign32 = 0x8000_0000;
        const ulong Sign64 = 0x8000_0000_0000_0000;

        switch (ins.Op)
        {
            case Op.FmaddS: WriteSingle(rd, F32MulAdd(ReadSingle(rs1), ReadSingle(rs2), ReadSingle(rs3), rm, ref flags)); break;
            case Op.FmsubS: WriteSingle(rd, F32MulAdd(ReadSingle(rs1), ReadSingle(rs2), ReadSingle(rs3) ^ Sign32, rm, ref flags)); break;
            case Op.FnmsubS: WriteSingle(rd, F32MulAdd(ReadSingle(rs1) ^ Sign32, ReadSingle(rs2), ReadSingle(rs3), rm, ref flags)); break;
            case Op.FnmaddS: WriteSingle(rd, F32MulAdd(ReadSingle(rs1) ^ Sign32, ReadSingle(rs2), ReadSingle(rs3) ^ Sign32, rm, ref flags)); break;
            case Op.FaddS: WriteSingle(rd, F32Add(ReadSingle(rs1), ReadSingle(rs2), rm, ref flags)); break;
            case Op.FsubS: WriteSingle(rd, F32Sub(ReadSingle(rs1), ReadSingle(rs2), rm, ref flags)); break;
            case Op.FmulS: WriteSingle(rd, F32Mul(ReadSingle(rs1), ReadSingle(rs2), rm, ref flags)); break;
            case Op.FdivS: WriteSingle(rd, F32Div(ReadSingle(rs1), ReadSingle(rs2), rm, ref flags)); break;
            case Op.FsqrtS: WriteSingle(rd, F32Sqrt(ReadSingle(rs1), rm, ref flags)); break;
            case Op.FsgnjS: WriteSingle(rd, (ReadSingle(rs1) & ~Sign32) | (ReadSingle(rs2) & Sign32)); break;
            case Op.FsgnjnS: WriteSingle(rd, (ReadSingle(rs1) & ~Sign32) | (~ReadSingle(rs2) & Sign32)); break;
            case Op.FsgnjxS: WriteSingle(rd, ReadSingle(rs1) ^ (ReadSingle(rs2) & Sign32)); break;
            case Op.FminS: WriteSingle(rd, F32Min(ReadSingle(rs1), ReadSingle(rs2), ref flags)); break;
            case Op.FmaxS: WriteSingle(rd, F32Max(ReadSingle(rs1), ReadSingle(rs2), ref flags)); break;
            case Op.FcvtWS: x[rd] = (ulong)(long)F32ToI32(ReadSingle(rs1), rm, ref flags); break;
            case Op.FcvtWuS: x[rd] = (ulong)(long)(int)F32ToU32(ReadSingle(rs1), rm, ref flags); break;
            case Op.FcvtLS: x[rd] = (ulong)F32ToI64(ReadSingle(rs1), rm, ref flags); break;
            case Op.FcvtLuS: x[rd] = F32ToU64(ReadSingle(rs1), rm, ref flags); break;
            case Op.FcvtSW: WriteSingle(rd, I32ToF32((int)x[rs1], rm, ref flags)); break;
            case Op.FcvtSWu: WriteSingle(rd, U32ToF32((uint)x[rs1], rm, ref flags)); break;
            case Op.FcvtSL: WriteSingle(rd, I64ToF32((long)x[rs1], rm, ref flags)); break;
            case Op.FcvtSLu: WriteSingle(rd, U64ToF32(x[rs1], rm, ref flags)); break;
            case Op.FmvXW: x[rd] = (ulong)(long)(int)(uint)f[rs1]; break;
            case Op.FmvWX: WriteSingle(rd, (uint)x[rs1]); break;
            case Op.FeqS: x[rd] = F32Eq(ReadSingle(rs1), ReadSingle(rs2), ref flags) ? 1UL : 0; break;
            case Op.FltS: x[rd] = F32Lt(ReadSingle(rs1), ReadSingle(rs2), ref flags) ? 1UL : 0; break;
            case Op.FleS: x[rd] = F32Le(ReadSingle(rs1), ReadSingle(rs2), ref flags) ? 1UL : 0; break;
            case Op.FclassS: x[rd] = F32Classify(ReadSingle(rs1)); break;

            case Op.FmaddD: WriteDouble(rd, F64MulAdd(f[rs1], f[rs2], f[rs3], rm, ref flags)); break;
            case Op.FmsubD: WriteDouble(rd, F64MulAdd(f[rs1], f[rs2], f[rs3] ^ Sign64, rm, ref flags)); break;
            case Op.FnmsubD: WriteDouble(rd, F64MulAdd(f[rs1] ^ Sign64, f[rs2], f[rs3], rm, ref flags)); break;
            case Op.FnmaddD: WriteDouble(rd, F64MulAdd(f[rs1] ^ Sign64, f[rs2], f[rs3] ^ Sign64, rm, ref flags)); break;
            case Op.FaddD: WriteDouble(rd, F64Add(f[rs1], f[rs2], rm, ref flags)); break;
            case Op.FsubD: WriteDouble(rd, F64Sub(f[rs1], f[rs2], rm, ref flags)); break;
            case Op.FmulD: WriteDouble(rd, F64Mul(f[rs1], f[rs2], rm, ref flags)); break;
            case Op.FdivD: WriteDouble(rd, F64Div(f[rs1], f[rs2], rm, ref flags)); break;
            case Op.FsqrtD: WriteDouble(rd, F64Sqrt(f[rs1], rm, ref flags)); break;
            case Op.FsgnjD: WriteDouble(rd, (f[rs1] & ~Sign64) | (f[rs2] & Sign64)); break;
            case Op.FsgnjnD: WriteDouble(rd, (f[rs1] & ~Sign64) | (~f[rs2] & Sign64)); break;
            case Op.FsgnjxD: WriteDouble(rd, f[rs1] ^ (f[rs2] & Sign64)); break;
            case Op.FminD: WriteDouble(rd, F64Min(f[rs1], f[rs2], ref flags)); break;
            case Op.FmaxD: WriteDouble(rd, F64Max(f[rs1], f[rs2], ref flags)); break;
            case Op.FcvtWD: x[rd] = (ulong)(long)F64ToI32(f[rs1], rm, ref flags); break;
            case Op.FcvtWuD: x[rd] = (ulong)(long)(int)F64ToU32(f[rs1], rm, ref flags); break;
            case Op.FcvtLD: x[rd] = (ulong)F64ToI64(f[rs1], rm, ref flags); break;
            case Op.FcvtLuD: x[rd] = F64ToU64(f[rs1], rm, ref flags); break;
            case Op.FcvtDW: WriteDouble(rd, I32ToF64((int)x[rs1], rm, ref flags)); break;
            case Op.FcvtDWu: WriteDouble(rd, U32ToF64((uint)x[rs1], rm, ref flags)); break;
            case Op.FcvtDL: WriteDouble(rd, I64ToF64((long)x[rs1], rm, ref flags)); break;
            case Op.FcvtDLu: WriteDouble(rd, U64ToF64(x[rs1], rm, ref flags)); break;
            case Op.FcvtSD: WriteSingle(rd, F64ToF32(f[rs1], rm, ref flags)); break;
            case Op.FcvtDS: WriteDouble(rd, F32ToF64(ReadSingle(rs1), ref flags)); break;
            case Op.FmvXD: x[rd] = f[rs1]; break;
            case Op.FmvDX: WriteDouble(rd, x[rs1]); break;
            case Op.FeqD: x[rd] = F64Eq(f[rs1], f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FltD: x[rd] = F64Lt(f[rs1], f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FleD: x[rd] = F64Le(f[rs1], f[rs2], ref flags) ? 1UL : 0; break;
            case Op.FclassD: x[rd] = F64Classify(f[rs1]); break;
        }

        if (flags != 0)
        {
            _s->Fcsr |= flags;
            MarkFpDirty();
        }

        return true;
    }

    private static bool UsesRoundingMode(Op op) => op switch
    {
        Op.FsgnjS or Op.FsgnjnS or Op.FsgnjxS or Op.FminS or Op.FmaxS or Op.FmvXW or Op.FmvWX
            or Op.FeqS or Op.FltS or Op.FleS or Op.FclassS => false,
        Op.FsgnjD or Op.FsgnjnD or Op.FsgnjxD or Op.FminD or Op.FmaxD or Op.FmvXD or Op.FmvDX
            or Op.FeqD or Op.FltD or Op.FleD or Op.FclassD => false,
        _ => true,
    };
}
