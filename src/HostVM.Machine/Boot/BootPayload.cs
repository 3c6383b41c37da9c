using HostVM.Machine.Memory;

namespace HostVM.Machine.Boot;

/// <summary>
/// Something to put in guest RAM before the harts start: firmware, a kernel, an initrd. <see cref="Name"/>
/// is what messages call it ("firmware", "kernel", "initrd" or the file name).
/// </summary>
public sealed record BootPayload(string Name, ulong Entry, IReadOnlyList<BootSegment> Segments)
{
    /// <summary>Lowest address the payload occupies (where a raw image or Image is loaded).</summary>
    public ulong LoadAddress => Segments.Count == 0 ? 0 : Segments.Min(s => s.Address);

    /// <summary>First address after the payload's highest segment.</summary>
    public ulong End => Segments.Count == 0 ? 0 : Segments.Max(s => s.End);

    /// <summary>Raw bytes at <paramref name="address"/>; execution (if any) starts at their first byte.</summary>
    public static BootPayload Raw(string name, ReadOnlyMemory<byte> data, ulong address)
    {
        if (data.IsEmpty)
        {
            throw new BootImageException($"{name}: is empty");
        }

        if (address + (ulong)data.Length < address)
        {
            throw new BootImageException($"{name}: 0x{data.Length:x} bytes at 0x{address:x} run past the end of the address space");
        }

        return new BootPayload(name, address, [new BootSegment(address, data, (ulong)data.Length)]);
    }

    /// <summary>
    /// Copies every segment into <paramref name="ram"/> and zeroes the part of each beyond its data.
    /// Check the layout with <see cref="BootLayout.Validate"/> first; a segment outside RAM is reported here too.
    /// </summary>
    public void CopyTo(GuestRam ram)
    {
        ArgumentNullException.ThrowIfNull(ram);
        foreach (var segment in Segments)
        {
            if (!ram.Contains(segment.Address, segment.MemorySize))
            {
                throw new BootImageException(
                    $"{Name}: 0x{segment.MemorySize:x} bytes at 0x{segment.Address:x} do not fit in RAM 0x{ram.BaseAddress:x}-0x{ram.EndAddress:x}");
            }

            ram.Write(segment.Address, segment.Data.Span);
            ulong zeroAt = segment.Address + (ulong)segment.Data.Length;
            ulong zeroLength = segment.MemorySize - (ulong)segment.Data.Length;
            while (zeroLength > 0)
            {
                int chunk = (int)Math.Min(zeroLength, 1UL << 30);
                ram.GetSpan(zeroAt, chunk).Clear();
                zeroAt += (ulong)chunk;
                zeroLength -= (ulong)chunk;
            }
        }
    }
}
