namespace HostVM.Host.Api;

/// <summary>PATCH /v1/volumes/{pool}/{name}: grow a volume (never shrink: that would cut off what its guest wrote).</summary>
public sealed record ResizeVolumeRequest
{
    public long? SizeBytes { get; init; }
}
