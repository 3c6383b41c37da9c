using System.Buffers.Binary;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>virtio-input: event buffers of every size and direction, random status events, presses at any time.</summary>
internal sealed class FuzzInputTarget : FuzzTarget
{
    private readonly VirtioInput _input = new();

    public override VirtioDevice Device => _input;

    public override FuzzRequest MalformedRequest(FuzzGuest guest)
    {
        var r = guest.Random;
        int queue = r.Next(2);
        var segments = new List<DescriptorSegment>();
        int n = r.Next(1, 4);
        for (int i = 0; i < n; i++)
        {
            uint length = r.Next(4) switch
            {
                0 => (uint)r.Next(0, InputEvent.Size),     // too small for an event
                1 => InputEvent.Size,
                _ => (uint)r.Next(0, 300),
            };
            bool writable = queue == 0 ? r.Next(5) != 0 : r.Next(5) == 0;
            segments.Add(r.Next(8) == 0 ? guest.RandomSegment() : guest.RandomBytes(length, writable));
        }

        return new FuzzRequest(queue, segments);
    }

    public override void HostEvent(FuzzGuest guest) => _input.PressPowerButton();

    public override void CheckLive(FuzzGuest guest, int batch)
    {
        var d = guest.Driver;
        var q = d.Queue(0);

        // Presses from the batch may still wait: let them out first, one buffer each.
        for (int left = _input.PendingEvents; left > 0; left--)
        {
            q.Add([], [d.Buffer(InputEvent.Size, 8)]);
            d.Kick(0);
            Assert.Equal((uint)InputEvent.Size, d.WaitUsed(0).Written);
        }

        Assert.Equal(0, _input.PendingEvents);
        Assert.True(_input.PressPowerButton());
        var events = new List<(ushort, ushort, uint)>();
        for (int i = 0; i < 4; i++)
        {
            var buffer = d.Buffer(InputEvent.Size, 8);
            q.Add([], [buffer]);
            d.Kick(0);
            Assert.Equal((uint)InputEvent.Size, d.WaitUsed(0).Written);
            var bytes = d.Contents(buffer);
            events.Add((BinaryPrimitives.ReadUInt16LittleEndian(bytes), BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4))));
        }

        Assert.Equal([(1, 116, 1u), (0, 0, 0u), (1, 116, 0u), (0, 0, 0u)], events);
    }

    public override void CheckExercised(FuzzGuest guest)
    {
        Assert.True(_input.ShortBuffers > 0, $"seed 0x{guest.Seed:x}: no event buffer was ever too small");
        Assert.True(_input.EventsDelivered > 0, $"seed 0x{guest.Seed:x}: no event was ever delivered");
    }
}
