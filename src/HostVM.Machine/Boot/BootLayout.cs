namespace HostVM.Machine.Boot;

/// <summary>Checks that boot payloads fit in guest RAM and do not overlap, before anything is copied.</summary>
public static class BootLayout
{
    private const ulong MiB = 1UL << 20;

    /// <summary>
    /// Throws <see cref="BootImageException"/> when a payload lies (partly) outside RAM
    /// [<paramref name="ramBase"/>, ramBase + <paramref name="ramSize"/>) or overlaps another one;
    /// the message names the payloads, their ranges and what to change.
    /// </summary>
    public static void Validate(IReadOnlyList<BootPayload> payloads, ulong ramBase, ulong ramSize)
    {
        ArgumentNullException.ThrowIfNull(payloads);
        ulong ramEnd = ramBase + ramSize;
        foreach (var payload in payloads)
        {
            ulong start = payload.LoadAddress;
            ulong end = payload.End;
            if (start < ramBase)
            {
                throw new BootImageException(
                    $"{payload.Name} needs 0x{end - start:x} bytes at 0x{start:x} but RAM starts at 0x{ramBase:x}: " +
                    $"it must be linked or loaded at 0x{ramBase:x} or above");
            }

            if (end > ramEnd)
            {
                throw new BootImageException(
                    $"{payload.Name} needs 0x{end - start:x} bytes at 0x{start:x} but RAM ends at 0x{ramEnd:x}: " +
                    $"use --memory {SuggestMemory(end - ramBase)} or more");
            }
        }

        for (int i = 0; i < payloads.Count; i++)
        {
            for (int j = 0; j < i; j++)
            {
                if (Overlap(payloads[i], payloads[j]))
                {
                    var a = payloads[i];
                    var b = payloads[j];
                    throw new BootImageException(
                        $"{a.Name} 0x{a.LoadAddress:x}-0x{a.End:x} overlaps {b.Name} 0x{b.LoadAddress:x}-0x{b.End:x}: " +
                        "load one of them at another address or give the machine more memory");
                }
            }
        }
    }

    private static bool Overlap(BootPayload a, BootPayload b) =>
        a.Segments.Any(x => x.MemorySize > 0 && b.Segments.Any(y => y.MemorySize > 0 && x.Address < y.End && y.Address < x.End));

    /// <summary>A memory size of at least <paramref name="bytes"/>, rounded up to a power of two ("64M", "2G").</summary>
    private static string SuggestMemory(ulong bytes)
    {
        ulong mib = Math.Max(1, (bytes + MiB - 1) / MiB);
        ulong size = 1;
        while (size < mib)
        {
            size <<= 1;
        }

        return size >= 1024 ? $"{size / 1024}G" : $"{size}M";
    }
}
