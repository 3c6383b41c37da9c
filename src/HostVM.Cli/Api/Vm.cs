namespace HostVM.Cli.Api;

/// <summary>A VM as GET /v1/vms/{vm} shows it.</summary>
public sealed record Vm
{
    public string Id { get; init; } = string.Empty;

    public string Name { get; init; } = string.Empty;

    /// <summary>The project it belongs to.</summary>
    public string Project { get; init; } = string.Empty;

    public string Image { get; init; } = string.Empty;

    /// <summary>stopped, starting, running, paused, stopping or failed.</summary>
    public string State { get; init; } = string.Empty;

    public int Vcpus { get; init; }

    public long MemoryMib { get; init; }

    public int? CpuCapPercent { get; init; }

    public int CpuWeight { get; init; }

    public long DiskMib { get; init; }

    /// <summary><c>qcow2</c>: an overlay on the image's disk; null: a raw copy (VMs made before overlays).</summary>
    public string? DiskFormat { get; init; }

    public string BootArgs { get; init; } = string.Empty;

    public string RestartPolicy { get; init; } = string.Empty;

    public IReadOnlyList<VmNetwork> Networks { get; init; } = [];

    /// <summary>Read-only layers under its overlay (made when it, or its source, was cloned).</summary>
    public IReadOnlyList<string> DiskLayers
    {
        get => _diskLayers;
        init => _diskLayers = value ?? [];
    }

    private readonly IReadOnlyList<string> _diskLayers = [];

    /// <summary>Attached volumes (POOL/NAME); none from a daemon older than volumes (whose answer has no such field).</summary>
    public IReadOnlyList<string> Volumes
    {
        get => _volumes;
        init => _volumes = value ?? [];
    }

    private readonly IReadOnlyList<string> _volumes = [];

    public RateLimits? DiskLimits { get; init; }

    public RateLimits? NicLimits { get; init; }

    public bool Balloon { get; init; }

    public long BalloonMib { get; init; }

    public int? Pid { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }

    public int Restarts { get; init; }

    public VmExit? LastExit { get; init; }
}
