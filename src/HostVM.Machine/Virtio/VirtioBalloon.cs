using System.Buffers.Binary;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-balloon (Virtio 1.2 §5.5): the host sets a target (<see cref="SetTarget"/>, any time); the
/// guest inflates (hands pages to the host, which returns them to the host OS with madvise) or deflates
/// towards it, and reports the size it reached (<see cref="ActualPages"/>). With DEFLATE_ON_OOM the guest
/// takes pages back when it runs out of memory; with STATS_VQ it reports memory statistics on request.
/// </summary>
public sealed class VirtioBalloon : VirtioDevice
{
    public const ulong FeatureMustTellHost = 1UL << 0;
    public const ulong FeatureStatsQueue = 1UL << 1;
    public const ulong FeatureDeflateOnOom = 1UL << 2;
    public const ushort QueueSize = 128;
    public const int PageShift = 12;

    /// <summary>
    /// PFNs taken from one inflate request at most (Linux sends up to 256); any beyond stay resident.
    /// A hostile chain can name almost 4 GiB of PFNs, which would keep the device thread (and a reset
    /// waiting for it) busy for minutes.
    /// </summary>
    public const int MaxPfnsPerRequest = 16 * 1024;

    private const int InflateQueue = 0;
    private const int DeflateQueue = 1;
    private const int StatsQueue = 2;

    private readonly bool _deflateOnOom;
    private readonly DeviceWorker _worker;
    private readonly Lock _sync = new();
    private readonly DescriptorChain _chain = new();
    private readonly byte[] _buffer = new byte[4096];
    private Virtqueue?[] _queues = [];
    private uint _targetPages;
    private uint _actualPages;
    private bool _holdingStats;
    private ushort _statsHead;
    private bool _statsWanted;
    private long _pagesReturned;

    public VirtioBalloon(bool deflateOnOom = true)
        : base(VirtioDeviceType.Balloon, 3, QueueSize)
    {
        _deflateOnOom = deflateOnOom;
        _worker = new DeviceWorker("virtio-balloon", Process, e => Fail($"internal error: {e.Message}"));
    }

    public override ulong DeviceFeatures => FeatureStatsQueue | (_deflateOnOom ? FeatureDeflateOnOom : 0);

    public override int ConfigSize => 8;

    /// <summary>Pages (4 KiB) the host wants the guest to give up.</summary>
    public uint TargetPages => Volatile.Read(ref _targetPages);

    /// <summary>Pages the guest says it has given up.</summary>
    public uint ActualPages => Volatile.Read(ref _actualPages);

    /// <summary>Page give-backs the host carried out (inflate requests, a statistic).</summary>
    public long PagesReturned => Interlocked.Read(ref _pagesReturned);

    /// <summary>The latest statistics the guest reported, or null before the first report.</summary>
    public BalloonStatistics? Statistics { get; private set; }

    /// <summary>Raised on the device thread when a statistics report arrives.</summary>
    public event Action<BalloonStatistics>? StatisticsReceived;

    /// <summary>Asks the guest to hold <paramref name="bytes"/> of its memory in the balloon (0 = give it all back).</summary>
    public void SetTarget(ulong bytes)
    {
        Volatile.Write(ref _targetPages, (uint)Math.Min(uint.MaxValue, bytes >> PageShift));
        SignalConfigChanged();
    }

    /// <summary>Asks the guest for fresh statistics (answered through <see cref="StatisticsReceived"/>).</summary>
    public void RequestStatistics()
    {
        lock (_sync)
        {
            _statsWanted = true;
        }

        _worker.Signal();
    }

    public override void ReadConfig(Span<byte> config)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(config, TargetPages);
        BinaryPrimitives.WriteUInt32LittleEndian(config[4..], ActualPages);
    }

    public override void WriteConfig(int offset, ReadOnlySpan<byte> data)
    {
        // Only `actual` (offset 4) is the driver's to write; it may write it in pieces.
        Span<byte> config = stackalloc byte[8];
        ReadConfig(config);
        for (int i = 0; i < data.Length; i++)
        {
            if (offset + i is >= 4 and < 8)
            {
                config[offset + i] = data[i];
            }
        }

        Volatile.Write(ref _actualPages, BinaryPrimitives.ReadUInt32LittleEndian(config[4..]));
    }

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _queues = [.. activation.Queues];
            _holdingStats = false;
        }

        _worker.Signal();
    }

    public override void Reset()
    {
        lock (_sync)
        {
            _queues = [];
            _holdingStats = false;
            Volatile.Write(ref _actualPages, 0);
        }
    }

    public override void Notify(int queue) => _worker.Signal();

    private TimeSpan? Process()
    {
        lock (_sync)
        {
            try
            {
                if (_queues.Length == 0)
                {
                    return null;
                }

                if (_queues[InflateQueue] is { } inflate)
                {
                    Drain(inflate, discard: true);
                }

                if (_queues[DeflateQueue] is { } deflate)
                {
                    Drain(deflate, discard: false);
                }

                if (_queues[StatsQueue] is { } stats)
                {
                    ServeStats(stats);
                }
            }
            catch (VirtqueueException e)
            {
                _queues = [];
                Fail(e.Message);
            }
        }

        return null;
    }

    private void Drain(Virtqueue queue, bool discard)
    {
        bool pushed = false;
        while (queue.TryPop(_chain) || (queue.ArmNotification() && queue.TryPop(_chain)))
        {
            if (discard)
            {
                // Each entry is a 32-bit page frame number of a 4 KiB page the guest no longer uses.
                uint length = Math.Min(_chain.ReadableLength, MaxPfnsPerRequest * 4u);
                for (uint offset = 0; offset + 4 <= length; offset += (uint)_buffer.Length)
                {
                    int n = _chain.Read(offset, _buffer) & ~3;
                    for (int i = 0; i < n; i += 4)
                    {
                        ulong address = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(i)) << PageShift;
                        if (_chain.Memory.DiscardPage(address))
                        {
                            Interlocked.Increment(ref _pagesReturned);
                        }
                    }
                }
            }

            queue.Push(_chain.Head, 0);
            pushed = true;
        }

        if (pushed)
        {
            SignalUsed(queue);
        }
    }

    private void ServeStats(Virtqueue queue)
    {
        // The driver keeps one buffer in the stats queue; holding it is how the device asks for more:
        // returning it makes the driver refill it with fresh figures and offer it again.
        if (!_holdingStats && queue.TryPop(_chain))
        {
            ParseStats(_chain);
            _statsHead = _chain.Head;
            _holdingStats = true;
        }

        if (_holdingStats && _statsWanted)
        {
            _statsWanted = false;
            _holdingStats = false;
            queue.Push(_statsHead, 0);
            SignalUsed(queue);
        }

        if (queue.ArmNotification() && !_holdingStats)
        {
            _worker.Signal(); // a buffer offered while we armed sends no kick: look again
        }
    }

    private void ParseStats(DescriptorChain chain)
    {
        var values = new ulong?[10];
        Span<byte> entry = stackalloc byte[10];
        for (uint offset = 0; offset + 10 <= chain.ReadableLength && offset < 10 * 64; offset += 10)
        {
            chain.Read(offset, entry);
            ushort tag = BinaryPrimitives.ReadUInt16LittleEndian(entry);
            if (tag < values.Length)
            {
                values[tag] = BinaryPrimitives.ReadUInt64LittleEndian(entry[2..]);
            }
        }

        var stats = new BalloonStatistics(values[0], values[1], values[2], values[3], values[4], values[5], values[6], values[7], DateTimeOffset.UtcNow);
        Statistics = stats;
        StatisticsReceived?.Invoke(stats);
    }

    public override VirtioDeviceState SaveState()
    {
        lock (_sync)
        {
            return new VirtioBalloonState(TargetPages, ActualPages, _statsWanted, Statistics);
        }
    }

    public override void RestoreState(VirtioDeviceState state)
    {
        var s = StateOf<VirtioBalloonState>(state);
        lock (_sync)
        {
            Volatile.Write(ref _targetPages, s.TargetPages);
            Volatile.Write(ref _actualPages, s.ActualPages);
            _statsWanted = s.StatisticsWanted;
            Statistics = s.Statistics;
        }
    }

    public override int HeldRequests(int queue)
    {
        lock (_sync)
        {
            return queue == StatsQueue && _holdingStats && _queues.Length > StatsQueue && _queues[StatsQueue] is not null ? 1 : 0;
        }
    }

    public override void Quiesce() => _worker.Quiesce();

    public override void Unquiesce() => _worker.Unquiesce();

    internal override bool Idle => _worker.Idle;

    public override bool Stopped => _worker.Stopped;

    public override void Dispose()
    {
        _worker.Dispose();
        base.Dispose();
    }
}
