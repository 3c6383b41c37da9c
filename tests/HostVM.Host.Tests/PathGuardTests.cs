using System.Diagnostics;
using HostVM.Host.Api;
using HostVM.Host.Images;
using Microsoft.Win32.SafeHandles;

namespace HostVM.Host.Tests;

/// <summary>
/// Client-given paths are opened once, beneath the caller's import directory, following no symlink at any
/// component, and only regular files: both with openat2 and with the walk used where the kernel has none.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")] // openat2, FIFOs and file modes
public sealed class PathGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-paths-").FullName;

    private string Import => Path.Combine(_dir, "import");

    public PathGuardTests()
    {
        Directory.CreateDirectory(Path.Combine(Import, "sub", "deeper"));
        Directory.CreateDirectory(Path.Combine(Import, "alpha"));
        Directory.CreateDirectory(Path.Combine(Import, "beta"));
        File.WriteAllText(Path.Combine(Import, "kernel"), "k");
        File.WriteAllText(Path.Combine(Import, "sub", "initrd"), "i");
        File.WriteAllText(Path.Combine(Import, "sub", "deeper", "disk"), "d");
        File.WriteAllText(Path.Combine(Import, "alpha", "kernel"), "alpha's");
        File.WriteAllText(Path.Combine(Import, "beta", "kernel"), "beta's");
        File.WriteAllText(Path.Combine(_dir, "secret"), "s");
        File.CreateSymbolicLink(Path.Combine(Import, "inside-link"), Path.Combine(Import, "kernel"));
        File.CreateSymbolicLink(Path.Combine(Import, "outside-link"), Path.Combine(_dir, "secret"));
        Directory.CreateSymbolicLink(Path.Combine(Import, "dir-link"), _dir);
        Directory.CreateSymbolicLink(Path.Combine(Import, "sub", "link-to-sub"), Path.Combine(Import, "sub"));
        Directory.CreateSymbolicLink(Path.Combine(Import, "gamma"), Path.Combine(Import, "beta")); // a project's directory that is a symlink
        Assert.Equal(0, Mkfifo(Path.Combine(Import, "fifo"), 0x180));
    }

    private static string Read(SafeFileHandle handle)
    {
        var buffer = new byte[64];
        return System.Text.Encoding.ASCII.GetString(buffer, 0, RandomAccess.Read(handle, buffer, 0));
    }

    private SafeFileHandle Open(string given, bool openat2, string? project = null) => PathGuard.Open(given, [Import], project, "kernel", openat2);

    [Theory]
    [InlineData("kernel", "k", true)]
    [InlineData("sub/initrd", "i", true)]
    [InlineData("sub/deeper/disk", "d", true)]
    [InlineData("sub/../kernel", "k", true)]
    [InlineData("./sub/./initrd", "i", true)]
    [InlineData("kernel", "k", false)]
    [InlineData("sub/deeper/disk", "d", false)]
    [InlineData("sub/../kernel", "k", false)]
    public void PathsInsideAreOpened(string given, string contents, bool openat2)
    {
        using var handle = Open(given, openat2);
        Assert.Equal(contents, Read(handle));
        using var absolute = Open(Path.Combine(Import, given), openat2);
        Assert.Equal(contents, Read(absolute));
    }

    [Theory]
    [InlineData("../secret", "outside")]
    [InlineData("sub/../../secret", "outside")]
    [InlineData("/etc/passwd", "outside")]
    [InlineData("inside-link", "symlink")]
    [InlineData("outside-link", "symlink")]
    [InlineData("dir-link/secret", "symlink")]
    [InlineData("sub/link-to-sub/initrd", "symlink")]
    [InlineData("sub/link-to-sub/deeper/disk", "symlink")]
    [InlineData("missing", "no such file")]
    [InlineData("sub/missing/disk", "no such file")]
    [InlineData("kernel/x", "no such file")]
    [InlineData("sub", "not a regular file")]
    [InlineData("", "required")]
    public void PathsOutsideThroughSymlinksOrMissingAreRefused(string given, string mentions)
    {
        foreach (bool openat2 in new[] { true, false })
        {
            var e = Assert.Throws<ApiProblem>(() => Open(given, openat2));
            Assert.Equal(400, e.Status);
            Assert.Contains(mentions, e.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFifoIsRefusedAtOnceInsteadOfWaitingForAWriter(bool openat2)
    {
        var clock = Stopwatch.StartNew();
        var e = Assert.Throws<ApiProblem>(() => Open("fifo", openat2));
        Assert.Contains("not a regular file", e.Message, StringComparison.Ordinal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"{clock.ElapsedMilliseconds} ms");
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AProjectReadsOnlyItsOwnDirectory(bool openat2)
    {
        using (var own = Open("kernel", openat2, "alpha"))
        {
            Assert.Equal("alpha's", Read(own));
        }

        using (var absolute = Open(Path.Combine(Import, "alpha", "kernel"), openat2, "alpha"))
        {
            Assert.Equal("alpha's", Read(absolute));
        }

        foreach (string other in new[] { "../beta/kernel", "../kernel", Path.Combine(Import, "beta", "kernel"), Path.Combine(Import, "kernel") })
        {
            Assert.Contains("outside", Assert.Throws<ApiProblem>(() => Open(other, openat2, "alpha")).Message, StringComparison.Ordinal);
        }

        Assert.Contains("symlink", Assert.Throws<ApiProblem>(() => Open("kernel", openat2, "gamma")).Message, StringComparison.Ordinal);
        Assert.Contains("project delta's import directory", Assert.Throws<ApiProblem>(() => Open("kernel", openat2, "delta")).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void WhatIsReadIsTheFileOpenedNotWhatThePathNamesLater(bool openat2)
    {
        using var handle = Open("sub/initrd", openat2);
        // The swap the review describes: after the check, the name becomes a symlink to a secret.
        File.Delete(Path.Combine(Import, "sub", "initrd"));
        File.CreateSymbolicLink(Path.Combine(Import, "sub", "initrd"), Path.Combine(_dir, "secret"));
        string copy = Path.Combine(_dir, "copy");
        Vmm.OwnerOnly.CopyFile(handle, copy);
        Assert.Equal("i", File.ReadAllText(copy));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(copy));
    }

    [Fact]
    public void ACopySkipsZerosButKeepsTheLengthAndTheData()
    {
        string source = Path.Combine(Import, "sparse");
        var data = new byte[(3 << 20) + 5];
        data[(1 << 20) + 7] = 0x5a;
        File.WriteAllBytes(source, data);
        using var handle = Open("sparse", openat2: true);
        string copy = Path.Combine(_dir, "sparse-copy");
        Vmm.OwnerOnly.CopyFile(handle, copy);
        Assert.Equal(data, File.ReadAllBytes(copy));
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "mkfifo", SetLastError = true)]
    private static extern int Mkfifo(string path, int mode);
}
