using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage;

/// <summary>
/// The few Linux file calls .NET does not expose: advisory whole-file locks (flock), hole punching and
/// zeroing (fallocate) and hole probing (lseek SEEK_HOLE/SEEK_DATA, used by tests to see real holes).
/// Every call keeps the handle alive across the native call so a concurrent Dispose cannot recycle the fd.
/// </summary>
internal static partial class LinuxFile
{
    public const int LockShared = 1, LockExclusive = 2, LockNonBlocking = 4;
    public const int FallocKeepSize = 0x01, FallocPunchHole = 0x02, FallocZeroRange = 0x10;
    public const int SeekEnd = 2, SeekData = 3, SeekHole = 4;

    public const int EAGAIN = 11, EINTR = 4, EBADF = 9, EINVAL = 22, ENODEV = 19, ENOSYS = 38, EOPNOTSUPP = 95, ENXIO = 6;

    /// <summary>
    /// Opens <paramref name="path"/> read-only without the shared flock .NET takes on every file it opens for reading (which
    /// a running VMM's exclusive lock on its disk refuses), and without following a final symbolic link.
    /// </summary>
    public static SafeFileHandle OpenUnlocked(string path)
    {
        const int ReadOnlyCloseOnExecNoFollow = 0x80000 | 0x20000; // O_RDONLY | O_CLOEXEC | O_NOFOLLOW
        int fd = OpenNative(path, ReadOnlyCloseOnExecNoFollow);
        return fd >= 0 ? new SafeFileHandle(fd, ownsHandle: true)
            : throw new IOException($"Cannot open '{path}': {Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}.");
    }

    /// <summary>flock on the handle; 0 or the errno.</summary>
    public static int Flock(SafeFileHandle handle, int operation)
    {
        return WithFd(handle, fd =>
        {
            int rc;
            do
            {
                rc = FlockNative(fd, operation);
            }
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

            return rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        });
    }

    /// <summary>fallocate on the handle; 0 or the errno.</summary>
    public static int Fallocate(SafeFileHandle handle, int mode, long offset, long length)
    {
        return WithFd(handle, fd =>
        {
            int rc;
            do
            {
                rc = FallocateNative(fd, mode, offset, length);
            }
            while (rc < 0 && Marshal.GetLastPInvokeError() == EINTR);

            return rc < 0 ? Marshal.GetLastPInvokeError() : 0;
        });
    }

    /// <summary>lseek on the handle: the new offset, or minus the errno.</summary>
    public static long Seek(SafeFileHandle handle, long offset, int whence)
    {
        long result = 0;
        WithFd(handle, fd =>
        {
            long rc = LseekNative(fd, offset, whence);
            result = rc < 0 ? -Marshal.GetLastPInvokeError() : rc;
            return 0;
        });
        return result;
    }

    private static int WithFd(SafeFileHandle handle, Func<int, int> call)
    {
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            return call((int)handle.DangerousGetHandle());
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "flock", SetLastError = true)]
    private static partial int FlockNative(int fd, int operation);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FallocateNative(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "lseek", SetLastError = true)]
    private static partial long LseekNative(int fd, long offset, int whence);
}
