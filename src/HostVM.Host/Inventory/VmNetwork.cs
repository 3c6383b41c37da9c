namespace HostVM.Host.Inventory;

/// <summary>One NIC of a VM: the network it is on and its MAC.</summary>
public sealed record VmNetwork(string Network, string Mac);
