namespace HostVM.Machine.Tests.Boot;

/// <summary>Decompiles a DTB with the device tree compiler; any warning or error fails the test.</summary>
internal static class Dtc
{
    public static string Decompile(byte[] blob)
    {
        string path = Path.Combine(Path.GetTempPath(), $"hostvm-{Guid.NewGuid():N}.dtb");
        File.WriteAllBytes(path, blob);
        try
        {
            var result = ExternalTool.Run("dtc", "install it with `apt-get install device-tree-compiler`", "-I", "dtb", "-O", "dts", path);
            Assert.True(result.ExitCode == 0, $"dtc failed ({result.ExitCode}): {result.Stderr}");
            Assert.True(result.Stderr.Length == 0, $"dtc complained: {result.Stderr}");
            return result.Stdout;
        }
        finally
        {
            File.Delete(path);
        }
    }
}
