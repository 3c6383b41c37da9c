using HostVM.Machine;
using HostVM.Machine.Boot;
using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Networking.UserNet;
using HostVM.Storage;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// The one place a VM's description (<see cref="FullVmConfiguration"/>: what the API assembled, what a config file holds,
/// what <c>hostvm run</c>'s flags say) becomes a <see cref="VirtualMachine"/>, with two ways out: <see cref="Boot"/> loads
/// the payload, <see cref="ForRestore"/> does not (saved RAM and state go in next). Both make the same board with the
/// same devices in the same virtio slots, which is what lets state saved from one be put into the other.
/// The description is taken as valid (the API's rules checked it); this opens what it names (drives, network backends,
/// boot files) and closes whatever it opened if anything fails.
/// </summary>
public static class MachineBuilder
{
    /// <summary>Builds the machine and loads its payload: ready to start.</summary>
    /// <exception cref="VmmFault">A file, backend or payload cannot be opened or used; the message says which.</exception>
    public static BuiltMachine Boot(FullVmConfiguration description, MachineWiring wiring) => Build(description, wiring, boot: true);

    /// <summary>Builds the same machine without loading anything, for saved state to be restored into.</summary>
    /// <exception cref="VmmFault">A file or backend cannot be opened; the message says which.</exception>
    public static BuiltMachine ForRestore(FullVmConfiguration description, MachineWiring wiring) => Build(description, wiring, boot: false);

    /// <summary>
    /// The devices in slot order: drives (a root device first), network interfaces, balloon, entropy, a virtio console when
    /// the wiring asks for one, and the power button.
    /// </summary>
    private static BuiltMachine Build(FullVmConfiguration description, MachineWiring wiring, bool boot)
    {
        ArgumentNullException.ThrowIfNull(description);
        ArgumentNullException.ThrowIfNull(wiring);
        var machine = description.MachineConfig ?? throw new VmmFault("The description has no machine-config.");
        var source = description.BootSource ?? throw new VmmFault("The description has no boot-source.");
        var devices = new List<VirtioDevice>();
        var drives = new Dictionary<string, VirtioBlock>();
        var nics = new Dictionary<string, VirtioNet>();
        var notes = new List<string>();
        VirtioBalloon? balloon = null;
        VirtioConsole? console = null;
        try
        {
            string? args = source.KernelImagePath is null ? null : source.BootArgs ?? VmmController.DefaultBootArgs;
            var ordered = (description.Drives ?? []).OrderByDescending(d => d.IsRootDevice == true).ToList();
            for (int i = 0; i < ordered.Count; i++)
            {
                var d = ordered[i];
                if (d.IsRootDevice == true && args is not null)
                {
                    args += (d.PartUuid is { } uuid ? $" root=PARTUUID={uuid}" : " root=/dev/vda") + (d.IsReadOnly == true ? " ro" : " rw");
                }

                var block = Made(OpenDrive(d), devices, wiring);
                drives[d.DriveId ?? $"drive{i}"] = block;
            }

            foreach (var n in description.NetworkInterfaces ?? [])
            {
                var spec = NetworkBackendSpec.Parse(n.HostDevName ?? throw new VmmFault($"network interface {n.IfaceId}: host_dev_name is missing."));
                var port = spec.Open();
                VirtioNet net;
                try
                {
                    // On a switch other guests share, this guest's frames must carry its own MAC (GuestFrameFilter).
                    net = new VirtioNet(port, n.GuestMac is { } m ? MacAddress.Parse(m) : MacAddress.Random(),
                        RateLimits.ToSettings(n.RxRateLimiter, "rx_rate_limiter"), RateLimits.ToSettings(n.TxRateLimiter, "tx_rate_limiter"),
                        filterGuestFrames: spec.Kind == NetworkBackendKind.Switch);
                }
                catch
                {
                    port.Dispose();
                    throw;
                }

                if (port is UserNetwork user)
                {
                    notes.AddRange(user.BoundForwards.Select(bound => $"user network: forwarding {bound}"));
                }

                nics[n.IfaceId ?? $"net{nics.Count}"] = Made(net, devices, wiring);
            }

            if (description.Balloon is { } b)
            {
                balloon = Made(new VirtioBalloon(b.DeflateOnOom ?? true), devices, wiring);
            }

            if (description.Entropy is not null)
            {
                Made(new VirtioRng(), devices, wiring);
            }

            if (wiring.VirtioConsoleOutput is { } output)
            {
                console = Made(new VirtioConsole(output), devices, wiring);
            }

            if (description.PowerButton == true || (description.PowerButton is null && devices.Count < MachineConfiguration.MaxVirtioDevices))
            {
                Made(new VirtioInput(), devices, wiring); // the power button SendCtrlAltDel presses
            }

            var configuration = new MachineConfiguration
            {
                MemorySize = (ulong)(machine.MemSizeMib ?? VmmController.DefaultMemoryMib) * MachineConfiguration.MiB,
                HartCount = machine.VcpuCount ?? 1,
                Kernel = boot && source.KernelImagePath is { } kernel ? BootFile.Read(kernel, "kernel_image_path") : null,
                Initrd = boot && source.InitrdPath is { } initrd ? BootFile.Read(initrd, "initrd_path") : null,
                Firmware = boot && source.FirmwarePath is { } firmware ? BootFile.Read(firmware, "firmware_path") : null,
                KernelCommandLine = args,
                VirtioDevices = devices,
                VirtioLegacy = machine.VirtioTransport == "legacy",
                CpuCapPercent = machine.CpuCapPercent,
            };
            var vm = boot ? VirtualMachine.Boot(configuration, wiring.Serial) : VirtualMachine.ForRestore(configuration, wiring.Serial);
            if (machine.TrackDirtyPages == true)
            {
                vm.DirtyPages.Enable(); // from the first instruction: a diff snapshot's base is then the whole RAM
            }

            return new BuiltMachine(vm, drives, nics, balloon, console, notes);
        }
        catch (Exception e) when (e is VmmFault or BootImageException or BlockDeviceException or OutOfMemoryException or FormatException or ArgumentException or PlatformNotSupportedException)
        {
            foreach (var d in devices)
            {
                d.Dispose(); // and with it its backend
            }

            throw e is VmmFault ? e : new VmmFault(e is OutOfMemoryException
                ? $"mem_size_mib {machine.MemSizeMib}: the host cannot allocate that much RAM."
                : e.Message);
        }
    }

    /// <summary>Adds a device in the next slot (refusing a ninth) and tells the wiring.</summary>
    private static T Made<T>(T device, List<VirtioDevice> devices, MachineWiring wiring)
        where T : VirtioDevice
    {
        if (devices.Count == MachineConfiguration.MaxVirtioDevices)
        {
            device.Dispose();
            throw new VmmFault($"too many devices: the board has {MachineConfiguration.MaxVirtioDevices} virtio-mmio slots.");
        }

        devices.Add(device);
        wiring.DeviceMade?.Invoke(device);
        return device;
    }

    /// <summary>The serial the guest reads for a drive: the first 20 characters of its <c>drive_id</c> (none: the file's name).</summary>
    internal static string? SerialOf(Drive d) => d.DriveId is not { } id ? null : id.Length <= VirtioBlock.IdLength ? id : id[..VirtioBlock.IdLength];

    /// <summary>A drive's disk, behind a switch.</summary>
    private static VirtioBlock OpenDrive(Drive d)
    {
        IBlockDevice backend;
        try
        {
            backend = DiskImage.Open(d.PathOnHost ?? throw new VmmFault($"drive {d.DriveId}: path_on_host is missing."), d.IsReadOnly == true, d.Format, SerialOf(d));
        }
        catch (BlockDeviceException e)
        {
            throw new VmmFault($"drive {d.DriveId ?? d.PathOnHost}: {e.Message}");
        }

        try
        {
            // Behind a switch, so that a block job can move the running drive from one layer of its chain to another.
            return new VirtioBlock(new SwitchableBlockDevice(backend), RateLimits.ToSettings(d.RateLimiter, "rate_limiter"));
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }
}
