using System.Buffers.Binary;
using HostVM.Machine.State;

namespace HostVM.Machine.Virtio;

/// <summary>
/// A split virtqueue (Virtio 1.2 §2.7): descriptor table, available ring (driver → device) and used
/// ring (device → driver) in guest RAM. The three areas are checked to lie in RAM once, when the queue
/// is set up; every index and descriptor read from them is checked on use, because the guest can change
/// them at any moment. Only one thread (the device's) pops and pushes at a time.
/// </summary>
public sealed unsafe class Virtqueue : IPersistent<VirtqueueState>
{
    public const int DescriptorSize = 16;
    public const ushort DescNext = 1;
    public const ushort DescWrite = 2;
    public const ushort DescIndirect = 4;
    public const ushort AvailNoInterrupt = 1;

    /// <summary>Indirect tables longer than this are treated as malformed (Linux uses at most a few hundred).</summary>
    public const int MaxIndirectDescriptors = 4096;

    private readonly GuestMemory _memory;
    private readonly byte* _desc;
    private readonly byte* _avail;
    private readonly byte* _used;
    private readonly ulong _descAddress;
    private readonly ulong _availAddress;
    private readonly ulong _usedAddress;
    private readonly bool _eventIndex;
    private ushort _lastAvail;
    private ushort _usedIndex;
    private ushort _signalledUsed;

    private Virtqueue(GuestMemory memory, ushort size, ulong desc, ulong avail, ulong used, bool eventIndex)
    {
        _memory = memory;
        Size = size;
        _desc = memory.Pointer(desc);
        _avail = memory.Pointer(avail);
        _used = memory.Pointer(used);
        _descAddress = desc;
        _availAddress = avail;
        _usedAddress = used;
        _eventIndex = eventIndex;
    }

    public ushort Size { get; }

    /// <summary>Requests taken so far (a statistic).</summary>
    public long Popped { get; private set; }

    /// <summary>Bytes of the descriptor table, available ring and used ring for a queue of <paramref name="size"/>.</summary>
    public static (ulong Desc, ulong Avail, ulong Used) AreaSizes(ushort size) =>
        ((ulong)size * DescriptorSize, 6 + (2UL * size), 6 + (8UL * size));

    /// <summary>Checks the layout the driver chose and builds the queue; an error says what is wrong.</summary>
    public static Virtqueue Create(GuestMemory memory, ushort size, ulong desc, ulong avail, ulong used, bool eventIndex)
    {
        if (size == 0 || (size & (size - 1)) != 0)
        {
            throw new VirtqueueException($"queue size {size} is not a power of 2");
        }

        var (d, a, u) = AreaSizes(size);
        if ((desc & 15) != 0 || (avail & 1) != 0 || (used & 3) != 0)
        {
            throw new VirtqueueException($"misaligned rings (desc 0x{desc:x}, avail 0x{avail:x}, used 0x{used:x})");
        }

        if (!memory.Contains(desc, d) || !memory.Contains(avail, a) || !memory.Contains(used, u))
        {
            throw new VirtqueueException($"rings outside guest RAM (desc 0x{desc:x}, avail 0x{avail:x}, used 0x{used:x})");
        }

        return new Virtqueue(memory, size, desc, avail, used, eventIndex);
    }

    private ushort AvailIndex => Volatile.Read(ref *(ushort*)(_avail + 2));

    private ushort AvailFlags => Volatile.Read(ref *(ushort*)_avail);

    private ushort UsedEvent => Volatile.Read(ref *(ushort*)(_avail + 4 + (2 * Size)));

    /// <summary>True when the driver has made requests available that the device has not taken.</summary>
    public bool HasAvailable => AvailIndex != _lastAvail;

    /// <summary>
    /// Takes the next available request into <paramref name="chain"/>. False when there is none.
    /// Throws <see cref="VirtqueueException"/> when the driver broke the rules.
    /// </summary>
    public bool TryPop(DescriptorChain chain)
    {
        ushort availIndex = AvailIndex;
        if (availIndex == _lastAvail)
        {
            return false;
        }

        if ((ushort)(availIndex - _lastAvail) > Size)
        {
            throw new VirtqueueException($"available index moved {(ushort)(availIndex - _lastAvail)} entries in a queue of {Size}");
        }

        Interlocked.MemoryBarrier(); // read the ring entry only after the index that published it
        ushort head = Volatile.Read(ref *(ushort*)(_avail + 4 + (2 * (_lastAvail & (Size - 1)))));
        _lastAvail++;
        Popped++;
        WalkChain(head, chain);
        return true;
    }

    private void WalkChain(ushort head, DescriptorChain chain)
    {
        if (head >= Size)
        {
            throw new VirtqueueException($"head descriptor {head} is outside a queue of {Size}");
        }

        chain.Begin(_memory, head);
        ushort index = head;
        for (int seen = 0; ; seen++)
        {
            if (seen >= Size)
            {
                throw new VirtqueueException($"descriptor chain from {head} loops or is longer than the queue");
            }

            byte* d = _desc + (index * DescriptorSize);
            var (addr, len, flags, next) = ReadDescriptor(d);
            if ((flags & DescIndirect) != 0)
            {
                if ((flags & DescNext) != 0)
                {
                    throw new VirtqueueException($"descriptor {index} is both indirect and chained");
                }

                WalkIndirect(addr, len, chain);
                return;
            }

            chain.Add(addr, len, (flags & DescWrite) != 0);
            if ((flags & DescNext) == 0)
            {
                return;
            }

            if (next >= Size)
            {
                throw new VirtqueueException($"descriptor {index} links to {next}, outside a queue of {Size}");
            }

            index = next;
        }
    }

    private void WalkIndirect(ulong table, uint length, DescriptorChain chain)
    {
        if (length == 0 || length % DescriptorSize != 0 || length / DescriptorSize > MaxIndirectDescriptors)
        {
            throw new VirtqueueException($"indirect table of {length} bytes is not 1 to {MaxIndirectDescriptors} descriptors");
        }

        // No alignment is required of indirect tables (Linux kmallocs them 8-byte aligned).
        if (!_memory.Contains(table, length))
        {
            throw new VirtqueueException($"indirect table 0x{table:x}+0x{length:x} is outside guest RAM");
        }

        int count = (int)(length / DescriptorSize);
        byte* t = _memory.Pointer(table);
        int index = 0;
        for (int seen = 0; ; seen++)
        {
            if (seen >= count)
            {
                throw new VirtqueueException("indirect descriptor chain loops");
            }

            byte* d = t + (index * DescriptorSize);
            var (addr, len, flags, next) = ReadDescriptor(d);
            if ((flags & DescIndirect) != 0)
            {
                throw new VirtqueueException("an indirect table holds another indirect descriptor");
            }

            chain.Add(addr, len, (flags & DescWrite) != 0);
            if ((flags & DescNext) == 0)
            {
                return;
            }

            if (next >= count)
            {
                throw new VirtqueueException($"indirect descriptor {index} links to {next}, outside its table of {count}");
            }

            index = next;
        }
    }

    /// <summary>One descriptor as it is in guest memory now, read once (the guest may change it any time).</summary>
    private static (ulong Address, uint Length, ushort Flags, ushort Next) ReadDescriptor(byte* d)
    {
        var bytes = new ReadOnlySpan<byte>(d, DescriptorSize);
        return (BinaryPrimitives.ReadUInt64LittleEndian(bytes), BinaryPrimitives.ReadUInt32LittleEndian(bytes[8..]),
            BinaryPrimitives.ReadUInt16LittleEndian(bytes[12..]), BinaryPrimitives.ReadUInt16LittleEndian(bytes[14..]));
    }

    /// <summary>Returns a request to the driver with <paramref name="written"/> bytes written into its buffers.</summary>
    public void Push(ushort head, uint written)
    {
        uint slot = 4 + (8u * (uint)(_usedIndex & (Size - 1)));
        byte* e = _used + slot;
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(e, 4), head);
        BinaryPrimitives.WriteUInt32LittleEndian(new Span<byte>(e + 4, 4), written);
        _usedIndex++;
        Volatile.Write(ref *(ushort*)(_used + 2), _usedIndex); // publish after the entry
        // Only the bytes written: the entry and the index (not the whole ring on every push).
        _memory.WroteRange(_usedAddress + slot, 8);
        _memory.WroteRange(_usedAddress + 2, 2);
    }

    /// <summary>
    /// After a batch of pushes: whether the driver wants an interrupt for them (VIRTIO_F_EVENT_IDX's
    /// used_event, or the avail ring's NO_INTERRUPT flag).
    /// </summary>
    public bool ShouldInterrupt()
    {
        Interlocked.MemoryBarrier(); // the used index must be visible before we read the driver's wishes
        ushort old = _signalledUsed;
        ushort now = _usedIndex;
        _signalledUsed = now;
        if (old == now)
        {
            return false;
        }

        if (_eventIndex)
        {
            ushort e = UsedEvent;
            return (ushort)(now - e - 1) < (ushort)(now - old);
        }

        return (AvailFlags & AvailNoInterrupt) == 0;
    }

    /// <summary>
    /// With VIRTIO_F_EVENT_IDX, asks the driver to notify when it makes the next request available.
    /// Returns true if requests arrived meanwhile (the caller must look again, or it could miss them).
    /// </summary>
    public bool ArmNotification()
    {
        if (_eventIndex)
        {
            Volatile.Write(ref *(ushort*)(_used + 4 + (8 * Size)), _lastAvail);
            _memory.WroteRange(_usedAddress + 4 + (8UL * Size), 2);
        }

        Interlocked.MemoryBarrier();
        return HasAvailable;
    }

    public VirtqueueState SaveState() =>
        new(Size, _descAddress, _availAddress, _usedAddress, _eventIndex, _lastAvail, _usedIndex, _signalledUsed);

    /// <summary>
    /// Puts the indices back. The layout (size, addresses, EVENT_IDX) is the transport's and was used to
    /// build this queue; a state for another layout is refused rather than half applied.
    /// </summary>
    public void RestoreState(VirtqueueState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        if (state.Size != Size || state.DescAddress != _descAddress || state.AvailAddress != _availAddress
            || state.UsedAddress != _usedAddress || state.EventIndex != _eventIndex)
        {
            throw new ArgumentException(
                $"The saved queue (size {state.Size}, desc 0x{state.DescAddress:x}, avail 0x{state.AvailAddress:x}, used 0x{state.UsedAddress:x}, "
                + $"event index {state.EventIndex}) is not this one (size {Size}, desc 0x{_descAddress:x}, avail 0x{_availAddress:x}, "
                + $"used 0x{_usedAddress:x}, event index {_eventIndex}).", nameof(state));
        }

        _lastAvail = state.LastAvail;
        _usedIndex = state.UsedIndex;
        _signalledUsed = state.SignalledUsed;
    }
}
