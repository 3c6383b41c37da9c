namespace HostVM.Host.Inventory;

/// <summary>Something that happened to a VM (or the host, with no VM); Project is the VM's or network's (null: the host's).</summary>
public sealed record EventRecord(long Id, DateTimeOffset At, string? Vm, string Type, string Message, string? Project = null);
