using System.Buffers.Binary;
using System.Text;
using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtioInputTests : IDisposable
{
    private static readonly InputEvent[] Press =
    [
        new(InputEvent.TypeKey, InputEvent.KeyPower, 1), new(InputEvent.TypeSync, InputEvent.SyncReport, 0),
        new(InputEvent.TypeKey, InputEvent.KeyPower, 0), new(InputEvent.TypeSync, InputEvent.SyncReport, 0),
    ];

    private readonly VirtioInput _input = new();
    private readonly VirtioRig _rig;
    private readonly Dictionary<ushort, GuestBuffer> _posted = [];

    public VirtioInputTests() => _rig = new VirtioRig(_input);

    public void Dispose() => _rig.Dispose();

    /// <summary>Selects (select, subsel) as Linux does (two byte writes) and reads back size and union.</summary>
    private (int Size, byte[] Union) Query(byte select, byte subsel)
    {
        var d = _rig.Driver;
        d.WriteConfig(VirtioInput.ConfigSelect, 1, select);
        d.WriteConfig(VirtioInput.ConfigSubsel, 1, subsel);
        Assert.Equal(select, (byte)d.ReadConfig(VirtioInput.ConfigSelect, 1));
        Assert.Equal(subsel, (byte)d.ReadConfig(VirtioInput.ConfigSubsel, 1));
        int size = (int)d.ReadConfig(VirtioInput.ConfigAnswerSize, 1);
        var union = new byte[VirtioInput.ConfigUnionSize];
        for (int i = 0; i < union.Length; i += 4)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(union.AsSpan(i), (uint)d.ReadConfig(VirtioInput.ConfigUnion + i, 4));
        }

        return (size, union);
    }

    /// <summary>Offers <paramref name="count"/> event buffers of <paramref name="length"/> bytes and kicks the event queue.</summary>
    private void PostEventBuffers(int count, uint length = InputEvent.Size, bool writable = true)
    {
        var d = _rig.Driver;
        for (int i = 0; i < count; i++)
        {
            var buffer = d.Buffer(length, 8);
            ushort head = writable ? d.Queue(0).Add([], [buffer]) : d.Queue(0).Add([buffer], []);
            _posted[head] = buffer;
        }

        d.Kick(0);
    }

    /// <summary>Takes <paramref name="count"/> used event buffers (bounded wait) and decodes them.</summary>
    private List<(uint Written, InputEvent Event)> TakeEvents(int count)
    {
        var events = new List<(uint, InputEvent)>();
        for (int i = 0; i < count; i++)
        {
            var used = _rig.Driver.WaitUsed(0);
            var bytes = _rig.Driver.Contents(_posted[used.Head]);
            var e = bytes.Length < InputEvent.Size ? default : new InputEvent(
                BinaryPrimitives.ReadUInt16LittleEndian(bytes),
                BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2)),
                BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
            events.Add((used.Written, e));
        }

        return events;
    }

    private void AssertOnePress(List<(uint Written, InputEvent Event)> events)
    {
        Assert.All(events, e => Assert.Equal((uint)InputEvent.Size, e.Written));
        Assert.Equal(Press, events.Select(e => e.Event));
    }

    [Fact]
    public void It_is_a_virtio_input_device_with_two_queues_and_no_features()
    {
        var d = _rig.Driver;
        Assert.Equal(18u, d.Reg(RegDeviceId));
        Assert.Equal(2, _input.QueueCount);
        Assert.Equal(0UL, _input.DeviceFeatures);
        Assert.Equal(136, _input.ConfigSize);
    }

    [Fact]
    public void Config_names_the_device_and_its_serial()
    {
        var (size, union) = Query(VirtioInput.SelectIdName, 0);
        Assert.Equal("HostVM power button", Encoding.ASCII.GetString(union, 0, size));
        Assert.All(union[size..], b => Assert.Equal(0, b));

        (size, union) = Query(VirtioInput.SelectIdSerial, 0);
        Assert.Equal("hostvm-power", Encoding.ASCII.GetString(union, 0, size));
    }

    [Fact]
    public void Config_gives_virtual_bus_ids()
    {
        var (size, union) = Query(VirtioInput.SelectIdDevIds, 0);
        Assert.Equal(8, size);
        Assert.Equal(0x06, BinaryPrimitives.ReadUInt16LittleEndian(union)); // BUS_VIRTUAL
        Assert.Equal(VirtioInput.Vendor, BinaryPrimitives.ReadUInt16LittleEndian(union.AsSpan(2)));
        Assert.Equal(VirtioInput.Product, BinaryPrimitives.ReadUInt16LittleEndian(union.AsSpan(4)));
        Assert.Equal(VirtioInput.Version, BinaryPrimitives.ReadUInt16LittleEndian(union.AsSpan(6)));
    }

    [Fact]
    public void Key_bitmap_has_only_KEY_POWER()
    {
        var (size, union) = Query(VirtioInput.SelectEvBits, (byte)InputEvent.TypeKey);
        Assert.Equal(15, size); // bits 0..119: enough for bit 116
        for (int bit = 0; bit < 8 * union.Length; bit++)
        {
            Assert.Equal(bit == 116, (union[bit / 8] & (1 << (bit % 8))) != 0);
        }
    }

    [Theory]
    [InlineData(VirtioInput.SelectUnset, 0)]
    [InlineData(VirtioInput.SelectIdName, 1)] // the id selects only answer subsel 0
    [InlineData(VirtioInput.SelectIdDevIds, 3)]
    [InlineData(VirtioInput.SelectPropBits, 0)] // no input properties
    [InlineData(VirtioInput.SelectEvBits, 0x00)] // EV_SYN: Linux sets it itself
    [InlineData(VirtioInput.SelectEvBits, 0x02)] // EV_REL
    [InlineData(VirtioInput.SelectEvBits, 0x03)] // EV_ABS
    [InlineData(VirtioInput.SelectEvBits, 0x11)] // EV_LED
    [InlineData(VirtioInput.SelectEvBits, 0x14)] // EV_REP: no autorepeat
    [InlineData(VirtioInput.SelectAbsInfo, 0)]
    [InlineData(0x13, 0)]
    [InlineData(0xff, 0xff)]
    public void Everything_else_answers_size_0_and_an_empty_union(byte select, byte subsel)
    {
        var (size, union) = Query(select, subsel);
        Assert.Equal(0, size);
        Assert.All(union, b => Assert.Equal(0, b));
    }

    [Fact]
    public void The_driver_may_write_select_and_subsel_only()
    {
        var d = _rig.Driver;
        d.WriteConfig(VirtioInput.ConfigSelect, 2, VirtioInput.SelectEvBits | (InputEvent.TypeKey << 8)); // both at once
        Assert.Equal(15UL, d.ReadConfig(VirtioInput.ConfigAnswerSize, 1));
        d.WriteConfig(VirtioInput.ConfigAnswerSize, 1, 99);
        d.WriteConfig(VirtioInput.ConfigUnion, 4, 0xffff_ffff);
        d.WriteConfig(VirtioInput.ConfigUnion + 124, 4, 0xffff_ffff);
        Assert.Equal(15UL, d.ReadConfig(VirtioInput.ConfigAnswerSize, 1));
        Assert.Equal(0UL, d.ReadConfig(VirtioInput.ConfigUnion, 4));
        Assert.Equal(0UL, d.ReadConfig(VirtioInput.ConfigUnion + 124, 4));
        Assert.Equal(0UL, d.ReadConfig(136, 1)); // past the end
    }

    [Fact]
    public void Reset_clears_the_selection()
    {
        Query(VirtioInput.SelectIdName, 0);
        _rig.Driver.Reset();
        Assert.Equal(0UL, _rig.Driver.ReadConfig(VirtioInput.ConfigSelect, 4));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_press_sends_key_down_sync_key_up_sync(bool legacy)
    {
        using var rig = new VirtioRig(new VirtioInput(), legacy);
        var input = (VirtioInput)rig.Device;
        var d = rig.Driver;
        d.Initialize();
        var buffers = Enumerable.Range(0, 6).Select(_ => d.Buffer(InputEvent.Size, 8)).ToArray();
        var heads = buffers.Select(b => d.Queue(0).Add([], [b])).ToArray();
        d.Kick(0);
        Assert.Equal(0, d.Queue(0).PendingUsed); // nothing to say yet: the buffers wait

        Assert.True(input.PressPowerButton());
        var events = new List<InputEvent>();
        for (int i = 0; i < 4; i++)
        {
            var used = d.WaitUsed(0);
            Assert.Equal((uint)InputEvent.Size, used.Written);
            var bytes = d.Contents(buffers[Array.IndexOf(heads, used.Head)]);
            events.Add(new InputEvent(BinaryPrimitives.ReadUInt16LittleEndian(bytes), BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(2)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4))));
        }

        Assert.Equal(Press, events);
        Assert.Equal(0, d.Queue(0).PendingUsed); // two buffers left for the next press
        Assert.True(rig.IrqLine);
        Assert.Equal(MmioTransport.InterruptUsedBuffer, d.AckInterrupts());
        Assert.Equal(1, input.PowerPresses);
        Assert.Equal(4, input.EventsDelivered);
        Assert.Equal(0, input.PendingEvents);
    }

    [Fact]
    public void A_press_before_the_driver_is_up_is_delivered_when_buffers_arrive()
    {
        Assert.True(_input.PressPowerButton()); // before the driver even reset the device
        Assert.Equal(4, _input.PendingEvents);
        var d = _rig.Driver;
        d.Initialize();
        Assert.Equal(4, _input.PendingEvents); // DRIVER_OK, but no buffers yet

        PostEventBuffers(3);
        var first = TakeEvents(3);
        Assert.Equal(1, _input.PendingEvents);
        PostEventBuffers(1);
        AssertOnePress([.. first, .. TakeEvents(1)]);
        Assert.Equal(0, _input.PendingEvents);
    }

    [Fact]
    public void Buffers_offered_under_EVENT_IDX_after_a_press_are_noticed()
    {
        var d = _rig.Driver;
        d.Initialize();
        Assert.NotEqual(0UL, d.Features & VirtioFeatures.RingEventIdx);
        Assert.True(_input.PressPowerButton()); // no buffers: the device asks to be told of the next one
        var q = d.Queue(0);
        for (int i = 0; i < 4; i++)
        {
            ushort old = q.AvailIndex;
            var buffer = d.Buffer(InputEvent.Size, 8);
            _posted[q.Add([], [buffer])] = buffer;
            d.KickIfNeeded(0, old); // as Linux: only when avail_event says so
        }

        AssertOnePress(TakeEvents(4));
    }

    [Fact]
    public void Presses_wait_up_to_the_bound_then_are_refused()
    {
        for (int i = 0; i < VirtioInput.MaxPendingPresses; i++)
        {
            Assert.True(_input.PressPowerButton());
        }

        Assert.False(_input.PressPowerButton());
        Assert.Equal(VirtioInput.MaxPendingPresses, _input.PowerPresses);
        Assert.Equal(4 * VirtioInput.MaxPendingPresses, _input.PendingEvents);

        _rig.Driver.Initialize();
        PostEventBuffers(4);
        AssertOnePress(TakeEvents(4));
        Assert.True(_input.PressPowerButton()); // room again
    }

    [Fact]
    public void Pending_presses_survive_a_reset()
    {
        var d = _rig.Driver;
        d.Initialize();
        Assert.True(_input.PressPowerButton());
        d.Reset();
        d.Initialize();
        PostEventBuffers(4);
        AssertOnePress(TakeEvents(4));
    }

    [Theory]
    [InlineData(0u, true)]
    [InlineData(4u, true)]
    [InlineData(7u, true)]
    [InlineData(8u, false)] // device-readable: nowhere to write
    public void A_buffer_too_small_for_an_event_goes_back_empty_and_the_event_waits(uint length, bool writable)
    {
        var d = _rig.Driver;
        d.Initialize();
        PostEventBuffers(1, length, writable);
        Assert.True(_input.PressPowerButton());
        var bad = d.WaitUsed(0);
        Assert.Equal(0u, bad.Written);
        Assert.Equal(1, _input.ShortBuffers);
        Assert.Equal(4, _input.PendingEvents);
        Assert.Null(_rig.Transport.Error);

        PostEventBuffers(4);
        AssertOnePress(TakeEvents(4));
    }

    [Fact]
    public void A_larger_buffer_gets_one_event()
    {
        var d = _rig.Driver;
        d.Initialize();
        PostEventBuffers(4, 64);
        Assert.True(_input.PressPowerButton());
        AssertOnePress(TakeEvents(4));
    }

    [Fact]
    public void Status_events_are_taken_and_returned()
    {
        var d = _rig.Driver;
        d.Initialize();
        var led = d.Buffer(InputEvent.Size);
        d.Fill(led, [0x11, 0, 0, 0, 1, 0, 0, 0]); // EV_LED LED_NUML on
        Assert.Equal(0u, d.Submit(1, [led], []).Written);
        Assert.Equal(0u, d.Submit(1, [d.Buffer(3)], [d.Buffer(100)], indirect: true).Written); // any shape
        Assert.Null(_rig.Transport.Error);
    }

    [Fact]
    public void A_broken_event_ring_needs_reset_and_a_reset_recovers_it()
    {
        var d = _rig.Driver;
        d.Initialize();
        var q = d.Queue(0);
        q.WriteDescriptor(0, _rig.Ram.EndAddress - 4, InputEvent.Size, Virtqueue.DescWrite, 0); // runs off the end of RAM
        q.Publish(0);
        d.Kick(0);
        Assert.True(_input.PressPowerButton());
        Assert.NotNull(_rig.Transport.Error);
        Assert.NotEqual(0u, d.Status & VirtioStatus.DeviceNeedsReset);

        d.Initialize();
        PostEventBuffers(4);
        AssertOnePress(TakeEvents(4));
    }
}
