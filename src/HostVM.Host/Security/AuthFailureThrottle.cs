namespace HostVM.Host.Security;

/// <summary>
/// Slows down guessing: counts failed authentications per remote address over a sliding window; past
/// <see cref="Limit"/> in the window, each further failure is answered late (<see cref="Delay"/>) and with
/// 429 and Retry-After. Valid tokens from the same address are not affected. The table is bounded.
/// </summary>
public sealed class AuthFailureThrottle(int limit, TimeSpan window, TimeProvider? time = null)
{
    public const int MaxAddresses = 10_000;

    private readonly Dictionary<string, Queue<long>> _failures = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();
    private readonly TimeProvider _time = time ?? TimeProvider.System;

    public int Limit { get; } = limit;

    public TimeSpan Window { get; } = window;

    public static TimeSpan Delay { get; } = TimeSpan.FromSeconds(1);

    /// <summary>Records a failure from <paramref name="remote"/>; returns how long to wait before retrying when over the limit, else null.</summary>
    public TimeSpan? Fail(string remote)
    {
        long now = _time.GetTimestamp();
        lock (_lock)
        {
            if (!_failures.TryGetValue(remote, out var times))
            {
                if (_failures.Count >= MaxAddresses)
                {
                    Prune(now);
                }

                _failures[remote] = times = new Queue<long>();
            }

            Expire(times, now);
            times.Enqueue(now);
            if (times.Count <= Limit)
            {
                return null;
            }

            // Retry when the oldest failure in the window leaves it.
            var retry = Window - _time.GetElapsedTime(times.Peek(), now);
            return retry > TimeSpan.Zero ? retry : TimeSpan.FromSeconds(1);
        }
    }

    private void Expire(Queue<long> times, long now)
    {
        while (times.Count > 0 && _time.GetElapsedTime(times.Peek(), now) > Window)
        {
            times.Dequeue();
        }

        while (times.Count > Limit + 1)
        {
            times.Dequeue(); // past the limit only the newest matter: memory stays bounded under a flood
        }
    }

    private void Prune(long now)
    {
        foreach (var (remote, times) in _failures.ToList())
        {
            Expire(times, now);
            if (times.Count == 0)
            {
                _failures.Remove(remote);
            }
        }

        if (_failures.Count >= MaxAddresses)
        {
            _failures.Clear(); // a flood from many addresses: forget rather than grow
        }
    }
}
