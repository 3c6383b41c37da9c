using System.Buffers.Binary;
using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>IPv4 addresses as host-order integers, the form the packet code works in.</summary>
internal static class Ipv4
{
    public const uint Broadcast = 0xffff_ffff;
    public const uint Loopback = 0x7f00_0001;

    public static uint FromAddress(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork || !address.TryWriteBytes(bytes, out _))
        {
            throw new ArgumentException($"'{address}' is not an IPv4 address; the user network is IPv4 only.", nameof(address));
        }

        return BinaryPrimitives.ReadUInt32BigEndian(bytes);
    }

    public static IPAddress ToAddress(uint address)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, address);
        return new IPAddress(bytes);
    }

    /// <summary>Multicast (224/4), limited broadcast, or unspecified: never a NAT destination.</summary>
    public static bool IsSpecial(uint address) => address == 0 || address == Broadcast || (address >> 28) == 0xe;
}
