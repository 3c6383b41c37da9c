namespace HostVM.Host.Inventory;

/// <summary>A VM as the inventory holds it and the API shows it (snake_case JSON).</summary>
public sealed record VmRecord
{
    public required string Id { get; init; }

    public required string Name { get; init; }

    public required string Image { get; init; }

    public string Project { get; init; } = ProjectRecord.Default;

    public required string State { get; init; }

    public int Vcpus { get; init; } = 1;

    public long MemoryMib { get; init; } = 128;

    public int? CpuCapPercent { get; init; }

    public int CpuWeight { get; init; } = 100;

    public long DiskMib { get; init; }

    /// <summary>
    /// <c>qcow2</c>: the disk is an overlay (<see cref="Supervision.VmPaths.Overlay"/>) on the image's disk, linked into
    /// the VM's directory as its base. Null (VMs made before overlays): a raw copy (<see cref="Supervision.VmPaths.Disk"/>).
    /// Recorded, never probed: a raw disk holds whatever its guest wrote, a qcow2 header naming any file included.
    /// </summary>
    public string? DiskFormat { get; init; }

    /// <summary>
    /// Read-only qcow2 layers between the base and the overlay, bottom first: files in the VM's directory, each naming the
    /// one below (the lowest names the base). A clone and its source share the layers made when it was cloned.
    /// </summary>
    public IReadOnlyList<string> DiskLayers
    {
        get => _diskLayers;
        init => _diskLayers = value ?? [];
    }

    private readonly IReadOnlyList<string> _diskLayers = [];

    /// <summary>
    /// A stream pulled everything the base and the layers held into the overlay and dropped its backing file: the overlay
    /// stands alone (no base, no layers).
    /// </summary>
    public bool DiskStandalone { get; init; }

    /// <summary>Volumes (<c>POOL/NAME</c>) attached as further disks, in order after its own (vdb, vdc, ...).</summary>
    public IReadOnlyList<string> Volumes
    {
        get => _volumes;

        // A record written before volumes has none: the JSON source generator sets a missing property to null, not to [].
        init => _volumes = value ?? [];
    }

    private readonly IReadOnlyList<string> _volumes = [];

    /// <summary>The cloud-init seed it has as a further read-only disk, after its volumes; null: none.</summary>
    public CloudInitRecord? CloudInit { get; init; }

    public string BootArgs { get; init; } = string.Empty;

    public string RestartPolicy { get; init; } = RestartPolicies.OnFailure;

    public IReadOnlyList<VmNetwork> Networks { get; init; } = [];

    public RateLimit DiskLimits { get; init; } = new();

    public RateLimit NicLimits { get; init; } = new();

    public bool Balloon { get; init; }

    public long BalloonMib { get; init; }

    /// <summary>The VMM's process id while it runs.</summary>
    public int? Pid { get; init; }

    /// <summary>The VMM process's start time (clock ticks since boot, /proc/PID/stat field 22): tells a reused pid apart.</summary>
    public long? PidStartTicks { get; init; }

    /// <summary>The uid and gid its jailed VMM runs as while it runs (null: not jailed).</summary>
    public int? JailId { get; init; }

    public DateTimeOffset? StartedAt { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Automatic restarts since the user last started it.</summary>
    public int Restarts { get; init; }

    public VmExit? LastExit { get; init; }
}
