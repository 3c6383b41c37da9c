using System.Runtime;
using HostVM.Machine.Cpu;

namespace HostVM.Machine;

/// <summary>
/// Gives back an idle guest's decoded code. Booting Linux decodes some 40,000 blocks (about 8 MiB of
/// host memory) that an idle guest never runs again, and a VMM whose guest idles allocates too little for
/// the GC to come by: without this they stay resident for the VM's life, which is half of what an idle
/// VMM holds. Every <see cref="Interval"/>, if the harts retired fewer than <see cref="IdleInstructions"/>
/// per second meanwhile (the guest idles, or is paused) and the cache holds more than
/// <see cref="TrimAboveBytes"/>, the cache is dropped (as a store to every code page would) and one
/// compacting collection returns the memory to the host. What the guest then runs is decoded again: a busy
/// guest is never trimmed, and an idle one re-decodes only its idle path.
/// </summary>
public sealed class IdleCodeTrimmer : IDisposable
{
    /// <summary>2 MIPS: an idle Linux guest retires far fewer; a busy one, hundreds of millions.</summary>
    public const ulong IdleInstructions = 2_000_000;

    /// <summary>1 MiB: more than an idle guest's working set, so an idle VM is trimmed once, not every time.</summary>
    public const long TrimAboveBytes = 1L << 20;

    private readonly CodeCache _code;
    private readonly Func<ulong> _instructionsRetired;
    private readonly Timer _timer;
    private readonly Lock _tick = new();
    private ulong _lastInstructions;
    private bool _disposed;

    public IdleCodeTrimmer(CodeCache code, Func<ulong> instructionsRetired, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(code);
        ArgumentNullException.ThrowIfNull(instructionsRetired);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(interval, TimeSpan.Zero);
        _code = code;
        _instructionsRetired = instructionsRetired;
        Interval = interval;
        _lastInstructions = instructionsRetired();
        _timer = new Timer(_ => Tick(), null, interval, interval);
    }

    /// <summary>For a VM: its code cache and its harts' retired-instruction count.</summary>
    public IdleCodeTrimmer(VirtualMachine vm, TimeSpan interval)
        : this(vm?.Code ?? throw new ArgumentNullException(nameof(vm)), () => vm.InstructionsRetired, interval)
    {
    }

    /// <summary>Ten seconds: an idle VM gives its boot's code back soon after its boot.</summary>
    public static TimeSpan DefaultInterval { get; } = TimeSpan.FromSeconds(10);

    public TimeSpan Interval { get; }

    /// <summary>Times the cache was dropped (a statistic).</summary>
    public int Trims { get; private set; }

    private void Tick()
    {
        lock (_tick)
        {
            if (_disposed)
            {
                return;
            }

            ulong now = _instructionsRetired();
            ulong ran = now - _lastInstructions;
            _lastInstructions = now;
            if (ran > IdleInstructions * (ulong)Math.Max(1, Interval.TotalSeconds) || _code.Bytes <= TrimAboveBytes)
            {
                return;
            }

            _code.Clear();
            Trims++;
            GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    public void Dispose()
    {
        lock (_tick)
        {
            _disposed = true;
        }

        _timer.Dispose();
    }
}
