namespace HostVM.Machine.Memory;

/// <summary>
/// The physical address space: RAM plus device windows. Harts go to RAM through their TLBs;
/// only TLB misses, device accesses and pages that devices overlay come here.
/// </summary>
public sealed class Bus
{
    private MmioRegion[] _regions = [];

    public Bus(GuestRam ram)
    {
        Ram = ram;
    }

    public GuestRam Ram { get; }

    public IReadOnlyList<MmioRegion> Regions => _regions;

    /// <summary>Maps <paramref name="device"/> at [baseAddress, baseAddress + size). Windows may not overlap each other.</summary>
    public void Map(ulong baseAddress, ulong size, IMmioDevice device)
    {
        ArgumentNullException.ThrowIfNull(device);
        if (size == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), "A device window must not be empty.");
        }

        foreach (var r in _regions)
        {
            if (baseAddress < r.Base + r.Size && r.Base < baseAddress + size)
            {
                throw new InvalidOperationException(
                    $"Device window 0x{baseAddress:x}+0x{size:x} overlaps {r.Device.GetType().Name} at 0x{r.Base:x}.");
            }
        }

        var regions = new List<MmioRegion>(_regions) { new(baseAddress, size, device) };
        regions.Sort((a, b) => a.Base.CompareTo(b.Base));
        _regions = [.. regions];
    }

    /// <summary>
    /// True when the 4 KiB page at <paramref name="pageAddress"/> is plain RAM that no device window
    /// overlays, so a TLB may map it straight to host memory.
    /// </summary>
    public bool IsPlainRamPage(ulong pageAddress)
    {
        ulong page = pageAddress & ~(GuestRam.PageSize - 1);
        if (!Ram.Contains(page, GuestRam.PageSize))
        {
            return false;
        }

        foreach (var r in _regions)
        {
            if (page < r.Base + r.Size && r.Base < page + GuestRam.PageSize)
            {
                return false;
            }
        }

        return true;
    }

    public MmioRegion? FindRegion(ulong address)
    {
        foreach (var r in _regions)
        {
            if (address - r.Base < r.Size)
            {
                return r;
            }
        }

        return null;
    }

    /// <summary>A physical load. False means nothing answers there (an access fault for the hart).</summary>
    public unsafe bool TryRead(ulong address, int size, out ulong value)
    {
        var region = FindRegion(address);
        if (region is not null)
        {
            if (address - region.Base + (ulong)size > region.Size)
            {
                value = 0;
                return false;
            }

            value = region.Device.Read(address - region.Base, size);
            return true;
        }

        byte* p = Ram.HostPointer(address, (ulong)size);
        if (p == null)
        {
            value = 0;
            return false;
        }

        value = size switch
        {
            1 => *p,
            2 => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ushort>(p),
            4 => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<uint>(p),
            _ => System.Runtime.CompilerServices.Unsafe.ReadUnaligned<ulong>(p),
        };
        return true;
    }

    /// <summary>A physical store. False means nothing answers there (an access fault for the hart).</summary>
    public unsafe bool TryWrite(ulong address, int size, ulong value)
    {
        var region = FindRegion(address);
        if (region is not null)
        {
            if (address - region.Base + (ulong)size > region.Size)
            {
                return false;
            }

            region.Device.Write(address - region.Base, size, value);
            return true;
        }

        byte* p = Ram.HostPointer(address, (ulong)size);
        if (p == null)
        {
            return false;
        }

        switch (size)
        {
            case 1: *p = (byte)value; break;
            case 2: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(p, (ushort)value); break;
            case 4: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(p, (uint)value); break;
            default: System.Runtime.CompilerServices.Unsafe.WriteUnaligned(p, value); break;
        }

        return true;
    }
}
