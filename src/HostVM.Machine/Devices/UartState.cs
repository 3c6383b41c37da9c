namespace HostVM.Machine.Devices;

/// <summary>
/// What a snapshot keeps of the 16550 UART: its registers, whether a THR-empty interrupt is
/// outstanding, the modem-status delta bits, and the bytes received but not yet read
/// (<see cref="RxCount"/> bytes from <see cref="RxHead"/> in the ring <see cref="RxBuffer"/>).
/// Immutable: the device copies the ring into it on save and out of it on restore.
/// </summary>
public sealed record UartState
{
    public byte Ier { get; init; }
    public byte Lcr { get; init; }
    public byte Mcr { get; init; }
    public byte Scr { get; init; }
    public byte Dll { get; init; }
    public byte Dlm { get; init; }
    public byte Fcr { get; init; }
    public byte MsrDelta { get; init; }
    public bool ThrEmptyInterrupt { get; init; }
    public required byte[] RxBuffer { get; init; }
    public int RxHead { get; init; }
    public int RxCount { get; init; }
}
