using System.Text.Json.Serialization;

namespace HostVM.Host.Inventory;

/// <summary>
/// A disk in a pool: a file named after it (<c>NAME.qcow2</c> or <c>NAME.raw</c>), never a path the caller gave. A qcow2
/// volume may be an overlay on another volume of its project (<see cref="Backing"/>), which then may not change while it has one.
/// </summary>
public sealed record VolumeRecord
{
    public required string Pool { get; init; }

    public required string Name { get; init; }

    public string Project { get; init; } = ProjectRecord.Default;

    /// <summary><c>qcow2</c> or <c>raw</c>: recorded when it is made, never probed (a raw volume holds whatever its guest wrote).</summary>
    public required string Format { get; init; }

    /// <summary>The size its guest sees, in bytes (a multiple of 512).</summary>
    public long SizeBytes { get; init; }

    /// <summary>The volume (<c>POOL/NAME</c>) a qcow2 overlay reads what it has not written from.</summary>
    public string? Backing { get; init; }

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary><c>POOL/NAME</c>: how the API, the CLI and VMs name it.</summary>
    [JsonIgnore]
    public string Key => KeyOf(Pool, Name);

    /// <summary>The file in its pool's directory.</summary>
    [JsonIgnore]
    public string FileName => FileNameOf(Name, Format);

    public static string KeyOf(string pool, string name) => $"{pool}/{name}";

    public static string FileNameOf(string name, string format) => $"{name}.{(format == "qcow2" ? "qcow2" : "raw")}";
}
