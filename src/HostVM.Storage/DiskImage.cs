using HostVM.Storage.Qcow2;

namespace HostVM.Storage;

/// <summary>
/// Opens a disk image in its format: <c>raw</c> or <c>qcow2</c> as the caller says, or (format null) as the file's first
/// bytes say. A file a guest has written to as a raw disk can hold a qcow2 header of the guest's making, naming any host
/// file as its backing file: a disk HostVM made raw is always opened with <c>format: "raw"</c>, never probed.
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
        format ??= File.Exists(path) && IsQcow2(path) ? "qcow2" : "raw";
        return format switch
        {
            "raw" => RawFileBlockDevice.Open(path, readOnly, identifier),
            "qcow2" => Qcow2BlockDevice.Open(path, readOnly, identifier),
            _ => throw new BlockDeviceException($"Disk image '{path}': format '{format}' is not one of {string.Join(", ", Formats)}.", path),
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
