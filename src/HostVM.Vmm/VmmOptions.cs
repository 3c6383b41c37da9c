namespace HostVM.Vmm;

/// <summary>The command line of <c>hostvm vmm</c> (Firecracker's flags, plus HostVM's console socket and exit file).</summary>
public sealed record VmmOptions
{
    /// <summary>The control API's Unix socket (must not exist yet).</summary>
    public string? ApiSocket { get; init; }

    public string Id { get; init; } = "anonymous-instance";

    /// <summary>A JSON file in the shape of GET /vm/config: the VM is configured from it and started at once.</summary>
    public string? ConfigFile { get; init; }

    /// <summary>No control API (only with <see cref="ConfigFile"/>).</summary>
    public bool NoApi { get; init; }

    /// <summary>The serial console on a Unix stream socket as well (attach and detach while the VM runs).</summary>
    public string? ConsoleSocket { get; init; }

    /// <summary>How much recent output a new console-socket client is sent first.</summary>
    public int ConsoleReplayBytes { get; init; } = SerialSocket.DefaultReplayBytes;

    /// <summary>
    /// The serial output to this file instead of stdout, rotated at <see cref="SerialLogMaxBytes"/> (see
    /// <see cref="RotatingLog"/>): written by the VMM itself, so it is kept while no supervisor runs.
    /// </summary>
    public string? SerialLog { get; init; }

    public long SerialLogMaxBytes { get; init; } = DefaultSerialLogMaxBytes;

    public const long DefaultSerialLogMaxBytes = 1024 * 1024;

    /// <summary>Where to write how the VM ended (JSON), for a supervisor that is not this process's parent.</summary>
    public string? ExitFile { get; init; }

    public string? LogPath { get; init; }

    public string? MetricsPath { get; init; }

    /// <summary>Start a new session (setsid), so the VMM outlives its starter's terminal and process group.</summary>
    public bool NewSession { get; init; }

    /// <summary>Enter the jail this file describes (<see cref="JailPlan"/>) before anything else: the daemon's jail asks for it.</summary>
    public string? JailPlan { get; init; }

    /// <summary>Run under the seccomp allowlist (<see cref="SeccompFilter"/>), installed before anything else: a jail asks for it.</summary>
    public bool Seccomp { get; init; }
}
