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

    [Fact]
    public void The_bytes_it_writes_mark_their_pages_dirty_and_a_buffer_it_only_reads_does_not()
    {
        using var rig = new VirtioRig(new VirtioRng());
        var d = rig.Driver;
        d.Initialize();
        var readable = d.Buffer(4096, align: 4096);
        var written = d.Buffer(4096 + 16, align: 4096); // a whole page and 16 bytes of the next
        rig.Ram.DirtyPages.Enable();
        Assert.Equal(4112u, d.Submit(0, [readable], [written]).Written);

        var set = new HostVM.Machine.Memory.DirtyPageSet(rig.Ram.DirtyPages.PageCount);
        rig.Ram.DirtyPages.TakeInto(set);
        int PageOf(ulong address) => (int)((address - rig.Ram.BaseAddress) / 4096);
        Assert.True(set.Contains(PageOf(written.Address)) && set.Contains(PageOf(written.Address) + 1), "the written pages are not marked");
        Assert.False(set.Contains(PageOf(readable.Address)), "a page the device only read is marked");
    }
}
