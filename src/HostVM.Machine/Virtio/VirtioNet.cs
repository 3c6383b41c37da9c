using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Collections.Concurrent;
using HostVM.Networking;
using HostVM.Networking.Switch;

namespace HostVM.Machine.Virtio;

/// <summary>
/// virtio-net (Virtio 1.2 §5.1), one queue pair, no offloads: frames the guest sends go to the
/// <see cref="IPacketPort"/>; frames from the port wait in a bounded queue for the guest's receive
/// buffers. MAC address, link status and MTU 1500 are in the configuration space. Both directions run on
/// the device's I/O thread and are throttled by their own <see cref="RateLimiter"/>.
/// </summary>
public sealed class VirtioNet : VirtioDevice, IFrameReceiver
{
    public const ulong FeatureCsum = 1UL << 0;
    public const ulong FeatureMtu = 1UL << 3;
    public const ulong FeatureHostTso4 = 1UL << 11;
    public const ulong FeatureMac = 1UL << 5;
    public const ulong FeatureStatus = 1UL << 16;
    public const ushort StatusLinkUp = 1;
    public const ushort Mtu = 1500;
    public const ushort QueueSize = 256;
    public const int EthernetHeaderSize = 14;

    /// <summary>Largest frame the guest may hand over with TSO: a 64 KiB IP packet plus its Ethernet header.</summary>
    public const int MaxGsoFrame = 65536 + EthernetHeaderSize;

    /// <summary>Frames from the network held while the guest has no receive buffer; more are dropped.</summary>
    public const int ReceiveBacklog = 1024;

    private const int ReceiveQueue = 0;
    private const int TransmitQueue = 1;
    private const int ConfigLength = 12;

    private readonly IPacketPort _port;
    private readonly DeviceWorker _worker;
    private readonly DescriptorChain _chain = new();
    private readonly DescriptorChain _rxChain = new();
    private readonly Lock _sync = new();
    private readonly ConcurrentQueue<(byte[] Buffer, int Length)> _backlog = new();
    private readonly byte[] _txBuffer = new byte[MaxGsoFrame + 12];
    private readonly byte[] _segment = new byte[IPacketPort.MaxFrameSize];
    private readonly Action<ReadOnlySpan<byte>> _sendSegment;
    private int _backlogCount;
    private Virtqueue? _rx;
    private Virtqueue? _tx;
    private int _headerSize;
    private bool _txHolding;
    private bool _rxHolding;

    /// <param name="filterGuestFrames">
    /// Apply <see cref="GuestFrameFilter"/> to what the guest sends: for a port on a switch other guests
    /// share. A user network or TAP of one's own may carry any MAC, as in QEMU.
    /// </param>
    public VirtioNet(IPacketPort port, MacAddress mac, RateLimitSettings? receiveLimits = null, RateLimitSettings? transmitLimits = null, bool filterGuestFrames = false)
        : base(VirtioDeviceType.Network, 2, QueueSize)
    {
        ArgumentNullException.ThrowIfNull(port);
        _port = port;
        Mac = mac;
        FiltersGuestFrames = filterGuestFrames;
        ReceiveLimiter = new RateLimiter(receiveLimits);
        TransmitLimiter = new RateLimiter(transmitLimits);
        _sendSegment = segment =>
        {
            _port.Send(segment);
            Statistics.CountSent(segment.Length);
        };
        _worker = new DeviceWorker($"virtio-net {mac}", Process, e => Fail($"internal error: {e.Message}"));
        port.Start(this);
    }

    public MacAddress Mac { get; }

    /// <summary>Frames the guest sends pass <see cref="GuestFrameFilter"/> first.</summary>
    public bool FiltersGuestFrames { get; }

    public IPacketPort Port => _port;

    /// <summary>Limits frames going to the guest.</summary>
    public RateLimiter ReceiveLimiter { get; }

    /// <summary>Limits frames the guest sends.</summary>
    public RateLimiter TransmitLimiter { get; }

    public NetStatistics Statistics { get; } = new();

    public override ulong DeviceFeatures => FeatureMac | FeatureStatus | FeatureMtu | FeatureCsum | FeatureHostTso4;

    public override int ConfigSize => ConfigLength;

    public override void ReadConfig(Span<byte> config)
    {
        config.Clear();
        Mac.CopyTo(config);
        BinaryPrimitives.WriteUInt16LittleEndian(config[6..], _port.LinkUp ? StatusLinkUp : (ushort)0);
        BinaryPrimitives.WriteUInt16LittleEndian(config[8..], 1);   // max_virtqueue_pairs
        BinaryPrimitives.WriteUInt16LittleEndian(config[10..], Mtu);
    }

    public override void Activate(VirtioActivation activation)
    {
        lock (_sync)
        {
            _rx = activation.Queues[ReceiveQueue];
            _tx = activation.Queues[TransmitQueue];
            // virtio_net_hdr: 10 bytes, or 12 (with num_buffers) for VERSION_1 drivers.
            _headerSize = activation.Has(VirtioFeatures.Version1) ? 12 : 10;
            _txHolding = false;
            _rxHolding = false;
        }

        _worker.Signal();
    }

    public override void Reset()
    {
        lock (_sync)
        {
            _rx = null;
            _tx = null;
            _txHolding = false;
            _rxHolding = false;
            // Frames for the old driver instance are not the new one's business.
            DropBacklog();
        }
    }

    private void DropBacklog()
    {
        while (_backlog.TryDequeue(out var frame))
        {
            Interlocked.Decrement(ref _backlogCount);
            ArrayPool<byte>.Shared.Return(frame.Buffer);
        }
    }

    public override void Notify(int queue) => _worker.Signal();

    /// <summary>A frame from the network (any port thread): queued for the guest, or dropped when the backlog is full.</summary>
    public bool Receive(ReadOnlySpan<byte> frame)
    {
        if (frame.Length is < EthernetHeaderSize or > IPacketPort.MaxFrameSize || Volatile.Read(ref _rx) is null)
        {
            Statistics.CountReceiveDropped();
            return false;
        }

        if (Interlocked.Increment(ref _backlogCount) > ReceiveBacklog)
        {
            Interlocked.Decrement(ref _backlogCount);
            Statistics.CountReceiveDropped();
            return false;
        }

        byte[] buffer = ArrayPool<byte>.Shared.Rent(frame.Length);
        frame.CopyTo(buffer);
        _backlog.Enqueue((buffer, frame.Length));
        _worker.Signal();
        return true;
    }

    private TimeSpan? Process()
    {
        lock (_sync)
        {
            try
            {
                TimeSpan? txWait = _tx is null ? null : ServeTransmit(_tx);
                TimeSpan? rxWait = _rx is null ? null : ServeReceive(_rx);
                if (txWait is null)
                {
                    return rxWait;
                }

                return rxWait is null ? txWait : (txWait < rxWait ? txWait : rxWait);
            }
            catch (VirtqueueException e)
            {
                _rx = null;
                _tx = null;
                Fail(e.Message);
                return null;
            }
        }
    }

    private TimeSpan? ServeTransmit(Virtqueue queue)
    {
        bool pushed = false;
        try
        {
            while (true)
            {
                if (!_txHolding && !queue.TryPop(_chain))
                {
                    if (!queue.ArmNotification())
                    {
                        return null;
                    }

                    continue;
                }

                _txHolding = true;
                long frameLength = (long)_chain.ReadableLength - _headerSize;
                int length = 0;
                long cost = Math.Max(0, frameLength);
                int packets = 1;
                if (frameLength is >= EthernetHeaderSize and <= MaxGsoFrame)
                {
                    // Read once into our buffer: what is charged and what is sent are the same bytes.
                    length = _chain.Read(0, _txBuffer.AsSpan(0, (int)_chain.ReadableLength));
                    if (NetOffload.IsTcpV4Gso(_txBuffer[1]))
                    {
                        // Charge what goes on the wire: every segment is a packet and repeats the headers.
                        long wire = NetOffload.SegmentedLength(_txBuffer.AsSpan(_headerSize, length - _headerSize), BinaryPrimitives.ReadUInt16LittleEndian(_txBuffer.AsSpan(4)), out int segments);
                        if (wire > 0)
                        {
                            cost = wire;
                            packets = segments;
                        }
                    }
                }

                if (!TransmitLimiter.TryConsume(cost, packets, out TimeSpan wait))
                {
                    return wait;
                }

                _txHolding = false;
                if (length == 0 || !Transmit(_txBuffer.AsSpan(0, length)))
                {
                    Statistics.CountSendDropped();
                }

                queue.Push(_chain.Head, 0);
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

    /// <summary>Hands one guest frame (virtio-net header first) to the port, applying the offloads it asks for.</summary>
    private bool Transmit(Span<byte> buffer)
    {
        byte flags = buffer[0], gso = buffer[1];
        ushort gsoSize = BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]);
        ushort csumStart = BinaryPrimitives.ReadUInt16LittleEndian(buffer[6..]);
        ushort csumOffset = BinaryPrimitives.ReadUInt16LittleEndian(buffer[8..]);
        var frame = buffer[_headerSize..];
        if (FiltersGuestFrames && GuestFrameFilter.Refusal(frame, Mac) is not null)
        {
            Statistics.CountSendSpoofed();
            return false; // counted as dropped by the caller; segments would carry the same headers
        }

        if (NetOffload.IsTcpV4Gso(gso))
        {
            return NetOffload.SegmentTcpV4(frame, gsoSize, _segment, _sendSegment);
        }

        if (gso != NetOffload.GsoNone || frame.Length > IPacketPort.MaxFrameSize)
        {
            return false; // a GSO type we did not offer, or a jumbo frame without GSO
        }

        if ((flags & NetOffload.FlagNeedsCsum) != 0 && !NetOffload.CompleteChecksum(frame, csumStart, csumOffset))
        {
            return false;
        }

        _port.Send(frame);
        Statistics.CountSent(frame.Length);
        return true;
    }

    private TimeSpan? ServeReceive(Virtqueue queue)
    {
        bool pushed = false;
        Span<byte> header = stackalloc byte[12];
        header.Clear();
        if (_headerSize == 12)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(header[10..], 1); // num_buffers
        }

        try
        {
            while (_backlog.TryPeek(out var frame))
            {
                if (!_rxHolding)
                {
                    if (!queue.TryPop(_rxChain))
                    {
                        if (queue.ArmNotification())
                        {
                            continue;
                        }

                        return null; // the guest's next kick on the receive queue wakes us
                    }

                    _rxHolding = true;
                }

                if (!ReceiveLimiter.TryConsume(frame.Length, out TimeSpan wait))
                {
                    return wait;
                }

                _rxHolding = false;
                _backlog.TryDequeue(out _);
                Interlocked.Decrement(ref _backlogCount);
                uint written = 0;
                if (_rxChain.WritableLength < _headerSize + frame.Length)
                {
                    Statistics.CountReceiveDropped();
                }
                else
                {
                    _rxChain.Write(0, header[.._headerSize]);
                    _rxChain.Write((uint)_headerSize, frame.Buffer.AsSpan(0, frame.Length));
                    written = (uint)(_headerSize + frame.Length);
                    Statistics.CountReceived(frame.Length);
                }

                ArrayPool<byte>.Shared.Return(frame.Buffer);
                queue.Push(_rxChain.Head, written);
                pushed = true;
            }

            return null;
        }
        finally
        {
            if (pushed)
            {
                SignalUsed(queue);
            }
        }
    }

    public override VirtioDeviceState SaveState()
    {
        lock (_sync)
        {
            // Receive (port threads) only adds at the tail; under _sync nothing takes from the head.
            var frames = _backlog.Select(f => ImmutableArray.Create(f.Buffer, 0, f.Length)).ToImmutableArray();
            return new VirtioNetState(ReceiveLimiter.SaveState(), TransmitLimiter.SaveState(), frames);
        }
    }

    public override void RestoreState(VirtioDeviceState state)
    {
        var s = StateOf<VirtioNetState>(state);
        ReceiveLimiter.RestoreState(s.ReceiveLimiter);
        TransmitLimiter.RestoreState(s.TransmitLimiter);
        lock (_sync)
        {
            DropBacklog();
            foreach (var frame in s.Backlog)
            {
                byte[] buffer = ArrayPool<byte>.Shared.Rent(frame.Length);
                frame.CopyTo(buffer);
                _backlog.Enqueue((buffer, frame.Length));
                Interlocked.Increment(ref _backlogCount);
            }
        }
    }

    public override int HeldRequests(int queue)
    {
        lock (_sync)
        {
            return queue switch
            {
                ReceiveQueue => _rxHolding && _rx is not null ? 1 : 0,
                TransmitQueue => _txHolding && _tx is not null ? 1 : 0,
                _ => 0,
            };
        }
    }

    public override void Quiesce() => _worker.Quiesce();

    public override void Unquiesce() => _worker.Unquiesce();

    internal override bool Idle => _worker.Idle;

    public override bool Stopped => _worker.Stopped;

    public override void Dispose()
    {
        _worker.Dispose();
        _port.Dispose();
        while (_backlog.TryDequeue(out var f))
        {
            ArrayPool<byte>.Shared.Return(f.Buffer);
        }

        base.Dispose();
    }
}
