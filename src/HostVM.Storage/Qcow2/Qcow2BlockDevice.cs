using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// A qcow2 image (QEMU's docs/interop/qcow2.txt) as a disk: version 2 and 3 read, version 3 written. The guest's byte N
/// is found through the L1 and L2 tables; an unallocated cluster reads from the backing file (a chain of any depth, raw
/// or qcow2) or as zeroes, a zero cluster as zeroes, a compressed cluster is inflated (deflate).
/// <para>
/// Writing allocates clusters (<see cref="Qcow2Refcounts"/>) and keeps the table changes in memory until a flush (or
/// until too many are pending), then writes them back in dependency order with an fsync between the steps: counts
/// first, then L2 tables, then L1 entries, and only then the counts that fall. A crash at any moment leaves an image
/// <c>qemu-img check</c> finds clean or with leaked clusters only; what a flush reported durable is there. The header's
/// dirty bit is set while the image is open for writing, so a crash is visible to the next opener (which repairs
/// counts, as QEMU does). A failed fsync is latched: no flush succeeds after it.
/// </para>
/// Every table entry is checked before use: an offset outside the file, not aligned, or (when writing) onto the image's
/// own metadata is an I/O error for that request, never an access elsewhere.
/// </summary>
public sealed class Qcow2BlockDevice : IBlockDevice, IAllocationMap
{
    /// <summary>The deepest backing chain opened (QEMU has no fixed limit; a loop is caught before this).</summary>
    public const int MaxChainDepth = 64;

    /// <summary>The most extents one <see cref="MapAllocation"/> returns.</summary>
    public const int MaxMapExtents = 65536;

    private const ulong OffsetMask = 0x00ff_ffff_ffff_fe00; // bits 9-55 of L1 and standard L2 entries
    private const ulong CompressedFlag = 1UL << 62;
    private const ulong CopiedFlag = 1UL << 63; // the cluster's count is exactly one: it may be written in place
    private const ulong ZeroFlag = 1;
    private const int L2CacheBytes = 4 * 1024 * 1024;
    private const int MaxRunBytes = 4 * 1024 * 1024;

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly Qcow2Header _header;
    private IBlockDevice? _backing;
    private readonly Qcow2Refcounts? _refcounts;
    private readonly long _openedLength;
    private readonly int _cachedL2Tables;
    private readonly Dictionary<long, L2Table> _l2Cache = [];
    private readonly Queue<long> _l2Order = new();
    private readonly HashSet<long> _l2Offsets = [];
    private readonly SortedSet<int> _dirtyL1 = [];
    private readonly List<Qcow2Bitmap> _bitmaps = [];
    private readonly List<Qcow2Bitmap> _droppedBitmaps = [];
    private readonly HashSet<long> _bitmapClusters = [];
    private long _bitmapDirectoryOffset;
    private long _bitmapDirectorySize;
    private readonly Lock _lock = new();
    private ulong[] _l1;
    private long _l1Offset;
    private long _size;
    private int _dirtyL2;
    private long _inflatedAt = -1;
    private byte[]? _inflated;
    private IOException? _flushFailure;
    private volatile bool _disposed;

    private Qcow2BlockDevice(SafeFileHandle file, string path, Qcow2Header header, IBlockDevice? backing, ulong[] l1, Qcow2Refcounts? refcounts, string identifier)
    {
        _file = file;
        _path = path;
        _header = header;
        _backing = backing;
        _l1 = l1;
        _l1Offset = header.L1TableOffset;
        _size = header.Size;
        _refcounts = refcounts;
        _openedLength = RandomAccess.GetLength(file);
        _cachedL2Tables = (int)Math.Max(4, L2CacheBytes / header.ClusterSize);
        Identifier = identifier;
        foreach (ulong entry in l1)
        {
            if ((entry & OffsetMask) != 0)
            {
                _l2Offsets.Add((long)(entry & OffsetMask));
            }
        }
    }

    public long Length => Volatile.Read(ref _size);

    public bool ReadOnly => _refcounts is null;

    public string Identifier { get; }

    /// <summary>The image's header as it is now (size and L1 table follow a resize).</summary>
    public Qcow2Header Header
    {
        get
        {
            lock (_lock)
            {
                return _header with { Size = _size, L1Size = _l1.Length, L1TableOffset = _l1Offset };
            }
        }
    }

    /// <summary>The backing file's device, or null for an image without one.</summary>
    public IBlockDevice? Backing => _backing;

    /// <summary>The open file, for tests that copy it as a crash would leave it (a second open would meet our own lock).</summary>
    internal SafeFileHandle Handle => _file;

    /// <summary>How a flush reaches the disk; a test stands in a failing one, since a real fsync error cannot be made here.</summary>
    internal Action<SafeFileHandle> FlushToDisk { get; set; } = RandomAccess.FlushToDisk;

    private long ClusterSize => _header.ClusterSize;

    /// <summary>Opens <paramref name="path"/>; its backing files are opened read-only.</summary>
    /// <exception cref="BlockDeviceException">Not a qcow2 image HostVM can read (or write, if asked), or a bad backing chain.</exception>
    public static Qcow2BlockDevice Open(string path, bool readOnly, string? identifier = null) =>
        Open(Path.GetFullPath(path), readOnly, identifier, [], null);

    /// <summary>
    /// Opens <paramref name="path"/> for writing over <paramref name="backing"/>, a device the caller has open already
    /// (the file the header names, perhaps open for writing itself: a commit writes into it while this image still reads
    /// through it). The new device owns <paramref name="backing"/> (disposes it) until <see cref="DetachBacking"/>.
    /// </summary>
    /// <exception cref="BlockDeviceException">Not a qcow2 image HostVM can write, or one without a backing file.</exception>
    public static Qcow2BlockDevice OpenOver(string path, IBlockDevice backing, string? identifier = null)
    {
        ArgumentNullException.ThrowIfNull(backing);
        return Open(Path.GetFullPath(path), readOnly: false, identifier, [], null, backing);
    }

    /// <summary>
    /// Opens <paramref name="path"/> with exactly the backing chain <paramref name="trusted"/> (its direct backing file
    /// first, each with its format), never what the headers say beyond it: for a caller that did not write the image
    /// itself (a file a VMM had open could name any file on the host as its backing file). A header that names another
    /// file, or another format, or a chain longer or shorter, is refused.
    /// </summary>
    public static Qcow2BlockDevice Open(string path, bool readOnly, IReadOnlyList<(string Path, string Format)> trusted, string? identifier = null)
    {
        ArgumentNullException.ThrowIfNull(trusted);
        return Open(Path.GetFullPath(path), readOnly, identifier, [], [.. trusted.Select(t => (Path.GetFullPath(t.Path), t.Format))]);
    }

    private static Qcow2BlockDevice Open(string full, bool readOnly, string? identifier, List<string> chain, List<(string Path, string Format)>? trusted, IBlockDevice? given = null)
    {
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

        if (!readOnly && !OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0)
        {
            throw new BlockDeviceException($"Disk image '{full}' is read-only on the host (no write permission bits): attach it read-only, or make it writable with 'chmod u+w {full}'.", full);
        }

        chain.Add(real);
        SafeFileHandle file = RawFileBlockDevice.OpenHandle(full, readOnly);
        IBlockDevice? backing = null;
        try
        {
            RawFileBlockDevice.Lock(file, full, readOnly);
            var header = Qcow2Header.Read(file, full);
            if (!readOnly)
            {
                CheckWritable(header, full);
            }

            var l1Bytes = new byte[header.L1Size * 8];
            Qcow2Io.ReadExactly(file, l1Bytes, header.L1TableOffset, full);
            var l1 = new ulong[header.L1Size];
            for (int i = 0; i < l1.Length; i++)
            {
                l1[i] = BinaryPrimitives.ReadUInt64BigEndian(l1Bytes.AsSpan(i * 8));
            }

            int depth = chain.Count - 1;
            if (given is not null)
            {
                backing = header.BackingFile is not null ? given : throw new BlockDeviceException($"qcow2 image '{full}' has no backing file to open over.", full);
            }
            else if (trusted is not null)
            {
                // What the header names must be what the caller knows the chain to be; anything else is refused unopened.
                string? named = header.BackingFile is { } n ? Path.GetFullPath(n, Path.GetDirectoryName(full)!) : null;
                var expected = depth < trusted.Count ? trusted[depth] : default;

                // A header that names nothing opens nothing: a stream that finished dropped the chain the owner still records.
                if (named is not null && (named != expected.Path || (header.BackingFormat is { } f && f != expected.Format)))
                {
                    throw new BlockDeviceException(
                        $"qcow2 image '{full}' names the backing file '{named}' ({header.BackingFormat ?? "format unnamed"}), not " +
                        $"{(expected.Path is null ? "none" : $"'{expected.Path}' ({expected.Format})")} as its owner recorded: refused.", full);
                }

                if (named is not null)
                {
                    backing = expected.Format == "qcow2"
                        ? Open(named, readOnly: true, identifier: null, chain, trusted)
                        : OpenBacking(named, "raw", chain);
                }
            }
            else if (header.BackingFile is { } name)
            {
                string backingPath = Path.GetFullPath(name, Path.GetDirectoryName(full)!);
                backing = OpenBacking(backingPath, header.BackingFormat, chain);
            }

            var refcounts = readOnly ? null : Qcow2Refcounts.Load(file, full, header, RandomAccess.GetLength(file));
            var device = new Qcow2BlockDevice(file, full, header, backing, l1, refcounts, identifier ?? RawFileBlockDevice.IdentifierFromFileName(full));
            device.LoadBitmaps(readOnly);
            if (!readOnly)
            {
                device.BeginWriting();
            }

            return device;
        }
        catch (IOException e) when (e is not BlockDeviceException)
        {
            if (backing != given)
            {
                backing?.Dispose();
            }

            file.Dispose();
            throw new BlockDeviceException($"qcow2 image '{full}' cannot be opened: {e.Message}", full, e);
        }
        catch
        {
            if (backing != given)
            {
                backing?.Dispose();
            }

            file.Dispose();
            throw;
        }
    }

    private static void CheckWritable(Qcow2Header header, string full)
    {
        if (header.Version < 3)
        {
            throw new BlockDeviceException($"qcow2 image '{full}' is version 2, which HostVM reads but does not write: attach it read-only, or upgrade it with 'qemu-img amend -o compat=1.1 {full}'.", full);
        }

        if (header.SnapshotCount != 0)
        {
            throw new BlockDeviceException($"qcow2 image '{full}' holds {header.SnapshotCount} internal snapshots, beside which HostVM does not write: attach it read-only, or remove them with 'qemu-img snapshot -d'.", full);
        }
    }

    private static IBlockDevice OpenBacking(string path, string? format, List<string> chain)
    {
        format ??= File.Exists(path) && DiskImage.IsQcow2(path) ? "qcow2" : "raw";
        return format switch
        {
            "qcow2" => Open(path, readOnly: true, identifier: null, chain, null),
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
        CheckRange(offset, destination.Length);
        lock (_lock)
        {
            long cluster = ClusterSize;
            while (!destination.IsEmpty)
            {
                long guestCluster = offset >> _header.ClusterBits;
                long within = offset & (cluster - 1);
                ulong entry = Entry(guestCluster);
                int n = (int)Math.Min(destination.Length, cluster - within);
                if (IsData(entry))
                {
                    long host = DataHost(entry, offset);
                    n = Run(guestCluster, host + within, n, destination.Length, forWrite: false);
                    Qcow2Io.ReadExactly(_file, destination[..n], host + within, _path, allowShort: true);
                }
                else
                {
                    ReadCluster(offset, entry, within, destination[..n]);
                }

                destination = destination[n..];
                offset += n;
            }
        }
    }

    /// <summary>
    /// A guest's request comes as a list of its memory pages: read as one range (one table walk, one call per run of
    /// clusters) into a pooled buffer, then copied out.
    /// </summary>
    public void Read(long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        if (destinations.Count == 1)
        {
            Read(offset, destinations[0].Span);
            return;
        }

        int total = 0;
        foreach (var d in destinations)
        {
            total = checked(total + d.Length);
        }

        // Most requests lie in one run of clusters one after the other in the file: one preadv into the guest's pages.
        lock (_lock)
        {
            long host = ContiguousData(offset, total);
            if (host >= 0 && RandomAccess.Read(_file, destinations, host) == total)
            {
                return;
            }
        }

        BounceBuffer.ReadScattered(this, offset, destinations);
    }

    /// <summary>
    /// Gathered into one range first: written page by page, the first page of a new cluster would allocate and fill the
    /// whole cluster, and every other page would be a write of its own.
    /// </summary>
    public void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        BounceBuffer.WriteGathered(this, offset, sources);
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var refcounts = _refcounts ?? throw ReadOnlyError();
        CheckRange(offset, source.Length);
        long start = offset, length = source.Length;
        lock (_lock)
        {
            long cluster = ClusterSize;
            while (!source.IsEmpty)
            {
                long guestCluster = offset >> _header.ClusterBits;
                long within = offset & (cluster - 1);
                ulong entry = Entry(guestCluster);
                int n = (int)Math.Min(source.Length, cluster - within);
                if (IsData(entry) && (entry & CopiedFlag) != 0)
                {
                    // In place: the cluster is this image's alone.
                    long host = WritableHost(entry, offset);
                    n = Run(guestCluster, host + within, n, source.Length, forWrite: true);
                    Qcow2Io.Write(_file, source[..n], host + within);
                }
                else
                {
                    n = WriteAllocating(offset, source, refcounts);
                }

                source = source[n..];
                offset += n;
            }

            MarkBitmaps(start, length);
            WriteBackIfBusy();
        }
    }

    /// <summary>
    /// Makes every completed write durable: the pending table changes are written back in order, then the file is synced.
    /// Once an fsync has failed every later flush fails too (the kernel drops the pages it could not write and would not
    /// report it twice).
    /// </summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_refcounts is null)
        {
            return;
        }

        lock (_lock)
        {
            WriteBack();
            Sync();
        }
    }

    public void Discard(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ = _refcounts ?? throw ReadOnlyError();
        CheckRange(offset, length);

        // Whole clusters only: their space returns to the image. With a backing file they read as zeroes, not as the
        // backing file's data reappearing (a discarded range may read as anything, but old data is a poor anything).
        lock (_lock)
        {
            ForWholeClusters(offset, length, _ => _backing is null ? 0 : ZeroFlag);
            MarkBitmaps(offset, length);
            WriteBackIfBusy();
        }
    }

    public void WriteZeroes(long offset, long length, bool mayUnmap)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ = _refcounts ?? throw ReadOnlyError();
        CheckRange(offset, length);
        lock (_lock)
        {
            long cluster = ClusterSize;
            long head = Math.Min(length, (cluster - (offset & (cluster - 1))) & (cluster - 1));
            long tail = (offset + length) & (cluster - 1);
            if (head + tail > length)
            {
                tail = 0; // head and tail are the same, partial cluster
            }

            WriteZeroData(offset, head);
            WriteZeroData(offset + length - tail, tail);

            // Whole clusters become zero clusters; without mayUnmap one that had its own space keeps it (preallocated).
            ForWholeClusters(offset + head, length - head - tail, old =>
                !mayUnmap && IsData(old) && (old & CopiedFlag) != 0 ? (old & (OffsetMask | CopiedFlag)) | ZeroFlag : ZeroFlag);
            MarkBitmaps(offset, length);
            WriteBackIfBusy();
        }
    }

    /// <summary>
    /// Grows the disk to <paramref name="newSize"/> bytes (the new part reads as zeroes, or as the backing file where it
    /// reaches). A larger L1 table is written beside the old one and the header switched to it in one write.
    /// </summary>
    /// <exception cref="ArgumentException">A size that is smaller, or not a multiple of 512.</exception>
    public void Resize(long newSize)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var refcounts = _refcounts ?? throw ReadOnlyError();
        lock (_lock)
        {
            if (newSize < _size || newSize % 512 != 0 || newSize > (1L << 56))
            {
                throw new ArgumentException($"qcow2 image '{_path}' can grow to a whole number of 512-byte sectors up to 64 PiB, not from {_size} to {newSize} bytes (shrinking is not supported).", nameof(newSize));
            }

            WriteBack();
            Sync();
            long perL2 = ClusterSize / 8 * ClusterSize;
            long needed = (newSize + perL2 - 1) / perL2;
            Span<byte> field = stackalloc byte[24];
            if (needed > _l1.Length)
            {
                long clusters = ((needed * 8) + ClusterSize - 1) / ClusterSize;
                long first = AllocateRun(refcounts, clusters);
                var l1 = new ulong[clusters * ClusterSize / 8];
                _l1.CopyTo(l1, 0);
                var bytes = new byte[clusters * ClusterSize];
                for (int i = 0; i < _l1.Length; i++)
                {
                    BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), _l1[i]);
                }

                if (refcounts.WriteRaised(Sync))
                {
                    Sync();
                }

                Qcow2Io.Write(_file, bytes, first << _header.ClusterBits);
                Sync();
                BinaryPrimitives.WriteUInt64BigEndian(field, (ulong)newSize);
                BinaryPrimitives.WriteUInt32BigEndian(field[12..], (uint)l1.Length);
                BinaryPrimitives.WriteUInt64BigEndian(field[16..], (ulong)(first << _header.ClusterBits));
                Qcow2Io.Write(_file, field, Qcow2Header.SizeField); // size, crypt method (0), L1 size and offset at once
                Sync();
                for (long c = 0; c < ((_l1.Length * 8L) + ClusterSize - 1) >> _header.ClusterBits; c++)
                {
                    refcounts.FreeLater(_l1Offset + (c << _header.ClusterBits));
                }

                refcounts.WriteFreed();
                _l1 = l1;
                _l1Offset = first << _header.ClusterBits;
            }
            else
            {
                BinaryPrimitives.WriteUInt64BigEndian(field, (ulong)newSize);
                Qcow2Io.Write(_file, field[..8], Qcow2Header.SizeField);
                Sync();
            }

            Volatile.Write(ref _size, newSize);
            foreach (var bitmap in _bitmaps)
            {
                bitmap.Resize(newSize);
            }
        }
    }

    /// <summary>The image's persistent dirty bitmaps (a copy of the list; the bitmaps themselves are live).</summary>
    public IReadOnlyList<Qcow2Bitmap> Bitmaps
    {
        get
        {
            lock (_lock)
            {
                return [.. _bitmaps];
            }
        }
    }

    /// <summary>Starts a new, empty, enabled bitmap: from now on every write, discard and write-zeroes sets its bits.</summary>
    /// <exception cref="ArgumentException">A name that is empty, too long, taken, or a granularity outside 512 B-2 GiB.</exception>
    public Qcow2Bitmap AddBitmap(string name, int granularityBits = 16)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        CheckWritableBitmaps();
        if (System.Text.Encoding.UTF8.GetByteCount(name) > Qcow2Bitmap.MaxNameBytes || name.Any(char.IsControl))
        {
            throw new ArgumentException($"Bitmap name '{name}' is longer than {Qcow2Bitmap.MaxNameBytes} bytes or holds control characters.", nameof(name));
        }

        if (granularityBits is < Qcow2Bitmap.MinGranularityBits or > Qcow2Bitmap.MaxGranularityBits)
        {
            throw new ArgumentException($"Bitmap granularity 2^{granularityBits} is outside 512 B-2 GiB.", nameof(granularityBits));
        }

        lock (_lock)
        {
            if (_bitmaps.Any(b => b.Name == name))
            {
                throw new ArgumentException($"qcow2 image '{_path}' already has a bitmap '{name}'.", nameof(name));
            }

            if (_bitmaps.Count >= 65535)
            {
                throw new ArgumentException($"qcow2 image '{_path}' already has 65535 bitmaps, the most it can hold.", nameof(name));
            }

            var bitmap = new Qcow2Bitmap(name, granularityBits, _size, enabled: true, stale: false);
            _bitmaps.Add(bitmap);
            return bitmap;
        }
    }

    /// <summary>Removes a bitmap; its clusters are freed when the image is closed.</summary>
    public void RemoveBitmap(string name)
    {
        CheckWritableBitmaps();
        lock (_lock)
        {
            var bitmap = FindBitmap(name);
            _bitmaps.Remove(bitmap);
            _droppedBitmaps.Add(bitmap);
        }
    }

    /// <summary>Clears every bit (a stale bitmap becomes usable again: it records from now on).</summary>
    public void ClearBitmap(string name)
    {
        CheckWritableBitmaps();
        lock (_lock)
        {
            var bitmap = FindBitmap(name);
            if (bitmap.Stale)
            {
                // Its old table stays as it was on disk until the image is closed; the cleared copy is stored anew.
                _droppedBitmaps.Add(bitmap);
                var fresh = new Qcow2Bitmap(bitmap.Name, bitmap.GranularityBits, _size, bitmap.Enabled, stale: false);
                _bitmaps[_bitmaps.IndexOf(bitmap)] = fresh;
                return;
            }

            Array.Clear(bitmap.Bits);
        }
    }

    /// <summary>Enables (records writes) or disables (keeps its bits as they are) a bitmap.</summary>
    public void SetBitmapEnabled(string name, bool enabled)
    {
        CheckWritableBitmaps();
        lock (_lock)
        {
            FindBitmap(name).Enabled = enabled;
        }
    }

    /// <summary>Sets in <paramref name="target"/> every range set in <paramref name="source"/> (granularities may differ).</summary>
    public void MergeBitmap(string source, string target)
    {
        CheckWritableBitmaps();
        lock (_lock)
        {
            var from = Usable(FindBitmap(source));
            var to = Usable(FindBitmap(target));
            foreach (var (offset, length) in from.Extents(_size))
            {
                to.Set(offset, length);
            }
        }
    }

    /// <summary>The ranges of the disk a bitmap has set, in order, neighbours joined.</summary>
    /// <exception cref="InvalidOperationException">The bitmap is stale: its ranges cannot be trusted.</exception>
    public IReadOnlyList<(long Offset, long Length)> BitmapExtents(string name)
    {
        lock (_lock)
        {
            return Usable(FindBitmap(name)).Extents(_size);
        }
    }

    /// <summary>The image's cluster size in bytes: the unit in which it allocates, and in which block jobs copy.</summary>
    public int ClusterBytes => (int)ClusterSize;

    /// <summary>
    /// Whether this image's own tables say what the guest cluster holding <paramref name="offset"/> reads (data,
    /// compressed or zeroes) rather than its backing file: what a commit copies down, and what a stream need not pull up.
    /// </summary>
    public bool Defines(long offset)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckRange(offset, 1);
        lock (_lock)
        {
            return (Entry(offset >> _header.ClusterBits) & ~CopiedFlag) != 0;
        }
    }

    /// <summary>
    /// Removes the backing file from the header (a stream copied everything it provided into this image, so the guest sees
    /// the same bytes without it): one write of the header's backing fields, after every pending change is durable. The
    /// backing device is closed; unallocated clusters read as zeroes from now on.
    /// </summary>
    public void DropBacking()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        _ = _refcounts ?? throw ReadOnlyError();
        IBlockDevice? old;
        lock (_lock)
        {
            WriteBack();
            Sync();
            Span<byte> fields = stackalloc byte[12]; // backing_file_offset (8 bytes) and backing_file_size (4), both zero
            fields.Clear();
            Qcow2Io.Write(_file, fields, Qcow2Header.BackingFileField);
            Sync();
            old = _backing;
            _backing = null;
        }

        old?.Dispose();
    }

    /// <summary>
    /// Gives the backing device to the caller (who keeps it open after this image is closed: a commit's target becomes the
    /// drive). This image must not be read after it, only closed.
    /// </summary>
    public IBlockDevice? DetachBacking()
    {
        lock (_lock)
        {
            var backing = _backing;
            _backing = null;
            return backing;
        }
    }

    /// <summary>
    /// Carries <paramref name="other"/>'s bitmaps into this image (when the drive moves from one layer to another, so that
    /// change tracking goes on): a bitmap of the same name gets the other's bits merged in, a new one is made with the
    /// other's granularity and state. A stale bitmap stays stale.
    /// </summary>
    public void CopyBitmapsFrom(Qcow2BlockDevice other)
    {
        ArgumentNullException.ThrowIfNull(other);
        CheckWritableBitmaps();
        foreach (var from in other.Bitmaps)
        {
            var extents = from.Stale ? [] : other.BitmapExtents(from.Name);
            lock (_lock)
            {
                var to = _bitmaps.FirstOrDefault(b => b.Name == from.Name);
                if (to is null)
                {
                    to = new Qcow2Bitmap(from.Name, from.GranularityBits, _size, from.Enabled, from.Stale);
                    _bitmaps.Add(to);
                }
                else if (from.Stale)
                {
                    to.Stale = true;
                }

                foreach (var (offset, length) in extents)
                {
                    to.Set(offset, Math.Min(length, _size - offset));
                }
            }
        }
    }

    /// <summary>
    /// Clusters with data (or compressed) are data; zero clusters read as zeroes (and are holes unless preallocated);
    /// unallocated clusters show the backing file's allocation, or are holes of zeroes where there is none. Stops after
    /// <see cref="MaxMapExtents"/> extents (the caller asks again from where it ended).
    /// </summary>
    public IReadOnlyList<BlockExtent> MapAllocation(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckRange(offset, length);
        var extents = new List<BlockExtent>();
        long end = offset + length;
        lock (_lock)
        {
            for (long at = offset; at < end && extents.Count < MaxMapExtents;)
            {
                long guestCluster = at >> _header.ClusterBits;
                long next = Math.Min((guestCluster + 1) << _header.ClusterBits, end);
                ulong entry = Entry(guestCluster);
                BlockExtent extent;
                if ((entry & CompressedFlag) != 0 || IsData(entry) || ((entry & OffsetMask) != 0 && _header.Version < 3))
                {
                    extent = new BlockExtent(at, next - at, Hole: false, Zero: false);
                }
                else if ((entry & ZeroFlag) != 0)
                {
                    extent = new BlockExtent(at, next - at, Hole: (entry & OffsetMask) == 0, Zero: true);
                }
                else if (_backing is { } backing && at < backing.Length)
                {
                    long upTo = Math.Min(next, backing.Length);
                    extent = backing is IAllocationMap map ? map.MapAllocation(at, upTo - at)[0] : new BlockExtent(at, upTo - at, Hole: false, Zero: false);
                }
                else
                {
                    extent = new BlockExtent(at, next - at, Hole: true, Zero: true);
                }

                if (extents.Count > 0 && extents[^1] is { } last && last.End == extent.Offset && last.Hole == extent.Hole && last.Zero == extent.Zero)
                {
                    extents[^1] = last with { Length = last.Length + extent.Length };
                }
                else
                {
                    extents.Add(extent);
                }

                at = extent.End;
            }
        }

        return extents;
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        lock (_lock)
        {
            _disposed = true;
            if (_refcounts is not null && _flushFailure is null)
            {
                try
                {
                    // A clean close: everything written back, the bitmaps stored, then the dirty bit cleared.
                    WriteBack();
                    Sync();
                    if (_bitmaps.Count != 0 || _droppedBitmaps.Count != 0 || _header.HasBitmaps)
                    {
                        StoreBitmaps();
                    }

                    WriteIncompatible(_header.IncompatibleFeatures & ~Qcow2Header.IncompatibleDirty);
                    Sync();
                }
                catch (IOException)
                {
                    // The image stays marked dirty and consistent (leaks at most): the next opener repairs its counts.
                }
            }
        }

        _backing?.Dispose();
        _file.Dispose();
    }

    public override string ToString() => $"qcow2 image '{_path}'{(ReadOnly ? " (read-only)" : string.Empty)}";

    private static bool IsData(ulong entry) => (entry & CompressedFlag) == 0 && (entry & ZeroFlag) == 0 && (entry & OffsetMask) != 0;

    private void BeginWriting()
    {
        lock (_lock)
        {
            // Autoclear bits HostVM does not know go (so what they guard is not trusted); the bitmaps' bit stays if they are valid.
            ulong autoclear = _bitmaps.Count != 0 ? Qcow2BitmapStore.AutoclearBitmaps : 0;
            if (_header.AutoclearFeatures != autoclear)
            {
                Span<byte> field = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64BigEndian(field, autoclear);
                Qcow2Io.Write(_file, field, Qcow2Header.AutoclearField);
            }

            if (_header.Dirty)
            {
                RepairCounts();
            }

            // While open, the bitmaps on disk are out of date: marked in use, so that a crash leaves them known stale.
            if (_bitmaps.Count != 0)
            {
                Qcow2Io.Write(_file, Qcow2BitmapStore.Directory(_bitmaps, b => Qcow2BitmapStore.FlagInUse | (b.Enabled ? Qcow2BitmapStore.FlagAuto : 0)), _bitmapDirectoryOffset);
            }

            WriteIncompatible(_header.IncompatibleFeatures | Qcow2Header.IncompatibleDirty);
            Sync();
        }
    }

    /// <summary>
    /// The image was not closed cleanly: every cluster its tables refer to gets at least that many counts (QEMU's lazy
    /// refcounts leave them too low), and counts nothing refers to fall (leaks, which HostVM's own crashes leave). With
    /// structures HostVM does not walk (bitmaps), only the raising is done.
    /// </summary>
    private void RepairCounts()
    {
        var refcounts = _refcounts!;
        var references = new Dictionary<long, ulong>();
        int bits = _header.ClusterBits;
        long limit = refcounts.FileEnd;
        void Count(long host, long bytes)
        {
            for (long c = host >> bits; c <= (host + bytes - 1) >> bits; c++)
            {
                if (c << bits < limit)
                {
                    references[c] = references.GetValueOrDefault(c) + 1;
                }
            }
        }

        Count(0, ClusterSize);
        Count(_l1Offset, _l1.Length * 8L);
        Count(refcounts.TableOffset, (long)refcounts.TableClusters << bits);
        var table = new byte[(long)refcounts.TableClusters << bits];
        Qcow2Io.ReadExactly(_file, table, refcounts.TableOffset, _path);
        for (int i = 0; i < table.Length; i += 8)
        {
            ulong block = BinaryPrimitives.ReadUInt64BigEndian(table.AsSpan(i)) & 0xffff_ffff_ffff_fe00;
            if (block != 0)
            {
                Count((long)block, ClusterSize);
            }
        }

        foreach (long cluster in _bitmapClusters)
        {
            Count(cluster, ClusterSize);
        }

        foreach (ulong l1 in _l1)
        {
            long l2 = (long)(l1 & OffsetMask);
            if (l2 == 0 || l2 % ClusterSize != 0 || l2 >= limit)
            {
                continue;
            }

            Count(l2, ClusterSize);
            foreach (ulong entry in L2(l2).Entries)
            {
                if ((entry & CompressedFlag) != 0)
                {
                    var (host, bytes) = CompressedRange(entry);
                    Count(host, bytes);
                }
                else if ((entry & OffsetMask) != 0)
                {
                    Count((long)(entry & OffsetMask), ClusterSize);
                }
            }
        }

        foreach (var (cluster, count) in references)
        {
            refcounts.Raise(cluster, count);
        }

        // Every structure that refers to clusters is counted (snapshots are refused, bitmaps walked): the rest leaked.
        for (long c = 0; c < limit >> bits; c++)
        {
            refcounts.Lower(c, references.GetValueOrDefault(c));
        }

        if (refcounts.WriteRaised(Sync))
        {
            Sync();
        }
    }

    private void LoadBitmaps(bool readOnly)
    {
        List<Qcow2Bitmap> bitmaps;
        try
        {
            (bitmaps, _bitmapDirectoryOffset, _bitmapDirectorySize) = Qcow2BitmapStore.Load(_file, _path, _header, _openedLength);
        }
        catch (IOException) when (readOnly)
        {
            return; // reading the disk does not need them; writing it would, and is refused
        }

        _bitmaps.AddRange(bitmaps);
        foreach (long c in OnDiskClusters(_bitmapDirectoryOffset, _bitmapDirectorySize))
        {
            _bitmapClusters.Add(c);
        }

        foreach (var bitmap in bitmaps)
        {
            foreach (long c in BitmapClusters(bitmap))
            {
                _bitmapClusters.Add(c);
            }
        }
    }

    /// <summary>
    /// Stores the bitmaps at a clean close: new data clusters, tables and directory first, synced, then the header
    /// switched to them in one write, synced, and only then the old ones freed. A crash before the switch leaves the old
    /// directory (marked in use: stale) and leaked clusters; after it, the new bitmaps.
    /// </summary>
    private void StoreBitmaps()
    {
        var refcounts = _refcounts!;
        int bits = _header.ClusterBits;
        long cluster = ClusterSize;
        var freed = new List<long>(OnDiskClusters(_bitmapDirectoryOffset, _bitmapDirectorySize));
        foreach (var dropped in _droppedBitmaps)
        {
            freed.AddRange(BitmapClusters(dropped));
        }

        foreach (var bitmap in _bitmaps)
        {
            if (bitmap.Stale)
            {
                continue; // kept as it was on disk, still marked in use
            }

            freed.AddRange(BitmapClusters(bitmap));
            long tableSize = (bitmap.BitCount(_size) + (cluster * 8) - 1) / (cluster * 8);
            var table = new byte[((tableSize * 8) + cluster - 1) / cluster * cluster];
            for (long i = 0; i < tableSize; i++)
            {
                if (Qcow2BitmapStore.DataCluster(bitmap, i, cluster) is { } data)
                {
                    long host = refcounts.Allocate(1, out _) << bits;
                    Qcow2Io.Write(_file, data, host);
                    BinaryPrimitives.WriteUInt64BigEndian(table.AsSpan((int)(i * 8)), (ulong)host);
                }
            }

            bitmap.TableOffset = AllocateRun(refcounts, table.Length / cluster) << bits;
            bitmap.TableSize = (int)tableSize;
            Qcow2Io.Write(_file, table, bitmap.TableOffset);
        }

        var extensions = _header.Extensions.Where(e => e.Type != Qcow2Header.ExtensionBitmaps).ToList();
        if (_bitmaps.Count != 0)
        {
            var directory = Qcow2BitmapStore.Directory(_bitmaps, b => (b.Stale ? Qcow2BitmapStore.FlagInUse : 0) | (b.Enabled ? Qcow2BitmapStore.FlagAuto : 0));
            long at = AllocateRun(refcounts, (directory.Length + cluster - 1) / cluster) << bits;
            Qcow2Io.Write(_file, directory, at);
            extensions.Add((Qcow2Header.ExtensionBitmaps, Qcow2BitmapStore.Extension(_bitmaps.Count, at, directory.Length)));
        }

        refcounts.WriteRaised(Sync);
        Sync();
        var current = new byte[_header.HeaderLength];
        Qcow2Io.ReadExactly(_file, current, 0, _path);
        Qcow2Io.Write(_file, _header.Rewrite(current, extensions, _bitmaps.Count != 0 ? Qcow2BitmapStore.AutoclearBitmaps : 0, _path), 0);
        Sync();
        foreach (long c in freed)
        {
            refcounts.FreeLater(c);
        }

        refcounts.WriteFreed();
        _droppedBitmaps.Clear();
    }

    private IEnumerable<long> BitmapClusters(Qcow2Bitmap bitmap) =>
        bitmap.TableOffset == 0 ? [] : OnDiskClusters(bitmap.TableOffset, bitmap.TableSize * 8L).Concat(bitmap.DataClusters);

    private IEnumerable<long> OnDiskClusters(long offset, long bytes)
    {
        for (long c = offset; bytes > 0 && c < offset + bytes; c += ClusterSize)
        {
            yield return c;
        }
    }

    private void MarkBitmaps(long offset, long length)
    {
        foreach (var bitmap in _bitmaps)
        {
            bitmap.Mark(offset, length);
        }
    }

    private void CheckWritableBitmaps()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_refcounts is null)
        {
            throw new InvalidOperationException($"qcow2 image '{_path}' is open read-only: its bitmaps cannot change.");
        }
    }

    private Qcow2Bitmap FindBitmap(string name) =>
        _bitmaps.FirstOrDefault(b => b.Name == name) ?? throw new ArgumentException($"qcow2 image '{_path}' has no bitmap '{name}'.", nameof(name));

    private Qcow2Bitmap Usable(Qcow2Bitmap bitmap) => bitmap.Stale
        ? throw new InvalidOperationException($"Bitmap '{bitmap.Name}' of qcow2 image '{_path}' is stale (the image was not closed cleanly while it was in use): clear or remove it; a backup from it must be a full one.")
        : bitmap;

    private void WriteIncompatible(ulong features)
    {
        Span<byte> field = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(field, features);
        Qcow2Io.Write(_file, field, Qcow2Header.IncompatibleField);
    }

    /// <summary>Writes clusters that are not yet this image's own: each gets new space, filled with its old content around the new bytes. Returns the bytes of <paramref name="source"/> written.</summary>
    private int WriteAllocating(long offset, ReadOnlySpan<byte> source, Qcow2Refcounts refcounts)
    {
        long cluster = ClusterSize;
        int bits = _header.ClusterBits;
        long firstCluster = offset >> bits;
        long within = offset & (cluster - 1);

        // The run: consecutive clusters of this write that all need new space, up to a bound.
        long lastCluster = (offset + source.Length - 1) >> bits;
        long count = 1;
        while (firstCluster + count <= lastCluster && count * cluster < MaxRunBytes)
        {
            ulong e = Entry(firstCluster + count);
            if (IsData(e) && (e & CopiedFlag) != 0)
            {
                break;
            }

            count++;
        }

        // Tables first, so that the data clusters lie together after them.
        for (long c = firstCluster; c < firstCluster + count; c += cluster / 8)
        {
            EnsureL2(c >> (bits - 3));
        }

        EnsureL2((firstCluster + count - 1) >> (bits - 3));
        long host = refcounts.Allocate((int)count, out int got);
        int bytes = (int)Math.Min(source.Length, (got * cluster) - within);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)(got * cluster));
        try
        {
            var run = buffer.AsSpan(0, (int)(got * cluster));
            if (within != 0)
            {
                ReadCluster(firstCluster << bits, Entry(firstCluster), 0, run[..(int)cluster]);
            }

            long end = within + bytes;
            if ((end & (cluster - 1)) != 0 && (got > 1 || within == 0))
            {
                long lastIndex = (end - 1) >> bits;
                ReadCluster((firstCluster + lastIndex) << bits, Entry(firstCluster + lastIndex), 0, run.Slice((int)(lastIndex * cluster), (int)cluster));
            }

            source[..bytes].CopyTo(run[(int)within..]);
            Qcow2Io.Write(_file, run, host << bits);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        for (long j = 0; j < got; j++)
        {
            SetEntry(firstCluster + j, (ulong)((host + j) << bits) | CopiedFlag);
        }

        return bytes;
    }

    private void WriteZeroData(long offset, long length)
    {
        if (length == 0)
        {
            return;
        }

        // Only a partial cluster comes here: a cluster-sized buffer is enough.
        Span<byte> zeroes = new byte[length];
        Write(offset, zeroes);
    }

    /// <summary>Gives every cluster wholly inside the range the entry <paramref name="replace"/> makes from its old one, freeing the old space when the new entry does not keep it.</summary>
    private void ForWholeClusters(long offset, long length, Func<ulong, ulong> replace)
    {
        long cluster = ClusterSize;
        long first = (offset + cluster - 1) >> _header.ClusterBits;
        long end = (offset + length) >> _header.ClusterBits;
        if (offset + length == _size)
        {
            end = (_size + cluster - 1) >> _header.ClusterBits; // the disk's last, partial cluster counts as whole
        }

        for (long c = first; c < end; c++)
        {
            ulong old = Entry(c);
            ulong now = replace(old);

            // Without a backing file an unallocated cluster already reads as zeroes: no table needs to change for it.
            if (old == now || (old == 0 && _backing is null))
            {
                continue;
            }

            SetEntry(c, now);
        }
    }

    private void SetEntry(long guestCluster, ulong entry)
    {
        int bits = _header.ClusterBits;
        var table = EnsureL2(guestCluster >> (bits - 3));
        int index = (int)(guestCluster & ((1L << (bits - 3)) - 1));
        ulong old = table.Entries[index];
        if ((old & CompressedFlag) != 0)
        {
            var (host, bytes) = CompressedRange(old);
            for (long c = host >> bits; c <= (host + bytes - 1) >> bits; c++)
            {
                _refcounts!.FreeLater(c << bits);
            }
        }
        else if ((old & OffsetMask) != 0 && (old & OffsetMask) != (entry & OffsetMask))
        {
            _refcounts!.FreeLater((long)(old & OffsetMask));
        }

        table.Entries[index] = entry;
        if (!table.Dirty)
        {
            table.Dirty = true;
            _dirtyL2++;
        }
    }

    private L2Table EnsureL2(long l1Index)
    {
        long offset = (long)(_l1[l1Index] & OffsetMask);
        if (offset != 0)
        {
            return L2(offset);
        }

        long host = _refcounts!.Allocate(1, out _) << _header.ClusterBits;
        var table = new L2Table(new ulong[ClusterSize / 8]) { Dirty = true };
        _dirtyL2++;
        _l2Cache[host] = table;
        _l2Order.Enqueue(host);
        _l2Offsets.Add(host);
        _l1[l1Index] = (ulong)host | CopiedFlag;
        _dirtyL1.Add((int)l1Index);
        return table;
    }

    /// <summary>Hands out <paramref name="clusters"/> clusters in a row (the L1 table must be contiguous).</summary>
    private long AllocateRun(Qcow2Refcounts refcounts, long clusters)
    {
        while (true)
        {
            long first = refcounts.Allocate((int)clusters, out int got);
            if (got == clusters)
            {
                return first;
            }

            // Too short a gap: keep it counted until the next write-back (leaked at worst) and look further on.
            for (long c = first; c < first + got; c++)
            {
                refcounts.FreeLater(c << _header.ClusterBits);
            }
        }
    }

    /// <summary>Where guest bytes [offset, offset + length) lie in the file if they are all data in one run, else -1.</summary>
    private long ContiguousData(long offset, int length)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckRange(offset, length);
        lock (_lock)
        {
            ulong entry = Entry(offset >> _header.ClusterBits);
            if (!IsData(entry))
            {
                return -1;
            }

            long within = offset & (ClusterSize - 1);
            long host = DataHost(entry, offset) + within;
            int first = (int)Math.Min(length, ClusterSize - within);
            return Run(offset >> _header.ClusterBits, host, first, length, forWrite: false) == length ? host : -1;
        }
    }

    /// <summary>
    /// Extends <paramref name="n"/> bytes at host offset <paramref name="at"/> (guest cluster <paramref name="guestCluster"/>
    /// onwards) over the following clusters whose data lies right after in the file, up to <paramref name="length"/>
    /// bytes: one read or write call for them all.
    /// </summary>
    private int Run(long guestCluster, long at, int n, int length, bool forWrite)
    {
        while (n < length)
        {
            ulong next = Entry(++guestCluster);
            if (!IsData(next) || (forWrite && (next & CopiedFlag) == 0))
            {
                break;
            }

            long guestOffset = guestCluster << _header.ClusterBits;
            if ((forWrite ? WritableHost(next, guestOffset) : DataHost(next, guestOffset)) != at + n)
            {
                break;
            }

            n += (int)Math.Min(length - n, ClusterSize);
        }

        return n;
    }

    private void WriteBackIfBusy()
    {
        if (_dirtyL2 > _cachedL2Tables / 2 || (_refcounts?.PendingFrees ?? 0) > 65536)
        {
            WriteBack();
        }
    }

    /// <summary>Writes the pending table changes in dependency order (see the class summary). Caller holds the lock.</summary>
    private void WriteBack()
    {
        var refcounts = _refcounts!;
        if (_flushFailure is not null)
        {
            throw Latched();
        }

        if (refcounts.WriteRaised(Sync))
        {
            Sync(); // counts (and the data written into the new clusters) are durable before any table refers to them
        }

        if (_dirtyL2 != 0)
        {
            var bytes = new byte[ClusterSize];
            foreach (var (offset, table) in _l2Cache)
            {
                if (table.Dirty)
                {
                    for (int i = 0; i < table.Entries.Length; i++)
                    {
                        BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), table.Entries[i]);
                    }

                    Qcow2Io.Write(_file, bytes, offset);
                    table.Dirty = false;
                }
            }

            _dirtyL2 = 0;
        }

        if (_dirtyL1.Count != 0)
        {
            Sync(); // new L2 tables are durable before the L1 entries that point at them
            Span<byte> entry = stackalloc byte[8];
            foreach (int i in _dirtyL1)
            {
                BinaryPrimitives.WriteUInt64BigEndian(entry, _l1[i]);
                Qcow2Io.Write(_file, entry, _l1Offset + (i * 8L));
            }

            _dirtyL1.Clear();
        }

        if (refcounts.PendingFrees != 0)
        {
            Sync(); // nothing durable refers to the freed clusters any more
            refcounts.WriteFreed();
        }

        TrimL2Cache();
    }

    private void Sync()
    {
        if (_flushFailure is not null)
        {
            throw Latched();
        }

        try
        {
            FlushToDisk(_file);
        }
        catch (IOException e)
        {
            _flushFailure = e;
            throw;
        }
    }

    private IOException Latched() =>
        new($"qcow2 image '{_path}': an earlier flush failed ({_flushFailure!.Message}); writes since then may be lost, so no flush succeeds again until the image is reopened.", _flushFailure);

    private ulong Entry(long guestCluster)
    {
        int l2Bits = _header.ClusterBits - 3;
        long l1Index = guestCluster >> l2Bits;
        if (l1Index >= _l1.Length)
        {
            return 0;
        }

        ulong l2Offset = _l1[l1Index] & OffsetMask;
        return l2Offset == 0 ? 0 : L2((long)l2Offset).Entries[guestCluster & ((1L << l2Bits) - 1)];
    }

    private long Limit => _refcounts?.FileEnd ?? _openedLength;

    private long DataHost(ulong entry, long guestOffset)
    {
        long host = (long)(entry & OffsetMask);
        if (host % ClusterSize != 0 || host >= Limit)
        {
            throw Corrupt($"the data cluster of guest byte {guestOffset} is at {host}, outside the file or not aligned");
        }

        return host;
    }

    private long WritableHost(ulong entry, long guestOffset)
    {
        long host = DataHost(entry, guestOffset);
        if (host == 0 || (host >= _l1Offset && host < _l1Offset + (_l1.Length * 8L)) || _l2Offsets.Contains(host) || _refcounts!.IsMetadata(host) || _bitmapClusters.Contains(host))
        {
            throw Corrupt($"the data cluster of guest byte {guestOffset} is at {host}, on the image's own tables");
        }

        return host;
    }

    /// <summary>Reads the part of one guest cluster that is not plain data: compressed, zero, or unallocated.</summary>
    private void ReadCluster(long offset, ulong entry, long within, Span<byte> destination)
    {
        if ((entry & CompressedFlag) != 0)
        {
            ReadCompressed(entry, within, destination);
        }
        else if ((entry & ZeroFlag) != 0 && _header.Version >= 3)
        {
            destination.Clear();
        }
        else if ((entry & OffsetMask) != 0)
        {
            Qcow2Io.ReadExactly(_file, destination, DataHost(entry, offset) + within, _path, allowShort: true);
        }
        else if (_backing is { } backing && (offset & ~(ClusterSize - 1)) + within < backing.Length)
        {
            long at = (offset & ~(ClusterSize - 1)) + within;
            int fromBacking = (int)Math.Min(destination.Length, backing.Length - at);
            backing.Read(at, destination[..fromBacking]);
            destination[fromBacking..].Clear();
        }
        else
        {
            destination.Clear();
        }
    }

    private (long Host, long Bytes) CompressedRange(ulong entry)
    {
        int clusterBits = _header.ClusterBits;
        int offsetBits = 62 - (clusterBits - 8);
        long host = (long)(entry & ((1UL << offsetBits) - 1));
        long sectors = (long)((entry >> offsetBits) & ((1UL << (clusterBits - 8)) - 1)) + 1;
        return (host & ~511L, sectors * 512);
    }

    private void ReadCompressed(ulong entry, long within, Span<byte> destination)
    {
        int clusterBits = _header.ClusterBits;
        int offsetBits = 62 - (clusterBits - 8);
        long host = (long)(entry & ((1UL << offsetBits) - 1));
        var (start, span) = CompressedRange(entry);
        long length = span - (host - start);
        long fileLength = RandomAccess.GetLength(_file);
        if (host <= 0 || host >= fileLength || length <= 0)
        {
            throw Corrupt($"a compressed cluster at {host} lies outside the file");
        }

        length = Math.Min(length, fileLength - host); // the last compressed cluster may end before its last sector does
        if (_inflatedAt != host)
        {
            var compressed = new byte[length];
            Qcow2Io.ReadExactly(_file, compressed, host, _path, allowShort: true);
            var cluster = _inflated ??= new byte[ClusterSize];
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

    private L2Table L2(long offset)
    {
        if (_l2Cache.TryGetValue(offset, out var cached))
        {
            return cached;
        }

        long size = ClusterSize;
        if (offset % size != 0 || offset > Limit - size)
        {
            throw Corrupt($"an L2 table is at {offset}, outside the file or not aligned");
        }

        var bytes = new byte[size];
        Qcow2Io.ReadExactly(_file, bytes, offset, _path);
        var table = new ulong[size / 8];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }

        var entry = new L2Table(table);
        _l2Cache[offset] = entry;
        _l2Order.Enqueue(offset);
        TrimL2Cache();
        return entry;
    }

    /// <summary>Drops the oldest clean tables beyond the cache's size; tables with pending changes stay until written back.</summary>
    private void TrimL2Cache()
    {
        for (int tries = _l2Order.Count; _l2Cache.Count > _cachedL2Tables && tries > 0; tries--)
        {
            long offset = _l2Order.Dequeue();
            if (_l2Cache.TryGetValue(offset, out var table) && table.Dirty)
            {
                _l2Order.Enqueue(offset);
            }
            else
            {
                _l2Cache.Remove(offset);
            }
        }
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"range {offset}+{length} is outside the {Length}-byte disk");
        }
    }

    private IOException ReadOnlyError() => new($"qcow2 image '{_path}' is open read-only.");

    private IOException Corrupt(string what) => new($"qcow2 image '{_path}' is corrupt: {what}.");

    private sealed class L2Table(ulong[] entries)
    {
        public ulong[] Entries { get; } = entries;

        public bool Dirty { get; set; }
    }
}
