using System.Text.RegularExpressions;

namespace HostVM.Integration.Tests;

/// <summary>
/// `hostvm serve` as a child process with its own data and runtime directories, on a free loopback port
/// (read back from the address it prints) and on a Unix socket; killed and cleaned up on Dispose.
/// </summary>
public sealed partial class DaemonProcess : IDisposable
{
    private readonly string _root;
    private readonly HostvmProcess _process;

    private DaemonProcess(string root, HostvmProcess process, string url)
    {
        _root = root;
        _process = process;
        Url = url;
    }

    /// <summary>The TCP address, e.g. http://127.0.0.1:41355.</summary>
    public string Url { get; }

    /// <summary>What XDG_RUNTIME_DIR must be for the CLI to find <see cref="Socket"/> by itself.</summary>
    public string RuntimeRoot => Path.Combine(_root, "run");

    public string Socket => Path.Combine(RuntimeRoot, "hostvm", "hostvm.sock");

    public string DataDir => Path.Combine(_root, "data");

    /// <summary>An empty directory to stand for XDG_CONFIG_HOME, so a user's ~/.config/hostvm/cli.json is not read.</summary>
    public string ConfigRoot => Path.Combine(_root, "config");

    public string Errors => _process.Errors;

    public static async Task<DaemonProcess> StartAsync()
    {
        // Short: the Unix socket's path must fit in sun_path (108 bytes).
        string root = Path.Combine(Path.GetTempPath(), $"hvd-{Guid.NewGuid():N}"[..12]);
        Directory.CreateDirectory(Path.Combine(root, "config"));
        var process = HostvmProcess.Start(
            "serve", "--data-dir", Path.Combine(root, "data"), "--runtime-dir", Path.Combine(root, "run", "hostvm"), "--listen", "127.0.0.1:0");
        try
        {
            await process.WaitForOutputAsync("hostvm serve: data in", TimeSpan.FromSeconds(60));
            var match = ListeningOn().Match(process.Output);
            Assert.True(match.Success, $"hostvm serve printed no TCP address:\n{process.Output}");
            return new DaemonProcess(root, process, match.Groups[1].Value);
        }
        catch
        {
            process.Dispose();
            Directory.Delete(root, recursive: true);
            throw;
        }
    }

    public void Dispose()
    {
        _process.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
            // A VMM still winding down may hold a file for a moment; the directory is in /tmp.
        }
    }

    [GeneratedRegex(@"listening on (http://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningOn();
}
