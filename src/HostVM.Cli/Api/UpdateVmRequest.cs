namespace HostVM.Cli.Api;

/// <summary>PATCH /v1/vms/{vm}: only the fields given (not null) change.</summary>
public sealed record UpdateVmRequest
{
    public int? CpuCapPercent { get; init; }

    public RateLimits? DiskLimits { get; init; }

    public RateLimits? NicLimits { get; init; }

    public long? BalloonMib { get; init; }

    public string? RestartPolicy { get; init; }
}
