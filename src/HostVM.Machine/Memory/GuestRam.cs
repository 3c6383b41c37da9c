using System.Runtime.CompilerServices;

namespace HostVM.Machine.Memory;

/// <summary>
/// Guest physical RAM: one native, zeroed allocation at a fixed guest physical base.
/// Hot paths reach it through <see cref="Pointer"/>; everything else uses the checked helpers.
/// </summary>
public sealed unsafe class GuestRam : IDisposable
{
    public const ulong DefaultBase = 0x8000_0000;
    public const ulong PageSize = 4096;

    private byte* _memory;

    public GuestRam(ulong size, ulong baseAddress = DefaultBase)
    {
        if (size == 0 || size % PageSize != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "RAM size must be a non-zero multiple of 4 KiB.");
        }

        Size = size;
        BaseAddress = baseAddress;
        _memory = HostMemory.AllocateZeroed(size);
        DirtyPages = new DirtyPageLog(baseAddress, size);
    }

    public ulong BaseAddress { get; }

    public ulong Size { get; }

    public ulong EndAddress => BaseAddress + Size;

    /// <summary>
    /// Which pages were written while the log is on. Whatever writes this RAM while the machine runs
    /// marks it (harts' slow-path stores, devices after their writes); the checked helpers below do not:
    /// they are for loading and inspecting RAM while nothing runs.
    /// </summary>
    public DirtyPageLog DirtyPages { get; }

    /// <summary>Host address of guest physical <see cref="BaseAddress"/>.</summary>
    public byte* Pointer => _memory;

    /// <summary>True when [address, address + length) lies wholly inside RAM.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Contains(ulong address, ulong length)
    {
        ulong offset = address - BaseAddress;
        return address >= BaseAddress && offset <= Size && length <= Size - offset;
    }

    /// <summary>Host pointer for a guest physical range, or null when any byte of it is outside RAM.</summary>
    public byte* HostPointer(ulong address, ulong length) =>
        Contains(address, length) ? _memory + (address - BaseAddress) : null;

    public Span<byte> GetSpan(ulong address, int length)
    {
        if (length < 0 || !Contains(address, (ulong)length))
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"Guest range 0x{address:x}+0x{length:x} is outside RAM.");
        }

        return new Span<byte>(_memory + (address - BaseAddress), length);
    }

    public void Write(ulong address, ReadOnlySpan<byte> data) => data.CopyTo(GetSpan(address, data.Length));

    public void Read(ulong address, Span<byte> destination) => GetSpan(address, destination.Length).CopyTo(destination);

    public ulong ReadUInt64(ulong address) => Unsafe.ReadUnaligned<ulong>(ref GetSpan(address, 8)[0]);

    public uint ReadUInt32(ulong address) => Unsafe.ReadUnaligned<uint>(ref GetSpan(address, 4)[0]);

    public void WriteUInt64(ulong address, ulong value) => Unsafe.WriteUnaligned(ref GetSpan(address, 8)[0], value);

    public void WriteUInt32(ulong address, uint value) => Unsafe.WriteUnaligned(ref GetSpan(address, 4)[0], value);

    /// <summary>True once <see cref="MapFile"/> put a memory file under RAM.</summary>
    public bool FileBacked { get; private set; }

    /// <summary>
    /// Puts a snapshot's memory file under all of RAM, copy-on-write: nothing is read now; each page is read from the file
    /// when the guest first touches it, and the guest's writes never reach the file. A restore's first instruction then
    /// waits for no copy. Only on Linux, on RAM that nothing runs on; the file must be exactly the RAM's size.
    /// </summary>
    /// <exception cref="IOException">The file is of another size, or cannot be mapped.</exception>
    public void MapFile(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("Mapping a memory file under guest RAM needs Linux's mmap; load it instead.");
        }

        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        long length = RandomAccess.GetLength(file);
        if (length != (long)Size)
        {
            throw new IOException($"Memory file '{path}' is {length} bytes; this machine's RAM is {Size}.");
        }

        HostMemory.MapFilePrivate(_memory, Size, file); // the mapping holds the file; the handle may close
        FileBacked = true;
    }

    /// <summary>Gives a page back to the host: it reads as zero afterwards (balloon inflation).</summary>
    public void DiscardPage(ulong address)
    {
        if ((address & (PageSize - 1)) != 0 || !Contains(address, PageSize))
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} is not a page of RAM.");
        }

        HostMemory.Discard(_memory + (address - BaseAddress), PageSize, FileBacked);
    }

    public void Dispose()
    {
        if (_memory != null)
        {
            HostMemory.Free(_memory, Size);
            _memory = null;
        }
    }
}
