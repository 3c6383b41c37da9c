namespace HostVM.Machine.Boot;

/// <summary>
/// A PT_LOAD segment: <see cref="Data"/> (p_filesz bytes from the file) goes at <see cref="PhysicalAddress"/>,
/// and the rest of <see cref="MemorySize"/> (p_memsz) is zero-filled.
/// </summary>
public sealed record ElfSegment(ulong PhysicalAddress, ulong VirtualAddress, ReadOnlyMemory<byte> Data, ulong MemorySize, uint Flags)
{
    public const uint Execute = 0x1;
    public const uint Write = 0x2;
    public const uint Read = 0x4;
}
