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

    public static void LinkOrCopy(string source, string destination)
    {
        if (Link(source, destination) == 0)
        {
            return;
        }

        int errno = Marshal.GetLastPInvokeError();
        if (errno is not (CrossDevice or NotPermitted))
        {
            throw new IOException($"Cannot link '{source}' as '{destination}': {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        OwnerOnly.CopyFile(source, destination);
    }

    [LibraryImport("libc", EntryPoint = "link", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Link(string oldPath, string newPath);
}
