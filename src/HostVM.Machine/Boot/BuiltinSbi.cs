using HostVM.Machine.Cpu;
using HostVM.Machine.Devices;
using HostVM.Machine.Memory;

namespace HostVM.Machine.Boot;

/// <summary>
/// A supervisor binary interface written in C#, for booting Linux with no firmware: it answers
/// S-mode ECALLs for Base, TIME, IPI, RFENCE, HSM, SRST, DBCN and the legacy console and timer
/// calls, and sets the harts up the way firmware would (delegation, counters, PMP).
/// </summary>
public sealed unsafe class BuiltinSbi : IEcallHandler
{
    public const long ExtLegacySetTimer = 0x00, ExtLegacyPutchar = 0x01, ExtLegacyGetchar = 0x02;
    public const long ExtLegacyClearIpi = 0x03, ExtLegacySendIpi = 0x04, ExtLegacyRemoteFenceI = 0x05;
    public const long ExtLegacyRemoteSfence = 0x06, ExtLegacyRemoteSfenceAsid = 0x07, ExtLegacyShutdown = 0x08;
    public const long ExtBase = 0x10, ExtTime = 0x54494D45, ExtIpi = 0x735049, ExtRfence = 0x52464E43;
    public const long ExtHsm = 0x48534D, ExtSrst = 0x53525354, ExtDbcn = 0x4442434E;

    public const long Success = 0, ErrFailed = -1, ErrNotSupported = -2, ErrInvalidParam = -3;
    public const long ErrInvalidAddress = -5, ErrAlreadyAvailable = -6;

    /// <summary>SBI implementation ID: not one of the registered ones ("HV" in ASCII).</summary>
    public const long ImplementationId = 0x4856;
    public const long SpecVersion = 2L << 24; // SBI 2.0

    private static readonly long[] Supported =
    [
        ExtBase, ExtTime, ExtIpi, ExtRfence, ExtHsm, ExtSrst, ExtDbcn,
        ExtLegacySetTimer, ExtLegacyPutchar, ExtLegacyGetchar, ExtLegacyClearIpi, ExtLegacySendIpi,
        ExtLegacyRemoteFenceI, ExtLegacyRemoteSfence, ExtLegacyRemoteSfenceAsid, ExtLegacyShutdown,
    ];

    private readonly IReadOnlyList<Hart> _harts;
    private readonly GuestRam _ram;
    private readonly Action<byte> _consoleOut;
    private readonly Func<int> _consoleIn;
    private readonly Action<PowerRequest> _power;

    public BuiltinSbi(IReadOnlyList<Hart> harts, GuestRam ram, Action<byte> consoleOut, Func<int> consoleIn, Action<PowerRequest> power)
    {
        _harts = harts;
        _ram = ram;
        _consoleOut = consoleOut;
        _consoleIn = consoleIn;
        _power = power;
    }

    /// <summary>
    /// Prepares every hart as firmware would, then starts the boot hart in S-mode at
    /// <paramref name="entry"/> with a0 = hartid and a1 = the device tree; the others wait for HSM.
    /// </summary>
    public void PrepareHarts(int bootHart, ulong entry, ulong deviceTree)
    {
        foreach (var hart in _harts)
        {
            hart.EcallHandler = this;
            hart.SupervisorTimerFromFirmware = true;
            ref var s = ref hart.State;
            s.Medeleg = Csr.MedelegWritable & ~(1UL << (int)TrapCause.EcallFromS);
            s.Mideleg = Csr.SupervisorInterrupts;
            s.Mcounteren = 0xFFFF_FFFF;

            // cycle, time and instret readable from U-mode too: a Linux without a PMU driver never sets
            // scounteren, and its vDSO reads time with rdtime (busybox ping died of SIGILL). OpenSBI gets the
            // same effect by emulating the read in M-mode; presetting the register needs no trap at all.
            s.Scounteren = 0x7;
            s.Mstatus |= 1UL << 13; // FS = initial, so the kernel may use the FPU
            hart.TryWriteCsr(Csr.PmpAddr0, (1UL << 54) - 1); // all of memory...
            hart.TryWriteCsr(Csr.PmpCfg0, 0x1F);             // ...NAPOT, read/write/execute
            hart.TryWriteCsr(Csr.Mie, Csr.SupervisorInterrupts);
            hart.SetPrivilege(PrivilegeMode.Supervisor);
            if (hart.HartId == bootHart)
            {
                s.Pc = entry;
                s.X[10] = (ulong)hart.HartId;
                s.X[11] = deviceTree;
            }
            else
            {
                hart.MarkStopped();
            }
        }
    }

    public bool HandleEcall(Hart hart)
    {
        long ext = (long)hart.GetX(17);
        long fid = (long)hart.GetX(16);
        ulong a0 = hart.GetX(10), a1 = hart.GetX(11), a2 = hart.GetX(12);

        if (ext <= ExtLegacyShutdown)
        {
            hart.SetX(10, (ulong)Legacy(hart, ext, a0));
            return true;
        }

        (long error, long value) = ext switch
        {
            ExtBase => Base(fid, a0),
            ExtTime when fid == 0 => SetTimer(hart, a0),
            ExtIpi when fid == 0 => SendIpi(a0, a1),
            ExtRfence => RemoteFence(hart, fid, a0, a1),
            ExtHsm => Hsm(hart, fid, a0, a1, a2),
            ExtSrst when fid == 0 => SystemReset(a0, a1),
            ExtDbcn => DebugConsole(fid, a0, a1, a2),
            _ => (ErrNotSupported, 0),
        };
        hart.SetX(10, (ulong)error);
        hart.SetX(11, (ulong)value);
        return true;
    }

    private long Legacy(Hart hart, long ext, ulong a0)
    {
        switch (ext)
        {
            case ExtLegacySetTimer: SetTimer(hart, a0); return 0;
            case ExtLegacyPutchar: _consoleOut((byte)a0); return 0;
            case ExtLegacyGetchar: return _consoleIn();
            case ExtLegacyClearIpi: hart.SetInterruptLine(InterruptLine.SupervisorSoftware, false); return 0;
            case ExtLegacySendIpi:
            case ExtLegacyRemoteFenceI:
            case ExtLegacyRemoteSfence:
            case ExtLegacyRemoteSfenceAsid:
            {
                // The legacy calls pass a pointer to the hart mask (a virtual address in S-mode).
                if (!hart.TryDebugRead(a0, out ulong mask))
                {
                    return ErrInvalidAddress;
                }

                return ext == ExtLegacySendIpi ? SendIpi(mask, 0).Error : RemoteFence(hart, 1, mask, 0).Error;
            }

            default:
                _power(new PowerRequest(PowerAction.PowerOff, 0));
                return 0;
        }
    }

    private static (long Error, long Value) Base(long fid, ulong a0) => fid switch
    {
        0 => (Success, SpecVersion),
        1 => (Success, ImplementationId),
        2 => (Success, 1),
        3 => (Success, Array.IndexOf(Supported, (long)a0) >= 0 ? 1 : 0),
        4 or 5 or 6 => (Success, 0),
        _ => (ErrNotSupported, 0),
    };

    private static (long, long) SetTimer(Hart hart, ulong deadline)
    {
        hart.SetSupervisorTimer(deadline);
        return (Success, 0);
    }

    private IEnumerable<Hart> Selected(ulong mask, ulong maskBase)
    {
        if (maskBase == ulong.MaxValue)
        {
            return _harts; // "all harts"
        }

        return _harts.Where(h => (ulong)h.HartId >= maskBase && (ulong)h.HartId - maskBase < 64
            && ((mask >> (int)((ulong)h.HartId - maskBase)) & 1) != 0);
    }

    /// <summary>SBI: every hart a mask names must exist (a base of all-ones means "all harts").</summary>
    private bool ValidMask(ulong mask, ulong maskBase)
    {
        if (maskBase == ulong.MaxValue)
        {
            return true;
        }

        for (int bit = 0; bit < 64; bit++)
        {
            if (((mask >> bit) & 1) != 0 && maskBase + (ulong)bit >= (ulong)_harts.Count)
            {
                return false;
            }
        }

        return true;
    }

    private (long Error, long Value) SendIpi(ulong mask, ulong maskBase)
    {
        if (!ValidMask(mask, maskBase))
        {
            return (ErrInvalidParam, 0);
        }

        foreach (var h in Selected(mask, maskBase))
        {
            h.SetInterruptLine(InterruptLine.SupervisorSoftware, true);
        }

        return (Success, 0);
    }

    private (long Error, long Value) RemoteFence(Hart caller, long fid, ulong mask, ulong maskBase)
    {
        if (fid > 6)
        {
            return (ErrNotSupported, 0);
        }

        if (!ValidMask(mask, maskBase))
        {
            return (ErrInvalidParam, 0);
        }

        if (fid == 0)
        {
            // FENCE.I: stores already dropped any decoded code they touched.
            return (Success, 0);
        }

        var targets = Selected(mask, maskBase).ToList();
        foreach (var h in targets)
        {
            if (h == caller)
            {
                h.FlushTlb();
            }
            else
            {
                h.RequestTlbFlush();
            }
        }

        // SBI says the fence is done when the call returns: wait for each running target to flush.
        foreach (var h in targets)
        {
            if (h != caller)
            {
                h.WaitForRemoteFlush(caller);
            }
        }

        return (Success, 0);
    }

    private (long Error, long Value) Hsm(Hart caller, long fid, ulong a0, ulong a1, ulong a2)
    {
        switch (fid)
        {
            case 0:
            {
                if (a0 >= (ulong)_harts.Count)
                {
                    return (ErrInvalidParam, 0);
                }

                if (!_ram.Contains(a1, 2))
                {
                    return (ErrInvalidAddress, 0);
                }

                return _harts[(int)a0].RequestStart(a1, a2, PrivilegeMode.Supervisor) ? (Success, 0) : (ErrAlreadyAvailable, 0);
            }

            case 1:
                caller.StopSelf();
                return (Success, 0);
            case 2:
                if (a0 >= (ulong)_harts.Count)
                {
                    return (ErrInvalidParam, 0);
                }

                return (Success, _harts[(int)a0].RunState == HartRunState.Started ? 0 : 1);
            case 3:
                if ((uint)a0 == 0)
                {
                    caller.SuspendRetentive();
                    return (Success, 0);
                }

                return (ErrNotSupported, 0);
            default:
                return (ErrNotSupported, 0);
        }
    }

    private (long Error, long Value) SystemReset(ulong type, ulong reason)
    {
        switch ((uint)type)
        {
            case 0:
                _power(reason == 1 ? new PowerRequest(PowerAction.Fail, 1) : new PowerRequest(PowerAction.PowerOff, 0));
                return (Success, 0);
            case 1:
            case 2:
                _power(new PowerRequest(PowerAction.Reboot, 0));
                return (Success, 0);
            default:
                return (ErrInvalidParam, 0);
        }
    }

    private (long Error, long Value) DebugConsole(long fid, ulong count, ulong addressLow, ulong addressHigh)
    {
        switch (fid)
        {
            case 0:
            case 1:
            {
                ulong address = addressLow; // RV64: the high half is zero
                if (addressHigh != 0 || !_ram.Contains(address, count))
                {
                    return (ErrInvalidParam, 0);
                }

                var span = _ram.GetSpan(address, (int)Math.Min(count, 1 << 20));
                if (fid == 0)
                {
                    foreach (byte b in span)
                    {
                        _consoleOut(b);
                    }

                    return (Success, span.Length);
                }

                int read = 0;
                while (read < span.Length)
                {
                    int c = _consoleIn();
                    if (c < 0)
                    {
                        break;
                    }

                    span[read++] = (byte)c;
                }

                _ram.DirtyPages.MarkRange(address, (ulong)read); // after the bytes, as a device's write

                return (Success, read);
            }

            case 2:
                _consoleOut((byte)count);
                return (Success, 0);
            default:
                return (ErrNotSupported, 0);
        }
    }
}
