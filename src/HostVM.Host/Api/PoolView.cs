namespace HostVM.Host.Api;

/// <summary>
/// A pool as the API shows it: its file system's capacity and free bytes, and what the caller's volumes in it allocate
/// (a project's token counts its own volumes only, and does not see the host path).
/// </summary>
public sealed record PoolView(
    string Name, string Driver, string? Path, string Description, long? CapacityBytes, long? AvailableBytes, long AllocatedBytes, int Volumes, DateTimeOffset CreatedAt,
    string? Address = null);
