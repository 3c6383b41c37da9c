namespace HostVM.Host.Inventory;

/// <summary>
/// A named place for volumes. Driver <c>dir</c>: files in <see cref="Path"/> (the default pool is in the data directory).
/// Driver <c>nbd</c>: the exports of the NBD server at <see cref="Address"/>, each a raw volume of that name.
/// Pools are the host's (made by its admin: a pool names a host path or address); volumes in them belong to projects.
/// </summary>
public sealed record PoolRecord
{
    public const string Default = "default";
    public const string DirDriver = "dir";
    public const string NbdDriver = "nbd";

    public required string Name { get; init; }

    public required string Driver { get; init; }

    /// <summary>The directory of a <c>dir</c> pool.</summary>
    public string? Path { get; init; }

    /// <summary>HOST:PORT of an <c>nbd</c> pool's server.</summary>
    public string? Address { get; init; }

    public string Description { get; init; } = string.Empty;

    public DateTimeOffset CreatedAt { get; init; }
}
