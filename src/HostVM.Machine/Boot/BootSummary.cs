namespace HostVM.Machine.Boot;

/// <summary>Where the boot payloads went and how the harts start.</summary>
public sealed record BootSummary(
    ulong Entry,
    ulong DeviceTreeAddress,
    ulong? KernelAddress,
    ulong? InitrdStart,
    ulong? InitrdEnd,
    bool BuiltinFirmware,
    ulong? ToHostAddress);
