using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace HostVM.Machine.Cpu;

/// <summary>Fetching, decoding and running blocks: the interpreter's hot loop.</summary>
public sealed unsafe partial class Hart
{
    private const int JumpCacheSize = 4096;

    private readonly DecodedInsn[] _decodeScratch = new DecodedInsn[DecodedBlock.MaxInstructions];
    private readonly JumpCacheEntry[] _jumpCache = new JumpCacheEntry[JumpCacheSize];

    private void ExecuteNextBlock()
    {
        ulong pc = _s->Pc;
        ref JumpCacheEntry jump = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_jumpCache), (int)((pc >> 1) & (JumpCacheSize - 1)));
        if (jump.Pc == pc && jump.Context == _fetchContext && jump.Block is { Invalidated: false } cached)
        {
            Execute(cached, pc);
            return;
        }

        TlbEntry* e = _fetchTlb + ((pc >> 12) & TlbMask);
        byte* host;
        if (e->Tag == ((pc & ~0xFFFUL) | _tlbEpoch))
        {
            host = (byte*)(pc + e->Addend);
        }
        else
        {
            host = FetchSlow(pc);
            if (host == null)
            {
                RaiseRecordedFault(pc);
                return;
            }
        }

        ulong pa = (ulong)(host - _ram.Pointer) + _ram.BaseAddress;
        DecodedBlock? block = _code.Lookup(pa) ?? DecodeBlock(pc, host, pa);
        if (block is not null)
        {
            jump.Pc = pc;
            jump.Context = _fetchContext;
            jump.Block = block;
            Execute(block, pc);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private byte* FetchSlow(ulong pc)
    {
        if (!Translate(pc, AccessKind.Fetch, _s->Priv, out ulong pa))
        {
            return null;
        }

        if (!_bus.IsPlainRamPage(pa) || !PmpAllows(pa, 2, AccessKind.Fetch, _s->Priv))
        {
            return Fault(TrapCause.InstructionAccessFault, pc);
        }

        if (PmpCoversPage(pa, AccessKind.Fetch, _s->Priv))
        {
            FillTlb(_fetchTlb, pc, pa, AccessKind.Fetch);
        }

        return _ram.Pointer + (pa - _ram.BaseAddress);
    }

    /// <summary>Decodes and caches the block at <paramref name="pa"/>; null when it ran a page-straddling instruction instead.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private DecodedBlock? DecodeBlock(ulong pc, byte* host, ulong pa)
    {
        int n = 0;
        ulong offset = pa & 0xFFF;
        byte* p = host;
        while (n < DecodedBlock.MaxInstructions && offset + 2 <= 0x1000)
        {
            ushort low = *(ushort*)p;
            int length = Decoder.LengthOf(low);
            if (offset + (ulong)length > 0x1000)
            {
                break; // straddles the page end: runs on its own, uncached
            }

            uint bits = length == 4 ? Unsafe.ReadUnaligned<uint>(p) : low;
            var d = Decoder.Decode(bits);
            _decodeScratch[n++] = d;
            offset += (ulong)length;
            p += length;
            if (Decoder.EndsBlock(d.Op))
            {
                break;
            }
        }

        if (n == 0)
        {
            ExecuteStraddling(pc, host);
            return null;
        }

        var block = new DecodedBlock(_decodeScratch.AsSpan(0, n).ToArray(), n);
        _code.Insert(pa, block);
        return block;
    }

    /// <summary>A 32-bit instruction whose halves lie on two pages: translate both, run it once.</summary>
    private void ExecuteStraddling(ulong pc, byte* firstHalf)
    {
        ushort low = *(ushort*)firstHalf;
        byte* second = FetchSlow(pc + 2);
        if (second == null)
        {
            RaiseRecordedFault(pc);
            return;
        }

        uint bits = low | ((uint)*(ushort*)second << 16);
        var block = new DecodedBlock([Decoder.Decode(bits)], 1);
        Execute(block, pc);
    }

    private void RaiseRecordedFault(ulong pc) => EnterTrap(_faultCause, _faultValue, pc);

    private void Execute(DecodedBlock block, ulong pc)
    {
        ulong* x = _s->X;
        ref DecodedInsn ins = ref MemoryMarshal.GetArrayDataReference(block.Instructions);
        int count = block.Count;
        for (int k = 0; k < count; k++, ins = ref Unsafe.Add(ref ins, 1))
        {
            switch (ins.Op)
            {
                case Op.Lui: x[ins.Rd] = (ulong)ins.Imm; break;
                case Op.Auipc: x[ins.Rd] = pc + (ulong)ins.Imm; break;
                case Op.Jal:
                    x[ins.Rd] = pc + ins.Length;
                    pc += (ulong)ins.Imm;
                    goto EndBlock;
                case Op.Jalr:
                {
                    ulong target = (x[ins.Rs1] + (ulong)ins.Imm) & ~1UL;
                    x[ins.Rd] = pc + ins.Length;
                    pc = target;
                    goto EndBlock;
                }

                case Op.Beq: pc += x[ins.Rs1] == x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;
                case Op.Bne: pc += x[ins.Rs1] != x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;
                case Op.Blt: pc += (long)x[ins.Rs1] < (long)x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;
                case Op.Bge: pc += (long)x[ins.Rs1] >= (long)x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;
                case Op.Bltu: pc += x[ins.Rs1] < x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;
                case Op.Bgeu: pc += x[ins.Rs1] >= x[ins.Rs2] ? (ulong)ins.Imm : ins.Length; goto EndBlock;

                case Op.Lb:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out sbyte v)) goto Fault;
                    x[ins.Rd] = (ulong)v;
                    break;
                }

                case Op.Lh:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out short v)) goto Fault;
                    x[ins.Rd] = (ulong)v;
                    break;
                }

                case Op.Lw:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out int v)) goto Fault;
                    x[ins.Rd] = (ulong)v;
                    break;
                }

                case Op.Ld:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out ulong v)) goto Fault;
                    x[ins.Rd] = v;
                    break;
                }

                case Op.Lbu:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out byte v)) goto Fault;
                    x[ins.Rd] = v;
                    break;
                }

                case Op.Lhu:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out ushort v)) goto Fault;
                    x[ins.Rd] = v;
                    break;
                }

                case Op.Lwu:
                {
                    if (!Load(x[ins.Rs1] + (ulong)ins.Imm, out uint v)) goto Fault;
                    x[ins.Rd] = v;
                    break;
                }

                case Op.Sb: if (!Store(x[ins.Rs1] + (ulong)ins.Imm, (byte)x[ins.Rs2])) goto Fault; break;
                case Op.Sh: if (!Store(x[ins.Rs1] + (ulong)ins.Imm, (ushort)x[ins.Rs2])) goto Fault; break;
                case Op.Sw: if (!Store(x[ins.Rs1] + (ulong)ins.Imm, (uint)x[ins.Rs2])) goto Fault; break;
                case Op.Sd: if (!Store(x[ins.Rs1] + (ulong)ins.Imm, x[ins.Rs2])) goto Fault; break;

                case Op.Addi: x[ins.Rd] = x[ins.Rs1] + (ulong)ins.Imm; break;
                case Op.Slti: x[ins.Rd] = (long)x[ins.Rs1] < ins.Imm ? 1UL : 0; break;
                case Op.Sltiu: x[ins.Rd] = x[ins.Rs1] < (ulong)ins.Imm ? 1UL : 0; break;
                case Op.Xori: x[ins.Rd] = x[ins.Rs1] ^ (ulong)ins.Imm; break;
                case Op.Ori: x[ins.Rd] = x[ins.Rs1] | (ulong)ins.Imm; break;
                case Op.Andi: x[ins.Rd] = x[ins.Rs1] & (ulong)ins.Imm; break;
                case Op.Slli: x[ins.Rd] = x[ins.Rs1] << (int)ins.Imm; break;
                case Op.Srli: x[ins.Rd] = x[ins.Rs1] >> (int)ins.Imm; break;
                case Op.Srai: x[ins.Rd] = (ulong)((long)x[ins.Rs1] >> (int)ins.Imm); break;
                case Op.Add: x[ins.Rd] = x[ins.Rs1] + x[ins.Rs2]; break;
                case Op.Sub: x[ins.Rd] = x[ins.Rs1] - x[ins.Rs2]; break;
                case Op.Sll: x[ins.Rd] = x[ins.Rs1] << (int)(x[ins.Rs2] & 63); break;
                case Op.Slt: x[ins.Rd] = (long)x[ins.Rs1] < (long)x[ins.Rs2] ? 1UL : 0; break;
                case Op.Sltu: x[ins.Rd] = x[ins.Rs1] < x[ins.Rs2] ? 1UL : 0; break;
                case Op.Xor: x[ins.Rd] = x[ins.Rs1] ^ x[ins.Rs2]; break;
                case Op.Srl: x[ins.Rd] = x[ins.Rs1] >> (int)(x[ins.Rs2] & 63); break;
                case Op.Sra: x[ins.Rd] = (ulong)((long)x[ins.Rs1] >> (int)(x[ins.Rs2] & 63)); break;
                case Op.Or: x[ins.Rd] = x[ins.Rs1] | x[ins.Rs2]; break;
                case Op.And: x[ins.Rd] = x[ins.Rs1] & x[ins.Rs2]; break;
                case Op.Addiw: x[ins.Rd] = (ulong)(long)(int)(x[ins.Rs1] + (ulong)ins.Imm); break;
                case Op.Slliw: x[ins.Rd] = (ulong)(long)(int)((uint)x[ins.Rs1] << (int)ins.Imm); break;
                case Op.Srliw: x[ins.Rd] = (ulong)(long)(int)((uint)x[ins.Rs1] >> (int)ins.Imm); break;
                case Op.Sraiw: x[ins.Rd] = (ulong)(long)((int)x[ins.Rs1] >> (int)ins.Imm); break;
                case Op.Addw: x[ins.Rd] = (ulong)(long)(int)(x[ins.Rs1] + x[ins.Rs2]); break;
                case Op.Subw: x[ins.Rd] = (ulong)(long)(int)(x[ins.Rs1] - x[ins.Rs2]); break;
                case Op.Sllw: x[ins.Rd] = (ulong)(long)(int)((uint)x[ins.Rs1] << (int)(x[ins.Rs2] & 31)); break;
                case Op.Srlw: x[ins.Rd] = (ulong)(long)(int)((uint)x[ins.Rs1] >> (int)(x[ins.Rs2] & 31)); break;
                case Op.Sraw: x[ins.Rd] = (ulong)(long)((int)x[ins.Rs1] >> (int)(x[ins.Rs2] & 31)); break;

                case Op.Mul: x[ins.Rd] = x[ins.Rs1] * x[ins.Rs2]; break;
                case Op.Mulh: x[ins.Rd] = (ulong)Math.BigMul((long)x[ins.Rs1], (long)x[ins.Rs2], out _); break;
                case Op.Mulhu: x[ins.Rd] = Math.BigMul(x[ins.Rs1], x[ins.Rs2], out _); break;
                case Op.Mulhsu:
                {
                    ulong a = x[ins.Rs1], b = x[ins.Rs2];
                    ulong high = Math.BigMul(a, b, out _);
                    x[ins.Rd] = (long)a < 0 ? high - b : high;
                    break;
                }

                case Op.Div: x[ins.Rd] = (ulong)Arith.Div((long)x[ins.Rs1], (long)x[ins.Rs2]); break;
                case Op.Divu: x[ins.Rd] = x[ins.Rs2] == 0 ? ulong.MaxValue : x[ins.Rs1] / x[ins.Rs2]; break;
                case Op.Rem: x[ins.Rd] = (ulong)Arith.Rem((long)x[ins.Rs1], (long)x[ins.Rs2]); break;
                case Op.Remu: x[ins.Rd] = x[ins.Rs2] == 0 ? x[ins.Rs1] : x[ins.Rs1] % x[ins.Rs2]; break;
                case Op.Mulw: x[ins.Rd] = (ulong)(long)(int)(x[ins.Rs1] * x[ins.Rs2]); break;
                case Op.Divw: x[ins.Rd] = (ulong)(long)(int)Arith.Div((int)x[ins.Rs1], (int)x[ins.Rs2]); break;
                case Op.Divuw:
                {
                    uint a = (uint)x[ins.Rs1], b = (uint)x[ins.Rs2];
                    x[ins.Rd] = (ulong)(long)(int)(b == 0 ? uint.MaxValue : a / b);
                    break;
                }

                case Op.Remw: x[ins.Rd] = (ulong)(long)(int)Arith.Rem((int)x[ins.Rs1], (int)x[ins.Rs2]); break;
                case Op.Remuw:
                {
                    uint a = (uint)x[ins.Rs1], b = (uint)x[ins.Rs2];
                    x[ins.Rd] = (ulong)(long)(int)(b == 0 ? a : a % b);
                    break;
                }

                case Op.Fence: break;

                default:
                    if (ins.Op is Op.Flw or Op.Fld or Op.Fsw or Op.Fsd)
                    {
                        if (!ExecuteFpMemory(ref ins, pc)) goto Trapped;
                        break;
                    }

                    if (ins.Op is >= Op.FmaddS and <= Op.FclassD)
                    {
                        if (!ExecuteFp(ref ins, pc)) goto Trapped;
                        break;
                    }

                    if (ins.Op is >= Op.LrW and <= Op.AmomaxuD)
                    {
                        if (!ExecuteAtomic(ref ins, pc)) goto Trapped;
                        break;
                    }

                    _s->Instret += (ulong)k;
                    if (ins.Op is >= Op.Csrrw and <= Op.Csrrci)
                    {
                        if (ExecuteCsr(ref ins, pc))
                        {
                            _s->Pc = pc + ins.Length;
                            _s->Instret++;
                        }

                        return;
                    }

                    // System instructions, FENCE.I and illegal ones: the slow path decides.
                    ExecuteSystem(ref ins, pc);
                    return;
            }

            pc += ins.Length;
        }

        _s->Pc = pc;
        _s->Instret += (ulong)count;
        return;

    EndBlock:
        _s->Pc = pc;
        _s->Instret += (ulong)count;
        return;

    Fault:
        _s->Instret += (ulong)((long)Unsafe.ByteOffset(ref MemoryMarshal.GetArrayDataReference(block.Instructions), ref ins) / sizeof(DecodedInsn));
        RaiseRecordedFault(pc);
        return;

    Trapped:
        // The helper already entered the trap (pc and privilege are set).
        _s->Instret += (ulong)((long)Unsafe.ByteOffset(ref MemoryMarshal.GetArrayDataReference(block.Instructions), ref ins) / sizeof(DecodedInsn));
    }
}
