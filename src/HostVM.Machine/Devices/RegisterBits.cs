namespace HostVM.Machine.Devices;

/// <summary>
/// Narrow accesses to wide registers: a guest may touch a 64-bit register as two 32-bit halves
/// (or any 1/2/4-byte piece); these helpers cut a piece out of a register value and merge one in.
/// </summary>
internal static class RegisterBits
{
    /// <summary>All ones in the low <paramref name="size"/> bytes (size 1, 2, 4 or 8).</summary>
    public static ulong Mask(int size) => size >= 8 ? ulong.MaxValue : (1UL << (size * 8)) - 1;

    /// <summary>The <paramref name="size"/> bytes of <paramref name="register"/> starting at byte <paramref name="byteOffset"/>.</summary>
    public static ulong Extract(ulong register, int byteOffset, int size) =>
        byteOffset >= 8 ? 0 : (register >> (byteOffset * 8)) & Mask(size);

    /// <summary><paramref name="register"/> with <paramref name="size"/> bytes at <paramref name="byteOffset"/> replaced by <paramref name="value"/>.</summary>
    public static ulong Merge(ulong register, int byteOffset, int size, ulong value)
    {
        if (byteOffset >= 8)
        {
            return register;
        }

        int shift = byteOffset * 8;
        ulong mask = Mask(size) << shift;
        return (register & ~mask) | ((value << shift) & mask);
    }
}
