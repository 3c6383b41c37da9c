namespace HostVM.Machine.Memory;

/// <summary>
/// A device that answers loads and stores in a physical address window on the <see cref="Bus"/>.
/// Offsets are relative to the window's base. Sizes are 1, 2, 4 or 8 bytes.
/// Devices are called from any hart thread and must do their own locking.
/// </summary>
public interface IMmioDevice
{
    /// <summary>Reads <paramref name="size"/> bytes at <paramref name="offset"/>. Unknown registers read as zero.</summary>
    ulong Read(ulong offset, int size);

    /// <summary>Writes the low <paramref name="size"/> bytes of <paramref name="value"/>. Unknown registers ignore writes.</summary>
    void Write(ulong offset, int size, ulong value);
}
