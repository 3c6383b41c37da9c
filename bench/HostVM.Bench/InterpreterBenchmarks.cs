using BenchmarkDotNet.Attributes;
using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;

namespace HostVM.Bench;

/// <summary>
/// The interpreter on a tight M-mode loop (ALU ops, a load, a store, a branch: 8 instructions per
/// iteration) and on the same loop in S-mode under Sv39, where every access goes through the soft TLB.
/// </summary>
[MemoryDiagnoser]
public class InterpreterBenchmarks : IDisposable
{
    private const ulong RamBase = 0x8000_0000;
    private const ulong Instructions = 8_000_000;

    // addi t1,t1,3; xor t3,t1,t0; sd t3,0(t2); ld t4,0(t2); add t1,t1,t4; srli t1,t1,1; addi t0,t0,-1; bnez t0,loop
    private static readonly uint[] Loop =
        [0x00330313, 0x00534e33, 0x01c3b023, 0x0003be83, 0x01d30333, 0x00135313, 0xfff28293, 0xfe0292e3];

    private GuestRam _ram = null!;
    private Hart _hart = null!;

    [Params(false, true)]
    public bool Paged { get; set; }

    [GlobalSetup]
    public unsafe void Setup()
    {
        _ram = new GuestRam(16 * 1024 * 1024);
        var bus = new Bus(_ram);
        _hart = new Hart(0, bus, new CodeCache(_ram), new MachineClock());
        for (int i = 0; i < Loop.Length; i++)
        {
            _ram.WriteUInt32(RamBase + (ulong)(4 * i), Loop[i]);
        }

        if (Paged)
        {
            // One Sv39 gigapage mapping RAM onto itself, S-mode, PMP open.
            const ulong root = RamBase + 0x10_0000;
            _ram.WriteUInt64(root + (2 * 8), ((RamBase >> 12) << 10) | 0xCF); // V R W X A D
            _hart.TryWriteCsr(Csr.PmpAddr0, (1UL << 54) - 1);
            _hart.TryWriteCsr(Csr.PmpCfg0, 0x1F);
            _hart.TryWriteCsr(Csr.Satp, (8UL << 60) | (root >> 12));
        }
    }

    [IterationSetup]
    public void Reset()
    {
        _hart.State.Pc = RamBase;
        _hart.SetPrivilege(Paged ? PrivilegeMode.Supervisor : PrivilegeMode.Machine);
        _hart.SetX(5, ulong.MaxValue); // loop counter: never reaches 0 within the budget
        _hart.SetX(7, RamBase + 0x8000);
    }

    [Benchmark(OperationsPerInvoke = (int)Instructions)]
    public ulong RunLoop() => _hart.Run(Instructions);

    public void Dispose()
    {
        _hart.Dispose();
        _ram.Dispose();
        GC.SuppressFinalize(this);
    }
}
