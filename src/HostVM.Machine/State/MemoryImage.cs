using System.Security.Cryptography;
using HostVM.Machine.Memory;

namespace HostVM.Machine.State;

/// <summary>
/// A snapshot's memory file: guest RAM as a raw image, each page at its own offset, so that a restore can map it (and fault
/// pages in as the guest touches them) as well as read it. Pages it does not hold are holes: a full snapshot stores no zero
/// page, so a 1 GiB guest that touched 100 MiB costs about 100 MiB of disk; a diff stores only the pages dirtied since its
/// parent.
/// </summary>
public static class MemoryImage
{
    private const int MaxRun = 64 << 20; // bytes written or read in one call

    /// <summary>
    /// Writes <paramref name="ram"/> to <paramref name="path"/> (replacing it) and syncs it. A full snapshot when
    /// <paramref name="dirtyPage"/> is null (every page with a nonzero byte); else a diff of the pages it names (by page
    /// index from the RAM's start), zero or not. The machine must not run meanwhile. Returns the map for the state file.
    /// </summary>
    public static unsafe MemoryMap Write(GuestRam ram, string path, Func<ulong, bool>? dirtyPage = null)
    {
        ArgumentNullException.ThrowIfNull(ram);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var extents = new List<(ulong Offset, ulong Length)>();
        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            RandomAccess.SetLength(handle, (long)ram.Size); // holes everywhere until written
            ulong pages = ram.Size / MemoryMap.PageSize;
            ulong runStart = 0, runLength = 0;
            for (ulong page = 0; page <= pages; page++)
            {
                bool stored = page < pages && (dirtyPage is null ? !IsZero(ram, page) : dirtyPage(page));
                if (stored && runLength < MaxRun)
                {
                    runStart = runLength == 0 ? page * MemoryMap.PageSize : runStart;
                    runLength += MemoryMap.PageSize;
                    continue;
                }

                if (runLength > 0)
                {
                    var bytes = new ReadOnlySpan<byte>(ram.Pointer + runStart, (int)runLength);
                    RandomAccess.Write(handle, bytes, (long)runStart);
                    digest.AppendData(bytes);
                    if (extents.Count > 0 && extents[^1].Offset + extents[^1].Length == runStart)
                    {
                        extents[^1] = (extents[^1].Offset, extents[^1].Length + runLength);
                    }
                    else
                    {
                        extents.Add((runStart, runLength));
                    }
                }

                (runStart, runLength) = stored ? (page * MemoryMap.PageSize, MemoryMap.PageSize) : (0, 0);
            }

            RandomAccess.FlushToDisk(handle);
        }

        return new MemoryMap(ram.BaseAddress, ram.Size, dirtyPage is not null, extents, digest.GetHashAndReset());
    }

    /// <summary>
    /// Reads the pages <paramref name="map"/> says <paramref name="path"/> holds into <paramref name="ram"/> and checks their
    /// digest. For a full snapshot <paramref name="ram"/> must be fresh (zero); for a diff it must hold its parent. On an
    /// error the RAM holds a part of the file: the caller discards the machine.
    /// </summary>
    /// <exception cref="SnapshotFormatException">The file does not fit the map or the machine, or its pages are damaged.</exception>
    public static unsafe void Load(GuestRam ram, string path, MemoryMap map, string name)
    {
        ArgumentNullException.ThrowIfNull(ram);
        ArgumentNullException.ThrowIfNull(map);
        const string Where = "the memory file";
        if (map.RamSize != ram.Size || map.RamBase != ram.BaseAddress)
        {
            throw SnapshotFile.Bad(name, Where, $"RAM of {map.RamSize >> 20} MiB at 0x{map.RamBase:x}; this machine has {ram.Size >> 20} MiB at 0x{ram.BaseAddress:x}");
        }

        using var digest = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = RandomAccess.GetLength(handle);
            foreach (var (offset, extent) in map.Extents)
            {
                if ((ulong)length < offset + extent)
                {
                    throw SnapshotFile.Bad(name, Where, $"{length} bytes, cut short of the map's extent at 0x{offset:x}");
                }

                for (ulong at = offset; at < offset + extent; at += MaxRun)
                {
                    var bytes = new Span<byte>(ram.Pointer + at, (int)Math.Min(MaxRun, offset + extent - at));
                    if (RandomAccess.Read(handle, bytes, (long)at) != bytes.Length)
                    {
                        throw SnapshotFile.Bad(name, Where, $"a short read at 0x{at:x}");
                    }

                    digest.AppendData(bytes);
                }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw SnapshotFile.Bad(name, Where, $"cannot be read: {e.Message}");
        }

        if (!digest.GetHashAndReset().AsSpan().SequenceEqual(map.Digest))
        {
            throw SnapshotFile.Bad(name, Where, "its pages do not match the memory map's checksum (damaged, or another snapshot's)");
        }
    }

    private static unsafe bool IsZero(GuestRam ram, ulong page) =>
        !new ReadOnlySpan<byte>(ram.Pointer + (page * MemoryMap.PageSize), (int)MemoryMap.PageSize).ContainsAnyExcept((byte)0);
}
