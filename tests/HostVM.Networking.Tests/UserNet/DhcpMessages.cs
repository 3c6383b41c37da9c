using System.Buffers.Binary;

namespace HostVM.Networking.Tests.UserNet;

/// <summary>DHCP as a client sends and reads it (RFC 2131), for the tests.</summary>
internal static class DhcpMessages
{
    public const byte Discover = 1;
    public const byte Offer = 2;
    public const byte Request = 3;
    public const byte Ack = 5;
    public const byte Nak = 6;
    public const byte Release = 7;

    /// <summary>A client message from 0.0.0.0 broadcast to the servers, from <paramref name="client"/> (default <see cref="Packets.GuestMac"/>).</summary>
    public static byte[] Build(byte type, uint xid, uint requested, bool broadcast = false, MacAddress? client = null, uint clientAddress = 0, MacAddress? from = null)
    {
        var mac = client ?? Packets.GuestMac;
        var message = new byte[300];
        message[0] = 1;
        message[1] = 1;
        message[2] = 6;
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(4), xid);
        if (broadcast)
        {
            message[10] = 0x80;
        }

        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(12), clientAddress);
        mac.CopyTo(message.AsSpan(28));
        BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(236), 0x6382_5363);
        int o = 240;
        message[o++] = 53;
        message[o++] = 1;
        message[o++] = type;
        if (requested != 0)
        {
            message[o++] = 50;
            message[o++] = 4;
            BinaryPrimitives.WriteUInt32BigEndian(message.AsSpan(o), requested);
            o += 4;
        }

        message[o++] = 55;
        message[o++] = 3;
        message[o++] = 1;
        message[o++] = 3;
        message[o++] = 6;
        message[o] = 255;
        return Packets.Udp(0, 68, 0xffff_ffff, 67, message, from ?? mac);
    }

    /// <summary>The options of a server's reply, by code.</summary>
    public static Dictionary<byte, byte[]> Read(byte[] message)
    {
        Assert.Equal(2, message[0]);
        Assert.Equal(0x6382_5363u, BinaryPrimitives.ReadUInt32BigEndian(message.AsSpan(236)));
        var options = new Dictionary<byte, byte[]>();
        for (int i = 240; i < message.Length && message[i] != 255;)
        {
            if (message[i] == 0)
            {
                i++;
                continue;
            }

            options[message[i]] = message.AsSpan(i + 2, message[i + 1]).ToArray();
            i += 2 + message[i + 1];
        }

        return options;
    }

    /// <summary>The message type of a server's reply (offer, ack, nak).</summary>
    public static byte TypeOf(ReceivedFrame reply) => Read(reply.Data)[53][0];

    /// <summary>The address a reply gives the client (yiaddr).</summary>
    public static uint YourAddress(ReceivedFrame reply) => BinaryPrimitives.ReadUInt32BigEndian(reply.Data.AsSpan(16));

    /// <summary>The server's next reply to <paramref name="guest"/>: a DHCP message to port 68 with its hardware address and <paramref name="xid"/>.</summary>
    public static ReceivedFrame NextReply(FakeGuest guest, uint xid, int timeoutMilliseconds = 5000) =>
        guest.WaitFor(
            f => f.IsUdp && f.DestinationPort == 68 && f.Data.Length >= 240 &&
                 BinaryPrimitives.ReadUInt32BigEndian(f.Data.AsSpan(4)) == xid &&
                 MacAddress.FromBytes(f.Data.AsSpan(28)) == guest.Mac,
            timeoutMilliseconds);

    /// <summary>DISCOVER, OFFER, REQUEST, ACK as udhcpc does it; sets and returns the guest's address.</summary>
    public static uint Lease(FakeGuest guest, uint xid)
    {
        guest.Send(Build(Discover, xid, 0, client: guest.Mac));
        var offer = NextReply(guest, xid);
        Assert.Equal(Offer, TypeOf(offer));
        uint offered = YourAddress(offer);
        guest.Send(Build(Request, xid, offered, client: guest.Mac));
        var ack = NextReply(guest, xid);
        Assert.Equal(Ack, TypeOf(ack));
        Assert.Equal(offered, YourAddress(ack));
        guest.Address = offered;
        return offered;
    }
}
