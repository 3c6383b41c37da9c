using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// A qcow2 image (version 2 or 3) as a disk, read-only for now: the guest's byte N is found through the L1 and L2 tables
/// (QEMU's docs/interop/qcow2.txt), an unallocated cluster reads from the backing file (a chain of any depth, raw or
/// qcow2) or as zeroes, a zero cluster as zeroes, a compressed cluster is inflated (deflate). Every table entry is
/// checked before use: an offset outside the file or not aligned is an I/O error for that request, never a read
/// elsewhere. Opened read-only, the file takes a shared flock, as a raw image does.
/// </summary>
public sealed class Qcow2BlockDevice : IBlockDevice
{
    /// <summary>The deepest backing chain opened (QEMU has no fixed limit; a loop is caught before this).</summary>
    public const int MaxChainDepth = 64;

    private const ulong OffsetMask = 0x00ff_ffff_ffff_fe00; // bits 9-55 of L1 and standard L2 entries
    private const ulong CompressedFlag = 1UL << 62;
    private const ulong ZeroFlag = 1;
    private const int CachedL2Tables = 64;

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly Qcow2Header _header;
    private readonly IBlockDevice? _backing;
    private readonly long _fileLength;
    private readonly ulong[] _l1;
    private readonly Dictionary<long, ulong[]> _l2Cache = [];
    private readonly Queue<long> _l2Order = new();
    private readonly Lock _lock = new();
    private long _inflatedAt = -1;
    private byte[]? _inflated;
    private volatile bool _disposed;

    private Qcow2BlockDevice(SafeFileHandle file, string path, Qcow2Header header, IBlockDevice? backing, ulong[] l1, string identifier)
    {
        _file = file;
        _path = path;
        _header = header;
        _backing = backing;
        _l1 = l1;
        _fileLength = RandomAccess.GetLength(file);
        Identifier = identifier;
    }

    public long Length => _header.Size;

    public bool ReadOnly => true;

    public string Identifier { get; }

    /// <summary>The image's header (version, cluster size, backing file).</summary>
    public Qcow2Header Header => _header;

    /// <summary>The backing file's device, or null for an image without one.</summary>
    public IBlockDevice? Backing => _backing;

    /// <summary>Opens <paramref name="path"/> read-only (writing qcow2 comes later: asked for it, this refuses).</summary>
    /// <exception cref="BlockDeviceException">Not a qcow2 image HostVM can read, a bad backing chain, or a writable open.</exception>
    public static Qcow2BlockDevice Open(string path, bool readOnly, string? identifier = null) =>
        Open(Path.GetFullPath(path), readOnly, identifier, []);

    private static Qcow2BlockDevice Open(string full, bool readOnly, string? identifier, List<string> chain)
    {
        if (!readOnly)
        {
            throw new BlockDeviceException($"qcow2 image '{full}': HostVM opens qcow2 read-only for now; attach it read-only, or convert it with 'qemu-img convert -O raw'.", full);
        }

        if (!File.Exists(full))
        {
            throw new BlockDeviceException(chain.Count == 0
                ? $"Disk image '{full}' does not exist."
                : $"qcow2 image '{chain[^1]}': its backing file '{full}' does not exist.", full);
        }

        string real = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        if (chain.Contains(real))
        {
            throw new BlockDeviceException($"qcow2 image '{chain[0]}': its backing chain loops back to '{real}'.", full);
        }

        if (chain.Count >= MaxChainDepth)
        {
            throw new BlockDeviceException($"qcow2 image '{chain[0]}': its backing chain is deeper than {MaxChainDepth}.", full);
        }

        chain.Add(real);
        var file = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        IBlockDevice? backing = null;
        try
        {
            RawFileBlockDevice.Lock(file, full, readOnly: true);
            var header = Qcow2Header.Read(file, full);
            var l1Bytes = new byte[header.L1Size * 8];
            ReadExactly(file, l1Bytes, header.L1TableOffset, full);
            var l1 = new ulong[header.L1Size];
            for (int i = 0; i < l1.Length; i++)
            {
                l1[i] = BinaryPrimitives.ReadUInt64BigEndian(l1Bytes.AsSpan(i * 8));
            }

            if (header.BackingFile is { } name)
            {
                string backingPath = Path.GetFullPath(name, Path.GetDirectoryName(full)!);
                backing = OpenBacking(backingPath, header.BackingFormat, chain);
            }

            return new Qcow2BlockDevice(file, full, header, backing, l1, identifier ?? RawFileBlockDevice.IdentifierFromFileName(full));
        }
        catch
        {
            backing?.Dispose();
            file.Dispose();
            throw;
        }
    }

    private static IBlockDevice OpenBacking(string path, string? format, List<string> chain)
    {
        format ??= File.Exists(path) && DiskImage.IsQcow2(path) ? "qcow2" : "raw";
        return format switch
        {
            "qcow2" => Open(path, readOnly: true, identifier: null, chain),
            "raw" when File.Exists(path) && !chain.Contains(new FileInfo(path).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? path) =>
                RawFileBlockDevice.Open(path, readOnly: true, "backing"),
            "raw" when File.Exists(path) => throw new BlockDeviceException($"qcow2 image '{chain[0]}': its backing chain loops back to '{path}'.", path),
            "raw" => throw new BlockDeviceException($"qcow2 image '{chain[^1]}': its backing file '{path}' does not exist.", path),
            _ => throw new BlockDeviceException($"qcow2 image '{chain[^1]}': its backing file's format '{format}' is not one HostVM reads (raw, qcow2).", path),
        };
    }

    public void Read(long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (offset < 0 || destination.Length > Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"read of {destination.Length} bytes at {offset} is outside the {Length}-byte disk");
        }

        long cluster = _header.ClusterSize;
        while (!destination.IsEmpty)
        {
            long within = offset & (cluster - 1);
            int n = (int)Math.Min(destination.Length, cluster - within);
            ReadInCluster(offset, within, destination[..n]);
            destination = destination[n..];
            offset += n;
        }
    }

    public void Read(long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        foreach (var d in destinations)
        {
            Read(offset, d.Span);
            offset += d.Length;
        }
    }

    public void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources) => throw ReadOnlyError();

    public void Write(long offset, ReadOnlySpan<byte> source) => throw ReadOnlyError();

    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
    }

    public void Discard(long offset, long length) => throw ReadOnlyError();

    public void WriteZeroes(long offset, long length, bool mayUnmap) => throw ReadOnlyError();

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        _backing?.Dispose();
        _file.Dispose();
    }

    public override string ToString() => $"qcow2 image '{_path}' (read-only)";

    private IOException ReadOnlyError() => new($"qcow2 image '{_path}' is open read-only.");

    private void ReadInCluster(long offset, long within, Span<byte> destination)
    {
        int clusterBits = _header.ClusterBits;
        long guestCluster = offset >> clusterBits;
        int l2Bits = clusterBits - 3;
        long l1Index = guestCluster >> l2Bits;
        int l2Index = (int)(guestCluster & ((1L << l2Bits) - 1));
        ulong l1Entry = _l1[l1Index];
        ulong l2Offset = l1Entry & OffsetMask;
        ulong entry = l2Offset == 0 ? 0 : L2Table((long)l2Offset)[l2Index];

        if ((entry & CompressedFlag) != 0)
        {
            ReadCompressed(entry, within, destination);
            return;
        }

        ulong host = entry & OffsetMask;
        if ((entry & ZeroFlag) != 0 && _header.Version >= 3)
        {
            destination.Clear();
        }
        else if (host != 0)
        {
            if (host % (ulong)_header.ClusterSize != 0 || host >= (ulong)_fileLength)
            {
                throw Corrupt($"the data cluster of guest byte {offset} is at {host}, outside the file or not aligned");
            }

            ReadExactly(_file, destination, (long)host + within, _path, allowShort: true);
        }
        else if (_backing is { } backing && offset < backing.Length)
        {
            int fromBacking = (int)Math.Min(destination.Length, backing.Length - offset);
            backing.Read(offset, destination[..fromBacking]);
            destination[fromBacking..].Clear();
        }
        else
        {
            destination.Clear();
        }
    }

    private void ReadCompressed(ulong entry, long within, Span<byte> destination)
    {
        int clusterBits = _header.ClusterBits;
        int offsetBits = 62 - (clusterBits - 8);
        long host = (long)(entry & ((1UL << offsetBits) - 1));
        long sectors = (long)((entry >> offsetBits) & ((1UL << (clusterBits - 8)) - 1)) + 1;
        long length = (sectors * 512) - (host & 511);
        if (host <= 0 || host >= _fileLength || length <= 0)
        {
            throw Corrupt($"a compressed cluster at {host} lies outside the file");
        }

        length = Math.Min(length, _fileLength - host); // the last compressed cluster may end before its last sector does
        lock (_lock)
        {
            if (_inflatedAt != host)
            {
                var compressed = new byte[length];
                ReadExactly(_file, compressed, host, _path, allowShort: true);
                var cluster = _inflated ??= new byte[_header.ClusterSize];
                using var inflate = new DeflateStream(new MemoryStream(compressed), CompressionMode.Decompress);
                int got = 0;
                try
                {
                    while (got < cluster.Length)
                    {
                        int n = inflate.Read(cluster, got, cluster.Length - got);
                        if (n == 0)
                        {
                            break;
                        }

                        got += n;
                    }
                }
                catch (InvalidDataException e)
                {
                    _inflatedAt = -1;
                    throw Corrupt($"the compressed cluster at {host} does not inflate ({e.Message})");
                }

                if (got != cluster.Length)
                {
                    _inflatedAt = -1;
                    throw Corrupt($"the compressed cluster at {host} inflates to {got} bytes, not a cluster");
                }

                _inflatedAt = host;
            }

            _inflated.AsSpan((int)within, destination.Length).CopyTo(destination);
        }
    }

    private ulong[] L2Table(long offset)
    {
        lock (_lock)
        {
            if (_l2Cache.TryGetValue(offset, out var cached))
            {
                return cached;
            }
        }

        long size = _header.ClusterSize;
        if (offset % size != 0 || offset > _fileLength - size)
        {
            throw Corrupt($"an L2 table is at {offset}, outside the file or not aligned");
        }

        var bytes = new byte[size];
        ReadExactly(_file, bytes, offset, _path);
        var table = new ulong[size / 8];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }

        lock (_lock)
        {
            if (_l2Cache.TryAdd(offset, table))
            {
                _l2Order.Enqueue(offset);
                if (_l2Order.Count > CachedL2Tables)
                {
                    _l2Cache.Remove(_l2Order.Dequeue());
                }
            }
        }

        return table;
    }

    private IOException Corrupt(string what) => new($"qcow2 image '{_path}' is corrupt: {what}.");

    private static void ReadExactly(SafeFileHandle file, Span<byte> destination, long offset, string path, bool allowShort = false)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n <= 0)
            {
                if (allowShort)
                {
                    destination.Clear(); // a data cluster the file's end cuts short reads as zeroes past it, as in QEMU
                    return;
                }

                throw new IOException($"qcow2 image '{path}' ended at byte {offset}, inside one of its tables.");
            }

            destination = destination[n..];
            offset += n;
        }
    }
}
