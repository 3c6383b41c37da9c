using HostVM.Machine.Memory;

namespace HostVM.Machine.Tests.Cpu;

/// <summary>A 4 KiB register window backed by bytes, recording every access the hart makes to it.</summary>
internal sealed class FakeMmioDevice : IMmioDevice
{
    public const ulong Size = 0x1000;

    private readonly byte[] _bytes = new byte[Size];

    public List<(bool IsWrite, ulong Offset, int Size, ulong Value)> Accesses { get; } = [];

    public ulong Read(ulong offset, int size)
    {
        ulong value = 0;
        for (int i = 0; i < size; i++)
        {
            value |= (ulong)_bytes[(int)offset + i] << (8 * i);
        }

        Accesses.Add((false, offset, size, value));
        return value;
    }

    public void Write(ulong offset, int size, ulong value)
    {
        for (int i = 0; i < size; i++)
        {
            _bytes[(int)offset + i] = (byte)(value >> (8 * i));
        }

        Accesses.Add((true, offset, size, value));
    }
}
