namespace HostVM.Cli.Api;

/// <summary>An image in the daemon's store: a kernel, an optional initrd and disk, default boot arguments.</summary>
public sealed record Image
{
    public string Name { get; init; } = string.Empty;

    /// <summary>The project it belongs to.</summary>
    public string Project { get; init; } = string.Empty;

    public string BootArgs { get; init; } = string.Empty;

    public string Description { get; init; } = string.Empty;

    public long KernelBytes { get; init; }

    public long? InitrdBytes { get; init; }

    public long? FirmwareBytes { get; init; }

    public long? DiskBytes { get; init; }

    public DateTimeOffset? CreatedAt { get; init; }
}
