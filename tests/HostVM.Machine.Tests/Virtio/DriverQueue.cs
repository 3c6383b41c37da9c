using System.Buffers.Binary;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// The driver's half of one split virtqueue in guest RAM, as Linux's virtio_ring keeps it: a free list
/// of descriptors, the available ring it fills and the used ring it reads. Besides well-formed chains it
/// can write raw descriptors and indices, so tests can break every rule on purpose.
/// </summary>
internal sealed class DriverQueue
{
    private readonly GuestRam _ram;
    private readonly Stack<ushort> _free = new();
    private readonly Dictionary<ushort, List<ushort>> _inFlight = [];
    private ushort _availIndex;
    private ushort _lastUsed;

    public DriverQueue(GuestRam ram, int index, ushort size, ulong desc, ulong avail, ulong used)
    {
        _ram = ram;
        Index = index;
        Size = size;
        DescAddress = desc;
        AvailAddress = avail;
        UsedAddress = used;
        for (int i = size - 1; i >= 0; i--)
        {
            _free.Push((ushort)i);
        }
    }

    public int Index { get; }

    public ushort Size { get; }

    public ulong DescAddress { get; }

    public ulong AvailAddress { get; }

    public ulong UsedAddress { get; }

    public int FreeDescriptors => _free.Count;

    /// <summary>The avail index the driver last published.</summary>
    public ushort AvailIndex => _availIndex;

    /// <summary>The used index the device last published.</summary>
    public ushort UsedIndex
    {
        get
        {
            ushort v = BinaryPrimitives.ReadUInt16LittleEndian(_ram.GetSpan(UsedAddress + 2, 2));
            Interlocked.MemoryBarrier();
            return v;
        }
    }

    /// <summary>The device's avail_event (VIRTIO_F_EVENT_IDX): kick when the avail index passes it.</summary>
    public ushort AvailEvent => BinaryPrimitives.ReadUInt16LittleEndian(_ram.GetSpan(UsedAddress + 4 + (8UL * Size), 2));

    /// <summary>Used entries the device published that the driver has not taken yet.</summary>
    public int PendingUsed => (ushort)(UsedIndex - _lastUsed);

    public void WriteDescriptor(ushort index, ulong address, uint length, ushort flags, ushort next) =>
        WriteDescriptorAt(_ram, DescAddress + ((ulong)index * (ulong)Virtqueue.DescriptorSize), address, length, flags, next);

    public static void WriteDescriptorAt(GuestRam ram, ulong at, ulong address, uint length, ushort flags, ushort next)
    {
        var d = ram.GetSpan(at, Virtqueue.DescriptorSize);
        BinaryPrimitives.WriteUInt64LittleEndian(d, address);
        BinaryPrimitives.WriteUInt32LittleEndian(d[8..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(d[12..], flags);
        BinaryPrimitives.WriteUInt16LittleEndian(d[14..], next);
    }

    /// <summary>Puts <paramref name="head"/> in the next avail slot and publishes it (no check at all).</summary>
    public void Publish(ushort head)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.GetSpan(AvailAddress + 4 + (2UL * (ulong)(_availIndex % Size)), 2), head);
        Interlocked.MemoryBarrier();
        SetAvailIndex((ushort)(_availIndex + 1));
    }

    /// <summary>Writes the avail index as is (a hostile driver may jump it anywhere).</summary>
    public void SetAvailIndex(ushort index)
    {
        _availIndex = index;
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.GetSpan(AvailAddress + 2, 2), index);
        Interlocked.MemoryBarrier();
    }

    public void SetAvailFlags(ushort flags) => BinaryPrimitives.WriteUInt16LittleEndian(_ram.GetSpan(AvailAddress, 2), flags);

    /// <summary>used_event (VIRTIO_F_EVENT_IDX): interrupt me when the used index passes this.</summary>
    public void SetUsedEvent(ushort index)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(_ram.GetSpan(AvailAddress + 4 + (2UL * Size), 2), index);
        Interlocked.MemoryBarrier();
    }

    /// <summary>Builds a direct chain (readable buffers first) from free descriptors and publishes it.</summary>
    public ushort Add(IReadOnlyList<GuestBuffer> readable, IReadOnlyList<GuestBuffer> writable)
    {
        int count = readable.Count + writable.Count;
        if (count == 0 || count > _free.Count)
        {
            throw new InvalidOperationException($"queue {Index}: {count} descriptors wanted, {_free.Count} free");
        }

        var used = new List<ushort>(count);
        for (int i = 0; i < count; i++)
        {
            used.Add(_free.Pop());
        }

        for (int i = 0; i < count; i++)
        {
            var b = i < readable.Count ? readable[i] : writable[i - readable.Count];
            ushort flags = (ushort)((i < readable.Count ? 0 : Virtqueue.DescWrite) | (i + 1 < count ? Virtqueue.DescNext : 0));
            WriteDescriptor(used[i], b.Address, b.Length, flags, i + 1 < count ? used[i + 1] : (ushort)0);
        }

        _inFlight[used[0]] = used;
        Publish(used[0]);
        return used[0];
    }

    /// <summary>Builds an indirect table at <paramref name="table"/> and publishes one descriptor pointing to it.</summary>
    public ushort AddIndirect(IReadOnlyList<GuestBuffer> readable, IReadOnlyList<GuestBuffer> writable, ulong table)
    {
        int count = readable.Count + writable.Count;
        for (int i = 0; i < count; i++)
        {
            var b = i < readable.Count ? readable[i] : writable[i - readable.Count];
            ushort flags = (ushort)((i < readable.Count ? 0 : Virtqueue.DescWrite) | (i + 1 < count ? Virtqueue.DescNext : 0));
            WriteDescriptorAt(_ram, table + ((ulong)i * (ulong)Virtqueue.DescriptorSize), b.Address, b.Length, flags, (ushort)(i + 1));
        }

        ushort head = _free.Pop();
        WriteDescriptor(head, table, (uint)(count * Virtqueue.DescriptorSize), Virtqueue.DescIndirect, 0);
        _inFlight[head] = [head];
        Publish(head);
        return head;
    }

    /// <summary>Takes the next used entry, if the device published one, and frees its descriptors.</summary>
    public bool TryTakeUsed(out UsedElement element)
    {
        if (UsedIndex == _lastUsed)
        {
            element = default;
            return false;
        }

        var e = _ram.GetSpan(UsedAddress + 4 + (8UL * (ulong)(_lastUsed % Size)), 8);
        element = new UsedElement((ushort)BinaryPrimitives.ReadUInt32LittleEndian(e), BinaryPrimitives.ReadUInt32LittleEndian(e[4..]));
        _lastUsed++;
        if (_inFlight.Remove(element.Head, out var descriptors))
        {
            foreach (ushort d in descriptors)
            {
                _free.Push(d);
            }
        }

        return true;
    }
}
