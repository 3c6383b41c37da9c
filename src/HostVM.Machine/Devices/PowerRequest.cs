namespace HostVM.Machine.Devices;

/// <summary>A guest request to power off, reboot or stop with a failure; <see cref="ExitCode"/> is 0 except for <see cref="PowerAction.Fail"/>.</summary>
public sealed record PowerRequest(PowerAction Action, int ExitCode);
