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

    public void Dispose()
    {
        if (_memory != null)
        {
            HostMemory.Free(_memory, Size);
            _memory = null;
        }
    }
}
