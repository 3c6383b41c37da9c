namespace HostVM.Host.Api;

/// <summary>GET /v1/host.</summary>
public sealed record HostInfo(string Hostname, string Version, string DataDir, HostCapacity Capacity, HostAllocation Allocated, VmCounts Vms);
