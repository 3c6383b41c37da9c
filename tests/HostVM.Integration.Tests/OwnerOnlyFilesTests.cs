using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Xunit;

namespace HostVM.Integration.Tests;

/// <summary>
/// What the daemon keeps on disk and the sockets it and its VMMs listen on are its user's alone (security review
/// F5, F6), and it refuses a runtime directory another user could have prepared. No guest is needed: the VM's
/// kernel is `j .`, which spins in place, so its VMM runs and has its sockets and logs.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class OwnerOnlyFilesTests
{
    private const UnixFileMode GroupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
        | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private const UnixFileMode Other = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private const UnixFileMode Rwx = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    private const int Nobody = 65534;

    [Fact]
    public async Task TheDataDirectoryDisksInventoryLogsAndSocketsAreTheDaemonsAlone()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string import = Path.Combine(daemon.DataDir, "import");
        await File.WriteAllBytesAsync(Path.Combine(import, "spin"), SpinKernel.Image);
        await File.WriteAllBytesAsync(Path.Combine(import, "disk"), new byte[1 << 20]);
        File.SetUnixFileMode(Path.Combine(import, "disk"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/images", new { name = "spin", kernel = "spin", disk = "disk" })).Status);

        // An upload: its files are written by the daemon, not copied.
        using (var upload = new MultipartFormDataContent())
        {
            upload.Add(new StringContent("""{"name": "uploaded"}""", Encoding.UTF8, "application/json"), "metadata");
            var kernel = new ByteArrayContent(SpinKernel.Image);
            kernel.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
            upload.Add(kernel, "kernel", "kernel");
            using var response = await daemon.Client.PostAsync("/v1/images", upload);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        }

        Assert.Equal(201, (await daemon.SendAsync(HttpMethod.Post, "/v1/networks", new { name = "lan" })).Status);
        var vm = await daemon.CreateVmAsync(new { name = "spinner", image = "spin", vcpus = 1, memory_mib = 64, cpu_cap_percent = 10, networks = new[] { new { network = "lan" } } });
        var (status, started) = await daemon.SendAsync(HttpMethod.Post, "/v1/vms/spinner/start");
        Assert.True(status == 200, started.ToString());
        string id = vm.GetProperty("id").GetString()!;
        string vmDir = Path.Combine(daemon.DataDir, "vms", id);
        string vmRun = Path.Combine(daemon.RuntimeDir, "vms", id);

        // Jailed (the daemon runs as root): what the VM's VMM must write is its jail uid's alone, what every jail on a
        // network shares (the switch) or reads (its boot files) is open to the jails' group only. Never to others.
        var (_, jailText) = Run("sh", "-c", $"awk '/^Uid:/ {{print $2}}' /proc/{started.GetProperty("pid").GetInt32()}/status");
        int vmmUid = int.Parse(jailText.Trim(), System.Globalization.CultureInfo.InvariantCulture);
        bool jailed = vmmUid != 0 && Environment.IsPrivilegedProcess;
        int daemonUid = jailed ? 0 : vmmUid;
        const int JailGroup = 900_000; // jail_id_base: the group all jails share
        var failures = new List<string>();
        foreach (string dir in new[] { daemon.DataDir, daemon.RuntimeDir, Path.Combine(daemon.RuntimeDir, "vms"), vmDir, Path.Combine(daemon.DataDir, "images") })
        {
            Check(failures, dir, (mode, uid, _) => mode == Rwx && uid == daemonUid, "0700, the daemon's");
        }

        foreach (string dir in new[] { vmRun, Path.Combine(vmDir, "out") })
        {
            Check(failures, dir, (mode, uid, _) => mode == Rwx && uid == vmmUid, "0700, the VMM's");
        }

        Check(failures, Path.Combine(daemon.RuntimeDir, "switches", "lan"), (mode, uid, gid) => jailed
            ? (mode & ~UnixFileMode.SetGroup) == (Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute) && gid == JailGroup
            : mode == Rwx, jailed ? "2770, group the jails'" : "0700");

        var daemons = new List<string>
        {
            Path.Combine(daemon.DataDir, "images", "uploaded", "kernel"),
            Path.Combine(vmDir, "vmm.log"), Path.Combine(daemon.RuntimeDir, "hostvm.sock"),
        };
        daemons.AddRange(Directory.GetFiles(daemon.DataDir, "hostvm.db*"));
        Assert.Contains(Path.Combine(daemon.DataDir, "hostvm.db-wal"), daemons);
        foreach (string file in daemons)
        {
            Check(failures, file, (mode, uid, _) => (mode & GroupOrOther) == 0 && uid == daemonUid, "no access for group or others, the daemon's");
        }

        foreach (string file in new[] { Path.Combine(vmDir, "disks", "disk.qcow2"), Path.Combine(vmDir, "out", "serial.log"), Path.Combine(vmRun, "api.sock"), Path.Combine(vmRun, "console.sock") })
        {
            Check(failures, file, (mode, uid, _) => (mode & GroupOrOther) == 0 && uid == vmmUid, "no access for group or others, the VMM's");
        }

        // The boot files and the disk's base (the image's, linked into the VM's directory), and the ports on the switch (the VM's and the NAT's).
        foreach (string file in Directory.GetFiles(Path.Combine(daemon.RuntimeDir, "switches", "lan")).Concat([Path.Combine(vmDir, "kernel"), Path.Combine(vmDir, "disks", "base.img"),
            Path.Combine(daemon.DataDir, "images", "spin", "kernel"), Path.Combine(daemon.DataDir, "images", "spin", "disk.img")]))
        {
            Check(failures, file, (mode, _, gid) => (mode & Other) == 0 && ((mode & GroupOrOther) == 0 || (jailed && gid == JailGroup && (mode & UnixFileMode.GroupExecute) == 0)),
                "no access for others, and for a group only the jails' (read/write)");
        }

        // A deleted VM's disk and logs are kept in orphans/: still the daemon's alone.
        Assert.Equal(200, (await daemon.SendAsync(HttpMethod.Post, "/v1/vms/spinner/stop", new { timeout_s = 1 })).Status);
        Assert.Equal(204, (await daemon.SendAsync(HttpMethod.Delete, "/v1/vms/spinner")).Status);
        string orphans = Path.Combine(daemon.DataDir, "orphans");
        Check(failures, orphans, (mode, _, _) => mode == Rwx, "0700");
        foreach (string kept in Directory.GetFileSystemEntries(orphans, "*", SearchOption.AllDirectories))
        {
            Check(failures, kept, (mode, _, _) => (mode & Other) == 0 && ((mode & GroupOrOther) == 0 || jailed), "no access for others");
        }

        Assert.True(failures.Count == 0, string.Join('\n', failures));
    }

    [Fact]
    public async Task ARuntimeDirectoryOfAnotherUserASymlinkOrOpenToOthersStopsTheStartWithOneLine()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "giving a directory to another user (nobody) needs root, as CI has");
        string root = Directory.CreateTempSubdirectory("hostvm-runtime-").FullName;
        try
        {
            string theirs = Path.Combine(root, "theirs");
            Directory.CreateDirectory(theirs, Rwx);
            Run("chown", $"{Nobody}:{Nobody}", theirs);
            await AssertRefusedAsync(root, theirs, $"is owned by uid {Nobody}");

            string link = Path.Combine(root, "link");
            string target = Directory.CreateDirectory(Path.Combine(root, "target"), Rwx).FullName;
            File.CreateSymbolicLink(link, target);
            await AssertRefusedAsync(root, link, "is a symbolic link");

            string open = Directory.CreateDirectory(Path.Combine(root, "open")).FullName;
            File.SetUnixFileMode(open, Rwx | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            await AssertRefusedAsync(root, open, "has mode 0755");

            Assert.False(File.Exists(Path.Combine(target, "hostvm.sock")), "no socket was made in the link's target");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task TheLocalSocketClosesConnectionsOfOtherUsers()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "connecting as another user (nobody) needs root, as CI has");
        // The socket in a directory anyone may enter, and (by a mistake of the admin's, say) mode 0666: the peer's
        // credentials, not only the mode, keep other users out.
        string shared = Directory.CreateTempSubdirectory("hostvm-peer-").FullName;
        File.SetUnixFileMode(shared, Rwx | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute);
        string socket = Path.Combine(shared, "hostvm.sock");
        try
        {
            using var daemon = await DaemonUnderTest.StartAsync("--socket", socket);
            File.SetUnixFileMode(socket, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite);

            var (asRoot, rootOut) = Run("curl", "-sS", "--max-time", "10", "--unix-socket", socket, "http://localhost/v1/host");
            Assert.True(asRoot == 0, rootOut);
            Assert.Contains("\"version\"", rootOut, StringComparison.Ordinal);

            var (asNobody, nobodyOut) = Run("setpriv", $"--reuid={Nobody}", $"--regid={Nobody}", "--clear-groups", "curl", "-sS", "--max-time", "10", "--unix-socket", socket, "http://localhost/v1/host");
            Assert.True(asNobody != 0, $"nobody got an answer from the daemon's socket: {nobodyOut}");
            Assert.DoesNotContain("\"version\"", nobodyOut, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(shared, recursive: true);
        }
    }

    private static async Task AssertRefusedAsync(string root, string runtimeDir, string reason)
    {
        string data = Path.Combine(root, $"data-{Path.GetFileName(runtimeDir)}");
        using var serve = HostvmProcess.Start("serve", "--data-dir", data, "--runtime-dir", runtimeDir, "--listen", "127.0.0.1:0");
        int code = await serve.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.True(code == 2, $"exit {code} for {runtimeDir}\nstdout:\n{serve.Output}\nstderr:\n{serve.Errors}");
        string[] lines = serve.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"one line expected:\n{serve.Errors}");
        Assert.StartsWith($"hostvm serve: runtime_dir {runtimeDir}: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(reason, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("listening", serve.Output, StringComparison.Ordinal);
    }

    /// <summary>Adds a failure unless <paramref name="path"/>'s mode, owner and group pass <paramref name="ok"/>.</summary>
    private static void Check(List<string> failures, string path, Func<UnixFileMode, int, int, bool> ok, string expected)
    {
        if (!Path.Exists(path))
        {
            failures.Add($"{path}: missing");
            return;
        }

        var mode = File.GetUnixFileMode(path);
        var (_, owners) = Run("stat", "-c", "%u %g", path);
        int[] ids = [.. owners.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(t => int.Parse(t, System.Globalization.CultureInfo.InvariantCulture))];
        if (!ok(mode, ids[0], ids[1]))
        {
            failures.Add($"{path}: mode {Convert.ToString((int)mode, 8)} uid {ids[0]} gid {ids[1]}, expected {expected}");
        }
    }

    private static (int Code, string Output) Run(string command, params string[] args)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        using var process = Process.Start(info)!;
        string output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }
}
