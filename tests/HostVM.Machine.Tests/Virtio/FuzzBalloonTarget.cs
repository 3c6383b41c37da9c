using System.Buffers.Binary;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-balloon: random PFNs (in RAM, at its edges, far outside), odd lengths, random statistics.</summary>
internal sealed class FuzzBalloonTarget : FuzzTarget
{
    private readonly VirtioBalloon _balloon = new();

    public override VirtioDevice Device => _balloon;

    public override bool MayZeroPages => true;

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        int queue = r.Next(3);
        var segments = new List<DescriptorSegment>();
        if (queue == 2)
        {
            // Statistics: random tags and values, any length.
            segments.Add(guest.RandomBytes((uint)(r.Next(2) == 0 ? r.Next(0, 200) : 10 * r.Next(0, 12)), writable: r.Next(8) == 0));
            return new FuzzRequest(queue, segments);
        }

        ulong first = guest.Ram.BaseAddress >> 12, pages = guest.Ram.Size >> 12;
        int count = r.Next(0, 300);
        var pfns = new byte[(4 * count) + (r.Next(4) == 0 ? r.Next(1, 4) : 0)];
        for (int i = 0; i < count; i++)
        {
            uint pfn = r.Next(6) switch
            {
                0 => (uint)r.Next() | ((uint)r.Next(2) << 31),
                1 => (uint)(first - 1),
                2 => (uint)(first + pages),
                3 => r.Next(2) == 0 ? 0 : uint.MaxValue,
                _ => (uint)(first + (ulong)r.Next((int)pages)), // any page of RAM, rings and canary included
            };
            BinaryPrimitives.WriteUInt32LittleEndian(pfns.AsSpan(4 * i), pfn);
        }

        ulong at = guest.ScratchWith(pfns);
        if (pfns.Length > 8 && r.Next(3) == 0)
        {
            uint split = (uint)r.Next(1, pfns.Length);
            segments.Add(new DescriptorSegment(at, split, false));
            segments.Add(new DescriptorSegment(at + split, (uint)pfns.Length - split, false));
        }
        else
        {
            segments.Add(new DescriptorSegment(at, (uint)pfns.Length, false));
        }

        if (r.Next(8) == 0)
        {
            segments.Add(r.Next(2) == 0 ? guest.RandomSegment() : guest.RandomBytes((uint)r.Next(0, 64), writable: true));
        }

        return new FuzzRequest(queue, segments);
    }

    public override void HostEvent(FuzzGuest guest)
    {
        if (guest.Random.Next(2) == 0)
        {
            _balloon.SetTarget((ulong)guest.Random.NextInt64());
        }
        else
        {
            _balloon.RequestStatistics();
        }
    }

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        var d = guest.Driver;
        var victim = d.Buffer((uint)GuestRam.PageSize, GuestRam.PageSize);
        d.Fill(victim, Enumerable.Repeat((byte)0xa5, (int)GuestRam.PageSize).ToArray());
        var pfn = d.Buffer(4, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(d.Ram.GetSpan(pfn.Address, 4), (uint)(victim.Address >> 12));
        long before = _balloon.PagesReturned;
        d.Submit(0, [pfn], [], indirect: batch % 2 == 1);
        Assert.Equal(before + 1, _balloon.PagesReturned);
        Assert.All(d.Contents(victim), b => Assert.Equal(0, b));
    }

    public override void CheckExercised(FuzzGuest guest) =>
        Assert.True(_balloon.PagesReturned > 0, $"seed 0x{guest.Seed:x}: no random inflate ever gave a page back");
}
