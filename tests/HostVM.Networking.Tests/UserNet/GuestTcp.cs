namespace HostVM.Networking.Tests.UserNet;

/// <summary>
/// A deliberately simple TCP endpoint for the fake guest, driven from the test thread: it sends
/// in order, receives in order (anything else is answered with a duplicate ACK, as a real stack
/// would), ACKs every data segment with a fixed window, and records window violations.
/// </summary>
internal sealed class GuestTcp
{
    private const int Mss = 1460;
    private readonly FakeGuest _guest;
    private uint _sndNxt;
    private uint _sndUna;
    private uint _rcvNxt;
    private uint _lastAckSent;
    private long _peerWindow;
    private int _peerShift;
    private int _ourShift = -1;

    private GuestTcp(FakeGuest guest, ushort localPort, uint remoteAddress, ushort remotePort, ushort window)
    {
        _guest = guest;
        LocalPort = localPort;
        RemoteAddress = remoteAddress;
        RemotePort = remotePort;
        Window = window;
        _sndNxt = 1000;
        _sndUna = 1000;
    }

    public ushort LocalPort { get; }

    public uint RemoteAddress { get; }

    public ushort RemotePort { get; }

    /// <summary>The window field this guest sends (scaled by its shift when it offered window scaling).</summary>
    public ushort Window { get; set; }

    /// <summary>The peer's window scale from its SYN, or -1 when it sent none.</summary>
    public int PeerWindowScale { get; private set; } = -1;

    private long WindowBytes => (long)Window << Math.Max(_ourShift, 0);

    public MemoryStream Received { get; } = new();

    public bool FinReceived { get; private set; }

    public bool ResetReceived { get; private set; }

    /// <summary>Segments the peer sent beyond the window we offered (must stay zero).</summary>
    public int WindowViolations { get; private set; }

    public int PeerMss { get; private set; }

    public static ReceivedFrame SendSyn(FakeGuest guest, ushort localPort, uint remoteAddress, ushort remotePort, ushort window = 65535, int windowScale = -1)
    {
        // With scaling, the options a Linux guest sends: MSS, SACK permitted, timestamps, window scale.
        byte[] options = windowScale < 0
            ? [2, 4, Mss >> 8, Mss & 0xff]
            : [2, 4, Mss >> 8, Mss & 0xff, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, (byte)windowScale];
        guest.Send(Packets.Tcp(guest.Address, localPort, remoteAddress, remotePort, 999, 0, Packets.Syn, window, [], options, guest.Mac));
        return guest.WaitFor(f => f.IsTcp && f.DestinationPort == localPort && f.SourcePort == remotePort);
    }

    public static GuestTcp Connect(FakeGuest guest, ushort localPort, uint remoteAddress, ushort remotePort, ushort window = 65535, int windowScale = -1)
    {
        var synAck = SendSyn(guest, localPort, remoteAddress, remotePort, window, windowScale);
        Assert.True(synAck.Has(Packets.Syn) && synAck.Has(Packets.Ack), $"expected SYN-ACK, got flags {synAck.Flags:x2}");
        Assert.Equal(1000u, synAck.AckNumber);
        var connection = new GuestTcp(guest, localPort, remoteAddress, remotePort, window) { _ourShift = windowScale };
        connection.TakeSyn(synAck);
        connection.SendAck();
        return connection;
    }

    /// <summary>Answers a SYN the network sent (a host forward) and completes the handshake.</summary>
    public static GuestTcp Accept(FakeGuest guest, ReceivedFrame syn, ushort window = 65535)
    {
        Assert.True(syn.Has(Packets.Syn) && !syn.Has(Packets.Ack));
        var connection = new GuestTcp(guest, syn.DestinationPort, syn.IpSource, syn.SourcePort, window);
        connection.TakeSyn(syn);
        byte[] options = [2, 4, Mss >> 8, Mss & 0xff];
        guest.Send(Packets.Tcp(guest.Address, connection.LocalPort, connection.RemoteAddress, connection.RemotePort, 999, connection._rcvNxt, Packets.Syn | Packets.Ack, window, [], options, guest.Mac));
        connection._lastAckSent = connection._rcvNxt;
        connection._sndUna = 999;
        connection.RunUntil(() => connection._sndUna == 1000);
        return connection;
    }

    public void Send(ReadOnlySpan<byte> data, int segmentSize = Mss)
    {
        int offset = 0;
        uint start = _sndNxt;
        while (offset < data.Length)
        {
            while (offset < data.Length && (long)(_sndNxt - _sndUna) + segmentSize <= _peerWindow)
            {
                int length = Math.Min(segmentSize, data.Length - offset);
                byte flags = Packets.Ack;
                if (offset + length == data.Length)
                {
                    flags |= Packets.Psh;
                }

                SendSegment(flags, data.Slice(offset, length));
                offset += length;
            }

            uint target = _sndNxt;
            if (offset < data.Length)
            {
                // Window full: wait for any ACK that moves it.
                uint before = _sndUna;
                RunUntil(() => _sndUna != before || (long)(_sndNxt - _sndUna) + segmentSize <= _peerWindow);
            }
        }

        uint end = start + (uint)data.Length;
        RunUntil(() => _sndUna == end);
    }

    public void SendFin()
    {
        SendSegment(Packets.Fin | Packets.Ack, []);
        _sndNxt++;
    }

    public void SendRaw(byte flags, uint seq, ReadOnlySpan<byte> data) =>
        _guest.Send(Packets.Tcp(_guest.Address, LocalPort, RemoteAddress, RemotePort, seq, _rcvNxt, flags, Window, data, from: _guest.Mac));

    public uint NextSequence => _sndNxt;

    public bool AllAcknowledged => _sndUna == _sndNxt;

    /// <summary>Processes incoming frames for this connection until <paramref name="done"/> holds.</summary>
    public void RunUntil(Func<bool> done, int timeoutMilliseconds = 5000)
    {
        long deadline = Environment.TickCount64 + timeoutMilliseconds;
        while (!done())
        {
            int left = (int)(deadline - Environment.TickCount64);
            if (left <= 0)
            {
                throw new TimeoutException($"TCP connection did not reach the expected state: received {Received.Length} bytes, fin {FinReceived}, reset {ResetReceived}, unacked {_sndNxt - _sndUna}.");
            }

            var frame = _guest.TryTake(Math.Min(left, 100));
            if (frame is not null && frame.IsTcp && frame.DestinationPort == LocalPort && frame.SourcePort == RemotePort)
            {
                Process(frame);
            }
        }
    }

    private void TakeSyn(ReceivedFrame syn)
    {
        _rcvNxt = syn.Seq + 1;
        _peerWindow = syn.Window;
        var options = syn.TcpOptions;
        for (int i = 0; i < options.Length;)
        {
            if (options[i] == 0)
            {
                break;
            }

            if (options[i] == 1)
            {
                i++;
                continue;
            }

            if (options[i] == 2)
            {
                PeerMss = (options[i + 2] << 8) | options[i + 3];
            }

            if (options[i] == 3)
            {
                PeerWindowScale = options[i + 2];
            }

            i += options[i + 1];
        }

        // Scaling applies only when both sides offered it.
        _peerShift = _ourShift >= 0 && PeerWindowScale >= 0 ? PeerWindowScale : 0;
    }

    private void Process(ReceivedFrame frame)
    {
        if (frame.Has(Packets.Rst))
        {
            ResetReceived = true;
            return;
        }

        if (frame.Has(Packets.Syn))
        {
            // Our handshake ACK was lost or is late: repeat it.
            SendAck();
            return;
        }

        if (frame.Has(Packets.Ack) && (int)(frame.AckNumber - _sndUna) > 0 && (int)(frame.AckNumber - _sndNxt) <= 0)
        {
            _sndUna = frame.AckNumber;
        }

        _peerWindow = (long)frame.Window << _peerShift;
        var data = frame.Data;
        if (data.Length > 0 || frame.Has(Packets.Fin))
        {
            if ((long)(frame.Seq + (uint)data.Length - _lastAckSent) > WindowBytes)
            {
                WindowViolations++;
            }

            if (frame.Seq == _rcvNxt)
            {
                Received.Write(data);
                _rcvNxt += (uint)data.Length;
                if (frame.Has(Packets.Fin))
                {
                    _rcvNxt++;
                    FinReceived = true;
                }
            }

            SendAck();
        }
    }

    private void SendAck() => SendSegment(Packets.Ack, []);

    private void SendSegment(byte flags, ReadOnlySpan<byte> data)
    {
        _guest.Send(Packets.Tcp(_guest.Address, LocalPort, RemoteAddress, RemotePort, _sndNxt, _rcvNxt, flags, Window, data, from: _guest.Mac));
        _lastAckSent = _rcvNxt;
        _sndNxt += (uint)data.Length;
    }
}
