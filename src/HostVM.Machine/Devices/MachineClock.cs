using System.Diagnostics;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// The machine's time base (CLINT mtime, the <c>time</c> CSR): 10 MHz, from the host's monotonic clock.
/// <see cref="Offset"/> lets a restored snapshot continue the guest's timeline.
/// </summary>
public sealed class MachineClock : IPersistent<MachineClockState>
{
    public const ulong Frequency = 10_000_000;

    private static readonly double TicksPerHostTick = (double)Frequency / Stopwatch.Frequency;
    private readonly long _start = Stopwatch.GetTimestamp();

    /// <summary>Added to the elapsed time; mtime writes set it.</summary>
    public ulong Offset { get; set; }

    public ulong Now => At(Stopwatch.GetTimestamp());

    /// <summary>The machine time at a host <see cref="Stopwatch"/> timestamp (for a caller that has just read one).</summary>
    public ulong At(long hostTimestamp) => (ulong)((hostTimestamp - _start) * TicksPerHostTick) + Offset;

    /// <summary>Host time until <paramref name="deadline"/> (in machine ticks), zero when it has passed.</summary>
    public TimeSpan Until(ulong deadline)
    {
        ulong now = Now;
        if (deadline <= now)
        {
            return TimeSpan.Zero;
        }

        ulong ticks = deadline - now;
        // Cap far deadlines (mtimecmp = ~0 means "never") to keep the wait representable.
        return ticks > Frequency * 3600 ? TimeSpan.FromHours(1) : TimeSpan.FromTicks((long)(ticks * (TimeSpan.TicksPerSecond / (double)Frequency)));
    }

    /// <summary>Sets the current time as the guest sees it (an mtime write).</summary>
    public void Set(ulong value) => Offset = unchecked(Offset + (value - Now));

    public MachineClockState SaveState() => new(Now);

    public void RestoreState(MachineClockState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        Set(state.Time);
    }
}
