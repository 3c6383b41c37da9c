namespace HostVM.Machine.Pacing;

/// <summary>
/// The arithmetic of a CPU cap, apart from any clock, so it can be tested without timing. A hart earns
/// CPU credit at cap% of the wall time that passes and spends it with the CPU time its thread really
/// used (time asleep in WFI is not CPU time, so an idle hart spends nothing). While it has credit it
/// runs, in slices that end about when the credit would run out at full speed; once the credit is
/// spent (or overdrawn: a slice ends only at a block boundary) it sleeps until one period's share is
/// back. Overdrafts and oversleeps are carried in the credit, so over any long interval the CPU used is
/// cap% of the wall time. An idle hart saves at most two periods' share, which bounds the burst it may
/// take when it wakes up. Not thread-safe: one pacer per hart, used on that hart's thread.
/// </summary>
public sealed class CpuPacer
{
    /// <summary>How often a capped busy hart alternates between running and sleeping, about.</summary>
    public static readonly TimeSpan DefaultPeriod = TimeSpan.FromMilliseconds(20);

    /// <summary>The shortest slice: running less than this costs more in bookkeeping than it is worth.</summary>
    public static readonly TimeSpan MinimumRun = TimeSpan.FromMilliseconds(0.5);

    private readonly long _period;
    private long _credit;
    private long _lastWall;
    private long _lastCpu;
    private bool _pacing;

    public CpuPacer()
        : this(DefaultPeriod)
    {
    }

    public CpuPacer(TimeSpan period)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(period, MinimumRun);
        Period = period;
        _period = period.Ticks;
    }

    public TimeSpan Period { get; }

    /// <summary>CPU time the hart may still use before it must sleep; negative when overdrawn. Zero while uncapped.</summary>
    public TimeSpan Credit => TimeSpan.FromTicks(_pacing ? _credit : 0);

    /// <summary>
    /// Decides what the hart does next, given the wall time and its thread's CPU time now (both from any
    /// fixed origin) and the cap: a percentage of one host core, 1 to 99; null or 100 means uncapped
    /// (the hart then runs one period at a time, so a new cap takes effect within a period).
    /// </summary>
    public PaceStep Next(TimeSpan wall, TimeSpan cpu, int? capPercent)
    {
        if (capPercent is not { } cap || cap >= 100)
        {
            _pacing = false;
            return PaceStep.RunFor(Period);
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(cap, 1, nameof(capPercent));
        long quota = _period * cap / 100;
        if (!_pacing)
        {
            _pacing = true;
            _credit = quota;
        }
        else
        {
            long earned = (wall.Ticks - _lastWall) * cap / 100;
            long spent = cpu.Ticks - _lastCpu;
            _credit = Math.Min(_credit + earned - spent, 2 * quota);
        }

        _lastWall = wall.Ticks;
        _lastCpu = cpu.Ticks;
        if (_credit <= 0)
        {
            // Asleep the hart spends nothing: after this long the credit is one period's share again.
            return PaceStep.SleepFor(TimeSpan.FromTicks((quota - _credit) * 100 / cap));
        }

        // Running flat out, credit falls at (100 - cap)% of wall time (it keeps being earned meanwhile).
        long run = _credit * 100 / (100 - cap);
        return PaceStep.RunFor(TimeSpan.FromTicks(Math.Clamp(run, MinimumRun.Ticks, _period)));
    }
}
