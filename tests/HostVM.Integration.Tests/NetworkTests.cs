using System.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using HostVM.Machine;
using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Networking.Switch;
using HostVM.Networking.UserNet;

namespace HostVM.Integration.Tests;

/// <summary>virtio-net with real Linux guests: user-mode networking (DHCP, HTTP out, hostfwd in), a switch between two VMs, a NIC limit.</summary>
[Collection(GuestCollection.Name)]
public sealed class NetworkTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-net-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    private static string HashIn(string output) =>
        System.Text.RegularExpressions.Regex.Match(output, "\\b[0-9a-f]{64}\\b") is { Success: true } m ? m.Value : throw new InvalidOperationException("no sha256 in: " + output);

    /// <summary>Kestrel on a free port of the host's 127.0.0.1, serving <paramref name="content"/> at <paramref name="path"/>.</summary>
    private static async Task<WebApplication> ServeAsync(string path, byte[] content)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var web = builder.Build();
        web.MapGet(path, () => Results.Bytes(content, "application/octet-stream"));
        await web.StartAsync();
        return web;
    }

    /// <summary>A guest whose one NIC (with <paramref name="mac"/>) is a port of switch <paramref name="switchName"/>.</summary>
    private MachineConfiguration OnSwitch(string switchName, string mac) => GuestSession.Configuration() with
    {
        VirtioDevices = [new VirtioNet(SwitchPort.Open(switchName, _dir), MacAddress.Parse(mac))],
    };

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task UserNetworkingGivesALeaseReachesTheHostAndForwardsIntoTheGuest()
    {
        // A real HTTP server (Kestrel) on the host's loopback with a file the guest fetches.
        byte[] file = RandomNumberGenerator.GetBytes(300 * 1024);
        await using var web = await ServeAsync("/file", file);
        int httpPort = new Uri(web.Urls.First()).Port;

        // host-loopback=on: the gateway is the host's 127.0.0.1, as `hostvm run --net user,host-loopback=on` asks.
        var user = new UserNetwork(new UserNetworkOptions { HostForwards = [HostForward.Parse("tcp:127.0.0.1:0-:80")], Egress = EgressPolicy.UserMode(hostLoopback: true) });
        int forwarded = user.BoundForwardPorts[0];
        var config = GuestSession.Configuration() with
        {
            VirtioDevices = [new VirtioNet(user, MacAddress.Parse("52:54:00:12:34:56"))],
        };
        using var guest = GuestSession.Start(config);
        string lease = guest.Check("udhcpc -i eth0 -q -n 2>&1");
        Assert.Contains("lease of 10.0.2.15 obtained", lease);
        Assert.Contains("inet 10.0.2.15/24", guest.Check("ip addr show eth0"));
        Assert.Contains("default via 10.0.2.2", guest.Check("ip route"));
        Assert.Contains("link/ether 52:54:00:12:34:56", guest.Check("ip link show eth0"));

        string fetched = guest.Check($"wget -q -O - http://10.0.2.2:{httpPort}/file | sha256sum", TimeSpan.FromSeconds(120));
        Assert.Equal(Sha256(file), HashIn(fetched));

        // Without host-loopback (the default) the same guest cannot reach the host: the NAT refuses
        // the connection as a closed port would, and counts it.
        user.Egress = EgressPolicy.UserMode();
        var (status, refused) = guest.Run($"wget -q -O - -T 10 http://10.0.2.2:{httpPort}/file", TimeSpan.FromSeconds(60));
        Assert.True(status != 0 && refused.Contains("refused", StringComparison.OrdinalIgnoreCase), refused);
        Assert.True(user.Statistics.EgressRefused > 0);
        user.Egress = EgressPolicy.UserMode(hostLoopback: true);

        guest.Check("mkdir -p /www && echo served-by-the-guest > /www/index.html && httpd -p 80 -h /www");
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        string page = await client.GetStringAsync(new Uri($"http://127.0.0.1:{forwarded}/index.html"));
        Assert.Equal("served-by-the-guest\n", page);
        guest.PowerOff();
    }

    [Fact]
    public void TwoVmsOnASwitchPingEachOtherAndCopyAFile()
    {
        string name = $"test-{Guid.NewGuid():N}"[..20];
        var a = OnSwitch(name, "52:54:00:00:00:01");
        var b = OnSwitch(name, "52:54:00:00:00:02");
        using var first = GuestSession.Start(a);
        using var second = GuestSession.Start(b);
        first.Check("ip addr add 10.0.3.1/24 dev eth0 && ip link set eth0 up");
        second.Check("ip addr add 10.0.3.2/24 dev eth0 && ip link set eth0 up");
        Assert.Contains("3 packets received", second.Check("ping -c 3 -W 5 10.0.3.1"));
        Assert.Contains("3 packets received", first.Check("ping -c 3 -W 5 10.0.3.2"));

        // first listens, second sends 512 KiB of random data; both hash what they have.
        first.Check("(nc -l -p 5000 > /tmp/received) > /dev/null 2>&1 & sleep 1");
        string sent = HashIn(second.Check("head -c 524288 /dev/urandom > /tmp/data && sha256sum /tmp/data && nc 10.0.3.1 5000 < /tmp/data", TimeSpan.FromSeconds(120)));
        string received = HashIn(first.Check("for i in $(seq 100); do [ \"$(wc -c < /tmp/received)\" -ge 524288 ] && break; sleep 0.2; done; sha256sum /tmp/received", TimeSpan.FromSeconds(60)));
        Assert.Equal(sent, received);
        first.PowerOff();
        second.PowerOff();
    }

    [Fact]
    public async Task TwoVmsOnASwitchShareOneNatUplink()
    {
        // A real HTTP server (Kestrel) on the host's loopback, reached by both guests through one NAT.
        byte[] file = RandomNumberGenerator.GetBytes(64 * 1024);
        await using var web = await ServeAsync("/page", file);
        int httpPort = new Uri(web.Urls.First()).Port;

        string name = $"nat-{Guid.NewGuid():N}"[..20];
        var nat = new UserNetwork(new UserNetworkOptions { Egress = EgressPolicy.UserMode(hostLoopback: true) });
        using var uplink = SwitchUplink.Open(name, nat, _dir);
        var a = OnSwitch(name, "52:54:00:00:01:01");
        var b = OnSwitch(name, "52:54:00:00:01:02");
        using var first = GuestSession.Start(a);
        using var second = GuestSession.Start(b);
        Assert.Contains("lease of 10.0.2.15 obtained", first.Check("udhcpc -i eth0 -q -n 2>&1"));
        Assert.Contains("lease of 10.0.2.16 obtained", second.Check("udhcpc -i eth0 -q -n 2>&1"));
        Assert.Contains("default via 10.0.2.2", second.Check("ip route"));

        // Guest to guest goes straight through the switch; each reaches the host through the shared NAT.
        Assert.Contains("3 packets received", first.Check("ping -c 3 -W 5 10.0.2.16"));
        Assert.Contains("3 packets received", second.Check("ping -c 3 -W 5 10.0.2.15"));
        string hash = Sha256(file);
        Assert.Equal(hash, HashIn(first.Check($"wget -q -O - http://10.0.2.2:{httpPort}/page | sha256sum", TimeSpan.FromSeconds(120))));
        Assert.Equal(hash, HashIn(second.Check($"wget -q -O - http://10.0.2.2:{httpPort}/page | sha256sum", TimeSpan.FromSeconds(120))));

        Assert.Equal(2, nat.Statistics.DhcpLeases);
        Assert.True(uplink.Statistics.BytesToSwitch > 2 * file.Length, uplink.Statistics.ToString());
        first.PowerOff();
        second.PowerOff();
    }

    [Fact]
    public async Task NicTransmitLimitHolds()
    {
        // The guest sends to a host listener over user networking; its NIC may send 256 KiB per 500 ms
        // = 0.5 MiB/s. The bucket holds several 64 KiB TSO frames, so the short gaps in which the
        // guest's TCP has nothing queued (TCP small queues wait for transmit completions) are made up.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        long received = 0;
        var sink = Task.Run(() =>
        {
            using var c = listener.AcceptTcpClient();
            using var s = c.GetStream();
            var buffer = new byte[65536];
            int n;
            while ((n = s.Read(buffer)) > 0)
            {
                Interlocked.Add(ref received, n);
            }
        });
        var limit = new RateLimitSettings(new TokenBucketSettings(256 << 10, TimeSpan.FromMilliseconds(500)), null);
        var nic = new VirtioNet(new UserNetwork(new UserNetworkOptions { Egress = EgressPolicy.UserMode(hostLoopback: true) }), MacAddress.Parse("52:54:00:12:34:57"), transmitLimits: limit);
        var config = GuestSession.Configuration() with { VirtioDevices = [nic] };
        using var guest = GuestSession.Start(config);
        guest.Check("udhcpc -i eth0 -q -n >/dev/null 2>&1");
        // Sample the NIC's sent bytes while the guest sends 4 MiB; the rate is the slope between 10% and
        // 90% of the transfer, so connection set-up and tear-down do not count.
        long sentBefore = nic.Statistics.SentBytes;
        var samples = new List<(double Seconds, long Bytes)>();
        var watch = Stopwatch.StartNew();
        using var stop = new CancellationTokenSource();
        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                lock (samples)
                {
                    samples.Add((watch.Elapsed.TotalSeconds, nic.Statistics.SentBytes - sentBefore));
                }

                await Task.Delay(20);
            }
        });
        guest.Check($"dd if=/dev/zero bs=64k count=64 2>/dev/null | nc 10.0.2.2 {port}", TimeSpan.FromSeconds(120));
        await sink.WaitAsync(TimeSpan.FromSeconds(60));
        await stop.CancelAsync();
        await sampler;
        Assert.Equal(4L << 20, Interlocked.Read(ref received));
        long total = samples[^1].Bytes;
        var from = samples.First(x => x.Bytes >= total / 10);
        var to = samples.First(x => x.Bytes >= total * 9 / 10);
        double mibPerSecond = (to.Bytes - from.Bytes) / (double)(1 << 20) / (to.Seconds - from.Seconds);
        Assert.InRange(mibPerSecond, 0.45, 0.55);
        guest.PowerOff();
    }
}
