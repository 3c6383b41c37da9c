using System.Runtime.InteropServices;
using HostVM.Vmm;

namespace HostVM.Host.Images;

/// <summary>
/// Gives a file a second name: a hard link where both names are on one file system (no copy, and the
/// contents live on while either name does), else a copy. Image files are never written after
/// import, so sharing them this way is safe.
/// </summary>
public static partial class FileLink
{
    private const int CrossDevice = 18; // EXDEV
    private const int NotPermitted = 1; // EPERM: the file system has no hard links, or protected_hardlinks

    /// <summary>
    /// Links <paramref name="destination"/> to <paramref name="source"/>, or copies it and syncs the copy: either way, once the
    /// destination's directory is synced (<see cref="HostVM.Storage.FileSync.Entries"/>), the new name and its content are
    /// durable (a link adds a name to content that already is; an fsync of each linked file would cost a journal commit each).
    /// </summary>
    public static void LinkOrCopy(string source, string destination)
    {
        if (LinkNative(source, destination) == 0)
        {
            return;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno is not (CrossDevice or NotPermitted))
        {
            throw new IOException($"Cannot link '{source}' as '{destination}': {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        OwnerOnly.CopyFile(source, destination);
        using var copy = File.OpenHandle(destination, FileMode.Open, FileAccess.Read);
        RandomAccess.FlushToDisk(copy);
    }

    /// <summary>A second name for a file that is open and written (a live layer): a hard link or nothing, never a copy.</summary>
    public static void Link(string source, string destination)
    {
        if (LinkNative(source, destination) != 0)
        {
            throw new IOException($"Cannot link '{source}' as '{destination}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
        }
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int LinkNative(string oldPath, string newPath);
}
