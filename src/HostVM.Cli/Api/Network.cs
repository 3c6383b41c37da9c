namespace HostVM.Cli.Api;

/// <summary>A network (a switch in the daemon) and the VMs attached to it.</summary>
public sealed record Network
{
    public string Name { get; init; } = string.Empty;

    /// <summary>The project it belongs to.</summary>
    public string Project { get; init; } = string.Empty;

    public bool Nat { get; init; }

    public IReadOnlyList<string> Vms { get; init; } = [];

    public DateTimeOffset? CreatedAt { get; init; }

    /// <summary>Destinations its NAT may reach besides the public internet (the host's admin sets them).</summary>
    public IReadOnlyList<string> EgressAllow { get; init; } = [];
}
