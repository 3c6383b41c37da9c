using System.Buffers.Binary;

namespace HostVM.Networking;

/// <summary>
/// The Internet checksum (RFC 1071): the ones'-complement sum of 16-bit big-endian words.
/// Partial sums are kept in a 64-bit accumulator so large payloads are summed four bytes at a
/// time without folding on every step; the guest does not offload checksums, so this runs on
/// every byte we carry and must be cheap. virtio-net's checksum and segmentation offloads use it too.
/// </summary>
public static class InternetChecksum
{
    /// <summary>Adds <paramref name="data"/> to a running sum (not yet folded or complemented).</summary>
    public static ulong Add(ulong sum, ReadOnlySpan<byte> data)
    {
        int i = 0;
        while (data.Length - i >= 8)
        {
            ulong v = BinaryPrimitives.ReadUInt64BigEndian(data[i..]);
            sum += (v >> 32) + (v & 0xffff_ffff);
            i += 8;
        }

        if (data.Length - i >= 4)
        {
            sum += BinaryPrimitives.ReadUInt32BigEndian(data[i..]);
            i += 4;
        }

        if (data.Length - i >= 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            i += 2;
        }

        if (i < data.Length)
        {
            // An odd trailing byte is the high half of a zero-padded word.
            sum += (uint)data[i] << 8;
        }

        return sum;
    }

    /// <summary>The pseudo-header that TCP and UDP checksums cover (RFC 793, RFC 768).</summary>
    public static ulong PseudoHeader(uint source, uint destination, byte protocol, int length) =>
        (ulong)(source >> 16) + (source & 0xffff) + (destination >> 16) + (destination & 0xffff) + protocol + (uint)length;

    /// <summary>Folds a running sum to 16 bits and complements it: the value to store.</summary>
    public static ushort Finish(ulong sum)
    {
        while ((sum >> 16) != 0)
        {
            sum = (sum & 0xffff) + (sum >> 16);
        }

        return (ushort)~sum;
    }

    /// <summary>The checksum of <paramref name="data"/> alone, e.g. an IPv4 header or an ICMP message.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data) => Finish(Add(0, data));

    /// <summary>True when a region that includes its own checksum field sums to all ones.</summary>
    public static bool IsValid(ReadOnlySpan<byte> data) => Compute(data) == 0;

    /// <summary>True when a TCP or UDP segment, checksum field included, is intact.</summary>
    public static bool IsValidTransport(uint source, uint destination, byte protocol, ReadOnlySpan<byte> segment) =>
        Finish(Add(PseudoHeader(source, destination, protocol, segment.Length), segment)) == 0;

    /// <summary>The checksum to store in a TCP or UDP header whose checksum field is zero.</summary>
    public static ushort ComputeTransport(uint source, uint destination, byte protocol, ReadOnlySpan<byte> segment) =>
        Finish(Add(PseudoHeader(source, destination, protocol, segment.Length), segment));
}
