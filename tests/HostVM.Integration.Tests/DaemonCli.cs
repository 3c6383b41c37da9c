namespace HostVM.Integration.Tests;

/// <summary>The `hostvm` command against a daemon under test, with its address, certificate and token in the environment.</summary>
public static class DaemonCli
{
    public static (int Code, string Stdout, string Stderr) Hostvm(DaemonUnderTest daemon, params string[] args)
    {
        ArgumentNullException.ThrowIfNull(daemon);
        using var p = HostvmProcess.Start(new Dictionary<string, string>
        {
            ["HOSTVM_HOST"] = daemon.Client.BaseAddress!.ToString(),
            ["HOSTVM_FINGERPRINT"] = daemon.Fingerprint,
            ["HOSTVM_TOKEN"] = daemon.Token!,
            ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config"),
        }, args);
        int code = p.WaitForExitAsync(TimeSpan.FromMinutes(3)).GetAwaiter().GetResult();
        return (code, p.Output, p.Errors);
    }

    /// <summary>Runs `hostvm` and asserts it exited 0; its standard output.</summary>
    public static string Ok(DaemonUnderTest daemon, params string[] args)
    {
        var (code, stdout, stderr) = Hostvm(daemon, args);
        Assert.True(code == 0, $"hostvm {string.Join(' ', args)} exited {code}\n{stdout}\n{stderr}");
        return stdout;
    }
}
