namespace HostVM.Networking.UserNet;

/// <summary>A snapshot of a <see cref="UserNetwork"/>'s counters.</summary>
public sealed record UserNetworkStatistics(
    long FramesFromGuest,
    long BytesFromGuest,
    long FramesToGuest,
    long BytesToGuest,
    long FramesDropped,
    int TcpConnections,
    int UdpFlows);
