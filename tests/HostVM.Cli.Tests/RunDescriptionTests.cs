using System.Text.Json;
using HostVM.Vmm.Api;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm run`'s flags become the VMM's own VM description (what its API and config files hold), checked here.</summary>
public sealed class RunDescriptionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-run-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void FlagsBecomeTheDescriptionTheVmmBuildsFrom()
    {
        string kernel = Touch("Image");
        var description = RunDescription.From(new RunOptions
        {
            Kernel = kernel,
            Append = "console=ttyS0 quiet",
            Cpus = 2,
            CpuCap = 50,
            Drives = ["file=disk.img,id=serial1,readonly=on,format=raw,bw=1M/1s", "file=nbd://127.0.0.1:10809/x"],
            Nets = ["user,hostfwd=tcp:127.0.0.1:2222-:22,host-loopback=on,mac=52:54:00:12:34:56,rx-bw=2M/1s", "switch=lan"],
            Rng = true,
            Balloon = true,
            LegacyVirtio = true,
            PowerButton = true,
        }, 512);

        string json = JsonSerializer.Serialize(description, VmmJsonContext.Default.FullVmConfiguration);
        var back = JsonSerializer.Deserialize(json, VmmJsonContext.Default.FullVmConfiguration)!; // a description survives the wire
        Assert.Equal(kernel, back.BootSource!.KernelImagePath);
        Assert.Equal("console=ttyS0 quiet", back.BootSource.BootArgs);
        Assert.Equal(new MachineConfig { VcpuCount = 2, MemSizeMib = 512, CpuCapPercent = 50, VirtioTransport = "legacy" }, back.MachineConfig);
        var disk = back.Drives![0];
        Assert.Equal(("serial1", Path.GetFullPath("disk.img"), true, "raw"), (disk.DriveId, disk.PathOnHost, disk.IsReadOnly, disk.Format));
        Assert.Equal(1L << 20, disk.RateLimiter!.Bandwidth!.Size);
        Assert.Equal("nbd://127.0.0.1:10809/x", back.Drives[1].PathOnHost);
        Assert.Null(back.Drives[1].DriveId); // its serial: the file's name, as before
        Assert.Equal(("net0", "user:hostfwd=tcp:127.0.0.1:2222-:22,host-loopback=on", "52:54:00:12:34:56"),
            (back.NetworkInterfaces![0].IfaceId, back.NetworkInterfaces[0].HostDevName, back.NetworkInterfaces[0].GuestMac));
        Assert.Equal(2L << 20, back.NetworkInterfaces[0].RxRateLimiter!.Bandwidth!.Size);
        Assert.Null(back.NetworkInterfaces[0].TxRateLimiter);
        Assert.Equal(("net1", "switch:lan"), (back.NetworkInterfaces[1].IfaceId, back.NetworkInterfaces[1].HostDevName));
        Assert.NotNull(back.Entropy);
        Assert.True(back.Balloon!.DeflateOnOom);
        Assert.True(back.PowerButton);
    }

    [Theory]
    [InlineData("--drive", "readonly=on", "file=PATH is missing")]
    [InlineData("--drive", "file=d.img,format=vmdk", "format must be raw or qcow2")]
    [InlineData("--drive", "file=d.img,id=a-serial-longer-than-twenty", "at most 20 printable ASCII")]
    [InlineData("--net", "user,mac=01:00:5e:00:00:01", "multicast")]
    [InlineData("--net", "user,hostfwd=tcp::x-:22", "hostfwd=tcp::x-:22")]
    [InlineData("--net", "switch=a/b", "--net switch=a/b")]
    [InlineData("--net", "tap=much-too-long-a-name", "not a TAP interface name")]
    [InlineData("--net", "tap=user", "tap=user is not an interface name")]
    [InlineData("--kernel", "nowhere", "--kernel nowhere: no such file.")]
    public void AMalformedFlagIsNamedInTheMessage(string flag, string value, string message)
    {
        var options = flag switch
        {
            "--drive" => new RunOptions { Drives = [value] },
            "--net" => new RunOptions { Nets = [value] },
            _ => new RunOptions { Kernel = Path.Combine(_dir, value) },
        };
        var e = Assert.Throws<DeviceOptionException>(() => RunDescription.From(options, 256));
        Assert.Contains(flag == "--kernel" ? message.Replace("nowhere", Path.Combine(_dir, "nowhere"), StringComparison.Ordinal) : message, e.Message, StringComparison.Ordinal);
    }

    private string Touch(string name)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, [0]);
        return path;
    }
}
