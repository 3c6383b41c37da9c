using System.Runtime.InteropServices;

namespace HostVM.Storage;

/// <summary>
/// What a file really takes on its file system, holes left out (statx's block count): a sparse raw disk or a qcow2 file
/// counts the bytes it has written, not its size. Quotas and pool usage count this.
/// </summary>
public static partial class FileSpace
{
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, StatxBlocks = 0x400, StatxSize = 0x200, StatxNlink = 0x4;

    /// <summary>The bytes allocated to <paramref name="path"/> (not following a final link); 0 for a file that is not there.</summary>
    public static long Allocated(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);

        // struct statx has the same layout on every Linux architecture (unlike struct stat): stx_blocks is at byte 48.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxBlocks | StatxSize, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno == 2 ? 0 : throw new IOException($"{path}: statx failed (errno {errno}).");
        }

        return (long)MemoryMarshal.Read<ulong>(buffer[48..]) * 512;
    }

    /// <summary>How many names <paramref name="path"/>'s file has (hard links; not following a final link).</summary>
    public static int LinkCount(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxNlink, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            throw new IOException($"{path}: statx failed (errno {Marshal.GetLastPInvokeError()}).");
        }

        return (int)MemoryMarshal.Read<uint>(buffer[16..]); // stx_nlink
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directoryFd, string path, int flags, int mask, ref byte buffer);
}
