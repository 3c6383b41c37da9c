using System.Runtime.InteropServices;

namespace HostVM.Machine.Memory;

/// <summary>
/// Large, page-aligned, zero-filled host allocations for guest RAM. On Linux they come straight from
/// mmap, so untouched guest pages cost no host memory and allocation is instant whatever the size;
/// elsewhere they fall back to the runtime's aligned allocator.
/// </summary>
internal static unsafe partial class HostMemory
{
    private const int ProtRead = 1, ProtWrite = 2;
    private const int MapPrivate = 0x02, MapAnonymous = 0x20, MapNoReserve = 0x4000;
    private const int MadvDontNeed = 4;

    public static byte* AllocateZeroed(ulong size)
    {
        if (OperatingSystem.IsLinux())
        {
            void* p = Mmap(null, (nuint)size, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
            if (p == (void*)-1)
            {
                throw new OutOfMemoryException($"mmap of {size} bytes for guest RAM failed (errno {Marshal.GetLastPInvokeError()}).");
            }

            return (byte*)p;
        }

        byte* memory = (byte*)NativeMemory.AlignedAlloc((nuint)size, (nuint)GuestRam.PageSize);
        NativeMemory.Clear(memory, (nuint)size);
        return memory;
    }

    public static void Free(byte* memory, ulong size)
    {
        if (OperatingSystem.IsLinux())
        {
            _ = Munmap(memory, (nuint)size);
        }
        else
        {
            NativeMemory.AlignedFree(memory);
        }
    }

    /// <summary>
    /// Returns the pages to the host; they read as zero when next touched (balloon inflation).
    /// Elsewhere than Linux the memory stays allocated and is only zeroed.
    /// </summary>
    public static void Discard(byte* memory, ulong size)
    {
        if (!OperatingSystem.IsLinux() || Madvise(memory, (nuint)size, MadvDontNeed) != 0)
        {
            NativeMemory.Clear(memory, (nuint)size);
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(void* address, nuint length);
}
