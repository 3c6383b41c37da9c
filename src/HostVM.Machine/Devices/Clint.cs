using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// The SiFive core-local interruptor of QEMU's virt board: per-hart software interrupt (msip), per-hart
/// timer compare (mtimecmp) and the shared timer (mtime). mtimecmp is stored in the hart, which raises
/// MTIP itself; this device only forwards the register. Every register may be accessed in 1/2/4/8-byte
/// pieces (OpenSBI and 32-bit code write 64-bit registers as two 32-bit halves).
/// </summary>
public sealed class Clint : IMmioDevice, IPersistent<ClintState>
{
    public const ulong DefaultBase = 0x0200_0000;
    public const ulong Size = 0x1_0000;

    /// <summary>msip[hart]: 32 bits per hart, only bit 0 is writable; it drives MSIP.</summary>
    public const ulong MsipOffset = 0x0000;
    public const ulong MsipStride = 4;

    /// <summary>mtimecmp[hart]: 64 bits per hart.</summary>
    public const ulong MtimecmpOffset = 0x4000;
    public const ulong MtimecmpStride = 8;

    /// <summary>mtime: 64 bits, shared by all harts.</summary>
    public const ulong MtimeOffset = 0xBFF8;

    /// <summary>The layout leaves room for this many harts (mtimecmp runs into mtime after that).</summary>
    public const int MaxHarts = (int)((MtimeOffset - MtimecmpOffset) / MtimecmpStride);

    private readonly IReadOnlyList<IHartInterrupts> _harts;
    private readonly MachineClock _clock;
    private readonly Lock _lock = new();
    private ClintState _state;

    /// <param name="harts">The harts in hart-id order: harts[i] owns msip[i] and mtimecmp[i].</param>
    /// <param name="clock">The machine's time base, which mtime reads and writes.</param>
    public Clint(IReadOnlyList<IHartInterrupts> harts, MachineClock clock)
    {
        ArgumentNullException.ThrowIfNull(harts);
        ArgumentNullException.ThrowIfNull(clock);
        if (harts.Count == 0 || harts.Count > MaxHarts)
        {
            throw new ArgumentOutOfRangeException(nameof(harts), harts.Count, $"The CLINT serves 1 to {MaxHarts} harts.");
        }

        _harts = harts;
        _clock = clock;
        _state = new ClintState(new bool[harts.Count]);
    }

    public ulong Read(ulong offset, int size)
    {
        lock (_lock)
        {
            ulong result = 0;
            for (int done = 0; done < size;)
            {
                var (register, byteInRegister, pieceSize) = Piece(offset, size, done);
                result |= RegisterBits.Extract(ReadRegister(register), byteInRegister, pieceSize) << (done * 8);
                done += pieceSize;
            }

            return result;
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        lock (_lock)
        {
            for (int done = 0; done < size;)
            {
                var (register, byteInRegister, pieceSize) = Piece(offset, size, done);
                if (register.Kind != RegisterKind.None)
                {
                    ulong merged = RegisterBits.Merge(ReadRegister(register), byteInRegister, pieceSize, value >> (done * 8));
                    WriteRegister(register, merged);
                }

                done += pieceSize;
            }
        }
    }

    public ClintState SaveState()
    {
        lock (_lock)
        {
            return _state.DeepCopy();
        }
    }

    /// <summary>Restores msip bits and re-drives each hart's MSIP line to match.</summary>
    public void RestoreState(ClintState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.SoftwarePending.Length != _harts.Count)
        {
            throw new ArgumentException(
                $"The snapshot's CLINT has {state.SoftwarePending.Length} harts but this machine has {_harts.Count}.", nameof(state));
        }

        lock (_lock)
        {
            _state = state.DeepCopy();
            for (int hart = 0; hart < _harts.Count; hart++)
            {
                _harts[hart].SetInterruptLine(InterruptLine.MachineSoftware, _state.SoftwarePending[hart]);
            }
        }
    }

    private enum RegisterKind
    {
        None,
        Msip,
        Mtimecmp,
        Mtime,
    }

    private readonly record struct Register(RegisterKind Kind, int Hart, ulong Start, int Width);

    private Register Decode(ulong offset)
    {
        if (offset >= MtimeOffset && offset < MtimeOffset + 8)
        {
            return new Register(RegisterKind.Mtime, 0, MtimeOffset, 8);
        }

        if (offset >= MtimecmpOffset && offset < MtimecmpOffset + ((ulong)_harts.Count * MtimecmpStride))
        {
            ulong hart = (offset - MtimecmpOffset) / MtimecmpStride;
            return new Register(RegisterKind.Mtimecmp, (int)hart, MtimecmpOffset + (hart * MtimecmpStride), 8);
        }

        if (offset < MsipOffset + ((ulong)_harts.Count * MsipStride))
        {
            ulong hart = (offset - MsipOffset) / MsipStride;
            return new Register(RegisterKind.Msip, (int)hart, MsipOffset + (hart * MsipStride), 4);
        }

        // Unmapped: treat each byte as its own zero register so pieces line up.
        return new Register(RegisterKind.None, 0, offset, 1);
    }

    /// <summary>
    /// The part of an access of <paramref name="size"/> bytes at <paramref name="offset"/> that starts
    /// <paramref name="done"/> bytes in: the register it falls in, where in it, and how many bytes.
    /// </summary>
    private (Register Register, int ByteInRegister, int PieceSize) Piece(ulong offset, int size, int done)
    {
        ulong at = offset + (ulong)done;
        Register register = Decode(at);
        int byteInRegister = (int)(at - register.Start);
        return (register, byteInRegister, Math.Min(register.Width - byteInRegister, size - done));
    }

    private ulong ReadRegister(Register register) => register.Kind switch
    {
        RegisterKind.Msip => _state.SoftwarePending[register.Hart] ? 1UL : 0UL,
        RegisterKind.Mtimecmp => _harts[register.Hart].TimerCompare,
        RegisterKind.Mtime => _clock.Now,
        _ => 0,
    };

    private void WriteRegister(Register register, ulong value)
    {
        switch (register.Kind)
        {
            case RegisterKind.Msip:
                bool pending = (value & 1) != 0;
                _state.SoftwarePending[register.Hart] = pending;
                _harts[register.Hart].SetInterruptLine(InterruptLine.MachineSoftware, pending);
                break;
            case RegisterKind.Mtimecmp:
                _harts[register.Hart].TimerCompare = value;
                break;
            case RegisterKind.Mtime:
                _clock.Set(value);
                break;
        }
    }
}
