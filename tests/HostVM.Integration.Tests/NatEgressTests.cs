namespace HostVM.Integration.Tests;

/// <summary>
/// What a guest on a daemon NAT network can reach (the security review's F2), with everything inside a
/// network namespace this test makes: the daemon (whose NAT makes the guest's connections), its VMM
/// and HTTP listeners on the namespace's 127.0.0.1, a link-local address (where a cloud's metadata
/// service would be) and a private one. Nothing can leave the machine even if the policy were wrong.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class NatEgressTests
{
    // Every listener answers "HELLO address:port".
    private const string Listeners = """
        import sys, threading, http.server
        class Hello(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = ("HELLO %s:%d\n" % self.server.server_address).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            def log_message(self, *args):
                pass
        for item in sys.argv[1:]:
            address, port = item.split(":")
            server = http.server.ThreadingHTTPServer((address, int(port)), Hello)
            threading.Thread(target=server.serve_forever, daemon=True).start()
        print("ready", flush=True)
        threading.Event().wait()
        """;

    [Fact]
    public async Task AGuestOnADaemonNatReachesNeitherTheHostNorWhatIsBehindItUnlessTheAdminAllowsIt()
    {
        Assert.SkipWhen(NetworkNamespace.WhyNot() is not null, NetworkNamespace.WhyNot() ?? string.Empty);
        using var ns = NetworkNamespace.Create("169.254.77.1/16", "10.77.0.1/16");
        using var listeners = ns.Start("python3", "-c", Listeners, "127.0.0.1:8080", "169.254.77.1:8080", "10.77.0.1:8080", "10.77.0.1:9090");
        Assert.Equal("ready", await listeners.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(30)));

        using var daemon = await DaemonUnderTest.StartInAsync(ns);
        await daemon.ImportGuestAsync();
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan", nat = true })).Status);
        var vm = await daemon.CreateVmAsync(new { name = "egress", image = "guest", memory_mib = 128, start = true, networks = new[] { new { network = "lan" } } });
        await daemon.WaitForSerialAsync(vm, "HOSTVM-SHELL-READY");
        using var console = ConsoleConnection.Open(daemon.ConsoleSocket(vm));
        var (status, lease) = await console.RunAsync("udhcpc -i eth0 -q -n 2>&1", 60);
        Assert.True(status == 0 && lease.Contains("lease of 10.0.2.15 obtained", StringComparison.Ordinal), lease);

        async Task<string> FetchAsync(string target)
        {
            var (_, output) = await console.RunAsync($"wget -q -O - -T 5 http://{target}/ 2>&1", 60);
            return output;
        }

        // The gateway (the host's loopback with host-loopback=on), link-local and private: all refused.
        foreach (string target in new[] { "10.0.2.2:8080", "169.254.77.1:8080", "10.77.0.1:8080", "10.77.0.1:9090" })
        {
            string output = await FetchAsync(target);
            Assert.DoesNotContain("HELLO", output, StringComparison.Ordinal);
            Assert.Contains("refused", output, StringComparison.OrdinalIgnoreCase);
        }

        // The host's admin allows one destination: that one answers, its neighbours stay refused.
        var (put, network) = await daemon.SendAsync(HttpMethod.Put, "/v1/networks/lan/egress", new { allow = new[] { "10.77.0.1:9090" } });
        Assert.True(put == 200, network.ToString());
        Assert.Equal("10.77.0.1:9090", network.GetProperty("egress_allow")[0].GetString());
        Assert.Contains("HELLO 10.77.0.1:9090", await FetchAsync("10.77.0.1:9090"), StringComparison.Ordinal);
        Assert.DoesNotContain("HELLO", await FetchAsync("10.77.0.1:8080"), StringComparison.Ordinal);
        Assert.DoesNotContain("HELLO", await FetchAsync("169.254.77.1:8080"), StringComparison.Ordinal);
        Assert.DoesNotContain("HELLO", await FetchAsync("10.0.2.2:8080"), StringComparison.Ordinal);

        // A bad rule is refused whole; the allowed destination stays as it was.
        var (bad, problem) = await daemon.SendAsync(HttpMethod.Put, "/v1/networks/lan/egress", new { allow = new[] { "10.77.0.1:9090", "example.com:80" } });
        Assert.Equal(400, bad);
        Assert.Contains("not an IPv4 destination", problem.GetProperty("detail").GetString(), StringComparison.Ordinal);
        Assert.Contains("HELLO 10.77.0.1:9090", await FetchAsync("10.77.0.1:9090"), StringComparison.Ordinal);

        // The rule outlives a daemon restart.
        await daemon.KillAndRestartAsync();
        Assert.Equal("10.77.0.1:9090", (await daemon.GetAsync("/v1/networks/lan")).GetProperty("egress_allow")[0].GetString());
    }
}
