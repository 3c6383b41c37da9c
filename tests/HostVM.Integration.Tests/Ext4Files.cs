using System.Diagnostics;

namespace HostVM.Integration.Tests;

/// <summary>Files read out of an ext4 image on the host with e2fsprogs' debugfs (no mounting, no root).</summary>
internal static class Ext4Files
{
    /// <summary>The contents of <paramref name="pathInImage"/>, extracted through a file in <paramref name="scratch"/>.</summary>
    public static byte[] Dump(string image, string pathInImage, string scratch)
    {
        string outFile = Path.Combine(scratch, "extracted.bin");
        using var p = Process.Start(new ProcessStartInfo("debugfs", ["-R", $"dump {pathInImage} {outFile}", image]) { RedirectStandardError = true, RedirectStandardOutput = true })!;
        string err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(File.Exists(outFile), $"debugfs could not extract {pathInImage}: {err}");
        return File.ReadAllBytes(outFile);
    }
}
