using System.CommandLine;

namespace HostVM.Cli;

/// <summary>The options every daemon command takes, before or after the command's name: --host and --output.</summary>
public sealed class GlobalOptions
{
    public GlobalOptions()
    {
        Output.AcceptOnlyFromAmong("table", "json");
    }

    public Option<string?> Host { get; } = new("--host")
    {
        Description = $"The daemon: http://HOST:PORT or unix:PATH (default: ${DaemonLocator.Variable}, then \"host\" in ~/.config/hostvm/cli.json, then the daemon's Unix socket if it exists, then {DaemonLocator.DefaultHttp}).",
        Recursive = true,
    };

    public Option<string> Output { get; } = new("--output", "-o")
    {
        Description = "table (for people) or json (the daemon's JSON unchanged, for scripts).",
        DefaultValueFactory = _ => "table",
        Recursive = true,
    };

    public void AddTo(Command root)
    {
        ArgumentNullException.ThrowIfNull(root);
        root.Options.Add(Host);
        root.Options.Add(Output);
    }

    public bool IsJson(ParseResult parse)
    {
        ArgumentNullException.ThrowIfNull(parse);
        return parse.GetValue(Output) == "json";
    }
}
