using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using HostVM.Networking.UserNet;

namespace HostVM.Networking.Tests.UserNet;

public class UdpNatTests
{
    [Fact]
    public async Task UdpToTheGatewayReachesAHostSocketAndTheReplyComesBack()
    {
        using var echo = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        ushort port = (ushort)((IPEndPoint)echo.Client.LocalEndPoint!).Port;
        using var guest = new FakeGuest(ToHost.Options);

        guest.Send(Packets.Udp(Packets.Guest, 5555, Packets.Gateway, port, "ping over udp"u8));
        using var timeout = new CancellationTokenSource(5000);
        var request = await echo.ReceiveAsync(timeout.Token);
        Assert.Equal("ping over udp", Encoding.ASCII.GetString(request.Buffer));
        await echo.SendAsync("pong"u8.ToArray(), request.RemoteEndPoint, timeout.Token);

        var reply = guest.WaitFor(f => f.IsUdp);
        Assert.Equal(Packets.Gateway, reply.IpSource);
        Assert.Equal(port, reply.SourcePort);
        Assert.Equal(Packets.Guest, reply.IpDestination);
        Assert.Equal(5555, reply.DestinationPort);
        Assert.Equal("pong", Encoding.ASCII.GetString(reply.Data));
        Assert.Equal(1, guest.Network.Statistics.UdpFlows);
    }

    [Fact]
    public async Task IdleFlowsExpire()
    {
        using var sink = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        ushort port = (ushort)((IPEndPoint)sink.Client.LocalEndPoint!).Port;
        using var guest = new FakeGuest(new UserNetworkOptions { Egress = ToHost.Policy, UdpIdleTimeout = TimeSpan.FromMilliseconds(50) });
        guest.Send(Packets.Udp(Packets.Guest, 5556, Packets.Gateway, port, "x"u8));
        Assert.Equal(1, guest.Network.Statistics.UdpFlows);
        var deadline = Environment.TickCount64 + 5000;
        while (guest.Network.Statistics.UdpFlows != 0 && Environment.TickCount64 < deadline)
        {
            await Task.Delay(20);
        }

        Assert.Equal(0, guest.Network.Statistics.UdpFlows);
    }

    [Fact]
    public async Task DnsQueriesAreForwardedToTheConfiguredServer()
    {
        using var server = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var options = new UserNetworkOptions { Egress = ToHost.Policy, DnsServer = (IPEndPoint)server.Client.LocalEndPoint! };
        using var guest = new FakeGuest(options);
        var query = Query(0x4242, "example.test");

        guest.Send(Packets.Udp(Packets.Guest, 33333, Packets.Dns, 53, query));
        using var timeout = new CancellationTokenSource(5000);
        var received = await server.ReceiveAsync(timeout.Token);
        Assert.Equal(query, received.Buffer);
        var answer = (byte[])query.Clone();
        answer[2] |= 0x80;
        await server.SendAsync(answer, received.RemoteEndPoint, timeout.Token);

        var reply = guest.WaitFor(f => f.IsUdp);
        Assert.Equal(Packets.Dns, reply.IpSource);
        Assert.Equal(53, reply.SourcePort);
        Assert.Equal(answer, reply.Data);
    }

    [Fact]
    public void WithoutANameServerTheHostResolverAnswersAQueries()
    {
        var options = new UserNetworkOptions { Egress = ToHost.Policy, ResolvConfPath = "/nonexistent/resolv.conf" };
        using var guest = new FakeGuest(options);
        guest.Send(Packets.Udp(Packets.Guest, 33334, Packets.Dns, 53, Query(0x1111, "localhost")));
        var reply = guest.WaitFor(f => f.IsUdp);
        var data = reply.Data;
        Assert.Equal(0x1111, BinaryPrimitives.ReadUInt16BigEndian(data));
        Assert.True((data[2] & 0x80) != 0, "QR set");
        Assert.Equal(0, data[3] & 0xf);
        int answers = BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(6));
        Assert.True(answers >= 1);
        int first = Query(0x1111, "localhost").Length;
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(first + 2)));
        Assert.Equal(0x7f00_0001u, BinaryPrimitives.ReadUInt32BigEndian(data.AsSpan(first + 12)));
    }

    private static byte[] Query(ushort id, string name)
    {
        var bytes = new List<byte>();
        bytes.AddRange([(byte)(id >> 8), (byte)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
        foreach (var label in name.Split('.'))
        {
            bytes.Add((byte)label.Length);
            bytes.AddRange(Encoding.ASCII.GetBytes(label));
        }

        bytes.AddRange([0, 0, 1, 0, 1]);
        return [.. bytes];
    }
}
