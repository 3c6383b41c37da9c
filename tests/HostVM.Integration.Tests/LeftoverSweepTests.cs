namespace HostVM.Integration.Tests;

/// <summary>A daemon that died inside a create leaves directories; the next start sweeps them and keeps what it cannot place.</summary>
public sealed class LeftoverSweepTests
{
    [Fact]
    public async Task ARestartedDaemonRemovesHalfMadeVmsAndKeepsUnrecordedOnesAsOrphans()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string kernel = Path.Combine(daemon.DataDir, "import", "kernel");
        await File.WriteAllBytesAsync(kernel, new byte[4096]);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "img", kernel })).Status);
        var kept = await daemon.CreateVmAsync(new { name = "kept", image = "img" });
        string vms = Path.Combine(daemon.DataDir, "vms");
        string keptDir = Path.Combine(vms, kept.GetProperty("id").GetString()!);

        string halfMade = Path.Combine(vms, Guid.NewGuid().ToString("N") + ".creating");
        string unrecordedId = Guid.NewGuid().ToString("N");
        await daemon.KillAndRestartAsync(() =>
        {
            // As a kill -9 inside create leaves them: before the move, and after it but before the row.
            Directory.CreateDirectory(halfMade);
            File.WriteAllBytes(Path.Combine(halfMade, "disk.img"), new byte[512]);
            Directory.CreateDirectory(Path.Combine(vms, unrecordedId));
            File.WriteAllText(Path.Combine(vms, unrecordedId, "disk.img"), "something");
        });

        Assert.False(Directory.Exists(halfMade), "the half-made VM is gone");
        Assert.False(Directory.Exists(Path.Combine(vms, unrecordedId)));
        Assert.Equal("something", File.ReadAllText(Path.Combine(daemon.DataDir, "orphans", $"unrecorded-{unrecordedId}", "disk.img")));
        Assert.True(Directory.Exists(keptDir), "a recorded VM's directory stays");
        Assert.Equal("stopped", (await daemon.GetAsync("/v1/vms/kept")).GetProperty("state").GetString());
    }
}
