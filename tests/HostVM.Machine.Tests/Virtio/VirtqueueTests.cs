using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.Virtqueue;

namespace HostVM.Machine.Tests.Virtio;

public sealed class VirtqueueTests : IDisposable
{
    private const ushort Size = 8;
    private const ulong Base = GuestRam.DefaultBase;
    private const ulong Desc = Base, Avail = Base + 0x1000, Used = Base + 0x2000;
    private const ulong Data = Base + 0x10000;
    private const ulong Table = Base + 0x8000;

    private readonly GuestRam _ram = new(1 << 20);
    private readonly GuestMemory _memory;
    private readonly DriverQueue _driver;
    private readonly DescriptorChain _chain = new();

    public VirtqueueTests()
    {
        _memory = new GuestMemory(_ram, null);
        _driver = new DriverQueue(_ram, 0, Size, Desc, Avail, Used);
    }

    public void Dispose() => _ram.Dispose();

    private Virtqueue Create(bool eventIndex = false) => Virtqueue.Create(_memory, Size, Desc, Avail, Used, eventIndex);

    private void Desc16(ushort i, ulong addr, uint len, ushort flags, ushort next = 0) => _driver.WriteDescriptor(i, addr, len, flags, next);

    private void Entry(ulong table, int i, ulong addr, uint len, ushort flags, ushort next = 0) =>
        DriverQueue.WriteDescriptorAt(_ram, table + ((ulong)i * 16), addr, len, flags, next);

    private void AssertRejected(string fragment)
    {
        var q = Create();
        var e = Assert.Throws<VirtqueueException>(() => q.TryPop(_chain));
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Direct_chain_is_walked_readable_first_with_lengths()
    {
        var q = Create();
        Assert.False(q.TryPop(_chain));
        Desc16(3, Data, 16, DescNext, 5);
        Desc16(5, Data + 0x100, 100, DescNext, 1);
        Desc16(1, Data + 0x200, 512, (ushort)(DescNext | DescWrite), 0);
        Desc16(0, Data + 0x400, 1, DescWrite);
        _driver.Publish(3);

        Assert.True(q.TryPop(_chain));
        Assert.Equal(3, _chain.Head);
        Assert.Equal(2, _chain.ReadableCount);
        Assert.Equal(116u, _chain.ReadableLength);
        Assert.Equal(513u, _chain.WritableLength);
        Assert.Equal(
            [new(Data, 16, false), new(Data + 0x100, 100, false), new(Data + 0x200, 512, true), new(Data + 0x400, 1, true)],
            _chain.Segments.ToArray());
        Assert.False(q.TryPop(_chain));
    }

    [Fact]
    public void Chain_read_and_write_cross_segment_boundaries()
    {
        var q = Create();
        _ram.Write(Data, "abc"u8);
        _ram.Write(Data + 0x100, "defgh"u8);
        Desc16(0, Data, 3, DescNext, 1);
        Desc16(1, Data + 0x100, 5, DescNext, 2);
        Desc16(2, Data + 0x200, 2, (ushort)(DescNext | DescWrite), 3);
        Desc16(3, Data + 0x300, 4, DescWrite);
        _driver.Publish(0);
        Assert.True(q.TryPop(_chain));

        var read = new byte[6];
        Assert.Equal(6, _chain.Read(2, read));
        Assert.Equal("cdefgh"u8.ToArray(), read);
        Assert.Equal(5, _chain.Write(1, "VWXYZ!"u8));
        Assert.Equal("V"u8.ToArray(), _ram.GetSpan(Data + 0x201, 1).ToArray());
        Assert.Equal("WXYZ"u8.ToArray(), _ram.GetSpan(Data + 0x300, 4).ToArray());
        Assert.Equal(0, _ram.GetSpan(Data + 0x304, 1)[0]); // nothing past the last segment
    }

    [Fact]
    public void Indirect_chain_is_walked_from_its_table()
    {
        var q = Create();
        Entry(Table, 0, Data, 16, DescNext, 2);
        Entry(Table, 2, Data + 0x100, 64, (ushort)(DescNext | DescWrite), 1);
        Entry(Table, 1, Data + 0x200, 1, DescWrite);
        Desc16(6, Table, 3 * 16, DescIndirect);
        _driver.Publish(6);

        Assert.True(q.TryPop(_chain));
        Assert.Equal(6, _chain.Head);
        Assert.Equal(
            [new(Data, 16, false), new(Data + 0x100, 64, true), new(Data + 0x200, 1, true)],
            _chain.Segments.ToArray());
    }

    [Fact]
    public void Direct_descriptors_may_lead_to_a_final_indirect_one()
    {
        var q = Create();
        Desc16(2, Data, 16, DescNext, 4);
        Desc16(4, Table + 1, 32, DescIndirect); // tables need no alignment
        Entry(Table + 1, 0, Data + 0x100, 8, DescNext, 1);
        Entry(Table + 1, 1, Data + 0x200, 1, DescWrite);
        _driver.Publish(2);

        Assert.True(q.TryPop(_chain));
        Assert.Equal(
            [new(Data, 16, false), new(Data + 0x100, 8, false), new(Data + 0x200, 1, true)],
            _chain.Segments.ToArray());
    }

    [Fact]
    public void Readable_after_writable_is_rejected()
    {
        Desc16(0, Data, 16, (ushort)(DescNext | DescWrite), 1);
        Desc16(1, Data + 0x100, 16, 0);
        _driver.Publish(0);
        AssertRejected("device-readable buffer follows a device-writable");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Readable_after_an_empty_writable_descriptor_is_rejected(bool indirect)
    {
        // Zero-length buffers carry no data, but their direction still counts (Virtio 1.2 §2.7.4.2).
        if (indirect)
        {
            Entry(Table, 0, Data, 0, (ushort)(DescNext | DescWrite), 1);
            Entry(Table, 1, Data + 0x100, 16, 0);
            Desc16(0, Table, 32, DescIndirect);
        }
        else
        {
            Desc16(0, Data, 0, (ushort)(DescNext | DescWrite), 1);
            Desc16(1, Data + 0x100, 16, 0);
        }

        _driver.Publish(0);
        AssertRejected("device-readable buffer follows a device-writable");
    }

    [Fact]
    public void Readable_after_writable_in_an_indirect_table_is_rejected()
    {
        Entry(Table, 0, Data, 16, (ushort)(DescNext | DescWrite), 1);
        Entry(Table, 1, Data + 0x100, 16, 0);
        Desc16(0, Table, 32, DescIndirect);
        _driver.Publish(0);
        AssertRejected("device-readable buffer follows a device-writable");
    }

    [Fact]
    public void Looping_direct_chain_is_rejected()
    {
        Desc16(0, Data, 16, DescNext, 1);
        Desc16(1, Data, 16, DescNext, 2);
        Desc16(2, Data, 16, DescNext, 1);
        _driver.Publish(0);
        AssertRejected("loops");
    }

    [Fact]
    public void Self_loop_is_rejected()
    {
        Desc16(5, Data, 16, DescNext, 5);
        _driver.Publish(5);
        AssertRejected("loops");
    }

    [Fact]
    public void Looping_indirect_chain_is_rejected()
    {
        Entry(Table, 0, Data, 16, DescNext, 1);
        Entry(Table, 1, Data, 16, DescNext, 0);
        Desc16(0, Table, 32, DescIndirect);
        _driver.Publish(0);
        AssertRejected("loops");
    }

    [Fact]
    public void Next_index_outside_the_queue_is_rejected()
    {
        Desc16(0, Data, 16, DescNext, Size);
        _driver.Publish(0);
        AssertRejected("outside a queue of 8");
    }

    [Fact]
    public void Next_index_outside_the_indirect_table_is_rejected()
    {
        Entry(Table, 0, Data, 16, DescNext, 2);
        Entry(Table, 1, Data, 16, 0);
        Desc16(0, Table, 32, DescIndirect);
        _driver.Publish(0);
        AssertRejected("outside its table of 2");
    }

    [Fact]
    public void Head_outside_the_queue_is_rejected()
    {
        _driver.Publish(Size);
        AssertRejected("head descriptor 8");
    }

    [Fact]
    public void Avail_index_jumping_more_than_the_queue_size_is_rejected()
    {
        var q = Create();
        Desc16(0, Data, 16, 0);
        _driver.SetAvailIndex(Size + 1);
        Assert.Throws<VirtqueueException>(() => q.TryPop(_chain));

        // Exactly a full queue is legal.
        var fresh = Create();
        _driver.SetAvailIndex(Size);
        for (int i = 0; i < Size; i++)
        {
            Assert.True(fresh.TryPop(_chain));
        }

        Assert.False(fresh.TryPop(_chain));
    }

    [Theory]
    [InlineData(0UL, 16u)]                      // below RAM
    [InlineData(Base - 8, 16u)]                 // straddles the start
    [InlineData(Base + (1 << 20) - 8, 16u)]     // straddles the end
    [InlineData(Base + (1 << 20), 1u)]          // just past the end
    [InlineData(ulong.MaxValue - 7, 16u)]       // wraps around 2^64
    [InlineData(Base, uint.MaxValue)]           // longer than RAM
    public void Buffers_outside_RAM_are_rejected(ulong address, uint length)
    {
        Desc16(0, Data, 16, DescNext, 1);
        Desc16(1, address, length, DescWrite);
        _driver.Publish(0);
        AssertRejected("outside guest RAM");
    }

    [Fact]
    public void Buffer_outside_RAM_in_an_indirect_table_is_rejected()
    {
        Entry(Table, 0, ulong.MaxValue - 0xfff, 0x2000, 0);
        Desc16(0, Table, 16, DescIndirect);
        _driver.Publish(0);
        AssertRejected("outside guest RAM");
    }

    [Theory]
    [InlineData(ulong.MaxValue - 15, 32u, "outside guest RAM")]
    [InlineData(Base + (1 << 20) - 16, 32u, "outside guest RAM")]
    [InlineData(Table, 0u, "indirect table of 0 bytes")]
    [InlineData(Table, 24u, "indirect table of 24 bytes")]
    [InlineData(Table, 16u * 4097, "indirect table of")]
    public void Malformed_indirect_tables_are_rejected(ulong table, uint length, string fragment)
    {
        Desc16(0, table, length, DescIndirect);
        _driver.Publish(0);
        AssertRejected(fragment);
    }

    [Fact]
    public void Indirect_within_indirect_is_rejected()
    {
        Entry(Table, 0, Table, 16, DescIndirect);
        Desc16(0, Table, 16, DescIndirect);
        _driver.Publish(0);
        AssertRejected("another indirect");
    }

    [Fact]
    public void Indirect_and_next_together_are_rejected()
    {
        Entry(Table, 0, Data, 16, 0);
        Desc16(0, Table, 16, (ushort)(DescIndirect | DescNext), 1);
        Desc16(1, Data, 16, 0);
        _driver.Publish(0);
        AssertRejected("both indirect and chained");
    }

    [Fact]
    public void Zero_length_buffers_are_skipped_even_outside_RAM()
    {
        var q = Create();
        Desc16(0, 0xdead_0000_0000, 0, DescNext, 1);
        Desc16(1, Data, 4, DescWrite);
        _driver.Publish(0);
        Assert.True(q.TryPop(_chain));
        Assert.Equal([new(Data, 4, true)], _chain.Segments.ToArray());
    }

    [Theory]
    [InlineData(Desc + 8, Avail, Used, "misaligned")]
    [InlineData(Desc, Avail + 1, Used, "misaligned")]
    [InlineData(Desc, Avail, Used + 2, "misaligned")]
    [InlineData(0x1000UL, Avail, Used, "outside guest RAM")]
    [InlineData(Desc, Base + (1 << 20) - 16, Used, "outside guest RAM")]
    [InlineData(Desc, Avail, Base + (1 << 20) - 64, "outside guest RAM")]
    [InlineData(Desc, Avail, ulong.MaxValue - 63, "outside guest RAM")]
    public void Create_rejects_bad_ring_layouts(ulong desc, ulong avail, ulong used, string fragment)
    {
        var e = Assert.Throws<VirtqueueException>(() => Virtqueue.Create(_memory, Size, desc, avail, used, false));
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Create_rejects_sizes_that_are_not_powers_of_two()
    {
        Assert.Throws<VirtqueueException>(() => Virtqueue.Create(_memory, 0, Desc, Avail, Used, false));
        Assert.Throws<VirtqueueException>(() => Virtqueue.Create(_memory, 6, Desc, Avail, Used, false));
    }

    [Fact]
    public void Push_writes_the_used_ring_and_its_index()
    {
        var q = Create();
        Desc16(4, Data, 8, DescWrite);
        _driver.Publish(4);
        Assert.True(q.TryPop(_chain));
        q.Push(_chain.Head, 7);
        Assert.True(_driver.TryTakeUsed(out var e));
        Assert.Equal(new UsedElement(4, 7), e);
    }

    [Fact]
    public void Without_EVENT_IDX_NO_INTERRUPT_suppresses_interrupts()
    {
        var q = Create();
        Assert.False(q.ShouldInterrupt()); // nothing pushed
        q.Push(0, 0);
        Assert.True(q.ShouldInterrupt());
        Assert.False(q.ShouldInterrupt()); // already signalled
        _driver.SetAvailFlags(AvailNoInterrupt);
        q.Push(0, 0);
        Assert.False(q.ShouldInterrupt());
        _driver.SetAvailFlags(0);
        q.Push(0, 0);
        Assert.True(q.ShouldInterrupt());
    }

    [Fact]
    public void With_EVENT_IDX_used_event_decides_and_NO_INTERRUPT_is_ignored()
    {
        var q = Create(eventIndex: true);
        _driver.SetAvailFlags(AvailNoInterrupt);
        _driver.SetUsedEvent(2); // interrupt once used entry 2 is written (used idx passes 2)
        q.Push(0, 0);
        Assert.False(q.ShouldInterrupt()); // used idx 1
        q.Push(0, 0);
        Assert.False(q.ShouldInterrupt()); // used idx 2
        q.Push(0, 0);
        Assert.True(q.ShouldInterrupt());  // used idx 3: passed entry 2

        // A batch that jumps over used_event interrupts once.
        _driver.SetUsedEvent(4);
        q.Push(0, 0);
        q.Push(0, 0);
        q.Push(0, 0);
        Assert.True(q.ShouldInterrupt());
        _driver.SetUsedEvent(1000);
        q.Push(0, 0);
        Assert.False(q.ShouldInterrupt());
    }

    [Fact]
    public void ArmNotification_publishes_avail_event_and_reports_late_arrivals()
    {
        var q = Create(eventIndex: true);
        Desc16(0, Data, 8, DescWrite);
        _driver.Publish(0);
        _driver.Publish(0);
        Assert.True(q.TryPop(_chain));
        Assert.True(q.ArmNotification()); // one more is waiting
        Assert.Equal(1, _driver.AvailEvent);
        Assert.True(q.TryPop(_chain));
        Assert.False(q.ArmNotification());
        Assert.Equal(2, _driver.AvailEvent);
    }
}
