using System.Diagnostics;
using System.Text.Json;

namespace HostVM.Integration.Tests;

/// <summary>
/// HTTPS with the certificate `hostvm serve` makes: pinned by the fingerprint it printed, the API, curl and the CLI
/// work; a wrong pin and no pin fail, naming the certificate's fingerprint; `hostvm login` saves the pin; the
/// Unix socket stays plain HTTP; and a restart keeps the certificate (so the pins stay good).
/// </summary>
[Collection(GuestCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class TlsTests
{
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromMinutes(1);

    private static async Task<(int Code, string Stdout, string Stderr)> HostvmAsync(Dictionary<string, string> environment, params string[] args)
    {
        using var p = HostvmProcess.Start(environment, args);
        int code = await p.WaitForExitAsync(CommandTimeout);
        return (code, p.Output, p.Errors);
    }

    private static async Task<(int Code, string Stdout, string Stderr)> CurlAsync(params string[] args)
    {
        var info = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args)
        {
            info.ArgumentList.Add(a);
        }

        using var curl = Process.Start(info)!;
        var stdout = curl.StandardOutput.ReadToEndAsync();
        var stderr = curl.StandardError.ReadToEndAsync();
        await curl.WaitForExitAsync();
        return (curl.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task PinnedHttpsWorksAWrongOrMissingPinFailsAndARestartKeepsTheCertificate()
    {
        using var daemon = await DaemonUnderTest.StartAsync();
        string url = daemon.Client.BaseAddress!.ToString();
        string fingerprint = daemon.Fingerprint;
        Assert.Equal(fingerprint, (await daemon.GetAsync("/v1/host")).GetProperty("tls_fingerprint").GetString());

        // Without the pin, the system's verification refuses the self-signed certificate.
        using (var unpinned = new HttpClient())
        {
            await Assert.ThrowsAsync<HttpRequestException>(() => unpinned.GetAsync(new Uri(url + "v1/host")));
        }

        // curl trusts the certificate file as its CA (its names include 127.0.0.1); without it, it refuses (60).
        var trusted = await CurlAsync("-sS", "--cacert", daemon.CertificatePath, "-H", $"Authorization: Bearer {daemon.Token}", url + "v1/host");
        Assert.True(trusted.Code == 0, trusted.Stderr);
        Assert.Equal(fingerprint, JsonDocument.Parse(trusted.Stdout).RootElement.GetProperty("tls_fingerprint").GetString());
        Assert.Equal(60, (await CurlAsync("-sS", url + "v1/host")).Code);
        Assert.NotEqual(0, (await CurlAsync("-sS", url.Replace("https://", "http://", StringComparison.Ordinal) + "v1/host")).Code); // no plain HTTP on TCP

        var environment = new Dictionary<string, string> { ["HOSTVM_HOST"] = url, ["HOSTVM_TOKEN"] = daemon.Token!, ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config") };

        // The CLI with the right pin, in any spelling.
        var pinned = await HostvmAsync(environment, "--fingerprint", fingerprint, "host", "info");
        Assert.True(pinned.Code == 0, pinned.Stderr);
        Assert.Contains(fingerprint, pinned.Stdout);
        var lower = await HostvmAsync(environment, "--fingerprint", fingerprint.Replace(":", string.Empty, StringComparison.Ordinal).ToLowerInvariant(), "host", "info", "-o", "json");
        Assert.True(lower.Code == 0, lower.Stderr);

        // A wrong pin: refused, both fingerprints named, exit 7.
        string wrong = (fingerprint[..2] == "00" ? "11" : "00") + fingerprint[2..];
        var mismatch = await HostvmAsync(environment, "--fingerprint", wrong, "host", "info");
        Assert.True(mismatch.Code == 7, $"exit {mismatch.Code}\n{mismatch.Stderr}");
        Assert.Contains($"hostvm: the daemon's certificate fingerprint is {fingerprint}, not the pinned {wrong}", mismatch.Stderr);
        Assert.DoesNotContain("   at ", mismatch.Stderr);

        // No pin: the system cannot verify it; the message gives the fingerprint to compare and pin.
        var none = await HostvmAsync(environment, "host", "info");
        Assert.True(none.Code == 7, $"exit {none.Code}\n{none.Stderr}");
        Assert.Contains($"its SHA-256 fingerprint is {fingerprint}", none.Stderr);
        Assert.Contains($"--fingerprint {fingerprint}", none.Stderr);

        // The Unix socket is plain HTTP and needs no pin.
        var local = await HostvmAsync(new() { ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config") }, "--host", "unix:" + Path.Combine(daemon.RuntimeDir, "hostvm.sock"), "host", "info");
        Assert.True(local.Code == 0, local.Stderr);

        // login: never trusts blindly without a terminal; with the fingerprint it saves host and pin (0600).
        var noConfig = new Dictionary<string, string> { ["XDG_CONFIG_HOME"] = Path.Combine(daemon.Root, "config") };
        string cliJson = Path.Combine(daemon.Root, "config", "hostvm", "cli.json");
        var blind = await HostvmAsync(noConfig, "login", url);
        Assert.Equal(7, blind.Code);
        Assert.False(File.Exists(cliJson));
        var login = await HostvmAsync(noConfig, "login", url, "--fingerprint", fingerprint, "--token", daemon.Token!);
        Assert.True(login.Code == 0, login.Stderr);
        Assert.Contains($"Certificate SHA-256 fingerprint: {fingerprint} (pinned)", login.Stdout);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(cliJson));
        var afterLogin = await HostvmAsync(noConfig, "host", "info");
        Assert.True(afterLogin.Code == 0, afterLogin.Stderr);

        // A restart serves the same certificate.
        await daemon.KillAndRestartAsync();
        Assert.Equal(fingerprint, daemon.Fingerprint);
        Assert.Equal(fingerprint, (await daemon.GetAsync("/v1/host")).GetProperty("tls_fingerprint").GetString());
    }
}
