using System.CommandLine;

namespace HostVM.Cli;

/// <summary>
/// Runs the daemon commands: finds the daemon, connects, runs the command, and turns every failure into
/// `hostvm: ...` lines on stderr and the documented exit code (<see cref="ExitCodes"/>).
/// </summary>
public sealed class DaemonCommandRunner(CliEnvironment environment, GlobalOptions global)
{
    public CliEnvironment Environment { get; } = environment;

    public void SetAction(Command command, Func<DaemonCall, Task<int>> action)
    {
        ArgumentNullException.ThrowIfNull(command);
        command.SetAction((parse, cancellationToken) => RunAsync(parse, action, cancellationToken));
    }

    /// <summary>`NOUN list` (alias ls): the daemon's list as a table, or its JSON.</summary>
    public Command ListCommand<T>(
        string description, Func<Api.DaemonClient, CancellationToken, Task<Api.DaemonResponse<List<T>>>> fetch, string empty, string[] columns, Func<T, string[]> row)
    {
        ArgumentNullException.ThrowIfNull(fetch);
        var command = new Command("list", description);
        command.Aliases.Add("ls");
        SetAction(command, async call =>
            call.PrintTable(await fetch(call.Client, call.CancellationToken).ConfigureAwait(false), empty, columns, row));
        return command;
    }

    /// <summary>`NOUN delete NAME` (alias rm): deletes and says so.</summary>
    public Command DeleteCommand(string noun, string description, Func<Api.DaemonClient, string, CancellationToken, Task> delete)
    {
        ArgumentNullException.ThrowIfNull(delete);
        var name = new Argument<string>("name") { Description = $"The {noun}'s name." };
        var command = new Command("delete", description) { name };
        command.Aliases.Add("rm");
        SetAction(command, async call =>
        {
            await delete(call.Client, call.Get(name), call.CancellationToken).ConfigureAwait(false);
            return call.Say($"Deleted {noun} [bold]{Spectre.Console.Markup.Escape(call.Get(name))}[/].");
        });
        return command;
    }

    private async Task<int> RunAsync(ParseResult parse, Func<DaemonCall, Task<int>> action, CancellationToken cancellationToken)
    {
        try
        {
            var connection = DaemonLocator.Resolve(parse.GetValue(global.Host), parse.GetValue(global.Token), parse.GetValue(global.Fingerprint), Environment);
            using var client = Environment.Connect(connection);
            return await action(new DaemonCall(parse, client, Environment, global.IsJson(parse), cancellationToken)).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return 130; // Ctrl-C, as a shell reports it
        }
        catch (Exception e) when (FailureReport.For(e) is { } report)
        {
            report.WriteTo(Environment.Error);
            return report.ExitCode;
        }
    }
}
