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
