using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// These tests play the outside world with sockets on this host's loopback, reached through the
/// gateway address as <c>hostvm run --net user,host-loopback=on</c> does; by default the NAT refuses
/// the host (EgressPolicyTests).
/// </summary>
internal static class ToHost
{
    public static EgressPolicy Policy { get; } = EgressPolicy.UserMode(hostLoopback: true);

    public static UserNetworkOptions Options => new() { Egress = Policy };
}
