using System.Buffers.Binary;

namespace HostVM.Networking.UserNet;

/// <summary>
/// Answers ICMP echo requests to the gateway and DNS addresses locally, so <c>ping 10.0.2.2</c>
/// works. Echo to outside addresses is not forwarded: that needs raw or ping sockets, which an
/// unprivileged host process may not have.
/// </summary>
internal sealed class IcmpResponder(UserNetwork network)
{
    private const byte EchoReply = 0;
    private const byte EchoRequest = 8;

    public bool Handle(Ipv4Packet ip)
    {
        var icmp = ip.Payload;
        if (icmp.Length < 8 || icmp[0] != EchoRequest || icmp[1] != 0 || !InternetChecksum.IsValid(icmp))
        {
            return false;
        }

        if ((ip.Destination != network.GatewayAddress && ip.Destination != network.DnsAddress) || !network.IsGuestAddress(ip.Source) ||
            icmp.Length > IPacketPort.MaxFrameSize - UserNetwork.TransportOffset ||
            !network.TryResolve(ip.Source, out var mac))
        {
            return false;
        }

        byte[] frame = UserNetwork.RentFrame();
        var reply = frame.AsSpan(UserNetwork.TransportOffset, icmp.Length);
        icmp.CopyTo(reply);
        reply[0] = EchoReply;
        reply[2] = 0;
        reply[3] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(reply[2..], InternetChecksum.Compute(reply));
        network.EnqueueIpv4(frame, mac, ip.Destination, ip.Source, Ipv4Packet.ProtocolIcmp, reply.Length);
        return true;
    }
}
