using HostVM.Storage.Nbd;
using HostVM.Storage.Qcow2;

namespace HostVM.Storage;

/// <summary>
/// Opens a disk image in its format: <c>raw</c> or <c>qcow2</c> as the caller says, or (format null) as the file's first
/// bytes say. A file a guest has written to as a raw disk can hold a qcow2 header of the guest's making, naming any host
/// file as its backing file: a disk HostVM made raw is always opened with <c>format: "raw"</c>, never probed.
/// A path that is an NBD URI (<c>nbd://HOST[:PORT]/EXPORT</c>, <c>nbd+unix:///EXPORT?socket=PATH</c>, and the
/// <c>nbds</c> forms with TLS) opens that remote export as a raw disk (<see cref="NbdBlockDevice"/>).
/// </summary>
public static class DiskImage
{
    /// <summary>The formats <see cref="Open"/> takes.</summary>
    public static readonly IReadOnlyList<string> Formats = ["raw", "qcow2"];

    /// <summary>Opens <paramref name="path"/>; see the class summary for <paramref name="format"/>.</summary>
    /// <exception cref="BlockDeviceException">The image cannot be used as asked; the message names the file and why.</exception>
    public static IBlockDevice Open(string path, bool readOnly, string? format = null, string? identifier = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (NbdUri.IsNbdUri(path))
        {
            return OpenNbd(path, readOnly, format, identifier);
        }

        format ??= File.Exists(path) && IsQcow2(path) ? "qcow2" : "raw";
        return format switch
        {
            "raw" => RawFileBlockDevice.Open(path, readOnly, identifier),
            "qcow2" => Qcow2BlockDevice.Open(path, readOnly, identifier),
            _ => throw new BlockDeviceException($"Disk image '{path}': format '{format}' is not one of {string.Join(", ", Formats)}.", path),
        };
    }

    /// <summary>Whether <paramref name="path"/> names a disk on an NBD server rather than a file (it need not exist on this host).</summary>
    public static bool IsRemote(string path) => NbdUri.IsNbdUri(path);

    private static NbdBlockDevice OpenNbd(string path, bool readOnly, string? format, string? identifier)
    {
        if (format is not (null or "raw"))
        {
            // The server already presents the disk's contents; a qcow2 file on the server is served as raw by
            // qemu-nbd/qemu-storage-daemon, and HostVM does not layer a format over a remote export.
            throw new BlockDeviceException($"Disk '{path}': an NBD export is opened as a raw disk, not {format}: serve the image in its format on the server (e.g. qemu-nbd -f qcow2 IMAGE) and give format=raw or no format.", path);
        }

        NbdUri uri;
        try
        {
            uri = NbdUri.Parse(path);
        }
        catch (FormatException e)
        {
            throw new BlockDeviceException(e.Message, path, e);
        }

        return NbdBlockDevice.Open(uri, readOnly, identifier);
    }

    /// <summary>
    /// Opens an image a caller holds records of but did not write itself (a VMM had it open): in the recorded
    /// <paramref name="format"/>, with exactly the recorded backing chain (<see cref="Qcow2BlockDevice.Open(string, bool, IReadOnlyList{ValueTuple{string, string}}, string?)"/>).
    /// </summary>
    public static IBlockDevice OpenRecorded(string path, bool readOnly, string format, IReadOnlyList<(string Path, string Format)> chain, string? identifier = null)
    {
        ArgumentNullException.ThrowIfNull(chain);
        return format switch
        {
            "raw" when chain.Count == 0 => RawFileBlockDevice.Open(path, readOnly, identifier),
            "qcow2" => Qcow2BlockDevice.Open(path, readOnly, chain, identifier),
            _ => throw new BlockDeviceException($"Disk image '{path}': format '{format}' with {chain.Count} backing files is not one HostVM opens.", path),
        };
    }

    /// <summary>Whether <paramref name="path"/> starts with qcow2's magic (false where it cannot be read).</summary>
    public static bool IsQcow2(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
            Span<byte> magic = stackalloc byte[4];
            return RandomAccess.Read(handle, magic, 0) == 4 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(magic) == Qcow2Header.Magic;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
