using HostVM.Machine.Devices;

namespace HostVM.Machine.Tests.Devices;

/// <summary>A hart as the interrupt controllers see it: records line levels and mtimecmp.</summary>
internal sealed class FakeHart(int hartId) : IHartInterrupts
{
    private readonly bool[] _lines = new bool[16];

    public int HartId { get; } = hartId;

    public ulong TimerCompare { get; set; } = ulong.MaxValue;

    /// <summary>How many times a line was driven (to check that controllers only call on changes).</summary>
    public int Calls { get; private set; }

    public bool this[InterruptLine line] => _lines[(int)line];

    public void SetInterruptLine(InterruptLine line, bool level)
    {
        _lines[(int)line] = level;
        Calls++;
    }

    public static FakeHart[] Create(int count) => [.. Enumerable.Range(0, count).Select(i => new FakeHart(i))];
}
