using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Cpu;

/// <summary>
/// One RISC-V hart (RV64IMAFDC, M/S/U, Sv39/48/57). Runs on its own host thread through
/// <see cref="Run"/>; other threads talk to it only through the interrupt lines, the event word and
/// the sleep lock. Its architectural state lives in <see cref="State"/>.
/// </summary>
public sealed unsafe partial class Hart : IHartInterrupts, IPersistent<HartSnapshot>, IDisposable
{
    /// <summary>Blocks between timer polls: bounds how late a timer interrupt can be taken.</summary>
    private const int TimerPollInterval = 256;

    private readonly Bus _bus;
    private readonly GuestRam _ram;
    private readonly CodeCache _code;
    private readonly DirtyPageLog _dirty;
    private readonly MachineClock _clock;
    private readonly object _sleepLock = new();

    private HartState* _s;
    private int _events;
    private int _pollCountdown = TimerPollInterval;
    private long _sliceEnd = long.MaxValue;
    private volatile bool _sleeping;
    private volatile bool _stopRequested;
    // Bits of FlushAll / FlushWrites that other threads ask the hart to do at its next block boundary.
    private const int FlushAll = 1, FlushWrites = 2;
    private int _flushRequests;
    // True while the thread is inside Run, so executing guest code (or about to): a TLB request made
    // while it is false is served on entry to Run, before any instruction.
    private volatile bool _inRun;
    private volatile bool _stopSelfPending;
    private volatile HartRunState _runState;

    public Hart(int hartId, Bus bus, CodeCache code, MachineClock clock)
    {
        ArgumentNullException.ThrowIfNull(bus);
        HartId = hartId;
        _bus = bus;
        _ram = bus.Ram;
        _code = code;
        _dirty = _ram.DirtyPages;
        _clock = clock;
        _s = (HartState*)NativeMemory.AllocZeroed((nuint)sizeof(HartState));
        AllocateTlbs();
        Reset(_ram.BaseAddress);
        code.AddWriteProtector(DropWriteMappings);
    }

    public int HartId { get; }

    /// <summary>The architectural state. Only the hart's own thread may touch it while it runs.</summary>
    public ref HartState State => ref *_s;

    /// <summary>Address of the state struct, for code that addresses fields by offset.</summary>
    public HartState* StatePointer => _s;

    /// <summary>Handles S-mode ECALLs before they trap (the built-in SBI), or null.</summary>
    public IEcallHandler? EcallHandler { get; set; }

    /// <summary>When set, the hart raises STIP by itself from <see cref="HartState.STimeCmp"/> (built-in SBI timer).</summary>
    public bool SupervisorTimerFromFirmware { get; set; }

    public HartRunState RunState => _runState;

    /// <summary>Why the last <see cref="Run"/> returned, for reports: the last trap taken.</summary>
    public ulong LastTrapCause { get; private set; }

    public ulong LastTrapValue { get; private set; }

    /// <summary>Called when the guest does something no firmware can handle (a trap to M-mode with only the built-in SBI).</summary>
    public Action<Hart, string>? FatalError { get; set; }

    public ulong Pc
    {
        get => _s->Pc;
        set => _s->Pc = value;
    }

    public PrivilegeMode Privilege => _s->Priv;

    /// <summary>mip as the guest reads it (for reports).</summary>
    public ulong PendingInterrupts => EffectiveMip;

    public ulong InstructionsRetired => _s->Instret;

    public ulong GetX(int index) => index == 0 ? 0 : _s->X[index];

    public void SetX(int index, ulong value)
    {
        if (index != 0)
        {
            _s->X[index] = value;
        }
    }

    public ulong GetF(int index) => _s->F[index];

    public void SetF(int index, ulong value) => _s->F[index] = value;

    /// <summary>Resets to M-mode at <paramref name="pc"/> with everything else architecturally reset.</summary>
    public void Reset(ulong pc)
    {
        NativeMemory.Clear(_s, (nuint)sizeof(HartState));
        _s->Pc = pc;
        _s->Priv = PrivilegeMode.Machine;
        _s->Mstatus = Csr.StatusUxl | Csr.StatusSxl;
        _s->MTimeCmp = ulong.MaxValue;
        _s->STimeCmp = ulong.MaxValue;
        _s->ReservationAddress = ulong.MaxValue;
        FlushTlb();
        UpdateTranslationContext();
        _runState = HartRunState.Started;
    }

    /// <summary>Moves the hart to <paramref name="mode"/> (firmware set-up), re-selecting its TLBs.</summary>
    public void SetPrivilege(PrivilegeMode mode)
    {
        _s->Priv = mode;
        UpdateTranslationContext();
    }

    /// <summary>Puts the hart into the HSM stopped state (not started yet).</summary>
    public void MarkStopped() => _runState = HartRunState.Stopped;

    /// <summary>Starts a stopped hart at <paramref name="startAddress"/> in S-mode with a0 = hartid, a1 = opaque (SBI HSM).</summary>
    public bool RequestStart(ulong startAddress, ulong opaque, PrivilegeMode mode)
    {
        lock (_sleepLock)
        {
            if (_runState != HartRunState.Stopped)
            {
                return false;
            }

            _s->Pc = startAddress;
            _s->X[10] = (ulong)HartId;
            _s->X[11] = opaque;
            _s->Priv = mode;
            _s->Mstatus &= ~(Csr.StatusSie | Csr.StatusMie);
            _s->Satp = 0;
            FlushTlb();
            UpdateTranslationContext();
            _runState = HartRunState.Started;
            Monitor.PulseAll(_sleepLock);
        }

        Kick();
        return true;
    }

    /// <summary>
    /// The calling hart stops itself (SBI HSM hart_stop). It enters the stopped state at the next
    /// block boundary, so a start request cannot race with the ECALL's own completion.
    /// </summary>
    public void StopSelf()
    {
        _stopSelfPending = true;
        Kick();
    }

    /// <summary>SBI HSM retentive suspend: like WFI, whatever the interrupt enables say.</summary>
    public void SuspendRetentive() => WaitForInterrupt();

    /// <summary>Waits until this hart has done the TLB flush another hart asked for (SBI remote fences).</summary>
    public void WaitForRemoteFlush(Hart waiter)
    {
        ArgumentNullException.ThrowIfNull(waiter);
        var spinner = default(SpinWait);
        while (Volatile.Read(ref _flushRequests) != 0 && _runState == HartRunState.Started && !_stopRequested)
        {
            // Two harts fencing each other at once must not deadlock: serve our own request meanwhile.
            waiter.ServiceFlushRequests();
            spinner.SpinOnce();
        }
    }

    /// <summary>
    /// Asks the hart to drop its write-TLB entries at its next block boundary (a dirty-log pass); then
    /// <see cref="WaitForWriteTlbDrop"/>. Reads and fetches keep their entries.
    /// </summary>
    public void RequestWriteTlbDrop()
    {
        Interlocked.Or(ref _flushRequests, FlushWrites); // a full fence: ordered before the read of _inRun below
        Kick();
    }

    /// <summary>
    /// Returns once this hart can store through no write-TLB entry filled before the last
    /// <see cref="RequestWriteTlbDrop"/>, and every store it made through one is visible: it has served
    /// the request (between blocks), or it runs no guest code (paused, between slices, not started, HSM
    /// stopped) and serves it before it does. A hart asleep in WFI is woken to serve it. Any thread but
    /// the hart's own; it takes no lock, so it cannot deadlock with a hart that waits on something else.
    /// </summary>
    public void WaitForWriteTlbDrop()
    {
        var spinner = default(SpinWait);
        // Dekker pair with Run's entry: we set the request then read _inRun; Run sets _inRun then reads
        // the request, each with a full fence between. If we read false, Run will see the request.
        // HSM-stopped harts run no code; RequestStart flushes the whole TLB before they do.
        while ((Volatile.Read(ref _flushRequests) & FlushWrites) != 0 && _inRun && _runState == HartRunState.Started)
        {
            spinner.SpinOnce();
        }
    }

    /// <summary>
    /// On the hart's thread, never inside a block: serves the TLB requests of other threads. The request
    /// word is cleared before the flush, so one made during it is served next time, not lost; a waiter
    /// that sees it clear may go on at once, because this thread finishes the flush before it runs
    /// another instruction, and the exchange (a full fence) has published every store it made before.
    /// </summary>
    private void ServiceFlushRequests()
    {
        if (Volatile.Read(ref _flushRequests) == 0)
        {
            return;
        }

        int requests = Interlocked.Exchange(ref _flushRequests, 0);
        if ((requests & FlushAll) != 0)
        {
            FlushTlb();
        }
        else if ((requests & FlushWrites) != 0)
        {
            DropWriteTlb();
        }
    }

    /// <summary>
    /// Reads 8 bytes at a guest-virtual address as the current data privilege would, without
    /// raising a trap (for firmware calls that take pointers).
    /// </summary>
    public bool TryDebugRead(ulong address, out ulong value)
    {
        value = 0;
        if (!Translate(address, AccessKind.Read, _dataPriv, out ulong pa))
        {
            return false;
        }

        return _bus.TryRead(pa, 8, out value);
    }

    /// <summary>Asks <see cref="Run"/> to return at the next block boundary; wakes a sleeping hart.</summary>
    public void RequestStop()
    {
        _stopRequested = true;
        Kick();
    }

    // ---- IHartInterrupts ----

    public void SetInterruptLine(InterruptLine line, bool level)
    {
        ulong bit = 1UL << (int)line;
        if (line == InterruptLine.SupervisorExternal)
        {
            // Kept apart from the software-writable mip.SEIP: the two are OR-ed when read.
            if (Interlocked.Exchange(ref _s->SeipLine, level ? bit : 0) != (level ? bit : 0))
            {
                Kick();
            }

            return;
        }

        if (level)
        {
            if ((Volatile.Read(ref _s->Mip) & bit) != 0)
            {
                return;
            }

            Interlocked.Or(ref _s->Mip, bit);
        }
        else
        {
            if ((Volatile.Read(ref _s->Mip) & bit) == 0)
            {
                return;
            }

            Interlocked.And(ref _s->Mip, ~bit);
        }

        Kick();
    }

    public ulong TimerCompare
    {
        get => Volatile.Read(ref _s->MTimeCmp);
        set
        {
            Volatile.Write(ref _s->MTimeCmp, value);
            SetInterruptLine(InterruptLine.MachineTimer, _clock.Now >= value);
            Kick();
        }
    }

    /// <summary>Sets the supervisor timer deadline kept by the built-in SBI.</summary>
    public void SetSupervisorTimer(ulong deadline)
    {
        _s->STimeCmp = deadline;
        SetInterruptLine(InterruptLine.SupervisorTimer, _clock.Now >= deadline);
    }

    /// <summary>Asks the hart to flush its TLBs at its next block boundary (remote SFENCE.VMA).</summary>
    public void RequestTlbFlush()
    {
        Interlocked.Or(ref _flushRequests, FlushAll);
        Kick();
    }

    /// <summary>Makes the hart look at its event word soon, and wakes it if it sleeps.</summary>
    public void Kick()
    {
        Interlocked.Exchange(ref _events, 1);
        if (_sleeping)
        {
            lock (_sleepLock)
            {
                Monitor.PulseAll(_sleepLock);
            }
        }
    }

    // ---- run loop ----

    /// <summary>
    /// Runs until <see cref="RequestStop"/>, until <paramref name="maxInstructions"/> have retired
    /// (approximately: checked between blocks) or until the host's <see cref="Stopwatch"/> passes
    /// <paramref name="untilTimestamp"/> (checked when the timers are polled, every
    /// <see cref="TimerPollInterval"/> blocks, with the clock reading the timers take anyway; time
    /// asleep in WFI runs on until the hart wakes). Returns the number of instructions retired.
    /// </summary>
    public ulong Run(ulong maxInstructions = ulong.MaxValue, long untilTimestamp = long.MaxValue)
    {
        ulong start = _s->Instret;
        ulong limit = maxInstructions == ulong.MaxValue ? ulong.MaxValue : start + maxInstructions;
        _sliceEnd = untilTimestamp;
        _stopRequested = false;
        _inRun = true;
        Interlocked.MemoryBarrier(); // see WaitForWriteTlbDrop
        ServiceFlushRequests();
        try
        {
            RunBlocks(limit);
        }
        finally
        {
            _inRun = false; // a release: the stores of the slice are visible to whoever reads it false
        }

        return _s->Instret - start;
    }

    private void RunBlocks(ulong limit)
    {
        while (true)
        {
            if (Volatile.Read(ref _events) != 0 || --_pollCountdown <= 0)
            {
                if (!HandleEvents())
                {
                    break;
                }
            }

            if (_s->Instret >= limit)
            {
                break;
            }

            ExecuteNextBlock();
        }
    }

    /// <summary>Between blocks: stop requests, remote flushes, the timer, interrupts and the slice's end. False = leave Run.</summary>
    private bool HandleEvents()
    {
        Interlocked.Exchange(ref _events, 0);
        _pollCountdown = TimerPollInterval;
        if (_stopRequested)
        {
            return false;
        }

        ServiceFlushRequests();
        if (_stopSelfPending)
        {
            _stopSelfPending = false;
            _runState = HartRunState.Stopped;
        }

        if (_runState == HartRunState.Stopped)
        {
            WaitWhileStopped();
            return !_stopRequested;
        }

        long host = Stopwatch.GetTimestamp();
        PollTimers(_clock.At(host));
        TakePendingInterrupt();
        return host < _sliceEnd;
    }

    private void PollTimers(ulong now)
    {
        bool mtip = now >= Volatile.Read(ref _s->MTimeCmp);
        if (mtip != ((Volatile.Read(ref _s->Mip) & Csr.Mti) != 0))
        {
            SetInterruptLine(InterruptLine.MachineTimer, mtip);
        }

        if (SupervisorTimerFromFirmware)
        {
            bool stip = now >= _s->STimeCmp;
            if (stip != ((Volatile.Read(ref _s->Mip) & Csr.Sti) != 0))
            {
                SetInterruptLine(InterruptLine.SupervisorTimer, stip);
            }
        }
    }

    /// <summary>The highest-priority interrupt that is pending, enabled and not masked by privilege, or -1.</summary>
    private int SelectInterrupt()
    {
        ulong pending = EffectiveMip & _s->Mie;
        if (pending == 0)
        {
            return -1;
        }

        ulong toMachine = pending & ~_s->Mideleg;
        bool machineEnabled = _s->Priv < PrivilegeMode.Machine || (_s->Mstatus & Csr.StatusMie) != 0;
        if (machineEnabled && toMachine != 0)
        {
            return HighestPriority(toMachine);
        }

        ulong toSupervisor = pending & _s->Mideleg;
        bool supervisorEnabled = _s->Priv < PrivilegeMode.Supervisor
            || (_s->Priv == PrivilegeMode.Supervisor && (_s->Mstatus & Csr.StatusSie) != 0);
        if (supervisorEnabled && toSupervisor != 0)
        {
            return HighestPriority(toSupervisor);
        }

        return -1;
    }

    private static int HighestPriority(ulong bits)
    {
        // MEI, MSI, MTI, SEI, SSI, STI
        if ((bits & Csr.Mei) != 0) return 11;
        if ((bits & Csr.Msi) != 0) return 3;
        if ((bits & Csr.Mti) != 0) return 7;
        if ((bits & Csr.Sei) != 0) return 9;
        if ((bits & Csr.Ssi) != 0) return 1;
        return 5;
    }

    private void TakePendingInterrupt()
    {
        int cause = SelectInterrupt();
        if (cause >= 0)
        {
            EnterTrap((uint)cause | Csr.InterruptBit, 0, _s->Pc);
        }
    }

    /// <summary>WFI: sleeps until an interrupt is pending in mie (whatever the global enables) or a stop.</summary>
    private void WaitForInterrupt()
    {
        while (!_stopRequested)
        {
            PollTimers(_clock.Now);
            if ((EffectiveMip & _s->Mie) != 0 || Volatile.Read(ref _flushRequests) != 0)
            {
                return;
            }

            lock (_sleepLock)
            {
                _sleeping = true;
                // Store-load fence: a waker sets mip then reads _sleeping; we set _sleeping then read
                // mip. Without it the x86 store buffer lets both miss each other (a lost wake-up).
                Interlocked.MemoryBarrier();
                try
                {
                    if ((EffectiveMip & _s->Mie) != 0 || _stopRequested || Volatile.Read(ref _flushRequests) != 0)
                    {
                        return;
                    }

                    Monitor.Wait(_sleepLock, NextTimerWait());
                }
                finally
                {
                    _sleeping = false;
                }
            }
        }
    }

    private TimeSpan NextTimerWait()
    {
        ulong deadline = ulong.MaxValue;
        if ((_s->Mie & Csr.Mti) != 0)
        {
            deadline = Volatile.Read(ref _s->MTimeCmp);
        }

        if (SupervisorTimerFromFirmware && (_s->Mie & Csr.Sti) != 0)
        {
            deadline = Math.Min(deadline, _s->STimeCmp);
        }

        var wait = _clock.Until(deadline);
        // Never sleep unbounded: a lost wake-up then costs at most this long.
        return wait > TimeSpan.FromMilliseconds(500) ? TimeSpan.FromMilliseconds(500) : wait;
    }

    private void WaitWhileStopped()
    {
        lock (_sleepLock)
        {
            while (_runState == HartRunState.Stopped && !_stopRequested)
            {
                _sleeping = true;
                Monitor.Wait(_sleepLock, 500);
                _sleeping = false;
            }
        }
    }

    /// <summary>The hart's state. Only while it does not run (before Start, or paused).</summary>
    public HartSnapshot SaveState() =>
        new(*_s, _runState, _stopSelfPending, SupervisorTimerFromFirmware, LastTrapCause, LastTrapValue);

    /// <summary>
    /// Takes a saved state, only while the hart does not run. Translations and the jump cache are
    /// dropped (the caller clears the machine's decoded code, which RAM loaded behind its back makes stale).
    /// </summary>
    public void RestoreState(HartSnapshot state)
    {
        ArgumentNullException.ThrowIfNull(state);
        *_s = state.Registers;
        _runState = state.RunState;
        _stopSelfPending = state.StopSelfPending;
        SupervisorTimerFromFirmware = state.SupervisorTimerFromFirmware;
        LastTrapCause = state.LastTrapCause;
        LastTrapValue = state.LastTrapValue;
        Volatile.Write(ref _flushRequests, 0); // the TLBs are flushed below anyway
        UpdatePmpActive(); // flushes the TLBs and the jump cache
        UpdateTranslationContext();
        Kick(); // the run loop looks at interrupts and the run state before the first block
    }

    public void Dispose()
    {
        if (_s != null)
        {
            NativeMemory.Free(_s);
            _s = null;
            FreeTlbs();
        }
    }
}
