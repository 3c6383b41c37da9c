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
        Assert.StartsWith("hostvm-vmm: --no-api needs --config-file", refused.Errors, StringComparison.Ordinal);

        using var unknown = HostvmProcess.StartVmm("--api-sock", Path.Combine(_dir, "x.sock"), "--bogus");
        Assert.Equal(2, await unknown.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("hostvm-vmm: Unrecognized command or argument '--bogus'", unknown.Errors, StringComparison.Ordinal);
        Assert.Empty(unknown.Output);
    }

    [Fact]
    public async Task ARelativeApiSocketIsTheWorkingDirectorys()
    {
        using var vmm = HostvmProcess.StartVmmIn(_dir, "--api-sock", "relative.sock");
        string socket = Path.Combine(_dir, "relative.sock");
        await vmm.WaitForSocketAsync(socket);
        using var api = VmmProcessTests.UnixHttp(socket);
        using var info = JsonDocument.Parse(await api.GetStringAsync("/"));
        Assert.Equal("Not started", info.RootElement.GetProperty("state").GetString());
    }

    [Fact]
    public async Task AJailPlanIsRefusedOutsideNamespacesOfItsOwnAndForRoot()
    {
        string plan = Path.Combine(_dir, "plan.json");
        string root = await RootMountAsync();
        string ours = HostVM.Vmm.JailEntry.MountNamespace();
        Assert.Matches(@"^mnt:\[\d+\]$", ours);
        foreach (var (id, ns, says) in new[] { (0, "mnt:[1]", "a jail never runs as root"), (900_001, ours, "needs a mount namespace of its own"), (900_001, "", "needs a mount namespace of its own") })
        {
            await File.WriteAllTextAsync(plan, $$"""{"Root": "{{_dir}}", "Binds": [], "HostMountNamespace": "{{ns}}", "Id": {{id}}, "Group": 900000, "OpenFiles": 64, "Processes": 64, "FileSize": 1048576}""");
            using var vmm = HostvmProcess.StartVmm("--jail-plan", plan, "--api-sock", Path.Combine(_dir, $"jail-{id}.sock"));
            Assert.Equal(2, await vmm.WaitForExitAsync(TimeSpan.FromSeconds(30)));
            Assert.StartsWith("hostvm-vmm: jail: ", vmm.Errors, StringComparison.Ordinal);
            Assert.Contains(says, vmm.Errors, StringComparison.Ordinal);
            Assert.False(File.Exists(Path.Combine(_dir, $"jail-{id}.sock")), "it served its API");
        }

        await File.WriteAllTextAsync(plan, """{"Root": 1}""");
        using var bad = HostvmProcess.StartVmm("--jail-plan", plan, "--api-sock", Path.Combine(_dir, "bad.sock"));
        Assert.Equal(2, await bad.WaitForExitAsync(TimeSpan.FromSeconds(30)));
        Assert.StartsWith($"hostvm-vmm: --jail-plan {plan}: ", bad.Errors, StringComparison.Ordinal);

        // The host's "/" is as it was, its propagation included (run as root, the first step would have made it private).
        Assert.Equal(root, await RootMountAsync());
    }

    // In a chroot (fresh-machine.sh's root) "/" is no mount point and there is no such line: still nothing may change.
    private static async Task<string> RootMountAsync() =>
        string.Join('\n', (await File.ReadAllLinesAsync("/proc/self/mountinfo")).Where(l => l.Split(' ')[4] == "/"));

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
