using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace HostVM.Host;

/// <summary>
/// The daemon's settings: flags over environment (<c>HOSTVM_DATA_DIR</c>, <c>HOSTVM_LISTEN</c>, …) over the
/// config file (<c>/etc/hostvm/hostvm.json</c> as root, else <c>~/.config/hostvm/hostvm.json</c>, or <c>--config</c>).
/// Keys are the snake_case property names (<c>data_dir</c>, <c>listen</c>, <c>tls_cert</c>, <c>memory_overcommit</c>, …).
/// </summary>
public sealed record HostSettings
{
    public const int DefaultPort = 8006;

    /// <summary>Inventory, images, VM disks and logs.</summary>
    public required string DataDir { get; init; }

    /// <summary>Sockets: the daemon's, the VMMs' API and console sockets, the networks' switches.</summary>
    public required string RuntimeDir { get; init; }

    /// <summary>TCP addresses to serve the API on (host:port; port 0 picks one, printed at start).</summary>
    public IReadOnlyList<string> Listen { get; init; } = [$"127.0.0.1:{DefaultPort}"];

    /// <summary>
    /// The PEM certificate (with its chain, if any) the TCP listeners serve HTTPS with; with <see cref="TlsKey"/>.
    /// Null: a self-signed certificate made on the first start and kept in DataDir/tls/.
    /// </summary>
    public string? TlsCert { get; init; }

    /// <summary>The PEM private key of <see cref="TlsCert"/>.</summary>
    public string? TlsKey { get; init; }

    /// <summary>The local Unix socket (default: RuntimeDir/hostvm.sock); empty to serve none.</summary>
    public string? UnixSocket { get; init; }

    public double CpuOvercommit { get; init; } = 4.0;

    public double MemoryOvercommit { get; init; } = 1.0;

    /// <summary>Host memory kept for the host itself (and the VMMs' own overhead).</summary>
    public long MemoryReserveMib { get; init; } = 512;

    /// <summary>Directories JSON image imports may read from (default: DataDir/import).</summary>
    public IReadOnlyList<string> ImportDirs { get; init; } = [];

    /// <summary>Console WebSockets and event streams one token may hold open at once (each may queue megabytes of output).</summary>
    public int MaxSessionsPerToken { get; init; } = Security.SessionRegistry.DefaultMaxPerToken;

    /// <summary>Console WebSockets one VM may have open at once, whoever opened them.</summary>
    public int MaxSessionsPerVm { get; init; } = Security.SessionRegistry.DefaultMaxPerVm;

    /// <summary>How long a graceful stop waits for the guest before killing the VMM.</summary>
    public int StopTimeoutS { get; init; } = 30;

    /// <summary>Automatic restarts allowed within <see cref="RestartWindowS"/> before a VM is marked failed.</summary>
    public int MaxRestarts { get; init; } = 5;

    public int RestartWindowS { get; init; } = 60;

    /// <summary>The largest file an image upload may carry.</summary>
    public long MaxUploadBytes { get; init; } = 16L << 30;

    /// <summary>How often the stats sampler reads every running VM (its history keeps one hour of these samples).</summary>
    public int StatsIntervalS { get; init; } = 10;

    /// <summary>Serve /metrics without a token (for a Prometheus that cannot send one); off by default.</summary>
    public bool MetricsPublic { get; init; }

    /// <summary>Failed authentications allowed from one address per minute before each further one gets 429.</summary>
    public int AuthFailureLimit { get; init; } = 10;

    /// <summary>The most audit entries kept; past it the oldest go, those of callers without a valid token first.</summary>
    public long AuditMaxRows { get; init; } = DefaultAuditMaxRows;

    public const long DefaultAuditMaxRows = 1_000_000;

    /// <summary>
    /// The size at which a VM's serial.log rotates to serial.log.1: each VM keeps at most twice this on
    /// disk, and at least this much of its latest output once it has printed that much.
    /// </summary>
    public long SerialLogMaxBytes { get; init; } = Vmm.VmmOptions.DefaultSerialLogMaxBytes;

    /// <summary>The command that runs a VMM (default: this hostvm executable).</summary>
    public IReadOnlyList<string>? VmmCommand { get; init; }

    /// <summary>
    /// Whether each VMM runs jailed (<see cref="Supervision.VmmJail"/>): <c>auto</c> (when the daemon runs as
    /// root, as it must to jail), <c>on</c> (refuse to start otherwise) or <c>off</c>.
    /// </summary>
    public string Jail { get; init; } = "auto";

    /// <summary>
    /// The first of the uids and gids jailed VMMs run as: this one is the group every jailed VMM shares for
    /// its networks' switches, and VM n gets uid and gid base + n (1 ≤ n &lt; <see cref="JailIdCount"/>).
    /// Nothing else on the host should use the range.
    /// </summary>
    public int JailIdBase { get; init; } = 900_000;

    public int JailIdCount { get; init; } = 65_536;

    /// <summary>A jailed VM's memory limit (its cgroup's) is its guest RAM plus this, for the VMM's own heap and code.</summary>
    public long JailMemoryOverheadMib { get; init; } = 256;

    public static string DefaultDataDir() => IsRoot
        ? "/var/lib/hostvm"
        : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share", "hostvm");

    public static string DefaultRuntimeDir() => Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } xdg
        ? System.IO.Path.Combine(xdg, "hostvm")
        : IsRoot ? "/run/hostvm" : $"/tmp/hostvm-{UserName}";

    public static string DefaultConfigFile() => IsRoot
        ? "/etc/hostvm/hostvm.json"
        : System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config", "hostvm", "hostvm.json");

    // By uid, not by name: a jailed VMM runs as a uid with no entry in a passwd file it cannot see anyway.
    private static bool IsRoot => Environment.IsPrivilegedProcess;

    private static string UserName
    {
        get
        {
            if (Environment.GetEnvironmentVariable("USER") is { Length: > 0 } user)
            {
                return user;
            }

            try
            {
                return Environment.UserName;
            }
            catch (IOException)
            {
                return Vmm.OwnerOnly.EffectiveUserId.ToString(CultureInfo.InvariantCulture); // no passwd entry (a jail has no /etc)
            }
        }
    }

    /// <summary>Reads the settings; <paramref name="flags"/> are the command line's values by key (null: not given).</summary>
    public static HostSettings Load(string? configFile, IReadOnlyDictionary<string, string?> flags)
    {
        ArgumentNullException.ThrowIfNull(flags);
        string file = configFile ?? DefaultConfigFile();
        if (configFile is not null && !File.Exists(configFile))
        {
            throw new HostSettingsException($"--config {configFile}: no such file.");
        }

        IConfiguration config;
        try
        {
            config = new ConfigurationBuilder()
                .AddJsonFile(file, optional: true)
                .AddEnvironmentVariables("HOSTVM_")
                .AddInMemoryCollection(flags.Where(f => f.Value is not null))
                .Build();
        }
        catch (Exception e) when (e is FormatException or InvalidDataException or IOException)
        {
            throw new HostSettingsException($"{file}: {e.Message}");
        }

        string Get(string key, string fallback) => config[key] is { Length: > 0 } v ? v : fallback;
        double Number(string key, double fallback, double min, double max)
        {
            string? text = config[key];
            if (text is null)
            {
                return fallback;
            }

            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || v < min || v > max)
            {
                throw new HostSettingsException($"{key} {text}: must be a number from {min} to {max}.");
            }

            return v;
        }

        bool Flag(string key) => config[key] switch
        {
            null or "" => false,
            { } v when bool.TryParse(v, out bool b) => b,
            { } v => throw new HostSettingsException($"{key} {v}: must be true or false."),
        };

        IReadOnlyList<string>? List(string key) =>
            config[key] is { } one ? one.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            : config.GetSection(key).GetChildren().Select(c => c.Value!).Where(v => v is not null).ToArray() is { Length: > 0 } many ? many : null;

        string? tlsCert = config["tls_cert"] is { Length: > 0 } c ? System.IO.Path.GetFullPath(c) : null;
        string? tlsKey = config["tls_key"] is { Length: > 0 } k ? System.IO.Path.GetFullPath(k) : null;
        if ((tlsCert is null) != (tlsKey is null))
        {
            throw new HostSettingsException($"{(tlsCert is null ? "tls_key" : "tls_cert")} is set without {(tlsCert is null ? "tls_cert" : "tls_key")}: give both (a PEM certificate and its private key), or neither for a self-signed certificate.");
        }

        string dataDir = System.IO.Path.GetFullPath(Get("data_dir", DefaultDataDir()));
        string runtimeDir = System.IO.Path.GetFullPath(Get("runtime_dir", DefaultRuntimeDir()));
        return new HostSettings
        {
            DataDir = dataDir,
            RuntimeDir = runtimeDir,
            Listen = List("listen") ?? [$"127.0.0.1:{DefaultPort}"],
            TlsCert = tlsCert,
            TlsKey = tlsKey,
            UnixSocket = config["unix_socket"] is { } socket ? socket : System.IO.Path.Combine(runtimeDir, "hostvm.sock"),
            CpuOvercommit = Number("cpu_overcommit", 4.0, 0.1, 1024), // idle-dense hosts run 100 vCPUs a core
            MemoryOvercommit = Number("memory_overcommit", 1.0, 0.1, 16),
            MemoryReserveMib = (long)Number("memory_reserve_mib", 512, 0, 1 << 30),
            ImportDirs = List("import_dirs")?.Select(System.IO.Path.GetFullPath).ToArray() ?? [System.IO.Path.Combine(dataDir, "import")],
            StopTimeoutS = (int)Number("stop_timeout_s", 30, 1, 3600),
            MaxRestarts = (int)Number("max_restarts", 5, 0, 1000),
            RestartWindowS = (int)Number("restart_window_s", 60, 1, 86400),
            SerialLogMaxBytes = (long)Number("serial_log_max_bytes", Vmm.VmmOptions.DefaultSerialLogMaxBytes, 64 << 10, 1L << 30),
            StatsIntervalS = (int)Number("stats_interval_s", 10, 1, 3600),
            VmmCommand = List("vmm_command"),
            MetricsPublic = Flag("metrics_public"),
            AuthFailureLimit = (int)Number("auth_failure_limit", 10, 1, 1_000_000),
            MaxSessionsPerToken = (int)Number("max_sessions_per_token", Security.SessionRegistry.DefaultMaxPerToken, 1, 10_000),
            MaxSessionsPerVm = (int)Number("max_sessions_per_vm", Security.SessionRegistry.DefaultMaxPerVm, 1, 10_000),
            AuditMaxRows = (long)Number("audit_max_rows", DefaultAuditMaxRows, 1000, 1e10),
            Jail = Get("jail", "auto") is "auto" or "on" or "off" ? Get("jail", "auto") : throw new HostSettingsException($"jail {config["jail"]}: must be auto, on or off."),
            JailIdBase = (int)Number("jail_id_base", 900_000, 1000, int.MaxValue - (1 << 20)),
            JailIdCount = (int)Number("jail_id_count", 65_536, 2, 1 << 20),
            JailMemoryOverheadMib = (long)Number("jail_memory_overhead_mib", 256, 16, 1 << 20),
        };
    }
}
