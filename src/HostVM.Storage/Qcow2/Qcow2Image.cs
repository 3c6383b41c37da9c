using System.Buffers.Binary;
using System.Text;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// Makes new qcow2 images (version 3, 16-bit refcounts) laid out as <c>qemu-img create</c> lays them out: the header
/// with its extensions (backing format, feature names) in cluster 0, then the refcount table, the first refcount block
/// and the L1 table. An overlay on a backing file costs these few clusters whatever the backing file's size.
/// </summary>
public static class Qcow2Image
{
    public const int DefaultClusterSize = 64 * 1024;

    private const int HeaderLength = 112; // version 3's 104 bytes, the compression type byte and padding to 8
    private const int RefcountOrder = 4;

    // QEMU's feature name table: (type: 0 incompatible, 1 compatible, 2 autoclear; bit; name), shown by qemu-img info.
    private static readonly (byte Type, byte Bit, string Name)[] FeatureNames =
    [
        (0, 0, "dirty bit"), (0, 1, "corrupt bit"), (0, 2, "external data file"), (0, 3, "compression type"), (0, 4, "extended L2 entries"),
        (1, 0, "lazy refcounts"), (2, 0, "bitmaps"), (2, 1, "raw external data"),
    ];

    /// <summary>
    /// Creates <paramref name="path"/> (which must not exist) as an empty qcow2 image of <paramref name="size"/> bytes, or
    /// as an overlay on <paramref name="backingFile"/> (stored as given; a relative name is relative to the image's
    /// directory) of format <paramref name="backingFormat"/>. A size of 0 with a backing file takes the backing file's.
    /// The file and its directory entry are synced before this returns; on failure no file is left. The backing file is
    /// opened to check it (and its chain, by its headers) unless <paramref name="openBacking"/> is false: for a caller whose
    /// records say what the backing file is (a file a VMM had may name anything in its header), with the size and format given.
    /// </summary>
    /// <exception cref="BlockDeviceException">The image cannot be made as asked; the message says why.</exception>
    public static void Create(string path, long size, string? backingFile = null, string? backingFormat = null, int clusterSize = DefaultClusterSize, bool openBacking = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string full = Path.GetFullPath(path);
        if (clusterSize is < 512 or > 2 * 1024 * 1024 || (clusterSize & (clusterSize - 1)) != 0)
        {
            throw new BlockDeviceException($"qcow2 image '{full}': the cluster size {clusterSize} is not a power of two from 512 B to 2 MiB.", full);
        }

        if (backingFile is not null)
        {
            string backingPath = Path.GetFullPath(backingFile, Path.GetDirectoryName(full)!);
            if (backingFormat is not null && !DiskImage.Formats.Contains(backingFormat))
            {
                throw new BlockDeviceException($"qcow2 image '{full}': backing format '{backingFormat}' is not one of {string.Join(", ", DiskImage.Formats)}.", full);
            }

            if (openBacking)
            {
                // Opening the backing file checks it (and its own chain) now, and gives its size.
                using var backing = DiskImage.Open(backingPath, readOnly: true, backingFormat);
                backingFormat ??= backing is Qcow2BlockDevice ? "qcow2" : "raw";
                if (size == 0)
                {
                    size = backing.Length;
                }
            }
            else if (backingFormat is null || !File.Exists(backingPath))
            {
                throw new BlockDeviceException($"qcow2 image '{full}': a backing file taken from records needs its format, and must exist ('{backingPath}').", full);
            }

            if (Encoding.UTF8.GetByteCount(backingFile) > 1023)
            {
                throw new BlockDeviceException($"qcow2 image '{full}': the backing file's name is longer than 1023 bytes.", full);
            }
        }

        if (size <= 0 || size % 512 != 0 || size > (1L << 56))
        {
            throw new BlockDeviceException($"qcow2 image '{full}': the size {size} is not a whole number of 512-byte sectors between 512 B and 64 PiB.", full);
        }

        int clusterBits = System.Numerics.BitOperations.Log2((uint)clusterSize);
        long perL2 = (long)clusterSize / 8 * clusterSize;
        long l1Entries = (size + perL2 - 1) / perL2;
        long l1Clusters = ((l1Entries * 8) + clusterSize - 1) / clusterSize;
        long perBlock = (long)clusterSize * 8 / (1 << RefcountOrder);
        if (3 + l1Clusters > perBlock)
        {
            throw new BlockDeviceException($"qcow2 image '{full}': {size} bytes is too large for {clusterSize}-byte clusters; use larger clusters.", full);
        }

        var image = new byte[(3 + l1Clusters) * clusterSize];
        var header = image.AsSpan(0, clusterSize);
        WriteHeader(header, clusterBits, size, (int)l1Entries, backingFile, backingFormat, full);
        BinaryPrimitives.WriteUInt64BigEndian(image.AsSpan(clusterSize), 2UL * (ulong)clusterSize); // table → block at cluster 2
        for (int c = 0; c < 3 + l1Clusters; c++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(image.AsSpan((2 * clusterSize) + (c * 2)), 1);
        }

        if (File.Exists(full) || Directory.Exists(full))
        {
            throw new BlockDeviceException($"qcow2 image '{full}' cannot be created: something of that name already exists.", full);
        }

        bool created = false;
        try
        {
            using (var file = new FileStream(full, FileMode.CreateNew, FileAccess.Write, FileShare.None))
            {
                created = true;
                file.Write(image);
                file.Flush(flushToDisk: true);
            }

            FileSync.Entries(Path.GetDirectoryName(full)!);
        }
        catch (IOException e) when (e is not BlockDeviceException)
        {
            if (created)
            {
                File.Delete(full);
            }

            throw new BlockDeviceException($"qcow2 image '{full}' cannot be created: {e.Message}", full, e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BlockDeviceException($"qcow2 image '{full}' cannot be created: {e.Message}", full, e);
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> may hold guest data of its own: false only when it has no internal snapshot and its L1
    /// table no entry (no L2 table was ever made), so that every read falls through to its backing file, as for an overlay
    /// fresh from <see cref="Create"/>. Clusters written and later discarded still count (their L2 table stays): the answer
    /// may be a needless "may", never a wrong "no". Reads without the flock, as <see cref="Qcow2Header.ReadFile"/> does.
    /// </summary>
    /// <exception cref="BlockDeviceException">Not a qcow2 image HostVM can read.</exception>
    public static bool HoldsData(string path)
    {
        using var handle = LinuxFile.OpenUnlocked(path);
        var header = Qcow2Header.Read(handle, path);
        if (header.SnapshotCount > 0)
        {
            return true;
        }

        var chunk = new byte[64 * 1024];
        long end = header.L1TableOffset + ((long)header.L1Size * 8);
        for (long at = header.L1TableOffset; at < end;)
        {
            int n = RandomAccess.Read(handle, chunk.AsSpan(0, (int)Math.Min(chunk.Length, end - at)), at);
            if (n <= 0)
            {
                throw new BlockDeviceException($"qcow2 image '{path}': its L1 table ends past the file's end.", path);
            }

            if (chunk.AsSpan(0, n).ContainsAnyExcept((byte)0))
            {
                return true;
            }

            at += n;
        }

        return false;
    }

    private static void WriteHeader(Span<byte> header, int clusterBits, long size, int l1Entries, string? backingFile, string? backingFormat, string full)
    {
        long clusterSize = 1L << clusterBits;
        BinaryPrimitives.WriteUInt32BigEndian(header, Qcow2Header.Magic);
        BinaryPrimitives.WriteUInt32BigEndian(header[4..], 3);
        BinaryPrimitives.WriteUInt32BigEndian(header[20..], (uint)clusterBits);
        BinaryPrimitives.WriteUInt64BigEndian(header[24..], (ulong)size);
        BinaryPrimitives.WriteUInt32BigEndian(header[36..], (uint)l1Entries);
        BinaryPrimitives.WriteUInt64BigEndian(header[40..], 3UL * (ulong)clusterSize);
        BinaryPrimitives.WriteUInt64BigEndian(header[48..], (ulong)clusterSize);
        BinaryPrimitives.WriteUInt32BigEndian(header[56..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(header[96..], RefcountOrder);
        BinaryPrimitives.WriteUInt32BigEndian(header[100..], HeaderLength);

        // Extensions: each is type, length, data padded to 8 bytes; the backing file's name follows the end marker.
        byte[] name = backingFile is null ? [] : Encoding.UTF8.GetBytes(backingFile);
        int at = HeaderLength;
        if (backingFormat is not null)
        {
            at = Extension(header, at, Qcow2Header.ExtensionBackingFormat, Encoding.ASCII.GetBytes(backingFormat));
        }

        int featureBytes = FeatureNames.Length * 48;
        if (at + 8 + featureBytes + 8 + name.Length <= header.Length)
        {
            var table = new byte[featureBytes];
            for (int i = 0; i < FeatureNames.Length; i++)
            {
                table[i * 48] = FeatureNames[i].Type;
                table[(i * 48) + 1] = FeatureNames[i].Bit;
                Encoding.ASCII.GetBytes(FeatureNames[i].Name, table.AsSpan((i * 48) + 2, 46));
            }

            at = Extension(header, at, Qcow2Header.ExtensionFeatureNames, table);
        }

        at += 8; // the end marker: type 0, length 0
        if (name.Length != 0)
        {
            if (at + name.Length > header.Length)
            {
                throw new BlockDeviceException($"qcow2 image '{full}': the backing file's name does not fit in the first cluster; use larger clusters.", full);
            }

            name.CopyTo(header[at..]);
            BinaryPrimitives.WriteUInt64BigEndian(header[8..], (ulong)at);
            BinaryPrimitives.WriteUInt32BigEndian(header[16..], (uint)name.Length);
        }
    }

    private static int Extension(Span<byte> header, int at, uint type, ReadOnlySpan<byte> data)
    {
        BinaryPrimitives.WriteUInt32BigEndian(header[at..], type);
        BinaryPrimitives.WriteUInt32BigEndian(header[(at + 4)..], (uint)data.Length);
        data.CopyTo(header[(at + 8)..]);
        return at + 8 + ((data.Length + 7) & ~7);
    }
}
