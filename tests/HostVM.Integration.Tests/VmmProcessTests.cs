using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>`hostvm vmm`: one VM per process behind the Firecracker-style API, driven as Firecracker's users drive it.</summary>
[Collection(GuestCollection.Name)]
public sealed class VmmProcessTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-vmm-").FullName;

    [Fact]
    public async Task FirecrackerGettingStartedSequenceBootsAGuestOverTheSocket()
    {
        string socket = Path.Combine(_dir, "api.sock");
        string exitFile = Path.Combine(_dir, "exit.json");
        string rootfs = Path.Combine(_dir, "rootfs.ext4");
        File.Copy(GuestArtifacts.Guest("disk.ext4"), rootfs);
        using var vmm = HostvmProcess.Start("vmm", "--api-sock", socket, "--id", "fc-guide", "--exit-file", exitFile);
        await vmm.WaitForSocketAsync(socket);

        // The requests of Firecracker's getting-started guide, by curl over the socket; only the paths differ.
        string script = """
            set -e
            put() {
                code=$(curl -s -o "$body" -w '%{http_code}' --unix-socket "$socket" -X PUT "http://localhost/$1" \
                    -H 'Accept: application/json' -H 'Content-Type: application/json' -d "$2")
                [ "$code" = 204 ] || { echo "PUT $1: $code $(cat "$body")"; exit 1; }
            }
            put boot-source "{\"kernel_image_path\": \"$kernel\", \"initrd_path\": \"$initrd\", \"boot_args\": \"console=ttyS0 reboot=k panic=1 pci=off\"}"
            put drives/rootfs "{\"drive_id\": \"rootfs\", \"path_on_host\": \"$rootfs\", \"is_root_device\": true, \"is_read_only\": false}"
            put network-interfaces/net1 '{"iface_id": "net1", "guest_mac": "06:00:AC:10:00:02", "host_dev_name": "user"}'
            put machine-config '{"vcpu_count": 2, "mem_size_mib": 256}'
            put actions '{"action_type": "InstanceStart"}'
            """;
        var environment = new Dictionary<string, string>
        {
            ["socket"] = socket,
            ["body"] = Path.Combine(_dir, "body"),
            ["kernel"] = GuestArtifacts.Guest("Image"),
            ["initrd"] = GuestArtifacts.Guest("initramfs.cpio.gz"),
            ["rootfs"] = rootfs,
        };
        var (code, output) = Bash(script, environment);
        Assert.True(code == 0, output);

        await vmm.WaitForOutputAsync("HOSTVM-GUEST-READY", TimeSpan.FromSeconds(90));
        using var api = UnixHttp(socket);
        Assert.Equal(HttpStatusCode.NoContent, (await api.PatchAsync("/vm", Json("""{"state": "Paused"}"""))).StatusCode);
        Assert.Equal("Paused", (await GetJson(api, "/")).GetProperty("state").GetString());
        await Task.Delay(300); // a hart finishing its block after the pause request
        ulong before = (await GetJson(api, "/hostvm/stats")).GetProperty("instructions_retired").GetUInt64();
        await Task.Delay(1000);
        ulong after = (await GetJson(api, "/hostvm/stats")).GetProperty("instructions_retired").GetUInt64();
        Assert.True(before > 0);
        Assert.Equal(before, after);

        var refused = await api.PutAsync("/machine-config", Json("""{"vcpu_count": 1, "mem_size_mib": 128}"""));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        Assert.Contains("after InstanceStart", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var limited = await api.PatchAsync("/drives/rootfs", Json("""{"drive_id": "rootfs", "rate_limiter": {"bandwidth": {"size": 10485760, "refill_time": 1000}}}"""));
        Assert.Equal(HttpStatusCode.NoContent, limited.StatusCode);
        var config = await GetJson(api, "/vm/config");
        Assert.Equal(10485760, config.GetProperty("drives")[0].GetProperty("rate_limiter").GetProperty("bandwidth").GetProperty("size").GetInt64());
        Assert.Equal("06:00:AC:10:00:02", config.GetProperty("network-interfaces")[0].GetProperty("guest_mac").GetString());

        Assert.Equal(HttpStatusCode.NoContent, (await api.PatchAsync("/vm", Json("""{"state": "Resumed"}"""))).StatusCode);
        int exitCode = await vmm.WaitForExitAsync(TimeSpan.FromSeconds(120));
        Assert.Equal(0, exitCode);
        Assert.Contains("HOSTVM-WORKLOAD-OK", vmm.Output, StringComparison.Ordinal);
        Assert.Contains("HOSTVM-CPUS: 2", vmm.Output, StringComparison.Ordinal);
        using var exit = JsonDocument.Parse(File.ReadAllText(exitFile));
        Assert.Equal("poweroff", exit.RootElement.GetProperty("reason").GetString());
        Assert.False(File.Exists(socket), "the API socket is removed when the VMM exits");
    }

    [Fact]
    public async Task ConfigFileBootsWithoutTheApi()
    {
        string config = Path.Combine(_dir, "vm.json");
        File.WriteAllText(config, $$"""
            {
              "boot-source": {"kernel_image_path": "{{GuestArtifacts.Guest("Image")}}", "initrd_path": "{{GuestArtifacts.Guest("initramfs.cpio.gz")}}", "boot_args": "console=ttyS0"},
              "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
              "drives": [],
              "network-interfaces": []
            }
            """);
        using var vmm = HostvmProcess.Start("vmm", "--no-api", "--config-file", config);
        Assert.Equal(0, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(120)));
        Assert.Contains("HOSTVM-WORKLOAD-OK", vmm.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("""{"machine-config": {"vcpu_count": 1, "mem_size_mib": 128}}""", "boot-source")]
    [InlineData("""{"boot-source": {"kernel_image_path": "/nonexistent"}}""", "no such file")]
    [InlineData("""{"boot-source": {}, "extra": 1}""", "Unknown field 'extra'")]
    [InlineData("""not json""", "not valid JSON")]
    public async Task BadConfigFileIsAOneLineErrorWithExitCode2(string content, string mentions)
    {
        string config = Path.Combine(_dir, "bad.json");
        File.WriteAllText(config, content);
        using var vmm = HostvmProcess.Start("vmm", "--no-api", "--config-file", config);
        Assert.Equal(2, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        string line = Assert.Single(vmm.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("hostvm vmm: --config-file", line, StringComparison.Ordinal);
        Assert.Contains(mentions, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnExistingSocketPathIsRefused()
    {
        string socket = Path.Combine(_dir, "taken.sock");
        File.WriteAllText(socket, "not a socket");
        using var vmm = HostvmProcess.Start("vmm", "--api-sock", socket);
        Assert.Equal(2, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains("exists", vmm.Errors, StringComparison.Ordinal);
        Assert.Equal("not a socket", File.ReadAllText(socket));
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonElement> GetJson(HttpClient api, string path)
    {
        using var doc = JsonDocument.Parse(await api.GetStringAsync(path));
        return doc.RootElement.Clone();
    }

    internal static HttpClient UnixHttp(string socketPath) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, token) =>
        {
            var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), token);
                return new NetworkStream(s, ownsSocket: true);
            }
            catch
            {
                s.Dispose();
                throw;
            }
        },
    })
    {
        BaseAddress = new Uri("http://localhost"),
    };

    private static (int Code, string Output) Bash(string script, Dictionary<string, string> environment)
    {
        var info = new ProcessStartInfo("bash", ["-c", script]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var (key, value) in environment)
        {
            info.Environment[key] = value;
        }

        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(TimeSpan.FromSeconds(60)))
        {
            p.Kill(entireProcessTree: true);
            return (-1, "timed out");
        }

        return (p.ExitCode, stdout.Result + stderr.Result);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
