namespace HostVM.Host.Inventory;

/// <summary>Something that happened to a VM (or the host, with no VM).</summary>
public sealed record EventRecord(long Id, DateTimeOffset At, string? Vm, string Type, string Message);
