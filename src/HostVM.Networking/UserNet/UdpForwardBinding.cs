using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// One host client of a UDP host forward: its datagrams reach the guest from the gateway at
/// <see cref="GatewayPort"/>, and the guest's replies to that port go back to <see cref="Client"/>.
/// </summary>
internal sealed class UdpForwardBinding(UdpForwardListener listener, IPEndPoint client, ushort gatewayPort, uint guestAddress, ushort guestPort)
{
    public UdpForwardListener Listener { get; } = listener;

    public IPEndPoint Client { get; } = client;

    public ushort GatewayPort { get; } = gatewayPort;

    public uint GuestAddress { get; } = guestAddress;

    public ushort GuestPort { get; } = guestPort;

    public long LastUsed { get; set; } = Environment.TickCount64;
}
