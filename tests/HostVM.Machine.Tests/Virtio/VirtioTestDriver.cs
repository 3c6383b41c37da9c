using System.Diagnostics;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// Does through the registers what Linux's virtio_mmio + virtio_ring drivers do: reset, negotiate,
/// set up queues (modern or legacy layout), DRIVER_OK, then make requests and wait for them. Its buffers
/// and rings come from a bump heap in guest RAM between <c>heapStart</c> and <c>heapEnd</c>.
/// </summary>
internal sealed class VirtioTestDriver
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(5);

    private readonly ulong _heapStart;
    private readonly ulong _heapEnd;
    private readonly List<DriverQueue?> _queues = [];
    private ulong _heap;

    public VirtioTestDriver(GuestRam ram, MmioTransport transport, ulong heapStart, ulong heapEnd)
    {
        Ram = ram;
        Transport = transport;
        _heapStart = heapStart;
        _heapEnd = heapEnd;
        _heap = heapStart;
    }

    public VirtioTestDriver(GuestRam ram, MmioTransport transport)
        : this(ram, transport, ram.BaseAddress, ram.EndAddress)
    {
    }

    public GuestRam Ram { get; }

    public MmioTransport Transport { get; }

    public bool Legacy => Reg(RegVersion) == 1;

    /// <summary>The features agreed by the last <see cref="Initialize"/>.</summary>
    public ulong Features { get; private set; }

    public uint Reg(ulong offset) => (uint)Transport.Read(offset, 4);

    public void SetReg(ulong offset, uint value) => Transport.Write(offset, 4, value);

    public uint Status => Reg(RegStatus);

    public DriverQueue Queue(int index) => _queues[index] ?? throw new InvalidOperationException($"queue {index} is not set up");

    /// <summary>Zeroed guest memory from the heap.</summary>
    public ulong Allocate(ulong size, ulong align = 16)
    {
        ulong at = (_heap + align - 1) & ~(align - 1);
        if (at + size > _heapEnd)
        {
            throw new InvalidOperationException($"test heap exhausted: 0x{size:x} bytes wanted");
        }

        _heap = at + size;
        Ram.GetSpan(at, (int)size).Clear();
        return at;
    }

    public GuestBuffer Buffer(uint length, ulong align = 16) => new(Allocate(length, align), length);

    public ulong DeviceFeatures()
    {
        SetReg(RegDeviceFeaturesSel, 0);
        ulong low = Reg(RegDeviceFeatures);
        SetReg(RegDeviceFeaturesSel, 1);
        ulong high = Reg(RegDeviceFeatures);
        return low | (high << 32);
    }

    public void WriteDriverFeatures(ulong features)
    {
        SetReg(RegDriverFeaturesSel, 0);
        SetReg(RegDriverFeatures, (uint)features);
        SetReg(RegDriverFeaturesSel, 1);
        SetReg(RegDriverFeatures, (uint)(features >> 32));
    }

    public void Reset()
    {
        SetReg(RegStatus, 0);
        if (Status != 0)
        {
            throw new InvalidOperationException($"status reads 0x{Status:x} after reset");
        }

        _queues.Clear();
        _heap = _heapStart;
    }

    /// <summary>
    /// The whole probe: reset, ACKNOWLEDGE|DRIVER, features (the device's ∩ <paramref name="wanted"/>),
    /// FEATURES_OK (modern; checked to stick), every queue the device has at <paramref name="queueSize"/>
    /// (or its maximum if smaller), then DRIVER_OK. Returns the agreed features.
    /// </summary>
    public ulong Initialize(ulong wanted = ulong.MaxValue, ushort queueSize = 64)
    {
        Reset();
        SetReg(RegStatus, VirtioStatus.Acknowledge);
        SetReg(RegStatus, VirtioStatus.Acknowledge | VirtioStatus.Driver);
        ulong features = DeviceFeatures() & wanted;
        WriteDriverFeatures(features);
        uint status = VirtioStatus.Acknowledge | VirtioStatus.Driver;
        if (!Legacy)
        {
            // Linux's legacy path never sets FEATURES_OK; a modern driver must, and must see it stick.
            status |= VirtioStatus.FeaturesOk;
            SetReg(RegStatus, status);
            if ((Status & VirtioStatus.FeaturesOk) == 0)
            {
                throw new InvalidOperationException($"device refused features 0x{features:x}");
            }
        }
        else
        {
            SetReg(RegLegacyGuestPageSize, 4096);
        }

        for (int i = 0; i < Transport.Device.QueueCount; i++)
        {
            _queues.Add(SetUpQueue(i, queueSize));
        }

        SetReg(RegStatus, status | VirtioStatus.DriverOk);
        Features = features;
        return features;
    }

    private DriverQueue? SetUpQueue(int index, ushort wantedSize)
    {
        SetReg(RegQueueSel, (uint)index);
        uint max = Reg(RegQueueNumMax);
        if (max == 0)
        {
            return null;
        }

        ushort size = (ushort)Math.Min(wantedSize, max);
        var (d, a, u) = Virtqueue.AreaSizes(size);
        SetReg(RegQueueNum, size);
        if (Legacy)
        {
            if (Reg(RegLegacyQueuePfn) != 0)
            {
                throw new InvalidOperationException($"queue {index} is already live");
            }

            // Legacy layout: one page-aligned block, used ring at the next QueueAlign (4096) boundary.
            ulong usedOffset = (d + a + 4095) & ~4095UL;
            ulong desc = Allocate(usedOffset + u, 4096);
            SetReg(RegLegacyQueueAlign, 4096);
            SetReg(RegLegacyQueuePfn, (uint)(desc / 4096));
            return new DriverQueue(Ram, index, size, desc, desc + d, desc + usedOffset);
        }

        if (Reg(RegQueueReady) != 0)
        {
            throw new InvalidOperationException($"queue {index} is already live");
        }

        ulong descAddr = Allocate(d, 16), availAddr = Allocate(a, 2), usedAddr = Allocate(u, 4);
        SetQueueAddresses(descAddr, availAddr, usedAddr);
        SetReg(RegQueueReady, 1);
        return new DriverQueue(Ram, index, size, descAddr, availAddr, usedAddr);
    }

    /// <summary>Writes the three modern ring addresses of the selected queue.</summary>
    public void SetQueueAddresses(ulong desc, ulong avail, ulong used)
    {
        SetReg(RegQueueDescLow, (uint)desc);
        SetReg(RegQueueDescHigh, (uint)(desc >> 32));
        SetReg(RegQueueDriverLow, (uint)avail);
        SetReg(RegQueueDriverHigh, (uint)(avail >> 32));
        SetReg(RegQueueDeviceLow, (uint)used);
        SetReg(RegQueueDeviceHigh, (uint)(used >> 32));
    }

    public void Kick(int queue) => SetReg(RegQueueNotify, (uint)queue);

    /// <summary>Kicks only if the device asked for it (VIRTIO_F_EVENT_IDX avail_event), as Linux does.</summary>
    public void KickIfNeeded(int queue, ushort oldAvail)
    {
        var q = Queue(queue);
        if ((Features & VirtioFeatures.RingEventIdx) == 0)
        {
            Kick(queue);
            return;
        }

        Interlocked.MemoryBarrier();
        ushort e = q.AvailEvent, now = q.AvailIndex;
        if ((ushort)(now - e - 1) < (ushort)(now - oldAvail))
        {
            Kick(queue);
        }
    }

    /// <summary>Makes a request (direct, or indirect with its table from the heap), kicks, waits for it.</summary>
    public UsedElement Submit(int queue, IReadOnlyList<GuestBuffer> readable, IReadOnlyList<GuestBuffer> writable, bool indirect = false)
    {
        var q = Queue(queue);
        ushort head = indirect
            ? q.AddIndirect(readable, writable, Allocate((ulong)(readable.Count + writable.Count) * Virtqueue.DescriptorSize, 16))
            : q.Add(readable, writable);
        Kick(queue);
        var used = WaitUsed(queue);
        if (used.Head != head)
        {
            throw new InvalidOperationException($"queue {queue}: the device returned head {used.Head}, expected {head}");
        }

        return used;
    }

    /// <summary>
    /// Makes <paramref name="count"/> requests one after another as fast as it can, each kicked only if
    /// the device asked (EVENT_IDX), and waits for each. A device that misses a request published while it
    /// was going to sleep leaves it hanging, and this throws a <see cref="TimeoutException"/>.
    /// </summary>
    public void Stream(int queue, int count, IReadOnlyList<GuestBuffer> readable, IReadOnlyList<GuestBuffer> writable)
    {
        var q = Queue(queue);
        for (int i = 0; i < count; i++)
        {
            ushort old = q.AvailIndex;
            q.Add(readable, writable);
            KickIfNeeded(queue, old);
            try
            {
                WaitUsed(queue, TimeSpan.FromSeconds(2));
            }
            catch (TimeoutException e)
            {
                throw new TimeoutException($"request {i} of {count} was never served (avail_event {q.AvailEvent}, avail idx {q.AvailIndex}, used idx {q.UsedIndex})", e);
            }
        }
    }

    /// <summary>Waits (bounded) for the device to return a buffer on <paramref name="queue"/>.</summary>
    public UsedElement WaitUsed(int queue, TimeSpan? timeout = null)
    {
        var q = Queue(queue);
        UsedElement e = default;
        if (!WaitUntil(() => q.TryTakeUsed(out e), timeout))
        {
            throw new TimeoutException($"queue {queue}: no used buffer within {(timeout ?? DefaultTimeout).TotalSeconds} s (status 0x{Status:x}, error: {Transport.Error ?? "none"})");
        }

        return e;
    }

    public static bool WaitUntil(Func<bool> condition, TimeSpan? timeout = null)
    {
        var clock = Stopwatch.StartNew();
        var limit = timeout ?? DefaultTimeout;
        var spin = new SpinWait();
        while (!condition())
        {
            if (clock.Elapsed > limit)
            {
                return false;
            }

            if (spin.NextSpinWillYield)
            {
                Thread.Sleep(1);
            }
            else
            {
                spin.SpinOnce();
            }
        }

        return true;
    }

    public ulong ReadConfig(int offset, int size) => Transport.Read(ConfigOffset + (ulong)offset, size);

    public void WriteConfig(int offset, int size, ulong value) => Transport.Write(ConfigOffset + (ulong)offset, size, value);

    /// <summary>Reads InterruptStatus and acknowledges what it held, as the interrupt handler does.</summary>
    public uint AckInterrupts()
    {
        uint pending = Reg(RegInterruptStatus);
        SetReg(RegInterruptAck, pending);
        return pending;
    }

    public void Fill(GuestBuffer buffer, ReadOnlySpan<byte> data) => data.CopyTo(Ram.GetSpan(buffer.Address, (int)buffer.Length));

    public byte[] Contents(GuestBuffer buffer) => Ram.GetSpan(buffer.Address, (int)buffer.Length).ToArray();
}
