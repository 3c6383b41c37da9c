using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioRngTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public void Fills_every_writable_buffer_with_random_bytes(bool legacy, bool indirect)
    {
        var rng = new VirtioRng();
        using var rig = new VirtioRig(rng, legacy);
        var d = rig.Driver;
        d.Initialize();
        GuestBuffer[] bufs = [d.Buffer(100), d.Buffer(4000), d.Buffer(17)];
        var guard = d.Buffer(64);
        var used = d.Submit(0, [], bufs, indirect);
        Assert.Equal(4117u, used.Written);
        Assert.All(bufs, b => Assert.Contains(d.Contents(b), x => x != 0));
        Assert.NotEqual(d.Contents(bufs[0])[..16], d.Contents(bufs[1])[..16]);
        Assert.All(d.Contents(guard), x => Assert.Equal(0, x)); // nothing past the buffers
        Assert.Equal(4117, rng.BytesProvided);
    }

    [Fact]
    public void A_request_with_only_readable_buffers_gets_nothing()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.Initialize();
        var b = d.Buffer(32);
        Assert.Equal(0u, d.Submit(0, [b], []).Written);
        Assert.All(d.Contents(b), x => Assert.Equal(0, x));
    }

    [Fact]
    public void Requests_larger_than_the_maximum_are_capped()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.Initialize();
        var b = d.Buffer(VirtioRng.MaxRequest + 4096);
        Assert.Equal((uint)VirtioRng.MaxRequest, d.Submit(0, [], [b]).Written);
        Assert.All(d.Contents(b)[VirtioRng.MaxRequest..], x => Assert.Equal(0, x));
    }
}
