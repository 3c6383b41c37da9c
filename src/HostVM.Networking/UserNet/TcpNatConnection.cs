using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.UserNet;

/// <summary>
/// One guest TCP connection relayed to a host socket. Toward the guest this is a real TCP
/// endpoint (RFC 793/9293): handshake, sequence and window tracking, segmentation at the guest's
/// MSS, retransmission on timeout and on three duplicate ACKs (go-back-N: the link never
/// reorders, it only drops), FIN and RST both ways. Toward the host it is a plain socket.
/// </summary>
/// <remarks>
/// Each direction has a <see cref="ByteRing"/>. Guest data is ACKed only once it is in the
/// to-host ring, and the window we advertise is that ring's free space, so a slow host reader
/// slows the guest instead of growing memory. Host data is read only into free space of the
/// to-guest ring and stays there until the guest ACKs it, which is what retransmission sends from.
/// All fields are guarded by the network's lock; the two pump tasks wait on a completion when
/// their ring is empty (writer) or full (reader).
/// </remarks>
internal sealed class TcpNatConnection
{
    private const int OurMss = 1460;
    private const int DefaultMss = 536;
    private const int OurWindowShift = 7;
    private const int MinRtoMilliseconds = 200;
    private const int MaxRtoMilliseconds = 4000;
    private const int MaxRetries = 10;
    private const int DelayedAckMilliseconds = 10;
    private const int TimeWaitMilliseconds = 1000;
    private const int DuplicateAckThreshold = 3;

    private readonly UserNetwork _network;
    private readonly TcpNat _nat;
    private readonly Socket _socket;
    private readonly CancellationTokenSource _cancel = new();
    private readonly ByteRing _toGuest;
    private readonly ByteRing _toHost;
    private TcpNatState _state;

    // Toward the guest.
    private uint _iss;
    private uint _sndUna;
    private uint _sndNxt;
    private uint _sndMax;
    private long _sndWnd;
    private int _sndShift;
    private int _sndMss = DefaultMss;
    private bool _hostEof;
    private bool _finSent;
    private bool _finAcked;
    private bool _finNumbered;
    private uint _finSeq;
    private int _duplicateAcks;
    private long _rtoDeadline;
    private int _rto = MinRtoMilliseconds;
    private int _retries;

    // From the guest.
    private uint _rcvNxt;
    private int _rcvShift;
    private bool _guestFin;
    private bool _hostWriteShutdown;
    private uint _advertisedEdge;
    private int _segmentsSinceAck;
    private long _ackDeadline;

    private long _timeWaitDeadline;
    private TaskCompletionSource? _readerWake;
    private TaskCompletionSource? _writerWake;

    private TcpNatConnection(UserNetwork network, TcpNat nat, FlowKey key, Socket socket, TcpNatState state)
    {
        _network = network;
        _nat = nat;
        Key = key;
        _socket = socket;
        _state = state;
        _toGuest = new ByteRing(network.Options.TcpBufferSize);
        _toHost = new ByteRing(network.Options.TcpBufferSize);
        _iss = (uint)KernelRandom.GetInt32(int.MaxValue);
        _sndUna = _iss;
        _sndNxt = _iss;
        _sndMax = _iss;
    }

    public FlowKey Key { get; }

    /// <summary>Closed both ways and only lingering; a new SYN on the same ports may replace it.</summary>
    public bool IsLingering => _state == TcpNatState.TimeWait;

    public bool HasDeadlines => _ackDeadline != 0 || _rtoDeadline != 0;

    /// <summary>
    /// The guest sent SYN: connect to <paramref name="host"/> and answer only once that succeeds. Null when
    /// the host refuses even the socket (out of file descriptors or buffers): the guest gets a reset.
    /// </summary>
    public static TcpNatConnection? Connect(UserNetwork network, TcpNat nat, FlowKey key, TcpSegment syn, IPEndPoint host)
    {
        Socket socket;
        try
        {
            socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        }
        catch (SocketException)
        {
            return null;
        }

        var connection = new TcpNatConnection(network, nat, key, socket, TcpNatState.Connecting);
        connection._rcvNxt = syn.Sequence + 1;
        connection.TakeSynOptions(syn);
        _ = connection.ConnectAsync(host);
        return connection;
    }

    /// <summary>A host client came in on a forwarded port: open toward the guest with a SYN.</summary>
    public static TcpNatConnection Accept(UserNetwork network, TcpNat nat, FlowKey key, Socket client)
    {
        var connection = new TcpNatConnection(network, nat, key, client, TcpNatState.SynSent)
        {
            _rcvShift = OurWindowShift,
        };
        connection.SendSyn();
        return connection;
    }

    public void OnSegment(TcpSegment segment)
    {
        if (segment.Has(TcpSegment.Rst))
        {
            OnReset(segment);
            return;
        }

        switch (_state)
        {
            case TcpNatState.Connecting:
            case TcpNatState.Closed:
                // A retransmitted SYN while the host connect is pending: it is answered when that finishes.
                return;
            case TcpNatState.TimeWait:
                if (segment.Has(TcpSegment.Fin))
                {
                    SendAck();
                }

                return;
            case TcpNatState.SynSent:
                OnSynSentSegment(segment);
                return;
            case TcpNatState.SynReceived:
                if (segment.Has(TcpSegment.Syn))
                {
                    if (segment.Sequence + 1 == _rcvNxt)
                    {
                        SendSyn();
                    }

                    return;
                }

                if (!segment.Has(TcpSegment.Ack))
                {
                    return;
                }

                if (segment.Acknowledgment != _iss + 1)
                {
                    TcpNat.WriteSegment(_network, Key, segment.Acknowledgment, 0, TcpSegment.Rst, 0, default, null, 0, 0);
                    return;
                }

                Establish();
                break;
        }

        if (segment.Has(TcpSegment.Syn))
        {
            // A SYN on a synchronized connection: answer with an ACK and let the guest sort it out (RFC 5961 4.2).
            SendAck();
            return;
        }

        if (!segment.Has(TcpSegment.Ack))
        {
            return;
        }

        long now = Environment.TickCount64;
        OnAck(segment, now);
        OnData(segment, now);
        Pump(now);
        MaybeFinish(now);
    }

    public void OnTimer(long now)
    {
        if (_state == TcpNatState.TimeWait)
        {
            if (now >= _timeWaitDeadline)
            {
                _state = TcpNatState.Closed;
                _nat.Remove(this);
            }

            return;
        }

        if (_ackDeadline != 0 && now >= _ackDeadline)
        {
            SendAck();
        }

        if (_rtoDeadline != 0 && now >= _rtoDeadline)
        {
            Retransmit(now);
        }
    }

    /// <summary>Closes the host socket without telling the guest (the network is being disposed).</summary>
    public void Close()
    {
        _state = TcpNatState.Closed;
        _cancel.Cancel();
        _socket.Dispose();
        Wake(ref _readerWake);
        Wake(ref _writerWake);
    }

    private static void Wake(ref TaskCompletionSource? waiter)
    {
        waiter?.TrySetResult();
        waiter = null;
    }

    private void TakeSynOptions(TcpSegment syn)
    {
        _sndMss = syn.MaximumSegmentSize > 0 ? Math.Clamp(syn.MaximumSegmentSize, 64, OurMss) : DefaultMss;
        if (syn.WindowScale >= 0)
        {
            _sndShift = syn.WindowScale;
            _rcvShift = OurWindowShift;
        }
        else
        {
            // Scaling is used only when both sides offer it (RFC 7323 2.2).
            _sndShift = 0;
            _rcvShift = 0;
        }

        _sndWnd = syn.Window; // never scaled in a SYN
    }

    private async Task ConnectAsync(IPEndPoint host)
    {
        // Started with the network's lock held: leave this thread first, so a socket operation that
        // completes synchronously cannot re-enter the lock and deliver frames from under it.
        await Task.Yield();
        bool connected;
        try
        {
            await _socket.ConnectAsync(host, _cancel.Token).ConfigureAwait(false);
            connected = true;
        }
        catch (Exception ex) when (ex is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            connected = false;
        }

        lock (_network.Gate)
        {
            if (_state != TcpNatState.Connecting)
            {
                return;
            }

            _network.NeedFastTimer();

            if (!connected)
            {
                // The host refused or could not reach it: the guest sees a refused connection.
                TcpNat.WriteSegment(_network, Key, 0, _rcvNxt, TcpSegment.Rst | TcpSegment.Ack, 0, default, null, 0, 0);
                CloseAndRemove(abortive: false);
            }
            else
            {
                _state = TcpNatState.SynReceived;
                SendSyn();
            }
        }

        _network.Flush();
    }

    private void OnSynSentSegment(TcpSegment segment)
    {
        if (!segment.Has(TcpSegment.Ack) || segment.Acknowledgment != _iss + 1)
        {
            if (segment.Has(TcpSegment.Ack))
            {
                TcpNat.WriteSegment(_network, Key, segment.Acknowledgment, 0, TcpSegment.Rst, 0, default, null, 0, 0);
            }

            return;
        }

        if (!segment.Has(TcpSegment.Syn))
        {
            return;
        }

        _rcvNxt = segment.Sequence + 1;
        int offeredShift = _rcvShift;
        TakeSynOptions(segment);
        if (segment.WindowScale >= 0)
        {
            _rcvShift = offeredShift;
        }

        Establish();
        SendAck();
        Pump(Environment.TickCount64);
    }

    private void Establish()
    {
        _state = TcpNatState.Established;
        _sndUna = _iss + 1;
        _rtoDeadline = 0;
        _rto = MinRtoMilliseconds;
        _retries = 0;
        _ = ReadFromHostAsync();
        _ = WriteToHostAsync();
    }

    private void OnReset(TcpSegment segment)
    {
        bool acceptable = _state switch
        {
            TcpNatState.SynSent => segment.Has(TcpSegment.Ack) && segment.Acknowledgment == _iss + 1,
            TcpNatState.Closed => false,
            // In the window (or the exact next byte for a zero window), per RFC 793 3.4.
            _ => segment.Sequence - _rcvNxt <= (uint)Math.Max(1, _toHost.Free),
        };
        if (acceptable)
        {
            CloseAndRemove(abortive: true);
        }
    }

    private void OnAck(TcpSegment segment, long now)
    {
        uint ack = segment.Acknowledgment;
        long window = (long)segment.Window << _sndShift;
        if (TcpSequence.Gt(ack, _sndMax))
        {
            // ACKs data we never sent.
            SendAck();
            return;
        }

        // Any acceptable ACK shows the guest is alive, even one that refuses a window probe.
        _retries = 0;
        if (TcpSequence.Gt(ack, _sndUna))
        {
            int acked = (int)(ack - _sndUna);
            int data = Math.Min(acked, _toGuest.Count);
            _toGuest.Consume(data);
            // Judged by sequence, not by _finSent: a timeout may have rewound the send just before
            // the ACK for the FIN arrived.
            if (_finNumbered && ack == _finSeq + 1)
            {
                _finAcked = true;
            }

            _sndUna = ack;
            if (TcpSequence.Lt(_sndNxt, _sndUna))
            {
                _sndNxt = _sndUna;
            }

            _duplicateAcks = 0;
            _rto = MinRtoMilliseconds;
            _rtoDeadline = HasUnfinishedSend() ? now + _rto : 0;
            Wake(ref _readerWake);
        }
        else if (ack == _sndUna && segment.Payload.Length == 0 && !segment.Has(TcpSegment.Fin) &&
                 _sndMax != _sndUna && window == _sndWnd)
        {
            if (++_duplicateAcks == DuplicateAckThreshold)
            {
                // Fast retransmit: the guest's NIC queue dropped a segment, the rest are ignored out of order.
                RewindSend();
            }
        }

        _sndWnd = window;
    }

    private void OnData(TcpSegment segment, long now)
    {
        var payload = segment.Payload;
        bool fin = segment.Has(TcpSegment.Fin);
        if (payload.Length == 0 && !fin)
        {
            return;
        }

        if (_guestFin)
        {
            // Everything up to the FIN is in; this is a retransmission.
            SendAck();
            return;
        }

        uint sequence = segment.Sequence;
        if (TcpSequence.Lt(sequence, _rcvNxt))
        {
            uint old = _rcvNxt - sequence;
            if (old > (uint)payload.Length || (old == (uint)payload.Length && !fin))
            {
                SendAck();
                return;
            }

            payload = payload[(int)old..];
            sequence = _rcvNxt;
        }

        if (sequence != _rcvNxt)
        {
            // Out of order after a loss: a duplicate ACK asks for the gap.
            SendAck();
            return;
        }

        int take = Math.Min(payload.Length, _toHost.Free);
        if (take > 0)
        {
            _toHost.Write(payload[..take]);
            _rcvNxt += (uint)take;
            Wake(ref _writerWake);
        }

        if (take < payload.Length)
        {
            // More than the window we offered: keep what fits, the guest resends the rest.
            SendAck();
            return;
        }

        if (fin)
        {
            _rcvNxt++;
            _guestFin = true;
            Wake(ref _writerWake);
            SendAck();
            return;
        }

        // ACK every second segment, and at once at the end of a burst (PSH or a short segment);
        // otherwise a short timer catches a lone segment, so a sender never waits on a delayed ACK.
        _segmentsSinceAck++;
        if (_segmentsSinceAck >= 2 || segment.Has(TcpSegment.Psh) || payload.Length < OurMss)
        {
            SendAck();
        }
        else if (_ackDeadline == 0)
        {
            _ackDeadline = now + DelayedAckMilliseconds;
        }
    }

    /// <summary>Sends what the guest's window allows, then FIN once the host has closed and all data is out.</summary>
    private void Pump(long now)
    {
        if (_state != TcpNatState.Established)
        {
            return;
        }

        while (true)
        {
            int inFlight = (int)(_sndNxt - _sndUna);
            int unsent = _toGuest.Count - inFlight;
            long room = _sndWnd - inFlight;
            if (unsent <= 0 || room <= 0)
            {
                break;
            }

            int length = (int)Math.Min(Math.Min(unsent, room), _sndMss);
            if (length < _sndMss && length < unsent && inFlight > 0)
            {
                // Wait for ACKs to open the window rather than send a sliver (sender silly-window avoidance).
                break;
            }

            SendData(inFlight, length, now);
        }

        if (_hostEof && !_finSent && !_finAcked && (int)(_sndNxt - _sndUna) == _toGuest.Count)
        {
            _finSeq = _sndNxt;
            _finNumbered = true;
            _finSent = true;
            SendSegment(TcpSegment.Fin | TcpSegment.Ack, _sndNxt, 0, 0);
            Advance(1, now);
        }

        if (_rtoDeadline == 0 && HasUnfinishedSend())
        {
            // Data is waiting on a closed window: the timer doubles as the persist timer that probes it.
            _rtoDeadline = now + _rto;
        }
    }

    private void SendData(int offset, int length, long now)
    {
        byte flags = TcpSegment.Ack;
        if (offset + length == _toGuest.Count)
        {
            flags |= TcpSegment.Psh;
        }

        SendSegment(flags, _sndNxt, offset, length);
        Advance(length, now);
    }

    private void Advance(int length, long now)
    {
        _sndNxt += (uint)length;
        if (TcpSequence.Gt(_sndNxt, _sndMax))
        {
            _sndMax = _sndNxt;
        }

        if (_rtoDeadline == 0)
        {
            _rtoDeadline = now + _rto;
        }
    }

    private bool HasUnfinishedSend() =>
        _sndMax != _sndUna || _toGuest.Count > 0 || (_hostEof && !_finAcked);

    private void RewindSend()
    {
        _sndNxt = _sndUna;
        if (_finSent && !_finAcked)
        {
            _finSent = false;
        }
    }

    private void Retransmit(long now)
    {
        if (++_retries > MaxRetries)
        {
            // The guest has stopped answering.
            SendSegment(TcpSegment.Rst | TcpSegment.Ack, _sndNxt, 0, 0);
            CloseAndRemove(abortive: true);
            return;
        }

        _rto = Math.Min(_rto * 2, MaxRtoMilliseconds);
        _rtoDeadline = now + _rto;
        switch (_state)
        {
            case TcpNatState.SynReceived:
            case TcpNatState.SynSent:
                SendSyn();
                return;
            case TcpNatState.Established:
                RewindSend();
                Pump(now);
                if (_sndNxt == _sndUna && _toGuest.Count > 0)
                {
                    // The window is closed: probe it with one byte so the guest's answer reopens it.
                    SendData(0, 1, now);
                }

                if (!HasUnfinishedSend())
                {
                    _rtoDeadline = 0;
                }

                return;
            default:
                _rtoDeadline = 0;
                return;
        }
    }

    private void SendSyn()
    {
        // MSS, then (only when scaling is in use or being offered) NOP + window scale.
        Span<byte> options = [2, 4, OurMss >> 8, OurMss & 0xff, 1, 3, 3, OurWindowShift];
        var used = _rcvShift > 0 ? options : options[..4];
        byte flags = _state == TcpNatState.SynSent ? TcpSegment.Syn : (byte)(TcpSegment.Syn | TcpSegment.Ack);
        ushort window = (ushort)Math.Min(_toHost.Free, ushort.MaxValue);
        uint ack = _state == TcpNatState.SynSent ? 0 : _rcvNxt;
        TcpNat.WriteSegment(_network, Key, _iss, ack, flags, window, used, null, 0, 0);
        _sndNxt = _iss + 1;
        _sndMax = _sndNxt;
        if (_rtoDeadline == 0)
        {
            _rtoDeadline = Environment.TickCount64 + _rto;
        }
    }

    private void SendAck() => SendSegment(TcpSegment.Ack, _sndNxt, 0, 0);

    private void SendSegment(byte flags, uint sequence, int dataOffset, int length)
    {
        ushort window = (ushort)Math.Min(_toHost.Free >> _rcvShift, ushort.MaxValue);
        TcpNat.WriteSegment(_network, Key, sequence, _rcvNxt, flags, window, default, _toGuest, dataOffset, length);
        _segmentsSinceAck = 0;
        _ackDeadline = 0;
        _advertisedEdge = _rcvNxt + ((uint)window << _rcvShift);
    }

    /// <summary>Once both directions are closed and our FIN is ACKed, linger briefly, then go.</summary>
    private void MaybeFinish(long now)
    {
        if (_state == TcpNatState.Established && _guestFin && _hostWriteShutdown && _finAcked)
        {
            _state = TcpNatState.TimeWait;
            _timeWaitDeadline = now + TimeWaitMilliseconds;
            _rtoDeadline = 0;
            _cancel.Cancel();
            _socket.Dispose();
        }
    }

    private void CloseAndRemove(bool abortive)
    {
        if (_state == TcpNatState.Closed)
        {
            return;
        }

        if (abortive)
        {
            try
            {
                // Zero linger makes the close send RST to the host peer, mirroring the guest's abort.
                _socket.LingerState = new LingerOption(true, 0);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Already closed.
            }
        }

        Close();
        _nat.Remove(this);
    }

    /// <summary>Host → guest: reads into the to-guest ring's free space and sends it on.</summary>
    private async Task ReadFromHostAsync()
    {
        // Started with the network's lock held: leave this thread first, so a socket operation that
        // completes synchronously cannot re-enter the lock and deliver frames from under it.
        await Task.Yield();
        try
        {
            while (true)
            {
                Memory<byte> region;
                Task? wait = null;
                lock (_network.Gate)
                {
                    if (_state is TcpNatState.Closed or TcpNatState.TimeWait)
                    {
                        return;
                    }

                    region = _toGuest.WritableRegion();
                    if (region.Length == 0)
                    {
                        _readerWake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        wait = _readerWake.Task;
                    }
                }

                if (wait is not null)
                {
                    await wait.ConfigureAwait(false);
                    continue;
                }

                int received = await _socket.ReceiveAsync(region, SocketFlags.None, _cancel.Token).ConfigureAwait(false);
                lock (_network.Gate)
                {
                    if (_state is TcpNatState.Closed or TcpNatState.TimeWait)
                    {
                        return;
                    }

                    _network.NeedFastTimer();
                    long now = Environment.TickCount64;
                    if (received == 0)
                    {
                        _hostEof = true;
                    }
                    else
                    {
                        _toGuest.Commit(received);
                    }

                    Pump(now);
                    MaybeFinish(now);
                }

                _network.Flush();
                if (received == 0)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            AbortFromHost();
        }
    }

    /// <summary>Guest → host: writes the to-host ring to the socket, then half-closes after the guest's FIN.</summary>
    private async Task WriteToHostAsync()
    {
        // Started with the network's lock held: leave this thread first, so a socket operation that
        // completes synchronously cannot re-enter the lock and deliver frames from under it.
        await Task.Yield();
        try
        {
            while (true)
            {
                ReadOnlyMemory<byte> region;
                Task? wait = null;
                lock (_network.Gate)
                {
                    if (_state is TcpNatState.Closed or TcpNatState.TimeWait)
                    {
                        return;
                    }

                    region = _toHost.ReadableRegion();
                    if (region.Length == 0)
                    {
                        if (_guestFin)
                        {
                            _socket.Shutdown(SocketShutdown.Send);
                            _hostWriteShutdown = true;
                            MaybeFinish(Environment.TickCount64);
                            return;
                        }

                        _writerWake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                        wait = _writerWake.Task;
                    }
                }

                if (wait is not null)
                {
                    await wait.ConfigureAwait(false);
                    continue;
                }

                int sent = await _socket.SendAsync(region, SocketFlags.None, _cancel.Token).ConfigureAwait(false);
                lock (_network.Gate)
                {
                    if (_state is TcpNatState.Closed or TcpNatState.TimeWait)
                    {
                        return;
                    }

                    _network.NeedFastTimer();
                    _toHost.Consume(sent);
                    MaybeSendWindowUpdate();
                }

                _network.Flush();
            }
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            AbortFromHost();
        }
    }

    /// <summary>
    /// Tells the guest the window reopened, but only when it had shrunk enough to hold the guest
    /// back; otherwise the ACKs for its data carry the news and an update would be a wasted frame.
    /// </summary>
    private void MaybeSendWindowUpdate()
    {
        if (_state != TcpNatState.Established || _guestFin)
        {
            return;
        }

        uint offered = _advertisedEdge - _rcvNxt;
        uint edge = _rcvNxt + ((uint)Math.Min(_toHost.Free >> _rcvShift, ushort.MaxValue) << _rcvShift);
        uint growth = edge - _advertisedEdge;
        if (offered < (uint)_toHost.Capacity / 2 && TcpSequence.Gt(edge, _advertisedEdge) &&
            (growth >= 2 * OurMss || _toHost.Count == 0))
        {
            SendAck();
        }
    }

    private void AbortFromHost()
    {
        lock (_network.Gate)
        {
            if (_state is TcpNatState.Closed or TcpNatState.TimeWait || _network.IsDisposed)
            {
                return;
            }

            // The host connection failed (reset, or the host stopped reading): reset the guest's side too.
            SendSegment(TcpSegment.Rst | TcpSegment.Ack, _sndNxt, 0, 0);
            CloseAndRemove(abortive: true);
        }

        _network.Flush();
    }
}
