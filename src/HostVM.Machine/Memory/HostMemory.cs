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
    private const int MapPrivate = 0x02, MapFixed = 0x10, MapAnonymous = 0x20, MapNoReserve = 0x4000;
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
    /// Elsewhere than Linux the memory stays allocated and is only zeroed. Pages mapped from a file
    /// (<see cref="MapFilePrivate"/>) would read the file again after MADV_DONTNEED, so they get fresh
    /// anonymous pages instead (or zeroes written, if the kernel refuses another mapping).
    /// </summary>
    public static void Discard(byte* memory, ulong size, bool fileBacked)
    {
        if (!OperatingSystem.IsLinux())
        {
            NativeMemory.Clear(memory, (nuint)size);
        }
        else if (fileBacked)
        {
            if (Mmap(memory, (nuint)size, ProtRead | ProtWrite, MapPrivate | MapAnonymous | MapNoReserve | MapFixed, -1, 0) == (void*)-1)
            {
                NativeMemory.Clear(memory, (nuint)size);
            }
        }
        else if (Madvise(memory, (nuint)size, MadvDontNeed) != 0)
        {
            NativeMemory.Clear(memory, (nuint)size);
        }
    }

    /// <summary>
    /// Maps <paramref name="file"/> copy-on-write over the allocation at <paramref name="memory"/> (Linux only): its pages are
    /// read in as they are first touched, writes stay in this process and never reach the file. The file must be at least
    /// <paramref name="size"/> bytes (a page past its end would fault the process).
    /// </summary>
    public static void MapFilePrivate(byte* memory, ulong size, Microsoft.Win32.SafeHandles.SafeFileHandle file)
    {
        bool added = false;
        try
        {
            file.DangerousAddRef(ref added);
            if (Mmap(memory, (nuint)size, ProtRead | ProtWrite, MapPrivate | MapFixed, (int)file.DangerousGetHandle(), 0) == (void*)-1)
            {
                throw new IOException($"mmap of the memory file over guest RAM failed (errno {Marshal.GetLastPInvokeError()}).");
            }
        }
        finally
        {
            if (added)
            {
                file.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* address, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(void* address, nuint length);
}
