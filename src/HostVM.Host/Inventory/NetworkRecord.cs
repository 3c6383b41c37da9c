namespace HostVM.Host.Inventory;

/// <summary>A named host network (a switch in the daemon), optionally with a user-mode NAT uplink.</summary>
public sealed record NetworkRecord
{
    public required string Name { get; init; }

    public string Project { get; init; } = ProjectRecord.Default;

    public bool Nat { get; init; }

    /// <summary>
    /// Destinations (<c>ADDRESS[/PREFIX][:PORT]</c>) the NAT's guests may reach although the default
    /// policy refuses them (the host, loopback, private and link-local ranges); set by the host's admin.
    /// </summary>
    public IReadOnlyList<string> EgressAllow { get; init; } = [];

    public DateTimeOffset CreatedAt { get; init; }

    /// <summary>Host ports forwarded into its VMs (a NAT network's only).</summary>
    public IReadOnlyList<NetworkForward> Forwards
    {
        get => _forwards;

        // A record written before forwards has none: the JSON source generator sets a missing property to null, not to [].
        init => _forwards = value ?? [];
    }

    private readonly IReadOnlyList<NetworkForward> _forwards = [];
}
