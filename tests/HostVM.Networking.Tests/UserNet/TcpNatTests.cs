using System.Net;
using System.Net.Sockets;

namespace HostVM.Networking.Tests.UserNet;

public class TcpNatTests
{
    [Fact]
    public async Task GuestConnectsToHostThroughTheGatewayAndBothSidesCloseInOrder()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);

        var connection = GuestTcp.Connect(guest, 40000, Packets.Gateway, port);
        Assert.Equal(1460, connection.PeerMss);
        using var server = await listener.AcceptTcpClientAsync();
        var stream = server.GetStream();

        connection.Send("hello from the guest"u8);
        var buffer = new byte[64];
        int n = await ReadExactlyAsync(stream, buffer, 20);
        Assert.Equal("hello from the guest", System.Text.Encoding.ASCII.GetString(buffer, 0, n));

        await stream.WriteAsync("hello from the host"u8.ToArray());
        connection.RunUntil(() => connection.Received.Length == 19);
        Assert.Equal("hello from the host", System.Text.Encoding.ASCII.GetString(connection.Received.ToArray()));

        // Guest closes first: the host reads end of stream, then closes its side.
        connection.SendFin();
        Assert.Equal(0, await stream.ReadAsync(buffer));
        server.Client.Shutdown(SocketShutdown.Send);
        connection.RunUntil(() => connection.FinReceived && connection.AllAcknowledged);
        Assert.False(connection.ResetReceived);
        Assert.Equal(0, connection.WindowViolations);

        // After a short linger the connection is gone from the table.
        var deadline = Environment.TickCount64 + 5000;
        while (guest.Network.Statistics.TcpConnections != 0 && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, guest.Network.Statistics.TcpConnections);
    }

    [Fact]
    public async Task AClosedGuestWindowIsProbedAndDataFlowsWhenItOpens()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);
        var connection = GuestTcp.Connect(guest, 40006, Packets.Gateway, port, window: 0);
        using var server = await listener.AcceptTcpClientAsync();
        var data = Pattern(10_000, 5);
        await server.GetStream().WriteAsync(data);

        // The guest's window is shut: at most one-byte probes may come, and they are ignored here.
        int probes = 0;
        long until = Environment.TickCount64 + 5000;
        while (probes < 2 && Environment.TickCount64 < until)
        {
            var frame = guest.TryTake(50);
            if (frame is { IsTcp: true, Data.Length: > 0 })
            {
                Assert.Single(frame.Data);
                probes++;
            }
        }

        Assert.True(probes >= 2, "the closed window was probed");
        connection.Window = 65535;
        connection.SendRaw(Packets.Ack, connection.NextSequence, []);
        connection.RunUntil(() => connection.Received.Length == data.Length);
        Assert.Equal(data, connection.Received.ToArray());
    }

    [Fact]
    public async Task BulkTransferBothWaysWithASmallGuestWindow()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);
        var toGuest = Pattern(300_000, 7);
        var toHost = Pattern(400_000, 13);

        var connection = GuestTcp.Connect(guest, 40001, Packets.Gateway, port, window: 4096);
        using var server = await listener.AcceptTcpClientAsync();
        var hostSide = ExchangeAsync(server, toGuest, toHost.Length);

        connection.Send(toHost);
        connection.RunUntil(() => connection.FinReceived, 10000);
        Assert.Equal(toHost, await hostSide);
        Assert.Equal(toGuest, connection.Received.ToArray());
        Assert.Equal(0, connection.WindowViolations);
        connection.SendFin();
        connection.RunUntil(() => connection.AllAcknowledged);
    }

    [Fact]
    public async Task WindowScalingIsNegotiatedAndHonouredBothWays()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);
        var toGuest = Pattern(200_000, 8);
        var toHost = Pattern(300_000, 9);

        // Window field 1024 scaled by 4: the guest takes 4 KiB at a time.
        var connection = GuestTcp.Connect(guest, 40007, Packets.Gateway, port, window: 1024, windowScale: 2);
        Assert.True(connection.PeerWindowScale > 0, "the NAT answers a window-scale offer with its own");
        using var server = await listener.AcceptTcpClientAsync();
        var hostSide = ExchangeAsync(server, toGuest, toHost.Length);

        connection.Send(toHost);
        connection.RunUntil(() => connection.FinReceived, 10000);
        Assert.Equal(toHost, await hostSide);
        Assert.Equal(toGuest, connection.Received.ToArray());
        Assert.Equal(0, connection.WindowViolations);
    }

    [Fact]
    public void WithoutAWindowScaleOfferNoneIsAnswered()
    {
        using var guest = new FakeGuest(ToHost.Options);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var connection = GuestTcp.Connect(guest, 40008, Packets.Gateway, (ushort)((IPEndPoint)listener.LocalEndpoint).Port);
        Assert.Equal(-1, connection.PeerWindowScale);
    }

    [Fact]
    public async Task SegmentDroppedByTheNicIsRetransmitted()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);
        var connection = GuestTcp.Connect(guest, 40002, Packets.Gateway, port);
        using var server = await listener.AcceptTcpClientAsync();

        // Refuse the third and the last data segment once each, as a full NIC queue would:
        // one is recovered by duplicate ACKs, the other (with nothing after it) only by the timer.
        var data = Pattern(20 * 1460, 3);
        int dataSegments = 0;
        var dropped = new HashSet<uint>();
        bool finDropped = false;
        guest.Drop = f =>
        {
            if (f.IsTcp && f.Has(Packets.Fin) && !finDropped)
            {
                finDropped = true;
                return true;
            }

            if (!f.IsTcp || f.Data.Length == 0)
            {
                return false;
            }

            int index = Interlocked.Increment(ref dataSegments);
            bool last = f.Data.Length > 0 && f.Has(Packets.Psh);
            if ((index == 3 || last) && dropped.Add(f.Seq))
            {
                return true;
            }

            return false;
        };
        await server.GetStream().WriteAsync(data);
        connection.RunUntil(() => connection.Received.Length == data.Length);
        Assert.Equal(data, connection.Received.ToArray());
        Assert.True(dropped.Count >= 2);
        Assert.True(dataSegments > 20, "dropped segments were sent again");

        // The host's FIN is dropped once too; it must come again.
        server.Client.Shutdown(SocketShutdown.Send);
        connection.RunUntil(() => connection.FinReceived);
        Assert.True(finDropped);
    }

    [Fact]
    public void ConnectingToAClosedPortIsRefusedWithReset()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        using var guest = new FakeGuest(ToHost.Options);
        var answer = GuestTcp.SendSyn(guest, 40003, Packets.Gateway, (ushort)port);
        Assert.True(answer.Has(Packets.Rst));
        Assert.True(answer.Has(Packets.Ack));
        Assert.Equal(1000u, answer.AckNumber);
    }

    [Fact]
    public void StraySegmentsAreAnsweredWithReset()
    {
        using var guest = new FakeGuest(ToHost.Options);
        guest.Send(Packets.Tcp(Packets.Guest, 40004, Packets.Gateway, 9, 5000, 777, Packets.Ack, 1000, "x"u8));
        var reset = guest.WaitFor(f => f.IsTcp);
        Assert.True(reset.Has(Packets.Rst));
        Assert.Equal(777u, reset.Seq);
    }

    [Fact]
    public async Task GuestResetClosesTheHostConnection()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        ushort port = (ushort)((IPEndPoint)listener.LocalEndpoint).Port;
        using var guest = new FakeGuest(ToHost.Options);
        var connection = GuestTcp.Connect(guest, 40005, Packets.Gateway, port);
        using var server = await listener.AcceptTcpClientAsync();
        connection.SendRaw(Packets.Rst | Packets.Ack, connection.NextSequence, []);
        var buffer = new byte[16];
        using var timeout = new CancellationTokenSource(5000);
        try
        {
            int n = await server.GetStream().ReadAsync(buffer, timeout.Token);
            Assert.Equal(0, n);
        }
        catch (IOException)
        {
            // A reset from the host's view: also right.
        }

        Assert.Equal(0, guest.Network.Statistics.TcpConnections);
    }

    internal static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        new Random(seed).NextBytes(data);
        return data;
    }

    internal static async Task<int> ReadExactlyAsync(Stream stream, byte[] buffer, int count)
    {
        using var timeout = new CancellationTokenSource(10000);
        await stream.ReadExactlyAsync(buffer.AsMemory(0, count), timeout.Token);
        return count;
    }

    /// <summary>The host end of a two-way transfer: sends <paramref name="toGuest"/>, reads <paramref name="fromGuest"/> bytes, then closes its sending side.</summary>
    private static Task<byte[]> ExchangeAsync(TcpClient server, byte[] toGuest, int fromGuest) => Task.Run(async () =>
    {
        var stream = server.GetStream();
        var writing = stream.WriteAsync(toGuest).AsTask();
        var received = new byte[fromGuest];
        await ReadExactlyAsync(stream, received, received.Length);
        await writing;
        server.Client.Shutdown(SocketShutdown.Send);
        return received;
    });
}
