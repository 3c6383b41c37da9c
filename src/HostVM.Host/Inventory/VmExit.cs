namespace HostVM.Host.Inventory;

/// <summary>How a VM's last run ended.</summary>
public sealed record VmExit(string Reason, int? ExitCode, string Message, DateTimeOffset At);
