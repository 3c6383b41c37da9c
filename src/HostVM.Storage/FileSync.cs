using System.Runtime.InteropServices;

namespace HostVM.Storage;

/// <summary>
/// Makes files and directory entries durable before something that names them is committed: the
/// inventory's row is written with synchronous=FULL, so after a power loss it would otherwise name a
/// VM or image whose files the kernel had not written yet (or whose rename it had not recorded).
/// </summary>
public static partial class FileSync
{
    private const int ReadOnly = 0, Directory = 0x10000, CloseOnExec = 0x80000;

    /// <summary>fsync every regular file under <paramref name="directory"/>, then each directory bottom-up.</summary>
    public static void Tree(string directory)
    {
        foreach (string file in System.IO.Directory.EnumerateFiles(directory, "*", SearchOption.AllDirectories))
        {
            using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.Read);
            RandomAccess.FlushToDisk(handle);
        }

        foreach (string sub in System.IO.Directory.EnumerateDirectories(directory, "*", SearchOption.AllDirectories).OrderByDescending(d => d.Length))
        {
            Entries(sub);
        }

        Entries(directory);
    }

    /// <summary>fsync a directory: its entries (a file created or renamed into it) reach the disk.</summary>
    public static void Entries(string directory)
    {
        int fd = Open(directory, ReadOnly | Directory | CloseOnExec);
        if (fd < 0)
        {
            throw new IOException($"Cannot open directory '{directory}' to sync it: {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }

        try
        {
            if (Fsync(fd) != 0)
            {
                throw new IOException($"Cannot sync directory '{directory}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
            }
        }
        finally
        {
            _ = Close(fd);
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
