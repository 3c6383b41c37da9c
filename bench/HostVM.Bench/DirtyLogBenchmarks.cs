using BenchmarkDotNet.Attributes;
using HostVM.Machine;
using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;

namespace HostVM.Bench;

/// <summary>
/// What the dirty-page log costs the interpreter, off and on, on two store-heavy M-mode loops:
/// <see cref="PageStores"/> (4 aligned sd per 8 instructions, walking 256 pages: the write-TLB fast
/// path, which the log leaves alone) and <see cref="CrossPageStores"/> (one sd across a page boundary
/// per 5 instructions: a store that always takes the slow path, where the log tests its field and, on,
/// marks two pages). With the log on, every iteration starts with a pass (the harts' write-TLB entries
/// dropped), as during a migration.
/// </summary>
[MemoryDiagnoser]
public class DirtyLogBenchmarks : IDisposable
{
    private const ulong RamBase = 0x8000_0000;
    private const ulong PageStoresCode = RamBase;
    private const ulong CrossPageStoresCode = RamBase + 0x1000;
    private const ulong DataBase = RamBase + 0x10_0000;
    private const ulong Instructions = 8_000_000;

    // add x31,x28,x7; sd x6,0(x31); sd x6,8(x31); sd x6,16(x31); sd x6,24(x31); add x28,x28,x29; and x28,x28,x30; j top
    private static readonly uint[] PageStoresLoop =
        [0x007e0fb3, 0x006fb023, 0x006fb423, 0x006fb823, 0x006fbc23, 0x01de0e33, 0x01ee7e33, 0xfe5ff06f];

    // add x31,x28,x7; sd x6,-4(x31); add x28,x28,x29; and x28,x28,x30; j top
    private static readonly uint[] CrossPageStoresLoop =
        [0x007e0fb3, 0xfe6fbe23, 0x01de0e33, 0x01ee7e33, 0xff1ff06f];

    private GuestRam _ram = null!;
    private Hart _hart = null!;
    private DirtyPageTracker _tracker = null!;
    private DirtyPageSet _set = null!;

    [Params(false, true)]
    public bool Log { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _ram = new GuestRam(16 * 1024 * 1024);
        var bus = new Bus(_ram);
        _hart = new Hart(0, bus, new CodeCache(_ram), new MachineClock());
        for (int i = 0; i < PageStoresLoop.Length; i++)
        {
            _ram.WriteUInt32(PageStoresCode + (ulong)(4 * i), PageStoresLoop[i]);
        }

        for (int i = 0; i < CrossPageStoresLoop.Length; i++)
        {
            _ram.WriteUInt32(CrossPageStoresCode + (ulong)(4 * i), CrossPageStoresLoop[i]);
        }

        _tracker = new DirtyPageTracker(_ram, [_hart]);
        _set = _tracker.NewSet();
        if (Log)
        {
            _tracker.Enable();
        }
    }

    [IterationSetup]
    public void Reset()
    {
        if (Log)
        {
            _tracker.CollectPass(_set);
        }

        _hart.SetX(6, 0x1122_3344_5566_7788);
        _hart.SetX(7, DataBase);
        _hart.SetX(28, 0);
        _hart.SetX(29, 0x1000);
        _hart.SetX(30, 0xF_FFFF); // 256 pages, 1 MiB
    }

    [Benchmark(OperationsPerInvoke = (int)Instructions)]
    public ulong PageStores()
    {
        _hart.State.Pc = PageStoresCode;
        return _hart.Run(Instructions);
    }

    [Benchmark(OperationsPerInvoke = (int)Instructions)]
    public ulong CrossPageStores()
    {
        _hart.State.Pc = CrossPageStoresCode;
        return _hart.Run(Instructions);
    }

    public void Dispose()
    {
        _hart.Dispose();
        _ram.Dispose();
        GC.SuppressFinalize(this);
    }
}
