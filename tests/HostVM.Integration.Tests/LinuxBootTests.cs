using HostVM.Machine;

namespace HostVM.Integration.Tests;

/// <summary>Boots the real Linux guest (guest/build.sh) to its ready marker and a clean poweroff.</summary>
[Collection(GuestCollection.Name)]
public sealed class LinuxBootTests
{
    private static readonly TimeSpan BootTimeout = TimeSpan.FromMinutes(4);

    private static MachineConfiguration Linux(int harts, bool openSbi, string initramfs = "initramfs.cpio.gz", string firmware = "fw_jump.bin") => new()
    {
        HartCount = harts,
        MemorySize = 256 * MachineConfiguration.MiB,
        Firmware = openSbi ? GuestRun.File(GuestArtifacts.Guest(firmware)) : null,
        Kernel = GuestRun.File(GuestArtifacts.Guest("Image")),
        Initrd = GuestRun.File(GuestArtifacts.Guest(initramfs)),
        KernelCommandLine = "console=ttyS0",
    };

    private static void AssertBootedAndPoweredOff(GuestRun run, int harts)
    {
        Assert.True(run.Exit is { Reason: MachineExitReason.PowerOff }, run.Describe());
        Assert.Contains("HOSTVM-GUEST-READY", run.Console);
        Assert.Contains($"HOSTVM-CPUS: {harts}\n", run.Console.Replace("\r", ""));
        string expectedMd5 = File.ReadAllText(Path.Combine(GuestArtifacts.RepositoryRoot, "guest", "workload-expected-md5.txt")).Trim();
        Assert.Contains($"HOSTVM-WORKLOAD-OK {expectedMd5}", run.Console);
        Assert.Contains("HOSTVM-POWEROFF", run.Console);
    }

    [Fact]
    public void BootsThroughOpenSbiFwJump()
    {
        var run = GuestRun.Boot(Linux(1, openSbi: true), BootTimeout);
        AssertBootedAndPoweredOff(run, 1);
        Assert.Contains("OpenSBI", run.Console);
    }

    [Fact]
    public void BootsThroughOpenSbiFwDynamic()
    {
        // fw_dynamic finds the kernel through the fw_dynamic_info block HostVM passes in a2.
        var run = GuestRun.Boot(Linux(2, openSbi: true, firmware: "fw_dynamic.bin"), BootTimeout);
        AssertBootedAndPoweredOff(run, 2);
        Assert.Contains("Domain0 Next Address      : 0x0000000080200000", run.Console);
    }

    [Fact]
    public void BootsThroughTheBuiltinSbi()
    {
        var run = GuestRun.Boot(Linux(1, openSbi: false), BootTimeout);
        AssertBootedAndPoweredOff(run, 1);
        Assert.DoesNotContain("OpenSBI", run.Console);
    }

    [Theory]
    [InlineData(2, true)]
    [InlineData(4, true)]
    [InlineData(4, false)]
    public void BootsWithSeveralHarts(int harts, bool openSbi)
    {
        var run = GuestRun.Boot(Linux(harts, openSbi), BootTimeout);
        AssertBootedAndPoweredOff(run, harts);
        for (int i = 0; i < harts; i++)
        {
            Assert.Contains($"processor\t: {i}", run.Console);
        }

        Assert.Contains("rv64imafdc", run.Console);
    }

    [Fact]
    public void CpuBenchmarkComputesTheExpectedChecksum()
    {
        var run = GuestRun.Boot(Linux(1, openSbi: true, "bench-initramfs.cpio.gz"), BootTimeout);
        Assert.True(run.Exit is { Reason: MachineExitReason.PowerOff }, run.Describe());
        string expected = File.ReadAllText(Path.Combine(GuestArtifacts.RepositoryRoot, "guest", "bench", "expected-checksum.txt")).Trim();
        Assert.Contains($"HOSTVM-BENCH checksum={expected}", run.Console);
    }
}
