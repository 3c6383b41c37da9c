namespace HostVM.Vmm;

/// <summary>
/// An append-only log file that never grows past <see cref="MaxBytes"/>: when it is full it becomes
/// <c>PATH.1</c> (replacing the older generation) and a new <c>PATH</c> starts. So the disk holds at most
/// twice the cap, and, once the first file has filled, always at least the last <see cref="MaxBytes"/>
/// of output. A guest that prints forever cannot fill the disk.
/// </summary>
public sealed class RotatingLog : Stream
{
    private readonly string _path;
    private FileStream _file;

    /// <summary>Opens (appends to) <paramref name="path"/>; a file already over the cap is rotated at the first write.</summary>
    public RotatingLog(string path, long maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxBytes);
        _path = path;
        MaxBytes = maxBytes;
        _file = Open(path);
    }

    public long MaxBytes { get; }

    /// <summary>The older generation of <paramref name="path"/>.</summary>
    public static string OlderPath(string path) => path + ".1";

    private static FileStream Open(string path) => new(path, FileMode.Append, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            long room = MaxBytes - _file.Length;
            if (room <= 0)
            {
                Rotate();
                continue;
            }

            int n = (int)Math.Min(room, buffer.Length);
            _file.Write(buffer[..n]);
            buffer = buffer[n..];
        }
    }

    private void Rotate()
    {
        _file.Dispose();
        try
        {
            File.Move(_path, OlderPath(_path), overwrite: true);
            _file = Open(_path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The older generation cannot be replaced: start the file over rather than break the bound.
            _file = new FileStream(_path, FileMode.Create, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
        }
    }

    /// <summary>
    /// The last <paramref name="maxBytes"/> of a log written by this class (the older generation's end,
    /// then the current file), or fewer if fewer are on disk. Works while a writer appends and rotates:
    /// a rotation between the two reads can only repeat or skip a little at the seam.
    /// </summary>
    public static byte[] ReadTail(string path, int maxBytes)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] current = ReadEnd(path, maxBytes);
        byte[] older = current.Length < maxBytes ? ReadEnd(OlderPath(path), maxBytes - current.Length) : [];
        return [.. older, .. current];
    }

    private static byte[] ReadEnd(string path, int maxBytes)
    {
        try
        {
            // Never following a link or opening a FIFO: the daemon reads a jailed VMM's log from a directory that VMM owns.
            using var file = OwnerOnly.OpenRegularNoFollow(path);
            if (file is null)
            {
                return [];
            }

            long start = Math.Max(0, file.Length - maxBytes);
            file.Position = start;
            var data = new byte[file.Length - start];
            file.ReadExactly(data);
            return data;
        }
        catch (FileNotFoundException)
        {
            return [];
        }
        catch (DirectoryNotFoundException)
        {
            return [];
        }
    }

    public override void Flush() => _file.Flush();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }

    public override bool CanRead => false;

    public override bool CanSeek => false;

    public override bool CanWrite => true;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();
}
