using System.Diagnostics;
using System.Text.Json;
using HostVM.Host.Inventory;
using HostVM.Networking.Switch;
using HostVM.Vmm;
using HostVM.Vmm.Api;

namespace HostVM.Host.Supervision;

/// <summary>
/// Starts one VMM process for a VM: writes its configuration (the shape of GET /vm/config), and runs
/// <c>hostvm vmm --config-file … --api-sock … --console-sock … --serial-log … --new-session</c> with
/// stdin and stdout on /dev/null and stderr appended to vmm.log, so the VMM depends on nothing of the
/// daemon and keeps running if the daemon dies. The VMM writes the serial console to serial.log itself
/// (rotated at <see cref="HostSettings.SerialLogMaxBytes"/>), so output stays bounded and on disk while
/// no daemon runs, and it replays up to 1 MiB to a new console client, so a daemon that adopts it
/// later still has the latest output.
/// </summary>
public sealed class VmmLauncher(HostSettings settings)
{
    public const string DiskId = "disk";

    /// <summary>The drive id of the cloud-init seed: the last disk, after the volumes.</summary>
    public const string SeedId = "seed";

    /// <summary>
    /// The command that runs a VMM, its options to follow: <c>vmm</c> after the setting (a command that runs hostvm);
    /// else the small NativeAOT <c>hostvm-vmm</c> next to us (it starts in milliseconds and costs a fraction of the
    /// memory: the host's density); else <c>hostvm vmm</c> through the apphost next to us, or dotnet with our dll.
    /// </summary>
    public IReadOnlyList<string> HostvmCommand { get; } = settings.VmmCommand is { } configured ? [.. configured, "vmm"] : DefaultCommand();

    /// <summary>The jail VMMs run in, or null where they run unjailed (<see cref="VmmJail.Enabled"/>).</summary>
    public VmmJail? Jail { get; } = VmmJail.Enabled(settings) ? new VmmJail(settings) : null;

    private static string[] DefaultCommand()
    {
        string native = Path.Combine(AppContext.BaseDirectory, "hostvm-vmm");
        if (File.Exists(native))
        {
            return [native];
        }

        string apphost = Path.Combine(AppContext.BaseDirectory, "hostvm");
        return File.Exists(apphost) ? [apphost, "vmm"] : ["dotnet", Path.Combine(AppContext.BaseDirectory, "hostvm.dll"), "vmm"];
    }

    public static string InterfaceId(int index) => $"eth{index}";

    /// <summary>The drive id of the VM's <paramref name="index"/>th attached volume.</summary>
    public static string VolumeId(int index) => $"vol{index}";

    /// <summary>
    /// The VMM's configuration for <paramref name="vm"/>, whose files are at <paramref name="paths"/> on the host and at
    /// <paramref name="inside"/> where the VMM sees them (the same, unless it is jailed).
    /// </summary>
    public FullVmConfiguration Configuration(VmRecord vm, VmPaths paths, VmPaths inside, IReadOnlyList<Storage.VolumeFile>? volumes = null)
    {
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentNullException.ThrowIfNull(inside);
        return new FullVmConfiguration
        {
            // The VM's own files only (VmPaths): never looked up by image name.
            BootSource = new BootSource
            {
                KernelImagePath = inside.Kernel,
                InitrdPath = File.Exists(paths.Initrd) ? inside.Initrd : null,
                FirmwarePath = File.Exists(paths.Firmware) ? inside.Firmware : null,
                BootArgs = vm.BootArgs,
            },
            MachineConfig = new MachineConfig { VcpuCount = vm.Vcpus, MemSizeMib = vm.MemoryMib, CpuCapPercent = vm.CpuCapPercent },
            // Volumes are where the host has them, jailed or not (the jail binds them there): a qcow2 volume names its base by a path
            // relative to itself or absolute, which must resolve the same inside.
            Drives = [
                .. vm.DiskMib > 0
                    ? [new Drive { DriveId = DiskId, PathOnHost = inside.DiskOf(vm), Format = vm.DiskFormat ?? "raw", IsRootDevice = false, IsReadOnly = false, RateLimiter = Limiter(vm.DiskLimits) }]
                    : Array.Empty<Drive>(),
                .. (volumes ?? []).Select((v, i) => new Drive { DriveId = VolumeId(i), PathOnHost = v.Path, Format = v.Format, IsRootDevice = false, IsReadOnly = false, RateLimiter = Limiter(vm.DiskLimits) }),
                .. vm.CloudInit is not null
                    ? [new Drive { DriveId = SeedId, PathOnHost = inside.Seed, Format = "raw", IsRootDevice = false, IsReadOnly = true }]
                    : Array.Empty<Drive>(),
            ],
            NetworkInterfaces = [.. vm.Networks.Select((n, i) => new NetworkInterface
            {
                IfaceId = InterfaceId(i),
                HostDevName = $"switch:{n.Network}",
                GuestMac = n.Mac,
                RxRateLimiter = Limiter(vm.NicLimits),
                TxRateLimiter = Limiter(vm.NicLimits),
            })],
            Balloon = vm.Balloon ? new Balloon { AmountMib = vm.BalloonMib, DeflateOnOom = true, StatsPollingIntervalS = 5 } : null,
            Entropy = new EntropyDevice(),
        };
    }

    /// <summary>A plain per-second rate as one-second token buckets.</summary>
    public static Vmm.Api.RateLimiter? Limiter(RateLimit limit)
    {
        ArgumentNullException.ThrowIfNull(limit);
        if (limit.BandwidthBytesPerS is null && limit.OpsPerS is null)
        {
            return null;
        }

        return new Vmm.Api.RateLimiter
        {
            Bandwidth = limit.BandwidthBytesPerS is { } b ? new TokenBucket { Size = b, RefillTime = 1000 } : null,
            Ops = limit.OpsPerS is { } o ? new TokenBucket { Size = o, RefillTime = 1000 } : null,
        };
    }

    /// <summary>
    /// Starts the VMM, jailed when <paramref name="vm"/> has a <see cref="VmRecord.JailId"/>; returns the process the
    /// daemon started (keep it until it exits: .NET reaps the children it tracks, and its exit code is the VMM's) and
    /// the VMM's own pid and start time (the same process unless jailed). The caller waits for its API socket.
    /// </summary>
    public (Process Process, int Pid, long StartTicks) Launch(VmRecord vm, VmPaths paths, IReadOnlyList<Storage.VolumeFile> volumes)
    {
        ArgumentNullException.ThrowIfNull(volumes);
        ArgumentNullException.ThrowIfNull(vm);
        ArgumentNullException.ThrowIfNull(paths);
        OwnerOnly.CreateDirectory(paths.Directory);
        OwnerOnly.CreateDirectory(paths.Output);
        OwnerOnly.CreateDirectory(paths.RuntimeDirectory); // the VM's sockets: only the daemon's user (or the VM's jail) may reach them
        foreach (var stale in new[] { paths.ApiSocket, paths.ConsoleSocket, paths.ExitFile })
        {
            File.Delete(stale); // left by the previous run of this VM, whose process is gone
        }

        var inside = vm.JailId is null ? paths : VmmJail.Inside;
        File.WriteAllText(paths.VmmConfig, JsonSerializer.Serialize(Configuration(vm, paths, inside, volumes), VmmJsonContext.Default.FullVmConfiguration));
        var arguments = new List<string>
        {
            "--id", vm.Name, "--config-file", inside.VmmConfig, "--api-sock", inside.ApiSocket,
            "--console-sock", inside.ConsoleSocket, "--console-replay-bytes", Invariant(SerialSocket.MaxReplayBytes),
            "--serial-log", inside.SerialLog, "--serial-log-max-bytes", Invariant(settings.SerialLogMaxBytes), "--exit-file", inside.ExitFile, "--new-session",
        };

        var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        IEnumerable<string> command;
        string join = string.Empty;
        if (vm.JailId is { } id && Jail is { } jail)
        {
            arguments.Add("--seccomp");
            var cgroup = VmCgroup.Create(jail.CgroupScope, vm.Id, VmCgroup.QuotaMicroseconds(vm.Vcpus, vm.CpuCapPercent), vm.CpuWeight,
                (vm.MemoryMib + settings.JailMemoryOverheadMib) << 20, out _);
            join = VmmJail.CgroupJoin(cgroup);
            // The largest file it writes: a qcow2 disk grows past its size by its tables (1/6000 of it) and what crashes leaked.
            long largest = volumes.Where(v => v.Socket is null).Select(v => new FileInfo(v.Path).Length).Append(vm.DiskMib << 20).Append(settings.SerialLogMaxBytes).Max();
            long fileSize = largest + (largest / 64) + (16 << 20);
            command = jail.Prepare(vm, paths, id, HostvmCommand, arguments, fileSize, Nice(vm.CpuWeight), volumes);

            // Nothing of the daemon's environment goes in: the jail's VMM gets what it needs, by name.
            info.Environment.Clear();
            info.Environment["PATH"] = "/usr/bin:/usr/sbin:/bin:/sbin";
            info.Environment["HOME"] = VmmJail.Inside.Output; // the one directory it may write
            info.Environment["USER"] = $"vm-{id}";
            info.Environment["DOTNET_EnableDiagnostics"] = "0"; // no diagnostics socket: nowhere to put one, no one to use it

            // The JIT's W^X double mapping sizes a memfd past the jail's file-size limit (and costs start-up time).
            info.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        }
        else
        {
            command = Nice(vm.CpuWeight) is { } nice and not 0
                ? new[] { "nice", "-n", nice.ToString(System.Globalization.CultureInfo.InvariantCulture) }.Concat(HostvmCommand).Concat(arguments)
                : HostvmCommand.Concat(arguments);
        }

        // One shell: it joins the VM's cgroup (jailed), then becomes the command with the VMM's standard streams.
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(join + "exec \"$@\" </dev/null >/dev/null 2>>\"$HOSTVM_VMM_LOG\"");
        info.ArgumentList.Add("hostvm-vmm");
        info.Environment[SwitchLocation.RuntimeDirectoryVariable] = settings.RuntimeDir;

        foreach (string part in command)
        {
            info.ArgumentList.Add(part);
        }

        info.Environment["HOSTVM_VMM_LOG"] = paths.VmmLog;
        var process = Process.Start(info) ?? throw new InvalidOperationException("/bin/sh did not start");
        int pid = vm.JailId is null ? process.Id : ProcessTable.WaitForChild(process.Id, TimeSpan.FromSeconds(5)) ?? process.Id;
        return (process, pid, ProcessTable.StartTicks(pid) ?? 0);
    }

    private static string Invariant(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// A CPU weight (1-10000, 100 normal, as cgroup cpu.weight) as a nice value: each nice step is about
    /// 1.25× CPU share under CFS, so weight 200 ≈ nice -3 and weight 50 ≈ nice +3.
    /// </summary>
    public static int? Nice(int weight) =>
        weight == 100 ? null : Math.Clamp((int)Math.Round(-Math.Log(weight / 100.0) / Math.Log(1.25)), -20, 19);
}
