using System.Net;
using System.Text;

namespace HostVM.Cli.Tests;

/// <summary>`hostvm image ...`: uploads as multipart/form-data with a metadata part and one part per file.</summary>
public sealed class ImageCommandsTests : IDisposable
{
    private const string Alpine = """
        {"name": "alpine", "boot_args": "console=ttyS0", "description": "", "kernel_bytes": 6, "initrd_bytes": null, "disk_bytes": 4, "created_at": "2026-01-01T10:00:00Z"}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("hostvm-image-test-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void ImportUploadsMetadataAndFiles()
    {
        string kernel = Path.Combine(_dir, "Image");
        string disk = Path.Combine(_dir, "disk.ext4");
        File.WriteAllText(kernel, "KERNEL");
        File.WriteAllText(disk, "DISK");
        var daemon = new FakeDaemon().Answer("POST", "/v1/images", HttpStatusCode.Created, Alpine);
        var run = CliRun.Start(daemon, "image", "import", "alpine", "--kernel", kernel, "--disk", disk, "--append", "console=ttyS0");
        Assert.Equal(0, run.ExitCode);
        var request = daemon.Single("POST");
        Assert.StartsWith("multipart/form-data", request.ContentType);
        string body = Encoding.UTF8.GetString(request.Body);
        Assert.Contains("name=metadata", body);
        Assert.Contains("""{"name":"alpine","boot_args":"console=ttyS0"}""", body);
        Assert.Contains("name=kernel; filename=Image", body);
        Assert.Contains("KERNEL", body);
        Assert.Contains("name=disk; filename=disk.ext4", body);
        Assert.DoesNotContain("name=initrd", body);
        Assert.Contains("Imported image alpine: kernel 6 B, initrd -, disk 4 B.", run.Output);
    }

    [Fact]
    public void ImportSendsTheProjectInTheMetadata()
    {
        string kernel = Path.Combine(_dir, "Image");
        File.WriteAllText(kernel, "KERNEL");
        var daemon = new FakeDaemon().Answer("POST", "/v1/images", HttpStatusCode.Created, Alpine);
        Assert.Equal(0, CliRun.Start(daemon, "image", "import", "alpine", "--kernel", kernel, "--project", "alpha").ExitCode);
        Assert.Contains("""{"name":"alpine","project":"alpha"}""", Encoding.UTF8.GetString(daemon.Single("POST").Body));
    }

    [Fact]
    public void AMissingFileIsExitCode2BeforeAnythingIsSent()
    {
        var daemon = new FakeDaemon();
        string missing = Path.Combine(_dir, "nope");
        var run = CliRun.Start(daemon, "image", "import", "alpine", "--kernel", missing);
        Assert.Equal(ExitCodes.BadCommandLine, run.ExitCode);
        Assert.Equal($"hostvm: --kernel {missing}: no such file.\n", run.Errors.ReplaceLineEndings("\n"));
        Assert.Empty(daemon.Requests);
    }

    [Fact]
    public void ListShowsSizes()
    {
        var daemon = new FakeDaemon().Answer("GET", "/v1/images", HttpStatusCode.OK, "[" + Alpine + "]");
        var run = CliRun.Start(daemon, "image", "list");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains(run.Output.Split('\n'), l => l.Contains("alpine") && l.Contains("6 B") && l.Contains("console=ttyS0"));
    }

    [Fact]
    public void DeleteOfAMissingImageIsExitCode3()
    {
        var run = CliRun.Start(new FakeDaemon(), "image", "delete", "nope");
        Assert.Equal(ExitCodes.NotFound, run.ExitCode);
    }
}
