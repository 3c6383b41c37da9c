namespace HostVM.Cli.Api;

/// <summary>GET /v1/host.</summary>
public sealed record HostInfo
{
    public string Hostname { get; init; } = string.Empty;

    public string Version { get; init; } = string.Empty;

    public string DataDir { get; init; } = string.Empty;

    public HostCapacity Capacity { get; init; } = new();

    public HostAllocation Allocated { get; init; } = new();

    public VmCounts Vms { get; init; } = new();

    /// <summary>SHA-256 of the certificate the daemon serves on TCP; null when it has no TCP listener.</summary>
    public string? TlsFingerprint { get; init; }
}
