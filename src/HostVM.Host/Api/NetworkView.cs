namespace HostVM.Host.Api;

/// <summary>A network as the API shows it: with the VMs attached.</summary>
public sealed record NetworkView(string Name, string Project, bool Nat, IReadOnlyList<string> Vms, DateTimeOffset CreatedAt);
