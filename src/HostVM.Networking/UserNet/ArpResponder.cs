using System.Buffers.Binary;

namespace HostVM.Networking.UserNet;

/// <summary>
/// ARP for the virtual network (RFC 826): answers who-has for the gateway and DNS addresses (as
/// QEMU does, and nothing else: other guests on a switch answer for themselves), learns each
/// guest's MAC from the sender of its ARP packets, and asks for a guest's MAC when we must send
/// before we know it.
/// </summary>
internal sealed class ArpResponder(UserNetwork network)
{
    private const int PacketLength = 28;
    private const ushort OperationRequest = 1;
    private const ushort OperationReply = 2;

    public bool Handle(ReadOnlySpan<byte> packet)
    {
        // Ethernet (1), IPv4 (0x0800), 6-byte hardware and 4-byte protocol addresses.
        if (packet.Length < PacketLength ||
            BinaryPrimitives.ReadUInt16BigEndian(packet) != 1 ||
            BinaryPrimitives.ReadUInt16BigEndian(packet[2..]) != 0x0800 ||
            packet[4] != 6 || packet[5] != 4)
        {
            return false;
        }

        ushort operation = BinaryPrimitives.ReadUInt16BigEndian(packet[6..]);
        var senderMac = MacAddress.FromBytes(packet[8..]);
        uint senderIp = BinaryPrimitives.ReadUInt32BigEndian(packet[14..]);
        uint targetIp = BinaryPrimitives.ReadUInt32BigEndian(packet[24..]);
        if (senderMac.IsMulticast)
        {
            return false;
        }

        if (operation is not (OperationRequest or OperationReply))
        {
            return false;
        }

        // Only guest addresses are learned: a hostile guest cannot claim the gateway's, nor one leased to another guest.
        if (network.IsGuestAddress(senderIp))
        {
            network.LearnGuest(senderIp, senderMac);
        }

        if (operation == OperationReply)
        {
            return true;
        }

        if (targetIp != network.GatewayAddress && targetIp != network.DnsAddress)
        {
            return true;
        }

        Write(OperationReply, network.GatewayMac, targetIp, senderMac, senderIp, senderMac);
        return true;
    }

    /// <summary>Broadcasts who-has <paramref name="address"/> from the gateway.</summary>
    public void Request(uint address) =>
        Write(OperationRequest, network.GatewayMac, network.GatewayAddress, default, address, MacAddress.Broadcast);

    private void Write(ushort operation, MacAddress senderMac, uint senderIp, MacAddress targetMac, uint targetIp, MacAddress frameDestination)
    {
        byte[] frame = UserNetwork.RentFrame();
        UserNetwork.WriteEthernetHeader(frame, frameDestination, network.GatewayMac, 0x0806);
        var arp = frame.AsSpan(UserNetwork.EthernetHeaderLength, PacketLength);
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);
        BinaryPrimitives.WriteUInt16BigEndian(arp[2..], 0x0800);
        arp[4] = 6;
        arp[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(arp[6..], operation);
        senderMac.CopyTo(arp[8..]);
        BinaryPrimitives.WriteUInt32BigEndian(arp[14..], senderIp);
        targetMac.CopyTo(arp[18..]);
        BinaryPrimitives.WriteUInt32BigEndian(arp[24..], targetIp);
        // Pad to Ethernet's 60-byte minimum, as a real NIC would.
        int length = UserNetwork.EthernetHeaderLength + PacketLength;
        frame.AsSpan(length, 60 - length).Clear();
        network.Enqueue(frame, 60);
    }
}
