using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-rng: buffers of every size, readable ones, empty ones.</summary>
internal sealed class FuzzRngTarget : FuzzTarget
{
    private readonly VirtioRng _rng = new();

    public override VirtioDevice Device => _rng;

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        var segments = new List<DescriptorSegment>();
        int n = r.Next(1, 5);
        for (int i = 0; i < n; i++)
        {
            uint length = r.Next(4) switch
            {
                0 => 0,
                1 => (uint)r.Next(VirtioRng.MaxRequest - 8, VirtioRng.MaxRequest + 4096),
                _ => (uint)r.Next(1, 4096),
            };
            segments.Add(r.Next(8) == 0 ? guest.RandomSegment() : guest.RandomBytes(length, writable: r.Next(5) != 0));
        }

        return new FuzzRequest(0, segments);
    }

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        long before = _rng.BytesProvided;
        var buffer = guest.Driver.Buffer(64);
        var used = guest.Driver.Submit(0, [], [buffer], indirect: batch % 2 == 1);
        Assert.Equal(64u, used.Written);
        Assert.Equal(before + 64, _rng.BytesProvided);
        Assert.Contains(guest.Driver.Contents(buffer), b => b != 0);
    }
}
