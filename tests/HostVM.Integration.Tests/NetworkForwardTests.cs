using System.Net.Sockets;
using System.Text;

namespace HostVM.Integration.Tests;

/// <summary>A daemon NAT network's port forward into a real guest: the host connects to the forwarded port and gets the guest's answer.</summary>
[Collection(GuestCollection.Name)]
public sealed class NetworkForwardTests
{
    [Fact]
    public async Task AHostClientReachesAGuestsServerThroughAForwardUntilItIsRemoved()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        await daemon.ImportGuestAsync();
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan", nat = true })).Status);
        var vm = await daemon.CreateVmAsync(new { name = "web", image = "guest", memory_mib = 128, start = true, networks = new[] { new { network = "lan" } } });

        // Made before the guest has a lease: the forward waits for it (a connection now would be reset).
        var (added, forward) = await daemon.SendAsync(HttpMethod.Post, "/v1/networks/lan/forwards", new { vm = "web", guest_port = 8080 });
        Assert.True(added == 201, forward.ToString());
        int port = forward.GetProperty("host_port").GetInt32();
        Assert.Equal("127.0.0.1", forward.GetProperty("address").GetString());

        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));
        var (leased, lease) = await console.RunAsync("udhcpc -i eth0 -q -n 2>&1", 60);
        Assert.True(leased == 0, lease);
        var (served, output) = await console.RunAsync("mkdir -p /www && echo FROM-THE-GUEST > /www/index.html && httpd -p 8080 -h /www 2>&1", 30);
        Assert.True(served == 0, output);

        Assert.Contains("FROM-THE-GUEST", await FetchAsync(port), StringComparison.Ordinal);

        // Removed: the host port closes.
        Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, $"/v1/networks/lan/forwards/tcp/{port}")).Status);
        using var refused = new TcpClient();
        var error = await Assert.ThrowsAsync<SocketException>(() => refused.ConnectAsync("127.0.0.1", port));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    /// <summary>An HTTP/1.0 GET of / on 127.0.0.1:<paramref name="port"/>, read to the end.</summary>
    private static async Task<string> FetchAsync(int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", port);
        var stream = client.GetStream();
        await stream.WriteAsync("GET /index.html HTTP/1.0\r\n\r\n"u8.ToArray());
        using var reader = new StreamReader(stream, Encoding.ASCII);
        using var enough = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        return await reader.ReadToEndAsync(enough.Token);
    }
}
