using System.Diagnostics;

namespace HostVM.Storage.Tests;

/// <summary>
/// QEMU's image tools (qemu-img, qemu-io): the independent peer the qcow2 tests check HostVM against; also runs the
/// ISO 9660 tests' peers (isoinfo, bsdtar, blkid).
/// </summary>
internal static class QemuTools
{
    /// <summary>Runs <paramref name="tool"/> in <paramref name="directory"/>; skips the test where it is not installed.</summary>
    public static (int ExitCode, string Output) Run(string tool, string directory, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = directory };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        Process process;
        try
        {
            process = Process.Start(info)!;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            Assert.Skip($"{tool} is not installed (scripts/deps.sh installs it: qemu-utils, genisoimage, libarchive-tools)");
            throw;
        }

        using (process)
        {
            var error = process.StandardError.ReadToEndAsync();
            string output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return (process.ExitCode, output + error.Result);
        }
    }

    /// <summary>Runs <paramref name="tool"/> and fails the test unless it succeeds; returns what it printed.</summary>
    public static string Check(string tool, string directory, params string[] args)
    {
        var (code, output) = Run(tool, directory, args);
        Assert.True(code == 0, $"{tool} {string.Join(' ', args)} failed ({code}): {output}");
        return output;
    }

    /// <summary>qemu-io commands (each a -c) on <paramref name="image"/>.</summary>
    public static void Io(string directory, string image, params string[] commands) =>
        Check("qemu-io", directory, [.. commands.SelectMany(c => new[] { "-c", c }), image]);
}
