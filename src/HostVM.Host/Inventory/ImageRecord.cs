namespace HostVM.Host.Inventory;

/// <summary>An image: a kernel, an optional initrd and disk, and default boot arguments.</summary>
public sealed record ImageRecord
{
    public required string Name { get; init; }

    public string Project { get; init; } = ProjectRecord.Default;

    public string BootArgs { get; init; } = string.Empty;

    public string Description { get; init; } = string.Empty;

    public long KernelBytes { get; init; }

    public long? InitrdBytes { get; init; }

    public long? DiskBytes { get; init; }

    public long? FirmwareBytes { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}
