using System.Buffers;
using System.Buffers.Binary;
using System.Net;

namespace HostVM.Networking.UserNet;

/// <summary>
/// User-mode networking, like QEMU's <c>-netdev user</c>: the guest sees a small private network
/// (gateway, DNS and DHCP server) and reaches the outside through ordinary host sockets, so no
/// privileges or TAP devices are needed. Guest TCP connections and UDP flows become host sockets;
/// host forwards open connections into the guest.
/// </summary>
/// <remarks>
/// <para>
/// Several guests can share one user network (attach it to a switch with
/// <see cref="Switch.SwitchUplink"/>): each gets its own DHCP lease, and frames toward a guest go to
/// the MAC that holds its lease or that its own ARP and IPv4 frames came from. Frames addressed to
/// other MACs (guests talking to each other through the switch) are ignored.
/// </para>
/// <para>
/// Threading: all state is guarded by one lock. <see cref="Send"/> runs on the NIC's thread and
/// only parses, copies into buffers and starts asynchronous socket operations; socket completions
/// run on the thread pool and a timer drives retransmission and expiry. Frames for the guest are
/// queued under the lock and handed to the receiver after it is released, by whichever of our
/// threads gets the delivery lock first, so the receiver is never called with our lock held. Frames
/// produced by <see cref="Send"/> itself (ARP and DHCP answers, ACKs) are delivered from the thread
/// pool, never from inside the NIC's call: the NIC may hold its own, possibly non-reentrant, lock
/// around both.
/// </para>
/// </remarks>
public sealed class UserNetwork : IPacketPort
{
    internal const int EthernetHeaderLength = 14;
    internal const int IpOffset = EthernetHeaderLength;
    internal const int TransportOffset = EthernetHeaderLength + Ipv4Packet.HeaderLength;
    private const ushort EtherTypeIpv4 = 0x0800;
    private const ushort EtherTypeArp = 0x0806;
    private const int MaxQueuedFrames = 4096;
    private const int FastTimerMilliseconds = 10;
    private const int SlowTimerMilliseconds = 250;

    /// <summary>Learned guest addresses kept at most; the least recently seen is forgotten first.</summary>
    private const int MaxNeighbours = 1024;

    /// <summary>An address seen from one MAC this recently is not leased to another.</summary>
    private const long NeighbourHoldMilliseconds = 300_000;

    private readonly Lock _gate = new();
    private readonly Lock _deliverGate = new();
    private readonly Queue<(byte[] Frame, int Length)> _outbox = new();
    private readonly ArpResponder _arp;
    private readonly DhcpServer _dhcp;
    private readonly IcmpResponder _icmp;
    private readonly TcpNat _tcp;
    private readonly UdpNat _udp;
    private readonly NeighbourTable _neighbours = new(MaxNeighbours);
    private readonly List<IForwardListener> _listeners = [];
    private readonly Timer _timer;
    private IFrameReceiver? _receiver;
    private ushort _ipIdentification;
    private long _framesFromGuest;
    private long _bytesFromGuest;
    private long _framesToGuest;
    private long _bytesToGuest;
    private long _framesDropped;
    private long _egressRefused;
    private long _flowsRefused;
    private long _forwardsUnreachable;
    private long _framesIgnored;
    private bool _disposed;
    private EgressPolicy _egress = null!;
    private bool _fastTimer;
    private bool _flushScheduled;

    public UserNetwork(UserNetworkOptions? options = null)
    {
        Options = options ?? new UserNetworkOptions();
        Egress = Options.Egress;
        GatewayAddress = Ipv4.FromAddress(Options.Gateway);
        DnsAddress = Ipv4.FromAddress(Options.DnsAddress);
        GuestAddress = Ipv4.FromAddress(Options.GuestAddress);
        SubnetMask = Ipv4.FromAddress(Options.SubnetMask);
        LastGuestAddress = Options.LastGuestAddress is { } last
            ? Ipv4.FromAddress(last)
            : (GatewayAddress & SubnetMask) | (~SubnetMask - 1);
        DnsServer = Options.DnsServer ?? ResolvConf.FirstNameServer(Options.ResolvConfPath);
        Validate();
        _arp = new ArpResponder(this);
        _dhcp = new DhcpServer(this);
        _icmp = new IcmpResponder(this);
        _tcp = new TcpNat(this);
        _udp = new UdpNat(this);
        // The timer exists before the listeners: a client may connect before the constructor returns.
        _timer = new Timer(_ => OnTimer(), null, SlowTimerMilliseconds, SlowTimerMilliseconds);
        try
        {
            foreach (var forward in Options.HostForwards)
            {
                AddForward(forward);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public bool LinkUp => !_disposed;

    /// <summary>
    /// The host forwards as bound, those of the options first and then those added, in order: a host port of 0 is
    /// replaced by the port the OS chose.
    /// </summary>
    public IReadOnlyList<HostForward> BoundForwards
    {
        get
        {
            lock (_gate)
            {
                return [.. _listeners.Select(l => l.Bound)];
            }
        }
    }

    /// <summary>The bound host port of each forward, in the order of <see cref="UserNetworkOptions.HostForwards"/>.</summary>
    public IReadOnlyList<int> BoundForwardPorts => BoundForwards.Select(f => f.HostPort).ToArray();

    public UserNetworkStatistics Statistics
    {
        get
        {
            lock (_gate)
            {
                return new UserNetworkStatistics(
                    _framesFromGuest, _bytesFromGuest, _framesToGuest, _bytesToGuest, _framesDropped, _tcp.Count, _udp.Count,
                    _framesIgnored, _dhcp.Leases.CountBound(Environment.TickCount64), _dhcp.Leases.Exhausted, _neighbours.Count, _egressRefused, _flowsRefused, _forwardsUnreachable);
            }
        }
    }

    /// <summary>What guests on a switch with this NAT may not claim: its gateway and DNS addresses, which answer from <see cref="UserNetworkOptions.GatewayMac"/>.</summary>
    public Switch.SwitchReservation Reservation => new(Options.GatewayMac, [Options.Gateway, Options.DnsAddress]);

    internal UserNetworkOptions Options { get; }

    internal Lock Gate => _gate;

    internal uint GatewayAddress { get; }

    internal uint DnsAddress { get; }

    /// <summary>The first address of the DHCP pool: the first guest's, and where host forwards without a guest address go.</summary>
    internal uint GuestAddress { get; }

    /// <summary>The last address of the DHCP pool.</summary>
    internal uint LastGuestAddress { get; }

    internal uint SubnetMask { get; }

    internal MacAddress GatewayMac => Options.GatewayMac;

    /// <summary>Where DNS for the virtual DNS address goes; null when the host has no name server (then the host resolver answers).</summary>
    internal IPEndPoint? DnsServer { get; }

    internal bool IsDisposed => _disposed;

    public void Start(IFrameReceiver receiver)
    {
        ArgumentNullException.ThrowIfNull(receiver);
        lock (_gate)
        {
            if (_receiver is not null)
            {
                throw new InvalidOperationException("UserNetwork.Start was already called; a port delivers to one NIC.");
            }

            _receiver = receiver;
        }
    }

    public void Send(ReadOnlySpan<byte> frame)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _framesFromGuest++;
            _bytesFromGuest += frame.Length;
            try
            {
                if (IsForAnotherHost(frame))
                {
                    _framesIgnored++;
                }
                else if (!Dispatch(frame))
                {
                    _framesDropped++;
                }
            }
            catch (Exception ex) when (ex is not OutOfMemoryException)
            {
                // Parsing checks every length first, and a host that refuses a socket (out of file
                // descriptors, buffers) is handled where it is opened; this is the last line of defence,
                // so that anything a hostile frame reaches drops that frame instead of ending the thread
                // that called us: a NIC's, or the daemon's switch thread, which serves every guest.
                _framesDropped++;
            }

            if (_outbox.Count == 0 || _flushScheduled)
            {
                return;
            }

            _flushScheduled = true;
        }

        ThreadPool.UnsafeQueueUserWorkItem(static network => network.RunScheduledFlush(), this, preferLocal: false);
    }

    /// <summary>
    /// Binds one more host forward while the network runs (flows already open are not touched) and returns it as bound
    /// (a host port of 0 replaced by the port the OS chose). A host port already bound throws <see cref="InvalidOperationException"/>;
    /// a forward that is not valid, <see cref="ArgumentException"/>.
    /// </summary>
    public HostForward AddForward(HostForward forward)
    {
        ArgumentNullException.ThrowIfNull(forward);
        ObjectDisposedException.ThrowIf(_disposed, this);
        // Bound outside the lock: a bind is a system call, and the listener's first client may arrive before we return.
        IForwardListener listener = forward.Protocol == HostForwardProtocol.Udp ? new UdpForwardListener(this, forward) : new TcpForwardListener(this, forward);
        lock (_gate)
        {
            if (!_disposed)
            {
                _listeners.Add(listener);
                return listener.Bound;
            }
        }

        listener.Dispose();
        throw new ObjectDisposedException(nameof(UserNetwork));
    }

    /// <summary>
    /// Closes the host socket of the forward bound on <paramref name="protocol"/> <paramref name="hostPort"/> (at any host
    /// address); false when there is none. Connections it already carried stay open until either end closes them; UDP
    /// clients of it are forgotten.
    /// </summary>
    public bool RemoveForward(HostForwardProtocol protocol, int hostPort)
    {
        IForwardListener? listener;
        lock (_gate)
        {
            listener = _listeners.Find(l => l.Bound.Protocol == protocol && l.Bound.HostPort == hostPort);
            if (listener is null)
            {
                return false;
            }

            _listeners.Remove(listener);
            if (listener is UdpForwardListener udp)
            {
                _udp.ForgetForward(udp);
            }
        }

        listener.Dispose();
        return true;
    }

    /// <summary>Closes every socket and listener and stops the timer; a frame already being delivered may still arrive.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _tcp.Dispose();
            _udp.Dispose();
            while (_outbox.TryDequeue(out var queued))
            {
                ArrayPool<byte>.Shared.Return(queued.Frame);
            }
        }

        _timer.Dispose();
        List<IForwardListener> listeners;
        lock (_gate)
        {
            listeners = [.. _listeners];
            _listeners.Clear();
        }

        foreach (var listener in listeners)
        {
            listener.Dispose();
        }
    }

    /// <summary>A buffer for one outgoing frame; give it to <see cref="EnqueueIpv4"/> or <see cref="Enqueue"/>.</summary>
    internal static byte[] RentFrame() => ArrayPool<byte>.Shared.Rent(IPacketPort.MaxFrameSize);

    internal static void WriteEthernetHeader(Span<byte> frame, MacAddress destination, MacAddress source, ushort etherType)
    {
        destination.CopyTo(frame);
        source.CopyTo(frame[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);
    }

    /// <summary>
    /// The MAC to send an IPv4 packet for <paramref name="destination"/> to: broadcast for the
    /// broadcast address, else that guest's: the holder of its DHCP lease, or the MAC its frames
    /// came from. When no guest is known at that address, asks with ARP and returns false (the
    /// caller drops the packet; TCP will retransmit). False without asking for non-guest addresses.
    /// </summary>
    internal bool TryResolve(uint destination, out MacAddress mac)
    {
        if (destination == Ipv4.Broadcast)
        {
            mac = MacAddress.Broadcast;
            return true;
        }

        if (!IsGuestAddress(destination))
        {
            mac = default;
            return false;
        }

        if (_dhcp.Leases.TryGetBound(destination, Environment.TickCount64, out mac))
        {
            return true;
        }

        if (_neighbours.TryGet(destination, out var neighbour))
        {
            mac = neighbour.Mac;
            return true;
        }

        _arp.Request(destination);
        mac = default;
        return false;
    }

    /// <summary>
    /// Notes that <paramref name="address"/> sent from <paramref name="mac"/>. False (and nothing learned) for
    /// a multicast or the gateway's own MAC, and when another MAC holds the DHCP lease on that address: a
    /// guest may not take over another's address.
    /// </summary>
    internal bool LearnGuest(uint address, MacAddress mac)
    {
        long now = Environment.TickCount64;
        if (mac.IsMulticast || mac == GatewayMac || (_dhcp.Leases.TryGetBound(address, now, out var holder) && holder != mac))
        {
            return false;
        }

        _neighbours.Learn(address, mac, now);
        return true;
    }

    /// <summary>Whether DHCP may give <paramref name="address"/> to <paramref name="mac"/>: a guest address no other MAC has used lately.</summary>
    internal bool IsAvailableTo(uint address, MacAddress mac) =>
        IsGuestAddress(address) &&
        !(_neighbours.TryGet(address, out var neighbour) && neighbour.Mac != mac &&
          Environment.TickCount64 - neighbour.LastSeen < NeighbourHoldMilliseconds);

    /// <summary>
    /// Where a host forward goes now (call with the lock held): the address leased to its guest MAC (false when that
    /// NIC holds no lease, counted), else its guest address, else the first address of the pool.
    /// </summary>
    internal bool TryForwardTarget(HostForward forward, out uint address)
    {
        if (forward.GuestMac is { } mac)
        {
            if (_dhcp.Leases.TryGetBoundAddress(mac, Environment.TickCount64, out address))
            {
                return true;
            }

            _forwardsUnreachable++;
            return false;
        }

        address = forward.GuestAddress is null ? GuestAddress : Ipv4.FromAddress(forward.GuestAddress);
        return true;
    }

    /// <summary>Throws when a host forward names an address no guest of this network can have.</summary>
    internal void CheckForwardTarget(HostForward forward)
    {
        if (forward.GuestAddress is not null && !IsGuestAddress(Ipv4.FromAddress(forward.GuestAddress)))
        {
            throw new ArgumentException(
                $"Host forward '{forward}': {forward.GuestAddress} is not a guest address of the user network ({Options.Gateway}, mask {Options.SubnetMask}, not the gateway or DNS address); name a guest such as {Options.FirstGuestAddress}, or none for the first guest.");
        }
    }

    /// <summary>Adds the Ethernet and IPv4 headers in front of a transport message already at <see cref="TransportOffset"/> and queues it.</summary>
    internal void EnqueueIpv4(byte[] frame, MacAddress destinationMac, uint source, uint destination, byte protocol, int transportLength)
    {
        WriteEthernetHeader(frame, destinationMac, GatewayMac, EtherTypeIpv4);
        Ipv4Packet.WriteHeader(frame.AsSpan(IpOffset), source, destination, protocol, transportLength, _ipIdentification++);
        Enqueue(frame, TransportOffset + transportLength);
    }

    /// <summary>Sends one UDP datagram to the guest; datagrams too big for one frame are dropped (no fragmentation).</summary>
    internal void SendUdpToGuest(uint source, ushort sourcePort, uint destination, ushort destinationPort, ReadOnlySpan<byte> payload)
    {
        const int udpHeader = 8;
        if (payload.Length > IPacketPort.MaxFrameSize - TransportOffset - udpHeader || !TryResolve(destination, out var mac))
        {
            _framesDropped++;
            return;
        }

        byte[] frame = RentFrame();
        var udp = frame.AsSpan(TransportOffset, udpHeader + payload.Length);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], 0);
        payload.CopyTo(udp[udpHeader..]);
        ushort checksum = InternetChecksum.ComputeTransport(source, destination, Ipv4Packet.ProtocolUdp, udp);
        // A computed zero is sent as all ones: zero in a UDP header means "no checksum" (RFC 768).
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum == 0 ? (ushort)0xffff : checksum);
        EnqueueIpv4(frame, mac, source, destination, Ipv4Packet.ProtocolUdp, udp.Length);
    }

    /// <summary>Queues a finished frame for the guest (caller holds the lock; the frame returns to the pool after delivery).</summary>
    internal void Enqueue(byte[] frame, int length)
    {
        if (_receiver is null || _disposed || _outbox.Count >= MaxQueuedFrames)
        {
            _framesDropped++;
            ArrayPool<byte>.Shared.Return(frame);
            return;
        }

        _outbox.Enqueue((frame, length));
    }

    /// <summary>Hands queued frames to the receiver; call without holding the lock.</summary>
    internal void Flush()
    {
        while (true)
        {
            if (!_deliverGate.TryEnter())
            {
                // Another thread is delivering and will also take what we queued (it re-checks below).
                return;
            }

            try
            {
                while (true)
                {
                    (byte[] Frame, int Length) next;
                    IFrameReceiver? receiver;
                    lock (_gate)
                    {
                        if (!_outbox.TryDequeue(out next))
                        {
                            break;
                        }

                        receiver = _receiver;
                    }

                    bool accepted = receiver is not null && receiver.Receive(next.Frame.AsSpan(0, next.Length));
                    ArrayPool<byte>.Shared.Return(next.Frame);
                    lock (_gate)
                    {
                        if (accepted)
                        {
                            _framesToGuest++;
                            _bytesToGuest += next.Length;
                        }
                        else
                        {
                            _framesDropped++;
                        }
                    }
                }
            }
            finally
            {
                _deliverGate.Exit();
            }

            lock (_gate)
            {
                if (_outbox.Count == 0)
                {
                    return;
                }
            }
        }
    }

    private void RunScheduledFlush()
    {
        lock (_gate)
        {
            _flushScheduled = false;
        }

        Flush();
    }

    /// <summary>True when <paramref name="address"/> is in the virtual subnet.</summary>
    internal bool IsInSubnet(uint address) => (address & SubnetMask) == (GatewayAddress & SubnetMask);

    /// <summary>True for an address a guest may have: in the subnet, not the gateway, DNS, network or subnet broadcast address.</summary>
    internal bool IsGuestAddress(uint address) =>
        IsInSubnet(address) && address != GatewayAddress && address != DnsAddress &&
        (address & ~SubnetMask) != 0 && (address & ~SubnetMask) != ~SubnetMask;

    /// <summary>
    /// Where guests may reach through this NAT. It can be replaced while the network runs (an admin
    /// changed a network's rules); flows already open stay, new ones follow the new policy.
    /// </summary>
    public EgressPolicy Egress
    {
        get => Volatile.Read(ref _egress);
        set => Volatile.Write(ref _egress, value ?? throw new ArgumentNullException(nameof(value)));
    }

    /// <summary>
    /// Where a guest's flow to <paramref name="destination"/>:<paramref name="port"/> goes on the host
    /// (the gateway may stand for the host's loopback), or null, counted, when the policy refuses it.
    /// </summary>
    internal uint? ResolveEgress(uint destination, ushort port)
    {
        uint? target = Egress.Resolve(destination, port, GatewayAddress);
        if (target is null)
        {
            _egressRefused++;
        }

        return target;
    }

    internal void CountDrop() => _framesDropped++;

    /// <summary>A TCP connection or UDP flow refused for want of room: a limit of the options was reached, or the host refused a socket.</summary>
    internal void CountFlowRefused() => _flowsRefused++;

    /// <summary>A datagram from a host client of a UDP forward.</summary>
    internal void ForwardUdpFromHost(UdpForwardListener listener, IPEndPoint client, ReadOnlySpan<byte> data)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _udp.FromForward(listener, client, data);
        }

        Flush();
    }

    /// <summary>
    /// TCP is active: tick often enough for delayed ACKs and retransmission. An idle network ticks
    /// slowly (only expiry), so many idle VMs do not wake the host 100 times a second each.
    /// </summary>
    internal void NeedFastTimer()
    {
        if (!_fastTimer && !_disposed)
        {
            _fastTimer = true;
            _timer.Change(FastTimerMilliseconds, FastTimerMilliseconds);
        }
    }

    /// <summary>A client connected to a forwarded host port.</summary>
    internal void AcceptForward(System.Net.Sockets.Socket client, HostForward forward)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                client.Dispose();
                return;
            }

            if (!TryForwardTarget(forward, out uint guestAddress))
            {
                // No guest to go to: a reset (linger 0) tells the client at once, rather than an accepted connection that hangs.
                client.LingerState = new System.Net.Sockets.LingerOption(true, 0);
                client.Dispose();
                return;
            }

            _tcp.OpenForward(client, guestAddress, (ushort)forward.GuestPort);
        }

        Flush();
    }

    private void Validate()
    {
        if (!IsGuestAddress(GuestAddress) || !IsGuestAddress(LastGuestAddress) || !IsInSubnet(DnsAddress) || GatewayAddress == DnsAddress)
        {
            throw new ArgumentException(
                $"UserNetworkOptions: the guest addresses ({Options.FirstGuestAddress} to {Ipv4.ToAddress(LastGuestAddress)}), gateway ({Options.Gateway}) and DNS ({Options.DnsAddress}) addresses must be distinct and in one subnet ({Options.SubnetMask}).");
        }

        if (LastGuestAddress < GuestAddress)
        {
            throw new ArgumentException(
                $"UserNetworkOptions: the DHCP pool ends ({Ipv4.ToAddress(LastGuestAddress)}) before it starts ({Options.FirstGuestAddress}); set LastGuestAddress to {Options.FirstGuestAddress} or above.");
        }

        if (Options.GatewayMac.IsMulticast)
        {
            throw new ArgumentException($"UserNetworkOptions: the gateway MAC {Options.GatewayMac} is a multicast address; use a unicast one such as 52:55:0a:00:02:02.");
        }

        if (Options.TcpBufferSize is < 4096 or > 64 * 1024 * 1024)
        {
            throw new ArgumentException($"UserNetworkOptions: TcpBufferSize {Options.TcpBufferSize} must be from 4 KiB to 64 MiB.");
        }

        if (Options.MaxTcpConnections < 0 || Options.MaxUdpFlows < 0 || Options.MaxTcpConnectionsPerGuest < 0 || Options.MaxUdpFlowsPerGuest < 0 ||
            Options.UdpIdleTimeout <= TimeSpan.Zero || Options.DhcpLeaseTime <= TimeSpan.Zero)
        {
            throw new ArgumentException("UserNetworkOptions: connection and flow limits must not be negative, and the UDP idle timeout and DHCP lease time must be positive.");
        }
    }

    /// <summary>
    /// A frame neither to the gateway's MAC nor broadcast: on a switch, guests talk to each other directly
    /// and the switch floods their unknown unicast (and multicast) here too; that is not ours to answer.
    /// </summary>
    private bool IsForAnotherHost(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < EthernetHeaderLength)
        {
            return false;
        }

        var destination = MacAddress.FromBytes(frame);
        return destination != GatewayMac && destination != MacAddress.Broadcast;
    }

    private bool Dispatch(ReadOnlySpan<byte> frame)
    {
        if (frame.Length < EthernetHeaderLength || frame.Length > IPacketPort.MaxFrameSize)
        {
            return false;
        }

        // A frame "from" the gateway is our own looped back, or a guest posing as us: neither is a guest's.
        var source = MacAddress.FromBytes(frame[6..]);
        if (source.IsMulticast || source == GatewayMac)
        {
            return false;
        }

        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        var payload = frame[EthernetHeaderLength..];
        return etherType switch
        {
            EtherTypeArp => _arp.Handle(payload),
            EtherTypeIpv4 => DispatchIpv4(payload, source),
            _ => false,
        };
    }

    private bool DispatchIpv4(ReadOnlySpan<byte> packet, MacAddress source)
    {
        if (!Ipv4Packet.TryParse(packet, out var ip))
        {
            return false;
        }

        // A guest's frames teach us where it is (it may have a static address and never ask DHCP);
        // one sending from an address leased to another guest is dropped.
        if (IsGuestAddress(ip.Source) && !LearnGuest(ip.Source, source))
        {
            return false;
        }

        return ip.Protocol switch
        {
            Ipv4Packet.ProtocolIcmp => _icmp.Handle(ip),
            Ipv4Packet.ProtocolTcp => _tcp.Handle(ip, source),
            Ipv4Packet.ProtocolUdp => DispatchUdp(ip, source),
            _ => false,
        };
    }

    private bool DispatchUdp(Ipv4Packet ip, MacAddress source)
    {
        var udp = ip.Payload;
        if (udp.Length < 8)
        {
            return false;
        }

        int length = BinaryPrimitives.ReadUInt16BigEndian(udp[4..]);
        if (length < 8 || length > udp.Length)
        {
            return false;
        }

        udp = udp[..length];
        if (BinaryPrimitives.ReadUInt16BigEndian(udp[6..]) != 0 &&
            !InternetChecksum.IsValidTransport(ip.Source, ip.Destination, Ipv4Packet.ProtocolUdp, udp))
        {
            return false;
        }

        ushort sourcePort = BinaryPrimitives.ReadUInt16BigEndian(udp);
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(udp[2..]);
        var data = udp[8..];
        if (destinationPort == DhcpServer.ServerPort)
        {
            return _dhcp.Handle(ip.Destination, data, source);
        }

        if (!IsGuestAddress(ip.Source))
        {
            // Before DHCP a guest has no address; anything it sends from outside the guest addresses is not NATed.
            return false;
        }

        return _udp.Handle(new FlowKey(ip.Source, sourcePort, ip.Destination, destinationPort), data, source);
    }

    private void OnTimer()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            long now = Environment.TickCount64;
            _tcp.OnTimer(now);
            _udp.OnTimer(now);
            if (_fastTimer && !_tcp.HasDeadlines)
            {
                _fastTimer = false;
                _timer.Change(SlowTimerMilliseconds, SlowTimerMilliseconds);
            }
        }

        Flush();
    }
}
