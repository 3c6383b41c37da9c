using System.Diagnostics;
using System.Runtime;
using HostVM.Machine;
using HostVM.Machine.Boot;
using HostVM.Machine.Virtio;
using HostVM.Networking;
using HostVM.Storage;
using HostVM.Storage.Qcow2;
using HostVM.Vmm.Api;

namespace HostVM.Vmm;

/// <summary>
/// The one VM of a VMM process and the rules of its control API, without HTTP: configuration calls
/// before InstanceStart, pause/resume and rate-limit/balloon updates after it. Every refusal is a
/// <see cref="VmmFault"/> thrown before anything changed. Thread-safe: the API calls it concurrently.
/// </summary>
public sealed class VmmController : IDisposable
{
    public const string AppName = "HostVM";
    public const long DefaultMemoryMib = 128;
    public const long MinMemoryMib = 16;
    public const long MaxMemoryMib = 64 * 1024;
    public const int MaxDriveIdLength = 64;
    public const string DefaultBootArgs = "console=ttyS0 reboot=k panic=1";

    private readonly Lock _lock = new();
    private readonly ConsoleSink _serial;
    private readonly VmmLog _log;
    private readonly List<Drive> _drives = [];
    private readonly Dictionary<string, DriveJob> _jobs = [];
    private readonly List<NetworkInterface> _nics = [];
    private readonly Dictionary<string, VirtioBlock> _blockDevices = [];
    private readonly Dictionary<string, VirtioNet> _netDevices = [];
    private readonly TaskCompletionSource<MachineExit> _exited = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private BootSource? _bootSource;
    private MachineConfig _machine = new() { VcpuCount = 1, MemSizeMib = DefaultMemoryMib, Smt = false, TrackDirtyPages = false, HugePages = "None" };
    private Balloon? _balloon;
    private bool? _powerButton; // a config file's power-button (the API has no call for it: one when a slot is left)
    private EntropyDevice? _entropy;
    private SerialDevice? _serialConfig;
    private Api.Logger? _logger;
    private MetricsWriter? _metrics;
    private VirtualMachine? _vm;
    private VirtioBalloon? _balloonDevice;
    private IdleCodeTrimmer? _trimmer;
    private Timer? _balloonPoller;
    private VmmState _state = VmmState.NotStarted;
    private long _startedAt;

    public VmmController(string id, ConsoleSink serial, VmmLog log)
    {
        Id = id;
        _serial = serial;
        _log = log;
    }

    public string Id { get; }

    public static string Version { get; } =
        typeof(VmmController).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    public VmmState State
    {
        get
        {
            lock (_lock)
            {
                return _state;
            }
        }
    }

    /// <summary>The machine once started (for in-process callers such as tests and the metrics writer).</summary>
    public VirtualMachine? Machine => _vm;

    /// <summary>Completes when the started machine ends.</summary>
    public Task<MachineExit> Exited => _exited.Task;

    public InstanceInfo Describe() => new(AppName, Id, State switch
    {
        VmmState.NotStarted => "Not started",
        VmmState.Paused => "Paused",
        _ => "Running",
    }, Version);

    public void PutBootSource(BootSource boot)
    {
        ArgumentNullException.ThrowIfNull(boot);
        if (string.IsNullOrEmpty(boot.KernelImagePath))
        {
            throw new VmmFault("kernel_image_path is required.");
        }

        RequireReadableFile(boot.KernelImagePath, "kernel_image_path");
        if (boot.InitrdPath is not null)
        {
            RequireReadableFile(boot.InitrdPath, "initrd_path");
        }

        if (boot.FirmwarePath is not null)
        {
            RequireReadableFile(boot.FirmwarePath, "firmware_path");
        }

        lock (_lock)
        {
            RequireNotStarted("boot source");
            _bootSource = boot;
        }
    }

    public MachineConfig GetMachineConfig()
    {
        lock (_lock)
        {
            return _machine with { CpuCapPercent = _vm is null ? _machine.CpuCapPercent : CpuCap };
        }
    }

    /// <summary>PUT: every field given or defaulted (vcpu_count and mem_size_mib required).</summary>
    public void PutMachineConfig(MachineConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.VcpuCount is null || config.MemSizeMib is null)
        {
            throw new VmmFault("vcpu_count and mem_size_mib are required (use PATCH to change only some fields).");
        }

        var full = new MachineConfig
        {
            VcpuCount = config.VcpuCount,
            MemSizeMib = config.MemSizeMib,
            Smt = config.Smt ?? false,
            TrackDirtyPages = config.TrackDirtyPages ?? false,
            CpuTemplate = config.CpuTemplate,
            HugePages = config.HugePages ?? "None",
            CpuCapPercent = config.CpuCapPercent,
            VirtioTransport = config.VirtioTransport,
        };
        Validate(full);
        lock (_lock)
        {
            RequireNotStarted("machine configuration");
            _machine = full;
        }
    }

    /// <summary>PATCH: the fields given change. After boot only cpu_cap_percent may (HostVM's own field).</summary>
    public void PatchMachineConfig(MachineConfig patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        lock (_lock)
        {
            if (_state != VmmState.NotStarted)
            {
                if (patch.VcpuCount is not null || patch.MemSizeMib is not null || patch.Smt is not null || patch.TrackDirtyPages is not null
                    || patch.CpuTemplate is not null || patch.HugePages is not null || patch.VirtioTransport is not null)
                {
                    throw new VmmFault("The machine configuration cannot change after InstanceStart; only cpu_cap_percent can.");
                }

                if (patch.CpuCapPercent is { } cap)
                {
                    ValidateCap(cap);
                    SetCpuCap(cap);
                }

                return;
            }

            var merged = new MachineConfig
            {
                VcpuCount = patch.VcpuCount ?? _machine.VcpuCount,
                MemSizeMib = patch.MemSizeMib ?? _machine.MemSizeMib,
                Smt = patch.Smt ?? _machine.Smt,
                TrackDirtyPages = patch.TrackDirtyPages ?? _machine.TrackDirtyPages,
                CpuTemplate = patch.CpuTemplate ?? _machine.CpuTemplate,
                HugePages = patch.HugePages ?? _machine.HugePages,
                CpuCapPercent = patch.CpuCapPercent ?? _machine.CpuCapPercent,
                VirtioTransport = patch.VirtioTransport ?? _machine.VirtioTransport,
            };
            Validate(merged);
            _machine = merged;
        }
    }

    private static void Validate(MachineConfig config)
    {
        if (config.VcpuCount is not { } vcpus || vcpus < 1 || vcpus > MachineConfiguration.MaxHarts)
        {
            throw new VmmFault($"vcpu_count {config.VcpuCount}: a HostVM machine has 1 to {MachineConfiguration.MaxHarts} vCPUs.");
        }

        if (config.MemSizeMib is not { } mib || mib < MinMemoryMib || mib > MaxMemoryMib)
        {
            throw new VmmFault($"mem_size_mib {config.MemSizeMib}: must be {MinMemoryMib} to {MaxMemoryMib}.");
        }

        if (config.Smt == true)
        {
            throw new VmmFault("smt: simultaneous multithreading is an x86 feature; a RISC-V HostVM machine has none (set it false or leave it out).");
        }

        if (config.CpuTemplate is { } template && template != "None")
        {
            throw new VmmFault($"cpu_template {template}: CPU templates are x86/Arm features; HostVM's RISC-V harts have none.");
        }

        if (config.HugePages is { } huge && huge != "None")
        {
            throw new VmmFault($"huge_pages {huge}: HostVM backs guest RAM with ordinary pages only (use None).");
        }

        if (config.CpuCapPercent is { } cap)
        {
            ValidateCap(cap);
        }

        if (config.VirtioTransport is { } transport && transport is not ("modern" or "legacy"))
        {
            throw new VmmFault($"virtio_transport {transport}: modern (virtio-mmio 2) or legacy (1).");
        }
    }

    private static void ValidateCap(int cap)
    {
        if (cap is < 1 or > 100)
        {
            throw new VmmFault($"cpu_cap_percent {cap}: must be 1 to 100 (percent of one host core per vCPU).");
        }
    }

    private int? CpuCap => _machine.CpuCapPercent;

    private void SetCpuCap(int cap)
    {
        _machine = _machine with { CpuCapPercent = cap == 100 ? null : cap };
        _vm?.SetCpuCap(cap == 100 ? null : cap);
        _log.Info($"cpu cap set to {cap}%");
    }

    public void PutDrive(string driveId, Drive drive)
    {
        ArgumentNullException.ThrowIfNull(drive);
        CheckId(driveId, drive.DriveId, "drive_id");
        if (drive.IsRootDevice is null)
        {
            throw new VmmFault("is_root_device is required.");
        }

        if (drive.Socket is not null)
        {
            throw new VmmFault("socket: HostVM has no vhost-user block backends; give path_on_host.");
        }

        if (string.IsNullOrEmpty(drive.PathOnHost))
        {
            throw new VmmFault("path_on_host is required.");
        }

        if (drive.CacheType is not (null or "Unsafe" or "Writeback"))
        {
            throw new VmmFault($"cache_type {drive.CacheType}: must be Unsafe or Writeback.");
        }

        if (drive.IoEngine is not (null or "Sync" or "Async"))
        {
            throw new VmmFault($"io_engine {drive.IoEngine}: must be Sync or Async.");
        }

        if (drive.Format is not null && !DiskImage.Formats.Contains(drive.Format))
        {
            throw new VmmFault($"format {drive.Format}: must be {string.Join(" or ", DiskImage.Formats)} (or absent: the file's header decides).");
        }

        if (drive.PartUuid is { } uuid && (uuid.Length > 64 || !uuid.All(c => char.IsAsciiLetterOrDigit(c) || c == '-')))
        {
            throw new VmmFault($"partuuid {uuid}: letters, digits and '-' only.");
        }

        if (DiskImage.IsRemote(drive.PathOnHost))
        {
            // An NBD URI names a disk on a server: nothing to find on this host; it is parsed and connected at start.
            RequireNbdUri(drive.PathOnHost);
        }
        else
        {
            RequireReadableFile(drive.PathOnHost, "path_on_host");
        }

        _ = RateLimits.ToSettings(drive.RateLimiter, "rate_limiter");
        lock (_lock)
        {
            RequireNotStarted("drive");
            if (drive.IsRootDevice == true && _drives.Any(d => d.IsRootDevice == true && d.DriveId != driveId))
            {
                throw new VmmFault("A root block device already exists; a machine has one.");
            }

            int i = _drives.FindIndex(d => d.DriveId == driveId);
            if (i >= 0)
            {
                _drives[i] = drive;
            }
            else
            {
                RequireSlot();
                _drives.Add(drive);
            }
        }
    }

    public void PatchDrive(string driveId, Drive patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        CheckId(driveId, patch.DriveId, "drive_id");
        if (patch.IsRootDevice is not null || patch.IsReadOnly is not null || patch.PartUuid is not null || patch.CacheType is not null
            || patch.IoEngine is not null || patch.Socket is not null || patch.Format is not null)
        {
            throw new VmmFault("PATCH /drives takes only drive_id, path_on_host and rate_limiter.");
        }

        lock (_lock)
        {
            int i = _drives.FindIndex(d => d.DriveId == driveId);
            if (i < 0)
            {
                throw new VmmFault($"No drive with id '{driveId}'.");
            }

            if (_state == VmmState.NotStarted)
            {
                throw new VmmFault("PATCH /drives is for a running machine; before InstanceStart use PUT.");
            }

            if (patch.PathOnHost is { } path && path != _drives[i].PathOnHost)
            {
                throw new VmmFault("path_on_host: HostVM cannot change a drive's backing file while the machine runs.");
            }

            var device = _blockDevices[driveId];
            var settings = RateLimits.Merge(device.Limiter.Settings, patch.RateLimiter, "rate_limiter");
            device.Limiter.Update(settings);
            _drives[i] = _drives[i] with { RateLimiter = RateLimits.ToApi(settings) };
            _log.Info($"drive {driveId}: rate limiter updated");
        }
    }

    public void PutNetworkInterface(string ifaceId, NetworkInterface nic)
    {
        ArgumentNullException.ThrowIfNull(nic);
        CheckId(ifaceId, nic.IfaceId, "iface_id");
        if (string.IsNullOrEmpty(nic.HostDevName))
        {
            throw new VmmFault("host_dev_name is required: a TAP interface, 'user[:hostfwd=...]' or 'switch:NAME'.");
        }

        _ = NetworkBackendSpec.Parse(nic.HostDevName);
        if (nic.GuestMac is { } macText)
        {
            MacAddress mac;
            try
            {
                mac = MacAddress.Parse(macText);
            }
            catch (FormatException e)
            {
                throw new VmmFault($"guest_mac {macText}: {e.Message}");
            }

            if (mac.IsMulticast)
            {
                throw new VmmFault($"guest_mac {macText}: a multicast address; a NIC needs a unicast one (first byte even).");
            }
        }

        if (nic.Mtu is { } mtu && mtu != VirtioNet.Mtu)
        {
            throw new VmmFault($"mtu {mtu}: HostVM NICs have an MTU of {VirtioNet.Mtu}.");
        }

        _ = RateLimits.ToSettings(nic.RxRateLimiter, "rx_rate_limiter");
        _ = RateLimits.ToSettings(nic.TxRateLimiter, "tx_rate_limiter");
        lock (_lock)
        {
            RequireNotStarted("network interface");
            if (nic.GuestMac is { } m && _nics.Any(n => n.IfaceId != ifaceId && string.Equals(n.GuestMac, m, StringComparison.OrdinalIgnoreCase)))
            {
                throw new VmmFault($"guest_mac {m}: another interface already has it.");
            }

            int i = _nics.FindIndex(n => n.IfaceId == ifaceId);
            if (i >= 0)
            {
                _nics[i] = nic;
            }
            else
            {
                RequireSlot();
                _nics.Add(nic);
            }
        }
    }

    public void PatchNetworkInterface(string ifaceId, NetworkInterface patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        CheckId(ifaceId, patch.IfaceId, "iface_id");
        if (patch.HostDevName is not null || patch.GuestMac is not null || patch.Mtu is not null)
        {
            throw new VmmFault("PATCH /network-interfaces takes only iface_id, rx_rate_limiter and tx_rate_limiter.");
        }

        lock (_lock)
        {
            int i = _nics.FindIndex(n => n.IfaceId == ifaceId);
            if (i < 0)
            {
                throw new VmmFault($"No network interface with id '{ifaceId}'.");
            }

            if (_state == VmmState.NotStarted)
            {
                throw new VmmFault("PATCH /network-interfaces is for a running machine; before InstanceStart use PUT.");
            }

            var device = _netDevices[ifaceId];
            var rx = RateLimits.Merge(device.ReceiveLimiter.Settings, patch.RxRateLimiter, "rx_rate_limiter");
            var tx = RateLimits.Merge(device.TransmitLimiter.Settings, patch.TxRateLimiter, "tx_rate_limiter");
            device.ReceiveLimiter.Update(rx);
            device.TransmitLimiter.Update(tx);
            _nics[i] = _nics[i] with { RxRateLimiter = RateLimits.ToApi(rx), TxRateLimiter = RateLimits.ToApi(tx) };
            _log.Info($"network interface {ifaceId}: rate limiters updated");
        }
    }

    public Balloon GetBalloon()
    {
        lock (_lock)
        {
            var b = _balloon ?? throw new VmmFault("No balloon device is configured (PUT /balloon before InstanceStart).");
            return _balloonDevice is null ? b : b with { AmountMib = (long)_balloonDevice.TargetPages * 4096 / (1024 * 1024) };
        }
    }

    public void PutBalloon(Balloon balloon)
    {
        ArgumentNullException.ThrowIfNull(balloon);
        if (balloon.AmountMib is null || balloon.DeflateOnOom is null)
        {
            throw new VmmFault("amount_mib and deflate_on_oom are required.");
        }

        if (balloon.FreePageHinting == true || balloon.FreePageReporting == true)
        {
            throw new VmmFault("free_page_hinting and free_page_reporting are not supported by HostVM's balloon.");
        }

        if (balloon.StatsPollingIntervalS is < 0)
        {
            throw new VmmFault("stats_polling_interval_s cannot be negative.");
        }

        lock (_lock)
        {
            RequireNotStarted("balloon");
            CheckBalloonSize(balloon.AmountMib.Value);
            if (_balloon is null)
            {
                RequireSlot();
            }

            _balloon = balloon with { StatsPollingIntervalS = balloon.StatsPollingIntervalS ?? 0, FreePageHinting = null, FreePageReporting = null };
        }
    }

    public void PatchBalloon(Balloon patch)
    {
        ArgumentNullException.ThrowIfNull(patch);
        if (patch.AmountMib is not { } mib || patch.DeflateOnOom is not null || patch.StatsPollingIntervalS is not null
            || patch.FreePageHinting is not null || patch.FreePageReporting is not null)
        {
            throw new VmmFault("PATCH /balloon takes exactly amount_mib.");
        }

        lock (_lock)
        {
            var b = _balloon ?? throw new VmmFault("No balloon device is configured (PUT /balloon before InstanceStart).");
            CheckBalloonSize(mib);
            _balloon = b with { AmountMib = mib };
            _balloonDevice?.SetTarget((ulong)mib * 1024 * 1024);
            _log.Info($"balloon target {mib} MiB");
        }
    }

    private void CheckBalloonSize(long mib)
    {
        if (mib < 0 || mib > _machine.MemSizeMib)
        {
            throw new VmmFault($"amount_mib {mib}: must be 0 to the machine's memory ({_machine.MemSizeMib} MiB).");
        }
    }

    public BalloonStats GetBalloonStatistics()
    {
        lock (_lock)
        {
            var b = _balloon ?? throw new VmmFault("No balloon device is configured.");
            if (b.StatsPollingIntervalS is not > 0)
            {
                throw new VmmFault("Balloon statistics are not enabled (set stats_polling_interval_s in PUT /balloon before InstanceStart).");
            }

            long target = _balloonDevice?.TargetPages ?? b.AmountMib!.Value * 256;
            long actual = _balloonDevice?.ActualPages ?? 0;
            var s = _balloonDevice?.Statistics;
            return new BalloonStats
            {
                TargetPages = target,
                ActualPages = actual,
                TargetMib = target / 256,
                ActualMib = actual / 256,
                SwapIn = (long?)s?.SwapIn,
                SwapOut = (long?)s?.SwapOut,
                MajorFaults = (long?)s?.MajorFaults,
                MinorFaults = (long?)s?.MinorFaults,
                FreeMemory = (long?)s?.FreeMemory,
                TotalMemory = (long?)s?.TotalMemory,
                AvailableMemory = (long?)s?.AvailableMemory,
                DiskCaches = (long?)s?.DiskCaches,
            };
        }
    }

    public void PatchBalloonStatistics(BalloonStatsUpdate update)
    {
        ArgumentNullException.ThrowIfNull(update);
        if (update.StatsPollingIntervalS is not { } interval || interval < 0)
        {
            throw new VmmFault("stats_polling_interval_s is required and cannot be negative.");
        }

        lock (_lock)
        {
            var b = _balloon ?? throw new VmmFault("No balloon device is configured.");
            if (_state != VmmState.NotStarted && (b.StatsPollingIntervalS > 0) != (interval > 0))
            {
                throw new VmmFault("Balloon statistics cannot be turned on or off after InstanceStart; only the interval can change.");
            }

            _balloon = b with { StatsPollingIntervalS = interval };
            if (_balloonDevice is not null)
            {
                StartBalloonPolling(interval);
            }
        }
    }

    private void StartBalloonPolling(int seconds)
    {
        _balloonPoller?.Dispose();
        _balloonPoller = null;
        if (seconds > 0 && _balloonDevice is { } device)
        {
            _balloonPoller = new Timer(_ => device.RequestStatistics(), null, TimeSpan.Zero, TimeSpan.FromSeconds(seconds));
        }
    }

    public void PutEntropy(EntropyDevice entropy)
    {
        ArgumentNullException.ThrowIfNull(entropy);
        if (entropy.RateLimiter is not null)
        {
            throw new VmmFault("rate_limiter: HostVM's entropy device is not rate-limited (it costs the host no I/O); leave it out.");
        }

        lock (_lock)
        {
            RequireNotStarted("entropy device");
            if (_entropy is null)
            {
                RequireSlot();
            }

            _entropy = entropy;
        }
    }

    public void PutSerial(SerialDevice serial)
    {
        ArgumentNullException.ThrowIfNull(serial);
        if (string.IsNullOrEmpty(serial.SerialOutPath))
        {
            throw new VmmFault("serial_out_path is required.");
        }

        if (serial.RateLimiter is not null)
        {
            throw new VmmFault("rate_limiter: HostVM does not rate-limit the serial console; leave it out.");
        }

        lock (_lock)
        {
            RequireNotStarted("serial device");
            Stream output;
            try
            {
                output = new FileStream(serial.SerialOutPath, FileMode.Append, FileAccess.Write, FileShare.ReadWrite);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new VmmFault($"serial_out_path {serial.SerialOutPath}: cannot be opened for writing ({e.Message}).");
            }

            _serial.Redirect(output);
            _serialConfig = serial;
        }
    }

    public void PutLogger(Api.Logger logger)
    {
        ArgumentNullException.ThrowIfNull(logger);
        if (string.IsNullOrEmpty(logger.LogPath))
        {
            throw new VmmFault("log_path is required.");
        }

        if (logger.ShowLogOrigin == true || logger.Module is not null)
        {
            throw new VmmFault("show_log_origin and module are not supported by HostVM's logger.");
        }

        VmmLogLevel level = VmmLogLevel.Info;
        if (logger.Level is { } text && !Enum.TryParse(text, ignoreCase: true, out level))
        {
            throw new VmmFault($"level {text}: must be one of Error, Warning, Info, Debug, Trace, Off.");
        }

        lock (_lock)
        {
            _log.Configure(logger.LogPath, level, logger.ShowLevel ?? false);
            _logger = logger;
        }
    }

    public void PutMetrics(Api.Metrics metrics)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        if (string.IsNullOrEmpty(metrics.MetricsPath))
        {
            throw new VmmFault("metrics_path is required.");
        }

        lock (_lock)
        {
            if (_metrics is not null)
            {
                throw new VmmFault("The metrics system is already initialised.");
            }

            _metrics = MetricsWriter.Open(metrics.MetricsPath, Statistics);
        }
    }

    /// <summary>PUT /actions.</summary>
    public void Act(InstanceActionInfo action)
    {
        ArgumentNullException.ThrowIfNull(action);
        switch (action.ActionType)
        {
            case "InstanceStart":
                Start();
                break;
            case "FlushMetrics":
                var metrics = _metrics ?? throw new VmmFault("The metrics system is not initialised (PUT /metrics first).");
                metrics.Flush();
                break;
            case "SendCtrlAltDel":
                PressPowerButton();
                break;
            case "SeccompSelfTest":
                // A check of the jail for whoever holds this socket (the daemon, or root): the filter kills the process here.
                _log.Warning("SeccompSelfTest: making a system call outside the seccomp allowlist");
                SeccompFilter.ProbeForbiddenCall();
                break;
            case null:
                throw new VmmFault("action_type is required: InstanceStart, FlushMetrics, SendCtrlAltDel or SeccompSelfTest.");
            default:
                throw new VmmFault($"action_type {action.ActionType}: must be InstanceStart, FlushMetrics, SendCtrlAltDel or SeccompSelfTest.");
        }
    }

    /// <summary>PATCH /vm.</summary>
    public void SetState(Api.VmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        lock (_lock)
        {
            if (state.State is not ("Paused" or "Resumed"))
            {
                throw new VmmFault($"state {state.State}: must be Paused or Resumed.");
            }

            if (_vm is null || _state == VmmState.NotStarted)
            {
                throw new VmmFault("The machine has not been started (PUT /actions InstanceStart first).");
            }

            if (_state == VmmState.Exited)
            {
                throw new VmmFault("The machine has ended.");
            }

            if (state.State == "Paused" && _state == VmmState.Running)
            {
                _vm.Pause();
                _state = VmmState.Paused;
                _log.Info("paused");
            }
            else if (state.State == "Resumed" && _state == VmmState.Paused)
            {
                _vm.Resume();
                _state = VmmState.Running;
                _log.Info("resumed");
            }
        }
    }

    public FullVmConfiguration ExportConfiguration()
    {
        lock (_lock)
        {
            return Description() with
            {
                Balloon = _balloon is null ? null : GetBalloon(),
                Serial = _serialConfig,
                Logger = _logger,
                Metrics = _metrics is null ? null : new Api.Metrics { MetricsPath = _metrics.Path },
            };
        }
    }

    /// <summary>The machine as configured so far: what <see cref="MachineBuilder"/> builds. Under the lock.</summary>
    private FullVmConfiguration Description() => new()
    {
        BootSource = _bootSource,
        MachineConfig = _machine,
        Drives = [.. _drives],
        NetworkInterfaces = [.. _nics],
        Balloon = _balloon,
        Entropy = _entropy,
        PowerButton = _powerButton,
    };

    /// <summary>Applies a whole configuration (<c>--config-file</c>) in the order the API would: machine, boot, devices.</summary>
    public void Apply(FullVmConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.Logger is { } logger)
        {
            PutLogger(logger);
        }

        if (config.Metrics is { } metrics)
        {
            PutMetrics(metrics);
        }

        if (config.MachineConfig is { } machine)
        {
            PutMachineConfig(machine);
        }

        PutBootSource(config.BootSource ?? throw new VmmFault("The configuration has no boot-source."));
        foreach (var d in config.Drives ?? [])
        {
            PutDrive(d.DriveId ?? throw new VmmFault("A drive without drive_id."), d);
        }

        foreach (var n in config.NetworkInterfaces ?? [])
        {
            PutNetworkInterface(n.IfaceId ?? throw new VmmFault("A network interface without iface_id."), n);
        }

        if (config.Balloon is { } balloon)
        {
            PutBalloon(balloon);
        }

        if (config.Entropy is { } entropy)
        {
            PutEntropy(entropy);
        }

        if (config.Serial is { } serial)
        {
            PutSerial(serial);
        }

        lock (_lock)
        {
            RequireNotStarted("power-button");
            _powerButton = config.PowerButton;
        }
    }

    /// <summary>What the VM has used so far (GET /hostvm/stats, and the metrics lines).</summary>
    public VmmStatistics Statistics()
    {
        VirtualMachine? vm;
        VmmState state;
        long startedAt;
        KeyValuePair<string, VirtioBlock>[] drives;
        KeyValuePair<string, VirtioNet>[] nics;
        lock (_lock)
        {
            vm = _vm;
            state = _state;
            startedAt = _startedAt;
            drives = [.. _blockDevices];
            nics = [.. _netDevices];
        }

        using var self = Process.GetCurrentProcess();
        return new VmmStatistics
        {
            State = state.ToString(),
            UptimeMs = vm is null ? 0 : (long)Stopwatch.GetElapsedTime(startedAt).TotalMilliseconds,
            VcpuCount = _machine.VcpuCount ?? 1,
            InstructionsRetired = vm?.InstructionsRetired ?? 0,
            CpuTimeMs = (long)self.TotalProcessorTime.TotalMilliseconds,
            VcpuTimeMs = (long)(vm?.CpuTime.TotalMilliseconds ?? 0),
            CpuThrottledMs = (long)(vm?.CpuThrottledTime.TotalMilliseconds ?? 0),
            CpuCapPercent = _machine.CpuCapPercent,
            GuestMemoryBytes = (_machine.MemSizeMib ?? 0) * 1024 * 1024,
            HostRssBytes = self.WorkingSet64,
            Drives = [.. drives.Select(d => new DriveStatistics(d.Key, d.Value.Statistics.Reads, d.Value.Statistics.Writes,
                d.Value.Statistics.BytesRead, d.Value.Statistics.BytesWritten, d.Value.Statistics.Flushes, d.Value.Statistics.Errors,
                d.Value.Limiter.Throttled))],
            NetworkInterfaces = [.. nics.Select(n => new NetworkInterfaceStatistics(n.Key, n.Value.Statistics.ReceivedFrames,
                n.Value.Statistics.ReceivedBytes, n.Value.Statistics.ReceiveDropped, n.Value.Statistics.SentFrames,
                n.Value.Statistics.SentBytes, n.Value.Statistics.SendDropped, n.Value.ReceiveLimiter.Throttled, n.Value.TransmitLimiter.Throttled))],
        };
    }

    private void PressPowerButton()
    {
        lock (_lock)
        {
            if (_vm is null || _state is VmmState.NotStarted or VmmState.Exited)
            {
                throw new VmmFault("The machine is not running.");
            }

            var button = _vm.Device<VirtioInput>() ?? throw new VmmFault("This machine has no power button (all virtio slots were taken).");
            if (!button.PressPowerButton())
            {
                throw new VmmFault("The power button has been pressed too often without the guest taking the presses.");
            }

            _log.Info("power button pressed");
        }
    }

    private void Start()
    {
        lock (_lock)
        {
            if (_state != VmmState.NotStarted)
            {
                throw new VmmFault("The machine is already started.");
            }

            _ = _bootSource ?? throw new VmmFault("Cannot start without a boot source: PUT /boot-source with kernel_image_path first.");
            var built = MachineBuilder.Boot(Description(), new MachineWiring(_serial.Write));
            var vm = built.Machine;
            var balloon = built.Balloon;
            var blocks = built.Drives;
            var nets = built.NetworkInterfaces;
            _vm = vm;
            _balloonDevice = balloon;
            foreach (var (id, dev) in blocks)
            {
                _blockDevices[id] = dev;
            }

            foreach (var (id, dev) in nets)
            {
                _netDevices[id] = dev;
            }

            if (balloon is not null)
            {
                balloon.SetTarget((ulong)_balloon!.AmountMib!.Value * 1024 * 1024);
                StartBalloonPolling(_balloon.StatsPollingIntervalS ?? 0);
            }

            _startedAt = Stopwatch.GetTimestamp();
            vm.Start();
            _trimmer = new IdleCodeTrimmer(vm, IdleCodeTrimmer.DefaultInterval);
            _state = VmmState.Running;
            _log.Info($"started: {vm.Harts.Count} vCPUs, {_machine.MemSizeMib} MiB, {vm.VirtioTransports.Count} virtio devices");
        }

        var thread = new Thread(WaitForExit) { IsBackground = true, Name = "vm exit" };
        thread.Start();
    }

    private void WaitForExit()
    {
        CollectBootGarbage();
        var exit = _vm!.WaitForExit();
        lock (_lock)
        {
            _state = VmmState.Exited;
        }

        _serial.Flush();
        _log.Info($"the machine ended: {exit.Message}");
        _exited.TrySetResult(exit);
    }

    /// <summary>
    /// The boot files (the kernel and initrd, MiBs in the large-object heap) and the configuration's
    /// parsing are garbage once the machine runs. A VMM whose guest idles allocates too little for the
    /// GC to come by on its own, so without one collection here they would stay resident for the VM's
    /// life: hundreds of idle VMs on a host make that the difference. Off the API's path (this thread).
    /// </summary>
    private static void CollectBootGarbage()
    {
        GCSettings.LargeObjectHeapCompactionMode = GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
    }

    /// <summary>The dirty bitmaps of a running drive (a qcow2 one).</summary>
    public IReadOnlyList<DirtyBitmap> Bitmaps(string driveId) => OnRunningQcow2(driveId, DirtyBitmaps.List);

    /// <summary>Adds, removes, clears, enables, disables or merges a bitmap of a running drive; it takes effect for the next write.</summary>
    public void ChangeBitmaps(string driveId, BitmapRequest request) => OnRunningQcow2(driveId, disk =>
    {
        DirtyBitmaps.Apply(disk, request);
        return true;
    });

    public IReadOnlyList<BitmapExtent> BitmapExtents(string driveId, string name) => OnRunningQcow2(driveId, disk => DirtyBitmaps.Extents(disk, name));

    /// <summary>Runs <paramref name="use"/> on the drive's image under its gate: a block job cannot close it meanwhile.</summary>
    private T OnRunningQcow2<T>(string driveId, Func<Qcow2BlockDevice, T> use) => RunningDisk(driveId).With(d => use(DirtyBitmaps.Qcow2(d, driveId)));

    private SwitchableBlockDevice RunningDisk(string driveId)
    {
        lock (_lock)
        {
            if (!_drives.Any(d => d.DriveId == driveId))
            {
                throw new VmmFault($"There is no drive '{driveId}'.");
            }

            return _blockDevices.TryGetValue(driveId, out var block)
                ? (SwitchableBlockDevice)block.Backend
                : throw new VmmFault($"drive {driveId}: the machine is not running; its bitmaps and layers are in its image files.");
        }
    }

    /// <summary>The drive's last block job (<see cref="DriveJob"/>).</summary>
    public DriveJobInfo Job(string driveId)
    {
        _ = RunningDisk(driveId);
        lock (_lock)
        {
            return _jobs.TryGetValue(driveId, out var job) ? job.Info() : throw new VmmFault($"drive {driveId}: no block job has run on it.");
        }
    }

    /// <summary>Starts, completes or cancels a live block job on a running qcow2 drive (<see cref="DriveJobRequest"/>).</summary>
    public DriveJobInfo RunJob(string driveId, DriveJobRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        var disk = RunningDisk(driveId);
        string path, identifier;
        DriveJob? current;
        lock (_lock)
        {
            var drive = _drives.First(d => d.DriveId == driveId);
            (path, identifier) = (drive.PathOnHost!, MachineBuilder.SerialOf(drive)!);
            if (drive.IsReadOnly == true || DiskImage.IsRemote(path))
            {
                throw new VmmFault($"drive {driveId}: block jobs run on writable qcow2 files.");
            }

            _jobs.TryGetValue(driveId, out current);
        }

        switch (request.Action)
        {
            case "complete":
                (current ?? throw new VmmFault($"drive {driveId}: no block job to complete.")).Complete();
                return current.Info();
            case "cancel":
                (current ?? throw new VmmFault($"drive {driveId}: no block job to cancel.")).Cancel();
                return current.Info();
            case "reopen" or "commit" or "stream":
                lock (_lock)
                {
                    // One job at a time per drive; the check and the start under the controller's lock, so two cannot both pass.
                    if (_jobs.TryGetValue(driveId, out var busy) && busy.Busy)
                    {
                        throw new VmmFault($"drive {driveId}: a {busy.Type} job is {busy.Info().State}; complete or cancel it first.");
                    }

                    var job = request.Action == "reopen" ? DriveJob.Reopen(disk, path, identifier, _log) : DriveJob.Start(request.Action, disk, path, identifier, _log);
                    _jobs[driveId] = job;
                    return job.Info();
                }

            default:
                throw new VmmFault($"action '{request.Action}': must be reopen, commit, stream, complete or cancel.");
        }
    }

    private static void CheckId(string pathId, string? bodyId, string field)
    {
        if (string.IsNullOrEmpty(pathId) || pathId.Length > MaxDriveIdLength || !pathId.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.'))
        {
            throw new VmmFault($"{field} '{pathId}': use 1-{MaxDriveIdLength} letters, digits, '_', '-' or '.'.");
        }

        if (bodyId is null)
        {
            throw new VmmFault($"{field} is required in the body.");
        }

        if (bodyId != pathId)
        {
            throw new VmmFault($"The {field} in the path ({pathId}) does not match the one in the body ({bodyId}).");
        }
    }

    private static void RequireNbdUri(string uri)
    {
        try
        {
            _ = HostVM.Storage.Nbd.NbdUri.Parse(uri);
        }
        catch (FormatException e)
        {
            throw new VmmFault($"path_on_host: {e.Message}");
        }
    }

    private static void RequireReadableFile(string path, string field)
    {
        if (Directory.Exists(path))
        {
            throw new VmmFault($"{field} {path}: is a directory, not a file.");
        }

        if (!File.Exists(path))
        {
            throw new VmmFault($"{field} {path}: no such file.");
        }
    }

    private void RequireNotStarted(string what)
    {
        if (_state != VmmState.NotStarted)
        {
            throw new VmmFault($"The {what} cannot be changed after InstanceStart.");
        }
    }

    private void RequireSlot()
    {
        int used = _drives.Count + _nics.Count + (_balloon is null ? 0 : 1) + (_entropy is null ? 0 : 1);
        if (used >= MachineConfiguration.MaxVirtioDevices)
        {
            throw new VmmFault($"The machine has {MachineConfiguration.MaxVirtioDevices} virtio-mmio slots and all are taken.");
        }
    }

    public void Dispose()
    {
        _balloonPoller?.Dispose();
        _metrics?.Dispose();
        _trimmer?.Dispose();
        _vm?.Dispose();
    }
}
