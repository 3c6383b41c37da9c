namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the 16550 UART: its registers, whether a THR-empty interrupt is
/// outstanding, the modem-status delta bits, and the bytes received but not yet read
/// (<see cref="RxCount"/> bytes from <see cref="RxHead"/> in the ring <see cref="RxBuffer"/>).
/// </summary>
public sealed record UartState
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
    public required byte[] RxBuffer { get; init; }
    public int RxHead { get; set; }
    public int RxCount { get; set; }

    public UartState DeepCopy() => this with { RxBuffer = (byte[])RxBuffer.Clone() };
}
