using System.Net;
using System.Net.Sockets;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;
using HostVM.Storage;
using HostVM.Vmm.Api;

namespace HostVM.Vmm.Tests;

/// <summary>
/// The one machine builder: a description becomes the same board with the same devices in the same slots whether it is
/// booted or built for a restore; only the boot loads the payload; a failure closes everything it opened.
/// </summary>
public sealed class MachineBuilderTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-builder-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ABootAndARestoreBuildTheSameBoardAndOnlyTheBootLoadsThePayload()
    {
        byte[] program = [.. Enumerable.Range(1, 4096).Select(i => (byte)i)];
        var description = Description(program, drives: 2, withExtras: true);
        Type[] expected = [typeof(VirtioBlock), typeof(VirtioBlock), typeof(VirtioNet), typeof(VirtioBalloon), typeof(VirtioRng), typeof(VirtioInput)];
        var loaded = new byte[program.Length];
        IReadOnlyList<HostVM.Machine.Boot.VirtioMmioSlot> slots;
        using (var booted = MachineBuilder.Boot(description, new MachineWiring(_ => { })).Machine)
        {
            Assert.Equal(expected, booted.VirtioTransports.Select(t => t.Device.GetType()));
            Assert.NotNull(booted.Payload);
            Assert.False(booted.DirtyPages.Enabled);
            booted.Ram.Read(GuestRam.DefaultBase, loaded);
            Assert.Equal(program, loaded);
            slots = booted.VirtioSlots;
        }

        // Built again (the drives' locks were let go with the first), as a restore in a new VMM would be.
        using var restored = MachineBuilder.ForRestore(description, new MachineWiring(_ => { })).Machine;
        Assert.Equal(expected, restored.VirtioTransports.Select(t => t.Device.GetType()));
        Assert.Equal(slots, restored.VirtioSlots);
        Assert.Equal(16UL << 20, restored.Ram.Size);
        Assert.Equal(2, restored.Harts.Count);
        Assert.Null(restored.Payload);
        restored.Ram.Read(GuestRam.DefaultBase, loaded);
        Assert.All(loaded, b => Assert.Equal(0, b));

        // track_dirty_pages turns the dirty-page log on before the first instruction.
        restored.Dispose();
        using var tracked = MachineBuilder.ForRestore(description with { MachineConfig = description.MachineConfig! with { TrackDirtyPages = true } }, new MachineWiring(_ => { })).Machine;
        Assert.True(tracked.DirtyPages.Enabled);
    }

    [Fact]
    public void TheRootDriveComesFirstAndNamesItselfOnTheKernelsCommandLine()
    {
        var image = new byte[8192];
        "RSC\x05"u8.CopyTo(image.AsSpan(56)); // a RISC-V Linux Image's magic; the rest zeroes
        string kernel = FileOf("Image", image);
        var description = Description([0x73, 0, 0x50, 0x10], drives: 2, withExtras: false) with
        {
            BootSource = new BootSource { KernelImagePath = kernel, BootArgs = "console=ttyS0" },
        };
        description = description with { Drives = [description.Drives![0], description.Drives[1] with { IsRootDevice = true, IsReadOnly = true }] };
        var built = MachineBuilder.Boot(description, new MachineWiring(_ => { }));
        using var vm = built.Machine;
        Assert.Equal(["d0", "d1"], built.Drives.Keys.Order());
        Assert.Same(built.Drives["d1"], vm.VirtioTransports[0].Device);
        Assert.Equal("console=ttyS0 root=/dev/vda ro", vm.Configuration.KernelCommandLine);
    }

    [Theory]
    [InlineData(null, 7, true)]
    [InlineData(null, 8, false)]
    [InlineData(false, 1, false)]
    [InlineData(true, 1, true)]
    public void ThePowerButtonTakesASlotWhenAskedOrWhenOneIsLeft(bool? powerButton, int drives, bool expected)
    {
        var description = Description([0x73, 0, 0x50, 0x10], drives, withExtras: false) with { PowerButton = powerButton };
        using var vm = MachineBuilder.Boot(description, new MachineWiring(_ => { })).Machine;
        Assert.Equal(expected, vm.Device<VirtioInput>() is not null);
    }

    [Fact]
    public void AMachineThatCannotBeBuiltLeavesNothingOpen()
    {
        // Seven drives and a NIC whose forward holds a host port: a power button asked for finds no slot left.
        int port = FreePort();
        var description = Description([0x73, 0, 0x50, 0x10], drives: 7, withExtras: false) with
        {
            NetworkInterfaces = [new NetworkInterface { IfaceId = "eth0", HostDevName = $"user:hostfwd=tcp:127.0.0.1:{port}-:22" }],
            PowerButton = true,
        };
        var e = Assert.Throws<VmmFault>(() => MachineBuilder.Boot(description, new MachineWiring(_ => { })));
        Assert.Contains("virtio-mmio slots", e.Message, StringComparison.Ordinal);

        using (var listener = new TcpListener(IPAddress.Loopback, port))
        {
            listener.Start(); // the forward's socket was closed
        }

        foreach (var drive in description.Drives!)
        {
            using var disk = DiskImage.Open(drive.PathOnHost!, readOnly: false); // its lock was let go
        }

        // A missing drive file: named in the message.
        var missing = description with { Drives = [new Drive { DriveId = "gone", PathOnHost = Path.Combine(_dir, "gone.img") }], NetworkInterfaces = [], PowerButton = null };
        Assert.Contains("drive gone:", Assert.Throws<VmmFault>(() => MachineBuilder.Boot(missing, new MachineWiring(_ => { }))).Message, StringComparison.Ordinal);
    }

    private FullVmConfiguration Description(byte[] firmware, int drives, bool withExtras) => new()
    {
        BootSource = new BootSource { FirmwarePath = FileOf("firmware.bin", firmware) },
        MachineConfig = new MachineConfig { VcpuCount = withExtras ? 2 : 1, MemSizeMib = 16 },
        Drives = [.. Enumerable.Range(0, drives).Select(i => new Drive { DriveId = $"d{i}", PathOnHost = FileOf($"d{i}.img", new byte[1 << 20]) })],
        NetworkInterfaces = withExtras ? [new NetworkInterface { IfaceId = "eth0", HostDevName = "user" }] : [],
        Balloon = withExtras ? new Balloon { AmountMib = 0, DeflateOnOom = true } : null,
        Entropy = withExtras ? new EntropyDevice() : null,
    };

    private string FileOf(string name, byte[] bytes)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
