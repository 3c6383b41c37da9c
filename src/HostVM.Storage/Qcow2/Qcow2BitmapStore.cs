using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// The on-disk form of persistent dirty bitmaps (QEMU's docs/interop/qcow2.txt, "Bitmaps"): the bitmaps header
/// extension (count, directory size and offset), the directory of variable-length entries, one table per bitmap and
/// its data clusters (bit n of the bitmap is bit n % 8, lowest first, of byte n / 8). Valid only while the header's
/// autoclear bit 0 is set: a writer that does not know bitmaps clears it.
/// </summary>
internal static class Qcow2BitmapStore
{
    public const uint FlagInUse = 1, FlagAuto = 2;
    public const ulong AutoclearBitmaps = 1;
    private const int EntryHead = 24, ExtensionLength = 24;
    private const ulong TableOffsetMask = 0x00ff_ffff_ffff_fe00;
    private const long MaxDirectoryBytes = 64L * 1024 * 1024;

    /// <summary>The bitmaps an image holds, with their bits unless they are stale; where the directory is (0 if none).</summary>
    /// <exception cref="IOException">The extension, directory or a table is damaged, or holds what HostVM does not know.</exception>
    public static (List<Qcow2Bitmap> Bitmaps, long DirectoryOffset, long DirectorySize) Load(SafeFileHandle file, string path, Qcow2Header header, long fileLength)
    {
        var bitmaps = new List<Qcow2Bitmap>();
        byte[]? extension = header.Extensions.FirstOrDefault(e => e.Type == Qcow2Header.ExtensionBitmaps).Data;
        if (extension is null || (header.AutoclearFeatures & AutoclearBitmaps) == 0)
        {
            return (bitmaps, 0, 0); // none, or left inconsistent by a writer that did not know them: not to be used
        }

        IOException Bad(string what) => new($"qcow2 image '{path}': its bitmaps {what}.");
        if (extension.Length < ExtensionLength)
        {
            throw Bad("extension is cut short");
        }

        uint count = BinaryPrimitives.ReadUInt32BigEndian(extension);
        long size = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(extension.AsSpan(8)), long.MaxValue);
        long offset = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(extension.AsSpan(16)), long.MaxValue);
        long cluster = header.ClusterSize;
        if (count == 0 || count > 65535 || size < EntryHead || size > MaxDirectoryBytes || offset % cluster != 0 || offset <= 0 || offset > fileLength - size)
        {
            throw Bad($"directory ({count} bitmaps, {size} bytes at {offset}) is not valid or lies outside the file");
        }

        var directory = new byte[size];
        Qcow2Io.ReadExactly(file, directory, offset, path);
        int at = 0;
        for (int i = 0; i < count; i++)
        {
            if (at + EntryHead > directory.Length)
            {
                throw Bad("directory ends before its last entry");
            }

            var entry = directory.AsSpan(at);
            long tableOffset = (long)Math.Min(BinaryPrimitives.ReadUInt64BigEndian(entry), long.MaxValue);
            int tableSize = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(entry[8..]), int.MaxValue);
            uint flags = BinaryPrimitives.ReadUInt32BigEndian(entry[12..]);
            byte type = entry[16];
            int granularityBits = entry[17];
            int nameSize = BinaryPrimitives.ReadUInt16BigEndian(entry[18..]);
            uint extraSize = BinaryPrimitives.ReadUInt32BigEndian(entry[20..]);
            if (type != 1 || extraSize != 0 || (flags & ~(FlagInUse | FlagAuto)) != 0)
            {
                throw Bad($"entry {i} is of a type, or has extra data or flags, that HostVM does not know");
            }

            if (nameSize is 0 or > Qcow2Bitmap.MaxNameBytes || EntryHead + nameSize > entry.Length
                || granularityBits is < Qcow2Bitmap.MinGranularityBits or > Qcow2Bitmap.MaxGranularityBits)
            {
                throw Bad($"entry {i} has a bad name size ({nameSize}) or granularity (2^{granularityBits})");
            }

            string name = Encoding.UTF8.GetString(entry.Slice(EntryHead, nameSize));
            var bitmap = new Qcow2Bitmap(name, granularityBits, header.Size, (flags & FlagAuto) != 0, (flags & FlagInUse) != 0);
            long expected = (bitmap.BitCount(header.Size) + (cluster * 8) - 1) / (cluster * 8);
            if (tableSize != expected || tableOffset % cluster != 0 || tableOffset <= 0 || tableOffset > fileLength - (tableSize * 8L))
            {
                throw Bad($"'{name}' has a table of {tableSize} entries at {tableOffset}; {expected} inside the file are needed");
            }

            if (bitmaps.Any(b => b.Name == name))
            {
                throw Bad($"directory names '{name}' twice");
            }

            bitmap.TableOffset = tableOffset;
            bitmap.TableSize = tableSize;
            ReadTable(file, path, bitmap, cluster, header.Size, fileLength);
            bitmaps.Add(bitmap);
            at += (EntryHead + nameSize + 7) & ~7;
        }

        return (bitmaps, offset, size);
    }

    /// <summary>The extension's data for a directory of <paramref name="count"/> bitmaps.</summary>
    public static byte[] Extension(int count, long directoryOffset, long directorySize)
    {
        var data = new byte[ExtensionLength];
        BinaryPrimitives.WriteUInt32BigEndian(data, (uint)count);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(8), (ulong)directorySize);
        BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan(16), (ulong)directoryOffset);
        return data;
    }

    /// <summary>The directory for <paramref name="bitmaps"/> as they are to be stored (their table offsets and sizes set).</summary>
    public static byte[] Directory(IReadOnlyList<Qcow2Bitmap> bitmaps, Func<Qcow2Bitmap, uint> flags)
    {
        var names = bitmaps.Select(b => Encoding.UTF8.GetBytes(b.Name)).ToList();
        var bytes = new byte[names.Sum(n => (EntryHead + n.Length + 7) & ~7)];
        int at = 0;
        for (int i = 0; i < bitmaps.Count; i++)
        {
            var entry = bytes.AsSpan(at);
            BinaryPrimitives.WriteUInt64BigEndian(entry, (ulong)bitmaps[i].TableOffset);
            BinaryPrimitives.WriteUInt32BigEndian(entry[8..], (uint)bitmaps[i].TableSize);
            BinaryPrimitives.WriteUInt32BigEndian(entry[12..], flags(bitmaps[i]));
            entry[16] = 1;
            entry[17] = (byte)bitmaps[i].GranularityBits;
            BinaryPrimitives.WriteUInt16BigEndian(entry[18..], (ushort)names[i].Length);
            names[i].CopyTo(entry[EntryHead..]);
            at += (EntryHead + names[i].Length + 7) & ~7;
        }

        return bytes;
    }

    /// <summary>Data cluster <paramref name="index"/> of the bitmap's bits, or null when it is all zeroes (stored as no cluster).</summary>
    public static byte[]? DataCluster(Qcow2Bitmap bitmap, long index, long cluster)
    {
        long firstWord = index * cluster / 8;
        if (firstWord >= bitmap.Bits.Length)
        {
            return null;
        }

        int words = (int)Math.Min(cluster / 8, bitmap.Bits.Length - firstWord);
        var span = bitmap.Bits.AsSpan((int)firstWord, words);
        if (span.IndexOfAnyExcept(0UL) < 0)
        {
            return null;
        }

        var data = new byte[cluster];
        for (int w = 0; w < words; w++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(data.AsSpan(w * 8), span[w]);
        }

        return data;
    }

    private static void ReadTable(SafeFileHandle file, string path, Qcow2Bitmap bitmap, long cluster, long diskSize, long fileLength)
    {
        var table = new byte[bitmap.TableSize * 8L];
        Qcow2Io.ReadExactly(file, table, bitmap.TableOffset, path);
        long bitsPerCluster = cluster * 8, count = bitmap.BitCount(diskSize);
        var data = new byte[cluster];
        for (int i = 0; i < bitmap.TableSize; i++)
        {
            ulong entry = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i * 8));
            long host = (long)(entry & TableOffsetMask);
            if (host == 0)
            {
                if ((entry & 1) != 0 && !bitmap.Stale)
                {
                    // All ones: every bit this cluster holds (up to the disk's end) is set.
                    long first = i * bitsPerCluster;
                    bitmap.Set(first << bitmap.GranularityBits, (Math.Min(count, first + bitsPerCluster) - first) << bitmap.GranularityBits);
                }

                continue;
            }

            if (host % cluster != 0 || host > fileLength - cluster)
            {
                throw new IOException($"qcow2 image '{path}': bitmap '{bitmap.Name}' has a data cluster at {host}, outside the file or not aligned.");
            }

            bitmap.DataClusters.Add(host);
            if (bitmap.Stale)
            {
                continue;
            }

            Qcow2Io.ReadExactly(file, data, host, path);
            long firstWord = i * cluster / 8;
            for (long w = 0; w < cluster / 8 && firstWord + w < bitmap.Bits.Length; w++)
            {
                bitmap.Bits[firstWord + w] = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan((int)(w * 8)));
            }
        }

        // Bits past the disk's end must be zero; a file that sets them does not get them counted.
        long tail = count & 63;
        if (tail != 0 && bitmap.Bits.Length != 0)
        {
            bitmap.Bits[^1] &= (1UL << (int)tail) - 1;
        }
    }
}
