using System.Diagnostics;
using HostVM.Machine.Boot;
using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;
using HostVM.Machine.Pacing;
using HostVM.Machine.Virtio;

namespace HostVM.Machine;

/// <summary>
/// One RISC-V `virt` machine: RAM, harts (one host thread each), CLINT, PLIC, UART, power and RTC,
/// booted from firmware, a kernel or both. Start/Pause/Resume/Stop; <see cref="WaitForExit"/> tells how it ended.
/// </summary>
public sealed partial class VirtualMachine : IDisposable
{
    public const ulong ClintBase = 0x0200_0000;
    public const ulong PlicBase = 0x0C00_0000;
    public const ulong UartBase = 0x1000_0000;
    public const ulong PowerBase = 0x10_0000;
    public const ulong RtcBase = 0x10_1000;
    public const int UartIrq = 10;
    public const int RtcIrq = 11;

    private static readonly double StopwatchTicksPerTick = Stopwatch.Frequency / (double)TimeSpan.TicksPerSecond;

    private readonly Action<byte> _consoleOutput;
    private readonly List<Thread> _threads = [];
    private readonly ManualResetEventSlim _exited = new(false);
    private readonly object _runLock = new();
    private MachineExit? _exit;
    private bool _paused;
    private volatile int _cpuCap; // percent of a host core per hart; 0 = uncapped
    private int _cpuCapChanges;

    private VirtualMachine(MachineConfiguration configuration, Action<byte> consoleOutput, bool boot)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        _consoleOutput = consoleOutput;
        if (configuration.HartCount < 1 || configuration.HartCount > MachineConfiguration.MaxHarts)
        {
            throw new BootImageException($"--cpus {configuration.HartCount}: a machine has 1 to {MachineConfiguration.MaxHarts} harts.");
        }

        SetCpuCap(configuration.CpuCapPercent);
        Ram = new GuestRam(configuration.MemorySize);
        Bus = new Bus(Ram);
        Clock = new MachineClock();
        Code = new CodeCache(Ram, configuration.CodeCacheBytes);
        var harts = new List<Hart>();
        for (int i = 0; i < configuration.HartCount; i++)
        {
            var hart = new Hart(i, Bus, Code, Clock) { MaxSatpMode = configuration.MaxSatpMode };
            hart.FatalError = (h, message) => Finish(new MachineExit(MachineExitReason.GuestError, 3, $"hart {h.HartId}: {message}"));
            harts.Add(hart);
        }

        Harts = harts;
        DirtyPages = new DirtyPageTracker(Ram, harts);
        Pacers = [.. harts.Select(h => new HartPacer(h.HartId))];
        Clint = new Clint(harts, Clock);
        Plic = new Plic(harts);
        Uart = new Uart16550(Plic, UartIrq, consoleOutput);
        Power = new PowerDevice(OnPowerRequest);
        Rtc = new GoldfishRtc(Plic, RtcIrq);
        Bus.Map(ClintBase, Clint.Size, Clint);
        Bus.Map(PlicBase, Plic.Size, Plic);
        Bus.Map(UartBase, Uart16550.Size, Uart);
        Bus.Map(PowerBase, PowerDevice.Size, Power);
        Bus.Map(RtcBase, GoldfishRtc.Size, Rtc);

        if (configuration.VirtioDevices.Count > MachineConfiguration.MaxVirtioDevices)
        {
            throw new BootImageException($"{configuration.VirtioDevices.Count} virtio devices: the board has {MachineConfiguration.MaxVirtioDevices} virtio-mmio slots.");
        }

        Memory = new GuestMemory(Ram, Code);
        var transports = new List<MmioTransport>();
        var slots = new List<VirtioMmioSlot>();
        foreach (var device in configuration.VirtioDevices)
        {
            int n = slots.Count;
            var slot = new VirtioMmioSlot(VirtioMmioSlot.FirstBase + ((ulong)n * VirtioMmioSlot.Size), VirtioMmioSlot.FirstIrq + n);
            var transport = new MmioTransport(device, Memory, Plic, slot.Irq, configuration.VirtioLegacy);
            Bus.Map(slot.Base, VirtioMmioSlot.Size, transport);
            transports.Add(transport);
            slots.Add(slot);
        }

        VirtioTransports = transports;
        VirtioSlots = slots;

        Payload = boot ? BootLoader.Load(this, configuration) : null;

        // The payloads are in guest RAM now: keeping their bytes (MiBs for a kernel and initrd) would
        // hold them in host memory for the machine's whole life.
        Configuration = configuration with { Firmware = null, Kernel = null, Initrd = null };
    }

    /// <summary>Builds the board and loads its payload (firmware, kernel, initrd, device tree) into RAM: a machine to start.</summary>
    /// <exception cref="BootImageException">The configuration or a payload is not one this board can boot.</exception>
    public static VirtualMachine Boot(MachineConfiguration configuration, Action<byte> consoleOutput) => new(configuration, consoleOutput, boot: true);

    /// <summary>
    /// Builds the board without loading anything: RAM zeroed, harts at reset. For a restore, which puts saved RAM and
    /// device state into it before it starts; the configuration's payloads, if any, are ignored.
    /// </summary>
    public static VirtualMachine ForRestore(MachineConfiguration configuration, Action<byte> consoleOutput) => new(configuration, consoleOutput, boot: false);

    /// <summary>What the machine was built from, without the boot payloads (they were loaded into guest RAM and let go).</summary>
    public MachineConfiguration Configuration { get; }

    public GuestRam Ram { get; }

    public Bus Bus { get; }

    public MachineClock Clock { get; }

    public CodeCache Code { get; }

    public IReadOnlyList<Hart> Harts { get; }

    /// <summary>The dirty-page log and its passes (live migration, diff snapshots); off until enabled.</summary>
    public DirtyPageTracker DirtyPages { get; }

    public Clint Clint { get; }

    public Plic Plic { get; }

    public Uart16550 Uart { get; }

    public PowerDevice Power { get; }

    public GoldfishRtc Rtc { get; }

    /// <summary>Device access to guest RAM (checked, drops decoded code it overwrites).</summary>
    public GuestMemory Memory { get; }

    /// <summary>The virtio-mmio transports, in slot order (each holds its device).</summary>
    public IReadOnlyList<MmioTransport> VirtioTransports { get; }

    public IReadOnlyList<VirtioMmioSlot> VirtioSlots { get; }

    /// <summary>The first device of type <typeparamref name="T"/>, or null.</summary>
    public T? Device<T>()
        where T : VirtioDevice => VirtioTransports.Select(t => t.Device).OfType<T>().FirstOrDefault();

    /// <summary>Where the payload was placed and how the harts start; null for a machine built for a restore.</summary>
    public BootSummary? Payload { get; }

    /// <summary>How the machine ended, or null while it runs.</summary>
    public MachineExit? Exit => Volatile.Read(ref _exit);

    public ulong InstructionsRetired => Harts.Aggregate(0UL, (sum, h) => sum + h.InstructionsRetired);

    /// <summary>Each hart's pacing: the host CPU time its thread used and how long the CPU cap held it back.</summary>
    public IReadOnlyList<HartPacer> Pacers { get; }

    /// <summary>Host CPU time used by all hart threads together.</summary>
    public TimeSpan CpuTime => Pacers.Aggregate(TimeSpan.Zero, (sum, p) => sum + p.CpuTime);

    /// <summary>Wall time the harts together spent asleep because of the CPU cap.</summary>
    public TimeSpan CpuThrottledTime => Pacers.Aggregate(TimeSpan.Zero, (sum, p) => sum + p.ThrottledTime);

    /// <summary>The CPU cap in force: percent of one host core per hart, or null when uncapped.</summary>
    public int? CpuCapPercent => _cpuCap == 0 ? null : _cpuCap;

    /// <summary>
    /// Caps each hart at <paramref name="percent"/> of one host core (1 to 100; null or 100 = uncapped),
    /// while the machine runs or before it starts. A running hart takes the new cap at the end of its
    /// current slice (within <see cref="CpuPacer.DefaultPeriod"/>); one asleep under the old cap wakes now.
    /// </summary>
    public void SetCpuCap(int? percent)
    {
        if (!MachineConfiguration.IsValidCpuCap(percent))
        {
            throw new ArgumentOutOfRangeException(nameof(percent), percent, "A CPU cap is a percentage of one host core, 1 to 100 (or null for none).");
        }

        if (percent is < 100 && !ThreadCpuClock.IsSupported)
        {
            throw new PlatformNotSupportedException("A CPU cap needs per-thread CPU time (clock_gettime), which HostVM reads on Linux and macOS only.");
        }

        lock (_runLock)
        {
            _cpuCap = percent is null or 100 ? 0 : percent.Value;
            _cpuCapChanges++;
            Monitor.PulseAll(_runLock);
        }
    }

    /// <summary>Starts one host thread per hart.</summary>
    public void Start()
    {
        lock (_runLock)
        {
            if (_threads.Count > 0)
            {
                throw new InvalidOperationException("The machine is already started.");
            }

            foreach (var hart in Harts)
            {
                var pacer = Pacers[hart.HartId];
                var thread = new Thread(() => RunHart(hart, pacer))
                {
                    Name = $"hart{hart.HartId}",
                    IsBackground = true,
                };
                _threads.Add(thread);
            }

            foreach (var t in _threads)
            {
                t.Start();
            }
        }
    }

    /// <summary>
    /// A hart's thread: runs the hart in slices its pacer chooses, so that between slices it can pause,
    /// end, or sleep off what it used beyond the CPU cap.
    /// </summary>
    private void RunHart(Hart hart, HartPacer pacer)
    {
        try
        {
            while (Exit is null)
            {
                lock (_runLock)
                {
                    while (_paused && Exit is null)
                    {
                        WaitParked();
                    }
                }

                if (Exit is not null)
                {
                    break;
                }

                int cap = _cpuCap;
                var step = pacer.Next(cap == 0 ? null : cap);
                if (step.IsSleep)
                {
                    Throttle(pacer, step.Sleep);
                    continue;
                }

                hart.Run(untilTimestamp: Stopwatch.GetTimestamp() + (long)(step.Run.Ticks * StopwatchTicksPerTick));
            }
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A host bug must end this VM with a report, not take the process down silently.
            Finish(new MachineExit(MachineExitReason.GuestError, 3,
                $"hart {hart.HartId}: internal error at pc 0x{hart.Pc:x}: {e.GetType().Name}: {e.Message}"));
        }
    }

    /// <summary>
    /// On a hart's thread: sleeps off CPU use beyond the cap. A pause, the end of the machine or a new cap
    /// ends the sleep early; an interrupt for the hart does not: it is taken when the sleep ends, as when
    /// a host throttles a thread (a sleep lasts about one period, 20 ms; longer only at caps of a few percent).
    /// </summary>
    private void Throttle(HartPacer pacer, TimeSpan sleep)
    {
        long start = Stopwatch.GetTimestamp();
        lock (_runLock)
        {
            int changes = _cpuCapChanges;
            while (!_paused && Exit is null && _cpuCapChanges == changes)
            {
                var left = sleep - Stopwatch.GetElapsedTime(start);
                if (left <= TimeSpan.Zero)
                {
                    break;
                }

                // Whole milliseconds, rounded up: a zero wait would spin out the last fraction.
                Monitor.Wait(_runLock, (int)Math.Ceiling(left.TotalMilliseconds));
            }
        }

        pacer.AddThrottled(Stopwatch.GetElapsedTime(start));
    }

    /// <summary>
    /// Stops every hart at its next block boundary; they wait until <see cref="Resume"/>. Device threads
    /// finish the request in flight and take no more meanwhile, so the paused machine can be saved.
    /// </summary>
    public void Pause()
    {
        lock (_runLock)
        {
            _paused = true;
            Monitor.PulseAll(_runLock); // a hart asleep under the CPU cap goes to the pause instead
        }

        foreach (var h in Harts)
        {
            h.RequestStop();
        }

        QuiesceDevices();
    }

    public void Resume()
    {
        ResumeDevices();
        lock (_runLock)
        {
            _paused = false;
            Monitor.PulseAll(_runLock);
        }
    }

    /// <summary>Ends the machine from the host side.</summary>
    public void Stop(string reason) => Finish(new MachineExit(MachineExitReason.Stopped, 1, reason));

    /// <summary>Waits for the machine to end; null when <paramref name="timeout"/> passed first.</summary>
    public MachineExit? WaitForExit(TimeSpan timeout) => _exited.Wait(timeout) ? Exit : null;

    public MachineExit WaitForExit()
    {
        _exited.Wait();
        return Exit!;
    }

    /// <summary>Characters typed at the console: they arrive on the UART's receive side.</summary>
    public int SendConsoleInput(ReadOnlySpan<byte> data) => Uart.Receive(data);

    internal Action<byte> ConsoleOutput => _consoleOutput;

    internal void OnPowerRequest(PowerRequest request)
    {
        var exit = request.Action switch
        {
            PowerAction.PowerOff => new MachineExit(MachineExitReason.PowerOff, 0, "the guest powered off"),
            PowerAction.Reboot => new MachineExit(MachineExitReason.Reboot, 0, "the guest asked for a reboot"),
            _ => new MachineExit(MachineExitReason.Fail, request.ExitCode, $"the guest reported failure with code {request.ExitCode}"),
        };
        Finish(exit);
    }

    internal void OnTestExit(int code) =>
        Finish(code == 0
            ? new MachineExit(MachineExitReason.PowerOff, 0, "the test program passed")
            : new MachineExit(MachineExitReason.Fail, code, $"the test program failed (code {code})"));

    private void Finish(MachineExit exit)
    {
        if (Interlocked.CompareExchange(ref _exit, exit, null) is not null)
        {
            return;
        }

        foreach (var h in Harts)
        {
            h.RequestStop();
        }

        lock (_runLock)
        {
            Monitor.PulseAll(_runLock);
        }

        _exited.Set();
    }

    /// <summary>One line per hart: where it is and the last trap it took (for timeouts and crashes).</summary>
    public IEnumerable<string> DescribeHarts() => Harts.Select(h =>
        $"hart {h.HartId}: pc 0x{h.Pc:x16}, {h.Privilege} mode, {h.RunState}, {h.InstructionsRetired} instructions, last trap: "
        + (h.LastTrapCause == 0 && h.LastTrapValue == 0 ? "none" : $"{Hart.DescribeCause(h.LastTrapCause)} (tval 0x{h.LastTrapValue:x})")
        + $", mip 0x{h.PendingInterrupts:x}, mie 0x{h.State.Mie:x}");

    /// <summary>One line per virtio device: slot, type, status and, if it stopped, why.</summary>
    public IEnumerable<string> DescribeDevices() => VirtioTransports.Select((t, i) =>
        $"virtio{i} at 0x{VirtioSlots[i].Base:x} irq {t.Irq}: {t.Device.Type}, status 0x{t.Status:x}, interrupt status 0x{t.InterruptStatus:x}"
        + (t.Error is { } e ? $", needs reset: {e}" : string.Empty));

    /// <summary>One line per virtio device with what it has carried (for --stats).</summary>
    public IEnumerable<string> DescribeDeviceUsage() => VirtioTransports.Select((t, i) => $"virtio{i} " + t.Device switch
    {
        VirtioBlock b => $"disk {b.Backend.Identifier}: {b.Statistics.Reads} reads ({b.Statistics.BytesRead} bytes), "
            + $"{b.Statistics.Writes} writes ({b.Statistics.BytesWritten} bytes), {b.Statistics.Flushes} flushes, "
            + $"{b.Statistics.Errors} errors, {b.Limiter.Throttled} throttled",
        VirtioNet n => $"nic {n.Mac}: received {n.Statistics.ReceivedFrames} frames ({n.Statistics.ReceivedBytes} bytes, "
            + $"{n.Statistics.ReceiveDropped} dropped), sent {n.Statistics.SentFrames} frames ({n.Statistics.SentBytes} bytes, "
            + $"{n.Statistics.SendDropped} dropped)",
        VirtioRng r => $"rng: {r.BytesProvided} bytes",
        VirtioBalloon b => $"balloon: target {b.TargetPages} pages, actual {b.ActualPages} pages, {b.PagesReturned} pages returned",
        VirtioInput p => $"input: {p.PowerPresses} power presses ({p.EventsDelivered} events delivered, {p.PendingEvents} pending)",
        var d => d.Type.ToString(),
    });

    public void Dispose()
    {
        if (Exit is null)
        {
            Stop("disposed");
        }

        bool allStopped = true;
        foreach (var t in _threads)
        {
            allStopped &= t.Join(TimeSpan.FromSeconds(10));
        }

        Rtc.Dispose();
        foreach (var t in VirtioTransports)
        {
            t.Device.Dispose();
            allStopped &= t.Device.Stopped; // a device thread stuck in host I/O still holds pointers into RAM
        }

        if (!allStopped)
        {
            // A hart thread is stuck in a device call: leak its memory rather than free it under it.
            return;
        }

        foreach (var h in Harts)
        {
            h.Dispose();
        }

        Ram.Dispose();
        _exited.Dispose();
    }
}
