namespace HostVM.Host.Api;

/// <summary>PUT /v1/networks/{name}/egress: the whole list of destinations the network's NAT may reach besides the public internet.</summary>
public sealed record SetEgressRequest
{
    /// <summary><c>ADDRESS[/PREFIX][:PORT]</c> each, e.g. <c>10.1.2.3:5432</c> or <c>192.168.50.0/24</c>; empty or absent: none.</summary>
    public IReadOnlyList<string>? Allow { get; init; }
}
