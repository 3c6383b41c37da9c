using System.Buffers.Binary;
using System.Text;
using HostVM.Storage;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-blk (Virtio 1.2 §5.2) over an <see cref="IBlockDevice"/>: read, write, flush, GET_ID, discard
/// and write-zeroes, read-only drives. Requests are served on the device's own I/O thread, throttled by
/// its <see cref="RateLimiter"/>; vCPUs only kick it. The device owns the backend and disposes it.
/// </summary>
public sealed class VirtioBlock : VirtioDevice
{
    public const ulong FeatureSizeMax = 1UL << 1;
    public const ulong FeatureSegMax = 1UL << 2;
    public const ulong FeatureReadOnly = 1UL << 5;
    public const ulong FeatureBlockSize = 1UL << 6;
    public const ulong FeatureFlush = 1UL << 9;
    public const ulong FeatureDiscard = 1UL << 13;
    public const ulong FeatureWriteZeroes = 1UL << 14;

    public const uint RequestIn = 0;
    public const uint RequestOut = 1;
    public const uint RequestFlush = 4;
    public const uint RequestGetId = 8;
    public const uint RequestDiscard = 11;
    public const uint RequestWriteZeroes = 13;

    public const byte StatusOk = 0;
    public const byte StatusIoError = 1;
    public const byte StatusUnsupported = 2;

    public const int SectorSize = 512;
    public const int HeaderSize = 16;
    public const int IdLength = 20;
    public const ushort QueueSize = 256;
    /// <summary>
    /// Segments per request (seg_max). Linux caps a request at 1.25 MiB; with 4 KiB pages that is 320
    /// segments, so 512 lets a 1 MiB dd be one request (indirect descriptors carry them).
    /// </summary>
    public const uint MaxSegments = 512;



    /// <summary>Largest read or write request served (Linux sends at most 1.25 MiB); bigger ones fail.</summary>
    public const uint MaxRequestBytes = 32 << 20;

    /// <summary>Largest discard / write-zeroes range, in sectors (and one range per request).</summary>
    public const uint MaxDiscardSectors = 1u << 22;

    private const int ConfigLength = 60;

    private readonly IBlockDevice _backend;
    private readonly DeviceWorker _worker;
    private readonly DescriptorChain _chain = new();
    private readonly Lock _sync = new();
    private readonly List<Memory<byte>> _readList = [];
    private readonly List<ReadOnlyMemory<byte>> _writeList = [];
    private readonly List<GuestMemoryWindow> _windows = [];
    private Virtqueue? _queue;
    private bool _holding; // _chain holds a popped request that waits for the rate limiter
    private BlockRequestHeader _header; // _chain's header, read once when it was popped

    public VirtioBlock(IBlockDevice backend, RateLimitSettings? limits = null)
        : base(VirtioDeviceType.Block, 1, QueueSize)
    {
        ArgumentNullException.ThrowIfNull(backend);
        _backend = backend;
        Limiter = new RateLimiter(limits);
        _worker = new DeviceWorker($"virtio-blk {backend.Identifier}", Process, e => Fail($"internal error: {e.Message}"));
    }

    public IBlockDevice Backend => _backend;

    public RateLimiter Limiter { get; }

    public BlockStatistics Statistics { get; } = new();

    public override ulong DeviceFeatures =>
        FeatureSegMax | FeatureBlockSize | FeatureFlush | FeatureDiscard | FeatureWriteZeroes
        | (_backend.ReadOnly ? FeatureReadOnly : 0);

    public override int ConfigSize => ConfigLength;

    public override void ReadConfig(Span<byte> config)
    {
        config.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(config, (ulong)(_backend.Length / SectorSize)); // capacity
        BinaryPrimitives.WriteUInt32LittleEndian(config[12..], MaxSegments);                     // seg_max
        BinaryPrimitives.WriteUInt32LittleEndian(config[20..], SectorSize);                      // blk_size
        BinaryPrimitives.WriteUInt32LittleEndian(config[36..], MaxDiscardSectors);               // max_discard_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(config[40..], 1);                               // max_discard_seg
        BinaryPrimitives.WriteUInt32LittleEndian(config[44..], 8);                               // discard_sector_alignment (4 KiB)
        BinaryPrimitives.WriteUInt32LittleEndian(config[48..], MaxDiscardSectors);               // max_write_zeroes_sectors
        BinaryPrimitives.WriteUInt32LittleEndian(config[52..], 1);                               // max_write_zeroes_seg
        config[56] = 1;                                                                          // write_zeroes_may_unmap
    }

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _queue = activation.Queues[0];
            _holding = false;
        }

        _worker.Signal();
    }

    public override void Reset()
    {
        lock (_sync)
        {
            _queue = null;
            _holding = false;
        }
    }

    public override void Notify(int queue) => _worker.Signal();

    private TimeSpan? Process()
    {
        lock (_sync)
        {
            var queue = _queue;
            if (queue is null)
            {
                return null;
            }

            try
            {
                return Serve(queue);
            }
            catch (VirtqueueException e)
            {
                _queue = null;
                Fail(e.Message);
                return null;
            }
        }
    }

    private TimeSpan? Serve(Virtqueue queue)
    {
        bool pushed = false;
        try
        {
            while (true)
            {
                if (!_holding && !queue.TryPop(_chain))
                {
                    if (!queue.ArmNotification())
                    {
                        return null;
                    }

                    continue;
                }

                if (!_holding)
                {
                    _header = BlockRequestHeader.Read(_chain);
                    _holding = true;
                }

                if (!Limiter.TryConsume(_header.Cost(_chain), out TimeSpan wait))
                {
                    return wait;
                }

                _holding = false;
                uint written = Execute(_chain, _header);
                queue.Push(_chain.Head, written);
                pushed = true;
            }
        }
        finally
        {
            if (pushed)
            {
                SignalUsed(queue);
            }
        }
    }

    /// <summary>Runs one request; returns the bytes written into the driver's buffers (data + status).</summary>
    private uint Execute(DescriptorChain chain, BlockRequestHeader header)
    {
        if (chain.WritableLength == 0)
        {
            Statistics.CountError();
            return 0; // nowhere to put a status: complete it without one
        }

        uint statusOffset = chain.WritableLength - 1;
        byte status;
        uint dataWritten = 0;
        if (!header.Complete)
        {
            status = StatusIoError;
        }
        else
        {
            ulong sector = header.Sector;
            try
            {
                (status, dataWritten) = header.Type switch
                {
                    RequestIn => DoRead(chain, sector, statusOffset),
                    RequestOut => (DoWrite(chain, sector), 0u),
                    RequestFlush => (DoFlush(), 0u),
                    RequestGetId => DoGetId(chain, statusOffset),
                    RequestDiscard or RequestWriteZeroes => (DoRanges(header), 0u),
                    _ => (StatusUnsupported, 0u),
                };
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                status = StatusIoError;
            }
        }

        if (status != StatusOk)
        {
            Statistics.CountError();
        }

        chain.Write(statusOffset, [status]);
        return dataWritten + 1;
    }

    private bool InRange(ulong sector, ulong bytes) =>
        sector <= (ulong)_backend.Length / SectorSize && bytes <= (ulong)_backend.Length - (sector * SectorSize);

    private (byte, uint) DoRead(DescriptorChain chain, ulong sector, uint length)
    {
        if (length % SectorSize != 0 || length > MaxRequestBytes || !InRange(sector, length))
        {
            return (StatusIoError, 0);
        }

        long offset = (long)sector * SectorSize;
        // One preadv straight into the guest's buffers: no syscall per page, no bounce copy.
        _readList.Clear();
        uint left = length;
        int i = 0;
        foreach (var s in chain.WritableSegments)
        {
            if (left == 0)
            {
                break;
            }

            uint n = Math.Min(s.Length, left);
            _readList.Add(Window(i++, chain.Memory, s.Address, n));
            left -= n;
        }

        try
        {
            _backend.Read(offset, _readList);
        }
        finally
        {
            // After the read, never before (see GuestMemory.WroteRange); also when it failed part way.
            for (int w = 0; w < i; w++)
            {
                chain.Memory.WroteRange(_windows[w].GuestAddress, (ulong)_windows[w].Length);
            }
        }

        Statistics.CountRead(length);
        return (StatusOk, length);
    }

    private byte DoWrite(DescriptorChain chain, ulong sector)
    {
        uint length = chain.ReadableLength - HeaderSize;
        if (_backend.ReadOnly)
        {
            return StatusIoError;
        }

        if (length % SectorSize != 0 || length > MaxRequestBytes || !InRange(sector, length))
        {
            return StatusIoError;
        }

        long offset = (long)sector * SectorSize;
        // One pwritev straight from the guest's buffers.
        _writeList.Clear();
        uint skip = HeaderSize;
        int i = 0;
        foreach (var s in chain.ReadableSegments)
        {
            if (skip >= s.Length)
            {
                skip -= s.Length;
                continue;
            }

            _writeList.Add(Window(i++, chain.Memory, s.Address + skip, s.Length - skip));
            skip = 0;
        }

        _backend.Write(offset, _writeList);

        Statistics.CountWrite(length);
        return StatusOk;
    }

    private byte DoFlush()
    {
        _backend.Flush();
        Statistics.CountFlush();
        return StatusOk;
    }

    private (byte, uint) DoGetId(DescriptorChain chain, uint room)
    {
        Span<byte> id = stackalloc byte[IdLength];
        id.Clear();
        Encoding.ASCII.GetBytes(_backend.Identifier.AsSpan(0, Math.Min(_backend.Identifier.Length, IdLength)), id);
        int length = (int)Math.Min(room, IdLength);
        chain.Write(0, id[..length]);
        return (StatusOk, (uint)length);
    }

    private byte DoRanges(BlockRequestHeader header)
    {
        if (_backend.ReadOnly)
        {
            return StatusIoError;
        }

        // One 16-byte range per request (max_discard_seg = max_write_zeroes_seg = 1), read with the header.
        if (!header.HasRange)
        {
            return StatusUnsupported;
        }

        uint type = header.Type;
        ulong sector = header.RangeSector;
        uint sectors = header.RangeSectors;
        uint flags = header.RangeFlags;
        bool unmap = (flags & 1) != 0;
        if ((flags & ~1u) != 0 || (type == RequestDiscard && unmap) || sectors > MaxDiscardSectors)
        {
            return StatusUnsupported;
        }

        if (!InRange(sector, (ulong)sectors * SectorSize))
        {
            return StatusIoError;
        }

        long offset = (long)sector * SectorSize, length = (long)sectors * SectorSize;
        if (type == RequestDiscard)
        {
            _backend.Discard(offset, length);
        }
        else
        {
            _backend.WriteZeroes(offset, length, unmap);
        }

        return StatusOk;
    }

    /// <summary>The i-th reusable window, aimed at a guest range (checked when the chain was popped).</summary>
    private unsafe Memory<byte> Window(int i, GuestMemory memory, ulong address, uint length)
    {
        if (i == _windows.Count)
        {
            _windows.Add(new GuestMemoryWindow());
        }

        return _windows[i].Point(address, memory.Pointer(address), (int)length);
    }

    public override VirtioDeviceState SaveState() => new VirtioBlockState(Limiter.SaveState());

    public override void RestoreState(VirtioDeviceState state) => Limiter.RestoreState(StateOf<VirtioBlockState>(state).Limiter);

    public override int HeldRequests(int queue)
    {
        lock (_sync)
        {
            return _holding && _queue is not null ? 1 : 0;
        }
    }

    public override void Quiesce() => _worker.Quiesce();

    public override void Unquiesce() => _worker.Unquiesce();

    internal override bool Idle => _worker.Idle;

    public override bool Stopped => _worker.Stopped;

    public override void Dispose()
    {
        _worker.Dispose();
        _backend.Dispose();
        base.Dispose();
    }
}
