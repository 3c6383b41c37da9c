using HostVM.Cli.Api;

namespace HostVM.Cli;

/// <summary>What a daemon command prints on stderr when it fails, and the exit code it returns.</summary>
public sealed record FailureReport(int ExitCode, IReadOnlyList<string> Lines)
{
    /// <summary>The report for a failure the daemon commands know, or null for a bug (which keeps its stack trace).</summary>
    public static FailureReport? For(Exception exception) => exception switch
    {
        UsageException or DeviceOptionException => new(ExitCodes.BadCommandLine, [exception.Message]),
        DaemonUnreachableException e => Unreachable(e),
        DaemonCertificateException e => new(ExitCodes.Untrusted, [e.Message, e.Advice]),
        DaemonException e => Refused(e),
        _ => null,
    };

    private static FailureReport Unreachable(DaemonUnreachableException e)
    {
        string from = e.Address.Source == "the default" ? "the default address" : $"the address from {e.Address.Source}";
        return new(ExitCodes.Unreachable,
        [
            $"cannot reach the daemon at {e.Address.Text} ({e.Reason}; {from}).",
            $"Start it with `hostvm serve`, or give its address with --host, {DaemonLocator.Variable} or \"host\" in ~/.config/hostvm/cli.json.",
        ]);
    }

    private static FailureReport Refused(DaemonException e)
    {
        var lines = new List<string> { e.Message };
        foreach (var (field, messages) in e.Problem?.Errors ?? [])
        {
            foreach (string message in messages)
            {
                if (message != e.Message)
                {
                    lines.Add($"  {field}: {message}");
                }
            }
        }

        return new(ExitCodes.ForStatus(e.Status), lines);
    }

    public void WriteTo(TextWriter error)
    {
        ArgumentNullException.ThrowIfNull(error);
        foreach (string line in Lines)
        {
            error.WriteLine($"hostvm: {line}");
        }
    }
}
