namespace HostVM.Cli.Api;

/// <summary>How a VM's last run ended.</summary>
public sealed record VmExit
{
    public string Reason { get; init; } = string.Empty;

    public int? ExitCode { get; init; }

    public string Message { get; init; } = string.Empty;

    public DateTimeOffset? At { get; init; }
}
