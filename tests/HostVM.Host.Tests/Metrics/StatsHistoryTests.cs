using HostVM.Host.Metrics;

namespace HostVM.Host.Tests.Metrics;

/// <summary>The per-VM ring: bounded, oldest first, rates between neighbours, a base for fresh rates.</summary>
public sealed class StatsHistoryTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 24, 10, 0, 0, TimeSpan.Zero);

    private static StatsCounters Reading(int second) => new()
    {
        At = T0.AddSeconds(second),
        UptimeMs = second * 1000L,
        InstructionsRetired = (ulong)second * 2_000_000,
    };

    [Fact]
    public void TheRingKeepsTheNewestCapacitySamplesOldestFirst()
    {
        var history = new StatsHistory(360);
        for (int i = 0; i < 1000; i++)
        {
            history.Add(Reading(i * 10));
        }

        var samples = history.Samples();
        Assert.Equal(360, samples.Count);
        Assert.Equal(360, history.Count);
        Assert.Equal(T0.AddSeconds(640 * 10), samples[0].Counters.At);
        Assert.Equal(T0.AddSeconds(999 * 10), samples[^1].Counters.At);
        Assert.Equal(samples.OrderBy(s => s.Counters.At), samples);
        Assert.Equal(samples[^1], history.Latest);
        Assert.All(samples, s => Assert.Equal(2, s.Rates!.Mips, 6));
    }

    [Fact]
    public void TheFirstSampleHasNoRatesAndSinceFilters()
    {
        var history = new StatsHistory(10);
        Assert.Null(history.Latest);
        Assert.Empty(history.Samples());
        history.Add(Reading(0));
        history.Add(Reading(10));
        history.Add(Reading(20));
        Assert.Null(history.Samples()[0].Rates);
        Assert.Equal(10_000, history.Samples()[1].Rates!.IntervalMs);
        Assert.Equal([T0.AddSeconds(10), T0.AddSeconds(20)], history.Samples(T0.AddSeconds(10)).Select(s => s.Counters.At));
        Assert.Empty(history.Samples(T0.AddSeconds(21)));
    }

    [Fact]
    public void TheBaseIsTheNewestReadingOldEnoughAndFreshReadingsCountWithoutBecomingSamples()
    {
        var history = new StatsHistory(10);
        history.Add(Reading(0));
        history.Remember(Reading(8));
        history.Remember(Reading(9));
        Assert.Single(history.Samples()); // remembered readings are not samples
        Assert.Equal(T0.AddSeconds(8), history.BaseFor(T0.AddSeconds(9.5), TimeSpan.FromSeconds(1))!.At);
        Assert.Equal(T0.AddSeconds(9), history.BaseFor(T0.AddSeconds(10), TimeSpan.FromSeconds(1))!.At);
        Assert.Null(history.BaseFor(T0.AddSeconds(0.5), TimeSpan.FromSeconds(1)));
    }

    [Fact]
    public void OnlyTheLastFewReadingsAreKeptAsBases()
    {
        var history = new StatsHistory(1);
        for (int i = 0; i < 100; i++)
        {
            history.Remember(Reading(i));
        }

        // The oldest kept is 100 - RecentReadings; anything asked to be older than that has no base.
        Assert.Equal(T0.AddSeconds(100 - StatsHistory.RecentReadings), history.BaseFor(T0.AddSeconds(99), TimeSpan.FromSeconds(99 - (100 - StatsHistory.RecentReadings)))!.At);
        Assert.Null(history.BaseFor(T0.AddSeconds(99), TimeSpan.FromSeconds(99 - (100 - StatsHistory.RecentReadings) + 1)));
    }
}
