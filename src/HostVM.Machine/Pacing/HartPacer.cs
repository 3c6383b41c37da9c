using System.Diagnostics;

namespace HostVM.Machine.Pacing;

/// <summary>
/// One hart thread's pacing and accounting: asks its <see cref="CpuPacer"/> what to do next with the
/// thread's own CPU clock, and keeps the CPU and throttled time it has seen. <see cref="Next"/> and
/// <see cref="AddThrottled"/> run only on the hart's thread; the times can be read from any thread
/// (they are as of the hart's last slice, at most a period old while it runs).
/// </summary>
public sealed class HartPacer
{
    private readonly CpuPacer _pacer = new();
    private readonly long _origin = Stopwatch.GetTimestamp();
    private long _cpuTicks;
    private long _throttledTicks;

    public HartPacer(int hartId) => HartId = hartId;

    public int HartId { get; }

    /// <summary>Host CPU time the hart's thread has used (user and system).</summary>
    public TimeSpan CpuTime => TimeSpan.FromTicks(Volatile.Read(ref _cpuTicks));

    /// <summary>Wall time the hart has spent asleep because of the CPU cap.</summary>
    public TimeSpan ThrottledTime => TimeSpan.FromTicks(Volatile.Read(ref _throttledTicks));

    /// <summary>On the hart's thread, between slices: what to do next under <paramref name="capPercent"/>.</summary>
    internal PaceStep Next(int? capPercent)
    {
        var cpu = ThreadCpuClock.CurrentThread();
        Volatile.Write(ref _cpuTicks, cpu.Ticks);
        return _pacer.Next(Stopwatch.GetElapsedTime(_origin), cpu, capPercent);
    }

    internal void AddThrottled(TimeSpan slept) => Interlocked.Add(ref _throttledTicks, slept.Ticks);
}
