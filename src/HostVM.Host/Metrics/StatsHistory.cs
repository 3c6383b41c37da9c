namespace HostVM.Host.Metrics;

/// <summary>
/// One VM's recent past, in memory: a ring of the sampler's last <see cref="Capacity"/> samples (oldest
/// dropped first), and the last few readings of any kind (the sampler's and the API's fresh ones), from
/// which the API picks the base its rates are measured from. Thread-safe.
/// </summary>
public sealed class StatsHistory
{
    /// <summary>How many readings are kept to measure fresh rates from.</summary>
    public const int RecentReadings = 16;

    private readonly StatsSample[] _ring;
    private readonly StatsCounters?[] _recent = new StatsCounters?[RecentReadings];
    private readonly Lock _lock = new();
    private int _next;
    private int _count;
    private int _recentNext;

    public StatsHistory(int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _ring = new StatsSample[capacity];
    }

    public int Capacity => _ring.Length;

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _count;
            }
        }
    }

    /// <summary>Adds a sampler reading: it becomes a sample (with the rates since the previous sample) and a recent reading.</summary>
    public StatsSample Add(StatsCounters counters)
    {
        ArgumentNullException.ThrowIfNull(counters);
        lock (_lock)
        {
            var previous = _count == 0 ? null : _ring[(_next - 1 + _ring.Length) % _ring.Length];
            var sample = new StatsSample(counters, previous is null ? null : StatsRates.Between(previous.Counters, counters));
            _ring[_next] = sample;
            _next = (_next + 1) % _ring.Length;
            _count = Math.Min(_count + 1, _ring.Length);
            RememberLocked(counters);
            return sample;
        }
    }

    /// <summary>Keeps a reading taken outside the sampler (a fresh one for the API) as a base for later rates.</summary>
    public void Remember(StatsCounters counters)
    {
        ArgumentNullException.ThrowIfNull(counters);
        lock (_lock)
        {
            RememberLocked(counters);
        }
    }

    /// <summary>The newest reading at least <paramref name="minAge"/> older than <paramref name="now"/>, or null.</summary>
    public StatsCounters? BaseFor(DateTimeOffset now, TimeSpan minAge)
    {
        lock (_lock)
        {
            return _recent.Where(r => r is not null && now - r.At >= minAge).MaxBy(r => r!.At);
        }
    }

    /// <summary>The samples taken at or after <paramref name="since"/> (all if null), oldest first.</summary>
    public IReadOnlyList<StatsSample> Samples(DateTimeOffset? since = null)
    {
        lock (_lock)
        {
            var list = new List<StatsSample>(_count);
            for (int i = 0; i < _count; i++)
            {
                var sample = _ring[(_next - _count + i + _ring.Length) % _ring.Length];
                if (since is null || sample.Counters.At >= since)
                {
                    list.Add(sample);
                }
            }

            return list;
        }
    }

    /// <summary>The newest sample, or null before the first.</summary>
    public StatsSample? Latest
    {
        get
        {
            lock (_lock)
            {
                return _count == 0 ? null : _ring[(_next - 1 + _ring.Length) % _ring.Length];
            }
        }
    }

    private void RememberLocked(StatsCounters counters)
    {
        _recent[_recentNext] = counters;
        _recentNext = (_recentNext + 1) % _recent.Length;
    }
}
