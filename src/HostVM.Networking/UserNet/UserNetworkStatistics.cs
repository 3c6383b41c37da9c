namespace HostVM.Networking.UserNet;

/// <summary>A snapshot of a <see cref="UserNetwork"/>'s counters.</summary>
/// <param name="FramesIgnored">Frames for other hosts (guests talking to each other on a switch), not counted as dropped.</param>
/// <param name="DhcpLeases">Acknowledged, unexpired DHCP leases.</param>
/// <param name="DhcpPoolExhausted">DHCP requests refused because the pool had no free address.</param>
/// <param name="KnownGuestAddresses">Guest addresses whose MAC was learned from their own frames.</param>
/// <param name="EgressRefused">TCP connections and UDP flows the egress policy refused.</param>
/// <param name="FlowsRefused">
/// TCP connections and UDP flows refused because the network or the guest already held its most host sockets
/// (<see cref="UserNetworkOptions.MaxTcpConnections"/>, <see cref="UserNetworkOptions.MaxTcpConnectionsPerGuest"/>,
/// <see cref="UserNetworkOptions.MaxUdpFlows"/>, <see cref="UserNetworkOptions.MaxUdpFlowsPerGuest"/>), or the host refused
/// a socket (out of file descriptors or buffers): a guest trying to use up the host's descriptors shows here.
/// </param>
/// <param name="ForwardsUnreachable">
/// Host clients of a forward to a guest NIC (<see cref="HostForward.GuestMac"/>) refused because that NIC held no DHCP lease when they came.
/// </param>
public sealed record UserNetworkStatistics(
    long FramesFromGuest,
    long BytesFromGuest,
    long FramesToGuest,
    long BytesToGuest,
    long FramesDropped,
    int TcpConnections,
    int UdpFlows,
    long FramesIgnored,
    int DhcpLeases,
    long DhcpPoolExhausted,
    int KnownGuestAddresses,
    long EgressRefused,
    long FlowsRefused,
    long ForwardsUnreachable);
