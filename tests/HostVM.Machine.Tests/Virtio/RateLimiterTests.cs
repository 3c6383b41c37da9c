using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

public sealed class RateLimiterTests
{
    /// <summary>Zero when the request went, else the wait the limiter asked for (never zero).</summary>
    private static TimeSpan Consume(RateLimiter l, long bytes)
    {
        if (l.TryConsume(bytes, out var wait))
        {
            return TimeSpan.Zero;
        }

        Assert.True(wait > TimeSpan.Zero, "a refusal must come with a positive wait");
        return wait;
    }

    [Fact]
    public void Unlimited_never_waits()
    {
        var l = new RateLimiter();
        for (int i = 0; i < 1000; i++)
        {
            Assert.Equal(TimeSpan.Zero, Consume(l, 1 << 30));
        }

        Assert.Equal(0, l.Throttled);
    }

    [Fact]
    public void Bandwidth_bucket_makes_the_next_request_wait_for_its_bytes()
    {
        var l = new RateLimiter(new RateLimitSettings(new TokenBucketSettings(1000, TimeSpan.FromSeconds(10)), null));
        Assert.Equal(TimeSpan.Zero, Consume(l, 1000));
        var wait = Consume(l, 500); // 500 bytes at 100 B/s: 5 s, less the little time that passed
        Assert.InRange(wait.TotalSeconds, 4.9, 5.0);
        Assert.Equal(1, l.Throttled);
    }

    [Fact]
    public void Operations_bucket_counts_requests_not_bytes()
    {
        var l = new RateLimiter(new RateLimitSettings(null, new TokenBucketSettings(2, TimeSpan.FromSeconds(10))));
        Assert.Equal(TimeSpan.Zero, Consume(l, 1 << 20));
        Assert.Equal(TimeSpan.Zero, Consume(l, 1 << 20));
        Assert.InRange(Consume(l, 1).TotalSeconds, 4.9, 5.0);
    }

    [Fact]
    public void A_request_that_must_wait_takes_nothing_from_either_bucket()
    {
        var l = new RateLimiter(new RateLimitSettings(
            new TokenBucketSettings(1000, TimeSpan.FromSeconds(10)),
            new TokenBucketSettings(1, TimeSpan.FromSeconds(100))));
        Assert.Equal(TimeSpan.Zero, Consume(l, 10));
        Assert.True(Consume(l, 10) > TimeSpan.FromSeconds(90)); // ops empty
        l.Update(new RateLimitSettings(new TokenBucketSettings(1000, TimeSpan.FromSeconds(10)), null));
        Assert.Equal(TimeSpan.Zero, Consume(l, 1000)); // update refilled; the refused request took no bytes
    }

    [Fact]
    public void Bad_settings_are_refused_with_the_field_named()
    {
        var l = new RateLimiter();
        var e = Assert.Throws<ArgumentException>(() => l.Update(new RateLimitSettings(new TokenBucketSettings(0, TimeSpan.FromSeconds(1)), null)));
        Assert.Contains("bandwidth", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => l.Update(new RateLimitSettings(null, new TokenBucketSettings(1, TimeSpan.Zero))));
    }

    [Fact]
    public void Throttled_block_device_still_completes_its_requests()
    {
        using var disk = new TempDisk(64 * 1024);
        var block = new VirtioBlock(
            HostVM.Storage.RawFileBlockDevice.Open(disk.Path, readOnly: false),
            new RateLimitSettings(null, new TokenBucketSettings(5, TimeSpan.FromMilliseconds(100))));
        using var rig = new VirtioRig(block);
        var d = rig.Driver;
        d.Initialize();
        var header = d.Buffer(16);
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int i = 0; i < 15; i++)
        {
            var status = d.Buffer(1);
            d.Submit(0, [header], [d.Buffer(512), status]); // header is zeroed: a read of sector 0
            Assert.Equal(VirtioBlock.StatusOk, d.Contents(status)[0]);
        }

        // 15 requests at 50/s with 5 in the bucket: at least 10 had to wait 20 ms each.
        Assert.True(sw.Elapsed >= TimeSpan.FromMilliseconds(190), $"took {sw.Elapsed.TotalMilliseconds} ms, throttled {block.Limiter.Throttled}, reads {block.Statistics.Reads}");
        Assert.True(block.Limiter.Throttled > 0);
    }
}
