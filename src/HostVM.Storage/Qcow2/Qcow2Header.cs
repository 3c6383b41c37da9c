using System.Buffers.Binary;
using System.Text;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// A qcow2 image's header and the extensions HostVM reads, as QEMU's docs/interop/qcow2.txt defines them (all
/// fields big-endian), checked against the file's length: nothing it points at may lie outside the file.
/// </summary>
public sealed record Qcow2Header
{
    public const uint Magic = 0x514649fb; // "QFI\xfb"

    /// <summary>The most bytes of the header and its extensions HostVM reads (QEMU keeps them in the first cluster).</summary>
    public const int MaxHeaderBytes = 64 * 1024;

    private const int Version2Length = 72;
    private const int Version3MinLength = 104;
    internal const uint ExtensionEnd = 0, ExtensionBackingFormat = 0xe2792aca, ExtensionFeatureNames = 0x6803f857, ExtensionBitmaps = 0x23852875;

    /// <summary>Byte offsets of the fields HostVM rewrites in place (all big-endian).</summary>
    internal const int BackingFileField = 8, SizeField = 24, L1SizeField = 36, L1OffsetField = 40, RefcountTableField = 48, IncompatibleField = 72, AutoclearField = 88;

    internal const ulong IncompatibleDirty = 1, IncompatibleCorrupt = 2, IncompatibleExternalData = 4, IncompatibleCompressionType = 8, IncompatibleExtendedL2 = 16;
    internal const ulong KnownIncompatible = IncompatibleDirty | IncompatibleCorrupt | IncompatibleExternalData | IncompatibleCompressionType | IncompatibleExtendedL2;

    public int Version { get; init; }

    public int ClusterBits { get; init; }

    public long ClusterSize => 1L << ClusterBits;

    /// <summary>The guest's disk size, bytes.</summary>
    public long Size { get; init; }

    public int L1Size { get; init; }

    public long L1TableOffset { get; init; }

    public long RefcountTableOffset { get; init; }

    public int RefcountTableClusters { get; init; }

    public int RefcountOrder { get; init; }

    public ulong IncompatibleFeatures { get; init; }

    public ulong CompatibleFeatures { get; init; }

    /// <summary>Features a writer that does not know them clears (bit 0: the bitmaps extension is consistent).</summary>
    public ulong AutoclearFeatures { get; init; }

    /// <summary>Bytes of the fixed header (72 for version 2); the extensions follow.</summary>
    public int HeaderLength { get; init; }

    /// <summary>Internal snapshots (QEMU's savevm): HostVM reads the active layer but does not write beside them.</summary>
    public int SnapshotCount { get; init; }

    /// <summary>The image carries QEMU's bitmaps extension (persistent dirty bitmaps).</summary>
    public bool HasBitmaps { get; init; }

    /// <summary>Every header extension in file order (type and data), the end marker left out.</summary>
    public IReadOnlyList<(uint Type, byte[] Data)> Extensions { get; init; } = [];

    /// <summary>Closed uncleanly while open for writing: the refcounts may be stale (reading is unaffected).</summary>
    public bool Dirty => (IncompatibleFeatures & IncompatibleDirty) != 0;

    public string? BackingFile { get; init; }

    /// <summary>The backing file's format as the image records it (<c>qcow2</c>, <c>raw</c>), or null where it says none.</summary>
    public string? BackingFormat { get; init; }

    /// <summary>
    /// Reads and checks the header of the file at <paramref name="path"/>, even while a VMM has it open and locked (nothing
    /// it names is opened): a daemon's look at a running VM's disk.
    /// </summary>
    public static Qcow2Header ReadFile(string path)
    {
        using var handle = LinuxFile.OpenUnlocked(path);
        return Read(handle, path);
    }

    /// <summary>Reads and checks the header of <paramref name="path"/>, open as <paramref name="handle"/>.</summary>
    /// <exception cref="BlockDeviceException">Not a qcow2 image HostVM can read; the message names the file and the problem.</exception>
    public static Qcow2Header Read(Microsoft.Win32.SafeHandles.SafeFileHandle handle, string path)
    {
        long fileLength = RandomAccess.GetLength(handle);
        var buffer = new byte[(int)Math.Min(MaxHeaderBytes, fileLength)];
        int got = 0;
        while (got < buffer.Length)
        {
            int n = RandomAccess.Read(handle, buffer.AsSpan(got), got);
            if (n <= 0)
            {
                break;
            }

            got += n;
        }

        return Parse(buffer.AsSpan(0, got), fileLength, path);
    }

    /// <summary>
    /// The header's first bytes with its extensions replaced by <paramref name="extensions"/> (the backing file's name
    /// moved after them, its offset field updated) and the autoclear field set: written back in one call, the header
    /// never names a backing file at a place that holds something else.
    /// </summary>
    /// <exception cref="IOException">The extensions and the name do not fit in the first cluster.</exception>
    internal byte[] Rewrite(ReadOnlySpan<byte> current, IReadOnlyList<(uint Type, byte[] Data)> extensions, ulong autoclear, string path)
    {
        byte[] name = BackingFile is null ? [] : Encoding.UTF8.GetBytes(BackingFile);
        int length = HeaderLength + 8 + name.Length;
        foreach (var (_, data) in extensions)
        {
            length += 8 + ((data.Length + 7) & ~7);
        }

        if (length > Math.Min(ClusterSize, MaxHeaderBytes))
        {
            throw new IOException($"qcow2 image '{path}': its header extensions no longer fit in its first cluster.");
        }

        var bytes = new byte[length];
        current[..HeaderLength].CopyTo(bytes);
        int at = HeaderLength;
        foreach (var (type, data) in extensions)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at), type);
            BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(at + 4), (uint)data.Length);
            data.CopyTo(bytes, at + 8);
            at += 8 + ((data.Length + 7) & ~7);
        }

        at += 8; // the end marker
        name.CopyTo(bytes, at);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(8), name.Length == 0 ? 0UL : (ulong)at);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(16), (uint)name.Length);
        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(AutoclearField), autoclear);
        return bytes;
    }

    /// <summary>Parses <paramref name="header"/> (the file's first bytes) of a file of <paramref name="fileLength"/> bytes.</summary>
    /// <exception cref="BlockDeviceException">As <see cref="Read"/>.</exception>
    public static Qcow2Header Parse(ReadOnlySpan<byte> header, long fileLength, string path)
    {
        BlockDeviceException Bad(string what) => new($"qcow2 image '{path}': {what}.", path);
        if (header.Length < Version2Length || BinaryPrimitives.ReadUInt32BigEndian(header) != Magic)
        {
            throw Bad("no qcow2 header (bad magic or too short)");
        }

        int version = (int)BinaryPrimitives.ReadUInt32BigEndian(header[4..]);
        if (version is not (2 or 3))
        {
            throw Bad($"version {version} is not supported (2 and 3 are)");
        }

        ulong backingOffset = BinaryPrimitives.ReadUInt64BigEndian(header[8..]);
        uint backingSize = BinaryPrimitives.ReadUInt32BigEndian(header[16..]);
        uint clusterBits = BinaryPrimitives.ReadUInt32BigEndian(header[20..]);
        ulong size = BinaryPrimitives.ReadUInt64BigEndian(header[24..]);
        uint encryption = BinaryPrimitives.ReadUInt32BigEndian(header[32..]);
        uint l1Size = BinaryPrimitives.ReadUInt32BigEndian(header[36..]);
        ulong l1Offset = BinaryPrimitives.ReadUInt64BigEndian(header[40..]);
        ulong refcountOffset = BinaryPrimitives.ReadUInt64BigEndian(header[48..]);
        uint refcountClusters = BinaryPrimitives.ReadUInt32BigEndian(header[56..]);

        if (clusterBits is < 9 or > 21)
        {
            throw Bad($"cluster_bits {clusterBits} is outside 9-21");
        }

        long cluster = 1L << (int)clusterBits;
        if (encryption != 0)
        {
            throw Bad("it is encrypted, which HostVM does not read");
        }

        if (size == 0 || size % 512 != 0 || size > (1UL << 56))
        {
            throw Bad($"its size {size} is not a whole number of 512-byte sectors between 512 B and 64 PiB");
        }

        // Each L1 entry covers one L2 table's worth of clusters; the table must cover the whole disk.
        long perL2 = cluster / 8 * cluster;
        long needed = (long)((size + (ulong)perL2 - 1) / (ulong)perL2);
        if (l1Size < needed || l1Size > 32 * 1024 * 1024)
        {
            throw Bad($"its L1 table has {l1Size} entries, {needed} are needed for its size");
        }

        Within(l1Offset, (ulong)l1Size * 8, "the L1 table");
        Within(refcountOffset, (ulong)refcountClusters * (ulong)cluster, "the refcount table");
        if (l1Offset % (ulong)cluster != 0 || refcountOffset % (ulong)cluster != 0)
        {
            throw Bad("its L1 or refcount table is not aligned to a cluster");
        }

        uint snapshots = BinaryPrimitives.ReadUInt32BigEndian(header[60..]);
        ulong incompatible = 0, compatible = 0, autoclear = 0;
        int refcountOrder = 4;
        int headerLength = Version2Length;
        if (version == 3)
        {
            if (header.Length < Version3MinLength)
            {
                throw Bad("its version 3 header is cut short");
            }

            incompatible = BinaryPrimitives.ReadUInt64BigEndian(header[72..]);
            compatible = BinaryPrimitives.ReadUInt64BigEndian(header[80..]);
            autoclear = BinaryPrimitives.ReadUInt64BigEndian(header[88..]);
            refcountOrder = (int)BinaryPrimitives.ReadUInt32BigEndian(header[96..]);
            headerLength = (int)BinaryPrimitives.ReadUInt32BigEndian(header[100..]);
            if (headerLength < Version3MinLength || headerLength > header.Length || headerLength % 8 != 0)
            {
                throw Bad($"its header length {headerLength} is not valid");
            }

            if ((incompatible & ~KnownIncompatible) != 0)
            {
                throw Bad($"it uses incompatible features HostVM does not know (bits 0x{incompatible & ~KnownIncompatible:x})");
            }

            if ((incompatible & IncompatibleCorrupt) != 0)
            {
                throw Bad("QEMU marked it corrupt: repair it with 'qemu-img check -r all' first");
            }

            if ((incompatible & IncompatibleExternalData) != 0)
            {
                throw Bad("its data is in an external file, which HostVM does not read");
            }

            if ((incompatible & IncompatibleExtendedL2) != 0)
            {
                throw Bad("it uses extended L2 entries (subclusters), which HostVM does not read");
            }

            if ((incompatible & IncompatibleCompressionType) != 0 && headerLength > 104 && header[104] != 0)
            {
                throw Bad($"it is compressed with type {header[104]} (zstd), which HostVM does not read; convert it with 'qemu-img convert -O qcow2'");
            }

            if (refcountOrder is < 0 or > 6)
            {
                throw Bad($"refcount_order {refcountOrder} is outside 0-6");
            }
        }

        string? backingFormat = null;
        bool bitmaps = false;
        var extensions = new List<(uint, byte[])>();
        for (int at = headerLength; ;)
        {
            if (at + 8 > header.Length)
            {
                throw Bad("its header extensions run past the first 64 KiB");
            }

            uint type = BinaryPrimitives.ReadUInt32BigEndian(header[at..]);
            int length = (int)Math.Min(BinaryPrimitives.ReadUInt32BigEndian(header[(at + 4)..]), int.MaxValue);
            if (type == ExtensionEnd)
            {
                break;
            }

            at += 8;
            if (length > header.Length - at)
            {
                throw Bad($"header extension 0x{type:x8} runs past the header");
            }

            extensions.Add((type, header.Slice(at, length).ToArray()));
            if (type == ExtensionBackingFormat)
            {
                backingFormat = Encoding.ASCII.GetString(header.Slice(at, length));
            }
            else if (type == ExtensionBitmaps)
            {
                bitmaps = true;
            }

            at += (length + 7) & ~7;
        }

        string? backing = null;
        if (backingOffset != 0)
        {
            if (backingSize is 0 or > 1023 || backingOffset + backingSize > (ulong)header.Length)
            {
                throw Bad("its backing file name is empty, longer than 1023 bytes or outside the header");
            }

            backing = Encoding.UTF8.GetString(header.Slice((int)backingOffset, (int)backingSize));
            if (backing.Contains('\0', StringComparison.Ordinal))
            {
                throw Bad("its backing file name holds a NUL byte");
            }
        }

        return new Qcow2Header
        {
            Version = version,
            ClusterBits = (int)clusterBits,
            Size = (long)size,
            L1Size = (int)l1Size,
            L1TableOffset = (long)l1Offset,
            RefcountTableOffset = (long)refcountOffset,
            RefcountTableClusters = (int)refcountClusters,
            RefcountOrder = refcountOrder,
            IncompatibleFeatures = incompatible,
            CompatibleFeatures = compatible,
            AutoclearFeatures = autoclear,
            HeaderLength = headerLength,
            SnapshotCount = (int)Math.Min(snapshots, int.MaxValue),
            HasBitmaps = bitmaps,
            Extensions = extensions,
            BackingFile = backing,
            BackingFormat = backingFormat,
        };

        void Within(ulong offset, ulong length, string what)
        {
            if (offset == 0 || offset >= (ulong)fileLength || length > (ulong)fileLength - offset)
            {
                throw Bad($"{what} (at {offset}, {length} bytes) lies outside the file ({fileLength} bytes)");
            }
        }
    }
}
