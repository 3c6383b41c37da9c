namespace HostVM.Integration.Tests;

/// <summary>
/// Where the guest images (guest/build.sh) and bare-metal programs (guest/baremetal/build.sh) are.
/// test.sh exports their directories; without it the default cache location is used. A missing
/// artifact fails the test with the command that builds it: these tests never skip silently.
/// </summary>
public static class GuestArtifacts
{
    private static string CacheRoot =>
        Environment.GetEnvironmentVariable("HOSTVM_CACHE")
        ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "hostvm");

    public static string GuestDirectory =>
        Environment.GetEnvironmentVariable("HOSTVM_GUEST_DIR") is { Length: > 0 } d ? d : Path.Combine(CacheRoot, "guest", "current");

    public static string BareMetalDirectory =>
        Environment.GetEnvironmentVariable("HOSTVM_BAREMETAL_DIR") is { Length: > 0 } d ? d : FindBareMetal();

    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "HostVM.slnx")))
            {
                dir = dir.Parent;
            }

            return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root (HostVM.slnx) above " + AppContext.BaseDirectory);
        }
    }

    public static string Guest(string name) => Require(Path.Combine(GuestDirectory, name), "guest/build.sh");

    /// <summary>A file of the Debian 13 image (guest/debian/build.sh): HOSTVM_DEBIAN_DIR, else the newest built in the cache.</summary>
    public static string Debian(string name)
    {
        string directory = Environment.GetEnvironmentVariable("HOSTVM_DEBIAN_DIR") is { Length: > 0 } d ? d
            : (Directory.Exists(Path.Combine(CacheRoot, "guest"))
                ? new DirectoryInfo(Path.Combine(CacheRoot, "guest")).GetDirectories("debian-*").Where(x => File.Exists(Path.Combine(x.FullName, ".done")))
                    .OrderByDescending(x => x.LastWriteTimeUtc).FirstOrDefault()?.FullName
                : null) ?? Path.Combine(CacheRoot, "guest", "debian");
        return Require(Path.Combine(directory, name), "guest/debian/build.sh");
    }

    public static string BareMetal(string name) => Require(Path.Combine(BareMetalDirectory, name), "guest/baremetal/build.sh");

    private static string FindBareMetal()
    {
        string root = Path.Combine(CacheRoot, "baremetal");
        var newest = Directory.Exists(root)
            ? new DirectoryInfo(root).GetDirectories().OrderByDescending(d => d.LastWriteTimeUtc).FirstOrDefault()
            : null;
        return newest?.FullName ?? root;
    }

    private static string Require(string path, string builder)
    {
        if (!File.Exists(path))
        {
            throw new FileNotFoundException($"{path} is missing: run {builder} (test.sh does) before these tests.", path);
        }

        return path;
    }
}
