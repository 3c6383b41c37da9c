namespace HostVM.Host.Api;

/// <summary>POST /v1/vms/{vm}/disks/{disk}/job: <c>type</c> is snapshot, commit or stream.</summary>
public sealed record StartDiskJobRequest
{
    public string? Type { get; init; }
}
