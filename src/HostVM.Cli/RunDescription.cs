using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Storage;
using HostVM.Vmm;
using HostVM.Vmm.Api;

namespace HostVM.Cli;

/// <summary>
/// Turns `hostvm run`'s flags into the VM description the VMM's API builds from (<see cref="FullVmConfiguration"/>), so
/// that both go through <see cref="MachineBuilder"/>. Checks what the flags say here, with the flags' names in the
/// messages; opens nothing (the builder opens the files and backends).
/// </summary>
public static class RunDescription
{
    public const string DriveKeys = "file, format, readonly, id, " + RateLimitParser.Keys;

    /// <exception cref="DeviceOptionException">A flag is malformed; the message names it.</exception>
    public static FullVmConfiguration From(RunOptions options, long memoryMib)
    {
        ArgumentNullException.ThrowIfNull(options);
        foreach (var (path, option) in new[] { (options.Kernel, "--kernel"), (options.Initrd, "--initrd"), (options.Firmware, "--firmware") })
        {
            if (path is not null && !File.Exists(path))
            {
                throw new DeviceOptionException(Directory.Exists(path) ? $"{option} {path}: is a directory, not a file." : $"{option} {path}: no such file.");
            }
        }

        return new FullVmConfiguration
        {
            BootSource = new BootSource
            {
                KernelImagePath = options.Kernel is null ? null : Path.GetFullPath(options.Kernel),
                InitrdPath = options.Initrd is null ? null : Path.GetFullPath(options.Initrd),
                FirmwarePath = options.Firmware is null ? null : Path.GetFullPath(options.Firmware),
                BootArgs = options.Append ?? "console=ttyS0",
            },
            MachineConfig = new MachineConfig
            {
                VcpuCount = options.Cpus,
                MemSizeMib = memoryMib,
                CpuCapPercent = options.CpuCap,
                VirtioTransport = options.LegacyVirtio ? "legacy" : "modern",
            },
            Drives = [.. options.Drives.Select(Drive)],
            NetworkInterfaces = [.. options.Nets.Select((text, i) => Nic(text, i))],
            Balloon = options.Balloon ? new Balloon { AmountMib = 0, DeflateOnOom = true, StatsPollingIntervalS = 0 } : null,
            Entropy = options.Rng ? new EntropyDevice() : null,
            PowerButton = options.PowerButton,
        };
    }

    /// <summary>--drive file=PATH|NBD-URI[,format=raw|qcow2][,readonly=on][,id=ID][,bw=SIZE/TIME][,ops=N/TIME][,bw-burst=..][,ops-burst=..]</summary>
    private static Drive Drive(string text)
    {
        var list = KeyValueList.Parse("--drive", text);
        if (list.Kind is not null)
        {
            throw new DeviceOptionException($"--drive {text}: write file=PATH (e.g. --drive file=disk.img).");
        }

        string file = list.Get("file") ?? throw new DeviceOptionException($"--drive {text}: file=PATH is missing.");
        bool readOnly = list.GetSwitch("readonly", false);
        string? id = list.Get("id");
        string? format = list.Get("format");
        RateLimitSettings limits = RateLimitParser.Parse(list);
        list.RejectUnknown(DriveKeys);
        if (id is { Length: > 20 } || (id is not null && !id.All(c => c is >= ' ' and <= '~')))
        {
            throw new DeviceOptionException($"--drive {text}: id must be at most 20 printable ASCII characters (the guest reads it as the disk serial).");
        }

        if (format is not null && !DiskImage.Formats.Contains(format))
        {
            throw new DeviceOptionException($"--drive {text}: format must be {string.Join(" or ", DiskImage.Formats)} (or absent: the file's header decides).");
        }

        return new Drive
        {
            DriveId = id, // the serial; none: the file's name
            PathOnHost = DiskImage.IsRemote(file) ? file : Path.GetFullPath(file),
            IsReadOnly = readOnly,
            Format = format,
            RateLimiter = RateLimits.ToApi(limits),
        };
    }

    /// <summary>--net user[,hostfwd=..]… | switch=NAME | tap=IFNAME, each with [,mac=..] and rate limits.</summary>
    private static NetworkInterface Nic(string text, int index)
    {
        var list = KeyValueList.Parse("--net", text);
        string? macText = list.Get("mac");
        var rx = Merge(RateLimitParser.Parse(list), RateLimitParser.Parse(list, "rx-"));
        var tx = Merge(RateLimitParser.Parse(list), RateLimitParser.Parse(list, "tx-"));
        MacAddress? mac;
        try
        {
            mac = macText is null ? null : MacAddress.Parse(macText);
        }
        catch (FormatException e)
        {
            throw new DeviceOptionException($"--net {text}: {e.Message}");
        }

        if (mac is { IsMulticast: true })
        {
            throw new DeviceOptionException($"--net {text}: mac={macText} is a multicast address; a NIC needs a unicast one (first byte even).");
        }

        return new NetworkInterface
        {
            IfaceId = $"net{index}",
            HostDevName = NetworkBackends.Spec(list).ToString(),
            GuestMac = mac?.ToString(),
            RxRateLimiter = RateLimits.ToApi(rx),
            TxRateLimiter = RateLimits.ToApi(tx),
        };
    }

    private static RateLimitSettings Merge(RateLimitSettings both, RateLimitSettings one) =>
        new(one.Bandwidth ?? both.Bandwidth, one.Operations ?? both.Operations);
}
