namespace HostVM.Machine.Boot;

/// <summary>
/// A piece of a boot payload: <see cref="Data"/> is copied to <see cref="Address"/> and the rest of
/// <see cref="MemorySize"/> bytes after it is zeroed (a program's .bss, a kernel's footprint beyond its file).
/// </summary>
public sealed record BootSegment(ulong Address, ReadOnlyMemory<byte> Data, ulong MemorySize)
{
    /// <summary>First address after the segment.</summary>
    public ulong End => Address + MemorySize;
}
