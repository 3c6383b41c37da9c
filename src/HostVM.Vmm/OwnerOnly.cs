using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Vmm;

/// <summary>
/// Files, directories and sockets that only their owner may use. The daemon and each VMM hold tenants' disks,
/// consoles and control sockets: nothing they create may be readable, writable or connectable by another
/// local user, not even for the instant between creating a file and setting its mode. So both set the umask
/// to 077 as they start (<see cref="RestrictUmask"/>), and directories that hold sockets are checked with
/// lstat (<see cref="Status"/>) before they are trusted.
/// </summary>
public static partial class OwnerOnly
{
    public const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public const UnixFileMode FileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private const int AtCurrentDirectory = -100; // AT_FDCWD
    private const int AtSymlinkNoFollow = 0x100; // AT_SYMLINK_NOFOLLOW
    private const uint StatxBasicStats = 0x7ff; // STATX_BASIC_STATS
    private const int NoSuchFile = 2; // ENOENT
    private const int NotADirectory = 20; // ENOTDIR
    private const int AtEmptyPath = 0x1000; // AT_EMPTY_PATH: statx of the descriptor itself
    private const int OpenReadOnly = 0;
    private const int OpenNonBlocking = 0x800; // O_NONBLOCK
    private const int OpenCloseOnExec = 0x80000; // O_CLOEXEC

    /// <summary>The effective user id of this process (root is 0).</summary>
    public static uint EffectiveUserId => OperatingSystem.IsWindows() ? 0 : GetEuid();

    /// <summary>
    /// umask 077 for the rest of this process's life (and its children's): every file, directory and Unix
    /// socket it creates is its owner's alone from the moment it exists. A socket is bound with the mode
    /// 0777 &amp; ~umask, so under 077 no other user can connect even before anyone could chmod it.
    /// </summary>
    public static void RestrictUmask()
    {
        if (!OperatingSystem.IsWindows())
        {
            _ = Umask(0x3f); // 077
        }
    }

    /// <summary>Creates <paramref name="path"/> (and its missing parents) mode 0700; an existing directory is left as it is.</summary>
    public static string CreateDirectory(string path) =>
        OperatingSystem.IsWindows() ? Directory.CreateDirectory(path).FullName : Directory.CreateDirectory(path, DirectoryMode).FullName;

    /// <summary>
    /// Copies a file as File.Copy does (reflinks and copy_file_range included) and makes the copy 0600: File.Copy
    /// gives it its source's mode, and an imported file is often 0644. Copies go into owner-only directories,
    /// so no one else can open the copy in between.
    /// </summary>
    public static void CopyFile(string source, string destination)
    {
        File.Copy(source, destination);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(destination, FileMode);
        }
    }

    /// <summary>
    /// Copies what <paramref name="source"/> (an open regular file, read from its start) holds into a new file
    /// <paramref name="destination"/>, created 0600. Reading the descriptor, not a path, is the point: it is the
    /// file that was checked, whatever the path names by now. Blocks of zeros are skipped, not written, so a
    /// sparse disk image stays sparse.
    /// </summary>
    public static void CopyFile(SafeFileHandle source, string destination)
    {
        var options = new FileStreamOptions { Mode = System.IO.FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode;
        }

        using var target = new FileStream(destination, options);
        var buffer = new byte[1 << 20];
        long offset = 0;
        int n;
        while ((n = RandomAccess.Read(source, buffer, offset)) > 0)
        {
            var block = buffer.AsSpan(0, n);
            if (block.ContainsAnyExcept((byte)0))
            {
                RandomAccess.Write(target.SafeFileHandle, block, offset);
            }

            offset += n;
        }

        target.SetLength(offset); // a file that ends in zeros ends where its source does
    }

    /// <summary>Whether only the owner has any permission on it (its group and others none).</summary>
    public static bool IsOwnerOnly(UnixFileMode mode) => (mode & (UnixFileMode)0x3f) == 0;

    /// <summary>lstat(2) of <paramref name="path"/>; null if it does not exist.</summary>
    /// <exception cref="IOException">It cannot be examined (a permission, a loop, ...).</exception>
    public static UnixFileStatus? Status(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        // statx rather than lstat: its buffer's layout is the same on every architecture.
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(AtCurrentDirectory, path, AtSymlinkNoFollow, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is NoSuchFile or NotADirectory)
            {
                return null;
            }

            throw new IOException($"{path}: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }

        uint owner = MemoryMarshal.Read<uint>(buffer[20..]);
        int mode = MemoryMarshal.Read<ushort>(buffer[28..]);
        var kind = (mode & 0xf000) switch
        {
            0x8000 => UnixFileKind.Regular,
            0x4000 => UnixFileKind.Directory,
            0xa000 => UnixFileKind.SymbolicLink,
            0xc000 => UnixFileKind.Socket,
            _ => UnixFileKind.Other,
        };
        return new UnixFileStatus(owner, (UnixFileMode)(mode & 0xfff), kind);
    }

    /// <summary>
    /// Opens <paramref name="path"/> for reading only if it is a regular file and not a symbolic link (O_NOFOLLOW;
    /// O_NONBLOCK, so a FIFO put in its place cannot hold the reader); null if it is missing or anything else.
    /// For files in a directory someone else (a jailed VMM) may write: what they plant there is never followed.
    /// </summary>
    public static FileStream? OpenRegularNoFollow(string path)
    {
        // O_NOFOLLOW is 0400000 on x86-64 and riscv64, 0100000 on arm64.
        int noFollow = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 0x8000 : 0x20000;
        ArgumentNullException.ThrowIfNull(path);
        int fd = Open(path, OpenReadOnly | noFollow | OpenNonBlocking | OpenCloseOnExec);
        if (fd < 0)
        {
            return null;
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(fd, string.Empty, AtEmptyPath, StatxBasicStats, ref MemoryMarshal.GetReference(buffer)) != 0
            || (MemoryMarshal.Read<ushort>(buffer[28..]) & 0xf000) != 0x8000)
        {
            handle.Dispose();
            return null;
        }

        return new FileStream(handle, FileAccess.Read);
    }

    /// <summary>Whether <paramref name="owner"/> may be trusted by this process: itself, or root (who can do anything anyway).</summary>
    public static bool IsTrustedOwner(uint owner) => owner == 0 || owner == EffectiveUserId;

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "umask")]
    private static partial uint Umask(uint mask);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint GetEuid();

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, ref byte buffer);
}
