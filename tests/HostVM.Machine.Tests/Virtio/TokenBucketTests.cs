using System.Diagnostics;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

public sealed class TokenBucketTests
{
    private static readonly long Second = Stopwatch.Frequency;

    [Fact]
    public void Request_within_the_bucket_passes_and_takes_tokens()
    {
        var b = new TokenBucket(new TokenBucketSettings(1000, TimeSpan.FromSeconds(1)), 0);
        Assert.Equal(0, b.TicksUntil(600, 0));
        b.Take(600);
        Assert.Equal(400, b.Available(0));
    }

    [Fact]
    public void Wait_is_exact_for_the_missing_tokens()
    {
        var settings = new TokenBucketSettings(1000, TimeSpan.FromSeconds(2)); // 500 tokens/s
        var b = new TokenBucket(settings, 0);
        b.Take(900);
        long wait = b.TicksUntil(350, 0); // 250 missing at 500/s = 0.5 s
        Assert.Equal(Second / 2, wait);

        var before = new TokenBucket(settings, 0);
        before.Take(900);
        Assert.True(before.TicksUntil(350, wait - 1) > 0);
        Assert.Equal(0, b.TicksUntil(350, wait));
    }

    [Fact]
    public void Large_request_passes_when_full_and_leaves_debt()
    {
        var b = new TokenBucket(new TokenBucketSettings(1000, TimeSpan.FromSeconds(1)), 0);
        Assert.Equal(0, b.TicksUntil(3000, 0));
        b.Take(3000);
        Assert.Equal(-2000, b.Available(0));
        Assert.Equal(3 * Second, b.TicksUntil(1000, 0)); // the debt, then the bucket refills
        Assert.Equal(3 * Second, b.TicksUntil(3000, 0)); // a big one waits for a full bucket, debt paid
        Assert.Equal(0, b.TicksUntil(3000, 3 * Second));
    }

    [Fact]
    public void One_time_burst_is_used_once()
    {
        var b = new TokenBucket(new TokenBucketSettings(100, TimeSpan.FromSeconds(1), OneTimeBurst: 500), 0);
        Assert.Equal(600, b.Available(0));
        Assert.Equal(0, b.TicksUntil(600, 0));
        b.Take(600);
        Assert.Equal(0, b.Available(0));
        Assert.Equal(100, b.Available(10 * Second)); // refills to the size, never to the burst
        Assert.True(b.TicksUntil(101, 10 * Second) == 0); // full: a larger request may go (into debt)
        b.Take(101);
        Assert.Equal(-1, b.Available(10 * Second), 6);
    }

    [Theory]
    [InlineData(1000L, 1000L, 100L)]
    [InlineData(1000L, 1000L, 333L)]   // does not divide the bucket
    [InlineData(1000L, 1000L, 999L)]
    [InlineData(1000L, 1000L, 2500L)]  // larger than the bucket
    [InlineData(65536L, 100L, 4096L)]
    [InlineData(10_000_000L, 1000L, 1_048_577L)]
    public void Achieved_rate_over_a_long_run_is_size_per_refill_time(long size, long refillMs, long request)
    {
        var settings = new TokenBucketSettings(size, TimeSpan.FromMilliseconds(refillMs));
        var b = new TokenBucket(settings, 0);
        long now = 0, spent = 0;
        long end = (long)(2000 * settings.RefillTime.TotalSeconds * Second) + (2000 * request / size * (long)(settings.RefillTime.TotalSeconds * Second)); // ≥ 2000 refills, ≥ 2000 requests' worth
        int requests = 0;
        while (now < end)
        {
            long wait = b.TicksUntil(request, now);
            if (wait > 0)
            {
                now += wait;
                continue;
            }

            b.Take(request);
            spent += request;
            requests++;
        }

        double rate = (spent - size) / ((double)now / Second); // the first bucketful is free
        Assert.True(Math.Abs(rate - settings.Rate) / settings.Rate < 0.01, $"rate {rate:F1}/s, configured {settings.Rate:F1}/s after {requests} requests");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void A_restored_bucket_on_another_clock_answers_as_the_saved_one(int seed)
    {
        // Random takes and refills, a save, a restore on a clock that started 1000 s elsewhere, then both
        // must answer the same questions alike at the same times after the save.
        var random = new Random(seed);
        var settings = new TokenBucketSettings(random.Next(100, 10_000), TimeSpan.FromMilliseconds(random.Next(10, 5000)), random.Next(0, 5000));
        var a = new TokenBucket(settings, 0);
        long now = 0;
        for (int i = 0; i < 200; i++)
        {
            now += random.Next(0, (int)(Second / 100));
            double tokens = random.Next(1, 3 * (int)settings.Size);
            if (a.TicksUntil(tokens, now) == 0)
            {
                a.Take(tokens);
            }
        }

        var saved = a.SaveState(now + (Second / 10)); // saved a while after the last refill
        long elsewhere = 1000 * Second;
        var b = new TokenBucket(settings, elsewhere);
        b.RestoreState(saved, elsewhere);
        for (int i = 0; i < 200; i++)
        {
            long after = random.Next(0, (int)Second);
            double tokens = random.Next(1, 3 * (int)settings.Size);
            long waitA = a.TicksUntil(tokens, now + (Second / 10) + after);
            long waitB = b.TicksUntil(tokens, elsewhere + after);
            Assert.InRange(waitB, waitA - 2, waitA + 2);
            if (waitA == 0 && waitB == 0)
            {
                a.Take(tokens);
                b.Take(tokens);
            }

            now += after;
            elsewhere += after;
        }
    }
}
