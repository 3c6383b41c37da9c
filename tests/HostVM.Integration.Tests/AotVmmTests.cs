using System.Net;
using System.Text;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// hostvm-vmm, the VMM compiled ahead of time (NativeAOT) for the daemon to run per VM: the same
/// program as `hostvm vmm` without a JIT, so what only shows up without one (reflection, code made at
/// run time, JSON that is not source-generated) shows up here as a failure.
/// </summary>
[Collection(GuestCollection.Name)]
public sealed class AotVmmTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-aot-").FullName;

    [Fact]
    public async Task AnswersItsApiAndBootsAGuestConfiguredThroughIt()
    {
        string socket = Path.Combine(_dir, "api.sock");
        string exitFile = Path.Combine(_dir, "exit.json");
        using var vmm = HostvmProcess.StartVmm("--api-sock", socket, "--id", "aot", "--exit-file", exitFile);
        await vmm.WaitForSocketAsync(socket);
        using var api = VmmProcessTests.UnixHttp(socket);

        using (var info = JsonDocument.Parse(await api.GetStringAsync("/")))
        {
            Assert.Equal("aot", info.RootElement.GetProperty("id").GetString());
            Assert.Equal("Not started", info.RootElement.GetProperty("state").GetString());
        }

        string bootSource = JsonSerializer.Serialize(new Dictionary<string, string>
        {
            ["kernel_image_path"] = GuestArtifacts.Guest("Image"),
            ["initrd_path"] = GuestArtifacts.Guest("initramfs.cpio.gz"),
            ["boot_args"] = "console=ttyS0",
        });
        Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/boot-source", Json(bootSource))).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/machine-config", Json("""{"vcpu_count": 2, "mem_size_mib": 128}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/entropy", Json("{}"))).StatusCode);

        // A refusal is source-generated JSON too: the field it names comes from the type's metadata.
        var refused = await api.PutAsync("/machine-config", Json("""{"vcpu_count": 1, "mem_size_mib": 128, "colour": "red"}"""));
        Assert.Equal(HttpStatusCode.BadRequest, refused.StatusCode);
        using (var fault = JsonDocument.Parse(await refused.Content.ReadAsStringAsync()))
        {
            Assert.Contains("Unknown field 'colour'", fault.RootElement.GetProperty("fault_message").GetString(), StringComparison.Ordinal);
        }

        Assert.Equal(HttpStatusCode.NoContent, (await api.PutAsync("/actions", Json("""{"action_type": "InstanceStart"}"""))).StatusCode);
        Assert.Equal(0, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(120)));
        Assert.Contains("HOSTVM-WORKLOAD-OK", vmm.Output, StringComparison.Ordinal);
        Assert.Contains("HOSTVM-CPUS: 2", vmm.Output, StringComparison.Ordinal);
        using var exit = JsonDocument.Parse(File.ReadAllText(exitFile));
        Assert.Equal("poweroff", exit.RootElement.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task TakesTheOptionsOfHostvmVmm()
    {
        using var help = HostvmProcess.StartVmm("--help");
        Assert.Equal(0, await help.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        foreach (var option in new[] { "--api-sock", "--id", "--config-file", "--no-api", "--console-sock", "--console-replay-bytes", "--serial-log", "--serial-log-max-bytes", "--exit-file", "--log-path", "--metrics-path", "--new-session" })
        {
            Assert.Contains(option, help.Output, StringComparison.Ordinal);
        }

        using var refused = HostvmProcess.StartVmm("--no-api");
        Assert.Equal(2, await refused.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("--no-api needs --config-file", refused.Errors, StringComparison.Ordinal);

        using var unknown = HostvmProcess.StartVmm("--api-sock", Path.Combine(_dir, "x.sock"), "--bogus");
        Assert.Equal(2, await unknown.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("hostvm-vmm: Unrecognized command or argument '--bogus'", unknown.Errors, StringComparison.Ordinal);
        Assert.Empty(unknown.Output);
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
