namespace HostVM.Cli.Api;

/// <summary>One line of GET /v1/events: something that happened to a VM (or the host, with no VM).</summary>
public sealed record VmEvent
{
    public long Id { get; init; }

    public DateTimeOffset At { get; init; }

    public string? Vm { get; init; }

    public string Type { get; init; } = string.Empty;

    public string Message { get; init; } = string.Empty;
}
