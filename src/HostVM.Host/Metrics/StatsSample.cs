namespace HostVM.Host.Metrics;

/// <summary>One entry of a VM's history: the sampler's reading and the rates since its previous one (null for the first).</summary>
public sealed record StatsSample(StatsCounters Counters, StatsRates? Rates);
