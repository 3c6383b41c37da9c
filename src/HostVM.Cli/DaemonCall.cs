using System.CommandLine;
using HostVM.Cli.Api;
using Spectre.Console;

namespace HostVM.Cli;

/// <summary>One run of a daemon command: its command line, the client, where to print and in which form.</summary>
public sealed class DaemonCall(ParseResult parse, DaemonClient client, CliEnvironment environment, bool json, CancellationToken cancellationToken)
{
    private IAnsiConsole? _screen;

    public ParseResult Parse { get; } = parse;

    public DaemonClient Client { get; } = client;

    public CliEnvironment Environment { get; } = environment;

    /// <summary>--output json: print the daemon's JSON, nothing else, on stdout.</summary>
    public bool Json { get; } = json;

    public CancellationToken CancellationToken { get; } = cancellationToken;

    /// <summary>Standard output for tables (colour only on a terminal).</summary>
    public IAnsiConsole Screen => _screen ??= HumanOutput.CreateConsole(Environment.Out, Environment.OutputIsTerminal);

    public T Get<T>(Option<T> option) => Parse.GetValue(option)!;

    public T Get<T>(Argument<T> argument) => Parse.GetValue(argument)!;

    /// <summary>Prints an answer: as the daemon sent it with --output json, else through <paramref name="human"/>.</summary>
    public int Print<T>(DaemonResponse<T> response, Action<IAnsiConsole, T> human)
    {
        ArgumentNullException.ThrowIfNull(response);
        ArgumentNullException.ThrowIfNull(human);
        if (Json)
        {
            Environment.Out.WriteLine(response.Json);
        }
        else
        {
            human(Screen, response.Value);
        }

        return ExitCodes.Ok;
    }

    /// <summary>Prints a list: the daemon's JSON, or a table with one row (of markup) per item, or <paramref name="empty"/> if there are none.</summary>
    public int PrintTable<T>(DaemonResponse<List<T>> response, string empty, string[] columns, Func<T, string[]> row)
    {
        ArgumentNullException.ThrowIfNull(row);
        return Print(response, (screen, list) =>
        {
            if (list.Count == 0)
            {
                screen.MarkupLine(Markup.Escape(empty));
                return;
            }

            var table = HumanOutput.Table(columns);
            foreach (var item in list)
            {
                table.AddRow(row(item));
            }

            screen.Write(table);
        });
    }

    /// <summary>A line for people (e.g. "Deleted VM web1."); nothing with --output json, whose scripts read the exit code.</summary>
    public int Say(string markup)
    {
        if (!Json)
        {
            Screen.MarkupLine(markup);
        }

        return ExitCodes.Ok;
    }
}
