using System.CommandLine;
using System.Text.Json;
using HostVM.Cli.Api;
using HostVM.Host.Security;

namespace HostVM.Cli;

/// <summary>
/// `hostvm login URL`: connects to the daemon, shows its certificate's fingerprint, checks the token, and saves
/// host, token and fingerprint in ~/.config/hostvm/cli.json (mode 0600) so later commands need none of them.
/// A certificate the system does not trust (the daemon's self-signed one) is pinned: the fingerprint given with
/// --fingerprint (or $HOSTVM_FINGERPRINT), or, on a terminal, the one shown once the user confirms it matches
/// what `hostvm serve` printed. Without a terminal and without --fingerprint, nothing is trusted blindly: it fails (7).
/// </summary>
public static class LoginCommand
{
    public static Command Create(CliEnvironment environment, GlobalOptions global)
    {
        ArgumentNullException.ThrowIfNull(environment);
        ArgumentNullException.ThrowIfNull(global);
        var url = new Argument<string>("url") { Description = "The daemon: https://HOST:PORT, as `hostvm serve` printed it (or unix:PATH)." };
        var command = new Command(
            "login",
            "Check the daemon's certificate and token and save host, token and fingerprint in ~/.config/hostvm/cli.json. " +
            "Give the certificate's fingerprint with --fingerprint, or confirm the one shown (on a terminal only).")
        {
            url,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await LoginAsync(environment, parse.GetValue(url)!, parse.GetValue(global.Token), parse.GetValue(global.Fingerprint), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return 130;
            }
            catch (Exception e) when (FailureReport.For(e) is { } report)
            {
                report.WriteTo(environment.Error);
                return report.ExitCode;
            }
        });
        return command;
    }

    private static async Task<int> LoginAsync(CliEnvironment environment, string url, string? tokenOption, string? fingerprintOption, CancellationToken cancellationToken)
    {
        var given = DaemonLocator.Resolve(url, tokenOption, fingerprintOption, environment, readConfigFile: false, hostSource: "URL");
        string? pin = given.Fingerprint;
        if (pin is null && given.Address is { SocketPath: null, BaseUri.Scheme: "https" })
        {
            var confirmed = await ConfirmAsync(environment, given.Address, cancellationToken).ConfigureAwait(false);
            if (!confirmed.Ok)
            {
                return ExitCodes.Untrusted;
            }

            pin = confirmed.Pin;
        }

        var connection = given with { Fingerprint = pin };
        HostInfo host;
        string? seen;
        using (var client = environment.Connect(connection))
        {
            host = (await client.GetHostAsync(cancellationToken).ConfigureAwait(false)).Value;
            seen = client.ServerFingerprint;
        }

        string file = DaemonLocator.ConfigFile(environment);
        var config = new CliConfig { Host = connection.Address.Text, Token = connection.Token, Fingerprint = pin };
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        AtomicFile.Write(file, JsonSerializer.Serialize(config, ApiJsonContext.Default.CliConfig) + "\n", UnixFileMode.UserRead | UnixFileMode.UserWrite);

        environment.Out.WriteLine($"Logged in to {connection.Address.Text} (host {host.Hostname}, hostvm {host.Version}).");
        if (seen is not null)
        {
            environment.Out.WriteLine($"Certificate SHA-256 fingerprint: {seen}{(pin is null ? " (trusted by the system's CAs; not pinned)" : " (pinned)")}");
        }

        environment.Out.WriteLine($"Saved to {file}{(connection.Token is null ? " (no token)" : string.Empty)}.");
        return ExitCodes.Ok;
    }

    /// <summary>
    /// Looks at the certificate without sending the token (nothing secret goes to a daemon not yet trusted). Trusted
    /// by the system: nothing to pin. Otherwise the user must confirm its fingerprint on a terminal.
    /// </summary>
    private static async Task<(bool Ok, string? Pin)> ConfirmAsync(CliEnvironment environment, DaemonAddress address, CancellationToken cancellationToken)
    {
        using var probe = environment.Connect(new DaemonConnection(address));
        try
        {
            await probe.GetHostAsync(cancellationToken).ConfigureAwait(false);
            return (true, null);
        }
        catch (DaemonException)
        {
            return (true, null); // an answer (even 401) came over TLS the system verified
        }
        catch (DaemonCertificateException e) when (environment.InputIsTerminal)
        {
            environment.Error.WriteLine($"The daemon at {address.Text} has a certificate this system does not trust (self-signed?).");
            environment.Error.WriteLine($"Its SHA-256 fingerprint: {e.Seen}");
            environment.Error.Write("Is this the fingerprint `hostvm serve` printed on the daemon's machine? [y/N] ");
            environment.Error.Flush();
            string? answer = environment.ReadLine()?.Trim();
            if (answer is not null && (answer.Equals("y", StringComparison.OrdinalIgnoreCase) || answer.Equals("yes", StringComparison.OrdinalIgnoreCase)))
            {
                return (true, e.Seen);
            }

            environment.Error.WriteLine("hostvm: not logged in: the fingerprint was not confirmed. Compare it with what `hostvm serve` printed, then log in again.");
            return (false, null);
        }
    }
}
