namespace HostVM.Storage.Tests;

/// <summary>A scratch directory with image files in it, deleted afterwards.</summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
internal sealed class TempImage : IDisposable
{
    public TempImage()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("hostvm-storage-test-").FullName;
    }

    public string Directory { get; }

    /// <summary>Creates a sparse file of <paramref name="size"/> bytes and returns its path.</summary>
    public string Create(long size, string name = "disk.img")
    {
        string path = Path.Combine(Directory, name);
        using (var stream = new FileStream(path, FileMode.Create))
        {
            stream.SetLength(size);
        }

        return path;
    }

    public void Dispose()
    {
        foreach (string file in System.IO.Directory.EnumerateFiles(Directory))
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }

        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
