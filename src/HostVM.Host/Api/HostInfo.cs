namespace HostVM.Host.Api;

/// <summary>GET /v1/host.</summary>
public sealed record HostInfo(string Hostname, string Version, string DataDir, HostCapacity Capacity, HostAllocation Allocated, VmCounts Vms)
{
    /// <summary>SHA-256 of the certificate the TCP listeners serve (what clients pin); null with no TCP listener.</summary>
    public string? TlsFingerprint { get; init; }
}
