using System.Net;

namespace HostVM.Networking.Switch;

/// <summary>Another port of the same switch: the path of its socket file and that path as a socket address.</summary>
internal sealed record SwitchPeer(string SocketPath, SocketAddress Address);
