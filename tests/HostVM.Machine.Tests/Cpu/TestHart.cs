using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>
/// One hart on 1 MiB of RAM at 0x8000_0000, no devices unless a test maps one. Programs are written
/// into RAM, registers set from the host, and <see cref="Run"/> executes an instruction budget.
/// Programs end in <see cref="Asm.Halt"/> (jal x0, 0); traps go to halt loops at
/// <see cref="MTrapHalt"/> and <see cref="STrapHalt"/>, so after a run the pc says where it ended.
/// </summary>
internal sealed class TestHart : IDisposable
{
    public const ulong RamBase = 0x8000_0000;
    public const ulong RamSize = 1 << 20;

    /// <summary>Where test programs usually start (the reset pc).</summary>
    public const ulong ProgramBase = RamBase;

    /// <summary>A data area, its own pages, away from the code.</summary>
    public const ulong Data = RamBase + 0x1_0000;

    /// <summary>mtvec at reset: a halt loop.</summary>
    public const ulong MTrapHalt = RamBase + 0xF_E000;

    /// <summary>stvec at reset: a halt loop on another page than <see cref="MTrapHalt"/>.</summary>
    public const ulong STrapHalt = RamBase + 0xF_D000;

    /// <summary>Holds one mret that <see cref="StartIn"/> uses to drop to a lower privilege.</summary>
    public const ulong Trampoline = RamBase + 0xF_F000;

    public TestHart(bool openPmp = true, long codeCacheBytes = CodeCache.DefaultBudgetBytes)
    {
        Ram = new GuestRam(RamSize, RamBase);
        Bus = new Bus(Ram);
        Code = new CodeCache(Ram, codeCacheBytes);
        Clock = new MachineClock();
        Hart = new Hart(0, Bus, Code, Clock);

        Write(MTrapHalt, Asm.Halt);
        Write(STrapHalt, Asm.Halt);
        Write(Trampoline, Asm.Mret());
        WriteCsr(Csr.Mtvec, MTrapHalt);
        WriteCsr(Csr.Stvec, STrapHalt);
        if (openPmp)
        {
            // Firmware's usual last PMP entry (pmp15): NAPOT over everything, RWX. Without any
            // entry, S- and U-mode accesses fail (privileged spec, "Physical Memory Protection").
            WriteCsr(Csr.PmpAddr0 + 15, ulong.MaxValue);
            WriteCsr(Csr.PmpCfg0 + 2, 0x1FUL << 56);
        }
    }

    public GuestRam Ram { get; }

    public Bus Bus { get; }

    public CodeCache Code { get; }

    public MachineClock Clock { get; }

    public Hart Hart { get; }

    public ulong Pc => Hart.Pc;

    public PrivilegeMode Privilege => Hart.Privilege;

    public ulong Mcause => Hart.State.Mcause;

    public ulong Mtval => Hart.State.Mtval;

    public ulong Mepc => Hart.State.Mepc;

    public ulong Mstatus => ReadCsr(Csr.Mstatus);

    /// <summary>Writes instructions (or any words) and drops decoded code for those bytes.</summary>
    public void Write(ulong address, params uint[] words)
    {
        for (int i = 0; i < words.Length; i++)
        {
            Ram.WriteUInt32(address + (ulong)(4 * i), words[i]);
        }

        Code.InvalidateRange(address, (ulong)(4 * words.Length));
    }

    /// <summary>Writes a stream of halfwords: compressed instructions and <see cref="Asm.Halves"/> of 32-bit ones.</summary>
    public void WriteHalves(ulong address, params ushort[] halves)
    {
        var bytes = new byte[halves.Length * 2];
        for (int i = 0; i < halves.Length; i++)
        {
            bytes[2 * i] = (byte)halves[i];
            bytes[(2 * i) + 1] = (byte)(halves[i] >> 8);
        }

        Ram.Write(address, bytes);
        Code.InvalidateRange(address, (ulong)bytes.Length);
    }

    public void Poke64(ulong address, ulong value)
    {
        Ram.WriteUInt64(address, value);
        Code.InvalidateRange(address, 8);
    }

    public void Poke32(ulong address, uint value)
    {
        Ram.WriteUInt32(address, value);
        Code.InvalidateRange(address, 4);
    }

    public ulong Peek64(ulong address) => Ram.ReadUInt64(address);

    public uint Peek32(ulong address) => Ram.ReadUInt32(address);

    public byte Peek8(ulong address) => Ram.GetSpan(address, 1)[0];

    public ulong X(int index) => Hart.GetX(index);

    public void SetX(int index, ulong value) => Hart.SetX(index, value);

    public ulong F(int index) => Hart.GetF(index);

    public void SetF(int index, ulong value) => Hart.SetF(index, value);

    /// <summary>Reads a CSR through the hart, as its current privilege would; fails the test when it cannot.</summary>
    public ulong ReadCsr(int csr)
    {
        Assert.True(Hart.TryReadCsr(csr, out ulong value), $"CSR 0x{csr:x} not readable");
        return value;
    }

    public void WriteCsr(int csr, ulong value) => Assert.True(Hart.TryWriteCsr(csr, value), $"CSR 0x{csr:x} not writable");

    /// <summary>Sets mstatus bits from the host (a read-modify-write of the CSR).</summary>
    public void SetMstatus(ulong bits) => WriteCsr(Csr.Mstatus, Mstatus | bits);

    /// <summary>Turns the FPU on (mstatus.FS = Initial).</summary>
    public void EnableFp() => WriteCsr(Csr.Mstatus, (Mstatus & ~Csr.StatusFs) | (1UL << 13));

    /// <summary>
    /// Arranges for the next <see cref="Run"/> to enter <paramref name="mode"/> at <paramref name="entry"/>:
    /// mepc and mstatus.MPP are set and the pc points at an mret (which counts as one instruction).
    /// </summary>
    public void StartIn(PrivilegeMode mode, ulong entry)
    {
        ulong mstatus = Mstatus & ~Csr.StatusMpp;
        WriteCsr(Csr.Mstatus, mstatus | ((ulong)mode << Csr.StatusMppShift));
        WriteCsr(Csr.Mepc, entry);
        Hart.Pc = Trampoline;
    }

    /// <summary>Runs about <paramref name="budget"/> instructions (the hart checks between blocks).</summary>
    public ulong Run(ulong budget = 1000) => Hart.Run(budget);

    /// <summary>Asserts that the hart sits in the halt loop at <paramref name="pc"/>.</summary>
    public void AssertHaltedAt(ulong pc)
    {
        Assert.True(Hart.Pc == pc, $"pc 0x{Hart.Pc:x}, expected 0x{pc:x}; last trap {Hart.DescribeCause(Hart.LastTrapCause)} tval 0x{Hart.LastTrapValue:x}, mepc 0x{Mepc:x}");
        Assert.Equal(Asm.Halt, Peek32(pc));
    }

    /// <summary>Asserts that the last trap went to M-mode with this cause and mtval.</summary>
    public void AssertTrappedToM(ulong cause, ulong mtval, ulong mepc)
    {
        AssertHaltedAt(MTrapHalt);
        Assert.Equal(PrivilegeMode.Machine, Privilege);
        Assert.Equal(cause, Mcause);
        Assert.Equal(mtval, Mtval);
        Assert.Equal(mepc, Mepc);
    }

    public void AssertTrappedToM(TrapCause cause, ulong mtval, ulong mepc) => AssertTrappedToM((ulong)cause, mtval, mepc);

    public void Dispose()
    {
        Hart.Dispose();
        Ram.Dispose();
    }
}
