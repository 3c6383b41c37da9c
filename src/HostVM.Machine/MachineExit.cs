namespace HostVM.Machine;

/// <summary>How a machine ended. <see cref="ExitCode"/> is what a process running it should exit with.</summary>
public sealed record MachineExit(MachineExitReason Reason, int ExitCode, string Message);
