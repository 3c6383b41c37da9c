namespace HostVM.Networking.UserNet;

/// <summary>A TCP connection or UDP flow as the guest sees it: its own address and port, and the peer's.</summary>
internal readonly record struct FlowKey(uint GuestAddress, ushort GuestPort, uint RemoteAddress, ushort RemotePort);
