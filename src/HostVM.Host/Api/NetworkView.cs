namespace HostVM.Host.Api;

/// <summary>A network as the API shows it: with the VMs attached, what its NAT may reach beyond the public internet, and its port forwards.</summary>
public sealed record NetworkView(string Name, string Project, bool Nat, IReadOnlyList<string> Vms, DateTimeOffset CreatedAt, IReadOnlyList<string> EgressAllow, IReadOnlyList<ForwardView> Forwards);
