using System.Text;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Storage;

/// <summary>
/// A disk backed by a raw image file: guest byte N is file byte N. I/O is positional (pread/pwrite), so
/// calls from several threads need no lock. The file is locked with flock for as long as the device is
/// open — exclusively when writable, shared when read-only — so two VMs never write one image at once,
/// and a VM never reads an image another one is changing under it.
/// </summary>
public sealed class RawFileBlockDevice : IBlockDevice, IAllocationMap
{
    private const int SectorSize = 512;
    private const int MaxIdentifierBytes = 20;

    // Written when neither fallocate mode works; one shared, never-written buffer is enough.
    private static readonly byte[] ZeroBuffer = new byte[64 * 1024];

    private readonly SafeFileHandle handle;
    private readonly string path;
    private IOException? flushFailure;
    private volatile bool disposed;

    private RawFileBlockDevice(SafeFileHandle handle, string path, long length, bool readOnly, string identifier)
    {
        this.handle = handle;
        this.path = path;
        Length = length;
        ReadOnly = readOnly;
        Identifier = identifier;
    }

    public long Length { get; }

    public bool ReadOnly { get; }

    public string Identifier { get; }

    /// <summary>The full path of the image file.</summary>
    public string FilePath => path;

    /// <summary>The open file, for tests that look at its holes (a second open would meet our own lock).</summary>
    internal SafeFileHandle Handle => handle;

    /// <summary>
    /// Opens <paramref name="path"/> as a disk. <paramref name="identifier"/> is the serial the guest sees
    /// (ASCII, at most 20 bytes); without one it is made from the file name.
    /// </summary>
    /// <exception cref="BlockDeviceException">The file cannot be used; the message says why and what to do.</exception>
    public static RawFileBlockDevice Open(string path, bool readOnly, string? identifier = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (identifier is not null)
        {
            ValidateIdentifier(identifier);
        }

        string full = Path.GetFullPath(path);
        if (Directory.Exists(full))
        {
            throw new BlockDeviceException($"Disk image '{full}' is a directory: give the path of a raw image file inside it.", full);
        }

        if (!File.Exists(full))
        {
            throw new BlockDeviceException($"Disk image '{full}' does not exist: check the path, or create an empty image with 'truncate -s 10G {full}'.", full);
        }

        // Root may write any file, so a file with no write bit at all would still open read-write; honour
        // the owner's intent instead and refuse, since a read-only image is usually a shared base image.
        if (!readOnly && !OperatingSystem.IsWindows() && (File.GetUnixFileMode(full) & (UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite)) == 0)
        {
            throw new BlockDeviceException($"Disk image '{full}' is read-only on the host (no write permission bits): attach it read-only, or make it writable with 'chmod u+w {full}'.", full);
        }

        SafeFileHandle handle = OpenHandle(full, readOnly);
        try
        {
            Lock(handle, full, readOnly);
            long length = RandomAccess.GetLength(handle);
            if (length == 0)
            {
                // A block device (an LVM volume, a loop device) reports no length in its metadata; its end
                // is where seeking to the end lands.
                length = Math.Max(0, LinuxFile.Seek(handle, 0, LinuxFile.SeekEnd));
            }

            if (length == 0)
            {
                throw new BlockDeviceException($"Disk image '{full}' is empty (0 bytes): give it a size, e.g. 'truncate -s 10G {full}'.", full);
            }

            if (length % SectorSize != 0)
            {
                long roundedUp = (length + SectorSize - 1) / SectorSize * SectorSize;
                throw new BlockDeviceException(
                    $"Disk image '{full}' is {length} bytes, which is not a multiple of 512 (the sector size): extend it with 'truncate -s {roundedUp} {full}'.", full);
            }

            return new RawFileBlockDevice(handle, full, length, readOnly, identifier ?? IdentifierFromFileName(full));
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public void Read(long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckRange(offset, destination.Length);
        while (!destination.IsEmpty)
        {
            int n = RandomAccess.Read(handle, destination, offset);
            if (n <= 0)
            {
                throw new IOException($"Disk image '{path}' ended at byte {offset}, before its size of {Length} when opened: was it truncated by another program?");
            }

            destination = destination[n..];
            offset += n;
        }
    }

    public void Read(long offset, IReadOnlyList<Memory<byte>> destinations)
    {
        ArgumentNullException.ThrowIfNull(destinations);
        ObjectDisposedException.ThrowIf(disposed, this);
        long total = 0;
        foreach (var d in destinations)
        {
            total += d.Length;
        }

        CheckRange(offset, total);
        long done = RandomAccess.Read(handle, destinations, offset);
        if (done < total)
        {
            // A short vectored read (rare on files): finish buffer by buffer.
            foreach (var d in destinations)
            {
                if (done >= d.Length)
                {
                    done -= d.Length;
                    offset += d.Length;
                    continue;
                }

                Read(offset + done, d.Span[(int)done..]);
                offset += d.Length;
                done = 0;
            }
        }
    }

    public void Write(long offset, IReadOnlyList<ReadOnlyMemory<byte>> sources)
    {
        ArgumentNullException.ThrowIfNull(sources);
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckWritable();
        long total = 0;
        foreach (var s in sources)
        {
            total += s.Length;
        }

        CheckRange(offset, total);
        RandomAccess.Write(handle, sources, offset); // writes everything or throws
    }

    public void Write(long offset, ReadOnlySpan<byte> source)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckWritable();
        CheckRange(offset, source.Length);
        RandomAccess.Write(handle, source, offset);
    }

    /// <summary>How data reaches the disk; a test stands in a failing one, since a real fsync error cannot be made here.</summary>
    internal Action<SafeFileHandle> FlushToDisk { get; set; } = RandomAccess.FlushToDisk;

    /// <summary>
    /// Makes every completed write durable. Once an fsync has failed, every later flush fails too: the
    /// kernel marks the pages it could not write clean after reporting the error once, so a flush that
    /// succeeded afterwards would call writes that are lost durable (PostgreSQL's "fsyncgate").
    /// </summary>
    public void Flush()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (ReadOnly)
        {
            return;
        }

        if (flushFailure is not null)
        {
            throw new IOException($"Disk image '{path}': an earlier flush failed ({flushFailure.Message}); writes since then may be lost, so no flush succeeds again until the image is reopened.", flushFailure);
        }

        try
        {
            FlushToDisk(handle);
        }
        catch (IOException e)
        {
            flushFailure = e;
            throw;
        }
    }

    public void Discard(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckWritable();
        CheckRange(offset, length);
        if (length == 0)
        {
            return;
        }

        // Discard is advice: a file system without hole punching (or an old kernel) simply keeps the blocks.
        _ = LinuxFile.Fallocate(handle, LinuxFile.FallocPunchHole | LinuxFile.FallocKeepSize, offset, length);
    }

    public void WriteZeroes(long offset, long length, bool mayUnmap)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckWritable();
        CheckRange(offset, length);
        if (length == 0)
        {
            return;
        }

        // A punched hole reads as zeroes and frees the space; zero-range keeps the space allocated (so a
        // later write cannot fail for lack of room) without writing data. Either is much cheaper than writing.
        if (mayUnmap && LinuxFile.Fallocate(handle, LinuxFile.FallocPunchHole | LinuxFile.FallocKeepSize, offset, length) == 0)
        {
            return;
        }

        if (LinuxFile.Fallocate(handle, LinuxFile.FallocZeroRange | LinuxFile.FallocKeepSize, offset, length) == 0)
        {
            return;
        }

        while (length > 0)
        {
            int chunk = (int)Math.Min(length, ZeroBuffer.Length);
            RandomAccess.Write(handle, ZeroBuffer.AsSpan(0, chunk), offset);
            offset += chunk;
            length -= chunk;
        }
    }

    /// <summary>
    /// The file's holes (SEEK_HOLE/SEEK_DATA) are holes of zeroes, the rest is data; a file system that cannot tell
    /// reports everything as data. At most 1024 extents per call.
    /// </summary>
    public IReadOnlyList<BlockExtent> MapAllocation(long offset, long length)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        CheckRange(offset, length);
        var extents = new List<BlockExtent>();
        long end = offset + length;
        for (long at = offset; at < end && extents.Count < 1024;)
        {
            long data = LinuxFile.Seek(handle, at, LinuxFile.SeekData);
            if (data == -LinuxFile.ENXIO || data >= end)
            {
                extents.Add(new BlockExtent(at, end - at, Hole: true, Zero: true)); // no data from here to the end
                break;
            }

            if (data < 0)
            {
                extents.Add(new BlockExtent(at, end - at, Hole: false, Zero: false));
                break;
            }

            if (data > at)
            {
                extents.Add(new BlockExtent(at, data - at, Hole: true, Zero: true));
                at = data;
                continue;
            }

            long hole = LinuxFile.Seek(handle, at, LinuxFile.SeekHole);
            long upTo = hole > at ? Math.Min(hole, end) : end;
            extents.Add(new BlockExtent(at, upTo - at, Hole: false, Zero: false));
            at = upTo;
        }

        return extents;
    }

    public void Dispose()
    {
        if (disposed)
        {
            return;
        }

        disposed = true;

        // Closing the descriptor releases the flock too.
        handle.Dispose();
    }

    public override string ToString() => $"raw image '{path}'{(ReadOnly ? " (read-only)" : string.Empty)}";

    internal static SafeFileHandle OpenHandle(string full, bool readOnly)
    {
        try
        {
            // FileShare.ReadWrite: the lock we want is our own flock below, with its own error message.
            return File.OpenHandle(full, FileMode.Open, readOnly ? FileAccess.Read : FileAccess.ReadWrite, FileShare.ReadWrite);
        }
        catch (UnauthorizedAccessException e)
        {
            if (!readOnly && CanOpenForReading(full))
            {
                throw new BlockDeviceException(
                    $"Disk image '{full}' is not writable by this user: attach it read-only, or give the user write permission (chmod/chown).", full, e);
            }

            throw new BlockDeviceException($"No permission to read disk image '{full}': give this user read permission (chmod/chown), or run as the image's owner.", full, e);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
        {
            // .NET's own advisory lock can collide with another process's exclusive lock before ours runs.
            throw InUse(full, readOnly, e);
        }
    }

    private static bool CanOpenForReading(string full)
    {
        try
        {
            using var probe = File.OpenHandle(full, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            return true;
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            return false;
        }
    }

    internal static void Lock(SafeFileHandle handle, string full, bool readOnly)
    {
        int errno = LinuxFile.Flock(handle, (readOnly ? LinuxFile.LockShared : LinuxFile.LockExclusive) | LinuxFile.LockNonBlocking);
        if (errno == LinuxFile.EAGAIN)
        {
            throw InUse(full, readOnly, null);
        }

        // Any other failure (a file system without flock support) leaves the image unlocked: that is what
        // every tool did before locking existed, and refusing would make such images unusable.
    }

    private static BlockDeviceException InUse(string full, bool readOnly, Exception? inner) => new(
        readOnly
            ? $"Disk image '{full}' is in use by another process that has it open read-write: stop that VM first, or attach a copy."
            : $"Disk image '{full}' is in use by another process: stop the other VM first, attach a copy, or attach it read-only in every VM.",
        full,
        inner);

    internal static string IdentifierFromFileName(string full)
    {
        var builder = new StringBuilder(MaxIdentifierBytes);
        foreach (char c in Path.GetFileName(full))
        {
            if (builder.Length == MaxIdentifierBytes)
            {
                break;
            }

            // Printable ASCII only: the guest shows the serial verbatim (e.g. /sys/block/vda/serial).
            if (c is >= '!' and <= '~')
            {
                builder.Append(c);
            }
        }

        return builder.Length == 0 ? "hostvm-disk" : builder.ToString();
    }

    private static void ValidateIdentifier(string identifier)
    {
        foreach (char c in identifier)
        {
            if (c is < ' ' or > '~')
            {
                throw new ArgumentException($"Disk identifier '{identifier}' has a character that is not printable ASCII: use letters, digits and punctuation only.", nameof(identifier));
            }
        }

        if (identifier.Length > MaxIdentifierBytes)
        {
            throw new ArgumentException($"Disk identifier '{identifier}' is {identifier.Length} characters; the guest can read at most {MaxIdentifierBytes}.", nameof(identifier));
        }
    }

    private void CheckWritable()
    {
        if (ReadOnly)
        {
            throw new IOException($"Disk image '{path}' is attached read-only; writes are refused.");
        }
    }

    private void CheckRange(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset > Length - length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), $"Range {offset}+{length} is outside disk image '{path}' of {Length} bytes.");
        }
    }
}
