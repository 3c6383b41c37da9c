using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage.Qcow2;

/// <summary>
/// A writable qcow2 image's reference counts: the refcount table and the refcount blocks it points at, held in memory
/// and written back in an order that keeps the file consistent at every moment. A count only ever rises on disk before
/// anything that refers to the cluster is written, and only falls after the last reference to it is durably gone, so a
/// crash (a kill, a power cut after the fsyncs) leaves counts that are right or too high (leaked clusters), never too
/// low: a cluster in use is never handed out twice.
/// </summary>
internal sealed class Qcow2Refcounts
{
    private const ulong OffsetMask = 0xffff_ffff_ffff_fe00; // refcount table entries: bits 9-63

    private readonly SafeFileHandle _file;
    private readonly string _path;
    private readonly int _clusterBits;
    private readonly int _bits;
    private readonly long _perBlock;
    private readonly ulong _max;
    // Blocks stay once read: one 64 KiB block counts 2 GiB of a 64 KiB-cluster image.
    private readonly Dictionary<long, Block> _blocks = [];
    private readonly HashSet<long> _blockOffsets = [];
    private readonly SortedSet<long> _dirtyEntries = [];
    private readonly List<long> _pendingFrees = []; // once per reference dropped (compressed clusters share host clusters)
    private readonly HashSet<long> _pendingSet = []; // the same clusters, for the allocator's look-up
    private ulong[] _table;
    private long _freeHint;
    private long _oldTableOffset;
    private int _oldTableClusters;

    private Qcow2Refcounts(SafeFileHandle file, string path, Qcow2Header header, ulong[] table, long fileEnd)
    {
        _file = file;
        _path = path;
        _clusterBits = header.ClusterBits;
        _bits = 1 << header.RefcountOrder;
        _perBlock = (header.ClusterSize * 8) / _bits;
        _max = _bits == 64 ? ulong.MaxValue : (1UL << _bits) - 1;
        _table = table;
        TableOffset = header.RefcountTableOffset;
        TableClusters = header.RefcountTableClusters;
        FileEnd = fileEnd;
    }

    /// <summary>Where the refcount table is now (it moves when it grows).</summary>
    public long TableOffset { get; private set; }

    public int TableClusters { get; private set; }

    /// <summary>One past the last byte of any cluster in use or handed out (the file may be shorter: sparse).</summary>
    public long FileEnd { get; private set; }

    /// <summary>Clusters whose counts fall once the references to them are durably gone.</summary>
    public int PendingFrees => _pendingFrees.Count;

    private long ClusterSize => 1L << _clusterBits;

    /// <summary>Reads the refcount table of an image opened for writing.</summary>
    public static Qcow2Refcounts Load(SafeFileHandle file, string path, Qcow2Header header, long fileLength)
    {
        var bytes = new byte[(long)header.RefcountTableClusters << header.ClusterBits];
        Qcow2Io.ReadExactly(file, bytes, header.RefcountTableOffset, path);
        var table = new ulong[bytes.Length / 8];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = BinaryPrimitives.ReadUInt64BigEndian(bytes.AsSpan(i * 8));
        }

        long fileEnd = (fileLength + header.ClusterSize - 1) & ~(header.ClusterSize - 1);
        var refcounts = new Qcow2Refcounts(file, path, header, table, fileEnd);
        foreach (ulong entry in table)
        {
            if ((entry & OffsetMask) != 0)
            {
                refcounts._blockOffsets.Add((long)(entry & OffsetMask));
            }
        }

        if ((table[0] & OffsetMask) == 0)
        {
            throw new BlockDeviceException($"qcow2 image '{path}': its first refcount block is missing, so its header cluster has no count.", path);
        }

        return refcounts;
    }

    /// <summary>Whether <paramref name="hostOffset"/> is a refcount block or part of the refcount table (never guest data).</summary>
    public bool IsMetadata(long hostOffset)
    {
        if (hostOffset >= TableOffset && hostOffset < TableOffset + ((long)TableClusters << _clusterBits))
        {
            return true;
        }

        return _blockOffsets.Contains(hostOffset);
    }

    /// <summary>The count of the cluster at host cluster index <paramref name="cluster"/>.</summary>
    public ulong Get(long cluster)
    {
        long b = cluster / _perBlock;
        if (b >= _table.Length || (_table[b] & OffsetMask) == 0)
        {
            return 0;
        }

        return Read(Load(b).Data, cluster % _perBlock);
    }

    /// <summary>
    /// Hands out up to <paramref name="wanted"/> free clusters in a row (at least one) and counts them as used; returns
    /// the first one's index. The caller refers to them only after <see cref="WriteBack"/> has run its first part.
    /// </summary>
    public long Allocate(int wanted, out int got)
    {
        long start = _freeHint;
        while (!IsFree(start))
        {
            start++;
        }

        Set(start, 1);
        got = 1;
        while (got < wanted && IsFree(start + got))
        {
            Set(start + got, 1);
            got++;
        }

        _freeHint = start + got;
        return start;
    }

    /// <summary>Raises a cluster's count to at least <paramref name="to"/> (a repair of a count found too low).</summary>
    public void Raise(long cluster, ulong to)
    {
        if (Get(cluster) < to)
        {
            Set(cluster, Math.Min(to, _max));
        }
    }

    /// <summary>Sets a cluster's count to <paramref name="to"/> where it is higher (a leak's repair: nothing refers to it).</summary>
    public void Lower(long cluster, ulong to)
    {
        if (Get(cluster) > to)
        {
            Set(cluster, to);
            _freeHint = Math.Min(_freeHint, cluster);
        }
    }

    /// <summary>The cluster at <paramref name="hostOffset"/> loses a reference once the table that dropped it is durable.</summary>
    public void FreeLater(long hostOffset)
    {
        _pendingFrees.Add(hostOffset >> _clusterBits);
        _pendingSet.Add(hostOffset >> _clusterBits);
    }

    /// <summary>
    /// The first part of a write-back: every count raised since the last one reaches the file, then the table entries
    /// (or a whole new table and the header fields naming it) that point at new blocks. Each step is synced before the
    /// next refers to it. Returns whether anything was written (the caller syncs before writing what refers to it).
    /// </summary>
    public bool WriteRaised(Action sync)
    {
        bool wrote = false;
        foreach (var (index, block) in _blocks)
        {
            if (block.Dirty)
            {
                Qcow2Io.Write(_file, block.Data, (long)(_table[index] & OffsetMask));
                block.Dirty = false;
                wrote = true;
            }
        }

        if (_oldTableClusters != 0)
        {
            sync();
            var bytes = new byte[(long)TableClusters << _clusterBits];
            for (int i = 0; i < _table.Length; i++)
            {
                BinaryPrimitives.WriteUInt64BigEndian(bytes.AsSpan(i * 8), _table[i]);
            }

            Qcow2Io.Write(_file, bytes, TableOffset);
            sync();
            Span<byte> field = stackalloc byte[12];
            BinaryPrimitives.WriteUInt64BigEndian(field, (ulong)TableOffset);
            BinaryPrimitives.WriteUInt32BigEndian(field[8..], (uint)TableClusters);
            Qcow2Io.Write(_file, field, Qcow2Header.RefcountTableField);
            for (long c = 0; c < _oldTableClusters; c++)
            {
                FreeLater(_oldTableOffset + (c << _clusterBits));
            }

            _oldTableClusters = 0;
            _dirtyEntries.Clear();
            wrote = true;
        }
        else if (_dirtyEntries.Count != 0)
        {
            sync();
            Span<byte> entry = stackalloc byte[8];
            foreach (long i in _dirtyEntries)
            {
                BinaryPrimitives.WriteUInt64BigEndian(entry, _table[i]);
                Qcow2Io.Write(_file, entry, TableOffset + (i * 8));
            }

            _dirtyEntries.Clear();
            wrote = true;
        }

        return wrote;
    }

    /// <summary>
    /// The last part of a write-back, once nothing durable refers to the freed clusters: their counts fall and reach the
    /// file. Losing these writes in a crash only leaks the clusters.
    /// </summary>
    public void WriteFreed()
    {
        if (_pendingFrees.Count == 0)
        {
            return;
        }

        foreach (long cluster in _pendingFrees)
        {
            ulong count = Get(cluster);
            if (count == 0)
            {
                continue; // a count already zero (two references to one cluster in a damaged image): leave it, never wrap
            }

            Set(cluster, count - 1);
            if (count == 1)
            {
                _freeHint = Math.Min(_freeHint, cluster);
            }
        }

        _pendingFrees.Clear();
        _pendingSet.Clear();
        foreach (var (index, block) in _blocks)
        {
            if (block.Dirty)
            {
                Qcow2Io.Write(_file, block.Data, (long)(_table[index] & OffsetMask));
                block.Dirty = false;
            }
        }
    }

    private bool IsPendingFree(long cluster) => _pendingSet.Contains(cluster);

    /// <summary>
    /// Whether the cluster can be handed out, making the refcount block that will count it first (a new block takes the
    /// first cluster of its own range, which may be this one).
    /// </summary>
    private bool IsFree(long cluster)
    {
        if (cluster == 0 || Get(cluster) != 0 || IsPendingFree(cluster))
        {
            return false;
        }

        long b = cluster / _perBlock;
        if (b >= _table.Length)
        {
            Grow(b);
        }

        if ((_table[b] & OffsetMask) == 0)
        {
            MakeBlock(b, b * _perBlock);
        }

        return Get(cluster) == 0;
    }

    private void Set(long cluster, ulong value)
    {
        long b = cluster / _perBlock;
        if (b >= _table.Length)
        {
            Grow(b);
        }

        if ((_table[b] & OffsetMask) == 0)
        {
            MakeBlock(b, b * _perBlock);
        }

        var block = Load(b);
        Write(block.Data, cluster % _perBlock, value);
        block.Dirty = true;
        if (value != 0)
        {
            FileEnd = Math.Max(FileEnd, (cluster + 1) << _clusterBits); // a table growing now goes after it
        }
    }

    /// <summary>A new, empty refcount block for range <paramref name="b"/>, placed at host cluster <paramref name="at"/> (counted in whichever block covers it).</summary>
    private void MakeBlock(long b, long at)
    {
        if (at == 0)
        {
            throw new IOException($"qcow2 image '{_path}' is corrupt: its first refcount block is missing.");
        }

        var block = new Block(new byte[ClusterSize]) { Dirty = true };
        _blocks[b] = block;
        _table[b] = (ulong)(at << _clusterBits);
        _blockOffsets.Add(at << _clusterBits);
        _dirtyEntries.Add(b);
        FileEnd = Math.Max(FileEnd, (at + 1) << _clusterBits);
        if (at / _perBlock == b)
        {
            Write(block.Data, at % _perBlock, 1); // the usual case: the block is the first cluster of its own range
        }
        else
        {
            Set(at, 1);
        }
    }

    /// <summary>
    /// The table has no entry for block <paramref name="needed"/>: a larger table goes after the end of the file, with
    /// the blocks that count its own clusters right after it. It replaces the old one at the next write-back.
    /// </summary>
    private void Grow(long needed)
    {
        long perTableCluster = ClusterSize / 8;
        long start = FileEnd >> _clusterBits;
        long entries = Math.Max(needed + 1, _table.Length * 2L);
        while (true)
        {
            long clusters = (entries + perTableCluster - 1) / perTableCluster;
            entries = clusters * perTableCluster;

            // How many new blocks the table's clusters and those blocks need, counted until it settles.
            long blocks = 0;
            while (true)
            {
                long first = start / _perBlock, last = (start + clusters + blocks - 1) / _perBlock;
                long missing = 0;
                for (long b = first; b <= last; b++)
                {
                    if (b >= _table.Length || (_table[b] & OffsetMask) == 0)
                    {
                        missing++;
                    }
                }

                if (missing == blocks)
                {
                    break;
                }

                blocks = missing;
            }

            long lastBlock = (start + clusters + blocks - 1) / _perBlock;
            if (lastBlock >= entries)
            {
                entries = lastBlock + 1;
                continue;
            }

            if (_oldTableClusters == 0)
            {
                _oldTableOffset = TableOffset;
                _oldTableClusters = TableClusters;
            }
            else
            {
                // Grown twice between write-backs: the middle table was never written; its clusters are simply free again.
                for (long c = TableOffset >> _clusterBits; c < (TableOffset >> _clusterBits) + TableClusters; c++)
                {
                    var middle = Load(c / _perBlock);
                    Write(middle.Data, c % _perBlock, 0);
                    middle.Dirty = true;
                }
            }

            var table = new ulong[entries];
            _table.CopyTo(table, 0);
            _table = table;
            TableOffset = start << _clusterBits;
            TableClusters = (int)clusters;
            FileEnd = Math.Max(FileEnd, (start + clusters + blocks) << _clusterBits);

            long next = start + clusters;
            for (long b = start / _perBlock; b <= lastBlock; b++)
            {
                if ((_table[b] & OffsetMask) == 0)
                {
                    var block = new Block(new byte[ClusterSize]) { Dirty = true };
                    _blocks[b] = block;
                    _table[b] = (ulong)(next << _clusterBits);
                    _blockOffsets.Add(next << _clusterBits);
                    next++;
                }
            }

            for (long c = start; c < start + clusters + blocks; c++)
            {
                var block = Load(c / _perBlock);
                Write(block.Data, c % _perBlock, 1);
                block.Dirty = true;
            }

            return;
        }
    }

    private Block Load(long b)
    {
        if (_blocks.TryGetValue(b, out var cached))
        {
            return cached;
        }

        long offset = (long)(_table[b] & OffsetMask);
        if ((offset & (ClusterSize - 1)) != 0 || offset + ClusterSize > FileEnd)
        {
            throw new IOException($"qcow2 image '{_path}' is corrupt: refcount block {b} is at {offset}, outside the file or not aligned.");
        }

        var data = new byte[ClusterSize];
        Qcow2Io.ReadExactly(_file, data, offset, _path);
        var block = new Block(data);
        _blocks[b] = block;
        return block;
    }

    private ulong Read(byte[] data, long index)
    {
        switch (_bits)
        {
            case < 8:
                long bit = index * _bits;
                return (ulong)(data[bit >> 3] >> (int)(bit & 7)) & _max;
            case 8:
                return data[index];
            case 16:
                return BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan((int)(index * 2)));
            case 32:
                return BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan((int)(index * 4)));
            default:
                return BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan((int)(index * 8)));
        }
    }

    private void Write(byte[] data, long index, ulong value)
    {
        if (value > _max)
        {
            throw new IOException($"qcow2 image '{_path}': a cluster's count would pass {_max}, the most its {_bits}-bit refcounts hold.");
        }

        switch (_bits)
        {
            case < 8:
                long bit = index * _bits;
                int shift = (int)(bit & 7);
                data[bit >> 3] = (byte)((data[bit >> 3] & ~((int)_max << shift)) | ((int)value << shift));
                break;
            case 8:
                data[index] = (byte)value;
                break;
            case 16:
                BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan((int)(index * 2)), (ushort)value);
                break;
            case 32:
                BinaryPrimitives.WriteUInt32BigEndian(data.AsSpan((int)(index * 4)), (uint)value);
                break;
            default:
                BinaryPrimitives.WriteUInt64BigEndian(data.AsSpan((int)(index * 8)), value);
                break;
        }
    }

    private sealed class Block(byte[] data)
    {
        public byte[] Data { get; } = data;

        public bool Dirty { get; set; }
    }
}
