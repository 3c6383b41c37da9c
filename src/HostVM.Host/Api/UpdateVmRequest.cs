using HostVM.Host.Inventory;

namespace HostVM.Host.Api;

/// <summary>PATCH /v1/vms/{vm}: what may change, also while the VM runs.</summary>
public sealed record UpdateVmRequest
{
    public int? CpuCapPercent { get; init; }

    public RateLimit? DiskLimits { get; init; }

    public RateLimit? NicLimits { get; init; }

    public long? BalloonMib { get; init; }

    public string? RestartPolicy { get; init; }
}
