using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage.Qcow2;

/// <summary>Positional reads and writes of a qcow2 file's tables and clusters.</summary>
internal static class Qcow2Io
{
    /// <summary>
    /// Called after every write on this thread: a test copies the file there, which is exactly what a kill -9 at that
    /// moment would leave (the page cache keeps every completed write).
    /// </summary>
    [ThreadStatic]
    internal static Action? AfterWrite;

    public static void Write(SafeFileHandle file, ReadOnlySpan<byte> source, long offset)
    {
        RandomAccess.Write(file, source, offset);
        AfterWrite?.Invoke();
    }

    /// <summary>
    /// Fills <paramref name="destination"/> from <paramref name="offset"/>. A table the file's end cuts short is an I/O
    /// error; with <paramref name="allowShort"/> (a data cluster) the bytes past the end read as zeroes, as in QEMU.
    /// </summary>
    public static void ReadExactly(SafeFileHandle file, Span<byte> destination, long offset, string path, bool allowShort = false)
    {
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(file, destination, offset);
            if (n <= 0)
            {
                if (allowShort)
                {
                    destination.Clear();
                    return;
                }

                throw new IOException($"qcow2 image '{path}' ended at byte {offset}, inside one of its tables.");
            }

            destination = destination[n..];
            offset += n;
        }
    }
}
