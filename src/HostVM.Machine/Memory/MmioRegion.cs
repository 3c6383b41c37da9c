namespace HostVM.Machine.Memory;

/// <summary>A device window on the bus.</summary>
public sealed record MmioRegion(ulong Base, ulong Size, IMmioDevice Device);
