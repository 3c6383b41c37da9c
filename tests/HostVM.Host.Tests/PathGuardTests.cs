using HostVM.Host.Api;
using HostVM.Host.Images;

namespace HostVM.Host.Tests;

/// <summary>Client-given paths must stay inside the import directories, whatever `..` or symlinks say.</summary>
public sealed class PathGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-paths-").FullName;

    private string Import => Path.Combine(_dir, "import");

    public PathGuardTests()
    {
        Directory.CreateDirectory(Path.Combine(Import, "sub"));
        File.WriteAllText(Path.Combine(Import, "kernel"), "k");
        File.WriteAllText(Path.Combine(Import, "sub", "initrd"), "i");
        File.WriteAllText(Path.Combine(_dir, "secret"), "s");
        File.CreateSymbolicLink(Path.Combine(Import, "inside-link"), Path.Combine(Import, "kernel"));
        File.CreateSymbolicLink(Path.Combine(Import, "outside-link"), Path.Combine(_dir, "secret"));
        Directory.CreateSymbolicLink(Path.Combine(Import, "dir-link"), _dir);
    }

    [Theory]
    [InlineData("kernel")]
    [InlineData("sub/initrd")]
    [InlineData("sub/../kernel")]
    [InlineData("inside-link")]
    public void PathsInsideAreResolved(string given)
    {
        string resolved = PathGuard.Resolve(given, [Import], "kernel");
        Assert.StartsWith(PathGuard.RealPath(Import)!, resolved, StringComparison.Ordinal);
        Assert.True(File.Exists(resolved));
    }

    [Theory]
    [InlineData("../secret", "outside")]
    [InlineData("sub/../../secret", "outside")]
    [InlineData("/etc/passwd", "outside")]
    [InlineData("outside-link", "outside")]
    [InlineData("dir-link/secret", "outside")]
    [InlineData("missing", "no such file")]
    [InlineData("sub", "not a regular file")]
    [InlineData("", "required")]
    public void PathsOutsideOrMissingAreRefused(string given, string mentions)
    {
        var e = Assert.Throws<ApiProblem>(() => PathGuard.Resolve(given, [Import], "kernel"));
        Assert.Equal(400, e.Status);
        Assert.Contains(mentions, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAbsolutePathInsideIsAccepted() =>
        Assert.EndsWith("kernel", PathGuard.Resolve(Path.Combine(Import, "kernel"), [Import], "kernel"), StringComparison.Ordinal);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
