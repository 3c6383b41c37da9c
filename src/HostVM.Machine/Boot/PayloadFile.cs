namespace HostVM.Machine.Boot;

/// <summary>Reads boot files, turning I/O failures into <see cref="BootImageException"/>s that say what to do.</summary>
internal static class PayloadFile
{
    /// <summary>Files larger than this cannot be boot payloads (guest RAM is addressed with int spans).</summary>
    public const long MaxSize = int.MaxValue;

    public static byte[] Read(string path)
    {
        string name = Path.GetFileName(path);
        try
        {
            var info = new FileInfo(path);
            if (!info.Exists)
            {
                throw new BootImageException(Directory.Exists(path)
                    ? $"{name}: is a directory, not a file ({path})"
                    : $"{name}: file not found ({Path.GetFullPath(path)}): check the path");
            }

            if (info.Length > MaxSize)
            {
                throw new BootImageException($"{name}: is {info.Length} bytes; boot files must be under 2 GiB");
            }

            return File.ReadAllBytes(path);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new BootImageException($"{name}: permission denied ({path}): make it readable by this user", e);
        }
        catch (IOException e)
        {
            throw new BootImageException($"{name}: cannot be read ({e.Message})", e);
        }
    }
}
