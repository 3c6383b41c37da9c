namespace HostVM.Networking;

/// <summary>
/// The network side of a NIC: a switch port, user-mode NAT or a TAP device. Frames are Ethernet II
/// without FCS, at most <see cref="MaxFrameSize"/> bytes (MTU 1500 + 14-byte header).
/// </summary>
public interface IPacketPort : IDisposable
{
    public const int MaxFrameSize = 1514;

    /// <summary>Whether the port can carry frames (the link status the guest sees).</summary>
    bool LinkUp { get; }

    /// <summary>Begins delivering frames from the network to <paramref name="receiver"/>; called once.</summary>
    void Start(IFrameReceiver receiver);

    /// <summary>A frame from the guest. Must not block for long; a port that cannot take it drops it.</summary>
    void Send(ReadOnlySpan<byte> frame);
}
