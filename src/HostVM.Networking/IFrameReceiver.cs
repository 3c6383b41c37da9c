namespace HostVM.Networking;

/// <summary>Where a port delivers frames from the network: the NIC's receive side.</summary>
public interface IFrameReceiver
{
    /// <summary>
    /// One Ethernet frame (destination MAC first, no FCS), copied before the call returns.
    /// False when the receiver had no room and dropped it (a real NIC drops too; TCP retransmits).
    /// May be called on any of the port's threads.
    /// </summary>
    bool Receive(ReadOnlySpan<byte> frame);
}
