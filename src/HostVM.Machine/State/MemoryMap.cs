using System.Buffers.Binary;

namespace HostVM.Machine.State;

/// <summary>
/// Where guest RAM is in a snapshot's memory file (a raw image of RAM, byte for byte at its offset, with holes): the
/// page-aligned extents the file holds, in order, and the SHA-256 of their bytes. In a full snapshot what no extent covers
/// is zero; in a diff it is whatever the parent had.
/// </summary>
public sealed record MemoryMap(ulong RamBase, ulong RamSize, bool Diff, IReadOnlyList<(ulong Offset, ulong Length)> Extents, byte[] Digest)
{
    public const uint PageSize = 4096;

    /// <summary>Guest bytes the memory file holds: what a snapshot costs on disk.</summary>
    public ulong StoredBytes => Extents.Aggregate(0UL, (sum, e) => sum + e.Length);

    public byte[] Encode()
    {
        var bytes = new byte[40 + (Extents.Count * 16) + Digest.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, RamBase);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), RamSize);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(16), PageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(20), Diff ? 1u : 0u);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), (ulong)Extents.Count);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(32), (ulong)Digest.Length);
        int at = 40;
        foreach (var (offset, length) in Extents)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at), offset);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(at + 8), length);
            at += 16;
        }

        Digest.CopyTo(bytes, at);
        return bytes;
    }

    /// <summary>Reads and checks a memory map: extents page-aligned, in order, apart, inside RAM.</summary>
    /// <exception cref="SnapshotFormatException">It breaks one of those rules.</exception>
    public static MemoryMap Decode(ReadOnlySpan<byte> bytes, string name)
    {
        const string Where = "the memory map";
        if (bytes.Length < 40)
        {
            throw SnapshotFile.Bad(name, Where, "too short");
        }

        ulong ramBase = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        ulong ramSize = BinaryPrimitives.ReadUInt64LittleEndian(bytes[8..]);
        uint pageSize = BinaryPrimitives.ReadUInt32LittleEndian(bytes[16..]);
        uint kind = BinaryPrimitives.ReadUInt32LittleEndian(bytes[20..]);
        ulong count = BinaryPrimitives.ReadUInt64LittleEndian(bytes[24..]);
        ulong digestLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes[32..]);
        if (pageSize != PageSize || kind > 1 || ramSize == 0 || ramSize % PageSize != 0 || ramBase % PageSize != 0 || digestLength != 32
            || count > (ulong)(bytes.Length - 40) / 16 || (ulong)bytes.Length != 40 + (count * 16) + digestLength)
        {
            throw SnapshotFile.Bad(name, Where, "its fields do not describe RAM in 4 KiB pages (a damaged or foreign map)");
        }

        var extents = new List<(ulong, ulong)>((int)count);
        ulong end = 0;
        for (int i = 0; i < (int)count; i++)
        {
            ulong offset = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(40 + (i * 16))..]);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(48 + (i * 16))..]);
            if (length == 0 || offset % PageSize != 0 || length % PageSize != 0 || offset < end || offset > ramSize || length > ramSize - offset)
            {
                throw SnapshotFile.Bad(name, Where, $"extent {i + 1} (0x{offset:x}+0x{length:x}) is not whole pages after the last and inside the RAM's {ramSize} bytes");
            }

            extents.Add((offset, length));
            end = offset + length;
        }

        return new MemoryMap(ramBase, ramSize, kind == 1, extents, bytes[(int)(40 + (count * 16))..].ToArray());
    }
}
