namespace HostVM.Cli;

/// <summary>A --drive/--net/... value that cannot be used; the message names the option and the fix.</summary>
public sealed class DeviceOptionException(string message) : Exception(message);
