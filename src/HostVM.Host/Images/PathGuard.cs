using System.Runtime.InteropServices;
using HostVM.Host.Api;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Host.Images;

/// <summary>
/// Opens a client-given path beneath the import directories, once, for reading. A project's token reads only
/// from its project's directory in each (<c>IMPORT_DIR/PROJECT/</c>); a token of no project from the import
/// directories themselves. Relative paths are taken from the first one. The file is opened relative to the
/// import directory with no symlink followed at any component (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS, or
/// a walk with O_NOFOLLOW where the kernel has no openat2), and the copy is made from that descriptor: nothing
/// swapped in after the check can redirect the copy, as it could when a resolved path was opened again. It is
/// opened non-blocking and must be a regular file, so a FIFO or device is refused at once instead of hanging.
/// </summary>
public static partial class PathGuard
{
    private const int ReadOnly = 0x0; // O_RDONLY
    private const int NoControllingTty = 0x100; // O_NOCTTY
    private const int NonBlocking = 0x800; // O_NONBLOCK: opening a FIFO without a writer returns at once
    private const int DirectoryOnly = 0x10000; // O_DIRECTORY
    private const int NoFollow = 0x20000; // O_NOFOLLOW
    private const int CloseOnExec = 0x80000; // O_CLOEXEC: a VMM started meanwhile inherits nothing
    private const int PathOnly = 0x200000; // O_PATH
    private const ulong ResolveNoMagicLinks = 0x02;
    private const ulong ResolveNoSymlinks = 0x04;
    private const ulong ResolveBeneath = 0x08;
    private const long Openat2 = 437; // the same number on every architecture (a syscall newer than the unified table)
    private const int AtEmptyPath = 0x1000;
    private const int AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 0x1; // STATX_TYPE

    private const int NoSuchFile = 2; // ENOENT
    private const int PermissionDenied = 13; // EACCES
    private const int CrossDevice = 18; // EXDEV: openat2's answer to a path that leaves the directory
    private const int NotADirectory = 20; // ENOTDIR
    private const int NoSuchSyscall = 38; // ENOSYS
    private const int TooManyLinks = 40; // ELOOP: a symlink where none may be

    [StructLayout(LayoutKind.Sequential)]
    private struct OpenHow
    {
        public ulong Flags;
        public ulong Mode;
        public ulong Resolve;
    }

    /// <summary>
    /// Opens <paramref name="given"/> for reading beneath <paramref name="importDirs"/> (beneath their
    /// <paramref name="project"/> subdirectories if a project's token asks). Refusals are 400s that say what to do.
    /// </summary>
    public static SafeFileHandle Open(string given, IReadOnlyList<string> importDirs, string? project, string field) =>
        Open(given, importDirs, project, field, useOpenat2: true);

    /// <summary>As above; <paramref name="useOpenat2"/> false walks the path as on a kernel without openat2 (tests use both).</summary>
    internal static SafeFileHandle Open(string given, IReadOnlyList<string> importDirs, string? project, string field, bool useOpenat2)
    {
        ArgumentNullException.ThrowIfNull(importDirs);
        if (string.IsNullOrWhiteSpace(given) || given.Contains('\0', StringComparison.Ordinal))
        {
            throw ApiProblem.BadRequest($"{field}: a path is required.", field);
        }

        var roots = project is null ? importDirs : [.. importDirs.Select(d => Path.Combine(d, project))];
        // Lexically: as no symlink is followed below an import directory, `..` means what it says.
        string candidate = Path.GetFullPath(Path.IsPathRooted(given) ? given : Path.Combine(roots[0], given));
        int index = Enumerable.Range(0, roots.Count).FirstOrDefault(i => Inside(candidate, roots[i]), -1);
        if (index < 0)
        {
            throw Outside(given, roots, field);
        }

        string top = importDirs[index];
        string relative = Path.GetRelativePath(top, candidate); // PROJECT/... for a project
        int root = Open(top, ReadOnly | DirectoryOnly | PathOnly | CloseOnExec);
        if (root < 0)
        {
            throw ApiProblem.BadRequest($"{field} {given}: the import directory {top} cannot be opened ({Marshal.GetPInvokeErrorMessage(Marshal.GetLastPInvokeError())}); ask the host's admin to create it.", field);
        }

        int fd;
        int errno;
        try
        {
            (fd, errno) = useOpenat2 ? OpenBeneath(root, relative) : (-1, NoSuchSyscall);
            if (errno == NoSuchSyscall)
            {
                (fd, errno) = Walk(root, relative);
            }
        }
        finally
        {
            _ = Close(root);
        }

        if (fd < 0)
        {
            throw errno switch
            {
                TooManyLinks => ApiProblem.BadRequest($"{field} {given}: a symlink is in the path; imports follow no symlinks: put the file itself in {roots[index]}.", field),
                CrossDevice => Outside(given, roots, field),
                NoSuchFile or NotADirectory => ApiProblem.BadRequest($"{field} {given}: no such file in {roots[index]}{(project is null ? string.Empty : $" (project {project}'s import directory)")}.", field),
                PermissionDenied => ApiProblem.BadRequest($"{field} {given}: the daemon may not read it; make it readable by the daemon's user.", field),
                _ => ApiProblem.BadRequest($"{field} {given}: cannot be opened ({Marshal.GetPInvokeErrorMessage(errno)}).", field),
            };
        }

        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (!IsRegularFile(handle))
        {
            handle.Dispose();
            throw ApiProblem.BadRequest($"{field} {given}: not a regular file (a directory, FIFO, socket or device); import regular files only.", field);
        }

        return handle;
    }

    private static (int Fd, int Errno) OpenBeneath(int root, string relative)
    {
        var how = new OpenHow
        {
            Flags = ReadOnly | NonBlocking | NoControllingTty | CloseOnExec,
            Resolve = ResolveBeneath | ResolveNoSymlinks | ResolveNoMagicLinks,
        };
        long fd = Syscall(Openat2, root, relative, ref how, (nuint)Marshal.SizeOf<OpenHow>());
        return fd < 0 ? (-1, Marshal.GetLastPInvokeError()) : ((int)fd, 0);
    }

    /// <summary>Where the kernel has no openat2 (before Linux 5.6): one component at a time, each opened with O_NOFOLLOW.</summary>
    private static (int Fd, int Errno) Walk(int root, string relative)
    {
        string[] parts = [.. relative.Split('/', StringSplitOptions.RemoveEmptyEntries).Where(p => p != ".")];
        if (parts.Length == 0 || parts.Contains(".."))
        {
            return (-1, parts.Length == 0 ? NotADirectory : CrossDevice);
        }

        int dir = root;
        try
        {
            for (int i = 0; i < parts.Length; i++)
            {
                bool last = i == parts.Length - 1;
                int flags = NoFollow | CloseOnExec | (last ? ReadOnly | NonBlocking | NoControllingTty : ReadOnly | DirectoryOnly);
                int next = OpenAt(dir, parts[i], flags);
                if (next < 0)
                {
                    // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR: say what it is, as openat2 does.
                    int errno = Marshal.GetLastPInvokeError();
                    return (-1, errno == NotADirectory && IsSymlink(dir, parts[i]) ? TooManyLinks : errno);
                }

                if (dir != root)
                {
                    _ = Close(dir);
                }

                dir = next;
            }

            int opened = dir;
            dir = root; // handed over: not closed below
            return (opened, 0);
        }
        finally
        {
            if (dir != root)
            {
                _ = Close(dir);
            }
        }
    }

    /// <summary>fstat: whether the descriptor is a regular file (statx, whose layout is the same on every architecture).</summary>
    private static bool IsRegularFile(SafeFileHandle handle)
    {
        Span<byte> buffer = stackalloc byte[256];
        if (Statx(handle, string.Empty, AtEmptyPath, StatxType, ref MemoryMarshal.GetReference(buffer)) != 0)
        {
            return false;
        }

        return (MemoryMarshal.Read<ushort>(buffer[28..]) & 0xf000) == 0x8000; // stx_mode: S_IFREG
    }

    private static bool IsSymlink(int directory, string name)
    {
        Span<byte> buffer = stackalloc byte[256];
        return StatxAt(directory, name, AtSymlinkNoFollow, StatxType, ref MemoryMarshal.GetReference(buffer)) == 0
            && (MemoryMarshal.Read<ushort>(buffer[28..]) & 0xf000) == 0xa000; // S_IFLNK
    }

    private static ApiProblem Outside(string given, IReadOnlyList<string> roots, string field) =>
        ApiProblem.BadRequest($"{field} {given}: outside the import directories this token may read ({string.Join(", ", roots)}); copy the file there first or upload it.", field);

    private static bool Inside(string path, string root)
    {
        string r = Path.TrimEndingDirectorySeparator(root) + Path.DirectorySeparatorChar;
        return path.StartsWith(r, StringComparison.Ordinal);
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "openat", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenAt(int directory, string path, int flags);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial long Syscall(long number, int directory, string path, ref OpenHow how, nuint size);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(SafeFileHandle file, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int StatxAt(int directory, string path, int flags, uint mask, ref byte buffer);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
