using HostVM.Machine.Boot;

namespace HostVM.Machine;

/// <summary>A boot payload's bytes and the name to use for it in messages (usually its path).</summary>
public sealed record BootFile(string Name, ReadOnlyMemory<byte> Data)
{
    /// <summary>Reads a kernel, initrd or firmware file; <paramref name="what"/> names it in errors (e.g. "--kernel").</summary>
    /// <exception cref="BootImageException">The file is missing, a directory, empty, too large or unreadable.</exception>
    public static BootFile Read(string path, string what)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            throw new BootImageException($"{what} {path}: is a directory, not a file.");
        }

        if (!File.Exists(path))
        {
            throw new BootImageException($"{what} {path}: no such file.");
        }

        if (new FileInfo(path).Length > int.MaxValue)
        {
            throw new BootImageException($"{what} {path}: boot files must be under 2 GiB.");
        }

        try
        {
            var data = File.ReadAllBytes(path);
            if (data.Length == 0)
            {
                throw new BootImageException($"{what} {path}: the file is empty.");
            }

            return new BootFile(path, data);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new BootImageException($"{what} {path}: cannot be read ({e.Message}).");
        }
    }
}
