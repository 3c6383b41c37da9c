namespace HostVM.Host.Inventory;

/// <summary>A named host network (a switch in the daemon), optionally with a user-mode NAT uplink.</summary>
public sealed record NetworkRecord
{
    public required string Name { get; init; }

    public string Project { get; init; } = ProjectRecord.Default;

    public bool Nat { get; init; }

    public DateTimeOffset CreatedAt { get; init; }
}
