using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Storage;

namespace HostVM.Cli;

/// <summary>
/// Turns `hostvm run`'s device options into virtio devices with their backends, in slot order: drives,
/// NICs, then rng, balloon, console and power button. Opens every file and socket here (the Machine opens none); on an
/// error, whatever was opened is closed again.
/// </summary>
public sealed class DeviceBuilder : IDisposable
{
    public const string DriveKeys = "file, format, readonly, id, " + RateLimitParser.Keys;

    private readonly List<VirtioDevice> _devices = [];
    private bool _handedOver;

    public IReadOnlyList<VirtioDevice> Devices => _devices;

    public VirtioConsole? Console { get; private set; }

    /// <summary>Lines for the user: host ports of user-network forwards ("tcp:127.0.0.1:8080-:80 → 8080"), device caveats.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>--drive file=PATH|NBD-URI[,format=raw|qcow2][,readonly=on][,id=ID][,bw=SIZE/TIME][,ops=N/TIME][,bw-burst=..][,ops-burst=..]</summary>
    public void AddDrive(string text)
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

        IBlockDevice backend;
        try
        {
            backend = DiskImage.Open(file, readOnly, format, id);
        }
        catch (BlockDeviceException e)
        {
            throw new DeviceOptionException($"--drive {text}: {e.Message}");
        }

        try
        {
            Add(new VirtioBlock(backend, limits));
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }

    /// <summary>--net user[,hostfwd=..]… | switch=NAME | tap=IFNAME, each with [,mac=..] and rate limits.</summary>
    public void AddNic(string text)
    {
        var list = KeyValueList.Parse("--net", text);
        string? macText = list.Get("mac");
        var rx = Merge(RateLimitParser.Parse(list), RateLimitParser.Parse(list, "rx-"));
        var tx = Merge(RateLimitParser.Parse(list), RateLimitParser.Parse(list, "tx-"));
        MacAddress mac;
        try
        {
            mac = macText is null ? MacAddress.Random() : MacAddress.Parse(macText);
        }
        catch (FormatException e)
        {
            throw new DeviceOptionException($"--net {text}: {e.Message}");
        }

        if (mac.IsMulticast)
        {
            throw new DeviceOptionException($"--net {text}: mac={macText} is a multicast address; a NIC needs a unicast one (first byte even).");
        }

        IPacketPort port = NetworkBackends.Open(list, Notes);
        try
        {
            // A switch other VMs share carries this guest's frames only with its own MAC (GuestFrameFilter).
            Add(new VirtioNet(port, mac, rx, tx, filterGuestFrames: port is HostVM.Networking.Switch.SwitchPort));
        }
        catch
        {
            port.Dispose();
            throw;
        }
    }

    public void AddRng() => Add(new VirtioRng());

    public void AddBalloon() => Add(new VirtioBalloon(deflateOnOom: true));

    public void AddConsole(Action<ReadOnlyMemory<byte>> output)
    {
        var console = new VirtioConsole(output);
        Add(console);
        Console = console;
    }

    public void AddPowerButton() => Add(new VirtioInput());

    /// <summary>The machine owns the devices from now on.</summary>
    public IReadOnlyList<VirtioDevice> HandOver()
    {
        _handedOver = true;
        return _devices;
    }

    private void Add(VirtioDevice device)
    {
        if (_devices.Count == Machine.MachineConfiguration.MaxVirtioDevices)
        {
            device.Dispose();
            throw new DeviceOptionException($"too many devices: the board has {Machine.MachineConfiguration.MaxVirtioDevices} virtio-mmio slots.");
        }

        _devices.Add(device);
    }

    private static RateLimitSettings Merge(RateLimitSettings both, RateLimitSettings one) =>
        new(one.Bandwidth ?? both.Bandwidth, one.Operations ?? both.Operations);

    public void Dispose()
    {
        if (!_handedOver)
        {
            foreach (var d in _devices)
            {
                d.Dispose(); // and with it its backend
            }
        }
    }
}
