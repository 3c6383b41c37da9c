using System.Buffers.Binary;
using System.Diagnostics;
using HostVM.Machine.Memory;
using HostVM.Machine.Virtio;
using static HostVM.Machine.Virtio.MmioTransport;

namespace HostVM.Machine.Tests.Virtio;

/// <summary>
/// A hostile guest driving one device: it sets the device up properly, then throws garbage at it
/// (descriptors, avail ring, indirect tables, malformed requests, register writes in odd orders) and,
/// after every batch, resets it and checks that one valid request still completes.
/// <para>
/// Guest RAM is 1 MiB: the driver heap (rings, liveness buffers), a scratch zone for fuzz buffers, and
/// a 64 KiB canary at the top that is never handed to the device as a buffer it may write (a random
/// buffer that lands there is moved; one that only straddles the end of RAM is kept, since the device
/// must refuse it whole). Every transport call is checked not to throw and not to block.
/// </para>
/// </summary>
internal sealed class FuzzGuest : IDisposable
{
    public const ulong RamSize = 1 << 20;
    public const ulong HeapSize = 512 << 10;
    public const ulong CanarySize = 64 << 10;

    /// <summary>Ring addresses chosen by random register writes stay this far below the canary (legacy used ring ≤ 72 KiB on).</summary>
    private const ulong RingGuard = 96 << 10;

    private static readonly TimeSpan CallLimit = TimeSpan.FromSeconds(2);

    private readonly VirtioRig _rig;
    private readonly FuzzTarget _target;
    private uint _legacyPageSize = 4096;
    private ulong _scratch;
    private volatile string _operation = "setting up";
    private volatile int _iteration;
    private bool _abandoned;

    public FuzzGuest(FuzzTarget target, bool legacy, int seed)
    {
        _target = target;
        Seed = seed;
        Random = new Random(seed);
        _rig = new VirtioRig(target.Device, legacy, RamSize);
        Driver = new VirtioTestDriver(Ram, Transport, Ram.BaseAddress, Ram.BaseAddress + HeapSize);
        ScratchStart = Ram.BaseAddress + HeapSize;
        CanaryStart = Ram.EndAddress - CanarySize;
        _scratch = ScratchStart;
        var canary = Ram.GetSpan(CanaryStart, (int)CanarySize);
        for (int i = 0; i < canary.Length; i++)
        {
            canary[i] = CanaryByte(i);
        }
    }

    public int Seed { get; }

    public Random Random { get; }

    public GuestRam Ram => _rig.Ram;

    public MmioTransport Transport => _rig.Transport;

    public VirtioTestDriver Driver { get; }

    public ulong ScratchStart { get; }

    public ulong CanaryStart { get; }

    public bool Legacy => Transport.Legacy;

    /// <summary>How often a reset found the device in DEVICE_NEEDS_RESET.</summary>
    public int NeedsResetSeen { get; private set; }

    public int Operations { get; private set; }

    /// <summary>Operations made while the device was live (DRIVER_OK, no DEVICE_NEEDS_RESET): the ones that test it.</summary>
    public int LiveOperations { get; private set; }

    /// <summary>Where the run is: goes into every failure message.</summary>
    public string Where => $"seed 0x{Seed:x}, iteration {_iteration}, {_operation}";

    private static byte CanaryByte(int i) => (byte)(0xc3 ^ (i * 7) ^ (i >> 8));

    /// <summary>Runs <paramref name="batches"/> batches of <paramref name="perBatch"/> random operations, each followed by reset and a valid request.</summary>
    public void Run(int batches, int perBatch)
    {
        SetUp();
        for (int b = 0; b < batches; b++)
        {
            for (int i = 0; i < perBatch; i++)
            {
                _iteration = (b * perBatch) + i;
                if ((Transport.Status & (VirtioStatus.DriverOk | VirtioStatus.DeviceNeedsReset)) == VirtioStatus.DriverOk)
                {
                    LiveOperations++;
                }
                else if (Random.Next(3) == 0)
                {
                    // A broken device mostly ignores us: recover it now and then, so more garbage reaches a live one.
                    if (Transport.Error is not null)
                    {
                        NeedsResetSeen++;
                    }

                    _operation = "recovering set-up";
                    SetUp();
                }

                RandomOperation();
                Operations++;
                CheckNoHostError();
            }

            if (Transport.Error is not null)
            {
                NeedsResetSeen++;
            }

            _operation = $"liveness check after batch {b}";
            SetUp();
            try
            {
                _target.CheckLive(this, b);
            }
            catch (Exception e)
            {
                throw new InvalidOperationException($"{Where}: the device did not serve a valid request after reset (status 0x{Transport.Status:x}, error: {Transport.Error ?? "none"}): {e.Message}", e);
            }
        }
    }

    /// <summary>Reset through the status register (checked to clear everything, DEVICE_NEEDS_RESET included), then the whole probe.</summary>
    private void SetUp()
    {
        Write(RegStatus, 4, 0);
        ulong status = Read(RegStatus, 4);
        Assert.True(status == 0 && Transport.Error is null, $"{Where}: status 0x{status:x}, error '{Transport.Error}' after reset");
        Guard("initialize", () =>
        {
            Driver.Initialize();
            return 0UL;
        });
        _legacyPageSize = 4096; // what the legacy probe writes
        Assert.True((Transport.Status & VirtioStatus.DriverOk) != 0 && Transport.Error is null, $"{Where}: set-up failed: status 0x{Transport.Status:x}, error '{Transport.Error}'");
    }

    /// <summary>A device thread that hit a host exception reports it as an "internal error": that is a bug.</summary>
    private void CheckNoHostError()
    {
        string? error = Transport.Error;
        Assert.False(error is not null && error.StartsWith("internal error", StringComparison.Ordinal), $"{Where}: a host exception escaped on the device thread: {error}");
    }

    public void CheckCanary()
    {
        var canary = Ram.GetSpan(CanaryStart, (int)CanarySize);
        for (int page = 0; page < canary.Length; page += (int)GuestRam.PageSize)
        {
            var p = canary.Slice(page, (int)GuestRam.PageSize);
            if (_target.MayZeroPages && !p.ContainsAnyExcept((byte)0))
            {
                continue; // a balloon inflate named this page: it was given back, and reads zero
            }

            for (int i = 0; i < p.Length; i++)
            {
                Assert.True(p[i] == CanaryByte(page + i), $"seed 0x{Seed:x}: canary byte 0x{CanaryStart + (ulong)(page + i):x} changed to 0x{p[i]:x2}: the device wrote where no buffer let it");
            }
        }
    }

    // ---- transport calls, checked ----------------------------------------------------------------

    public ulong Read(ulong offset, int size) => Guard($"read 0x{offset:x}/{size}", () => Transport.Read(offset, size));

    public void Write(ulong offset, int size, ulong value) => Guard($"write 0x{offset:x}/{size} = 0x{value:x}", () =>
    {
        Transport.Write(offset, size, value);
        return 0UL;
    });

    public void Kick(int queue) => Write(RegQueueNotify, 4, (uint)queue);

    private ulong Guard(string call, Func<ulong> action)
    {
        long start = Stopwatch.GetTimestamp();
        ulong result = 0;
        Exception? thrown = null;
        try
        {
            result = action();
        }
        catch (Exception e)
        {
            thrown = e;
        }

        var took = Stopwatch.GetElapsedTime(start);
        Assert.True(thrown is null, $"{Where}: {call} threw {thrown}");
        Assert.True(took < CallLimit, $"{Where}: {call} blocked for {took.TotalMilliseconds:F0} ms");
        return result;
    }

    // ---- guest memory helpers --------------------------------------------------------------------

    /// <summary>Scratch memory for fuzz buffers (reused round-robin; the device may be reading the old contents).</summary>
    public ulong Scratch(uint length, ulong align = 16)
    {
        ulong zone = CanaryStart - ScratchStart;
        length = (uint)Math.Min(length, zone);
        ulong at = (_scratch + align - 1) & ~(align - 1);
        if (at + length > CanaryStart)
        {
            at = ScratchStart;
        }

        _scratch = at + length;
        return at;
    }

    /// <summary>Scratch memory filled with <paramref name="data"/>.</summary>
    public ulong ScratchWith(ReadOnlySpan<byte> data)
    {
        ulong at = Scratch((uint)data.Length);
        data.CopyTo(Ram.GetSpan(at, data.Length));
        return at;
    }

    /// <summary>A scratch buffer of random bytes, readable or writable.</summary>
    public DescriptorSegment RandomBytes(uint length, bool writable)
    {
        ulong at = Scratch(length);
        Random.NextBytes(Ram.GetSpan(at, (int)Math.Min(length, CanaryStart - at)));
        return new DescriptorSegment(at, length, writable);
    }

    /// <summary>
    /// A buffer from anywhere in the 64-bit space: inside RAM, across its edges, wrapping, huge, empty.
    /// One wholly inside RAM that would touch the canary is moved into the scratch zone.
    /// </summary>
    public (ulong Address, uint Length) RandomRange()
    {
        var (address, length) = FuzzVirtqueueTests.RandomRange(Random);
        if (Ram.Contains(address, length) && address + length > CanaryStart)
        {
            length = (uint)Math.Min(length, CanaryStart - ScratchStart);
            address = ScratchStart + (ulong)Random.NextInt64(0, (long)(CanaryStart - ScratchStart - length) + 1);
        }

        return (address, length);
    }

    public DescriptorSegment RandomSegment()
    {
        var (address, length) = RandomRange();
        return new DescriptorSegment(address, length, Random.Next(2) == 0);
    }

    // ---- the operations --------------------------------------------------------------------------

    private DriverQueue RandomQueue() => Driver.Queue(Random.Next(Transport.Device.QueueCount));

    private ushort RandomFlags() => (ushort)(Random.Next(6) == 0 ? Random.Next(65536) : Random.Next(8));

    private ushort RandomNext(DriverQueue q) => (ushort)(Random.Next(4) == 0 ? Random.Next(65536) : Random.Next(q.Size));

    private void RandomOperation()
    {
        int roll = Random.Next(100);
        switch (roll)
        {
            case < 15:
                _operation = "garbage descriptors";
                GarbageDescriptors();
                break;
            case < 25:
                _operation = "garbage avail ring";
                GarbageAvail();
                break;
            case < 40:
                _operation = "random chain";
                Publish(new FuzzRequest(Random.Next(Transport.Device.QueueCount), [.. Enumerable.Range(0, Random.Next(1, 7)).Select(_ => RandomSegment())]), indirect: Random.Next(4) == 0);
                break;
            case < 47:
                _operation = "random indirect table";
                RandomIndirect();
                break;
            case < 48:
                _operation = "huge chain";
                HugeChain();
                break;
            case < 70:
                _operation = "malformed request";
                Publish(_target.MalformedRequest(this), indirect: Random.Next(3) == 0);
                break;
            case < 74:
                _operation = "kick";
                Kick(Random.Next(3) == 0 ? Random.Next() : Random.Next(Transport.Device.QueueCount + 2));
                break;
            case < 82:
                RandomRegisterWrite();
                break;
            case < 88:
                _operation = "register read";
                Read((ulong)Random.Next(0x200), 1 << Random.Next(4));
                break;
            case < 94:
                _operation = "host event";
                _target.HostEvent(this);
                break;
            case < 96:
                _operation = "re-initialize";
                SetUp();
                break;
            default:
                _operation = "yield";
                Thread.Sleep(Random.Next(2)); // let the device thread catch up with what we queued
                break;
        }
    }

    private void GarbageDescriptors()
    {
        var q = RandomQueue();
        int n = Random.Next(1, 5);
        for (int i = 0; i < n; i++)
        {
            var (address, length) = RandomRange();
            q.WriteDescriptor((ushort)Random.Next(q.Size), address, length, RandomFlags(), RandomNext(q));
        }

        if (Random.Next(2) == 0)
        {
            q.Publish((ushort)Random.Next(q.Size));
            Kick(q.Index);
        }
    }

    private void GarbageAvail()
    {
        var q = RandomQueue();
        switch (Random.Next(6))
        {
            case 0:
                q.SetAvailIndex((ushort)Random.Next(65536));
                break;
            case 1:
                q.SetAvailIndex((ushort)(q.AvailIndex + Random.Next(1, 4)));
                break;
            case 2:
                BinaryPrimitives.WriteUInt16LittleEndian(Ram.GetSpan(q.AvailAddress + 4 + (2UL * (ulong)Random.Next(q.Size)), 2), RandomNext(q));
                break;
            case 3:
                q.SetAvailFlags((ushort)Random.Next(65536));
                break;
            case 4:
                q.SetUsedEvent((ushort)Random.Next(65536));
                break;
            default:
                BinaryPrimitives.WriteUInt16LittleEndian(Ram.GetSpan(q.UsedAddress + 2, 2), (ushort)Random.Next(65536)); // the device's own index
                break;
        }

        if (Random.Next(2) == 0)
        {
            Kick(q.Index);
        }
    }

    private void RandomIndirect()
    {
        var q = RandomQueue();
        int count = Random.Next(1, 24);
        ulong table = Scratch((uint)(count * Virtqueue.DescriptorSize), Random.Next(4) == 0 ? 1UL : 16UL);
        for (int i = 0; i < count; i++)
        {
            var (address, length) = RandomRange();
            ushort flags = RandomFlags();
            DriverQueue.WriteDescriptorAt(Ram, table + ((ulong)i * Virtqueue.DescriptorSize), address, length, flags, (ushort)(Random.Next(4) == 0 ? Random.Next(65536) : Random.Next(count)));
        }

        uint tableLength = Random.Next(4) switch
        {
            0 => (uint)Random.Next(),
            1 => (uint)((count * Virtqueue.DescriptorSize) + Random.Next(-15, 16)),
            _ => (uint)(count * Virtqueue.DescriptorSize),
        };
        ulong tableAddress = Random.Next(8) == 0 ? RandomRange().Address : table;
        ushort headFlags = (ushort)(Virtqueue.DescIndirect | (Random.Next(5) == 0 ? Virtqueue.DescNext : 0) | (Random.Next(3) == 0 ? Virtqueue.DescWrite : 0));
        ushort head = (ushort)Random.Next(q.Size);
        q.WriteDescriptor(head, tableAddress, tableLength, headFlags, RandomNext(q));
        q.Publish(head);
        Kick(q.Index);
    }

    /// <summary>
    /// Up to 4096 indirect descriptors, each up to all of RAM: gigabytes of readable (and some writable)
    /// buffer in one request. Readable ones may cover the canary (the device only reads them).
    /// </summary>
    private void HugeChain()
    {
        var q = RandomQueue();
        int count = Random.Next(2) == 0 ? Random.Next(1, 64) : Random.Next(1, Virtqueue.MaxIndirectDescriptors + 1);
        int readable = Random.Next(4) == 0 ? Random.Next(count + 1) : count;

        // A third of them read exactly 4 GiB (must be refused) or just under it (the largest allowed).
        bool edge = Random.Next(3) == 0;
        ulong shortBy = Random.Next(3) switch { 0 => 0, 1 => 1, _ => (ulong)Random.Next(1, 8192) };
        if (edge)
        {
            count = readable = (int)((1UL << 32) / RamSize);
        }

        ulong table = Scratch((uint)(count * Virtqueue.DescriptorSize));
        for (int i = 0; i < count; i++)
        {
            bool writable = i >= readable;
            ulong address, length;
            if (edge)
            {
                length = i == count - 1 ? RamSize - shortBy : RamSize;
                address = Ram.BaseAddress;
            }
            else if (writable)
            {
                length = (ulong)Random.NextInt64(1, (long)(CanaryStart - ScratchStart) + 1);
                address = CanaryStart - length;
            }
            else
            {
                length = Random.Next(2) == 0 ? RamSize : (ulong)Random.NextInt64(1, (long)RamSize + 1);
                address = Ram.EndAddress - length;
            }

            ushort flags = (ushort)((writable ? Virtqueue.DescWrite : 0) | (i + 1 < count ? Virtqueue.DescNext : 0));
            DriverQueue.WriteDescriptorAt(Ram, table + ((ulong)i * Virtqueue.DescriptorSize), address, (uint)length, flags, (ushort)(i + 1));
        }

        ushort head = (ushort)Random.Next(q.Size);
        q.WriteDescriptor(head, table, (uint)(count * Virtqueue.DescriptorSize), Virtqueue.DescIndirect, 0);
        q.Publish(head);
        Kick(q.Index);
    }

    /// <summary>Writes <paramref name="request"/> as a chain (direct from a random slot, or through an indirect table), publishes and kicks it.</summary>
    public void Publish(FuzzRequest request, bool indirect)
    {
        var q = Driver.Queue(Math.Clamp(request.Queue, 0, Transport.Device.QueueCount - 1));
        var segments = request.Segments.Count > 0 ? request.Segments : [new DescriptorSegment(ScratchStart, 0, false)];
        int n = segments.Count;
        if (indirect || n > q.Size)
        {
            ulong table = Scratch((uint)(n * Virtqueue.DescriptorSize));
            for (int i = 0; i < n; i++)
            {
                var s = segments[i];
                ushort flags = (ushort)((s.Writable ? Virtqueue.DescWrite : 0) | (i + 1 < n ? Virtqueue.DescNext : 0));
                DriverQueue.WriteDescriptorAt(Ram, table + ((ulong)i * Virtqueue.DescriptorSize), s.Address, s.Length, flags, (ushort)(i + 1));
            }

            ushort slot = (ushort)Random.Next(q.Size);
            q.WriteDescriptor(slot, table, (uint)(n * Virtqueue.DescriptorSize), Virtqueue.DescIndirect, 0);
            q.Publish(slot);
        }
        else
        {
            int start = Random.Next(q.Size);
            for (int i = 0; i < n; i++)
            {
                var s = segments[i];
                ushort flags = (ushort)((s.Writable ? Virtqueue.DescWrite : 0) | (i + 1 < n ? Virtqueue.DescNext : 0));
                q.WriteDescriptor((ushort)((start + i) % q.Size), s.Address, s.Length, flags, (ushort)((start + i + 1) % q.Size));
            }

            q.Publish((ushort)start);
        }

        Kick(q.Index);
    }

    private static readonly ulong[] Registers =
    [
        RegMagic, RegVersion, RegDeviceId, RegVendorId, RegDeviceFeatures, RegDeviceFeaturesSel, RegDriverFeatures, RegDriverFeaturesSel,
        RegLegacyGuestPageSize, RegQueueSel, RegQueueNumMax, RegQueueNum, RegLegacyQueueAlign, RegLegacyQueuePfn, RegQueueReady,
        RegQueueNotify, RegInterruptStatus, RegInterruptAck, RegStatus, RegQueueDescLow, RegQueueDescHigh, RegQueueDriverLow,
        RegQueueDriverHigh, RegQueueDeviceLow, RegQueueDeviceHigh, RegConfigGeneration, ConfigOffset, ConfigOffset + 4, ConfigOffset + 8,
    ];

    private static readonly uint[] Statuses =
    [
        0, VirtioStatus.Acknowledge, VirtioStatus.Driver, VirtioStatus.FeaturesOk, VirtioStatus.DriverOk,
        VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk,
        VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.FeaturesOk | VirtioStatus.DriverOk,
        VirtioStatus.Acknowledge | VirtioStatus.Driver | VirtioStatus.DriverOk,
        VirtioStatus.DeviceNeedsReset, VirtioStatus.Failed, 0xff,
    ];

    private void RandomRegisterWrite()
    {
        bool known = Random.Next(4) != 0;
        ulong offset = known ? Registers[Random.Next(Registers.Length)] + (Random.Next(8) == 0 ? (ulong)Random.Next(1, 4) : 0) : (ulong)Random.Next(0x200);
        int size = Random.Next(4) == 0 ? 1 << Random.Next(4) : 4;
        ulong value = Random.Next(3) == 0 ? (ulong)Random.NextInt64() : (uint)Random.Next();
        switch (offset)
        {
            case RegStatus:
                value = Random.Next(4) == 0 ? (uint)Random.Next(256) : Statuses[Random.Next(Statuses.Length)];
                break;
            case RegQueueSel:
                value = Random.Next(3) == 0 ? (uint)Random.Next() : (uint)Random.Next(Transport.Device.QueueCount + 2);
                break;
            case RegQueueReady:
                value = (uint)Random.Next(2);
                break;
            case RegQueueNum:
                value = Random.Next(2) == 0 ? (uint)(1 << Random.Next(10)) : (uint)Random.Next(70000);
                break;
            case RegQueueDescLow or RegQueueDriverLow or RegQueueDeviceLow:
                value = Random.Next(2) == 0 ? (uint)(Ram.BaseAddress + (ulong)Random.Next((int)RamSize)) : (uint)value;
                break;
            case RegQueueDescHigh or RegQueueDriverHigh or RegQueueDeviceHigh:
                value = Random.Next(2) == 0 ? 0 : (uint)value;
                break;
            case RegLegacyQueuePfn:
                value = Random.Next(2) == 0 ? (uint)(Ram.BaseAddress / _legacyPageSize) + (uint)Random.Next((int)(RamSize / 4096)) : (uint)value;
                break;
            case RegLegacyGuestPageSize:
                value = Random.Next(2) == 0 ? 4096u : (uint)(1 << Random.Next(20));
                break;
        }

        value = KeepRingsOffCanary(offset, size, value);
        _operation = $"register write 0x{offset:x}/{size} = 0x{value:x}";
        Write(offset, size, value);
    }

    /// <summary>
    /// Rings set up by random register writes may legitimately be written by the device: keep any that
    /// would land in RAM clear of the canary (modern: the low address word; legacy: PFN × page size).
    /// </summary>
    private ulong KeepRingsOffCanary(ulong offset, int size, ulong value)
    {
        if (size != 4)
        {
            return value;
        }

        ulong danger = CanaryStart - RingGuard;
        switch (offset)
        {
            case RegQueueDescLow or RegQueueDriverLow or RegQueueDeviceLow when (uint)value >= danger && (uint)value < Ram.EndAddress:
                return (uint)value - RamSize; // just below RAM
            case RegLegacyGuestPageSize when Legacy:
                _legacyPageSize = (uint)value;
                return value;
            case RegLegacyQueuePfn when Legacy:
                ulong desc = (uint)value * (ulong)_legacyPageSize;
                return desc >= danger && desc < Ram.EndAddress ? 0 : value;
            default:
                return value;
        }
    }

    /// <summary>A device thread is stuck: leave its RAM mapped (leaked) rather than pull it from under the thread.</summary>
    public void Abandon() => _abandoned = true;

    public void Dispose()
    {
        if (!_abandoned)
        {
            _rig.Dispose();
        }
    }
}
