using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// The `hostvm` client against a real `hostvm serve`: import the guest image, create and start a VM, see it
/// running, talk to its console, stop and delete it; and the exit codes for a missing VM (3), a conflict (4)
/// and a daemon that is not there (5).
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class DaemonCliTests(DaemonFixture fixture) : IClassFixture<DaemonFixture>
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(2);

    /// <summary>The environment of a user whose HOSTVM_HOST points at the test daemon, pinning its certificate (and who has no cli.json).</summary>
    private Dictionary<string, string> Environment(string? host = null) => new()
    {
        ["HOSTVM_HOST"] = host ?? fixture.Url,
        ["HOSTVM_FINGERPRINT"] = fixture.Daemon.Fingerprint,
        ["HOSTVM_TOKEN"] = fixture.Daemon.Token!,
        ["XDG_CONFIG_HOME"] = fixture.ConfigRoot,
    };

    private (int Code, string Stdout, string Stderr) Hostvm(params string[] args) => HostvmWith(Environment(), args);

    private static (int Code, string Stdout, string Stderr) HostvmWith(Dictionary<string, string> environment, params string[] args)
    {
        using var p = HostvmProcess.Start(environment, args);
        int code = p.WaitForExitAsync(CommandTimeout).GetAwaiter().GetResult();
        return (code, p.Output, p.Errors);
    }

    private (string Stdout, string Stderr) Ok(params string[] args)
    {
        var (code, stdout, stderr) = Hostvm(args);
        Assert.True(code == 0, $"hostvm {string.Join(' ', args)} exited {code}\nstdout:\n{stdout}\nstderr:\n{stderr}\ndaemon:\n{fixture.Daemon.Process.Errors}");
        return (stdout, stderr);
    }

    private static void AssertFails(int expected, (int Code, string Stdout, string Stderr) run, string mentions)
    {
        Assert.True(run.Code == expected, $"exit {run.Code}, expected {expected}\nstderr:\n{run.Stderr}");
        Assert.StartsWith("hostvm: ", run.Stderr);
        Assert.Contains(mentions, run.Stderr);
        Assert.DoesNotContain("   at ", run.Stderr); // no stack trace
    }

    private JsonElement Json(params string[] args) => JsonDocument.Parse(Ok([.. args, "--output", "json"]).Stdout).RootElement;

    [Fact]
    public async Task ImportCreateStartConsoleStopDelete()
    {
        string image = $"guest-{Guid.NewGuid():N}"[..14];
        string vm = $"e2e-{Guid.NewGuid():N}"[..12];
        try
        {
            var imported = Ok("image", "import", image,
                "--kernel", GuestArtifacts.Guest("Image"), "--initrd", GuestArtifacts.Guest("initramfs.cpio.gz"), "--disk", GuestArtifacts.Guest("disk.ext4"),
                "--append", "console=ttyS0 hostvm.mode=shell quiet");
            Assert.Contains($"Imported image {image}", imported.Stdout);
            var listed = Json("image", "list").EnumerateArray().Single(i => i.GetProperty("name").GetString() == image);
            Assert.Equal(File.ReadAllBytes(GuestArtifacts.Guest("Image")).Length, listed.GetProperty("kernel_bytes").GetInt64());
            Assert.Equal(File.ReadAllBytes(GuestArtifacts.Guest("disk.ext4")).Length, listed.GetProperty("disk_bytes").GetInt64());

            Assert.Contains($"Created VM {vm} (stopped)", Ok("vm", "create", vm, "--image", image, "--memory", "128M", "--disk-bw", "20M/s").Stdout);
            Assert.Contains($"{vm} is running.", Ok("vm", "start", vm).Stdout);
            var running = Json("vm", "list").EnumerateArray().Single(v => v.GetProperty("name").GetString() == vm);
            Assert.Equal("running", running.GetProperty("state").GetString());
            Assert.Equal(20L << 20, running.GetProperty("disk_limits").GetProperty("bandwidth_bytes_per_s").GetInt64());
            Assert.Contains(Ok("vm", "list").Stdout.Split('\n'), line => line.Contains(vm) && line.Contains("running"));

            AssertFails(4, Hostvm("vm", "start", vm), vm); // already running: 409

            // The console: the guest's output (from the replayed tail if it is already up), a command typed
            // through stdin and its answer, then Ctrl-] to detach; the VM runs on.
            using (var console = HostvmProcess.StartWithInput(Environment(), "vm", "console", vm))
            {
                await console.WaitForOutputAsync("HOSTVM-GUEST-READY", TimeSpan.FromMinutes(3));
                await console.WaitForOutputAsync("HOSTVM-SHELL-READY", TimeSpan.FromMinutes(1));
                string nonce = Guid.NewGuid().ToString("N")[..8];
                console.WriteInput(Encoding.ASCII.GetBytes($"echo \"DONE-$?-{nonce}\"\n"));
                await console.WaitForOutputAsync($"DONE-0-{nonce}", TimeSpan.FromMinutes(1));

                // Alongside the writer: a second writer is refused and pointed at --watch; a watcher sees the
                // writer's commands run, and what it types itself is not sent.
                AssertFails(4, Hostvm("vm", "console", vm), "--watch");
                using (var watcher = HostvmProcess.StartWithInput(Environment(), "vm", "console", vm, "--watch", "--replay", "0"))
                {
                    for (var deadline = DateTime.UtcNow.AddSeconds(30); !watcher.Errors.Contains("read-only", StringComparison.Ordinal); await Task.Delay(50))
                    {
                        Assert.True(DateTime.UtcNow < deadline, $"the watcher did not attach: {watcher.Errors}");
                    }

                    watcher.WriteInput(Encoding.ASCII.GetBytes("echo WATCHER-$((6*7))\n"));
                    console.WriteInput(Encoding.ASCII.GetBytes($"echo \"SEEN-$((6*6))-{nonce}\"\n"));
                    await watcher.WaitForOutputAsync($"SEEN-36-{nonce}", TimeSpan.FromMinutes(1));
                    watcher.WriteInput([0x1d]);
                    Assert.Equal(0, await watcher.WaitForExitAsync(TimeSpan.FromSeconds(30)));
                    Assert.DoesNotContain("WATCHER-42", watcher.Output, StringComparison.Ordinal);
                    Assert.DoesNotContain("WATCHER-42", console.Output, StringComparison.Ordinal);
                }

                console.WriteInput([0x1d]);
                Assert.Equal(0, await console.WaitForExitAsync(TimeSpan.FromSeconds(30)));
                Assert.Contains("Ctrl-] detaches", console.Errors);
                Assert.Contains("hostvm: detached.", console.Errors);
            }

            Assert.Equal("running", Json("vm", "show", vm).GetProperty("state").GetString());
            Assert.Contains($"{vm} is stopped.", Ok("vm", "stop", vm, "--timeout", "10").Stdout);
            Assert.Equal("stopped", Json("vm", "show", vm).GetProperty("state").GetString());
            AssertFails(4, Hostvm("vm", "console", vm), "is stopped");

            Assert.Contains($"Deleted VM {vm} and its disk.", Ok("vm", "delete", vm, "--purge").Stdout);
            AssertFails(3, Hostvm("vm", "show", vm), vm);
        }
        finally
        {
            Hostvm("vm", "delete", vm, "--force", "--purge");
            Hostvm("image", "delete", image);
        }
    }

    [Theory]
    [InlineData("vm", "show")]
    [InlineData("vm", "start")]
    [InlineData("vm", "stop")]
    [InlineData("vm", "console")]
    [InlineData("vm", "delete")]
    [InlineData("image", "delete")]
    [InlineData("network", "delete")]
    public void AMissingThingIsExitCode3(string noun, string verb)
    {
        AssertFails(3, Hostvm(noun, verb, "no-such-thing"), "no-such-thing");
    }

    [Fact]
    public void ATakenNameIsExitCode4AndABadNameExitCode1()
    {
        string network = $"net-{Guid.NewGuid():N}"[..12];
        try
        {
            Assert.Contains($"Created network {network} with NAT.", Ok("network", "create", network, "--nat").Stdout);
            AssertFails(4, Hostvm("network", "create", network), network);
            AssertFails(1, Hostvm("network", "create", "Not_A_Name"), "Not_A_Name");
            var listed = Json("network", "list").EnumerateArray().Single(n => n.GetProperty("name").GetString() == network);
            Assert.True(listed.GetProperty("nat").GetBoolean());
            Assert.Contains($"Deleted network {network}.", Ok("network", "delete", network).Stdout);
        }
        finally
        {
            Hostvm("network", "delete", network);
        }
    }

    [Fact]
    public void ForwardsAreAddedListedAndRemovedAndASeedTakesAKeyFile()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string network = $"n-{id}", image = $"img-{id}", vm = $"v-{id}";
        string keyFile = Path.Combine(Path.GetTempPath(), $"hostvm-key-{id}.pub");
        try
        {
            Ok("network", "create", network, "--nat");
            Ok("image", "import", image, "--kernel", GuestArtifacts.Guest("Image"));
            // A key file as ssh-keygen writes it: the key line, here after a comment and a blank line.
            string key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGx0ZXN0LWtleS1ieXRlcy10aGlydHktdHdvLWxvbmch me@host";
            File.WriteAllText(keyFile, $"# mine\n\n{key}\n");
            var created = Json("vm", "create", vm, "--image", image, "--network", network, "--ssh-key", keyFile, "--hostname", "www");
            Assert.Equal("www", created.GetProperty("cloud_init").GetProperty("hostname").GetString());

            var added = Ok("network", "forward", "add", network, "0", $"{vm}:22").Stdout;
            Assert.Contains($"to {vm}:22.", added);
            var forward = Json("network", "forward", "list", network).EnumerateArray().Single();
            int port = forward.GetProperty("host_port").GetInt32();
            Assert.Equal("127.0.0.1", forward.GetProperty("address").GetString());
            Assert.Contains($"127.0.0.1:{port}", Ok("network", "forward", "list", network).Stdout);

            AssertFails(2, Hostvm("network", "forward", "add", network, "127.0.0.1:http", $"{vm}:22"), "[ADDRESS:]PORT");
            AssertFails(4, Hostvm("network", "forward", "add", network, port.ToString(System.Globalization.CultureInfo.InvariantCulture), $"{vm}:22"), "already forwards");
            AssertFails(2, Hostvm("network", "forward", "add", network, "0", "no-port"), "VM:PORT");
            AssertFails(3, Hostvm("network", "forward", "add", network, "0", "nobody:22"), "nobody");
            Assert.Contains("Removed the tcp forward", Ok("network", "forward", "remove", network, $"127.0.0.1:{port}").Stdout);
            Assert.Equal(0, Json("network", "forward", "list", network).GetArrayLength());
            AssertFails(3, Hostvm("network", "forward", "remove", network, port.ToString(System.Globalization.CultureInfo.InvariantCulture)), "forward");
        }
        finally
        {
            Hostvm("vm", "delete", vm, "--purge");
            Hostvm("image", "delete", image);
            Hostvm("network", "delete", network);
            File.Delete(keyFile);
        }
    }

    [Fact]
    public void CreatingFromAMissingImageIsRefused()
    {
        var run = Hostvm("vm", "create", $"x-{Guid.NewGuid():N}"[..10], "--image", "no-such-image");
        Assert.InRange(run.Code, 1, 4);
        Assert.Contains("no-such-image", run.Stderr);
    }

    [Fact]
    public void HostInfoAndEvents()
    {
        var host = Json("host", "info");
        Assert.True(host.GetProperty("capacity").GetProperty("vcpus").GetInt32() > 0);
        Assert.Contains("allocated", Ok("host", "info").Stdout);
        Assert.Contains(Json("events", "--limit", "50").EnumerateArray(), e => e.GetProperty("type").GetString() == "daemon");
    }

    [Fact]
    public void TheDaemonsSocketIsFoundWithoutAnAddress()
    {
        // Where the CLI looks first, $XDG_RUNTIME_DIR/hostvm/hostvm.sock, made to lead to the test daemon's socket.
        string runtime = Directory.CreateTempSubdirectory("hostvm-xdg-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(runtime, "hostvm"));
            File.CreateSymbolicLink(Path.Combine(runtime, "hostvm", "hostvm.sock"), fixture.Socket);
            var environment = Environment(host: string.Empty);
            environment["XDG_RUNTIME_DIR"] = runtime;
            var (code, stdout, stderr) = HostvmWith(environment, "host", "info", "-o", "json");
            Assert.True(code == 0, stderr);
            Assert.Equal(fixture.Daemon.DataDir, JsonDocument.Parse(stdout).RootElement.GetProperty("data_dir").GetString());
        }
        finally
        {
            Directory.Delete(runtime, recursive: true);
        }

        var (listCode, list, listErrors) = HostvmWith(Environment(host: "unix:" + fixture.Socket), "vm", "list", "-o", "json");
        Assert.True(listCode == 0, listErrors);
        Assert.Equal(JsonValueKind.Array, JsonDocument.Parse(list).RootElement.ValueKind);
    }

    [Fact]
    public void AProjectsQuotaStopsTheVmTooManyAndTheAuditLogShowsBoth()
    {
        string id = Guid.NewGuid().ToString("N")[..8];
        string project = $"p-{id}", image = $"img-{id}", first = $"a-{id}", second = $"b-{id}";
        try
        {
            Assert.Contains($"Created project {project}.", Ok("project", "create", project, "--max-vms", "1", "--max-vcpus", "4", "--description", "cli test").Stdout);
            Assert.Contains($"Imported image {image}", Ok("image", "import", image, "--kernel", GuestArtifacts.Guest("Image"), "--project", project).Stdout);
            Assert.Contains(Ok("image", "list").Stdout.Split('\n'), l => l.Contains(image) && l.Contains(project));

            Assert.Contains($"Created VM {first} (stopped)", Ok("vm", "create", first, "--image", image, "--project", project).Stdout);
            var refused = Hostvm("vm", "create", second, "--image", image, "--project", project);
            AssertFails(4, refused, $"VM '{second}' does not fit in project '{project}'");
            Assert.Contains("max_vms: ", refused.Stderr);
            Assert.Contains(Ok("vm", "list").Stdout.Split('\n'), l => l.Contains(first) && l.Contains(project));
            Assert.Contains(Ok("project", "list").Stdout.Split('\n'), l => l.Contains(project) && l.Contains("1/1") && l.Contains("1/4"));

            // Raising one quota keeps the other (the daemon replaces quotas whole; the CLI sends both).
            var quotas = JsonDocument.Parse(Ok("project", "set", project, "--max-vms", "2", "-o", "json").Stdout).RootElement.GetProperty("quotas");
            Assert.Equal(2, quotas.GetProperty("max_vms").GetInt32());
            Assert.Equal(4, quotas.GetProperty("max_vcpus").GetInt32());
            Assert.Contains($"Created VM {second}", Ok("vm", "create", second, "--image", image, "--project", project).Stdout);
            Assert.Equal(2, Json("project", "show", project).GetProperty("usage").GetProperty("vms").GetInt32());
            AssertFails(4, Hostvm("project", "delete", project), "delete or revoke them first");

            string admin = fixture.Daemon.Token!.Split('_')[1]; // the commands send the first-start admin token (HOSTVM_TOKEN)
            var created = Json("audit", "--vm", first).EnumerateArray().ToList();
            Assert.Contains(created, e => e.GetProperty("action").GetString() == "vm.create" && e.GetProperty("status").GetInt32() == 201
                && e.GetProperty("who").GetString() == admin && e.GetProperty("project").GetString() == project);
            var tries = Json("audit", "--vm", second, "--since", "1h").EnumerateArray().Select(e => e.GetProperty("status").GetInt32()).ToList();
            Assert.Equal([201, 409], tries); // newest first: the create after the quota was raised, then the refusal
            Assert.Contains(Ok("audit", "--object", $"vm/{first}", "--who", admin).Stdout.Split('\n'), l => l.Contains("vm.create") && l.Contains(admin) && l.Contains("127.0.0.1") && l.Contains("201"));
            Assert.Empty(Json("audit", "--vm", first, "--who", "local").EnumerateArray());
            Assert.Empty(Json("audit", "--vm", first, "--until", "2000-01-01T00:00:00Z").EnumerateArray());
        }
        finally
        {
            Hostvm("vm", "delete", first, "--purge");
            Hostvm("vm", "delete", second, "--purge");
            Hostvm("image", "delete", image);
            Hostvm("project", "delete", project);
        }

        AssertFails(3, Hostvm("project", "show", project), project);
    }

    [Fact]
    public async Task ATokenLetsACallerInOverTcpUntilItIsRevoked()
    {
        string description = $"cli test {Guid.NewGuid():N}"[..20];
        var (stdout, _) = Ok("token", "create", "--role", "viewer", "--expires", "1h", "--description", description);
        Assert.Contains("will not be shown again", stdout);
        string token = Assert.Single(stdout.Split('\n'), l => l.Trim().StartsWith("hvt_", StringComparison.Ordinal)).Trim();
        string id = token.Split('_')[1];
        Assert.Contains($"Created token {id}: viewer of every project", stdout);

        using var client = fixture.Daemon.ClientWith(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/v1/vms")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PostAsync("/v1/networks", new StringContent("{\"name\": \"nope\"}", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Contains(Ok("token", "list").Stdout.Split('\n'), l => l.Contains(id) && l.Contains("viewer") && l.Contains("active") && l.Contains(description));

        Assert.Contains($"Revoked token {id}.", Ok("token", "revoke", id).Stdout);
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("/v1/vms")).StatusCode);
        var listed = Json("token", "list").EnumerateArray().Single(t => t.GetProperty("id").GetString() == id);
        Assert.NotEqual(JsonValueKind.Null, listed.GetProperty("revoked_at").ValueKind);
        Assert.Contains(Ok("token", "list").Stdout.Split('\n'), l => l.Contains(id) && l.Contains("revoked"));
        Assert.Contains(Json("audit", "--object", $"token/{id}").EnumerateArray(), e => e.GetProperty("action").GetString() == "token.revoke");
    }

    [Fact]
    public void WithoutATokenTheTcpPortIsExitCode1AndSaysHowToPassOne()
    {
        var environment = Environment();
        environment.Remove("HOSTVM_TOKEN");
        var run = HostvmWith(environment, "vm", "list");
        AssertFails(1, run, "needs a token");
        Assert.Contains("HOSTVM_TOKEN", run.Stderr);
    }

    [Fact]
    public void ADeadDaemonAddressIsExitCode5()
    {
        // A port that was free a moment ago: nothing listens there now.
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        int port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        var run = HostvmWith(Environment(), "--host", $"http://127.0.0.1:{port}", "vm", "list");
        AssertFails(5, run, $"cannot reach the daemon at http://127.0.0.1:{port} (connection refused");
        Assert.Contains("hostvm serve", run.Stderr);

        string socket = Path.Combine(Path.GetTempPath(), $"no-daemon-{Guid.NewGuid():N}.sock");
        AssertFails(5, HostvmWith(Environment(host: "unix:" + socket), "image", "list"), socket);
    }
}
