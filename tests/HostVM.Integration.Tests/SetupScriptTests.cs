using System.Diagnostics;

namespace HostVM.Integration.Tests;

/// <summary>
/// The set-up scripts on a machine that lacks what earlier work left on this one. apt is pointed
/// (APT_CONFIG) at a sources directory of the test's own, so the machine's /etc/apt is neither read
/// for entries nor changed. A new Debian 12 machine has no deb-src entry, and `apt-cache showsrc`
/// then fails: guest/build.sh once died there with status 100 and no message.
/// </summary>
public sealed class SetupScriptTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("hostvm-setup-test-").FullName;

    private string SourcesDir => Path.Combine(_root, "sources.list.d");

    public void Dispose() => Directory.Delete(_root, recursive: true);

    [Fact]
    public void WithoutADebSrcEntryTheGuestBuildAddsOneAndGoesOn()
    {
        Assert.SkipUnless(Environment.IsPrivilegedProcess, "apt-get update, which adding a deb-src entry runs, needs root; test.sh as root runs it");
        string[] debianSources = Directory.GetFiles("/etc/apt/sources.list.d", "*.sources")
            .Where(f => !Path.GetFileName(f).StartsWith("hostvm-", StringComparison.Ordinal)
                && File.ReadAllText(f).Contains("debian", StringComparison.Ordinal))
            .ToArray();
        Assert.True(debianSources.Length > 0, "this machine has no Debian deb822 entry in /etc/apt/sources.list.d to copy");
        string[] before = Directory.GetFiles("/etc/apt/sources.list.d");
        var apt = PrivateApt(debianSources);
        Assert.DoesNotContain("deb-src", File.ReadAllText(Path.Combine(SourcesDir, Path.GetFileName(debianSources[0]))), StringComparison.Ordinal);

        var result = RunEnsureDebSrc(apt);

        Assert.True(result.ExitCode == 0, result.ToString());
        string added = Path.Combine(SourcesDir, "hostvm-deb-src.sources");
        Assert.Contains($"added deb-src entry {added}", result.StandardError, StringComparison.Ordinal);
        string entry = File.ReadAllText(added);
        Assert.Contains("Types: deb-src", entry, StringComparison.Ordinal);
        Assert.DoesNotContain("Types: deb\n", entry, StringComparison.Ordinal);
        // The busybox source package's versions, as apt-get source will need them.
        Assert.Matches(@"(?m)^VERSIONS=\S*1\.\d+\.\d+", result.StandardOutput);
        Assert.Equal(before, Directory.GetFiles("/etc/apt/sources.list.d"));

        // Run again: the entry is there, so nothing is added and nothing is fetched.
        var again = RunEnsureDebSrc(apt);
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.DoesNotContain("added deb-src entry", again.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public void WithNoDebianEntryAtAllTheGuestBuildSaysWhatToAdd()
    {
        Directory.CreateDirectory(SourcesDir);
        File.WriteAllText(Path.Combine(SourcesDir, "other.sources"), "Types: deb\nURIs: http://127.0.0.1:9/nothing\nSuites: none\nComponents: main\n");
        var apt = PrivateApt([]);

        var result = RunEnsureDebSrc(apt);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("guest: ERROR: no deb-src entry", result.StandardError, StringComparison.Ordinal);
        Assert.Contains("add a deb-src line for Debian 12", result.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("VERSIONS=", result.StandardOutput, StringComparison.Ordinal);
        Assert.Equal(["other.sources"], Directory.GetFiles(SourcesDir).Select(Path.GetFileName));
    }

    [Fact]
    public void AStepThatFailsWithoutAMessageIsNamed()
    {
        // The net under every set-up script: set -e ends the script, but never silently.
        var result = Bash(
            "set -euo pipefail; SETUP_STEP=demo; . scripts/lib/on-error.sh; quiet() { return 3; }; value=$(quiet | cat); echo unreachable",
            []);

        Assert.Equal(3, result.ExitCode);
        Assert.DoesNotContain("unreachable", result.StandardOutput, StringComparison.Ordinal);
        string[] lines = result.StandardError.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        string line = Assert.Single(lines);
        Assert.StartsWith("demo: ERROR: step `value=$(quiet | cat)` failed (exit status 3)", line, StringComparison.Ordinal);
        Assert.Contains("bash -x", line, StringComparison.Ordinal);
    }

    /// <summary>An apt configuration whose sources, package lists and caches are all under the test's directory.</summary>
    private string PrivateApt(string[] copySources)
    {
        Directory.CreateDirectory(SourcesDir);
        foreach (string f in copySources)
        {
            File.Copy(f, Path.Combine(SourcesDir, Path.GetFileName(f)));
        }

        Directory.CreateDirectory(Path.Combine(_root, "lists", "partial"));
        Directory.CreateDirectory(Path.Combine(_root, "cache"));
        string conf = Path.Combine(_root, "apt.conf");
        File.WriteAllText(conf, $"""
            Dir::Etc::sourcelist "{_root}/sources.list";
            Dir::Etc::sourceparts "{SourcesDir}";
            Dir::State::lists "{_root}/lists";
            Dir::Cache "{_root}/cache";
            APT::Sandbox::User "root";

            """);
        return conf;
    }

    private ScriptResult RunEnsureDebSrc(string aptConfig) => Bash(
        "set -euo pipefail; SETUP_STEP=guest; . scripts/lib/on-error.sh; . guest/lib/common.sh; ensure_deb_src; echo \"VERSIONS=$BUSYBOX_SOURCE_VERSIONS\"",
        [("APT_CONFIG", aptConfig), ("GUEST_CACHE", Path.Combine(_root, "guest-cache"))]);

    private static ScriptResult Bash(string script, (string Name, string Value)[] environment)
    {
        var info = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = GuestArtifacts.RepositoryRoot,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        foreach (var (name, value) in environment)
        {
            info.Environment[name] = value;
        }

        using var process = Process.Start(info)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(3)))
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail("the script did not finish within 3 minutes");
        }

        return new ScriptResult(process.ExitCode, stdout, stderr.Result);
    }

    private sealed record ScriptResult(int ExitCode, string StandardOutput, string StandardError)
    {
        public override string ToString() => $"exit {ExitCode}\nstdout:\n{StandardOutput}\nstderr:\n{StandardError}";
    }
}
