namespace HostVM.Cli;

/// <summary>A command-line value that cannot be used (exit code 2); the message names the option and the fix.</summary>
public sealed class UsageException(string message) : Exception(message);
