namespace HostVM.Cli.Api;

/// <summary>One entry of GET /v1/vms/{vm}/stats/history.</summary>
public sealed record StatsSample
{
    public StatsCounters Counters { get; init; } = new();

    public StatsRates? Rates { get; init; }
}
