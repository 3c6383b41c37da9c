namespace HostVM.Machine.Devices;

/// <summary>What a snapshot keeps of the HTIF window: its bytes (tohost, fromhost and anything between them).</summary>
public sealed record HtifState(byte[] Window)
{
    public HtifState DeepCopy() => new((byte[])Window.Clone());
}
