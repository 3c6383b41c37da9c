using HostVM.Machine.Memory;
using HostVM.Machine.State;

namespace HostVM.Machine.Devices;

/// <summary>
/// An NS16550A UART with byte-wide registers at consecutive offsets (reg-shift 0, io width 1), as on
/// QEMU's virt board. Transmitted bytes go straight to the output callback, so the transmitter is always
/// empty (LSR.THRE and LSR.TEMT stay set) and, as on a real 16550, a THR-empty interrupt is raised when
/// the THR empties (after each write) or when IER.ETBEI is switched on; reading IIR while it reports
/// that interrupt, or writing THR, clears it. Received bytes wait in a host-side buffer of
/// <see cref="ReceiveBufferSize"/> bytes; a non-empty buffer reports "received data available"
/// (the guest drains it while LSR.DR is set, so no character-timeout interrupt is needed).
/// Wider accesses touch only the register at the access's first byte.
/// </summary>
public sealed class Uart16550 : IMmioDevice, IPersistent<UartState>
{
    public const ulong DefaultBase = 0x1000_0000;
    public const ulong Size = 0x100;
    public const int DefaultIrq = 10;

    /// <summary>The input clock the device tree advertises (the classic 1.8432 MHz x 2).</summary>
    public const uint ClockFrequency = 3_686_400;

    public const int ReceiveBufferSize = 4096;

    // Register offsets. With LCR.DLAB set, offsets 0 and 1 are the divisor latch.
    public const ulong RbrThrDll = 0;
    public const ulong IerDlm = 1;
    public const ulong IirFcr = 2;
    public const ulong LcrRegister = 3;
    public const ulong McrRegister = 4;
    public const ulong LsrRegister = 5;
    public const ulong MsrRegister = 6;
    public const ulong ScrRegister = 7;

    public const byte IerReceivedData = 0x01;
    public const byte IerThrEmpty = 0x02;
    public const byte IerLineStatus = 0x04;
    public const byte IerModemStatus = 0x08;

    public const byte IirNoInterrupt = 0x01;
    public const byte IirModemStatus = 0x00;
    public const byte IirThrEmpty = 0x02;
    public const byte IirReceivedData = 0x04;
    public const byte IirLineStatus = 0x06;
    public const byte IirFifosEnabled = 0xC0;

    public const byte FcrEnableFifo = 0x01;
    public const byte FcrClearReceive = 0x02;
    public const byte FcrClearTransmit = 0x04;
    private const byte FcrStoredBits = 0xC9; // enable, DMA mode, trigger level

    public const byte LcrDlab = 0x80;

    public const byte McrDtr = 0x01;
    public const byte McrRts = 0x02;
    public const byte McrOut1 = 0x04;
    public const byte McrOut2 = 0x08;
    public const byte McrLoopback = 0x10;

    public const byte LsrDataReady = 0x01;
    public const byte LsrThrEmpty = 0x20;
    public const byte LsrTransmitterEmpty = 0x40;

    public const byte MsrCts = 0x10;
    public const byte MsrDsr = 0x20;
    public const byte MsrRi = 0x40;
    public const byte MsrDcd = 0x80;

    /// <summary>Modem status lines when not in loopback: a terminal is attached and ready.</summary>
    private const byte MsrConnected = MsrDcd | MsrDsr | MsrCts;

    private readonly IInterruptController _irqs;
    private readonly int _irq;
    private readonly Action<byte> _output;
    private readonly Lock _lock = new();
    private Registers _state = new();
    private bool _irqLevel;

    public Uart16550(IInterruptController irqs, int irq, Action<byte> output)
    {
        ArgumentNullException.ThrowIfNull(irqs);
        ArgumentNullException.ThrowIfNull(output);
        _irqs = irqs;
        _irq = irq;
        _output = output;
    }

    /// <summary>How many more bytes <see cref="Receive"/> would accept now.</summary>
    public int ReceiveSpace
    {
        get
        {
            lock (_lock)
            {
                return ReceiveBufferSize - _state.RxCount;
            }
        }
    }

    /// <summary>
    /// Queues bytes from the outside world (the console) for the guest to read. Returns how many were
    /// accepted; the rest did not fit in the receive buffer and should be offered again later.
    /// </summary>
    public int Receive(ReadOnlySpan<byte> data)
    {
        lock (_lock)
        {
            int accepted = Enqueue(data);
            UpdateIrq();
            return accepted;
        }
    }

    public ulong Read(ulong offset, int size)
    {
        lock (_lock)
        {
            var s = _state;
            bool dlab = (s.Lcr & LcrDlab) != 0;
            byte value;
            switch (offset)
            {
                case RbrThrDll:
                    value = dlab ? s.Dll : Dequeue();
                    break;
                case IerDlm:
                    value = dlab ? s.Dlm : s.Ier;
                    break;
                case IirFcr:
                    value = InterruptIdentification();
                    if ((value & 0x0F) == IirThrEmpty)
                    {
                        s.ThrEmptyInterrupt = false;
                    }

                    break;
                case LcrRegister:
                    value = s.Lcr;
                    break;
                case McrRegister:
                    value = s.Mcr;
                    break;
                case LsrRegister:
                    value = (byte)(LsrThrEmpty | LsrTransmitterEmpty | (s.RxCount > 0 ? LsrDataReady : 0));
                    break;
                case MsrRegister:
                    value = (byte)(ModemLines(s.Mcr) | s.MsrDelta);
                    s.MsrDelta = 0;
                    break;
                case ScrRegister:
                    value = s.Scr;
                    break;
                default:
                    return 0;
            }

            UpdateIrq();
            return value;
        }
    }

    public void Write(ulong offset, int size, ulong value)
    {
        lock (_lock)
        {
            var s = _state;
            bool dlab = (s.Lcr & LcrDlab) != 0;
            byte b = (byte)value;
            switch (offset)
            {
                case RbrThrDll:
                    if (dlab)
                    {
                        s.Dll = b;
                    }
                    else
                    {
                        Transmit(b);
                    }

                    break;
                case IerDlm:
                    if (dlab)
                    {
                        s.Dlm = b;
                    }
                    else
                    {
                        byte ier = (byte)(b & 0x0F);
                        if ((ier & IerThrEmpty) != 0 && (s.Ier & IerThrEmpty) == 0)
                        {
                            s.ThrEmptyInterrupt = true; // the THR is empty when the interrupt is switched on
                        }

                        s.Ier = ier;
                    }

                    break;
                case IirFcr:
                    WriteFifoControl(b);
                    break;
                case LcrRegister:
                    s.Lcr = b;
                    break;
                case McrRegister:
                    byte before = ModemLines(s.Mcr);
                    s.Mcr = (byte)(b & 0x1F);
                    s.MsrDelta |= ModemDeltas(before, ModemLines(s.Mcr));
                    break;
                case ScrRegister:
                    s.Scr = b;
                    break;
                default:
                    return; // LSR and MSR are read-only
            }

            UpdateIrq();
        }
    }

    public UartState SaveState()
    {
        lock (_lock)
        {
            return _state.ToState();
        }
    }

    /// <summary>Restores the registers and buffered input and re-drives the interrupt line.</summary>
    public void RestoreState(UartState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.RxBuffer.Length != ReceiveBufferSize || state.RxHead < 0 || state.RxHead >= ReceiveBufferSize ||
            state.RxCount < 0 || state.RxCount > ReceiveBufferSize)
        {
            throw new ArgumentException("The snapshot's UART receive buffer is malformed; the snapshot is damaged.", nameof(state));
        }

        lock (_lock)
        {
            _state = Registers.From(state);
            _irqLevel = (InterruptIdentification() & IirNoInterrupt) == 0;
            _irqs.SetIrq(_irq, _irqLevel);
        }
    }


    /// <summary>IIR: the highest-priority pending, enabled interrupt, plus the FIFO-enabled bits.</summary>
    private byte InterruptIdentification()
    {
        var s = _state;
        byte fifo = (s.Fcr & FcrEnableFifo) != 0 ? IirFifosEnabled : (byte)0;
        byte id;
        if ((s.Ier & IerReceivedData) != 0 && s.RxCount > 0)
        {
            id = IirReceivedData;
        }
        else if ((s.Ier & IerThrEmpty) != 0 && s.ThrEmptyInterrupt)
        {
            id = IirThrEmpty;
        }
        else if ((s.Ier & IerModemStatus) != 0 && s.MsrDelta != 0)
        {
            id = IirModemStatus;
        }
        else
        {
            id = IirNoInterrupt; // no line-status errors are ever recorded (receive never overruns)
        }

        return (byte)(fifo | id);
    }

    private void UpdateIrq()
    {
        bool level = (InterruptIdentification() & IirNoInterrupt) == 0;
        if (level != _irqLevel)
        {
            _irqLevel = level;
            _irqs.SetIrq(_irq, level);
        }
    }

    private void Transmit(byte value)
    {
        if ((_state.Mcr & McrLoopback) != 0)
        {
            Enqueue([value]);
        }
        else
        {
            _output(value);
        }

        _state.ThrEmptyInterrupt = true; // sent at once: the THR is empty again
    }

    private void WriteFifoControl(byte value)
    {
        var s = _state;
        if (((value ^ s.Fcr) & FcrEnableFifo) != 0 || (value & FcrClearReceive) != 0)
        {
            s.RxHead = 0;
            s.RxCount = 0;
        }

        s.Fcr = (byte)(value & FcrStoredBits);
    }

    /// <summary>MSR status bits: in loopback they follow MCR (RTS→CTS, DTR→DSR, OUT1→RI, OUT2→DCD).</summary>
    private static byte ModemLines(byte mcr)
    {
        if ((mcr & McrLoopback) == 0)
        {
            return MsrConnected;
        }

        int lines = 0;
        lines |= (mcr & McrRts) != 0 ? MsrCts : 0;
        lines |= (mcr & McrDtr) != 0 ? MsrDsr : 0;
        lines |= (mcr & McrOut1) != 0 ? MsrRi : 0;
        lines |= (mcr & McrOut2) != 0 ? MsrDcd : 0;
        return (byte)lines;
    }

    /// <summary>MSR delta bits: DCTS, DDSR, TERI (RI falling), DDCD.</summary>
    private static byte ModemDeltas(byte before, byte after)
    {
        int changed = before ^ after;
        int deltas = 0;
        deltas |= (changed & MsrCts) != 0 ? 0x01 : 0;
        deltas |= (changed & MsrDsr) != 0 ? 0x02 : 0;
        deltas |= (before & MsrRi) != 0 && (after & MsrRi) == 0 ? 0x04 : 0;
        deltas |= (changed & MsrDcd) != 0 ? 0x08 : 0;
        return (byte)deltas;
    }

    private int Enqueue(ReadOnlySpan<byte> data)
    {
        var s = _state;
        int accepted = Math.Min(data.Length, ReceiveBufferSize - s.RxCount);
        for (int i = 0; i < accepted; i++)
        {
            s.RxBuffer[(s.RxHead + s.RxCount) % ReceiveBufferSize] = data[i];
            s.RxCount++;
        }

        return accepted;
    }

    private byte Dequeue()
    {
        var s = _state;
        if (s.RxCount == 0)
        {
            return 0;
        }

        byte value = s.RxBuffer[s.RxHead];
        s.RxHead = (s.RxHead + 1) % ReceiveBufferSize;
        s.RxCount--;
        return value;
    }

    /// <summary>The registers as the device changes them; <see cref="UartState"/> is their saved, immutable form.</summary>
    private sealed class Registers
    {
        public byte Ier { get; set; }
        public byte Lcr { get; set; }
        public byte Mcr { get; set; }
        public byte Scr { get; set; }
        public byte Dll { get; set; }
        public byte Dlm { get; set; }
        public byte Fcr { get; set; }
        public byte MsrDelta { get; set; }
        public bool ThrEmptyInterrupt { get; set; }
        public byte[] RxBuffer { get; private init; } = new byte[ReceiveBufferSize];
        public int RxHead { get; set; }
        public int RxCount { get; set; }

        public UartState ToState() => new()
        {
            Ier = Ier, Lcr = Lcr, Mcr = Mcr, Scr = Scr, Dll = Dll, Dlm = Dlm, Fcr = Fcr, MsrDelta = MsrDelta,
            ThrEmptyInterrupt = ThrEmptyInterrupt, RxBuffer = (byte[])RxBuffer.Clone(), RxHead = RxHead, RxCount = RxCount,
        };

        public static Registers From(UartState s) => new()
        {
            Ier = s.Ier, Lcr = s.Lcr, Mcr = s.Mcr, Scr = s.Scr, Dll = s.Dll, Dlm = s.Dlm, Fcr = s.Fcr, MsrDelta = s.MsrDelta,
            ThrEmptyInterrupt = s.ThrEmptyInterrupt, RxBuffer = (byte[])s.RxBuffer.Clone(), RxHead = s.RxHead, RxCount = s.RxCount,
        };
    }
}
